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

    public override async Task<DbConnection> OpenAsync(CancellationToken ct)
    {
        var c = new SqliteConnection(_connectionString);
        try
        {
            await c.OpenAsync(ct).ConfigureAwait(false);
            using var cmd = c.CreateCommand();
            // Per-connection settings: durable commits, referential integrity, wait for other processes' locks.
            cmd.CommandText = "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=60000;";
            await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
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

    public override bool IsUniqueViolation(Exception e) =>
        e is SqliteException s && s.SqliteErrorCode == 19 && s.SqliteExtendedErrorCode is 2067 or 1555;

    public override ValueTask DisposeAsync()
    {
        WriteGate?.Dispose();
        SqliteConnection.ClearAllPools();
        return ValueTask.CompletedTask;
    }
}
