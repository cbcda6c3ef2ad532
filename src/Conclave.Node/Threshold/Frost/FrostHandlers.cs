using System.Security.Cryptography;
using Conclave.Crypto;
using Conclave.Crypto.Aead;
using Conclave.Crypto.Memory;
using Conclave.Node.Protocol;
using Conclave.Node.Threshold.Engine;
using Conclave.Storage;
using Conclave.Storage.Audit;
using Conclave.Storage.Keys;
using Conclave.Threshold;
using Conclave.Threshold.Frost;
using Conclave.Threshold.Frost.Ciphersuites;

namespace Conclave.Node.Frost;

/// <summary>
/// FROST key import, nonce pools and signing on a node (RFC 9591 sections 5.1 and 5.2).
/// Payloads (see <see cref="PayloadWriter"/>):
/// <list type="bullet">
/// <item>frost.import: keyId, scheme, ephemeral X25519 public key, sealed key package → frost.imported: public key package.</item>
/// <item>frost.commit: keyId, count → frost.commitments: count, then per nonce: 16-byte id, commitments.</item>
/// <item>frost.sign: 1..256 items, each a session, keyId, 16-byte nonce id, signing package, path and key version
/// (<see cref="FrostSignBatch"/>) → frost.shares: per item a signature share under the (child) key, BIP-86 tweaked for
/// frost-taproot, or that item's refusal.</item>
/// </list>
/// </summary>
public sealed class FrostHandlers(FrostNodeState state) : IProtocolHandler
{
    public IReadOnlyCollection<string> Kinds { get; } = [FrostMessages.Import, FrostMessages.Commit, FrostMessages.Sign];

    public async ValueTask<IReadOnlyList<OutgoingMessage>> HandleAsync(StepContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        return await HandlerSupport.RefuseOnFailure<IReadOnlyList<OutgoingMessage>>(async () => context.Request.Kind switch
        {
            FrostMessages.Import => await ImportAsync(context, cancellationToken).ConfigureAwait(false),
            FrostMessages.Commit => await CommitAsync(context, cancellationToken).ConfigureAwait(false),
            FrostMessages.Sign => await SignAsync(context, cancellationToken).ConfigureAwait(false),
            _ => throw new ProtocolException($"unknown kind {context.Request.Kind}"),
        }).ConfigureAwait(false);
    }

    private async Task<IReadOnlyList<OutgoingMessage>> ImportAsync(StepContext ctx, CancellationToken ct)
    {
        var r = new PayloadReader(ctx.Request.Payload.Span);
        string keyId = r.String("keyId");
        string scheme = r.String("scheme");
        byte[] ephemeral = r.Bytes("ephemeralKey", 32).ToArray();
        byte[] sealedPackage = r.Bytes("sealedKeyPackage").ToArray();
        r.End();
        if (!FrostCiphersuite.TryGet(scheme, out FrostCiphersuite? suite))
        {
            throw new ProtocolException($"unknown FROST scheme {scheme}");
        }

        byte[] context = FrostMessages.ImportContext(ctx.SessionId, state.NodeId, keyId);
        using SecretBuffer wrappingKey = ctx.Identity.DeriveSharedKey(ephemeral, context);
        SecretBuffer plain;
        try
        {
            plain = Envelope.Open(wrappingKey.ReadOnlySpan, sealedPackage, context);
        }
        catch (EnvelopeException)
        {
            throw new ProtocolException("the sealed key package does not open with this node's agreement key");
        }

        using (plain)
        {
            using KeyPackage package = KeyPackage.Import(suite, plain.ReadOnlySpan);
            if (!package.Identifier.Equals(Identifier.FromInt(suite, (int)state.NodeId)))
            {
                throw new ProtocolException($"the key package is for participant {package.Identifier}, not node {state.NodeId}");
            }

            PublicKeyPackage pub = package.PublicKeyPackage;
            await state.Store.Keys.CreateAsync(
                new NewKey(keyId, keyId, scheme, pub.VerificationKey, pub.Threshold, pub.ParticipantCount),
                plain, ct).ConfigureAwait(false);
            await state.Store.Audit.AppendAsync(new AuditEntryInput("coordinator", "frost.import", keyId,
                SHA256.HashData(ctx.Request.Payload.Span), "allow", "ok"), ct).ConfigureAwait(false);
            return [new OutgoingMessage(FrostMessages.Imported, ctx.Request.Round, [0], pub.ToBytes())];
        }
    }

    private async Task<IReadOnlyList<OutgoingMessage>> CommitAsync(StepContext ctx, CancellationToken ct)
    {
        var r = new PayloadReader(ctx.Request.Payload.Span);
        string keyId = r.String("keyId");
        uint count = r.U32("count");
        uint version = r.U32("version");
        r.End();
        // Held for the whole step (KeyVersions.LeaseAtVersionAsync): the nonces are derived with this version's share,
        // which a rotation step evicting the key meanwhile must not zero under the derivation.
        using KeyVersions<KeyPackage>.ShareLease lease = await state.LeaseKeyAtVersionAsync(keyId, (int)version, ct).ConfigureAwait(false);

        if (count is 0 or > FrostMessages.MaxBatch)
        {
            throw new ProtocolException($"count must be 1..{FrostMessages.MaxBatch}");
        }

        if (state.PoolSize(keyId) + count > state.MaxPoolPerKey)
        {
            throw new ProtocolException($"the nonce pool of key {keyId} is full");
        }

        IReadOnlyList<SigningNonces> batch = FrostSigner.CommitBatch(lease.Share, (int)count);

        // Durable before any commitment leaves the node: the pool names every nonce with an id of the node's current nonce
        // epoch (NonceEpochs, so the ledger can be pruned), records the ids consumed in the ledger, then pools the nonces.
        IReadOnlyList<byte[]> ids = await state.Nonces.IssueAsync(keyId, (int)version, batch, ct).ConfigureAwait(false);
        var w = new PayloadWriter().U32(count);
        for (int i = 0; i < batch.Count; i++)
        {
            w.Bytes(ids[i]).Bytes(batch[i].Commitments.ToBytes());
        }

        return [new OutgoingMessage(FrostMessages.Commitments, ctx.Request.Round, [0], w.ToArray())];
    }

    /// <summary>
    /// A sign step of 1..256 items (<see cref="FrostSignBatch"/>): each item is signed or refused on its own. The items'
    /// audit records are appended as each item starts, so their commits group into one fsync while the shares are
    /// computed; no share is returned before its own record is durable.
    /// </summary>
    private async Task<IReadOnlyList<OutgoingMessage>> SignAsync(StepContext ctx, CancellationToken ct)
    {
        IReadOnlyList<FrostSignItem> items = FrostSignBatch.DecodeRequest(ctx.Request.Payload.Span);
        var pending = new Task<byte[]>[items.Count];
        for (int i = 0; i < items.Count; i++)
        {
            pending[i] = SignItemAsync(items[i], ct);
        }

        var outcomes = new FrostSignOutcome[items.Count];
        for (int i = 0; i < pending.Length; i++)
        {
            outcomes[i] = await OutcomeAsync(pending[i]).ConfigureAwait(false);
        }

        return [new OutgoingMessage(FrostMessages.Shares, ctx.Request.Round, [0], FrostSignBatch.EncodeReply(outcomes))];
    }

    /// <summary>One item's outcome: its share, or the refusal its failure maps to (as a whole step's would, <see cref="HandlerSupport.RefuseOnFailure"/>).</summary>
    private static async Task<FrostSignOutcome> OutcomeAsync(Task<byte[]> item)
    {
        try
        {
            byte[] share = await HandlerSupport.RefuseOnFailure(async () => await item.ConfigureAwait(false)).ConfigureAwait(false);
            return FrostSignOutcome.Signed(share);
        }
        catch (ProtocolException e)
        {
            return FrostSignOutcome.Refused(e.Message, e.Culprit);
        }
    }

    private async Task<byte[]> SignItemAsync(FrostSignItem item, CancellationToken ct)
    {
        // The coordinator names the key version it will verify the share under. After a refresh or reshare a node
        // holds the new share while a coordinator may still hold the old public package: refusing here (before the
        // nonce is used) keeps an honest node from being named a culprit for a share made with the newer share.
        // While a rotation commits, the previous version still signs until it is retired (erased).
        // Held while the share is computed: a rotation evicting the share meanwhile cannot erase it under the computation.
        using KeyVersions<KeyPackage>.ShareLease lease = await state.LeaseKeyAtVersionAsync(item.KeyId, item.KeyVersion, ct).ConfigureAwait(false);
        KeyPackage key = lease.Share;

        using SigningNonces nonces = state.Nonces.Take(item.KeyId, item.KeyVersion, item.NonceId)
            ?? throw new ProtocolException($"nonce {Convert.ToHexStringLower(item.NonceId)} is unknown or already used on node {state.NodeId}");
        SigningPackage package = SigningPackage.FromBytes(key.Suite, item.SigningPackage);

        // A non-empty path signs with the non-hardened child (HdDerivation: the same public tweak on every share).
        // frost-taproot then tweaks the (child) share to the BIP-86 output key, Q = P + int(hash_TapTweak(x(P)))·G
        // (KeyDerivation.Signing): the node itself never signs under the untweaked group key, whatever it is asked.
        // Pooled nonces serve any child: the binding factors hash the signing group key (RFC 9591 §4.4), so a share
        // made for one child cannot be used under another (ATTACKS.md "HD path chosen after presigning").
        // Issue 14 item 8: the node's own durable record of the share, before the share leaves. The record names only
        // public values known before the share is computed, so its commit (an fsync) runs while the share is computed
        // (issue 18); the share is returned only once the record is durable. If computing the share fails, the record
        // stays (a share was asked for under that nonce and round) and nothing leaves.
        Task recorded = SignAuditRecords.RecordShareAsync(state.Store, state.NodeId, item.KeyId, item.KeyVersion, package.Message, item.NonceId, item.SessionId, ct);
        return await RecordedRelease.Compute(recorded, () =>
        {
            KeyDerivation derivation = KeyDerivation.Signing(key.Suite, item.Path);
            using KeyPackage? derived = derivation.IsIdentity ? null : FrostScheme.Get(key.Suite.SchemeName).Derive(key, derivation);
            byte[] encoded = FrostSigner.Sign(package, nonces, derived ?? key).ToBytes();
            if (state.CorruptShares)
            {
                encoded[^1] ^= 1; // testing only: a well-formed but wrong share (NodeConfig.FaultInjection)
            }

            return encoded;
        }).ConfigureAwait(false);
    }
}
