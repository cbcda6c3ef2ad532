using System.Data.Common;
using Npgsql;

namespace Conclave.Storage.Internal;

/// <summary>
/// PostgreSQL through Npgsql: shared by server replicas; row locks (<c>FOR UPDATE</c>) and single-statement
/// conditional updates make nonce consumption and audit appends safe across processes. Commits rely on the
/// server's <c>synchronous_commit=on</c> (the default), which the engine sets per session to be sure.
/// </summary>
internal sealed class PostgresEngine : SqlEngine
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly string _description;

    public PostgresEngine(string connectionString)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        _description = $"postgres:{builder.Host}:{builder.Port}/{builder.Database}";
        builder.Options = ((builder.Options ?? "") + " -c synchronous_commit=on").Trim();
        _dataSource = NpgsqlDataSource.Create(builder.ConnectionString);
    }

    public override StoreEngine Kind => StoreEngine.Postgres;

    public override string Description => _description;

    public override string BlobType => "BYTEA";

    public override string ForUpdate => " FOR UPDATE";

    public override async Task<DbConnection> OpenAsync(CancellationToken ct) =>
        await _dataSource.OpenConnectionAsync(ct).ConfigureAwait(false);

    public override async Task<DbTransaction> BeginWriteAsync(DbConnection connection, CancellationToken ct) =>
        await connection.BeginTransactionAsync(System.Data.IsolationLevel.ReadCommitted, ct).ConfigureAwait(false);

    public override async Task<bool> TableExistsAsync(DbConnection connection, string table, CancellationToken ct)
    {
        using var cmd = connection.CreateCommand();
        cmd.CommandText = "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name=@t";
        cmd.Add("@t", table);
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture) > 0;
    }

    public override async Task LockForMigrationAsync(DbConnection connection, DbTransaction tx, CancellationToken ct)
    {
        using var cmd = SqlEngine.Command(connection, tx, "SELECT pg_advisory_xact_lock(7177001)");
        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    public override Task PrepareAsync(DbConnection connection, CancellationToken ct) => Task.CompletedTask;

    public override bool IsUniqueViolation(Exception e) => e is PostgresException p && p.SqlState == PostgresErrorCodes.UniqueViolation;

    public override async ValueTask DisposeAsync() => await _dataSource.DisposeAsync().ConfigureAwait(false);
}
