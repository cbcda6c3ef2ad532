using System.Security.Cryptography;
using Conclave.Crypto.Memory;
using Conclave.Node.Config;
using Conclave.Node.Protocol;
using Conclave.Node.Threshold.Engine;
using Conclave.Node.Threshold.Sharing;
using Conclave.Storage.Audit;
using Conclave.Storage.Keys;
using Conclave.Storage.Rotation;
using Conclave.Threshold.Dkls23;
using Conclave.Threshold.Frost;
using Conclave.Threshold.Frost.Ciphersuites;

namespace Conclave.Node.Threshold.Dkls23;

/// <summary>
/// DKLs23 key generation on a node, after the FROST DKG of the same run (<see cref="IDkgFollowUp"/>: the DKG handlers
/// hand over the completed secp256k1 share instead of storing it): the pairwise setup of DKLs23 section 3 in both
/// directions with every peer (<see cref="DklsSetup"/>: base OTs, OT-extension seeds, zero-share seeds by commit then
/// open, and a comparison of the public key package digests), each message sealed to its peer between the run agreement
/// keys the run's DKG announced and verified (ephemeral X25519, erased once the setup's last message to this node is
/// opened: a recorded setup does not open with the node's long-term keys). For key generation the run id is the key's DKG
/// session id; a refresh or reshare (the DKG re-shared the old key) keeps the key's DKG session id and moves to the next
/// epoch. The setup runs under its own session id derived from the run id. At the finish step the key
/// share and its pairwise state are stored pending under the node KEK (<see cref="DklsKeyShare.Export"/>) and the run is
/// recorded Prepared with the public key as its result, before that result leaves the node; commit and retire are the
/// engine's (<see cref="RotationHandlers"/>). After a repair (the FROST repair steps hand over the rebuilt share on the
/// repaired node and the current share on every other holder) the setup runs at the key's own epoch: the repaired node
/// stores a pending key, every other holder stages its new key share as a replacement of the same version.
/// </summary>
public sealed class DklsSetupHandlers(DklsNodeState state) : IProtocolHandler, IDkgFollowUp
{
    private static readonly TimeSpan SessionLifetime = TimeSpan.FromMinutes(5);
    private readonly SessionTable<SetupRun> _runs = new(SessionLifetime);

    public IReadOnlyCollection<string> Kinds { get; } = [DklsMessages.SetupStart, DklsMessages.SetupRound2, DklsMessages.SetupFinish];

    /// <summary>A relayed message of another session, for other nodes, replayed or stale is dropped, not the step (docs/DKLS23.md "Stray relayed messages").</summary>
    public StrayRelayed StrayRelayed => StrayRelayed.Drop;

    public bool Handles(string scheme) => scheme == DklsScheme.Name;

    public FrostCiphersuite Suite => DklsTransport.Suite;

    public void Hold(string runId, string keyId, DkgRunKind kind, int fromVersion, int toVersion, KeyPackage share, RunAgreementKey agreement, IReadOnlyDictionary<uint, byte[]> peerKeys,
        bool rejoining)
    {
        ArgumentNullException.ThrowIfNull(share);
        ArgumentNullException.ThrowIfNull(agreement);
        ArgumentNullException.ThrowIfNull(peerKeys);
        _runs.Sweep();
        var run = new SetupRun(keyId, kind, fromVersion, toVersion, peerKeys) { Share = share, Agreement = agreement, Rejoining = rejoining };
        if (!_runs.TryAdd(runId, run))
        {
            run.Dispose();
            throw new ProtocolException("this run already holds a share");
        }
    }

    public async Task<KeyPackage> CurrentShareAsync(string keyId, int version, CancellationToken ct)
    {
        using KeyVersions<DklsKeyShare>.ShareLease lease = await state.Shares.LeaseAtVersionAsync(keyId, version, ct).ConfigureAwait(false);
        return lease.Share.ToFrostKeyPackage();
    }

    /// <summary>Forgets a run's in-memory state (abort, commit).</summary>
    internal void Drop(string runId) => _runs.Drop(runId);

    public async ValueTask<IReadOnlyList<OutgoingMessage>> HandleAsync(StepContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        _runs.Sweep();
        return await DklsTransport.Refuse<IReadOnlyList<OutgoingMessage>>(async () => context.Request.Kind switch
        {
            DklsMessages.SetupStart => await StartAsync(context, cancellationToken).ConfigureAwait(false),
            DklsMessages.SetupRound2 => Round2(context),
            DklsMessages.SetupFinish => await FinishAsync(context, cancellationToken).ConfigureAwait(false),
            _ => throw new ProtocolException($"unknown kind {context.Request.Kind}"),
        }, () => _runs.Drop(SessionTable<SetupRun>.RunId(context.SessionId))).ConfigureAwait(false);
    }

    /// <summary>
    /// Setup round one. Key generation: the payload is the key id, and the key's DKG session id is this run's. Refresh
    /// and reshare (the FROST DKG of the run re-shared the old key: zero-constant-term polynomials for a refresh, λ_i·p(i)
    /// dealt to the new committee for a reshare): the payload also names the key's DKG session id and its epoch before
    /// the run, and the new key share is at the next epoch, so presignatures of the old pairwise state are refused
    /// (DklsSigner.Sign). A node that holds the old version checks both against its own share.
    /// </summary>
    private async Task<List<OutgoingMessage>> StartAsync(StepContext ctx, CancellationToken ct)
    {
        SetupRun run = _runs.Get(ctx.SessionId);
        (string keyId, byte[] dkgSessionId, uint oldEpoch) = ReadStart(ctx, run.Kind);
        uint epoch = 0;
        if (run.Kind != DkgRunKind.KeyGeneration)
        {
            // A repair keeps the key as it is (same shares, same epoch); only the pairwise state is new.
            epoch = run.Kind == DkgRunKind.Repair ? oldEpoch : checked(oldEpoch + 1);
            KeyRecord? record = await state.Store.Keys.GetAsync(keyId, ct).ConfigureAwait(false);
            if (record is { State: KeyState.Active } && record.Version == run.FromVersion)
            {
                using KeyVersions<DklsKeyShare>.ShareLease oldLease = await state.Shares.LeaseAtVersionAsync(keyId, run.FromVersion, ct).ConfigureAwait(false);
                DklsKeyShare old = oldLease.Share;
                if (old.Public.Epoch != oldEpoch || !old.Public.DkgSessionId.AsSpan().SequenceEqual(dkgSessionId))
                {
                    throw new ProtocolException($"the coordinator names another DKG session or epoch than node {state.NodeId}'s share of key {keyId} at version {run.FromVersion}");
                }
            }
        }

        if (run.KeyId != keyId)
        {
            throw new ProtocolException($"run {SessionTable<SetupRun>.RunId(ctx.SessionId)} is of another key");
        }

        using KeyPackage share = Interlocked.Exchange(ref run.Share, null) ?? throw new ProtocolException("the pairwise setup of this run already started");
        (DklsSetupState setup, IReadOnlyList<DklsMessage> messages) = DklsSetup.Start(share, dkgSessionId, DklsMessages.SetupSessionId(ctx.SessionId), null, epoch);
        run.Setup = setup;
        if (state.Faults?.SetupRound1 is { } edit1)
        {
            messages = [.. messages.Select(edit1)]; // testing only (DklsFaults)
        }

        return DklsTransport.SealToRun(ctx, run.AgreementKey, run.PeerKeys, state.NodeId, DklsMessages.SetupMessage, 1, messages);
    }

    /// <summary>The start payload: key id, and for a refresh or reshare the key's DKG session id and its epoch before the run.</summary>
    private static (string KeyId, byte[] DkgSessionId, uint Epoch) ReadStart(StepContext ctx, DkgRunKind kind)
    {
        var r = new PayloadReader(ctx.Request.Payload.Span);
        string keyId = r.String("keyId");
        byte[] dkgSessionId = ctx.SessionId;
        uint epoch = 0;
        if (kind != DkgRunKind.KeyGeneration)
        {
            dkgSessionId = r.Bytes("dkgSessionId", 64).ToArray();
            epoch = r.U32("epoch");
        }

        r.End();
        return (keyId, dkgSessionId, epoch);
    }

    private List<OutgoingMessage> Round2(StepContext ctx)
    {
        SetupRun run = _runs.Get(ctx.SessionId);
        DklsSetupState setup = run.Setup ?? throw new ProtocolException("this node has no pairwise setup state for the session");
        if (Interlocked.Exchange(ref run.Round2Done, 1) != 0)
        {
            throw new ProtocolException("setup round two was already computed");
        }

        List<DklsMessage> incoming = DklsTransport.OpenFromRun(ctx, run.AgreementKey, run.PeerKeys, state.NodeId, DklsMessages.SetupMessage, 1);
        IReadOnlyList<DklsMessage> messages = DklsSetup.Round2(setup, incoming);
        if (state.Faults?.SetupRound2 is { } edit2)
        {
            messages = [.. messages.Select(edit2)]; // testing only (DklsFaults)
        }
        return DklsTransport.SealToRun(ctx, run.AgreementKey, run.PeerKeys, state.NodeId, DklsMessages.SetupMessage, 2, messages);
    }

    private async Task<IReadOnlyList<OutgoingMessage>> FinishAsync(StepContext ctx, CancellationToken ct)
    {
        string runId = SessionTable<SetupRun>.RunId(ctx.SessionId);
        SetupRun run = _runs.Get(ctx.SessionId);
        List<DklsMessage> incoming;
        try
        {
            incoming = DklsTransport.OpenFromRun(ctx, run.AgreementKey, run.PeerKeys, state.NodeId, DklsMessages.SetupMessage, 2);
        }
        finally
        {
            // The last sealed message of the run addressed to this node is opened (or the step failed): erase the run key.
            run.EraseAgreementKey();
        }

        DklsSetupState setup = Interlocked.Exchange(ref run.Setup, null) ?? throw new ProtocolException("this node has no pairwise setup state for the session");
        using DklsKeyShare share = DklsSetup.Finish(setup, incoming);
        DklsPublicKey pub = share.Public;
        byte[] result = pub.ToBytes();
        using (SecretBuffer material = share.Export())
        {
            // First phase: the share is stored pending (a new key or member: a pending key; a holder: a version above the
            // current one); it signs only after the run's commit.
            KeyRecord? existing = run.Kind == DkgRunKind.KeyGeneration ? null : await state.Store.Keys.GetAsync(run.KeyId, ct).ConfigureAwait(false);
            if (existing is null)
            {
                await state.Store.Keys.CreateAsync(
                    new NewKey(run.KeyId, run.KeyId, DklsScheme.Name, pub.GroupPublicKey, pub.Threshold, pub.ParticipantCount)
                    { InitialVersion = run.ToVersion, InitialState = KeyState.Pending },
                    material, ct).ConfigureAwait(false);
            }
            else if (run.Kind == DkgRunKind.Repair)
            {
                // A holder in a repair: same version, new pairwise state; the replacement is staged and becomes the
                // version's material only at the run's commit (an abort drops it, and the old state keeps signing).
                await state.Store.Keys.StageReplacementAsync(run.KeyId, run.ToVersion, material, ct).ConfigureAwait(false);
            }
            else
            {
                // A holder of the old version; or a node rejoining a committee it left: its record is destroyed, or it was
                // re-admitted after an eviction and still holds the version it had then (erased at this run's commit).
                int above = existing.State == KeyState.Destroyed || run.Rejoining ? existing.Version : run.FromVersion;
                await state.Store.Keys.AddPendingVersionAsync(run.KeyId, above, run.ToVersion, pub.GroupPublicKey, material, ct).ConfigureAwait(false);
            }
        }

        await state.Store.Rotations.TransitionAsync(runId, RotationState.Started, RotationState.Prepared, result, cancellationToken: ct).ConfigureAwait(false);
        await state.Store.Audit.AppendAsync(new AuditEntryInput("coordinator", "dkls." + run.Kind.ToString().ToLowerInvariant() + ".prepared", run.KeyId,
            SHA256.HashData(ctx.Request.Payload.Span), "allow", $"run {runId} version {run.ToVersion} pending"), ct).ConfigureAwait(false);
        _runs.Drop(runId);
        return [new OutgoingMessage(DklsMessages.SetupDone, 3, [0], new PayloadWriter().U32((uint)run.ToVersion).Bytes(result).ToArray())];
    }

    private sealed class SetupRun(string keyId, DkgRunKind kind, int fromVersion, int toVersion, IReadOnlyDictionary<uint, byte[]> peerKeys) : IDisposable
    {
        /// <summary>This node's run agreement key of the run's DKG; erased once the setup's last message to it is opened.</summary>
        public RunAgreementKey? Agreement;

        public RunAgreementKey AgreementKey => Agreement is { IsErased: false } k ? k : throw new ProtocolException("this node's run agreement key for the session is erased");

        /// <summary>The other participants' run agreement keys, verified in the DKG's reveal step.</summary>
        public IReadOnlyDictionary<uint, byte[]> PeerKeys { get; } = peerKeys;

        public void EraseAgreementKey() => Interlocked.Exchange(ref Agreement, null)?.Dispose();

        public string KeyId { get; } = keyId;

        public DkgRunKind Kind { get; } = kind;

        public int FromVersion { get; } = fromVersion;

        public int ToVersion { get; } = toVersion;

        /// <summary>A re-admitted node joining a reshare of a key whose older version it still holds (<see cref="IDkgFollowUp.Hold"/>).</summary>
        public bool Rejoining { get; init; }

        public KeyPackage? Share;

        public DklsSetupState? Setup;

        public int Round2Done;

        public void Dispose()
        {
            EraseAgreementKey();
            Interlocked.Exchange(ref Share, null)?.Dispose();
            Interlocked.Exchange(ref Setup, null)?.Dispose();
        }
    }
}
