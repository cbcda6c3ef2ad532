using System.Data.Common;
using Conclave.Crypto.Kdf;
using Conclave.Storage.Encryption;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Conclave.Storage.Tests;

/// <summary>Creates empty store locations for one engine: a temp folder (SQLite) or a fresh database (PostgreSQL).</summary>
public abstract class EngineHarness
{
    public abstract StoreEngine Engine { get; }

    public abstract Task<TestLocation> NewLocationAsync();

    public static readonly Argon2idParameters FastArgon = Argon2idParameters.ForTests;

    public static IKeyEncryptionKeySource Passphrase(string p = "correct horse battery staple") => PassphraseKek.Source(p, FastArgon);
}

public sealed class SqliteHarness : EngineHarness
{
    public override StoreEngine Engine => StoreEngine.Sqlite;

    public override Task<TestLocation> NewLocationAsync()
    {
        string dir = Path.Combine(Path.GetTempPath(), "conclave-storage-tests", Guid.NewGuid().ToString("N"));
        return Task.FromResult(new TestLocation(
            StoreEngine.Sqlite,
            o => ConclaveStore.OpenSqliteAsync(dir, o),
            async () =>
            {
                var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = Path.Combine(dir, ConclaveStore.SqliteFileName), Pooling = false }.ToString());
                await c.OpenAsync();
                return c;
            },
            () =>
            {
                SqliteConnection.ClearAllPools();
                try
                {
                    Directory.Delete(dir, recursive: true);
                }
                catch (DirectoryNotFoundException)
                {
                }

                return Task.CompletedTask;
            })
        { SqliteDirectory = dir });
    }
}

public sealed class PostgresHarness : EngineHarness
{
    public const string Variable = "CONCLAVE_TEST_POSTGRES";

    public override StoreEngine Engine => StoreEngine.Postgres;

    public static string AdminConnectionString =>
        Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } s
            ? s
            : throw new InvalidOperationException(
                $"{Variable} is not set: the PostgreSQL suite needs a server. Run ./test.sh, or eval \"$(bash scripts/test-services/postgres.sh)\" first.");

    public override async Task<TestLocation> NewLocationAsync()
    {
        string admin = AdminConnectionString;
        string db = "conclave_t_" + Guid.NewGuid().ToString("N")[..16];
        await using (var c = new NpgsqlConnection(admin))
        {
            await c.OpenAsync();
            await using var cmd = new NpgsqlCommand($"CREATE DATABASE {db}", c);
            await cmd.ExecuteNonQueryAsync();
        }

        string cs = new NpgsqlConnectionStringBuilder(admin) { Database = db }.ConnectionString;
        return new TestLocation(
            StoreEngine.Postgres,
            o => ConclaveStore.OpenPostgresAsync(cs, o),
            async () =>
            {
                var c = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(cs) { Pooling = false }.ConnectionString);
                await c.OpenAsync();
                return c;
            },
            async () =>
            {
                await using var c = new NpgsqlConnection(admin);
                await c.OpenAsync();
                await using var cmd = new NpgsqlCommand($"DROP DATABASE IF EXISTS {db} WITH (FORCE)", c);
                await cmd.ExecuteNonQueryAsync();
            })
        { PostgresConnectionString = cs };
    }
}

/// <summary>An empty store location; raw SQL access for tamper tests; dropped on dispose.</summary>
public sealed class TestLocation(
    StoreEngine engine,
    Func<StoreOptions?, Task<IConclaveStore>> open,
    Func<Task<DbConnection>> raw,
    Func<Task> drop) : IAsyncDisposable
{
    public StoreEngine Engine => engine;

    public string? SqliteDirectory { get; init; }

    public string? PostgresConnectionString { get; init; }

    public Task<IConclaveStore> OpenAsync(StoreOptions? options = null) => open(options);

    public async Task<int> ExecAsync(string sql, params (string Name, object? Value)[] parameters)
    {
        await using DbConnection c = await raw();
        await using DbCommand cmd = c.CreateCommand();
        cmd.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            DbParameter p = cmd.CreateParameter();
            p.ParameterName = name;
            p.Value = value ?? DBNull.Value;
            cmd.Parameters.Add(p);
        }

        return await cmd.ExecuteNonQueryAsync();
    }

    public async Task<object?> ScalarAsync(string sql, params (string Name, object? Value)[] parameters)
    {
        await using DbConnection c = await raw();
        await using DbCommand cmd = c.CreateCommand();
        cmd.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            DbParameter p = cmd.CreateParameter();
            p.ParameterName = name;
            p.Value = value ?? DBNull.Value;
            cmd.Parameters.Add(p);
        }

        object? v = await cmd.ExecuteScalarAsync();
        return v is DBNull ? null : v;
    }

    public async ValueTask DisposeAsync() => await drop();
}
