using Conclave.Node.Frost;
using Conclave.Node.Protocol;
using Conclave.Node.Rpc;
using Conclave.Storage.Rotation;
using Conclave.Server.Threshold.Engine;
using Conclave.Threshold.Frost;
using Conclave.Threshold.Frost.Ciphersuites;

namespace Conclave.Server.Coordinator;

/// <summary>
/// Distributed key generation, refresh and reshare across the nodes as crash-safe rotation runs (docs/ROTATION.md). The
/// run itself (recorded before its first message, Prepared once every party reported the same public key package, then
/// commit, the store's key row, retire; abort before the decision, <see cref="ResumeAsync"/> after it) is the threshold
/// engine's (<see cref="RotationEngine{TKey}"/>); FROST brings its DKG rounds (<see cref="DkgAsync"/>, through
/// FrostRotationProtocol). The coordinator relays only signed broadcasts, ciphertexts sealed to recipients,
/// confirmations and commits.
/// </summary>
public sealed partial class FrostCoordinator
{
    /// <summary>Creates a new t-of-n key by DKG among <paramref name="nodes"/> (every node deals and receives).</summary>
    public Task<FrostKeyInfo> CreateKeyAsync(string keyId, FrostCiphersuite suite, int threshold, IReadOnlyList<uint> nodes, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(suite);
        ArgumentNullException.ThrowIfNull(nodes);
        return RotateAsync(new RotationPlan(RotationKind.KeyGeneration, keyId, suite.SchemeName, threshold, nodes, nodes, [], 0), ct);
    }

    /// <summary>
    /// Proactive refresh: new shares of the same key (same group key, threshold and participants); every node
    /// must take part. The old shares are erased only after every node committed its new share.
    /// </summary>
    public Task<FrostKeyInfo> RefreshAsync(string keyId, CancellationToken ct) => RotateAsync(PlanRefresh(keyId), ct);

    /// <summary>The plan of a refresh of <paramref name="keyId"/> at its registered version.</summary>
    public RotationPlan PlanRefresh(string keyId)
    {
        FrostKeyInfo key = Find(keyId) ?? throw new ArgumentException($"unknown FROST key {keyId}", nameof(keyId));
        return new RotationPlan(RotationKind.Refresh, keyId, key.Suite.SchemeName, key.PublicKeyPackage.Threshold, key.Nodes, key.Nodes, key.Nodes, key.Version);
    }

    /// <summary>
    /// Reshare: t current holders deal the key to a new committee with a new threshold; the group key stays and the
    /// old shares become useless (erased on every old holder once the new committee committed its shares).
    /// </summary>
    public async Task<FrostKeyInfo> ReshareAsync(string keyId, int threshold, IReadOnlyList<uint> participants, CancellationToken ct) =>
        await RotateAsync(await PlanReshareAsync(keyId, threshold, participants, ct).ConfigureAwait(false), ct).ConfigureAwait(false);

    /// <summary>The plan of a reshare: the first t current holders that answer an attestation deal.</summary>
    public async Task<RotationPlan> PlanReshareAsync(string keyId, int threshold, IReadOnlyList<uint> participants, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(participants);
        FrostKeyInfo key = Find(keyId) ?? throw new ArgumentException($"unknown FROST key {keyId}", nameof(keyId));
        int oldThreshold = key.PublicKeyPackage.Threshold;
        IReadOnlyList<uint> up = await _cluster.AttestAsync(ct).ConfigureAwait(false);
        uint[] dealers = [.. key.Nodes.Where(n => up.Contains(n) && !IsUntrusted(n)).Take(oldThreshold)];
        if (dealers.Length < oldThreshold)
        {
            throw new QuorumUnavailableException($"resharing needs {oldThreshold} current holders of key {keyId} online; {dealers.Length} are");
        }

        return new RotationPlan(RotationKind.Reshare, keyId, key.Suite.SchemeName, threshold, dealers, [.. participants.Order()], key.Nodes, key.Version);
    }

    /// <summary>
    /// Runs a plan as one rotation run. The run goes on when <paramref name="ct"/> is cancelled after the decision
    /// (Prepared) only through <see cref="ResumeAsync"/>: callers that must not lose a run to a client's cancellation pass
    /// a token of their own lifetime, not the request's.
    /// </summary>
    public Task<FrostKeyInfo> RotateAsync(RotationPlan plan, CancellationToken ct, byte[]? runSession = null) => _rotation.RotateAsync(plan, ct, runSession);

    /// <summary>
    /// True while this coordinator is driving the run itself: recovery (which takes runs whose owner is this replica)
    /// leaves it alone, so a run is never aborted by its own server's recovery pass.
    /// </summary>
    public bool IsLive(string runId) => _rotation.IsLive(runId);

    /// <summary>
    /// Drives an unfinished run to its end: a Started run is aborted (nothing was decided), a Prepared or Committed run
    /// is committed and retired. Used at start-up and by the background recovery for runs whose owner is gone, and by
    /// a run itself after its decision. Returns the key as it is afterwards (null for an aborted run).
    /// </summary>
    public Task<FrostKeyInfo?> ResumeAsync(string runId, CancellationToken ct) => _rotation.ResumeAsync(runId, ct);

    /// <summary>
    /// The DKG rounds of a run (commit, reveal, round two, finish, complete) up to every party reporting the same public key
    /// package. Also the first half of key generation for a protocol whose shares come from this DKG (DKLs23:
    /// <paramref name="plan"/>'s scheme is then the other protocol's, <paramref name="suite"/> FROST's secp256k1 suite, and
    /// <paramref name="fault"/> that protocol's rotation fault injection); its nodes keep the new share for their own rounds.
    /// </summary>
    internal async Task<(PublicKeyPackage Result, Rotation.RotationTranscript Transcript)> DkgAsync(byte[] session, RotationPlan plan, FrostCiphersuite suite, PublicKeyPackage? oldKey,
        CancellationToken ct, Func<RotationKind, string, Task>? fault = null)
    {
        Func<RotationKind, string, Task> faultAsync = fault ?? FaultAsync;
        IReadOnlyList<uint> dealers = plan.Dealers;
        IReadOnlyList<uint> receivers = plan.Receivers;
        uint[] everyone = [.. dealers.Union(receivers).Order()];
        TimeSpan timeout = _cluster.RoundTimeout * 5;
        var start = new PayloadWriter().U32((uint)plan.DkgKind).String(plan.KeyId).String(plan.Scheme).U32((uint)plan.Threshold).U32((uint)dealers.Count);
        foreach (uint d in dealers)
        {
            start.U32(d);
        }

        start.U32((uint)receivers.Count);
        foreach (uint r in receivers)
        {
            start.U32(r);
        }

        start.U32((uint)plan.FromVersion).Bytes(oldKey?.ToBytes() ?? []).U32((uint)plan.OldHolders.Count);
        foreach (uint o in plan.OldHolders)
        {
            start.U32(o);
        }

        byte[] startPayload = start.ToArray();

        // Commit step: everyone starts (and records the run; an old holder that neither deals nor receives records only
        // that it must erase once every receiver committed); each dealer broadcasts only a hash commitment to its
        // round-one package and chain-code contribution, with its per-run signing key.
        Dictionary<uint, IReadOnlyList<Envelope>> started = await AllAsync(plan.Everyone,
            n => _cluster.Node(n).StepAsync(_cluster.Request(session, FrostMessages.DkgStart, 1, [n], startPayload), [], timeout, ct)).ConfigureAwait(false);
        List<Envelope> commitments = await BroadcastsAsync(session, plan, started, FrostMessages.DkgCommitment, "commitments").ConfigureAwait(false);

        // Every dealer and receiver also announced its ephemeral agreement key for this run, signed by its identity key
        // (RunAgreementKey); the round-two shares are sealed between these keys, never the long-term ones.
        // Exactly one from each dealer and receiver's own reply, else that node is named (old holders that only wait announce none).
        List<Envelope> runKeys = OneRunKeyEach(started.Where(r => everyone.Contains(r.Key)).ToDictionary(r => r.Key, r => r.Value), FrostMessages.DkgAgreementKey);
        await faultAsync(plan.Kind, "round1").ConfigureAwait(false); // boundary name kept from before the commit step

        // Reveal (round one): each dealer and receiver gets every other dealer's commitment and every other participant's
        // run agreement key; a node reveals its
        // round-one package (Feldman commitments and proof) only once exactly one commitment of every other dealer arrived.
        Dictionary<uint, IReadOnlyList<Envelope>> round1 = await AllAsync(everyone,
            n => _cluster.Node(n).StepAsync(_cluster.Request(session, FrostMessages.DkgReveal, 2, [n], []),
                commitments.Where(c => c.Sender != n).Concat(runKeys.Where(k => k.Sender != n)), timeout, ct)).ConfigureAwait(false);
        List<Envelope> broadcasts = await BroadcastsAsync(session, plan, round1, FrostMessages.DkgRound1, "round-one packages").ConfigureAwait(false);
        await faultAsync(plan.Kind, "reveal").ConfigureAwait(false);

        // Round two: each participant gets every other dealer's broadcast, checks each against its commitment, and
        // deals signed shares (with its chain-code contribution) sealed to their receivers.
        Dictionary<uint, IReadOnlyList<Envelope>> round2 = await AllAsync(everyone,
            n => _cluster.Node(n).StepAsync(_cluster.Request(session, FrostMessages.DkgRound2, 3, [n], []), broadcasts.Where(b => b.Sender != n), timeout, ct)).ConfigureAwait(false);
        List<Envelope> shares = [.. round2.Values.SelectMany(m => m).Where(e => e.Kind == FrostMessages.DkgShare)];
        await faultAsync(plan.Kind, "round2").ConfigureAwait(false);

        // Finish: each receiver gets the shares addressed to it, checks them and its echo, and confirms — or, when a
        // share or contribution does not match its dealer's commitments, answers with signed complaints carrying the
        // dealer's signed message, which the coordinator judges (a valid one convicts the dealer, a false one the
        // complainer) before the run aborts.
        Dictionary<uint, IReadOnlyList<Envelope>> confirms = await FinishStepAsync(session, plan, suite, oldKey, receivers, commitments, broadcasts,
            n => _cluster.Node(n).StepAsync(_cluster.Request(session, FrostMessages.DkgFinish, 4, [n], []), shares.Where(s => s.Recipients.Contains(n)), timeout, ct), ct).ConfigureAwait(false);
        List<Envelope> confirmations = [.. confirms.Values.SelectMany(m => m).Where(e => e.Kind == FrostMessages.DkgConfirm)];
        if (confirmations.Count != receivers.Count)
        {
            throw new QuorumUnavailableException("not every receiver confirmed the new key");
        }

        await faultAsync(plan.Kind, "finish").ConfigureAwait(false);

        // Complete: every receiver checks every confirmation and stores the new share as pending; a leaving dealer
        // checks the new members' confirmations against what it dealt (Dkg.ConfirmAsDealer).
        Dictionary<uint, IReadOnlyList<Envelope>> done = await AllAsync(everyone,
            n => _cluster.Node(n).StepAsync(_cluster.Request(session, FrostMessages.DkgComplete, 5, [n], []), confirmations.Where(c => c.Sender != n), timeout, ct)).ConfigureAwait(false);

        PublicKeyPackage? result = null;
        foreach ((uint node, IReadOnlyList<Envelope> reply) in done)
        {
            if (reply.Count != 1 || reply[0].Kind != FrostMessages.DkgDone)
            {
                throw new CulpritException([node], $"node {node} did not report the prepared key");
            }

            var r = new PayloadReader(reply[0].Payload.Span);
            int v = (int)r.U32("version");
            var pkp = PublicKeyPackage.FromBytes(suite, r.Bytes("publicKeyPackage"));
            r.End();
            if (v != plan.ToVersion)
            {
                throw new CulpritException([node], $"node {node} prepared version {v}, not {plan.ToVersion}");
            }

            if (result is null)
            {
                result = pkp;
            }
            else if (!result.PublicEquals(pkp))
            {
                throw new CulpritException([node], $"node {node} prepared a different key than the others");
            }
        }

        if (result is null || (oldKey is not null && !result.GroupPublicKey.AsSpan().SequenceEqual(oldKey.GroupPublicKey))
            || result.Threshold != plan.Threshold || result.ParticipantCount != receivers.Count)
        {
            throw new QuorumUnavailableException("the run did not produce the expected group key");
        }

        var transcript = new Rotation.RotationTranscript(Rotation.RotationTranscript.CurrentFormat, Convert.ToHexStringLower(session), TranscriptKind(plan.Kind),
            plan.KeyId, plan.Scheme, plan.Threshold, [.. dealers], [.. receivers], plan.FromVersion, plan.ToVersion,
            oldKey is null ? null : Convert.ToHexStringLower(oldKey.ToBytes()), Convert.ToHexStringLower(result.ToBytes()),
            [.. broadcasts.OrderBy(b => b.Sender).Select(b => Convert.ToHexStringLower(Google.Protobuf.MessageExtensions.ToByteArray(b)))],
            [.. confirmations.OrderBy(c => c.Sender).Select(c => Convert.ToHexStringLower(Google.Protobuf.MessageExtensions.ToByteArray(c)))]);
        return (result, transcript);
    }

    /// <summary>
    /// <see cref="OneBroadcastEach"/>; a node it names is marked suspect and reported (the server's audit entry) as a
    /// dealer convicted by a complaint is, since its own signed envelopes prove it.
    /// </summary>
    private async Task<List<Envelope>> BroadcastsAsync(byte[] session, RotationPlan plan, IReadOnlyDictionary<uint, IReadOnlyList<Envelope>> replies, string kind, string what)
    {
        try
        {
            return OneBroadcastEach(replies, kind, what);
        }
        catch (CulpritException e)
        {
            foreach (CulpritReason c in e.Reasons)
            {
                _health.MarkSuspect(c.Node, c.Reason);
            }

            if (OnCulprits is { } report)
            {
                await report(plan.KeyId, Convert.ToHexStringLower(session), e.Reasons, CancellationToken.None).ConfigureAwait(false);
            }

            throw;
        }
    }

    /// <summary>
    /// The non-empty broadcasts of <paramref name="kind"/> in each node's own reply (a dealer's commitment or round-one
    /// package; a node that only receives answers with an empty one). A broadcast goes to every participant, so a node
    /// whose reply holds two different ones, or one addressed to some peers only, is trying to show different peers
    /// different data (equivocation; the echo of Dkg.Round2 would catch it later, naming nobody): it is named here, with
    /// its own signed envelopes as evidence, before anything is relayed.
    /// </summary>
    internal static List<Envelope> OneBroadcastEach(IReadOnlyDictionary<uint, IReadOnlyList<Envelope>> replies, string kind, string what)
    {
        var broadcasts = new List<Envelope>(replies.Count);
        foreach ((uint node, IReadOnlyList<Envelope> messages) in replies.OrderBy(r => r.Key))
        {
            Envelope[] own = [.. messages.Where(e => e.Kind == kind && e.Payload.Length > 0)];
            if (own.Length > 1 || own.Any(e => e.Recipients.Count > 0))
            {
                throw new CulpritException([new CulpritReason(node, CulpritReason.DkgEquivocation)],
                    $"node {node} sent different {what} to different peers ({own.Length} signed, {own.Count(e => e.Recipients.Count > 0)} addressed to some peers only)")
                {
                    Evidence = [.. own.Select(e => Google.Protobuf.MessageExtensions.ToByteArray(e))],
                };
            }

            broadcasts.AddRange(own);
        }

        return broadcasts;
    }

    private static string TranscriptKind(RotationKind kind) => kind switch
    {
        RotationKind.KeyGeneration => "key-generation",
        RotationKind.Refresh => "refresh",
        RotationKind.Reshare => "reshare",
        _ => throw new InvalidOperationException("repair runs have no DKG transcript"),
    };

    /// <summary>Runs one step on several nodes in parallel; a failure names the node.</summary>
    private static Task<Dictionary<uint, IReadOnlyList<Envelope>>> AllAsync(IEnumerable<uint> nodes, Func<uint, Task<IReadOnlyList<Envelope>>> call) =>
        RotationEngine<FrostKeyInfo>.AllAsync(nodes, call);

    private Task FaultAsync(RotationKind kind, string boundary) => _rotation.FaultAsync(kind, boundary);
}
