using System.Collections.Concurrent;
using System.Security.Cryptography;
using Conclave.Crypto;
using Conclave.Crypto.Aead;
using Conclave.Crypto.Memory;
using Conclave.Node.Config;
using Conclave.Node.Protocol;
using Conclave.Storage;
using Conclave.Storage.Audit;
using Conclave.Storage.Keys;
using Conclave.Threshold;
using Conclave.Threshold.Frost;
using Conclave.Threshold.Frost.Ciphersuites;
using AeadEnvelope = Conclave.Crypto.Aead.Envelope;

namespace Conclave.Node.Frost;

/// <summary>
/// Share repair over the cluster (Conclave.Threshold <see cref="Repair"/>: Laing–Stinson repairable threshold
/// scheme): t helpers rebuild the share of a node that lost its store, without revealing their own shares.
/// Every δ piece and σ value travels sealed to its recipient's agreement key; the rebuilt share is checked
/// against the lost participant's verifying share before it is stored.
/// Start payload (to helpers): keyId, lost node, helpers, version. Finish payload (to the lost node): keyId,
/// helpers, version, public key package.
/// </summary>
public sealed class FrostRepairHandlers(FrostNodeState state, ClusterManifest manifest) : IProtocolHandler
{
    private readonly ConcurrentDictionary<string, (KeyPackage Key, Identifier[] Helpers, Identifier Lost, RepairMessage Own, DateTimeOffset Started)> _runs = new(StringComparer.Ordinal);

    public IReadOnlyCollection<string> Kinds { get; } = [FrostMessages.RepairStart, FrostMessages.RepairSigma, FrostMessages.RepairFinish];

    public async ValueTask<IReadOnlyList<OutgoingMessage>> HandleAsync(StepContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        return await HandlerSupport.RefuseOnFailure<IReadOnlyList<OutgoingMessage>>(async () => context.Request.Kind switch
        {
            FrostMessages.RepairStart => await StartAsync(context, cancellationToken).ConfigureAwait(false),
            FrostMessages.RepairSigma => Sigma(context),
            FrostMessages.RepairFinish => await FinishAsync(context, cancellationToken).ConfigureAwait(false),
            _ => throw new ProtocolException($"unknown kind {context.Request.Kind}"),
        }).ConfigureAwait(false);
    }

    private async Task<IReadOnlyList<OutgoingMessage>> StartAsync(StepContext ctx, CancellationToken ct)
    {
        var r = new PayloadReader(ctx.Request.Payload.Span);
        string keyId = r.String("keyId");
        uint lost = r.U32("lost");
        uint[] helpers = r.NodeIds("helpers");
        int version = (int)r.U32("version");
        r.End();
        KeyPackage key = await state.GetKeyAtVersionAsync(keyId, version, ct).ConfigureAwait(false);
        FrostCiphersuite suite = key.Suite;
        Identifier[] ids = [.. helpers.Select(h => Identifier.FromInt(suite, (int)h))];
        Identifier lostId = Identifier.FromInt(suite, (int)lost);
        IReadOnlyList<RepairMessage> pieces = Repair.Step1(key, ids, lostId);
        var outgoing = new List<OutgoingMessage>();
        RepairMessage? own = null;
        foreach (RepairMessage p in pieces)
        {
            uint to = FrostNodeIds.ToNode(p.Recipient);
            if (to == state.NodeId)
            {
                own = p;
                continue;
            }

            using (p)
            using (SecretBuffer plain = p.Export())
            {
                outgoing.Add(new OutgoingMessage(FrostMessages.RepairDelta, 1, [to], HandlerSupport.SealTo(ctx, manifest, to, FrostMessages.RepairContext(ctx.SessionId, state.NodeId, to), plain.ReadOnlySpan)));
            }
        }

        _runs[Convert.ToHexStringLower(ctx.SessionId)] = (key, ids, lostId, own ?? throw new ProtocolException("no piece for this helper"), DateTimeOffset.UtcNow);
        return outgoing;
    }

    private IReadOnlyList<OutgoingMessage> Sigma(StepContext ctx)
    {
        if (!_runs.TryRemove(Convert.ToHexStringLower(ctx.SessionId), out var run))
        {
            throw new ProtocolException("unknown repair session");
        }

        var received = new List<RepairMessage> { run.Own };
        try
        {
            foreach (Rpc.Envelope e in ctx.Relayed)
            {
                if (e.Kind != FrostMessages.RepairDelta)
                {
                    throw new ProtocolException($"expected δ pieces, got '{e.Kind}' from {e.Sender}", e.Sender);
                }

                using SecretBuffer plain = HandlerSupport.OpenFrom(ctx, manifest, e.Sender, FrostMessages.RepairContext(ctx.SessionId, e.Sender, state.NodeId), e.Payload.ToByteArray(), "repair message");
                received.Add(RepairMessage.Import(run.Key.Suite, plain.ReadOnlySpan));
            }

            using RepairMessage sigma = Repair.Step2(run.Key, run.Helpers, run.Lost, received);
            uint lost = FrostNodeIds.ToNode(run.Lost);
            using SecretBuffer s = sigma.Export();
            return [new OutgoingMessage(FrostMessages.RepairSigmaShare, 2, [lost], HandlerSupport.SealTo(ctx, manifest, lost, FrostMessages.RepairContext(ctx.SessionId, state.NodeId, lost), s.ReadOnlySpan))];
        }
        finally
        {
            foreach (RepairMessage m in received)
            {
                m.Dispose();
            }
        }
    }

    private async Task<IReadOnlyList<OutgoingMessage>> FinishAsync(StepContext ctx, CancellationToken ct)
    {
        var r = new PayloadReader(ctx.Request.Payload.Span);
        string keyId = r.String("keyId");
        string scheme = r.String("scheme");
        uint[] helpers = r.NodeIds("helpers");
        int version = (int)r.U32("version");
        byte[] pkpBytes = r.Bytes("publicKeyPackage").ToArray();
        r.End();
        if (!FrostCiphersuite.TryGet(scheme, out FrostCiphersuite? suite))
        {
            throw new ProtocolException($"unknown FROST scheme {scheme}");
        }

        if (await state.Store.Keys.GetAsync(keyId, ct).ConfigureAwait(false) is not null)
        {
            throw new ProtocolException($"node {state.NodeId} still holds key {keyId}; repair is for a lost share");
        }

        var pkp = PublicKeyPackage.FromBytes(suite, pkpBytes);
        Identifier[] ids = [.. helpers.Select(h => Identifier.FromInt(suite, (int)h))];
        var sigmas = new List<RepairMessage>();
        try
        {
            foreach (Rpc.Envelope e in ctx.Relayed)
            {
                if (e.Kind != FrostMessages.RepairSigmaShare)
                {
                    throw new ProtocolException($"expected σ values, got '{e.Kind}' from {e.Sender}", e.Sender);
                }

                using SecretBuffer plain = HandlerSupport.OpenFrom(ctx, manifest, e.Sender, FrostMessages.RepairContext(ctx.SessionId, e.Sender, state.NodeId), e.Payload.ToByteArray(), "repair message");
                sigmas.Add(RepairMessage.Import(suite, plain.ReadOnlySpan));
            }

            using KeyPackage rebuilt = Repair.Step3(pkp, ids, Identifier.FromInt(suite, (int)state.NodeId), sigmas);
            using SecretBuffer material = rebuilt.Export();
            KeyRecord stored = await state.Store.Keys.CreateAsync(
                new NewKey(keyId, keyId, scheme, pkp.VerificationKey, pkp.Threshold, pkp.ParticipantCount) { InitialVersion = version },
                material, ct).ConfigureAwait(false);
            await state.Store.Audit.AppendAsync(new AuditEntryInput("coordinator", "frost.repair", keyId,
                SHA256.HashData(ctx.Request.Payload.Span), "allow", $"version {stored.Version}"), ct).ConfigureAwait(false);
            return [new OutgoingMessage(FrostMessages.RepairDone, 3, [0], [])];
        }
        finally
        {
            foreach (RepairMessage m in sigmas)
            {
                m.Dispose();
            }
        }
    }

}
