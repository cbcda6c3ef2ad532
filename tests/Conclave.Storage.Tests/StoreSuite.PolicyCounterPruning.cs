using Conclave.Storage.Policy;

namespace Conclave.Storage.Tests;

/// <summary>
/// Pruning velocity-counter entries no window can reach (issue 16, <see cref="IPolicyCounterStore.PruneAsync"/>): the
/// entries go, the running totals and every decision stay what they were, and reservations racing the pruning on two
/// replicas never overspend.
/// </summary>
public abstract partial class StoreSuite
{
    /// <summary>The longest window a policy can give a limit (366 days, PolicyParser) and a day of clock skew.</summary>
    private static readonly TimeSpan s_pruneHorizon = TimeSpan.FromDays(367);

    private async Task<long> CounterEntryRowsAsync(TestLocation loc, string key) =>
        Convert.ToInt64(await loc.ScalarAsync("SELECT COUNT(*) FROM policy_counter_entries WHERE counter_key=@k", ("@k", key)), System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public async Task Entries_no_window_reaches_are_pruned_in_bounded_batches_and_totals_and_decisions_stay_exact()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using IConclaveStore store = await loc.OpenAsync(WithPassphrase());
        var c = store.PolicyCounters;
        DateTimeOffset old = s_counterNow.AddDays(-400);

        // Twelve old entries, half an hour apart, then three in one millisecond, then two recent ones.
        var oldIds = new List<string>();
        for (int i = 0; i < 12; i++)
        {
            oldIds.Add((await c.TryReserveAsync([CountOne("k", 3)], old.AddMinutes(30 * i)))!);
        }

        for (int i = 0; i < 3; i++)
        {
            Assert.NotNull(await c.TryReserveAsync([CountOne("k", 3)], s_counterNow.AddDays(-380)));
        }

        Assert.NotNull(await c.TryReserveAsync([CountOne("k", 3)], s_counterNow.AddMinutes(-10)));
        Assert.NotNull(await c.TryReserveAsync([CountOne("k", 3)], s_counterNow.AddMinutes(-5)));

        // An idle counter whose old entries are still in its running totals (its last reservation's 30-day window
        // started before them): pruning must take them out of the totals too.
        var monthly = new CounterReservation("idle", 30 * 86400, 1m, 0m, 1, null, null, 4);
        for (int i = 0; i < 4; i++)
        {
            Assert.NotNull(await c.TryReserveAsync([monthly], old.AddHours(i)));
        }

        Assert.Null(await c.TryReserveAsync([monthly], old.AddHours(5)));
        Assert.Equal(17, (await c.ReadAsync("k", 401 * 86400, s_counterNow)).Count);
        Assert.Equal(2, (await c.ReadAsync("k", 366 * 86400, s_counterNow)).Count);

        // Bounded batches, counter by counter in key order ("idle" before "k"): at most the limit, except that entries
        // sharing the last one's millisecond go with it.
        DateTimeOffset before = s_counterNow - s_pruneHorizon;
        Assert.Equal(4, await c.PruneAsync(before, 4));
        Assert.Equal(0, await CounterEntryRowsAsync(loc, "idle"));
        Assert.Equal(17, await CounterEntryRowsAsync(loc, "k"));
        Assert.Equal(4, await c.PruneAsync(before, 4));
        Assert.Equal(13, await CounterEntryRowsAsync(loc, "k"));
        Assert.Equal(13, (await c.ReadAsync("k", 401 * 86400, s_counterNow)).Count);
        Assert.Equal(2, (await c.ReadAsync("k", 366 * 86400, s_counterNow)).Count);
        Assert.Equal(4, await c.PruneAsync(before, 4));
        Assert.Equal(4, await c.PruneAsync(before, 4));
        Assert.Equal(3, await c.PruneAsync(before, 1)); // three in one millisecond: deleted together
        Assert.Equal(0, await c.PruneAsync(before, 100));
        Assert.Equal(2, await CounterEntryRowsAsync(loc, "k"));

        // A window reaching behind the cut sees only what is left; windows a policy can have see what they saw.
        Assert.Equal(2, (await c.ReadAsync("k", 401 * 86400, s_counterNow)).Count);
        Assert.Equal(2, (await c.ReadAsync("k", 366 * 86400, s_counterNow)).Count);
        Assert.Equal(2, (await c.ReadAsync("k", 3600, s_counterNow)).Count);

        // Decisions through the running totals: one more fits under a cap of 3, the next does not; the idle counter's
        // totals lost its pruned entries (else its cap of 4 would still be spent).
        Assert.NotNull(await c.TryReserveAsync([CountOne("k", 3)], s_counterNow));
        Assert.Null(await c.TryReserveAsync([CountOne("k", 3)], s_counterNow));
        Assert.NotNull(await c.TryReserveAsync([monthly with { MaxCount = 1 }], s_counterNow));

        // Releasing a pruned reservation finds nothing and changes nothing.
        Assert.False(await c.ReleaseAsync(oldIds[0], ["k"]));
        Assert.Null(await c.TryReserveAsync([CountOne("k", 3)], s_counterNow));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => c.PruneAsync(before, 0));
    }

    /// <summary>
    /// The brute-force model of <c>Running_totals_equal_a_brute_force_sum_across_jumping_clocks_mixed_windows_and_releases</c>
    /// over more than a year (with idle stretches longer than a year), with windows up to the longest a policy allows and pruning in small batches between steps
    /// (behind the horizon of the current clock, before each step's reservation): the model never prunes, yet every reservation is granted or refused as
    /// it says and every read equals its sum. At the end, every entry behind the horizon is gone.
    /// </summary>
    [Fact]
    public async Task Pruning_changes_no_total_and_no_decision_against_a_brute_force_model_over_more_than_a_year()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using IConclaveStore store = await loc.OpenAsync(WithPassphrase());
        var c = store.PolicyCounters;
        Random r = TestSeed.Random("pruned running totals");
        long[] windows = [60, 86400, 30 * 86400, 366 * 86400];
        var model = new List<(string Id, long AtMs, decimal Native, long Count)>();
        DateTimeOffset clock = s_counterNow;
        long cutMs = long.MinValue; // the furthest horizon pruned so far
        int pruned = 0;
        for (int i = 0; i < 300; i++)
        {
            clock = r.Next(40) == 0
                ? clock.AddDays(r.Next(367, 400)) // the counter idle for over a year: its last entries are still in its totals
                : r.Next(8) switch
                {
                    0 => clock, // same millisecond
                    1 => clock.AddMilliseconds(-r.Next(1, 90_000)), // a clock behind
                    _ => clock.AddMilliseconds(r.Next(0, 5 * 86_400_000)),
                };
            if (r.Next(3) == 0)
            {
                DateTimeOffset before = clock - s_pruneHorizon;
                cutMs = Math.Max(cutMs, before.ToUnixTimeMilliseconds());
                pruned += await c.PruneAsync(before, r.Next(1, 6));
            }

            int w = r.Next(windows.Length);
            long window = windows[w];
            decimal amount = r.Next(1, 40) / 4m;
            decimal cap = w switch { 0 or 1 => r.Next(5, 120), 2 => r.Next(20, 300), _ => r.Next(200, 1500) };
            string where = $"{TestSeed.EnvironmentVariable}={TestSeed.Run} step {i}";
            await ReserveAsTheModelSaysAsync(c, model, window, amount, cap, clock, where);

            var releasable = model.Where(e => e.AtMs > cutMs).ToList();
            if (releasable.Count > 0 && r.Next(6) == 0)
            {
                var gone = releasable[r.Next(releasable.Count)];
                Assert.True(await c.ReleaseAsync(gone.Id, ["k"]), where);
                model.Remove(gone);
            }

            await AssertReadEqualsTheModelAsync(c, model, windows[r.Next(windows.Length)], clock, where);
        }

        pruned += await c.PruneAsync(DateTimeOffset.FromUnixTimeMilliseconds(cutMs), int.MaxValue);
        int behind = model.Count(e => e.AtMs <= cutMs);
        Assert.True(behind > 30, $"only {behind} entries behind the horizon: the walk did not span enough time");
        Assert.Equal(behind, pruned);
        Assert.Equal(model.Count - behind, await CounterEntryRowsAsync(loc, "k"));
        Assert.Equal(0, await c.PruneAsync(DateTimeOffset.FromUnixTimeMilliseconds(cutMs), int.MaxValue));
    }

    /// <summary>
    /// Idle counters whose old entries are still in their running totals (their last reservation's window started
    /// before them) are pruned by both replicas, an entry per call, while 12 reservations per counter race them against a
    /// cap of 10, spread over both replicas: exactly 10 are granted per counter, the totals say 10 on both replicas
    /// afterwards and one more is refused. Eight rounds of four counters, each round's counters pruned only in that round
    /// (their entries are the only ones behind its horizon). A pruning that wrote totals it read without the counter's
    /// lock loses a racing reservation's count and lets reservations through (it failed 5 runs of 5 on PostgreSQL).
    /// </summary>
    [Fact]
    public async Task Reservations_racing_pruning_on_two_replicas_never_overspend_a_limit()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using IConclaveStore a = await loc.OpenAsync(WithPassphrase());
        await using IConclaveStore b = await loc.OpenAsync(WithPassphrase());
        const int Rounds = 8, CountersPerRound = 4, OldEntries = 5, Attempts = 12, Cap = 10;
        DateTimeOffset old = s_counterNow.AddDays(-400);
        string Key(int round, int i) => $"pol/rule/day/p:agent-{round}-{i}";
        for (int round = 0; round < Rounds; round++)
        {
            for (int i = 0; i < CountersPerRound; i++)
            {
                for (int j = 0; j < OldEntries; j++)
                {
                    var monthly = new CounterReservation(Key(round, i), 30 * 86400, 1m, 0m, 1, null, null, null);
                    Assert.NotNull(await a.PolicyCounters.TryReserveAsync([monthly], old.AddDays(round).AddMinutes(j)));
                }
            }
        }

        for (int round = 0; round < Rounds; round++)
        {
            DateTimeOffset before = old.AddDays(round).AddHours(1);
            string[] keys = [.. Enumerable.Range(0, CountersPerRound).Select(i => Key(round, i))];
            var go = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var reservations = keys.SelectMany(key => Enumerable.Range(0, Attempts).Select(i => Task.Run(async () =>
            {
                await go.Task;
                return (key, await (i % 2 == 0 ? a : b).PolicyCounters.TryReserveAsync([CountOne(key, Cap)], s_counterNow));
            }))).ToList();
            var pruners = new[] { a, b }.Select(s => Task.Run(async () =>
            {
                await go.Task;
                int n = 0;
                for (int got; (got = await s.PolicyCounters.PruneAsync(before, 1)) > 0;)
                {
                    n += got;
                }

                return n;
            })).ToList();
            go.SetResult();
            (string Key, string? Id)[] results = await Task.WhenAll(reservations);
            int[] prunedBy = await Task.WhenAll(pruners);

            Assert.Equal(CountersPerRound * OldEntries, prunedBy.Sum() + await a.PolicyCounters.PruneAsync(before, int.MaxValue));
            foreach (string key in keys)
            {
                Assert.Equal(Cap, results.Count(x => x.Key == key && x.Id is not null));
                Assert.Equal(Cap, (await a.PolicyCounters.ReadAsync(key, 3600, s_counterNow)).Count);
                Assert.Equal(Cap, (await b.PolicyCounters.ReadAsync(key, 30 * 86400, s_counterNow)).Count);
                Assert.Equal(Cap, await CounterEntryRowsAsync(loc, key));
                Assert.Null(await a.PolicyCounters.TryReserveAsync([CountOne(key, Cap)], s_counterNow.AddSeconds(1)));
                Assert.Null(await b.PolicyCounters.TryReserveAsync([new CounterReservation(key, 30 * 86400, 1m, 0m, 1, null, null, Cap)], s_counterNow.AddSeconds(1)));
            }
        }
    }
}
