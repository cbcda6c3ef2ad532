using System.Collections.Concurrent;
using Conclave.Server.Threshold.Engine;
using Conclave.Storage.Rotation;

namespace Conclave.Server.Coordinator;

/// <summary>
/// Evicting a suspect signer node (docs/ROTATION.md "Evicting a suspect node"). An untrusted node is never chosen
/// again: no signing quorum, no key generation, refresh or reshare includes it, and every key it holds is reshared
/// away from it (to the remaining holders, or to a named replacement) through ordinary crash-safe rotation runs. The
/// node itself is never contacted by an eviction run, so a node that is down, or hostile, cannot hold it up; its old
/// share stays on it but is useless: the other holders erase theirs when the run retires, and a share of the old
/// polynomial does not combine with shares of the new one.
/// </summary>
public sealed partial class FrostCoordinator
{
    private readonly ConcurrentDictionary<string, long> _signed = new(StringComparer.Ordinal);

    /// <summary>The engine's protocol-neutral eviction check and plans (shared with the ecdsa-dkls23 coordinator).</summary>
    public EvictionPlanner Eviction => _engine.Eviction;

    private void CountSignature(string keyId) => _signed.AddOrUpdate(keyId, 1, (_, n) => n + 1);

    /// <summary>Signatures made per key since the last call (drained): the continuous rotator's "after N signatures" count.</summary>
    public IReadOnlyList<(string KeyId, long Count)> TakeSignatureCounts()
    {
        var taken = new List<(string, long)>();
        foreach (string key in _signed.Keys)
        {
            if (_signed.TryRemove(key, out long n) && n > 0)
            {
                taken.Add((key, n));
            }
        }

        return taken;
    }

    /// <summary>Marks a node untrusted in this coordinator (the server records it durably first); the engine's <see cref="Threshold.Engine.NodeHealth"/> keeps the mark.</summary>
    public void MarkUntrusted(uint node)
    {
        _health.MarkUntrusted(node);
        _engine.Notices.Saw(node);
        foreach (FrostKeyInfo key in _keys.Keys)
        {
            DropPool(key.KeyId, node);
        }
    }

    /// <summary>Lets a node take part again (and clears its suspect mark).</summary>
    public void Readmit(uint node)
    {
        _health.Readmit(node);
        _health.ClearSuspect(node);
    }

    public bool IsUntrusted(uint node) => _health.IsUntrusted(node);

    /// <summary>True when the cluster manifest evicts <paramref name="node"/> (docs/ROTATION.md "A manifest-pinned eviction").</summary>
    public bool IsPinned(uint node) => _health.IsPinned(node);

    /// <summary>
    /// Tells every trusted node which nodes are evicted or re-admitted, until each acknowledged (docs/ROTATION.md "What the
    /// other nodes do"); returns the nodes still to be told (down or refusing), which a later call tells.
    /// </summary>
    public Task<IReadOnlyList<uint>> TellNodesOfTrustAsync(CancellationToken ct) => _engine.Notices.TellAsync(ct);

    /// <summary>What the notices reached: which node acknowledged which peer's trust.</summary>
    public NodeTrustNotices TrustNotices => _engine.Notices;

    /// <summary>The untrusted nodes, by id.</summary>
    public IReadOnlyList<uint> Untrusted => _health.Untrusted;

    /// <summary><paramref name="nodes"/> without the untrusted ones, in order.</summary>
    public IReadOnlyList<uint> Trusted(IEnumerable<uint> nodes)
    {
        ArgumentNullException.ThrowIfNull(nodes);
        return [.. nodes.Where(n => !IsUntrusted(n)).Order()];
    }

    /// <summary>The keys whose current committee includes <paramref name="node"/>.</summary>
    public IReadOnlyList<FrostKeyInfo> KeysHeldBy(uint node) => [.. _keys.Keys.Where(k => k.Nodes.Contains(node)).OrderBy(k => k.KeyId, StringComparer.Ordinal)];

    /// <summary>
    /// Marks <paramref name="node"/> untrusted and moves every key this coordinator knows away from it, one crash-safe
    /// reshare run per key (<see cref="PlanEvictionAsync"/>). Returns the keys as they are afterwards. A key that
    /// cannot move yet (a rotation of it is unfinished, too few holders up) fails the call after the other keys moved;
    /// calling again continues with the keys still held.
    /// </summary>
    public async Task<IReadOnlyList<FrostKeyInfo>> EvictAsync(uint node, uint? replacement, CancellationToken ct)
    {
        if (!_cluster.NodeIds.Contains(node) || (replacement is { } r && (!_cluster.NodeIds.Contains(r) || r == node)))
        {
            throw new ArgumentException("the node and its replacement must be distinct nodes of the cluster", nameof(node));
        }

        if (replacement is { } rep && IsUntrusted(rep))
        {
            throw new NodeUntrustedException([rep], $"node {rep} is evicted (untrusted): it cannot replace node {node}");
        }

        CheckEvictable(KeysHeldBy(node), node, replacement);
        MarkUntrusted(node);

        // The other nodes learn it first, so they refuse the node's messages by themselves; one that is down is told later.
        await TellNodesOfTrustAsync(ct).ConfigureAwait(false);
        var moved = new List<FrostKeyInfo>();
        var failures = new List<Exception>();
        foreach (FrostKeyInfo key in KeysHeldBy(node))
        {
            try
            {
                if (await PlanEvictionAsync(key.KeyId, node, replacement, ct).ConfigureAwait(false) is { } plan)
                {
                    moved.Add(await RotateAsync(plan, ct).ConfigureAwait(false));
                }
            }
            catch (Exception e) when (e is not OperationCanceledException and not RotationCrashException)
            {
                failures.Add(e);
            }
        }

        return failures.Count switch
        {
            0 => moved,
            1 => throw failures[0],
            _ => throw new AggregateException($"{failures.Count} keys could not be moved away from node {node}", failures),
        };
    }

    /// <summary>
    /// Refuses, before anything is marked or moved, an eviction that would leave one of <paramref name="keys"/> with fewer
    /// trusted holders than its threshold (or fewer than two): such a key must get a replacement node. The keys may be
    /// registrations of either protocol or the holders and threshold the store records for keys not registered
    /// (KeyService.Holdings); <see cref="EvictionPlanner"/>.
    /// </summary>
    public void CheckEvictable(IEnumerable<IThresholdKey> keys, uint node, uint? replacement) => Eviction.CheckEvictable(keys, node, replacement);

    /// <summary>
    /// The reshare that moves FROST key <paramref name="keyId"/> away from <paramref name="node"/>
    /// (<see cref="EvictionPlanner.PlanAsync"/>). Null when the key is not held by the node.
    /// </summary>
    public Task<RotationPlan?> PlanEvictionAsync(string keyId, uint node, uint? replacement, CancellationToken ct)
    {
        FrostKeyInfo key = Find(keyId) ?? throw new ArgumentException($"unknown FROST key {keyId}", nameof(keyId));
        return Eviction.PlanAsync(key, key.Suite.SchemeName, node, replacement, ct);
    }
}

/// <summary>A run or a quorum would include a node that was evicted (marked untrusted).</summary>
public sealed class NodeUntrustedException : Exception
{
    public NodeUntrustedException() { }

    public NodeUntrustedException(string message) : base(message) { }

    public NodeUntrustedException(string message, Exception innerException) : base(message, innerException) { }

    public NodeUntrustedException(IReadOnlyList<uint> nodes, string message) : base(message) => Nodes = nodes;

    public IReadOnlyList<uint> Nodes { get; } = [];
}

/// <summary>An eviction cannot move a key away from the node as asked (too few trusted holders would remain).</summary>
public sealed class EvictionRefusedException : Exception
{
    public EvictionRefusedException() { }

    public EvictionRefusedException(string message) : base(message) { }

    public EvictionRefusedException(string message, Exception innerException) : base(message, innerException) { }
}
