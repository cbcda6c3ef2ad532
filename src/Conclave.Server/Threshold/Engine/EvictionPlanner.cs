using Conclave.Server.Coordinator;
using Conclave.Storage.Rotation;

namespace Conclave.Server.Threshold.Engine;

/// <summary>
/// The protocol-neutral part of evicting a suspect node (docs/ROTATION.md "Evicting a suspect node"), shared by the FROST
/// and the ecdsa-dkls23 coordinators: the check that refuses an eviction which would leave a key with too few trusted
/// holders, and the reshare plan that moves one key away from the node (same threshold; the remaining trusted holders,
/// plus the replacement, as the new committee; the remaining holders as the old holders, so the evicted node is never
/// part of the run). Each protocol runs the plan as its ordinary crash-safe rotation run.
/// </summary>
public sealed class EvictionPlanner
{
    private readonly Cluster _cluster;
    private readonly NodeHealth _health;

    public EvictionPlanner(Cluster cluster, NodeHealth health)
    {
        ArgumentNullException.ThrowIfNull(cluster);
        ArgumentNullException.ThrowIfNull(health);
        _cluster = cluster;
        _health = health;
    }

    /// <summary>
    /// Refuses, before anything is marked or moved, an eviction that would leave one of <paramref name="keys"/> with fewer
    /// trusted holders than its threshold (or fewer than two): such a key must get a replacement node. The keys may be
    /// registrations of any protocol or the holders and threshold the store records for keys not registered.
    /// </summary>
    public void CheckEvictable(IEnumerable<IThresholdKey> keys, uint node, uint? replacement)
    {
        ArgumentNullException.ThrowIfNull(keys);
        string[] stuck = [.. keys.Where(k => k.Nodes.Contains(node) && Committee(k, node, replacement).Length < Math.Max(2, k.Threshold))
            .Select(k => $"{k.KeyId} ({k.Threshold}-of-{k.Nodes.Count})")];
        if (stuck.Length > 0)
        {
            throw new EvictionRefusedException(
                $"without node {node} too few trusted holders would remain for key(s) {string.Join(", ", stuck.Take(8))}{(stuck.Length > 8 ? " and more" : "")}: name a replacement node");
        }
    }

    /// <summary>
    /// The reshare that moves <paramref name="key"/> (of <paramref name="scheme"/>) away from <paramref name="node"/>:
    /// the same threshold, the remaining trusted holders (plus <paramref name="replacement"/>) as the new committee, the
    /// first t of them that answer an attestation as dealers; the plan names the node (<see cref="RotationPlan.Evicting"/>),
    /// so whoever finishes the run audits the move (<see cref="MovedAudit"/>). Null when the key is not held by the node.
    /// Refused when fewer than t trusted holders would remain (name a replacement) or fewer than t remaining holders are up.
    /// </summary>
    public async Task<RotationPlan?> PlanAsync(IThresholdKey key, string scheme, uint node, uint? replacement, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (!key.Nodes.Contains(node))
        {
            return null;
        }

        int threshold = key.Threshold;
        CheckEvictable([key], node, replacement);
        uint[] remaining = Remaining(key, node);
        uint[] committee = Committee(key, node, replacement);

        IReadOnlyList<uint> up = await _cluster.AttestAsync(ct).ConfigureAwait(false);
        uint[] dealers = [.. remaining.Where(up.Contains).Take(threshold)];
        if (dealers.Length < threshold)
        {
            throw new QuorumUnavailableException($"moving key {key.KeyId} away from node {node} needs {threshold} of its other holders online; {dealers.Length} are");
        }

        return new RotationPlan(RotationKind.Reshare, key.KeyId, scheme, threshold, dealers, committee, remaining, key.Version) { Evicting = node };
    }

    /// <summary>
    /// The audit entry of a move off an evicted node (<c>node.evict.key</c>: versions and new committee), null for a run
    /// that moves no key off one. The rotation engine writes it in the transaction that retires the run
    /// (<see cref="IRotationLog.RetireAsync"/>), whoever finishes the run (the eviction's pass or run recovery): written
    /// exactly once, never lost to a failed write after the run was retired.
    /// </summary>
    public static Storage.Audit.AuditEntryInput? MovedAudit(RotationPlan plan)
    {
        ArgumentNullException.ThrowIfNull(plan);
        return plan.Evicting is uint node
            ? new Storage.Audit.AuditEntryInput("coordinator", "node.evict.key", plan.KeyId, null, "allow",
                $"key moved away from node {node}: version {plan.FromVersion} -> {plan.ToVersion} on nodes {string.Join(",", plan.Receivers)}")
            : null;
    }

    private uint[] Remaining(IThresholdKey key, uint node) => [.. key.Nodes.Where(n => n != node && !_health.IsUntrusted(n))];

    private uint[] Committee(IThresholdKey key, uint node, uint? replacement)
    {
        uint[] remaining = Remaining(key, node);
        return replacement is { } r && !remaining.Contains(r) ? [.. remaining.Append(r).Order()] : remaining;
    }
}
