namespace Conclave.Storage.Policy;

/// <summary>
/// One version of a venue profile as stored (issue 16 "Typed operations"): the venue it describes, its version (1, 2, …
/// per venue), the canonical content hash (<c>sha256:…</c>, computed by Conclave.Policy), the profile text as it was
/// put (UTF-8 JSON), who put it and when. A version is never changed once written.
/// </summary>
public sealed record StoredVenueProfile(string Venue, long Version, string Hash, byte[] Document, string CreatedBy, DateTimeOffset CreatedAt);

/// <summary>
/// Versioned venue profiles (table <c>venue_profiles</c>, migration 16). Every replica on one database sees the same
/// set; a version is appended only if it is newer than every stored version of that venue, so two replicas racing to
/// put the same version cannot both succeed.
/// </summary>
public interface IVenueProfileStore
{
    /// <summary>Appends a version. False (nothing written) when that venue already has this version or a newer one.</summary>
    Task<bool> PutAsync(StoredVenueProfile profile, CancellationToken cancellationToken = default);

    /// <summary>The newest version of <paramref name="venue"/>, or the given version; null when there is none.</summary>
    Task<StoredVenueProfile?> GetAsync(string venue, long? version = null, CancellationToken cancellationToken = default);

    /// <summary>The newest version of every venue's profile, ordered by venue.</summary>
    Task<IReadOnlyList<StoredVenueProfile>> ListAsync(CancellationToken cancellationToken = default);

    /// <summary>Every version of one venue's profile, oldest first.</summary>
    Task<IReadOnlyList<StoredVenueProfile>> HistoryAsync(string venue, CancellationToken cancellationToken = default);
}
