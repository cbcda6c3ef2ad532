using System.Data.Common;
using Conclave.Storage.Internal;

namespace Conclave.Storage.Tests;

/// <summary>
/// SQLite's per-connection settings (durable commits, foreign keys, busy timeout, secure_delete) are set once per
/// database handle, not at every open: every connection the engine hands out must still carry them, new handles and
/// pooled ones alike.
/// </summary>
public sealed class SqliteEngineTests
{
    [Fact]
    public async Task Every_connection_carries_the_durable_settings_whether_its_handle_is_new_or_pooled()
    {
        string dir = Path.Combine(Path.GetTempPath(), "conclave-engine-" + Guid.NewGuid().ToString("N"));
        try
        {
            await using (IConclaveStore store = await ConclaveStore.OpenSqliteAsync(dir))
            {
                SqlEngine engine = ((SqlStore)store).Engine;
                for (int round = 0; round < 3; round++)
                {
                    // Several open at once: the pool must hand out new handles beside the ones it kept.
                    DbConnection[] open = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => engine.OpenAsync(CancellationToken.None)));
                    foreach (DbConnection c in open)
                    {
                        Assert.Equal(2L, await PragmaAsync(c, "synchronous")); // FULL
                        Assert.Equal(1L, await PragmaAsync(c, "foreign_keys"));
                        Assert.Equal(60000L, await PragmaAsync(c, "busy_timeout"));
                        Assert.Equal(1L, await PragmaAsync(c, "secure_delete"));
                        await c.DisposeAsync();
                    }
                }
            }
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    private static async Task<long> PragmaAsync(DbConnection c, string name)
    {
        using DbCommand cmd = c.CreateCommand();
        cmd.CommandText = "PRAGMA " + name;
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }
}
