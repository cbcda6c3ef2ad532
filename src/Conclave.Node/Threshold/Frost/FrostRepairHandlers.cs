using System.Collections.Concurrent;
using System.Security.Cryptography;
using Conclave.Crypto;
using Conclave.Crypto.Aead;
using Conclave.Crypto.Memory;
using Conclave.Node.Config;
using Conclave.Node.Protocol;
using Conclave.Node.Threshold.Engine;
using Conclave.Storage;
using Conclave.Storage.Audit;
using Conclave.Storage.Keys;
using Conclave.Storage.Rotation;
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
/// A repair is a rotation run (docs/ROTATION.md): the session id is the run id; a helper refuses it while it has an
/// unfinished run of the key; the lost node records the run durably before it stores anything, stores the rebuilt share
/// as a <b>pending</b> key at the current version, and makes it current only on the run's commit (RotationHandlers; an
/// abort discards it). Each helper signs a public contribution and the lost node a public confirmation with a proof of
/// knowledge of its share (<see cref="RepairEvidence"/>, <see cref="Repair.ProveRepaired"/>) for the run's transcript.
/// Start payload (to helpers): keyId, lost node, helpers, version. Finish payload (to the lost node): keyId, scheme,
/// helpers, version, public key package.
/// </summary>
public sealed class FrostRepairHandlers(FrostNodeState state, ClusterManifest manifest) : IProtocolHandler
{
    /// <summary>A helper's step-one state older than this belongs to a run its coordinator abandoned (it is dropped).</summary>
    private static readonly TimeSpan SessionLifetime = TimeSpan.FromMinutes(5);
    private readonly ConcurrentDictionary<string, HelperRun> _runs = new(StringComparer.Ordinal);

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

    /// <summary>Forgets a helper's step-one state (the run was aborted or abandoned); its secret δ piece is zeroed.</summary>
    internal void Drop(string runId)
    {
        if (_runs.TryRemove(runId, out HelperRun? run))
        {
            run.Own.Dispose();
        }
    }

    private async Task<IReadOnlyList<OutgoingMessage>> StartAsync(StepContext ctx, CancellationToken ct)
    {
        var r = new PayloadReader(ctx.Request.Payload.Span);
        string keyId = r.String("keyId");
        uint lost = r.U32("lost");
        uint[] helpers = r.NodeIds("helpers");
        int version = (int)r.U32("version");
        r.End();
        if (!helpers.Contains(state.NodeId) || helpers.Contains(lost))
        {
            throw new ProtocolException($"node {state.NodeId} is not a helper of this repair, or the lost node helps");
        }

        foreach (string id in _runs.Where(kv => DateTimeOffset.UtcNow - kv.Value.Started > SessionLifetime).Select(kv => kv.Key).ToList())
        {
            Drop(id);
        }

        if (_runs.Values.Any(run => run.KeyId == keyId))
        {
            throw new ProtocolException($"node {state.NodeId} is already helping a repair of key {keyId}");
        }

        // One run per key on this node too: a run of the key it recorded and that is still live refuses the repair
        // (committed, unretired); one left over from an aborted run is discarded, as when a DKG run starts.
        await NodeRuns.DiscardStaleRunAsync(state.Store, state.NodeId, keyId, ct).ConfigureAwait(false);
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

        if (own is null)
        {
            throw new ProtocolException("no piece for this helper");
        }

        if (!_runs.TryAdd(Convert.ToHexStringLower(ctx.SessionId), new HelperRun(keyId, version, key, ids, helpers, lostId, own, DateTimeOffset.UtcNow)))
        {
            own.Dispose();
            throw new ProtocolException("this session already started");
        }

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
            byte[] sealedSigma = HandlerSupport.SealTo(ctx, manifest, lost, FrostMessages.RepairContext(ctx.SessionId, state.NodeId, lost), s.ReadOnlySpan);
            byte[] contribution = RepairEvidence.WriteContribution(new RepairContribution(run.KeyId, run.Version, lost, run.HelperNodes,
                RepairEvidence.PackageHash(run.Key.PublicKeyPackage.ToBytes()), SHA256.HashData(sealedSigma)));
            return
            [
                new OutgoingMessage(FrostMessages.RepairSigmaShare, 2, [lost], sealedSigma),
                new OutgoingMessage(FrostMessages.RepairContributed, 2, [], contribution),
            ];
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

        string runId = Convert.ToHexStringLower(ctx.SessionId);
        if (await state.Store.Rotations.GetAsync(runId, ct).ConfigureAwait(false) is not null)
        {
            throw new ProtocolException("this session already started");
        }

        // A pending key left by a repair run that was aborted while this node was unreachable is discarded first.
        await NodeRuns.DiscardStaleRunAsync(state.Store, state.NodeId, keyId, ct).ConfigureAwait(false);
        if (await state.Store.Keys.GetAsync(keyId, ct).ConfigureAwait(false) is not null)
        {
            throw new ProtocolException($"node {state.NodeId} still holds key {keyId}; repair is for a lost share");
        }

        var pkp = PublicKeyPackage.FromBytes(suite, pkpBytes);
        Identifier self = Identifier.FromInt(suite, (int)state.NodeId);
        Identifier[] ids = [.. helpers.Select(h => Identifier.FromInt(suite, (int)h))];
        var sigmas = new List<RepairMessage>();
        var sealedHashes = new Dictionary<uint, byte[]>();
        try
        {
            foreach (Rpc.Envelope e in ctx.Relayed)
            {
                if (e.Kind != FrostMessages.RepairSigmaShare)
                {
                    throw new ProtocolException($"expected σ values, got '{e.Kind}' from {e.Sender}", e.Sender);
                }

                byte[] sealedSigma = e.Payload.ToByteArray();
                using SecretBuffer plain = HandlerSupport.OpenFrom(ctx, manifest, e.Sender, FrostMessages.RepairContext(ctx.SessionId, e.Sender, state.NodeId), sealedSigma, "repair message");
                sigmas.Add(RepairMessage.Import(suite, plain.ReadOnlySpan));
                sealedHashes[e.Sender] = SHA256.HashData(sealedSigma);
            }

            using KeyPackage rebuilt = Repair.Step3(pkp, ids, self, sigmas);
            using SecretBuffer material = rebuilt.Export();

            // The run is recorded before anything is stored, and the share is stored as a pending key: it signs only once
            // the coordinator commits this run (an abort, or recovery of an unfinished run, discards it).
            await NodeRuns.BeginAsync(state.Store, state.NodeId, runId, keyId, DkgRunKind.Repair, version, scheme, helpers, [state.NodeId], [], ct).ConfigureAwait(false);
            await state.Store.Keys.CreateAsync(
                new NewKey(keyId, keyId, scheme, pkp.VerificationKey, pkp.Threshold, pkp.ParticipantCount) { InitialVersion = version, InitialState = KeyState.Pending },
                material, ct).ConfigureAwait(false);
            await state.Store.Rotations.TransitionAsync(runId, RotationState.Started, RotationState.Prepared, pkpBytes, cancellationToken: ct).ConfigureAwait(false);
            await state.Store.Audit.AppendAsync(new AuditEntryInput("coordinator", "frost.repair.prepared", keyId,
                SHA256.HashData(ctx.Request.Payload.Span), "allow", $"run {runId} version {version} pending"), ct).ConfigureAwait(false);
            byte[] proof = Repair.ProveRepaired(rebuilt, ctx.SessionId);
            byte[] done = RepairEvidence.WriteConfirmation(new RepairConfirmation(keyId, version, RepairEvidence.PackageHash(pkpBytes), proof, sealedHashes));
            return [new OutgoingMessage(FrostMessages.RepairDone, 3, [0], done)];
        }
        finally
        {
            foreach (RepairMessage m in sigmas)
            {
                m.Dispose();
            }
        }
    }

    /// <summary>A helper's state between step one and step two (its own δ piece is secret and consumed by step two).</summary>
    private sealed record HelperRun(string KeyId, int Version, KeyPackage Key, Identifier[] Helpers, uint[] HelperNodes, Identifier Lost, RepairMessage Own, DateTimeOffset Started);
}
