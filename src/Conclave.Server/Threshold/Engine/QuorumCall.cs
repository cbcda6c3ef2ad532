using Conclave.Server.Coordinator;

namespace Conclave.Server.Threshold.Engine;

/// <summary>
/// One operation that needs t holders of a key (a signature), across its attempts: which nodes are left out of this
/// call, which refused once, and what went wrong, for the error when no quorum is left. <see cref="RunAsync"/> is the
/// retry loop every protocol's online round runs in: pick t healthy holders (<see cref="NodeHealth.ChooseQuorum"/>),
/// let the protocol run its attempt with them, and on a node failure try again with another quorum. A node that fails
/// with a transient error rests (<see cref="NodeHealth.MarkDown"/>) and leaves this call; a node that refuses has its
/// pooled material dropped and one more chance, and leaves the call at its second refusal. A culprit (a node that sent
/// a bad value) ends the call at once: the protocol throws <see cref="CulpritException"/>.
/// </summary>
public sealed class QuorumCall
{
    private readonly NodeHealth _health;
    private readonly HashSet<uint> _excluded = [];
    private readonly HashSet<uint> _refusedOnce = [];
    private readonly List<string> _failures = [];

    private QuorumCall(NodeHealth health) => _health = health;

    /// <summary>Nodes left out of the rest of this call.</summary>
    public IReadOnlySet<uint> Excluded => _excluded;

    /// <summary>
    /// Runs <paramref name="attempt"/> up to <paramref name="maxAttempts"/> times (an attempt overtaken by a newer key
    /// version is not counted, up to <see cref="MaxSupersededAttempts"/>). Before each attempt the newest
    /// registration of the key is read again (a refresh or reshare may have registered a newer version meanwhile: the call
    /// then signs with it, and forgets what it learnt about the older version's holders). The attempt returns its result,
    /// or null to try again after recording the failure here. Holders with more pooled material are preferred
    /// (<paramref name="preference"/>: for example the depth of the node's pool for the key).
    /// </summary>
    public static async Task<TResult> RunAsync<TKey, TResult>(NodeHealth health, TKey key, Func<string, TKey?> newest, int maxAttempts,
        Func<TKey, uint, int> preference, Func<TKey, IReadOnlyList<uint>, QuorumCall, CancellationToken, Task<TResult?>> attempt, CancellationToken ct)
        where TKey : class, IThresholdKey
        where TResult : class
    {
        ArgumentNullException.ThrowIfNull(health);
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(newest);
        ArgumentNullException.ThrowIfNull(preference);
        ArgumentNullException.ThrowIfNull(attempt);
        var call = new QuorumCall(health);
        int failed = 0;
        int superseded = 0;
        while (failed < maxAttempts)
        {
            if (newest(key.KeyId) is { } latest && latest.Version != key.Version)
            {
                key = latest;
                call._excluded.Clear();
                call._refusedOnce.Clear();
            }

            List<uint> quorum = health.ChooseQuorum(key.Nodes, key.Threshold, call._excluded, n => preference(key, n));
            if (quorum.Count < key.Threshold)
            {
                break;
            }

            if (await attempt(key, quorum, call, ct).ConfigureAwait(false) is { } result)
            {
                return result;
            }

            // A refresh or reshare committed a newer version while this attempt ran (its holders refused the erased one):
            // the attempt says nothing about the nodes, so it does not use up one of the call's attempts. Bounded, so
            // rotations back to back cannot keep a call going for ever.
            if (newest(key.KeyId) is { } moved && moved.Version != key.Version && superseded < MaxSupersededAttempts)
            {
                superseded++;
                continue;
            }

            failed++;
        }

        throw call.Exhausted(key);
    }

    /// <summary>How many attempts overtaken by a newer key version a call may make on top of its own attempts.</summary>
    public const int MaxSupersededAttempts = 16;

    /// <summary>
    /// A node could not provide pre-computed material for this attempt (down, slow, overloaded: it rests; a refusal, for
    /// example a key version this coordinator does not hold yet, is about this call only). It leaves this call.
    /// </summary>
    public void MaterialUnavailable(NodeCallException failure)
    {
        ArgumentNullException.ThrowIfNull(failure);
        if (failure.IsTransient)
        {
            _health.MarkDown(failure.NodeId);
        }

        _excluded.Add(failure.NodeId);
        _failures.Add(failure.Message);
    }

    /// <summary>
    /// A node failed in the online round. Transient: it rests and leaves this call. A refusal (for example it restarted
    /// and lost its pre-computed secrets): its pooled material is stale, <paramref name="dropMaterial"/> forgets it, and
    /// the node gets one more chance with fresh material; a second refusal leaves it out.
    /// </summary>
    public void RoundFailed(uint node, NodeCallException failure, Action dropMaterial)
    {
        ArgumentNullException.ThrowIfNull(failure);
        ArgumentNullException.ThrowIfNull(dropMaterial);
        _failures.Add(failure.Message);
        if (failure.IsTransient)
        {
            _health.MarkDown(node);
            _excluded.Add(node);
        }
        else
        {
            dropMaterial();
            if (!_refusedOnce.Add(node))
            {
                _excluded.Add(node);
            }
        }
    }

    private QuorumUnavailableException Exhausted(IThresholdKey key)
    {
        IReadOnlyList<uint> resting = _health.Resting(key.Nodes);
        return new QuorumUnavailableException($"no quorum of {key.Threshold} nodes could sign with key {key.KeyId}" +
            (_failures.Count > 0 ? ": " + string.Join("; ", _failures.Distinct().Take(4)) : "") +
            (resting.Count > 0 ? $" (resting after transport failures: node {string.Join(", ", resting)})" : ""));
    }
}
