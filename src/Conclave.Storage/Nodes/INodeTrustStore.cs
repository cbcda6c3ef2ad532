namespace Conclave.Storage.Nodes;

/// <summary>
/// A signer node the operators evicted (docs/ROTATION.md "Evicting a suspect node"): never again chosen for signing,
/// key generation or rotation until it is re-admitted. <see cref="Replacement"/> is the node that takes its shares
/// (null: the remaining holders keep the keys among themselves).
/// </summary>
public sealed record UntrustedNode(uint NodeId, string Reason, uint? Replacement, DateTimeOffset Since);

/// <summary>
/// The durable list of untrusted (evicted) signer nodes, shared by every server replica on the store: a mark is
/// written before any key is moved away from the node, so a crash mid-eviction leaves the node untrusted and the
/// eviction is continued, never forgotten.
/// </summary>
public interface INodeTrustStore
{
    /// <summary>
    /// Marks a node untrusted. Marking a node that is already untrusted keeps its first reason and time and updates the
    /// replacement only when one is given. Returns the record as stored.
    /// </summary>
    Task<UntrustedNode> MarkUntrustedAsync(uint nodeId, string reason, uint? replacement, CancellationToken cancellationToken = default);

    /// <summary>Every untrusted node, by id.</summary>
    Task<IReadOnlyList<UntrustedNode>> ListUntrustedAsync(CancellationToken cancellationToken = default);

    /// <summary>Removes a node's mark; false when it was not marked.</summary>
    Task<bool> ReadmitAsync(uint nodeId, CancellationToken cancellationToken = default);
}
