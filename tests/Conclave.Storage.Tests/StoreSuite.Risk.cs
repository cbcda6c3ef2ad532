using Conclave.Storage.Risk;

namespace Conclave.Storage.Tests;

/// <summary>The risk level store (issue 16 "Risk levels"): one state changed under a lock, price samples, lockdown-exit votes.</summary>
public abstract partial class StoreSuite
{
    private static readonly DateTimeOffset s_riskNow = new(2026, 11, 30, 12, 0, 0, TimeSpan.Zero);

    private static StoredRiskState Level(string level, DateTimeOffset since) =>
        new(level, since, [$"because {level}"], since, "normal", null, null, null, 0);

    [Fact]
    public async Task Threat_counts_are_added_per_second_by_every_replica_read_by_window_and_pruned()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using IConclaveStore a = await loc.OpenAsync(WithPassphrase());
        await using IConclaveStore b = await loc.OpenAsync(WithPassphrase());
        Assert.Empty(await a.Risk.ReadThreatsAsync(s_riskNow.AddHours(-1)));
        await a.Risk.AddThreatsAsync([new(s_riskNow, 3), new(s_riskNow.AddSeconds(1), 1)], s_riskNow.AddHours(-1));
        // Another replica adds to the same second.
        await b.Risk.AddThreatsAsync([new(s_riskNow, 2), new(s_riskNow.AddSeconds(-200), 7)], s_riskNow.AddHours(-1));
        Assert.Equal([new StoredThreatBucket(s_riskNow.AddSeconds(-200), 7), new(s_riskNow, 5), new(s_riskNow.AddSeconds(1), 1)],
            await a.Risk.ReadThreatsAsync(s_riskNow.AddSeconds(-300)));
        Assert.Equal([new StoredThreatBucket(s_riskNow, 5), new(s_riskNow.AddSeconds(1), 1)], await b.Risk.ReadThreatsAsync(s_riskNow.AddSeconds(-100)));

        // Fifty concurrent additions to one second from both replicas: none is lost.
        await Task.WhenAll(Enumerable.Range(0, 50).Select(i => Task.Run(() => (i % 2 == 0 ? a : b).Risk.AddThreatsAsync([new(s_riskNow.AddSeconds(2), 1)], s_riskNow.AddHours(-1)))));
        Assert.Equal(50, (await a.Risk.ReadThreatsAsync(s_riskNow.AddSeconds(1))).Single().Count);

        // Seconds before the prune time go.
        await a.Risk.AddThreatsAsync([new(s_riskNow.AddSeconds(3), 1)], s_riskNow);
        Assert.Equal([s_riskNow, s_riskNow.AddSeconds(1), s_riskNow.AddSeconds(2), s_riskNow.AddSeconds(3)],
            (await b.Risk.ReadThreatsAsync(s_riskNow.AddHours(-1))).Select(t => t.At));
        Assert.Equal(StorageErrorKind.InvalidArgument, (await Assert.ThrowsAsync<StorageException>(() => a.Risk.AddThreatsAsync([new(s_riskNow, 0)], s_riskNow))).Kind);
        Assert.Equal(StorageErrorKind.InvalidArgument,
            (await Assert.ThrowsAsync<StorageException>(() => a.Risk.AddThreatsAsync([new(s_riskNow.AddMilliseconds(5), 1)], s_riskNow))).Kind);
    }

    [Fact]
    public async Task Risk_state_is_null_until_written_then_versioned_durable_and_shared_by_two_replicas()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using (IConclaveStore a = await loc.OpenAsync(WithPassphrase()))
        await using (IConclaveStore b = await loc.OpenAsync(WithPassphrase()))
        {
            Assert.Null(await a.Risk.GetAsync());
            var (before, after) = await a.Risk.UpdateAsync(_ => Level("elevated", s_riskNow));
            Assert.Null(before);
            Assert.Equal(1, after!.Version);
            StoredRiskState seen = (await b.Risk.GetAsync())!;
            Assert.Equal("elevated", seen.Level);
            Assert.Equal(s_riskNow, seen.Since);
            Assert.Equal(["because elevated"], seen.Reasons);

            // A null change writes nothing.
            var (same, unchanged) = await b.Risk.UpdateAsync(_ => null);
            Assert.Equal(1, unchanged!.Version);
            Assert.Equal(same, unchanged);

            var (_, manual) = await b.Risk.UpdateAsync(s => s! with { ManualLevel = "stressed", ManualBy = "ops", ManualReason = "FOMC", ManualAt = s_riskNow.AddMinutes(1), Level = "stressed" });
            Assert.Equal(2, manual!.Version);
        }

        await using IConclaveStore reopened = await loc.OpenAsync(WithPassphrase());
        StoredRiskState r = (await reopened.Risk.GetAsync())!;
        Assert.Equal(("stressed", "stressed", "ops", "FOMC", s_riskNow.AddMinutes(1), 2L), (r.Level, r.ManualLevel, r.ManualBy, r.ManualReason, r.ManualAt, r.Version));
    }

    [Fact]
    public async Task Risk_updates_from_two_replicas_apply_one_at_a_time()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using IConclaveStore a = await loc.OpenAsync(WithPassphrase());
        await using IConclaveStore b = await loc.OpenAsync(WithPassphrase());
        // Each update appends a reason to what it read: lost updates would leave fewer than 20.
        await Task.WhenAll(Enumerable.Range(0, 20).Select(i => Task.Run(() => (i % 2 == 0 ? a : b).Risk.UpdateAsync(s =>
            (s ?? Level("normal", s_riskNow)) with { Reasons = [.. (s?.Reasons ?? []), $"r{i}"] }))));
        StoredRiskState r = (await a.Risk.GetAsync())!;
        Assert.Equal(20, r.Version);
        Assert.Equal(20, r.Reasons.Count(x => x.StartsWith('r')));
    }

    [Fact]
    public async Task Risk_prices_keep_exact_decimals_prune_old_samples_but_never_a_sources_latest()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using IConclaveStore store = await loc.OpenAsync(WithPassphrase());
        await store.Risk.AddPricesAsync(
        [
            new("BTC-USD", s_riskNow.AddHours(-5), 60000.123456789012345m),
            new("ETH-USD", s_riskNow.AddHours(-3), 3000m),
            new("ETH-USD", s_riskNow.AddMinutes(-2), 3000.5m),
            new("ETH-USD", s_riskNow.AddMinutes(-1), 3001.25m),
        ], s_riskNow.AddHours(-4));
        IReadOnlyList<StoredPriceSample> all = await store.Risk.ReadPricesAsync(s_riskNow.AddDays(-1));
        // BTC's only sample is older than the prune line but is its latest: kept (it shows the source went stale).
        Assert.Equal(["BTC-USD 60000.123456789012345", "ETH-USD 3000", "ETH-USD 3000.5", "ETH-USD 3001.25"], all.Select(s => $"{s.Source} {s.Price}"));
        IReadOnlyList<StoredPriceSample> recent = await store.Risk.ReadPricesAsync(s_riskNow.AddMinutes(-10));
        Assert.Equal(["BTC-USD", "ETH-USD", "ETH-USD"], recent.Select(s => s.Source));
        await store.Risk.AddPricesAsync([new("ETH-USD", s_riskNow, 3002m)], s_riskNow.AddHours(-1));
        Assert.Equal(4, (await store.Risk.ReadPricesAsync(s_riskNow.AddDays(-1))).Count);
        await Assert.ThrowsAsync<StorageException>(() => store.Risk.AddPricesAsync([new("ETH-USD", s_riskNow, 0m)], s_riskNow));
        await Assert.ThrowsAsync<StorageException>(() => store.Risk.AddPricesAsync([new(new string('x', 65), s_riskNow, 1m)], s_riskNow));
    }

    [Fact]
    public async Task Risk_lockdown_votes_are_one_per_approver_and_lockdown()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using IConclaveStore store = await loc.OpenAsync(WithPassphrase());
        Assert.True(await store.Risk.AddLockdownVoteAsync(s_riskNow, "bob", s_riskNow.AddMinutes(1)));
        Assert.True(await store.Risk.AddLockdownVoteAsync(s_riskNow, "alice", s_riskNow.AddMinutes(2)));
        Assert.False(await store.Risk.AddLockdownVoteAsync(s_riskNow, "bob", s_riskNow.AddMinutes(3)));
        Assert.True(await store.Risk.AddLockdownVoteAsync(s_riskNow.AddHours(1), "bob", s_riskNow.AddHours(1)));
        Assert.Equal(["alice", "bob"], await store.Risk.LockdownVotesAsync(s_riskNow));
        Assert.Equal(["bob"], await store.Risk.LockdownVotesAsync(s_riskNow.AddHours(1)));
        Assert.Empty(await store.Risk.LockdownVotesAsync(s_riskNow.AddHours(2)));
    }
}
