using Conclave.Policy.Documents;
using Conclave.Server.Policy;
using Conclave.Storage;
using Conclave.Storage.Policy;

namespace Conclave.Server.Tests;

/// <summary>
/// The server's pruning of velocity-counter entries (docs/STORAGE.md "Pruning"): an entry is deleted once it is older than
/// the longest window a policy can give a limit plus a day of clock skew, and not before; what the longest window
/// counts is unchanged. The store's side (batches, running totals, races) is tested in StoreSuite.PolicyCounterPruning.
/// </summary>
public sealed class PolicyCounterPruningTests : IAsyncLifetime
{
    private readonly TempSqliteStore _temp = new(); // a fresh store for each test

    private IConclaveStore Store => _temp.Store;

    public Task InitializeAsync() => _temp.InitializeAsync();

    public Task DisposeAsync() => _temp.DisposeAsync();

    private sealed class FixedClock(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
    }

    [Fact]
    public async Task Entries_older_than_the_longest_window_and_a_day_are_pruned_and_the_longest_window_counts_the_same()
    {
        var now = new DateTimeOffset(2027, 6, 1, 0, 0, 0, TimeSpan.Zero);
        Assert.Equal(TimeSpan.FromDays(367), PolicyCounterPruning.Horizon);
        var c = Store.PolicyCounters;
        static CounterReservation One(long window) => new("p/r/year/p:bot", window, 1m, 0m, 1, null, null, null);

        // Stamped just past the horizon, just inside it (older than any window, but within the skew allowance), and inside
        // the longest window.
        Assert.NotNull(await c.TryReserveAsync([One(60)], now - PolicyCounterPruning.Horizon - TimeSpan.FromSeconds(1)));
        Assert.NotNull(await c.TryReserveAsync([One(60)], now - PolicyCounterPruning.Horizon + TimeSpan.FromSeconds(1)));
        Assert.NotNull(await c.TryReserveAsync([One(VelocityLimit.MaxWindowSeconds)], now - TimeSpan.FromDays(366) + TimeSpan.FromSeconds(1)));
        CounterTotals year = await c.ReadAsync("p/r/year/p:bot", VelocityLimit.MaxWindowSeconds, now);
        Assert.Equal(1, year.Count);

        var pruning = new PolicyCounterPruning(c, new FixedClock(now));
        Assert.Equal(1, await pruning.PruneOnceAsync(CancellationToken.None));
        Assert.Equal(0, await pruning.PruneOnceAsync(CancellationToken.None));
        Assert.Equal(year, await c.ReadAsync("p/r/year/p:bot", VelocityLimit.MaxWindowSeconds, now));
        Assert.Equal(2, (await c.ReadAsync("p/r/year/p:bot", 2 * VelocityLimit.MaxWindowSeconds, now)).Count); // the one past the horizon is gone

        // A day later, the second is past the horizon too.
        Assert.Equal(1, await new PolicyCounterPruning(c, new FixedClock(now.AddDays(1))).PruneOnceAsync(CancellationToken.None));
        Assert.Equal(year, await c.ReadAsync("p/r/year/p:bot", VelocityLimit.MaxWindowSeconds, now));
    }
}
