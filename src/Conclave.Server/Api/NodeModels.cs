using System.Text.Json.Serialization;

namespace Conclave.Server.Api;

/// <summary>POST /v1/admin/nodes/{id}/evict: an optional replacement node and an optional reason (kept in the store and the audit log).</summary>
public sealed record EvictNodeRequest(uint? Replacement, string? Reason);

/// <summary>
/// A signer node as GET /v1/admin/nodes shows it: whether it is trusted, and if evicted why, since when and what
/// replaces it; <c>keys</c> names the keys whose current committee includes it (for an evicted node, the keys still
/// to move; empty once its eviction finished). <c>suspect</c>, when present, is why this server's coordinator convicted it in
/// a rotation run (<c>invalid-dkg-share</c>, <c>false-complaint</c>; kept in memory until re-admission or restart, and in
/// the audit log as <c>rotation.culprit</c>): a hint for the operator to evict it.
/// </summary>
public sealed record NodeResponse(
    uint Id,
    string Trust,
    IReadOnlyList<string> Keys,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Reason = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] uint? Replacement = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] DateTimeOffset? Since = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Suspect = null);

public sealed record NodeListResponse(IReadOnlyList<NodeResponse> Nodes);

/// <summary>
/// The answer to an eviction: the node (untrusted), the keys moved away from it by this request, and whether the
/// eviction finished (no key holds the node any more). An unfinished eviction (202) goes on in the background.
/// </summary>
public sealed record EvictionResponse(NodeResponse Node, IReadOnlyList<KeyResponse> Moved, bool Finished);
