using System.Collections.Concurrent;
using Conclave.Crypto.Memory;
using Conclave.Node.Protocol;
using Conclave.Node.Rpc;
using Conclave.Node.Threshold.Engine;
using Conclave.Server.Coordinator;
using Conclave.Storage.Keys;
using Conclave.Storage.Rotation;

namespace Conclave.Server.Threshold.Engine;

/// <summary>
/// Rotation runs for any threshold protocol (docs/ROTATION.md): key generation, refresh, reshare and repair, crash-safe. A run is
/// recorded (Started) before its first message; every message carries the run id as its session id. The protocol's
/// rounds (<see cref="IRotationProtocol{TKey}.PrepareAsync"/>) leave every receiver holding the new share as pending and
/// every party reporting the same public result; the run is then Prepared (the decision: from here it only rolls
/// forward), the receivers commit (the pending version becomes current, each answers with signed evidence), the store's
/// key row moves to the new version (Committed), and only then are the old shares erased, each node checking a signed
/// commit from every receiver first (Retired). A failure before Prepared aborts the run (pending versions discarded); a
/// failure after it leaves the run to <see cref="ResumeAsync"/>, which finishes it.
/// A new run may not include a node the coordinator's <see cref="NodeHealth"/> marks untrusted (evicted); finishing a run
/// recorded before the eviction may.
/// </summary>
public sealed class RotationEngine<TKey>(Cluster cluster, IRotationProtocol<TKey> protocol, NodeHealth? health = null)
    where TKey : class, IThresholdKey
{
    private const int FinishAttempts = 3;
    private readonly ConcurrentDictionary<string, byte> _liveRuns = new(StringComparer.Ordinal);

    /// <summary>Where runs are recorded (the server's durable log; in memory for tests and tools).</summary>
    public IRotationLog Runs { get; set; } = new InMemoryRotationLog();

    /// <summary>This coordinator's name in the rotation log (stable across restarts of the same server replica).</summary>
    public string Owner { get; set; } = "coordinator-" + Guid.NewGuid().ToString("N")[..12];

    /// <summary>How long a run stays this coordinator's after its last step before another replica may take it over.</summary>
    public TimeSpan RunLease { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>Testing only: called at every step boundary of a run (kind, boundary name); see <see cref="RotationCrashException"/>.</summary>
    public Func<RotationKind, string, Task>? FaultInjection { get; set; }

    /// <summary>
    /// Runs a plan as one rotation run. The run goes on when <paramref name="ct"/> is cancelled after the decision
    /// (Prepared) only through <see cref="ResumeAsync"/>: callers that must not lose a run to a client's cancellation pass
    /// a token of their own lifetime, not the request's.
    /// </summary>
    public async Task<TKey> RotateAsync(RotationPlan plan, CancellationToken ct, byte[]? runSession = null)
    {
        ArgumentNullException.ThrowIfNull(plan);
        if (runSession is not null && runSession.Length != EnvelopeSigner.SessionIdSizeInBytes)
        {
            throw new ArgumentException("a run id is a session id", nameof(runSession));
        }

        if (!protocol.Handles(plan.Scheme))
        {
            throw new ArgumentException($"unknown scheme {plan.Scheme} for this protocol", nameof(plan));
        }

        if (plan.Kind != RotationKind.KeyGeneration && protocol.Find(plan.KeyId) is null)
        {
            throw new ArgumentException($"unknown key {plan.KeyId}", nameof(plan));
        }

        RefuseUntrusted(plan);
        byte[] session = runSession ?? Cluster.NewSessionId();
        string runId = Convert.ToHexStringLower(session);
        _liveRuns.TryAdd(runId, 0);
        try
        {
            await Runs.BeginAsync(new NewRotationRun(runId, plan.KeyId, plan.Kind, plan.FromVersion, plan.ToVersion, Owner, RunLease, plan.ToBytes()), ct).ConfigureAwait(false);
            return await DriveAsync(runId, session, plan, ct).ConfigureAwait(false);
        }
        finally
        {
            _liveRuns.TryRemove(runId, out _);
        }
    }

    /// <summary>A new run may not involve an untrusted node (finishing a run recorded before the eviction may).</summary>
    private void RefuseUntrusted(RotationPlan plan)
    {
        uint[] bad = health is null ? [] : [.. plan.Everyone.Where(health.IsUntrusted)];
        if (bad.Length > 0)
        {
            throw new NodeUntrustedException(bad, $"node {string.Join(", ", bad)} {(bad.Length == 1 ? "is" : "are")} evicted (untrusted): a {plan.Kind.ToString().ToLowerInvariant()} of key {plan.Name ?? plan.KeyId} may not include {(bad.Length == 1 ? "it" : "them")}");
        }
    }

    /// <summary>
    /// True while this coordinator is driving the run itself: recovery (which takes runs whose owner is this replica)
    /// leaves it alone, so a run is never aborted by its own server's recovery pass.
    /// </summary>
    public bool IsLive(string runId) => _liveRuns.ContainsKey(runId);

    /// <summary>
    /// Drives an unfinished run to its end: a Started run is aborted (nothing was decided), a Prepared or Committed run
    /// is committed and retired. Returns the key as it is afterwards (null when this coordinator is driving the run already).
    /// </summary>
    public async Task<TKey?> ResumeAsync(string runId, CancellationToken ct)
    {
        if (!_liveRuns.TryAdd(runId, 0))
        {
            return null; // this coordinator is driving it right now
        }

        try
        {
            RotationRun run = await Runs.GetAsync(runId, ct).ConfigureAwait(false) ?? throw new ArgumentException($"unknown rotation run {runId}", nameof(runId));
            RotationPlan plan = RotationPlan.FromBytes(run.Parameters);
            switch (run.State)
            {
                case RotationState.Started:
                    await AbortAsync(runId, plan, "its coordinator stopped before every node prepared").ConfigureAwait(false);
                    return protocol.Find(plan.KeyId);
                case RotationState.Prepared:
                case RotationState.Committed:
                    return await FinishAsync(runId, ct).ConfigureAwait(false);
                default:
                    return protocol.Find(plan.KeyId);
            }
        }
        finally
        {
            _liveRuns.TryRemove(runId, out _);
        }
    }

    /// <summary>Calls the test's fault injection at a step boundary (protocols call it at their round boundaries).</summary>
    public Task FaultAsync(RotationKind kind, string boundary) => FaultInjection?.Invoke(kind, boundary) ?? Task.CompletedTask;

    /// <summary>Runs one step on several nodes in parallel; a failure that names a culprit becomes a <see cref="CulpritException"/>.</summary>
    public static async Task<Dictionary<uint, IReadOnlyList<Envelope>>> AllAsync(IEnumerable<uint> nodes, Func<uint, Task<IReadOnlyList<Envelope>>> call)
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

    private async Task<TKey> DriveAsync(string runId, byte[] session, RotationPlan plan, CancellationToken ct)
    {
        await FaultAsync(plan.Kind, "started").ConfigureAwait(false);
        byte[] result;
        try
        {
            result = await protocol.PrepareAsync(session, plan, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not RotationCrashException)
        {
            // Nothing was decided: every node discards what it holds pending for this run (best effort; a node that
            // misses the abort discards it when the next run of the key starts).
            await AbortAsync(runId, plan, e.Message).ConfigureAwait(false);
            throw;
        }

        await Runs.TransitionAsync(runId, RotationState.Started, RotationState.Prepared, result, cancellationToken: CancellationToken.None).ConfigureAwait(false);
        await FaultAsync(plan.Kind, "prepared").ConfigureAwait(false);
        await Runs.TryLeaseAsync(runId, Owner, RunLease, CancellationToken.None).ConfigureAwait(false);
        return await FinishAsync(runId, ct).ConfigureAwait(false);
    }

    private async Task<TKey> FinishAsync(string runId, CancellationToken ct)
    {
        RotationRun run = await Runs.GetAsync(runId, ct).ConfigureAwait(false) ?? throw new ArgumentException($"unknown rotation run {runId}", nameof(runId));
        RotationPlan plan = RotationPlan.FromBytes(run.Parameters);
        if (!protocol.Handles(plan.Scheme) || run.Result is null)
        {
            throw new InvalidOperationException($"run {runId} has no prepared key package");
        }

        byte[] result = run.Result;
        PreparedKey prepared = protocol.Describe(plan, result);
        byte[] session = Convert.FromHexString(runId);

        // Commit: every receiver makes the pending version current and signs that it did. Asked again on a resumed
        // run even if it was committed before, because the retire needs fresh signed evidence.
        IReadOnlyList<Envelope> commits = await RetryAsync(() => CommitNodesAsync(session, plan, ct), ct).ConfigureAwait(false);
        await FaultAsync(plan.Kind, "nodes-committed").ConfigureAwait(false);
        if (run.State == RotationState.Prepared)
        {
            using SecretBuffer material = SecretBuffer.CopyFrom(result);
            NewKey? create = plan.Kind == RotationKind.KeyGeneration
                ? new NewKey(plan.KeyId, plan.Name ?? plan.KeyId, plan.Scheme, prepared.VerificationKey, prepared.Threshold, prepared.ParticipantCount, plan.Labels)
                {
                    Holders = prepared.Holders,
                }
                : null;
            // A repair leaves the key row as it is (same version, same package): only the run moves to Committed.
            run = plan.Kind == RotationKind.Repair
                ? await Runs.TransitionAsync(runId, RotationState.Prepared, RotationState.Committed, cancellationToken: CancellationToken.None).ConfigureAwait(false)
                : await Runs.CommitKeyAsync(runId, new KeyRotation(plan.KeyId, plan.FromVersion, plan.ToVersion, prepared.VerificationKey, prepared.Threshold, prepared.ParticipantCount)
                {
                    Holders = prepared.Holders,
                }, material, create, CancellationToken.None).ConfigureAwait(false);
            await FaultAsync(plan.Kind, "committed").ConfigureAwait(false);
        }

        TKey key = protocol.Committed(plan, result);

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
            // A move off an evicted node is audited in the same transaction (written once, whoever finishes the run).
            await Runs.RetireAsync(runId, EvictionPlanner.MovedAudit(plan), CancellationToken.None).ConfigureAwait(false);
        }

        return key;
    }

    private async Task<IReadOnlyList<Envelope>> CommitNodesAsync(byte[] session, RotationPlan plan, CancellationToken ct)
    {
        byte[] payload = new PayloadWriter().String(plan.KeyId).ToArray();
        Dictionary<uint, IReadOnlyList<Envelope>> replies = await AllAsync(plan.Receivers,
            n => cluster.Node(n).StepAsync(cluster.Request(session, RotationMessages.Commit, RotationMessages.CommitRound, [n], payload), [], cluster.RoundTimeout * 5, ct)).ConfigureAwait(false);
        var commits = new List<Envelope>();
        foreach ((uint node, IReadOnlyList<Envelope> reply) in replies)
        {
            if (reply.Count != 1 || reply[0].Kind != RotationMessages.Committed)
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
        await AllAsync(nodes, n => cluster.Node(n).StepAsync(cluster.Request(session, RotationMessages.Retire, RotationMessages.RetireRound, [n], payload),
            commits.Where(c => c.Sender != n), cluster.RoundTimeout * 5, ct)).ConfigureAwait(false);
    }

    private async Task AbortAsync(string runId, RotationPlan plan, string reason)
    {
        byte[] session = Convert.FromHexString(runId);
        byte[] payload = new PayloadWriter().String(plan.KeyId).ToArray();
        using var cts = new CancellationTokenSource(cluster.RoundTimeout * 5);
        await Task.WhenAll(plan.Everyone.Select(async n =>
        {
            try
            {
                await cluster.Node(n).StepAsync(cluster.Request(session, RotationMessages.Abort, RotationMessages.AbortRound, [n], payload), [], cluster.RoundTimeout * 5, cts.Token).ConfigureAwait(false);
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
    private static async Task<T> RetryAsync<T>(Func<Task<T>> step, CancellationToken ct)
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
}
