using BenchmarkDotNet.Attributes;
using Conclave.Storage;
using Conclave.Storage.Audit;
using Conclave.Storage.Nonces;
using Npgsql;

namespace Conclave.Benchmarks.Storage;

/// <summary>
/// Storage throughput per engine: audit appends with group commit (many concurrent appenders, one durable commit per
/// batch), a single appender waiting for each commit, and durable nonce consumption (one fsync'd commit each).
/// Operations per second = 1 / (reported mean per operation). PostgreSQL needs CONCLAVE_TEST_POSTGRES
/// (eval "$(bash scripts/test-services/postgres.sh)").
/// </summary>
public class StorageBenchmarks
{
    private const int ConcurrentAppends = 4096;
    private const int NonceBatch = 64;
    private const int Pool = 200_000;

    private IConclaveStore _store = null!;
    private string? _dir;
    private string? _database;
    private int _next;

    [Params("sqlite", "postgres")]
    public string Engine { get; set; } = "sqlite";

    [GlobalSetup]
    public void Setup() => SetupAsync().GetAwaiter().GetResult();

    private async Task SetupAsync()
    {
        if (Engine == "sqlite")
        {
            _dir = Path.Combine(Path.GetTempPath(), "conclave-bench-" + Guid.NewGuid().ToString("N"));
            _store = await ConclaveStore.OpenSqliteAsync(_dir);
        }
        else
        {
            string admin = Environment.GetEnvironmentVariable("CONCLAVE_TEST_POSTGRES")
                ?? throw new InvalidOperationException("CONCLAVE_TEST_POSTGRES is not set: eval \"$(bash scripts/test-services/postgres.sh)\"");
            _database = "conclave_bench_" + Guid.NewGuid().ToString("N")[..12];
            await using (var c = new NpgsqlConnection(admin))
            {
                await c.OpenAsync();
                await using var cmd = new NpgsqlCommand($"CREATE DATABASE {_database}", c);
                await cmd.ExecuteNonQueryAsync();
            }

            _store = await ConclaveStore.OpenPostgresAsync(new NpgsqlConnectionStringBuilder(admin) { Database = _database }.ConnectionString);
        }

        for (int start = 0; start < Pool; start += 50_000)
        {
            await _store.Nonces.IssueAsync([.. Enumerable.Range(start, 50_000).Select(i => new NonceIssue(Id(i), "bench", NonceKind.Nonce))]);
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _store.DisposeAsync().AsTask().GetAwaiter().GetResult();
        if (_dir is not null)
        {
            Directory.Delete(_dir, true);
        }

        if (_database is not null)
        {
            using var c = new NpgsqlConnection(Environment.GetEnvironmentVariable("CONCLAVE_TEST_POSTGRES"));
            c.Open();
            using var cmd = new NpgsqlCommand($"DROP DATABASE IF EXISTS {_database} WITH (FORCE)", c);
            cmd.ExecuteNonQuery();
        }
    }

    private static byte[] Id(int i) => BitConverter.GetBytes((long)i).Reverse().ToArray();

    private static readonly AuditEntryInput s_entry = new("agent-liquidator-1", "sign", "key-perp-margin", new byte[32], "allow", "ok");

    [Benchmark(Description = "audit append, 4096 concurrent (group commit), per entry", OperationsPerInvoke = ConcurrentAppends)]
    public Task AuditAppendGroupCommit()
    {
        var tasks = new Task[ConcurrentAppends];
        for (int i = 0; i < tasks.Length; i++)
        {
            tasks[i] = _store.Audit.AppendAsync(s_entry);
        }

        return Task.WhenAll(tasks);
    }

    [Benchmark(Description = "audit append, one appender (commit per entry)")]
    public Task AuditAppendSequential() => _store.Audit.AppendAsync(s_entry);

    [Benchmark(Description = "nonce consume (durable), per consumption", OperationsPerInvoke = NonceBatch)]
    public async Task NonceConsume()
    {
        for (int i = 0; i < NonceBatch; i++)
        {
            int n = Interlocked.Increment(ref _next);
            if (n >= Pool || !await _store.Nonces.TryConsumeAsync(Id(n)))
            {
                throw new InvalidOperationException("nonce pool exhausted or consumption failed");
            }
        }
    }

    [Benchmark(Description = "nonce consume (durable), 16 concurrent consumers, per consumption", OperationsPerInvoke = NonceBatch)]
    public Task NonceConsumeConcurrent()
    {
        var tasks = new Task[16];
        for (int t = 0; t < tasks.Length; t++)
        {
            tasks[t] = Task.Run(async () =>
            {
                for (int i = 0; i < NonceBatch / 16; i++)
                {
                    int n = Interlocked.Increment(ref _next);
                    if (n >= Pool || !await _store.Nonces.TryConsumeAsync(Id(n)))
                    {
                        throw new InvalidOperationException("nonce pool exhausted or consumption failed");
                    }
                }
            });
        }

        return Task.WhenAll(tasks);
    }
}
