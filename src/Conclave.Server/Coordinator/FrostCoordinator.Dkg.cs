using Conclave.Crypto.Memory;
using Conclave.Node.Frost;
using Conclave.Node.Protocol;
using Conclave.Node.Rpc;
using Conclave.Storage;
using Conclave.Storage.Keys;
using Conclave.Storage.Rotation;
using Conclave.Threshold.Frost;
using Conclave.Threshold.Frost.Ciphersuites;

namespace Conclave.Server.Coordinator;

/// <summary>
/// Distributed key generation, refresh and reshare across the nodes as crash-safe rotation runs (docs/ROTATION.md).
/// A run is recorded (Started) before its first message; every message carries the run id as its session id. Nodes
/// store the new share as pending; once every party reported the same public key package the run is Prepared (the
/// decision: from here it only rolls forward), the receivers commit (the pending version becomes current, each answers
/// with signed evidence), the store's key row moves to the new version (Committed), and only then are the old shares
/// erased, each node checking a signed commit from every receiver first (Retired). A failure before Prepared aborts the
/// run (pending versions discarded); a failure after it leaves the run to <see cref="ResumeAsync"/>, which finishes it.
/// The coordinator relays only signed broadcasts, ciphertexts sealed to recipients, confirmations and commits.
/// </summary>
public sealed partial class FrostCoordinator
{
    private const int FinishAttempts = 3;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, byte> _liveRuns = new(StringComparer.Ordinal);

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
    public async Task<FrostKeyInfo> RotateAsync(RotationPlan plan, CancellationToken ct, byte[]? runSession = null)
    {
        ArgumentNullException.ThrowIfNull(plan);
        if (runSession is not null && runSession.Length != EnvelopeSigner.SessionIdSizeInBytes)
        {
            throw new ArgumentException("a run id is a session id", nameof(runSession));
        }

        if (!FrostCiphersuite.TryGet(plan.Scheme, out FrostCiphersuite? suite))
        {
            throw new ArgumentException($"unknown FROST scheme {plan.Scheme}", nameof(plan));
        }

        if (plan.Kind != RotationKind.KeyGeneration && Find(plan.KeyId) is null)
        {
            throw new ArgumentException($"unknown FROST key {plan.KeyId}", nameof(plan));
        }

        RefuseUntrusted(plan);
        byte[] session = runSession ?? Cluster.NewSessionId();
        string runId = Convert.ToHexStringLower(session);
        _liveRuns.TryAdd(runId, 0);
        try
        {
            await Runs.BeginAsync(new NewRotationRun(runId, plan.KeyId, plan.Kind, plan.FromVersion, plan.ToVersion, Owner, RunLease, plan.ToBytes()), ct).ConfigureAwait(false);
            return await DriveAsync(runId, session, plan, suite, ct).ConfigureAwait(false);
        }
        finally
        {
            _liveRuns.TryRemove(runId, out _);
        }
    }

    /// <summary>
    /// True while this coordinator is driving the run itself: recovery (which takes runs whose owner is this replica)
    /// leaves it alone, so a run is never aborted by its own server's recovery pass.
    /// </summary>
    public bool IsLive(string runId) => _liveRuns.ContainsKey(runId);

    private async Task<FrostKeyInfo> DriveAsync(string runId, byte[] session, RotationPlan plan, FrostCiphersuite suite, CancellationToken ct)
    {
        PublicKeyPackage? oldKey = plan.Kind == RotationKind.KeyGeneration ? null
            : (Find(plan.KeyId) ?? throw new ArgumentException($"unknown FROST key {plan.KeyId}", nameof(plan))).PublicKeyPackage;
        await FaultAsync(plan.Kind, "started").ConfigureAwait(false);

        PublicKeyPackage result;
        try
        {
            Rotation.RotationTranscript transcript;
            (result, transcript) = await DkgAsync(session, plan, suite, oldKey, ct).ConfigureAwait(false);
            // The public transcript is kept before the decision, so every committed run has one (docs/ROTATION.md).
            await Runs.SaveTranscriptAsync(runId, transcript.ToJsonBytes(), CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not RotationCrashException)
        {
            // Nothing was decided: every node discards what it holds pending for this run (best effort; a node that
            // misses the abort discards it when the next run of the key starts).
            await AbortAsync(runId, plan, e.Message).ConfigureAwait(false);
            throw;
        }

        await Runs.TransitionAsync(runId, RotationState.Started, RotationState.Prepared, result.ToBytes(), cancellationToken: CancellationToken.None).ConfigureAwait(false);
        await FaultAsync(plan.Kind, "prepared").ConfigureAwait(false);
        await Runs.TryLeaseAsync(runId, Owner, RunLease, CancellationToken.None).ConfigureAwait(false);
        return await FinishAsync(runId, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Drives an unfinished run to its end: a Started run is aborted (nothing was decided), a Prepared or Committed run
    /// is committed and retired. Used at start-up and by the background recovery for runs whose owner is gone, and by
    /// a run itself after its decision. Returns the key as it is afterwards (null for an aborted run).
    /// </summary>
    public async Task<FrostKeyInfo?> ResumeAsync(string runId, CancellationToken ct)
    {
        if (!_liveRuns.TryAdd(runId, 0))
        {
            return null; // this coordinator is driving it right now
        }

        try
        {
            return await ResumeCoreAsync(runId, ct).ConfigureAwait(false);
        }
        finally
        {
            _liveRuns.TryRemove(runId, out _);
        }
    }

    private async Task<FrostKeyInfo?> ResumeCoreAsync(string runId, CancellationToken ct)
    {
        RotationRun run = await Runs.GetAsync(runId, ct).ConfigureAwait(false) ?? throw new ArgumentException($"unknown rotation run {runId}", nameof(runId));
        RotationPlan plan = RotationPlan.FromBytes(run.Parameters);
        switch (run.State)
        {
            case RotationState.Started:
                await AbortAsync(runId, plan, "its coordinator stopped before every node prepared").ConfigureAwait(false);
                return Find(plan.KeyId);
            case RotationState.Prepared:
            case RotationState.Committed:
                return await FinishAsync(runId, ct).ConfigureAwait(false);
            default:
                return Find(plan.KeyId);
        }
    }

    private async Task<FrostKeyInfo> FinishAsync(string runId, CancellationToken ct)
    {
        RotationRun run = await Runs.GetAsync(runId, ct).ConfigureAwait(false) ?? throw new ArgumentException($"unknown rotation run {runId}", nameof(runId));
        RotationPlan plan = RotationPlan.FromBytes(run.Parameters);
        if (!FrostCiphersuite.TryGet(plan.Scheme, out FrostCiphersuite? suite) || run.Result is null)
        {
            throw new InvalidOperationException($"run {runId} has no prepared key package");
        }

        PublicKeyPackage package = PublicKeyPackage.FromBytes(suite, run.Result);
        var info = new FrostKeyInfo(plan.KeyId, suite, package, plan.ToVersion);
        byte[] session = Convert.FromHexString(runId);

        // Commit: every receiver makes the pending version current and signs that it did. Asked again on a resumed
        // run even if it was committed before, because the retire needs fresh signed evidence.
        IReadOnlyList<Envelope> commits = await RetryAsync(() => CommitNodesAsync(session, plan, ct), ct).ConfigureAwait(false);
        await FaultAsync(plan.Kind, "nodes-committed").ConfigureAwait(false);
        if (run.State == RotationState.Prepared)
        {
            using SecretBuffer material = SecretBuffer.CopyFrom(run.Result);
            NewKey? create = plan.Kind == RotationKind.KeyGeneration
                ? new NewKey(plan.KeyId, plan.Name ?? plan.KeyId, plan.Scheme, package.VerificationKey, package.Threshold, package.ParticipantCount, plan.Labels)
                : null;
            run = await Runs.CommitKeyAsync(runId, new KeyRotation(plan.KeyId, plan.FromVersion, plan.ToVersion, package.VerificationKey, package.Threshold, package.ParticipantCount),
                material, create, CancellationToken.None).ConfigureAwait(false);
            await FaultAsync(plan.Kind, "committed").ConfigureAwait(false);
        }

        foreach (uint n in plan.Everyone)
        {
            DropPool(plan.KeyId, n);
        }

        Register(info);

        // Retire: the old version is erased on every node that held it, each checking every receiver's signed commit.
        if (run.State == RotationState.Committed)
        {
            await RetryAsync(async () =>
            {
                IReadOnlyList<Envelope> fresh = commits;
                commits = [];
                if (fresh.Count == 0)
                {
                    fresh = await CommitNodesAsync(session, plan, ct).ConfigureAwait(false); // a retry needs unseen evidence
                }

                await RetireNodesAsync(session, plan, fresh, ct).ConfigureAwait(false);
                return fresh;
            }, ct).ConfigureAwait(false);
            await FaultAsync(plan.Kind, "nodes-retired").ConfigureAwait(false);
            await Runs.TransitionAsync(runId, RotationState.Committed, RotationState.Retired, cancellationToken: CancellationToken.None).ConfigureAwait(false);
        }

        return info;
    }

    private async Task<IReadOnlyList<Envelope>> CommitNodesAsync(byte[] session, RotationPlan plan, CancellationToken ct)
    {
        byte[] payload = new PayloadWriter().String(plan.KeyId).ToArray();
        Dictionary<uint, IReadOnlyList<Envelope>> replies = await AllAsync(plan.Receivers,
            n => _cluster.Node(n).StepAsync(_cluster.Request(session, FrostMessages.RotationCommit, 6, [n], payload), [], _cluster.RoundTimeout * 5, ct)).ConfigureAwait(false);
        var commits = new List<Envelope>();
        foreach ((uint node, IReadOnlyList<Envelope> reply) in replies)
        {
            if (reply.Count != 1 || reply[0].Kind != FrostMessages.RotationCommitted)
            {
                throw new CulpritException([node], $"node {node} did not commit run {Convert.ToHexStringLower(session)}");
            }

            commits.Add(reply[0]);
        }

        return commits;
    }

    private async Task RetireNodesAsync(byte[] session, RotationPlan plan, IReadOnlyList<Envelope> commits, CancellationToken ct)
    {
        byte[] payload = new PayloadWriter().String(plan.KeyId).ToArray();
        uint[] nodes = [.. plan.Receivers.Union(plan.OldHolders).Order()];
        await AllAsync(nodes, n => _cluster.Node(n).StepAsync(_cluster.Request(session, FrostMessages.RotationRetire, 7, [n], payload),
            commits.Where(c => c.Sender != n), _cluster.RoundTimeout * 5, ct)).ConfigureAwait(false);
    }

    private async Task AbortAsync(string runId, RotationPlan plan, string reason)
    {
        byte[] session = Convert.FromHexString(runId);
        byte[] payload = new PayloadWriter().String(plan.KeyId).ToArray();
        using var cts = new CancellationTokenSource(_cluster.RoundTimeout * 5);
        await Task.WhenAll(plan.Everyone.Select(async n =>
        {
            try
            {
                await _cluster.Node(n).StepAsync(_cluster.Request(session, FrostMessages.RotationAbort, 8, [n], payload), [], _cluster.RoundTimeout * 5, cts.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is NodeCallException or OperationCanceledException)
            {
                // Unreachable: it discards the pending version when the next run of this key starts on it.
            }
        })).ConfigureAwait(false);
        string detail = reason.Length > 200 ? reason[..200] : reason;
        await Runs.TransitionAsync(runId, RotationState.Started, RotationState.Aborted, error: detail, cancellationToken: CancellationToken.None).ConfigureAwait(false);
    }

    /// <summary>A step of the second phase is retried a few times (a node restarting); then the run waits for recovery.</summary>
    private async Task<T> RetryAsync<T>(Func<Task<T>> step, CancellationToken ct)
    {
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                return await step().ConfigureAwait(false);
            }
            catch (Exception e) when (attempt < FinishAttempts && e is NodeCallException or CulpritException or QuorumUnavailableException)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(200 * attempt), ct).ConfigureAwait(false);
            }
        }
    }

    private async Task<(PublicKeyPackage Result, Rotation.RotationTranscript Transcript)> DkgAsync(byte[] session, RotationPlan plan, FrostCiphersuite suite, PublicKeyPackage? oldKey, CancellationToken ct)
    {
        IReadOnlyList<uint> dealers = plan.Dealers;
        IReadOnlyList<uint> receivers = plan.Receivers;
        uint[] everyone = [.. dealers.Union(receivers).Order()];
        TimeSpan timeout = _cluster.RoundTimeout * 5;
        var start = new PayloadWriter().U32((uint)plan.DkgKind).String(plan.KeyId).String(suite.SchemeName).U32((uint)plan.Threshold).U32((uint)dealers.Count);
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
        List<Envelope> commitments = [.. started.Values.SelectMany(m => m).Where(e => e.Kind == FrostMessages.DkgCommitment && e.Payload.Length > 0)];
        await FaultAsync(plan.Kind, "round1").ConfigureAwait(false); // boundary name kept from before the commit step

        // Reveal (round one): each dealer and receiver gets every other dealer's commitment; a node reveals its
        // round-one package (Feldman commitments and proof) only once exactly one commitment of every other dealer arrived.
        Dictionary<uint, IReadOnlyList<Envelope>> round1 = await AllAsync(everyone,
            n => _cluster.Node(n).StepAsync(_cluster.Request(session, FrostMessages.DkgReveal, 2, [n], []), commitments.Where(c => c.Sender != n), timeout, ct)).ConfigureAwait(false);
        List<Envelope> broadcasts = [.. round1.Values.SelectMany(m => m).Where(e => e.Kind == FrostMessages.DkgRound1 && e.Payload.Length > 0)];
        await FaultAsync(plan.Kind, "reveal").ConfigureAwait(false);

        // Round two: each participant gets every other dealer's broadcast, checks each against its commitment, and
        // deals signed shares (with its chain-code contribution) sealed to their receivers.
        Dictionary<uint, IReadOnlyList<Envelope>> round2 = await AllAsync(everyone,
            n => _cluster.Node(n).StepAsync(_cluster.Request(session, FrostMessages.DkgRound2, 3, [n], []), broadcasts.Where(b => b.Sender != n), timeout, ct)).ConfigureAwait(false);
        List<Envelope> shares = [.. round2.Values.SelectMany(m => m).Where(e => e.Kind == FrostMessages.DkgShare)];
        await FaultAsync(plan.Kind, "round2").ConfigureAwait(false);

        // Finish: each receiver gets the shares addressed to it, checks them and its echo, and confirms.
        Dictionary<uint, IReadOnlyList<Envelope>> confirms = await AllAsync(receivers,
            n => _cluster.Node(n).StepAsync(_cluster.Request(session, FrostMessages.DkgFinish, 4, [n], []), shares.Where(s => s.Recipients.Contains(n)), timeout, ct)).ConfigureAwait(false);
        List<Envelope> confirmations = [.. confirms.Values.SelectMany(m => m).Where(e => e.Kind == FrostMessages.DkgConfirm)];
        if (confirmations.Count != receivers.Count)
        {
            throw new QuorumUnavailableException("not every receiver confirmed the new key");
        }

        await FaultAsync(plan.Kind, "finish").ConfigureAwait(false);

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
            plan.KeyId, suite.SchemeName, plan.Threshold, [.. dealers], [.. receivers], plan.FromVersion, plan.ToVersion,
            oldKey is null ? null : Convert.ToHexStringLower(oldKey.ToBytes()), Convert.ToHexStringLower(result.ToBytes()),
            [.. broadcasts.OrderBy(b => b.Sender).Select(b => Convert.ToHexStringLower(Google.Protobuf.MessageExtensions.ToByteArray(b)))],
            [.. confirmations.OrderBy(c => c.Sender).Select(c => Convert.ToHexStringLower(Google.Protobuf.MessageExtensions.ToByteArray(c)))]);
        return (result, transcript);
    }

    private static string TranscriptKind(RotationKind kind) => kind switch
    {
        RotationKind.KeyGeneration => "key-generation",
        RotationKind.Refresh => "refresh",
        RotationKind.Reshare => "reshare",
        _ => throw new InvalidOperationException("repair runs have no DKG transcript"),
    };

    /// <summary>Runs one step on several nodes in parallel; a failure names the node.</summary>
    private static async Task<Dictionary<uint, IReadOnlyList<Envelope>>> AllAsync(IEnumerable<uint> nodes, Func<uint, Task<IReadOnlyList<Envelope>>> call)
    {
        var tasks = nodes.ToDictionary(n => n, call);
        try
        {
            await Task.WhenAll(tasks.Values).ConfigureAwait(false);
        }
        catch (NodeCallException)
        {
            NodeCallException first = tasks.Values.Where(t => t.IsFaulted).Select(t => t.Exception!.InnerException).OfType<NodeCallException>().First();
            if (first.Culprit is uint culprit)
            {
                throw new CulpritException([culprit], first.Message);
            }

            throw;
        }

        return tasks.ToDictionary(kv => kv.Key, kv => kv.Value.Result);
    }

    private Task FaultAsync(RotationKind kind, string boundary) => FaultInjection?.Invoke(kind, boundary) ?? Task.CompletedTask;
}

/// <summary>
/// Thrown by a test's fault injection (<see cref="FrostCoordinator.FaultInjection"/>) to stop a run dead at a step
/// boundary, as a crash would: nothing after it runs, not even the abort.
/// </summary>
public sealed class RotationCrashException : Exception
{
    public RotationCrashException() { }

    public RotationCrashException(string message) : base(message) { }

    public RotationCrashException(string message, Exception innerException) : base(message, innerException) { }
}
