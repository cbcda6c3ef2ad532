using System.Data;
using System.Data.Common;

namespace Conclave.Storage.Internal;

/// <summary>
/// The only place where SQLite and PostgreSQL differ: connections, DDL types, write transactions, locking and
/// error codes. All queries elsewhere are written once in the common subset (named <c>@parameters</c>,
/// <c>ON CONFLICT</c>, <c>RETURNING</c>, <c>LIMIT</c>).
/// </summary>
internal abstract class SqlEngine : IAsyncDisposable
{
    public abstract StoreEngine Kind { get; }

    /// <summary>A short, secret-free description (file path or host/database).</summary>
    public abstract string Description { get; }

    /// <summary>Type for binary columns.</summary>
    public abstract string BlobType { get; }

    /// <summary>Suffix that locks the selected row for the rest of the transaction (PostgreSQL: FOR UPDATE).</summary>
    public abstract string ForUpdate { get; }

    /// <summary>
    /// Table option that stores a table's rows in its primary key's b-tree (SQLite: <c>WITHOUT ROWID</c>), so a table
    /// keyed the way it is read needs no index of its own; empty where tables are heaps (PostgreSQL).
    /// </summary>
    public virtual string ClusteredTable => "";

    /// <summary>Whether this engine serialises in-process writers itself (SQLite has one writer per file).</summary>
    public SemaphoreSlim? WriteGate { get; protected init; }

    public abstract Task<DbConnection> OpenAsync(CancellationToken ct);

    /// <summary>Begins a transaction that will write: SQLite takes the write lock at once (BEGIN IMMEDIATE).</summary>
    public abstract Task<DbTransaction> BeginWriteAsync(DbConnection connection, CancellationToken ct);

    public abstract Task<bool> TableExistsAsync(DbConnection connection, string table, CancellationToken ct);

    /// <summary>Serialises concurrent migrators (PostgreSQL replicas starting together). Inside a write transaction.</summary>
    public abstract Task LockForMigrationAsync(DbConnection connection, DbTransaction tx, CancellationToken ct);

    /// <summary>One-time preparation before migrations (SQLite: WAL mode).</summary>
    public abstract Task PrepareAsync(DbConnection connection, CancellationToken ct);

    public abstract bool IsUniqueViolation(Exception e);

    /// <summary>
    /// Makes erased rows unrecoverable from the database files where the engine allows it (SQLite: deleted content is
    /// zeroed by <c>secure_delete</c> and the write-ahead log, which still holds the old pages, is checkpointed and
    /// truncated). PostgreSQL keeps dead tuples until VACUUM: docs/ROTATION.md says what an operator does there.
    /// </summary>
    public virtual Task ScrubAsync(CancellationToken ct) => Task.CompletedTask;

    /// <summary>
    /// Inside the caller's write transaction, after rows of <paramref name="table"/> were deleted: leaves no copy of a
    /// deleted row in the table's pages where the engine allows it (SQLite: <c>secure_delete</c> zeroes the row where it
    /// was, but a b-tree balance that moved rows between pages earlier left the bytes they moved from in the pages' unused
    /// space; the table is rebuilt so those pages are freed and zeroed). Then <see cref="ScrubAsync"/> after the commit.
    /// </summary>
    public virtual Task RewriteAfterEraseAsync(DbConnection connection, DbTransaction tx, string table, CancellationToken ct) => Task.CompletedTask;

    public string Ddl(string template) => template.Replace("{blob}", BlobType, StringComparison.Ordinal).Replace("{clustered}", ClusteredTable, StringComparison.Ordinal);

    public virtual ValueTask DisposeAsync() => ValueTask.CompletedTask;

    public static DbCommand Command(DbConnection connection, DbTransaction? tx, string sql)
    {
        DbCommand cmd = connection.CreateCommand();
        cmd.CommandText = sql;
        cmd.Transaction = tx;
        return cmd;
    }

    /// <summary>
    /// A command for a statement run at every commit of a busy writer: on a <see cref="WriterConnection"/> the connection's
    /// compiled command for <paramref name="sql"/> (parameters cleared), elsewhere a new one. Dispose the lease either way.
    /// </summary>
    public static Statement Statement(DbConnection connection, DbTransaction? tx, string sql)
    {
        WriterConnection.StatementCache? cache = WriterConnection.CacheOf(connection);
        if (cache?.Take(sql) is { } cached)
        {
            cached.Transaction = tx;
            return new Statement(cached, cache, sql);
        }

        return new Statement(Command(connection, tx, sql), cache, sql);
    }
}

internal static class DbExtensions
{
    public static DbParameter Add(this DbCommand cmd, string name, object? value)
    {
        DbParameter p = cmd.CreateParameter();
        p.ParameterName = name;
        p.Value = value ?? DBNull.Value;
        cmd.Parameters.Add(p);
        return p;
    }

    public static DbParameter AddTyped(this DbCommand cmd, string name, DbType type)
    {
        DbParameter p = cmd.CreateParameter();
        p.ParameterName = name;
        p.DbType = type;
        cmd.Parameters.Add(p);
        return p;
    }

    /// <summary>Runs the query and maps every row with <paramref name="read"/>, in the order the rows come.</summary>
    public static async Task<List<T>> ListAsync<T>(this DbCommand cmd, Func<DbDataReader, T> read, CancellationToken ct)
    {
        using DbDataReader r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        var list = new List<T>();
        while (await r.ReadAsync(ct).ConfigureAwait(false))
        {
            list.Add(read(r));
        }

        return list;
    }

    public static byte[]? GetBytesOrNull(this DbDataReader r, int i) => r.IsDBNull(i) ? null : (byte[])r.GetValue(i);

    public static string? GetStringOrNull(this DbDataReader r, int i) => r.IsDBNull(i) ? null : r.GetString(i);

    public static long? GetInt64OrNull(this DbDataReader r, int i) => r.IsDBNull(i) ? null : r.GetInt64(i);
}
