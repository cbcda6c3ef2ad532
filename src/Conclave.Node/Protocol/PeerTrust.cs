using Conclave.Storage;
using Conclave.Storage.Nodes;

namespace Conclave.Node.Protocol;

/// <summary>
/// The peers this node refuses by itself (docs/ROTATION.md "Evicting a suspect node", "What the other nodes do"): the
/// nodes the coordinator told it were evicted, recorded in the node's own store (<c>node_trust</c>, with its record MAC),
/// so the refusal outlives a restart and does not depend on the coordinator's memory. Read once at start, then kept in
/// memory for the check on every relayed message (<see cref="IsUntrusted"/>).
/// </summary>
public sealed class PeerTrust
{
    /// <summary>The reason recorded in the node's store for an eviction it was told of.</summary>
    public const string ToldReason = "evicted: told by the coordinator";

    private readonly IConclaveStore _store;
    private readonly Lock _gate = new();
    private HashSet<uint> _untrusted;

    private PeerTrust(IConclaveStore store, IEnumerable<uint> untrusted)
    {
        _store = store;
        _untrusted = [.. untrusted];
    }

    /// <summary>Reads the untrusted peers from the node's store (a record that fails its MAC stops the node here).</summary>
    public static async Task<PeerTrust> LoadAsync(IConclaveStore store, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(store);
        IReadOnlyList<UntrustedNode> marked = await store.NodeTrust.ListUntrustedAsync(ct).ConfigureAwait(false);
        return new PeerTrust(store, marked.Select(n => n.NodeId));
    }

    /// <summary>True when messages signed by <paramref name="node"/> are refused.</summary>
    public bool IsUntrusted(uint node)
    {
        lock (_gate)
        {
            return _untrusted.Contains(node);
        }
    }

    /// <summary>The untrusted peers, by id.</summary>
    public IReadOnlyList<uint> Untrusted
    {
        get
        {
            lock (_gate)
            {
                return [.. _untrusted.Order()];
            }
        }
    }

    /// <summary>Records <paramref name="node"/> untrusted durably, then refuses its messages. Idempotent.</summary>
    public async Task MarkUntrustedAsync(uint node, CancellationToken ct)
    {
        await _store.NodeTrust.MarkUntrustedAsync(node, ToldReason, null, ct).ConfigureAwait(false);
        lock (_gate)
        {
            _untrusted = [.. _untrusted, node];
        }
    }

    /// <summary>Removes <paramref name="node"/>'s record, then accepts its messages again. Idempotent.</summary>
    public async Task ReadmitAsync(uint node, CancellationToken ct)
    {
        await _store.NodeTrust.ReadmitAsync(node, ct).ConfigureAwait(false);
        lock (_gate)
        {
            _untrusted = [.. _untrusted.Where(n => n != node)];
        }
    }
}
