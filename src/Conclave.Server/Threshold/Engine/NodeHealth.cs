using System.Collections.Concurrent;

namespace Conclave.Server.Threshold.Engine;

/// <summary>
/// Which nodes the coordinator leaves out of quorums: for a while, a node that failed with a transient error (down, slow,
/// overloaded) rests for <see cref="DownTime"/>; until it is re-admitted, a node marked untrusted (evicted, docs/ROTATION.md
/// "Evicting a suspect node"). Shared by every protocol, since a node that is down, or evicted, is so for all.
/// </summary>
public sealed class NodeHealth(TimeProvider clock)
{
    private readonly ConcurrentDictionary<uint, long> _downUntil = new();
    private readonly ConcurrentDictionary<uint, byte> _untrusted = new();

    /// <summary>How long a node that failed with a transient error is left out of quorums.</summary>
    public TimeSpan DownTime { get; set; } = TimeSpan.FromSeconds(5);

    public void MarkDown(uint node) => _downUntil[node] = clock.GetUtcNow().Add(DownTime).ToUnixTimeMilliseconds();

    public bool IsResting(uint node) =>
        _downUntil.TryGetValue(node, out long until) && until > clock.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>Marks a node untrusted: never chosen for a quorum, and no new rotation run may include it, until <see cref="Readmit"/>.</summary>
    public void MarkUntrusted(uint node) => _untrusted[node] = 0;

    /// <summary>Lets an untrusted node take part again.</summary>
    public void Readmit(uint node) => _untrusted.TryRemove(node, out _);

    /// <summary>
    /// Nodes the cluster manifest evicts (docs/ROTATION.md "A manifest-pinned eviction"): untrusted whatever
    /// <see cref="Readmit"/> says, until the manifest stops naming them. Null: none.
    /// </summary>
    public Func<IReadOnlyList<uint>>? PinnedEvictions { get; set; }

    public bool IsUntrusted(uint node) => _untrusted.ContainsKey(node) || IsPinned(node);

    /// <summary>True when the cluster manifest evicts <paramref name="node"/>.</summary>
    public bool IsPinned(uint node) => PinnedEvictions?.Invoke().Contains(node) ?? false;

    /// <summary>The untrusted nodes, by id.</summary>
    public IReadOnlyList<uint> Untrusted => [.. _untrusted.Keys.Union(PinnedEvictions?.Invoke() ?? []).Order()];

    private readonly ConcurrentDictionary<uint, string> _suspects = new();

    /// <summary>
    /// Marks a node suspect for the operator: the coordinator proved it misbehaved (<paramref name="reason"/>, for example
    /// <see cref="Conclave.Server.Coordinator.CulpritReason.InvalidDkgShare"/>). Informational: quorum choice is unchanged (only the operator's
    /// eviction makes a node untrusted); GET /v1/admin/nodes shows it until <see cref="ClearSuspect"/> or a restart.
    /// </summary>
    public void MarkSuspect(uint node, string reason) => _suspects[node] = reason;

    /// <summary>Clears the suspect mark (the node was evicted and re-admitted).</summary>
    public void ClearSuspect(uint node) => _suspects.TryRemove(node, out _);

    /// <summary>The nodes marked suspect, with the reason of the last conviction.</summary>
    public IReadOnlyDictionary<uint, string> Suspects => new SortedDictionary<uint, string>(_suspects);

    /// <summary>The nodes of <paramref name="nodes"/> resting right now.</summary>
    public IReadOnlyList<uint> Resting(IEnumerable<uint> nodes) => [.. nodes.Where(IsResting)];

    /// <summary>
    /// Up to <paramref name="threshold"/> holders that are neither excluded nor untrusted, those with the most pooled
    /// material first (<paramref name="preference"/>), ties broken at random so load spreads over the holders. Resting
    /// nodes are left out while the others can make the quorum; when they cannot, the quorum is filled with resting ones,
    /// soonest back first, rather than refusing to sign: a node that restarted within its down time is up again, and one
    /// that is still down fails this attempt and leaves the call (<see cref="QuorumCall"/>), so nothing loops.
    /// </summary>
    public List<uint> ChooseQuorum(IEnumerable<uint> holders, int threshold, IReadOnlySet<uint> excluded, Func<uint, int> preference)
    {
        ArgumentNullException.ThrowIfNull(holders);
        ArgumentNullException.ThrowIfNull(excluded);
        ArgumentNullException.ThrowIfNull(preference);
        List<uint> candidates = [.. holders.Where(n => !excluded.Contains(n) && !IsUntrusted(n))];
        List<uint> quorum = candidates
            .Where(n => !IsResting(n))
            .OrderByDescending(preference)
            .ThenBy(_ => Random.Shared.Next())
            .Take(threshold)
            .ToList();
        if (quorum.Count < threshold)
        {
            quorum.AddRange(candidates
                .Where(IsResting)
                .OrderBy(n => _downUntil.TryGetValue(n, out long until) ? until : 0)
                .Take(threshold - quorum.Count));
        }

        return quorum;
    }
}
