using Conclave.Server.Coordinator;
using Conclave.Server.Threshold.Sharing;

namespace Conclave.Server.Threshold.Engine;

/// <summary>
/// What every threshold protocol's coordinator on one server shares, created once where the server builds them and given to
/// each (docs/ARCHITECTURE.md "Threshold engine"): the cluster; which nodes rest, are untrusted or suspect
/// (<see cref="NodeHealth"/>, since a node that is down or evicted is so for every protocol); the eviction check and plans
/// (<see cref="EvictionPlanner"/>) and the trust notices to the nodes (<see cref="NodeTrustNotices"/>); and the
/// secret-sharing rounds a protocol's rotation runs are made of (<see cref="DkgRounds"/>: the Feldman DKG with
/// commitment before reveal; <see cref="RepairRounds"/>: Laing–Stinson repair), which both FROST and DKLs23 run for their
/// shares. Each protocol keeps its own key registry, pools and <see cref="RotationEngine{TKey}"/>.
/// </summary>
public sealed class ThresholdEngine
{
    public ThresholdEngine(Cluster cluster, TimeProvider? clock = null)
    {
        ArgumentNullException.ThrowIfNull(cluster);
        Cluster = cluster;
        Health = new NodeHealth(clock ?? TimeProvider.System) { PinnedEvictions = cluster.PinnedEvictions };
        Eviction = new EvictionPlanner(cluster, Health);
        Notices = new NodeTrustNotices(cluster, Health);
        Dkg = new DkgRounds(this);
        Repair = new RepairRounds(cluster);
    }

    public Cluster Cluster { get; }

    /// <summary>Which nodes are resting, untrusted or suspect: one view for every protocol.</summary>
    public NodeHealth Health { get; }

    /// <summary>The protocol-neutral eviction check and the reshare plans that move a key away from an evicted node.</summary>
    public EvictionPlanner Eviction { get; }

    /// <summary>The eviction and re-admission notices to the nodes.</summary>
    public NodeTrustNotices Notices { get; }

    /// <summary>The DKG rounds of key generation, refresh and reshare runs.</summary>
    public DkgRounds Dkg { get; }

    /// <summary>The repair steps of repair runs.</summary>
    public RepairRounds Repair { get; }

    /// <summary>
    /// Called (and awaited) when a coordinator convicts nodes in a rotation run, before the run aborts: key id, run id, the
    /// culprits and their reasons. The server appends an audit entry here (<c>rotation.culprit</c>).
    /// </summary>
    public Func<string, string, IReadOnlyList<CulpritReason>, CancellationToken, Task>? OnCulprits { get; set; }

    /// <summary>
    /// Marks every convicted node suspect (<see cref="NodeHealth.MarkSuspect"/>) and reports them to <see cref="OnCulprits"/>
    /// under the run id <paramref name="session"/>.
    /// </summary>
    internal async Task ConvictAsync(string keyId, byte[] session, IReadOnlyList<CulpritReason> convicted)
    {
        foreach (CulpritReason c in convicted)
        {
            Health.MarkSuspect(c.Node, c.Reason);
        }

        if (OnCulprits is { } report)
        {
            await report(keyId, Convert.ToHexStringLower(session), convicted, CancellationToken.None).ConfigureAwait(false);
        }
    }
}
