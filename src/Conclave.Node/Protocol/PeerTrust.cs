using Conclave.Node.Config;
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
    private readonly ClusterManifest? _manifest;
    private readonly ManifestWatch? _watch;
    private readonly Lock _gate = new();
    private HashSet<uint> _untrusted;

    private PeerTrust(IConclaveStore store, IEnumerable<uint> untrusted, ClusterManifest? manifest, ManifestWatch? watch)
    {
        _store = store;
        _untrusted = [.. untrusted];
        _manifest = manifest;
        _watch = watch;
    }

    /// <summary>
    /// Reads the untrusted peers from the node's store (a record that fails its MAC stops the node here). With a
    /// manifest, the nodes it evicts (<see cref="ClusterManifest.EvictedNodes"/>, followed through the watch) are
    /// refused too, and cannot be re-admitted by a notice.
    /// </summary>
    public static async Task<PeerTrust> LoadAsync(IConclaveStore store, CancellationToken ct, ClusterManifest? manifest = null, ManifestWatch? watch = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        IReadOnlyList<UntrustedNode> marked = await store.NodeTrust.ListUntrustedAsync(ct).ConfigureAwait(false);
        return new PeerTrust(store, marked.Select(n => n.NodeId), manifest, watch);
    }

    /// <summary>True when messages signed by <paramref name="node"/> are refused (told by the coordinator, or pinned by the manifest).</summary>
    public bool IsUntrusted(uint node)
    {
        lock (_gate)
        {
            if (_untrusted.Contains(node))
            {
                return true;
            }
        }

        return IsPinned(node);
    }

    /// <summary>True when the cluster manifest evicts <paramref name="node"/> (looks at the manifest file first, throttled).</summary>
    public bool IsPinned(uint node)
    {
        if (_manifest is null)
        {
            return false;
        }

        _watch?.Refresh();
        return _manifest.IsEvictionPinned(node);
    }

    /// <summary>The untrusted peers, by id.</summary>
    public IReadOnlyList<uint> Untrusted
    {
        get
        {
            IEnumerable<uint> pinned = _manifest is null ? [] : _manifest.EvictedNodes.Select(e => e.Id);
            lock (_gate)
            {
                return [.. _untrusted.Union(pinned).Order()];
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

    /// <summary>
    /// Removes <paramref name="node"/>'s record, then accepts its messages again. Idempotent. Refused
    /// (<see cref="ProtocolException"/>) for a node the manifest evicts: only the manifest brings it back.
    /// </summary>
    public async Task ReadmitAsync(uint node, CancellationToken ct)
    {
        if (IsPinned(node))
        {
            throw new ProtocolException($"node {node} is evicted by the cluster manifest: only removing it from the manifest's evictedNodes re-admits it");
        }

        await _store.NodeTrust.ReadmitAsync(node, ct).ConfigureAwait(false);
        lock (_gate)
        {
            _untrusted = [.. _untrusted.Where(n => n != node)];
        }
    }
}
