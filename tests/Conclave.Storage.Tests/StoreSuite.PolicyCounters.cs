using Conclave.Storage.Policy;

namespace Conclave.Storage.Tests;

/// <summary>Velocity counters for policy limits (issue 16): atomic reservation, release, sliding windows, durability.</summary>
public abstract partial class StoreSuite
{
    private static readonly DateTimeOffset s_counterNow = new(2026, 11, 30, 12, 0, 0, TimeSpan.Zero);

    private static CounterReservation CountOne(string key = "p/l/hour/shared", long max = 10) => new(key, 3600, 1m, 2000m, 1, null, null, max);

    [Fact]
    public async Task Counters_reserve_within_caps_release_and_slide()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using IConclaveStore store = await loc.OpenAsync(WithPassphrase());
        var c = store.PolicyCounters;
        var amount = new CounterReservation("p/r/min/p:bot", 60, 8.25m, 16500m, 1, 10m, null, null);
        string? first = await c.TryReserveAsync([amount], s_counterNow);
        Assert.NotNull(first);
        Assert.Equal(new CounterTotals(8.25m, 16500m, 1), await c.ReadAsync("p/r/min/p:bot", 60, s_counterNow));
        Assert.Null(await c.TryReserveAsync([amount with { Native = 2m }], s_counterNow.AddSeconds(1)));
        Assert.NotNull(await c.TryReserveAsync([amount with { Native = 1.75m }], s_counterNow.AddSeconds(1)));
        Assert.Equal(10m, (await c.ReadAsync("p/r/min/p:bot", 60, s_counterNow.AddSeconds(1))).Native);
        Assert.True(await c.ReleaseAsync(first));
        Assert.False(await c.ReleaseAsync(first));
        Assert.Equal(1.75m, (await c.ReadAsync("p/r/min/p:bot", 60, s_counterNow.AddSeconds(1))).Native);
        // The window slides: an entry stops counting exactly window seconds after it was made.
        Assert.Equal(1.75m, (await c.ReadAsync("p/r/min/p:bot", 60, s_counterNow.AddSeconds(60))).Native);
        Assert.Equal(0m, (await c.ReadAsync("p/r/min/p:bot", 60, s_counterNow.AddSeconds(61))).Native);
    }

    [Fact]
    public async Task A_reservation_counts_entries_stamped_after_its_own_time()
    {
        // Concurrent callers read the clock before they take the counter's lock: one that read it earlier may reserve after
        // one that read it later. The later-stamped entry must still count against the cap.
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using IConclaveStore store = await loc.OpenAsync(WithPassphrase());
        var c = store.PolicyCounters;
        Assert.NotNull(await c.TryReserveAsync([CountOne("k", 1)], s_counterNow.AddMilliseconds(5)));
        Assert.Null(await c.TryReserveAsync([CountOne("k", 1)], s_counterNow));
    }

    [Fact]
    public async Task Counters_reserve_all_or_nothing()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using IConclaveStore store = await loc.OpenAsync(WithPassphrase());
        var c = store.PolicyCounters;
        Assert.NotNull(await c.TryReserveAsync([CountOne("a", 1)], s_counterNow));
        Assert.Null(await c.TryReserveAsync([CountOne("b", 5), CountOne("a", 1)], s_counterNow));
        Assert.Equal(0, (await c.ReadAsync("b", 3600, s_counterNow)).Count);
        await Assert.ThrowsAsync<StorageException>(() => c.TryReserveAsync([CountOne("a"), CountOne("a")], s_counterNow));
        await Assert.ThrowsAsync<StorageException>(() => c.TryReserveAsync([CountOne("a") with { Native = -1m }], s_counterNow));
    }

    [Fact]
    public async Task Fifty_concurrent_reservations_against_a_limit_of_ten_allow_exactly_ten_across_two_replicas_and_a_restart()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using (IConclaveStore a = await loc.OpenAsync(WithPassphrase()))
        await using (IConclaveStore b = await loc.OpenAsync(WithPassphrase()))
        {
            var tasks = Enumerable.Range(0, 50).Select(i => Task.Run(() => (i % 2 == 0 ? a : b).PolicyCounters.TryReserveAsync([CountOne()], s_counterNow))).ToList();
            string?[] ids = await Task.WhenAll(tasks);
            Assert.Equal(10, ids.Count(id => id is not null));
            Assert.Equal(10, (await a.PolicyCounters.ReadAsync("p/l/hour/shared", 3600, s_counterNow)).Count);
            Assert.Equal(10, (await b.PolicyCounters.ReadAsync("p/l/hour/shared", 3600, s_counterNow)).Count);
        }

        // After a restart the spending is still there; the limit still holds.
        await using IConclaveStore reopened = await loc.OpenAsync(WithPassphrase());
        Assert.Equal(10, (await reopened.PolicyCounters.ReadAsync("p/l/hour/shared", 3600, s_counterNow.AddMinutes(5))).Count);
        Assert.Null(await reopened.PolicyCounters.TryReserveAsync([CountOne()], s_counterNow.AddMinutes(5)));
        Assert.NotNull(await reopened.PolicyCounters.TryReserveAsync([CountOne()], s_counterNow.AddHours(1)));
    }
}
