using System.Data.Common;
using Microsoft.Data.Sqlite;

namespace Conclave.Storage.Internal;

/// <summary>
/// SQLite through Microsoft.Data.Sqlite: one file per store, WAL journal, <c>synchronous=FULL</c> so every commit
/// (a consumed nonce, an audit batch) is fsync'd before it returns, foreign keys on, in-process writers serialised.
/// </summary>
internal sealed class SqliteEngine : SqlEngine
{
    public const string FileName = "conclave.db";
    private readonly string _connectionString;
    private readonly string _path;

    /// <summary>The database handles whose per-connection settings are set (weakly held: a handle the pool closes drops out).</summary>
    private readonly System.Runtime.CompilerServices.ConditionalWeakTable<SQLitePCL.sqlite3, object> _configured = new();
    private static readonly object Configured = new();

    public SqliteEngine(string path, bool readOnly = false)
    {
        _path = path;
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = readOnly ? SqliteOpenMode.ReadOnly : SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            Pooling = true,
            DefaultTimeout = 60,
        }.ToString();
        WriteGate = new SemaphoreSlim(1, 1);
    }

    public override StoreEngine Kind => StoreEngine.Sqlite;

    public override string Description => "sqlite:" + _path;

    public override string BlobType => "BLOB";

    public override string ForUpdate => "";

    public override string ClusteredTable => " WITHOUT ROWID";

    public override async Task<DbConnection> OpenAsync(CancellationToken ct)
    {
        var c = new SqliteConnection(_connectionString);
        try
        {
            await c.OpenAsync(ct).ConfigureAwait(false);
            if (_configured.TryGetValue(c.Handle!, out _))
            {
                return c; // a pooled database handle this engine configured when it was opened: the settings are on it
            }

            using var cmd = c.CreateCommand();
            // Per-connection settings: durable commits, referential integrity, wait for other processes' locks.
            // secure_delete: deleted rows (an erased share) are overwritten with zeros, not left in free pages.
            // They belong to the database handle, which the pool keeps across opens, so they are set once per handle
            // (four statements at every open were about 30 µs of every read and commit).
            cmd.CommandText = "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=60000; PRAGMA secure_delete=ON;";
            await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            _configured.AddOrUpdate(c.Handle!, Configured);
            return c;
        }
        catch
        {
            await c.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public override Task<DbTransaction> BeginWriteAsync(DbConnection connection, CancellationToken ct)
    {
        // Microsoft.Data.Sqlite: deferred=false issues BEGIN IMMEDIATE (the write lock is taken now, no upgrade deadlock).
        // SQLite is synchronous underneath; there is no async overload taking 'deferred'.
        ct.ThrowIfCancellationRequested();
        return Task.FromResult<DbTransaction>(((SqliteConnection)connection).BeginTransaction(deferred: false));
    }

    public override async Task<bool> TableExistsAsync(DbConnection connection, string table, CancellationToken ct)
    {
        using var cmd = connection.CreateCommand();
        cmd.CommandText = "SELECT COUNT(*) FROM sqlite_master WHERE type='table' AND name=@t";
        cmd.Add("@t", table);
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture) > 0;
    }

    public override Task LockForMigrationAsync(DbConnection connection, DbTransaction tx, CancellationToken ct) => Task.CompletedTask;

    public override async Task PrepareAsync(DbConnection connection, CancellationToken ct)
    {
        using var cmd = connection.CreateCommand();
        cmd.CommandText = "PRAGMA journal_mode=WAL;";
        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    public override async Task ScrubAsync(CancellationToken ct)
    {
        // The WAL still holds the pages as they were before the delete: copy the zeroed pages back into the database
        // and truncate the log. A reader holding an old snapshot can make the checkpoint incomplete; it is retried.
        for (int attempt = 0; attempt < 50; attempt++)
        {
            DbConnection c = await OpenAsync(ct).ConfigureAwait(false);
            await using (c.ConfigureAwait(false))
            {
                using var cmd = c.CreateCommand();
                cmd.CommandText = "PRAGMA wal_checkpoint(TRUNCATE);";
                using DbDataReader r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
                if (await r.ReadAsync(ct).ConfigureAwait(false) && r.GetInt64(0) == 0)
                {
                    return;
                }
            }

            await Task.Delay(20, ct).ConfigureAwait(false);
        }

        throw StorageErrors.Io("checkpoint after erase", new TimeoutException("the write-ahead log could not be truncated; a reader held it"));
    }

    /// <summary>
    /// Rebuilds <paramref name="table"/>: its live rows are copied into a new table of the same definition, the old
    /// table is dropped (with <c>secure_delete</c> every page it held is zeroed as it is freed) and the new one takes its
    /// name; its indexes and triggers are created again. <c>secure_delete</c> alone zeroes a deleted row only where it
    /// lies at the delete: when a balance of the b-tree moved it before (an insert or a delete of another row on its
    /// page or a sibling), SQLite rebuilt the pages without clearing the space the row left, and that copy stayed in the
    /// file after the delete (NodeChaosTests found a retired share so; SqliteEraseTests). Costs a copy of the table's
    /// live rows per erase: for key_secrets, one sealed share per key version the store holds.
    /// </summary>
    public override async Task RewriteAfterEraseAsync(DbConnection connection, DbTransaction tx, string table, CancellationToken ct)
    {
        string? ddl = null;
        var dependents = new List<string>();
        using (DbCommand cmd = Command(connection, tx, "SELECT type, sql FROM sqlite_master WHERE tbl_name=@t AND sql IS NOT NULL"))
        {
            cmd.Add("@t", table);
            using DbDataReader r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await r.ReadAsync(ct).ConfigureAwait(false))
            {
                if (r.GetString(0) == "table")
                {
                    ddl = r.GetString(1);
                }
                else
                {
                    dependents.Add(r.GetString(1)); // explicit indexes and triggers (the primary key's index comes with the table)
                }
            }
        }

        int columns = ddl?.IndexOf('(', StringComparison.Ordinal) ?? -1;
        if (columns < 0)
        {
            throw StorageErrors.Io("rewrite after erase", new InvalidOperationException($"no definition of table {table}"));
        }

        string scratch = table + "_rewrite";
        string[] steps =
        [
            $"CREATE TABLE {scratch} {ddl![columns..]}",
            $"INSERT INTO {scratch} SELECT * FROM {table}",
            $"DROP TABLE {table}",
            $"ALTER TABLE {scratch} RENAME TO {table}",
            .. dependents,
        ];
        foreach (string sql in steps)
        {
            using DbCommand cmd = Command(connection, tx, sql);
            await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }
    }

    public override bool IsUniqueViolation(Exception e) =>
        e is SqliteException s && s.SqliteErrorCode == 19 && s.SqliteExtendedErrorCode is 2067 or 1555;

    public override ValueTask DisposeAsync()
    {
        WriteGate?.Dispose();
        SqliteConnection.ClearAllPools();
        return ValueTask.CompletedTask;
    }
}
