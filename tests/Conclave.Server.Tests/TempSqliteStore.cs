using Conclave.Storage;

namespace Conclave.Server.Tests;

/// <summary>A SQLite store in a fresh temporary folder (a test class initializes one per test); disposing deletes the folder.</summary>
public sealed class TempSqliteStore : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "conclave-store-" + Guid.NewGuid().ToString("N")[..10]);

    public IConclaveStore Store { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_dir);
        Store = await ConclaveStore.OpenSqliteAsync(_dir);
    }

    public async Task DisposeAsync()
    {
        await Store.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }
}
