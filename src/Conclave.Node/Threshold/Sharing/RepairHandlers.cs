using System.Security.Cryptography;
using Conclave.Crypto.Memory;
using Conclave.Node.Config;
using Conclave.Node.Frost;
using Conclave.Node.Protocol;
using Conclave.Node.Threshold.Engine;
using Conclave.Storage;
using Conclave.Storage.Audit;
using Conclave.Storage.Keys;
using Conclave.Storage.Rotation;
using Conclave.Threshold;
using Conclave.Threshold.Frost;
using Conclave.Threshold.Frost.Ciphersuites;

namespace Conclave.Node.Threshold.Sharing;

/// <summary>
/// Share repair over the cluster (Conclave.Threshold <see cref="Repair"/>: Laing–Stinson repairable threshold
/// scheme), for FROST keys and for ecdsa-dkls23 keys through <see cref="IDkgFollowUp"/> (the server's RepairRounds; message
/// kinds <c>frost.repair.*</c>): t helpers rebuild the share of a node that lost its store, without revealing their own shares.
/// Every helper and the lost node first announce a per-run ephemeral agreement key (<see cref="RunAgreementKey"/>,
/// signed by their identity keys, bound to the session, the key and the node); every δ piece and σ value then travels
/// sealed between run keys, and each node erases its run key once it has sealed and opened what it must (a helper after
/// σ, the lost node after rebuilding), so recorded repair traffic stays closed to whoever later takes a node's
/// long-term keys and KEK. The rebuilt share is checked against the lost participant's verifying share before it is
/// stored.
/// A repair is a rotation run (docs/ROTATION.md): the session id is the run id; a helper refuses it while it has an
/// unfinished run of the key; the lost node records the run durably before it stores anything, stores the rebuilt share
/// as a <b>pending</b> key at the current version, and makes it current only on the run's commit (RotationHandlers; an
/// abort discards it). Each helper signs a public contribution and the lost node a public confirmation with a proof of
/// knowledge of its share (<see cref="RepairEvidence"/>, <see cref="Repair.ProveRepaired"/>) for the run's transcript.
/// Agreement payload (to helpers and the lost node): keyId, lost node, helpers. Start payload (to helpers): keyId, lost
/// node, helpers, version. Finish payload (to the lost node): keyId, scheme, helpers, version, public key package.
/// A key of a protocol whose shares are FROST secp256k1 shares with rounds of their own after the repair
/// (<see cref="IDkgFollowUp"/>: DKLs23, docs/DKLS23.md "Repair") is repaired by the same steps; then the helpers (every
/// other holder) and the lost node record the run (receivers: all of them) and hand their share and run agreement key to
/// that protocol instead of erasing the key or storing the share: its pairwise setup stores what each node keeps.
/// </summary>
public sealed class RepairHandlers(FrostNodeState state, ClusterManifest manifest, IReadOnlyList<IDkgFollowUp>? followUps = null) : IProtocolHandler
{
    private static readonly TimeSpan SessionLifetime = TimeSpan.FromMinutes(5);
    private readonly SessionTable<RepairRun> _runs = new(SessionLifetime);
    private readonly IReadOnlyList<IDkgFollowUp> _followUps = followUps ?? [];

    public IReadOnlyCollection<string> Kinds { get; } = [FrostMessages.RepairAgreement, FrostMessages.RepairStart, FrostMessages.RepairSigma, FrostMessages.RepairFinish];

    public async ValueTask<IReadOnlyList<OutgoingMessage>> HandleAsync(StepContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        _runs.Sweep();
        return await HandlerSupport.RefuseOnFailure<IReadOnlyList<OutgoingMessage>>(async () => context.Request.Kind switch
        {
            FrostMessages.RepairAgreement => await AgreementAsync(context, cancellationToken).ConfigureAwait(false),
            FrostMessages.RepairStart => await StartAsync(context, cancellationToken).ConfigureAwait(false),
            FrostMessages.RepairSigma => await SigmaAsync(context, cancellationToken).ConfigureAwait(false),
            FrostMessages.RepairFinish => await FinishAsync(context, cancellationToken).ConfigureAwait(false),
            _ => throw new ProtocolException($"unknown kind {context.Request.Kind}"),
        }, () => _runs.Drop(SessionTable<RepairRun>.RunId(context.SessionId))).ConfigureAwait(false);
    }

    /// <summary>The protocol whose rounds follow a repair of a key of <paramref name="scheme"/> (null: a FROST key).</summary>
    private IDkgFollowUp? FollowUpFor(string scheme)
    {
        foreach (IDkgFollowUp f in _followUps)
        {
            if (f.Handles(scheme))
            {
                return f;
            }
        }

        return null;
    }

    /// <summary>Forgets a run's state (the run was aborted or abandoned): its run key and secret δ piece are zeroed.</summary>
    internal void Drop(string runId) => _runs.Drop(runId);

    /// <summary>First step, on every helper and the lost node: a fresh run agreement key, announced signed.</summary>
    private async Task<IReadOnlyList<OutgoingMessage>> AgreementAsync(StepContext ctx, CancellationToken ct)
    {
        var r = new PayloadReader(ctx.Request.Payload.Span);
        string keyId = r.String("keyId");
        uint lost = r.U32("lost");
        uint[] helpers = r.NodeIds("helpers");
        r.End();
        if (helpers.Contains(lost) || helpers.Distinct().Count() != helpers.Length)
        {
            throw new ProtocolException("the helpers of a repair must be distinct and exclude the lost node");
        }

        if (state.NodeId != lost && !helpers.Contains(state.NodeId))
        {
            throw new ProtocolException($"node {state.NodeId} is not a participant of this repair");
        }

        if (_runs.Values.Any(other => string.Equals(other.KeyId, keyId, StringComparison.Ordinal)))
        {
            throw new ProtocolException($"node {state.NodeId} is already taking part in a repair of key {keyId}");
        }

        // One run per key on this node too: a run of the key it recorded and that is still live refuses the repair
        // (committed, unretired); one left over from an aborted run (a pending key on the lost node, for example) is
        // discarded first, as when a DKG run starts.
        await NodeRuns.DiscardStaleRunAsync(state.Store, state.NodeId, keyId, ct).ConfigureAwait(false);
        if (state.NodeId == lost && await state.Store.Keys.GetAsync(keyId, ct).ConfigureAwait(false) is not null)
        {
            throw new ProtocolException($"node {state.NodeId} still holds key {keyId}; repair is for a lost share");
        }

        var run = new RepairRun(keyId, lost, helpers, RunAgreementKey.Generate(ctx.Identity, ctx.SessionId, keyId));
        if (!_runs.TryAdd(SessionTable<RepairRun>.RunId(ctx.SessionId), run))
        {
            run.Dispose();
            throw new ProtocolException("this repair session already started");
        }

        return [new OutgoingMessage(FrostMessages.RepairAgreementKey, 1, [], run.Agreement!.Announcement)];
    }

    private async Task<IReadOnlyList<OutgoingMessage>> StartAsync(StepContext ctx, CancellationToken ct)
    {
        RepairRun run = _runs.Get(ctx.SessionId);
        var r = new PayloadReader(ctx.Request.Payload.Span);
        string keyId = r.String("keyId");
        uint lost = r.U32("lost");
        uint[] helpers = r.NodeIds("helpers");
        int version = (int)r.U32("version");
        r.End();
        if (!string.Equals(keyId, run.KeyId, StringComparison.Ordinal) || lost != run.LostNode || !helpers.SequenceEqual(run.HelperNodes) || !run.HelperNodes.Contains(state.NodeId))
        {
            throw new ProtocolException("the repair start does not match the repair this node agreed to");
        }

        // Every other helper's and the lost node's run key, each signed and bound to this session, key and node.
        run.PeerKeys = ReadAnnouncements(ctx, run, [.. helpers.Where(h => h != state.NodeId), lost]);

        // A key of a follow-up protocol (DKLs23) gives its share as a FROST key package this run owns.
        KeyRecord? record = await state.Store.Keys.GetAsync(keyId, ct).ConfigureAwait(false);
        IDkgFollowUp? followUp = record is null ? null : FollowUpFor(record.Scheme);
        KeyPackage key;
        // A FROST key's share is held open until this step ends: a rotation step evicting it meanwhile cannot erase it under Step1.
        using KeyVersions<KeyPackage>.ShareLease? lease = followUp is null || record is null
            ? await state.LeaseKeyAtVersionAsync(keyId, version, ct).ConfigureAwait(false)
            : null;
        if (followUp is not null && record is not null)
        {
            key = await followUp.CurrentShareAsync(keyId, version, ct).ConfigureAwait(false);
            run.Key = key;
            run.OwnsKey = true;
            run.FollowUp = followUp;
            run.Scheme = record.Scheme;
        }
        else
        {
            key = lease!.Share; // leased just above whenever there is no follow-up protocol
        }

        FrostCiphersuite suite = key.Suite;
        Identifier[] ids = [.. helpers.Select(h => Identifier.FromInt(suite, (int)h))];
        Identifier lostId = Identifier.FromInt(suite, (int)lost);
        IReadOnlyList<RepairMessage> pieces = Repair.Step1(key, ids, lostId);
        var outgoing = new List<OutgoingMessage>();
        RepairMessage? own = null;
        try
        {
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
                    outgoing.Add(new OutgoingMessage(FrostMessages.RepairDelta, 2, [to],
                        HandlerSupport.SealTo(run.RequireAgreement(), run.PeerKey(to), FrostMessages.RepairContext(ctx.SessionId, state.NodeId, to), plain.ReadOnlySpan)));
                }
            }
        }
        catch
        {
            foreach (RepairMessage p in pieces)
            {
                p.Dispose();
            }

            throw;
        }

        run.Key = key;
        run.Version = version;
        run.Helpers = ids;
        run.Lost = lostId;
        run.Own = own ?? throw new ProtocolException("no piece for this helper");
        return outgoing;
    }

    private async Task<IReadOnlyList<OutgoingMessage>> SigmaAsync(StepContext ctx, CancellationToken ct)
    {
        RepairRun run = _runs.Get(ctx.SessionId);
        RepairMessage own = Interlocked.Exchange(ref run.Own, null) ?? throw new ProtocolException("this helper has no δ piece of its own for the session");
        KeyPackage key = run.Key ?? throw new ProtocolException("this helper did not start the repair");
        var received = new List<RepairMessage> { own };
        try
        {
            foreach (Rpc.Envelope e in ctx.Relayed)
            {
                if (e.Kind != FrostMessages.RepairDelta)
                {
                    throw new ProtocolException($"expected δ pieces, got '{e.Kind}' from {e.Sender}", e.Sender);
                }

                using SecretBuffer plain = HandlerSupport.OpenFrom(run.RequireAgreement(), run.PeerKey(e.Sender), e.Sender,
                    FrostMessages.RepairContext(ctx.SessionId, e.Sender, state.NodeId), e.Payload.ToByteArray(), "repair message");
                received.Add(RepairMessage.Import(key.Suite, plain.ReadOnlySpan));
            }

            using RepairMessage sigma = Repair.Step2(key, run.Helpers!, run.Lost!, received);
            uint lost = FrostNodeIds.ToNode(run.Lost!);
            using SecretBuffer s = sigma.Export();
            byte[] sealedSigma = HandlerSupport.SealTo(run.RequireAgreement(), run.PeerKey(lost), FrostMessages.RepairContext(ctx.SessionId, state.NodeId, lost), s.ReadOnlySpan);
            byte[] contribution = RepairEvidence.WriteContribution(new RepairContribution(run.KeyId, run.Version, lost, run.HelperNodes,
                RepairEvidence.PackageHash(key.PublicKeyPackage.ToBytes()), SHA256.HashData(sealedSigma)));
            if (run.FollowUp is { } next)
            {
                // The follow-up protocol's rounds come next on every holder: the run is recorded before σ leaves (receivers:
                // the helpers and the lost node, who all store something), and the share and run key go to that protocol.
                string runId = SessionTable<RepairRun>.RunId(ctx.SessionId);
                await NodeRuns.BeginAsync(state.Store, state.NodeId, runId, run.KeyId, DkgRunKind.Repair, run.Version, run.Scheme!, run.HelperNodes,
                    [.. run.HelperNodes.Append(lost).Order()], [], ct).ConfigureAwait(false);
                KeyPackage share = Interlocked.Exchange(ref run.Key, null) ?? throw new ProtocolException("this helper did not start the repair");
                run.OwnsKey = false;
                RunAgreementKey agreement = Interlocked.Exchange(ref run.Agreement, null) ?? throw new ProtocolException("this node's run agreement key for the repair is erased");
                next.Hold(runId, run.KeyId, DkgRunKind.Repair, run.Version, run.Version, share, agreement, run.PeerKeys!, rejoining: false); // owns both from here
            }

            return
            [
                new OutgoingMessage(FrostMessages.RepairSigmaShare, 3, [lost], sealedSigma),
                new OutgoingMessage(FrostMessages.RepairContributed, 3, [], contribution),
            ];
        }
        finally
        {
            foreach (RepairMessage m in received)
            {
                m.Dispose();
            }

            // The helper's part is over: its run key and round state are erased.
            _runs.Drop(SessionTable<RepairRun>.RunId(ctx.SessionId));
        }
    }

    private async Task<IReadOnlyList<OutgoingMessage>> FinishAsync(StepContext ctx, CancellationToken ct)
    {
        RepairRun run = _runs.Get(ctx.SessionId);
        var r = new PayloadReader(ctx.Request.Payload.Span);
        string keyId = r.String("keyId");
        string scheme = r.String("scheme");
        uint[] helpers = r.NodeIds("helpers");
        int version = (int)r.U32("version");
        byte[] pkpBytes = r.Bytes("publicKeyPackage").ToArray();
        r.End();
        if (!string.Equals(keyId, run.KeyId, StringComparison.Ordinal) || state.NodeId != run.LostNode || !helpers.SequenceEqual(run.HelperNodes))
        {
            throw new ProtocolException("the repair finish does not match the repair this node agreed to");
        }

        IDkgFollowUp? followUp = FollowUpFor(scheme);
        FrostCiphersuite? suite = followUp?.Suite;
        if (suite is null && !FrostCiphersuite.TryGet(scheme, out suite))
        {
            throw new ProtocolException($"unknown FROST scheme {scheme}");
        }

        string runId = SessionTable<RepairRun>.RunId(ctx.SessionId);
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
            // The helpers' run keys travel with their σ values (the lost node took no part in step one).
            run.PeerKeys = ReadAnnouncements(ctx, run, helpers);
            foreach (Rpc.Envelope e in ctx.Relayed)
            {
                if (e.Kind == FrostMessages.RepairAgreementKey)
                {
                    continue;
                }

                if (e.Kind != FrostMessages.RepairSigmaShare)
                {
                    throw new ProtocolException($"expected σ values, got '{e.Kind}' from {e.Sender}", e.Sender);
                }

                byte[] sealedSigma = e.Payload.ToByteArray();
                using SecretBuffer plain = HandlerSupport.OpenFrom(run.RequireAgreement(), run.PeerKey(e.Sender), e.Sender,
                    FrostMessages.RepairContext(ctx.SessionId, e.Sender, state.NodeId), sealedSigma, "repair message");
                sigmas.Add(RepairMessage.Import(suite, plain.ReadOnlySpan));
                sealedHashes[e.Sender] = SHA256.HashData(sealedSigma);
            }

            if (followUp is not null)
            {
                // The follow-up protocol's pairwise setup is sealed between the same run keys: this node keeps its own.
                await NodeRuns.BeginAsync(state.Store, state.NodeId, runId, keyId, DkgRunKind.Repair, version, scheme, helpers,
                    [.. helpers.Append(state.NodeId).Order()], [], ct).ConfigureAwait(false);
                KeyPackage repaired = Repair.Step3(pkp, ids, self, sigmas);
                byte[] repairedProof;
                try
                {
                    repairedProof = Repair.ProveRepaired(repaired, ctx.SessionId);
                }
                catch
                {
                    repaired.Dispose();
                    throw;
                }

                RunAgreementKey agreement = Interlocked.Exchange(ref run.Agreement, null) ?? throw new ProtocolException("this node's run agreement key for the repair is erased");
                followUp.Hold(runId, keyId, DkgRunKind.Repair, version, version, repaired, agreement, run.PeerKeys!, rejoining: false); // owns both from here
                return [new OutgoingMessage(FrostMessages.RepairDone, 4, [0],
                    RepairEvidence.WriteConfirmation(new RepairConfirmation(keyId, version, RepairEvidence.PackageHash(pkpBytes), repairedProof, sealedHashes)))];
            }

            // Every σ is opened: the run key is erased before the share is rebuilt and stored.
            run.EraseAgreementKey();
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
            return [new OutgoingMessage(FrostMessages.RepairDone, 4, [0], done)];
        }
        finally
        {
            foreach (RepairMessage m in sigmas)
            {
                m.Dispose();
            }

            _runs.Drop(SessionTable<RepairRun>.RunId(ctx.SessionId));
        }
    }

    /// <summary>
    /// Reads the relayed run-key announcements: exactly one from each of <paramref name="expected"/>, each verified
    /// (<see cref="RunAgreementKey.VerifyAnnouncement"/>); anything else is refused.
    /// </summary>
    private Dictionary<uint, byte[]> ReadAnnouncements(StepContext ctx, RepairRun run, IReadOnlyCollection<uint> expected)
    {
        var keys = new Dictionary<uint, byte[]>();
        foreach (Rpc.Envelope e in ctx.Relayed.Where(e => e.Kind == FrostMessages.RepairAgreementKey))
        {
            if (!expected.Contains(e.Sender))
            {
                throw new ProtocolException($"a run agreement key of node {e.Sender}, not a participant of this repair, was relayed: refused, nobody named");
            }

            if (!keys.TryAdd(e.Sender, RunAgreementKey.VerifyAnnouncement(e.Payload.Span, manifest, e.Sender, ctx.SessionId, run.KeyId)))
            {
                // A node keeps no durable record of a repair's agreement step, so one restarted (or whose run was dropped)
                // and asked again for the same session signs a second key: two announcements do not prove the node at
                // fault, and nobody is named. The coordinator names a node whose own reply held more than one.
                throw new ProtocolException($"two run agreement keys were relayed for node {e.Sender} in one session: refused, nobody named (the node or the coordinator)");
            }
        }

        foreach (uint n in expected)
        {
            if (!keys.ContainsKey(n))
            {
                throw new ProtocolException($"no run agreement key of node {n} was relayed: refused, nobody named");
            }
        }

        return keys;
    }

    private sealed class RepairRun(string keyId, uint lost, uint[] helpers, RunAgreementKey agreement) : IDisposable
    {
        public string KeyId { get; } = keyId;

        public uint LostNode { get; } = lost;

        public uint[] HelperNodes { get; } = helpers;

        public RunAgreementKey? Agreement = agreement;

        public IReadOnlyDictionary<uint, byte[]>? PeerKeys;

        /// <summary>The helper's key package: from the node's cache (not disposed here) unless <see cref="OwnsKey"/>.</summary>
        public KeyPackage? Key;

        /// <summary>True when <see cref="Key"/> is this run's own (a follow-up protocol's share as a FROST key package).</summary>
        public bool OwnsKey;

        /// <summary>The protocol that continues after the repair (DKLs23), and its scheme; null for a FROST key.</summary>
        public IDkgFollowUp? FollowUp;

        public string? Scheme;

        /// <summary>The key version the helper repairs (set at the start step).</summary>
        public int Version;

        public Identifier[]? Helpers;

        public Identifier? Lost;

        public RepairMessage? Own;

        public RunAgreementKey RequireAgreement() => Agreement ?? throw new ProtocolException("this node's run agreement key for the repair is erased");

        public byte[] PeerKey(uint node) =>
            PeerKeys is not null && PeerKeys.TryGetValue(node, out byte[]? k) ? k
                : throw new ProtocolException($"node {node} has no run agreement key in this repair", node);

        public void EraseAgreementKey() => Interlocked.Exchange(ref Agreement, null)?.Dispose();

        public void Dispose()
        {
            EraseAgreementKey();
            Interlocked.Exchange(ref Own, null)?.Dispose();
            if (OwnsKey)
            {
                Interlocked.Exchange(ref Key, null)?.Dispose();
            }
        }
    }
}
