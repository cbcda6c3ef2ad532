using System.Data.Common;
using System.Globalization;

namespace Conclave.Storage.Internal;

/// <summary>
/// What the stores of versioned, append-only documents (policies, venue profiles) share: the newest version of an id
/// read under a write transaction, and a query by optional id and version.
/// </summary>
internal static class VersionedRows
{
    /// <summary>
    /// The newest version of <paramref name="id"/> in <paramref name="table"/> (0 when none), read under the write
    /// transaction (SQLite: the database lock; PostgreSQL: the primary key refuses a second row for one version, and a
    /// lower version is refused by the caller).
    /// </summary>
    public static async Task<long> NewestAsync(DbConnection c, DbTransaction tx, string table, string idColumn, string id, CancellationToken ct)
    {
        using DbCommand max = SqlEngine.Command(c, tx, $"SELECT COALESCE(MAX(version), 0) FROM {table} WHERE {idColumn}=@id");
        max.Add("@id", id);
        return Convert.ToInt64(await max.ExecuteScalarAsync(ct).ConfigureAwait(false), CultureInfo.InvariantCulture);
    }

    /// <summary>Runs <paramref name="sql"/> with <c>@id</c> and <c>@v</c> bound when given, one <paramref name="read"/> per row.</summary>
    public static Task<IReadOnlyList<T>> QueryAsync<T>(SqlStore store, string sql, string? id, long? version, Func<DbDataReader, T> read, CancellationToken ct) =>
        store.ReadAsync<IReadOnlyList<T>>(async c =>
        {
            using DbCommand cmd = SqlEngine.Command(c, null, sql);
            if (id is not null)
            {
                cmd.Add("@id", id);
            }

            if (version is not null)
            {
                cmd.Add("@v", version.Value);
            }

            using DbDataReader r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            var list = new List<T>();
            while (await r.ReadAsync(ct).ConfigureAwait(false))
            {
                list.Add(read(r));
            }

            return list;
        }, ct);
}
