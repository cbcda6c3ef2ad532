using System.Data.Common;
using Conclave.Storage.Policy;

namespace Conclave.Storage.Internal;

/// <summary>Venue profiles in <c>venue_profiles</c>: one row per (venue, version), never updated.</summary>
internal sealed class SqlVenueProfileStore(SqlStore store) : IVenueProfileStore
{
    private const string Columns = "venue, version, hash, document, created_by, created_at";

    public Task<bool> PutAsync(StoredVenueProfile profile, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(profile);
        VersionedRows.ValidateNew("profile", profile.Venue, profile.Version, profile.Hash, profile.Document, profile.CreatedBy);
        return VersionedRows.AppendAsync(store, "venue_profiles", "venue", profile.Venue, profile.Version, $"INSERT INTO venue_profiles ({Columns}) VALUES (@id, @v, @h, @d, @by, @at)", ins =>
        {
            ins.Add("@id", profile.Venue);
            ins.Add("@v", profile.Version);
            ins.Add("@h", profile.Hash);
            ins.Add("@d", profile.Document);
            ins.Add("@by", profile.CreatedBy);
            ins.Add("@at", profile.CreatedAt.ToUnixTimeMilliseconds());
        }, cancellationToken);
    }

    public async Task<StoredVenueProfile?> GetAsync(string venue, long? version = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(venue);
        var list = await QueryAsync(VersionedRows.SelectOne(Columns, "venue_profiles", "venue", version), venue, version, cancellationToken).ConfigureAwait(false);
        return list.Count == 0 ? null : list[0];
    }

    public Task<IReadOnlyList<StoredVenueProfile>> ListAsync(CancellationToken cancellationToken = default) =>
        QueryAsync(VersionedRows.SelectNewestOfEach(Columns, "venue_profiles", "venue"), null, null, cancellationToken);

    public Task<IReadOnlyList<StoredVenueProfile>> HistoryAsync(string venue, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(venue);
        return QueryAsync($"SELECT {Columns} FROM venue_profiles WHERE venue=@id ORDER BY version", venue, null, cancellationToken);
    }

    private Task<IReadOnlyList<StoredVenueProfile>> QueryAsync(string sql, string? venue, long? version, CancellationToken ct) =>
        VersionedRows.QueryAsync(store, sql, venue, version, r => new StoredVenueProfile(r.GetString(0), r.GetInt64(1), r.GetString(2), (byte[])r.GetValue(3), r.GetString(4),
            SqlStore.FromMs(r.GetInt64(5))), ct);
}
