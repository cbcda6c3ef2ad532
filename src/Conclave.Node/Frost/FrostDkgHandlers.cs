using System.Collections.Concurrent;
using System.Security.Cryptography;
using Conclave.Crypto;
using Conclave.Crypto.Aead;
using Conclave.Crypto.Memory;
using Conclave.Node.Config;
using Conclave.Node.Protocol;
using Conclave.Node.Rpc;
using Conclave.Storage;
using Conclave.Storage.Audit;
using Conclave.Storage.Keys;
using Conclave.Threshold;
using Conclave.Threshold.Frost;
using Conclave.Threshold.Frost.Ciphersuites;
using AeadEnvelope = Conclave.Crypto.Aead.Envelope;

namespace Conclave.Node.Frost;

/// <summary>
/// Distributed key generation, refresh and reshare on a node: the Conclave.Threshold DKG engine driven over the
/// coordinator, one step per round. Round-one packages are broadcast (signed by their sender), round-two shares
/// are sealed to the recipient's X25519 agreement key (static-static X25519, HKDF bound to session, sender and
/// recipient, then XChaCha20-Poly1305), confirmations are broadcast, and a new share is stored only after every
/// receiver's confirmation checked out. For refresh and reshare the old share stays in its key version until the
/// coordinator, having seen every node store the new one, sends the retire step (DESIGN.md safety rule 2).
/// Start payload: kind, keyId, scheme, threshold, dealers, receivers, current version, old public key package.
/// </summary>
public sealed class FrostDkgHandlers(FrostNodeState state, ClusterManifest manifest) : IProtocolHandler
{
    private static readonly TimeSpan SessionLifetime = TimeSpan.FromMinutes(5);
    private readonly ConcurrentDictionary<string, RunState> _runs = new(StringComparer.Ordinal);

    public IReadOnlyCollection<string> Kinds { get; } =
        [FrostMessages.DkgStart, FrostMessages.DkgRound2, FrostMessages.DkgFinish, FrostMessages.DkgComplete, FrostMessages.DkgRetire];

    public async ValueTask<IReadOnlyList<OutgoingMessage>> HandleAsync(StepContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        Sweep();
        return await HandlerSupport.RefuseOnFailure<IReadOnlyList<OutgoingMessage>>(async () => context.Request.Kind switch
        {
            FrostMessages.DkgStart => await StartAsync(context, cancellationToken).ConfigureAwait(false),
            FrostMessages.DkgRound2 => Round2(context),
            FrostMessages.DkgFinish => Finish(context),
            FrostMessages.DkgComplete => await CompleteAsync(context, cancellationToken).ConfigureAwait(false),
            FrostMessages.DkgRetire => await RetireAsync(context, cancellationToken).ConfigureAwait(false),
            _ => throw new ProtocolException($"unknown kind {context.Request.Kind}"),
        }, () => Forget(context.SessionId)).ConfigureAwait(false);
    }

    private async Task<IReadOnlyList<OutgoingMessage>> StartAsync(StepContext ctx, CancellationToken ct)
    {
        var r = new PayloadReader(ctx.Request.Payload.Span);
        var kind = (DkgRunKind)r.U32("kind");
        string keyId = r.String("keyId");
        string scheme = r.String("scheme");
        int threshold = (int)r.U32("threshold");
        uint[] dealers = r.NodeIds("dealers");
        uint[] receivers = r.NodeIds("receivers");
        int version = (int)r.U32("version");
        byte[] oldKeyBytes = r.Bytes("oldKey").ToArray();
        r.End();
        if (!FrostCiphersuite.TryGet(scheme, out FrostCiphersuite? suite))
        {
            throw new ProtocolException($"unknown FROST scheme {scheme}");
        }

        Identifier self = Identifier.FromInt(suite, (int)state.NodeId);
        bool dealer = dealers.Contains(state.NodeId);
        if (!dealer && !receivers.Contains(state.NodeId))
        {
            throw new ProtocolException($"node {state.NodeId} is not a participant of this run");
        }

        string key = Convert.ToHexStringLower(ctx.SessionId);
        if (_runs.ContainsKey(key))
        {
            throw new ProtocolException("this session already started");
        }

        KeyPackage? current = null;
        DkgSession session;
        switch (kind)
        {
            case DkgRunKind.KeyGeneration:
                if (await state.Store.Keys.GetAsync(keyId, ct).ConfigureAwait(false) is not null)
                {
                    throw new ProtocolException($"key {keyId} already exists on node {state.NodeId}");
                }

                session = DkgSession.ForKeyGeneration(suite, ctx.SessionId, threshold, Ids(suite, receivers));
                break;
            case DkgRunKind.Refresh:
            case DkgRunKind.Reshare:
                var oldKey = PublicKeyPackage.FromBytes(suite, oldKeyBytes);
                KeyRecord? record = await state.Store.Keys.GetAsync(keyId, ct).ConfigureAwait(false);
                if (record is not null && record.Version != version)
                {
                    throw new ProtocolException($"node {state.NodeId} holds key {keyId} at version {record.Version}, not {version}");
                }

                if (dealer)
                {
                    current = await state.GetKeyAsync(keyId, ct).ConfigureAwait(false);
                    if (!current.PublicKeyPackage.PublicEquals(oldKey))
                    {
                        throw new ProtocolException("the coordinator's copy of the key differs from this node's");
                    }
                }

                session = kind == DkgRunKind.Refresh
                    ? DkgSession.ForRefresh(ctx.SessionId, oldKey)
                    : DkgSession.ForReshare(ctx.SessionId, oldKey, Ids(suite, dealers), threshold, Ids(suite, receivers));
                break;
            default:
                throw new ProtocolException("unknown DKG run kind");
        }

        DkgRound1Secret round1 = Dkg.Round1(session, self, current);
        var run = new RunState(kind, keyId, session, version, DateTimeOffset.UtcNow) { Round1 = round1 };
        if (!_runs.TryAdd(key, run))
        {
            round1.Dispose();
            throw new ProtocolException("this session already started");
        }

        byte[] payload = round1.Package?.ToBytes() ?? [];
        return [new OutgoingMessage(FrostMessages.DkgRound1, 1, [], payload)];
    }

    private IReadOnlyList<OutgoingMessage> Round2(StepContext ctx)
    {
        RunState run = Get(ctx.SessionId);
        DkgRound1Secret round1 = Interlocked.Exchange(ref run.Round1, null) ?? throw new ProtocolException("round two was already computed");
        FrostCiphersuite suite = run.Session.Suite;
        var received = new List<DkgRound1Package>();
        foreach (Rpc.Envelope e in ctx.Relayed)
        {
            if (e.Kind != FrostMessages.DkgRound1 || e.Round != 1)
            {
                throw new ProtocolException($"round two expects round-one packages, got '{e.Kind}' from {e.Sender}", e.Sender);
            }

            if (e.Payload.Length > 0)
            {
                DkgRound1Package p = DkgRound1Package.FromBytes(suite, e.Payload.Span);
                if (!p.Sender.Equals(Identifier.FromInt(suite, (int)e.Sender)))
                {
                    throw new ProtocolException($"node {e.Sender} sent a package in another participant's name", e.Sender);
                }

                received.Add(p);
            }
        }

        (DkgRound2Secret secret, IReadOnlyList<DkgRound2Package> outgoing) = Dkg.Round2(round1, received);
        var messages = new List<OutgoingMessage>(outgoing.Count);
        foreach (DkgRound2Package p in outgoing)
        {
            using (p)
            {
                uint recipient = FrostNodeIds.ToNode(p.Recipient);
                using SecretBuffer plain = p.Export();
                messages.Add(new OutgoingMessage(FrostMessages.DkgShare, 2, [recipient], HandlerSupport.SealTo(ctx, manifest, recipient, FrostMessages.DkgShareContext(ctx.SessionId, state.NodeId, recipient), plain.ReadOnlySpan)));
            }
        }

        if (run.Session.Receivers.Contains(Identifier.FromInt(suite, (int)state.NodeId)))
        {
            run.Round2 = secret;
        }
        else
        {
            // A dealer that does not receive (reshare away from this node) is done after dealing.
            secret.Dispose();
        }

        return messages;
    }

    private IReadOnlyList<OutgoingMessage> Finish(StepContext ctx)
    {
        RunState run = Get(ctx.SessionId);
        DkgRound2Secret secret = Interlocked.Exchange(ref run.Round2, null) ?? throw new ProtocolException("this node has no round-two state for the session");
        FrostCiphersuite suite = run.Session.Suite;
        var received = new List<DkgRound2Package>();
        try
        {
            foreach (Rpc.Envelope e in ctx.Relayed)
            {
                if (e.Kind != FrostMessages.DkgShare || e.Recipients.Count != 1 || e.Recipients[0] != state.NodeId)
                {
                    throw new ProtocolException($"finish expects shares addressed to node {state.NodeId}, got '{e.Kind}' from {e.Sender}", e.Sender);
                }

                using SecretBuffer plain = HandlerSupport.OpenFrom(ctx, manifest, e.Sender, FrostMessages.DkgShareContext(ctx.SessionId, e.Sender, state.NodeId), e.Payload.ToByteArray(), "share");
                DkgRound2Package p = DkgRound2Package.Import(suite, plain.ReadOnlySpan);
                if (!p.Sender.Equals(Identifier.FromInt(suite, (int)e.Sender)))
                {
                    p.Dispose();
                    throw new ProtocolException($"node {e.Sender} sent a share in another participant's name", e.Sender);
                }

                received.Add(p);
            }
        }
        catch
        {
            secret.Dispose();
            foreach (DkgRound2Package p in received)
            {
                p.Dispose();
            }

            throw;
        }

        DkgPendingKey pending = Dkg.Finish(secret, received);
        run.Pending = pending;
        byte[] payload = new PayloadWriter().Bytes(pending.Confirmation.ToBytes()).Bytes(pending.PublicKeyPackage.ToBytes()).ToArray();
        return [new OutgoingMessage(FrostMessages.DkgConfirm, 3, [], payload)];
    }

    private async Task<IReadOnlyList<OutgoingMessage>> CompleteAsync(StepContext ctx, CancellationToken ct)
    {
        RunState run = Get(ctx.SessionId);
        DkgPendingKey pending = Interlocked.Exchange(ref run.Pending, null) ?? throw new ProtocolException("this node has no pending key for the session");
        FrostCiphersuite suite = run.Session.Suite;
        try
        {
            var confirmations = new List<DkgConfirmation> { pending.Confirmation };
            foreach (Rpc.Envelope e in ctx.Relayed)
            {
                if (e.Kind != FrostMessages.DkgConfirm)
                {
                    throw new ProtocolException($"complete expects confirmations, got '{e.Kind}' from {e.Sender}", e.Sender);
                }

                var pr = new PayloadReader(e.Payload.Span);
                DkgConfirmation c = DkgConfirmation.FromBytes(suite, pr.Bytes("confirmation"));
                _ = pr.Bytes("publicKeyPackage");
                pr.End();
                if (!c.Sender.Equals(Identifier.FromInt(suite, (int)e.Sender)))
                {
                    throw new ProtocolException($"node {e.Sender} sent a confirmation in another participant's name", e.Sender);
                }

                confirmations.Add(c);
            }

            using KeyPackage complete = pending.Complete(confirmations);
            using SecretBuffer material = complete.Export();
            PublicKeyPackage pub = complete.PublicKeyPackage;
            KeyRecord stored;
            if (run.Kind == DkgRunKind.KeyGeneration)
            {
                stored = await state.Store.Keys.CreateAsync(new NewKey(run.KeyId, run.KeyId, suite.SchemeName, pub.VerificationKey, pub.Threshold, pub.ParticipantCount), material, ct).ConfigureAwait(false);
            }
            else if (await state.Store.Keys.GetAsync(run.KeyId, ct).ConfigureAwait(false) is null)
            {
                // A new member of a reshared committee: it gets the key at the committee's new version.
                stored = await state.Store.Keys.CreateAsync(
                    new NewKey(run.KeyId, run.KeyId, suite.SchemeName, pub.VerificationKey, pub.Threshold, pub.ParticipantCount) { InitialVersion = run.Version + 1 },
                    material, ct).ConfigureAwait(false);
            }
            else
            {
                // First phase: the new share becomes the current version; the old version's share stays until retire.
                stored = await state.Store.Keys.RotateAsync(run.KeyId, run.Version, pub.VerificationKey, material, ct).ConfigureAwait(false);
                state.Evict(run.KeyId);
            }

            await state.Store.Audit.AppendAsync(new AuditEntryInput("coordinator", "frost." + run.Kind.ToString().ToLowerInvariant(), run.KeyId,
                SHA256.HashData(ctx.Request.Payload.Span), "allow", $"version {stored.Version}"), ct).ConfigureAwait(false);
            if (run.Kind == DkgRunKind.KeyGeneration)
            {
                Forget(ctx.SessionId);
            }

            byte[] payload = new PayloadWriter().U32((uint)stored.Version).Bytes(pub.ToBytes()).ToArray();
            return [new OutgoingMessage(FrostMessages.DkgDone, 4, [0], payload)];
        }
        finally
        {
            pending.Dispose();
        }
    }

    private async Task<IReadOnlyList<OutgoingMessage>> RetireAsync(StepContext ctx, CancellationToken ct)
    {
        var r = new PayloadReader(ctx.Request.Payload.Span);
        string keyId = r.String("keyId");
        int oldVersion = (int)r.U32("oldVersion");
        uint stillMember = r.U32("stillMember");
        r.End();
        bool erased = await state.Store.Keys.DestroyMaterialAsync(keyId, oldVersion, ct).ConfigureAwait(false);
        if (stillMember == 0)
        {
            // Resharing moved the key away from this node: nothing of it may remain usable here.
            KeyRecord? record = await state.Store.Keys.GetAsync(keyId, ct).ConfigureAwait(false);
            if (record is not null)
            {
                await state.Store.Keys.DestroyMaterialAsync(keyId, record.Version, ct).ConfigureAwait(false);
                await state.Store.Keys.SetStateAsync(keyId, KeyState.Destroyed, ct).ConfigureAwait(false);
            }
        }

        state.Evict(keyId);
        await state.Store.Audit.AppendAsync(new AuditEntryInput("coordinator", "frost.retire", keyId,
            SHA256.HashData(ctx.Request.Payload.Span), "allow", erased ? $"version {oldVersion} erased" : "nothing to erase"), ct).ConfigureAwait(false);
        Forget(ctx.SessionId);
        return [new OutgoingMessage(FrostMessages.DkgRetired, 5, [0], [])];
    }

    private RunState Get(byte[] sessionId)
        => _runs.TryGetValue(Convert.ToHexStringLower(sessionId), out RunState? run) ? run : throw new ProtocolException("unknown DKG session (never started here, finished, or expired)");

    private void Forget(byte[] sessionId)
    {
        if (_runs.TryRemove(Convert.ToHexStringLower(sessionId), out RunState? run))
        {
            run.Dispose();
        }
    }

    private void Sweep()
    {
        DateTimeOffset cutoff = DateTimeOffset.UtcNow - SessionLifetime;
        foreach (KeyValuePair<string, RunState> kv in _runs)
        {
            if (kv.Value.Started < cutoff && _runs.TryRemove(kv.Key, out RunState? old))
            {
                old.Dispose();
            }
        }
    }

    private static Identifier[] Ids(FrostCiphersuite suite, uint[] nodes) => [.. nodes.Select(n => Identifier.FromInt(suite, (int)n))];


    private sealed class RunState(DkgRunKind kind, string keyId, DkgSession session, int version, DateTimeOffset started) : IDisposable
    {
        public DkgRunKind Kind { get; } = kind;

        public string KeyId { get; } = keyId;

        public DkgSession Session { get; } = session;

        public int Version { get; } = version;

        public DateTimeOffset Started { get; } = started;

        public DkgRound1Secret? Round1;

        public DkgRound2Secret? Round2;

        public DkgPendingKey? Pending;

        public void Dispose()
        {
            Round1?.Dispose();
            Round2?.Dispose();
            Pending?.Dispose();
        }
    }
}
