using Conclave.Storage;

namespace Conclave.Benchmarks.Storage;

/// <summary>
/// The scratch store a Stopwatch storage harness (<see cref="CounterSteps"/>, <see cref="AuditSteps"/>) runs against:
/// SQLite in a fresh temporary folder (deleted on disposal), or the PostgreSQL database CONCLAVE_TEST_POSTGRES_DB names.
/// </summary>
internal sealed class HarnessStore : IAsyncDisposable
{
    private readonly string _dir;

    private HarnessStore(IConclaveStore store, string dir)
    {
        Store = store;
        _dir = dir;
    }

    public IConclaveStore Store { get; }

    /// <summary>Opens the store of <paramref name="engine"/> ("sqlite" or "postgres"); <paramref name="prefix"/> names the temporary folder.</summary>
    public static async Task<HarnessStore> OpenAsync(string engine, string prefix, StoreOptions? options = null)
    {
        string dir = Path.Combine(Path.GetTempPath(), prefix + Guid.NewGuid().ToString("N"));
        IConclaveStore store = engine == "postgres"
            ? await ConclaveStore.OpenPostgresAsync(Environment.GetEnvironmentVariable("CONCLAVE_TEST_POSTGRES_DB")
                ?? throw new InvalidOperationException("set CONCLAVE_TEST_POSTGRES_DB to a scratch database's connection string"), options).ConfigureAwait(false)
            : await ConclaveStore.OpenSqliteAsync(dir, options).ConfigureAwait(false);
        return new HarnessStore(store, dir);
    }

    /// <summary>The machine's one-minute load average (Linux), for the harness's header line.</summary>
    public static string LoadAverage() => File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "?";

    public async ValueTask DisposeAsync()
    {
        await Store.DisposeAsync().ConfigureAwait(false);
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, true);
        }
    }
}
