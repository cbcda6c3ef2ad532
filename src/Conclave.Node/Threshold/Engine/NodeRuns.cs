using Conclave.Node.Protocol;
using Conclave.Storage;
using Conclave.Storage.Rotation;

namespace Conclave.Node.Threshold.Engine;

/// <summary>
/// The node's own durable record of the rotation runs it takes part in (docs/ROTATION.md "On each node"), for every
/// protocol's key-generation, refresh and reshare rounds: a run is recorded before any value of it leaves the node, and a
/// stale run of the same key is discarded (or, committed but unretired, refused) before a new one starts.
/// </summary>
public static class NodeRuns
{
    /// <summary>
    /// Records the run durably before any value of it leaves the node: after a restart the node still knows which version
    /// it may hold pending, who the receivers are, and what a retire or abort of this run may do. Returns the version the
    /// run makes (1 for a new key, <paramref name="version"/> itself for a repair, <paramref name="version"/> + 1 otherwise).
    /// </summary>
    public static async Task<int> BeginAsync(IConclaveStore store, uint nodeId, string runId, string keyId, DkgRunKind kind, int version, string scheme,
        uint[] dealers, uint[] receivers, uint[] oldHolders, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(store);
        int toVersion = kind switch
        {
            DkgRunKind.KeyGeneration => 1,
            DkgRunKind.Repair => version,
            _ => checked(version + 1),
        };
        await store.Rotations.BeginAsync(new NewRotationRun(runId, keyId, ToRotationKind(kind), kind == DkgRunKind.KeyGeneration ? 0 : version, toVersion,
            $"node-{nodeId}", TimeSpan.Zero, new NodeRunParameters(kind, scheme, dealers, receivers, oldHolders).ToBytes()), ct).ConfigureAwait(false);
        return toVersion;
    }

    /// <summary>
    /// A run of this key that this node recorded but that is no longer live (its coordinator aborted it while this node
    /// was unreachable, or this node restarted mid-run): the coordinator begins a new run only once the old one is
    /// finished, and a run that was prepared and committed would have reached retire, so what is left pending here was
    /// never committed. It is discarded; a committed, unretired run is refused instead (the key stays as it is).
    /// </summary>
    public static async Task DiscardStaleRunAsync(IConclaveStore store, uint nodeId, string keyId, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(store);
        RotationRun? stale = await store.Rotations.GetActiveAsync(keyId, ct).ConfigureAwait(false);
        if (stale is null)
        {
            return;
        }

        if (stale.State == RotationState.Committed)
        {
            throw new ProtocolException($"node {nodeId} holds committed run {stale.RunId} of key {keyId}, not yet retired");
        }

        await store.Keys.DiscardPendingVersionAsync(keyId, stale.ToVersion, ct).ConfigureAwait(false);
        await store.Rotations.TransitionAsync(stale.RunId, stale.State, RotationState.Aborted, error: "superseded by a newer run", cancellationToken: ct).ConfigureAwait(false);
    }

    private static RotationKind ToRotationKind(DkgRunKind kind) => kind switch
    {
        DkgRunKind.KeyGeneration => RotationKind.KeyGeneration,
        DkgRunKind.Refresh => RotationKind.Refresh,
        DkgRunKind.Reshare => RotationKind.Reshare,
        DkgRunKind.Repair => RotationKind.Repair,
        _ => throw new ProtocolException("unknown DKG run kind"),
    };
}
