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

    /// <summary>
    /// Appends a version with <paramref name="insertSql"/> (its parameters bound by <paramref name="bind"/>) only if
    /// <paramref name="version"/> is newer than every stored version of <paramref name="id"/>; false when not written.
    /// </summary>
    public static Task<bool> AppendAsync(SqlStore store, string table, string idColumn, string id, long version, string insertSql, Action<DbCommand> bind,
        CancellationToken ct) =>
        store.WriteAsync(async (c, tx) =>
        {
            if (await NewestAsync(c, tx, table, idColumn, id, ct).ConfigureAwait(false) >= version)
            {
                return false;
            }

            using DbCommand ins = SqlEngine.Command(c, tx, insertSql + " ON CONFLICT DO NOTHING");
            bind(ins);
            return await ins.ExecuteNonQueryAsync(ct).ConfigureAwait(false) == 1;
        }, ct);

    /// <summary>Checks a version to append: <c>WHAT.Id</c>, hash and author not empty, version 1 or more, a document.</summary>
    public static void ValidateNew(string what, string id, long version, string hash, byte[]? document, string createdBy)
    {
        Validate.Identifier(id, what + ".Id");
        Validate.Text(hash, what + ".Hash");
        Validate.Text(createdBy, what + ".CreatedBy");
        if (version < 1)
        {
            throw StorageErrors.Invalid(what + ".Version", "must be 1 or more");
        }

        if (document is null || document.Length == 0)
        {
            throw StorageErrors.Invalid(what + ".Document", "must not be empty");
        }
    }

    /// <summary>The query for one id's newest version (no <paramref name="version"/>) or the given one (<c>@v</c>).</summary>
    public static string SelectOne(string columns, string table, string idColumn, long? version) => version is null
        ? $"SELECT {columns} FROM {table} WHERE {idColumn}=@id ORDER BY version DESC LIMIT 1"
        : $"SELECT {columns} FROM {table} WHERE {idColumn}=@id AND version=@v";

    /// <summary>The query for the newest version of every id, ordered by id.</summary>
    public static string SelectNewestOfEach(string columns, string table, string idColumn) =>
        $"SELECT {columns} FROM {table} p WHERE version = (SELECT MAX(version) FROM {table} q WHERE q.{idColumn} = p.{idColumn}) ORDER BY {idColumn}";

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

            return await cmd.ListAsync(read, ct).ConfigureAwait(false);
        }, ct);
}
