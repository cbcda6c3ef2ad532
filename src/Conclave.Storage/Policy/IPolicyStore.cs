namespace Conclave.Storage.Policy;

/// <summary>How a stored policy document is applied: enforced, or evaluated and audited beside the live ones (shadow).</summary>
public enum PolicyMode
{
    Enforce,
    Shadow,
}

/// <summary>
/// One version of a policy document as stored (issue 16 "Policies"): its id and version, the canonical content hash
/// (<c>sha256:…</c>, computed by Conclave.Policy), the mode, the document text as it was put (UTF-8 JSON), who put it
/// and when. A version is never changed once written.
/// </summary>
public sealed record StoredPolicy(string Id, long Version, string Hash, PolicyMode Mode, byte[] Document, string CreatedBy, DateTimeOffset CreatedAt);

/// <summary>The newest version of one policy without its document: what a decision checks its parsed copies against.</summary>
public sealed record PolicyHead(string Id, long Version, string Hash);

/// <summary>
/// Versioned policy documents (table <c>policies</c>, migration 9). Every replica on one database sees the same set;
/// a version is appended only if it is newer than every stored version of that id, so two replicas racing to put the
/// same version cannot both succeed.
/// </summary>
public interface IPolicyStore
{
    /// <summary>Appends a version. False (nothing written) when that id already has this version or a newer one.</summary>
    Task<bool> PutAsync(StoredPolicy policy, CancellationToken cancellationToken = default);

    /// <summary>The newest version of <paramref name="id"/>, or the given version; null when there is none.</summary>
    Task<StoredPolicy?> GetAsync(string id, long? version = null, CancellationToken cancellationToken = default);

    /// <summary>The newest version of every policy, ordered by id.</summary>
    Task<IReadOnlyList<StoredPolicy>> ListAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// The id, newest version and hash of every policy, ordered by id, without the documents: a decision reads this on
    /// every request (a change applies to the next request on every replica) and fetches only versions it has not parsed.
    /// </summary>
    Task<IReadOnlyList<PolicyHead>> ListHeadsAsync(CancellationToken cancellationToken = default);

    /// <summary>Every version of one policy, oldest first.</summary>
    Task<IReadOnlyList<StoredPolicy>> HistoryAsync(string id, CancellationToken cancellationToken = default);
}
