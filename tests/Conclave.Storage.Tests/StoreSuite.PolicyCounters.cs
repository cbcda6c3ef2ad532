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
        Assert.False(await c.ReleaseAsync(first, ["p/r/min/p:other"])); // another counter's: nothing to remove
        Assert.False(await c.ReleaseAsync(Guid.NewGuid().ToString("N"), ["p/r/min/p:bot"])); // not an id of this store's form
        Assert.Equal(10m, (await c.ReadAsync("p/r/min/p:bot", 60, s_counterNow.AddSeconds(1))).Native);
        Assert.True(await c.ReleaseAsync(first, ["p/r/min/p:bot"]));
        Assert.False(await c.ReleaseAsync(first, ["p/r/min/p:bot"]));
        Assert.Equal(1.75m, (await c.ReadAsync("p/r/min/p:bot", 60, s_counterNow.AddSeconds(1))).Native);
        // The window slides: an entry stops counting exactly window seconds after it was made.
        Assert.Equal(1.75m, (await c.ReadAsync("p/r/min/p:bot", 60, s_counterNow.AddSeconds(60))).Native);
        Assert.Equal(0m, (await c.ReadAsync("p/r/min/p:bot", 60, s_counterNow.AddSeconds(61))).Native);
    }

    /// <summary>
    /// Migration 19 re-keys the entries by counter and time: a store whose entries were written under the old layout
    /// (rebuilt here from a current store, its version set back to 18) keeps every entry — windows sum the same, caps
    /// hold, a reservation made before the migration is released after it (and after migration 20, which drops the
    /// reservation-id index: the release finds the entry by the table's key).
    /// </summary>
    [Fact]
    public async Task Counter_entries_written_before_migration_19_count_and_release_after_it()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        string? early;
        await using (IConclaveStore store = await loc.OpenAsync(WithPassphrase()))
        {
            var c = store.PolicyCounters;
            early = await c.TryReserveAsync([CountOne("m", 3) with { Native = 1.5m }], s_counterNow);
            Assert.NotNull(early);
            Assert.NotNull(await c.TryReserveAsync([CountOne("m", 3) with { Native = 2.25m }, CountOne("n", 3)], s_counterNow.AddSeconds(1)));
        }

        // Back to the layout of migrations 1-18.
        await loc.ExecAsync("CREATE TABLE old_entries (reservation_id TEXT NOT NULL, counter_key TEXT NOT NULL REFERENCES policy_counter_keys(counter_key), at_ms BIGINT NOT NULL, native TEXT NOT NULL, usd TEXT NOT NULL, count BIGINT NOT NULL, PRIMARY KEY (reservation_id, counter_key))");
        await loc.ExecAsync("INSERT INTO old_entries SELECT reservation_id, counter_key, at_ms, native, usd, count FROM policy_counter_entries");
        await loc.ExecAsync("DROP TABLE policy_counter_entries");
        await loc.ExecAsync("ALTER TABLE old_entries RENAME TO policy_counter_entries");
        await loc.ExecAsync("CREATE INDEX policy_counter_entries_window ON policy_counter_entries (counter_key, at_ms)");
        await loc.ExecAsync("DELETE FROM schema_migrations WHERE version >= 19");

        await using (IConclaveStore store = await loc.OpenAsync(WithPassphrase()))
        {
            Assert.Equal(20, store.SchemaVersion); // 19 re-keys the entries, 20 drops the reservation-id index 19 made
            var c = store.PolicyCounters;
            Assert.Equal(new CounterTotals(3.75m, 4000m, 2), await c.ReadAsync("m", 3600, s_counterNow.AddSeconds(2)));
            Assert.Equal(1, (await c.ReadAsync("n", 3600, s_counterNow.AddSeconds(2))).Count);
            Assert.NotNull(await c.TryReserveAsync([CountOne("m", 3)], s_counterNow.AddSeconds(2)));
            Assert.Null(await c.TryReserveAsync([CountOne("m", 3)], s_counterNow.AddSeconds(3)));
            Assert.True(await c.ReleaseAsync(early!, ["m"]));
            Assert.Equal(new CounterTotals(3.25m, 4000m, 2), await c.ReadAsync("m", 3600, s_counterNow.AddSeconds(3)));
            Assert.NotNull(await c.TryReserveAsync([CountOne("m", 3)], s_counterNow.AddSeconds(3)));
        }
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

    /// <summary>
    /// A reservation and the audit entries of the request that spends it, in one commit
    /// (<see cref="IPolicyCounterStore.TryReserveAndAppendAsync"/>): both or neither; under concurrency with plain
    /// reservations on two store instances (replicas), the cap still holds exactly and the log holds exactly the
    /// granted requests' entries, each request's consecutively.
    /// </summary>
    [Fact]
    public async Task A_reservation_and_its_audit_entries_commit_together_or_not_at_all_and_the_cap_holds_under_concurrency()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using IConclaveStore a = await loc.OpenAsync(WithPassphrase());
        await using IConclaveStore b = await loc.OpenAsync(WithPassphrase());
        static Conclave.Storage.Audit.AuditEntryInput[] Entries(int i) =>
        [
            new("agent-7", "POST /v1/keys/{name}/sign", "k", Bytes(32, (byte)i), "pending", $"intent {i}"),
            new("agent-7", "policy.decide", "k", Bytes(32, (byte)i), "allow", $"decision {i}"),
        ];

        long before = (await a.Audit.GetHeadAsync()).Seq;
        var granted = await a.PolicyCounters.TryReserveAndAppendAsync([CountOne("solo", 1)], s_counterNow, Entries(200));
        Assert.NotNull(granted);
        Assert.Equal([before + 1, before + 2], granted.Value.Entries.Select(e => e.Seq));
        Assert.Equal(1, (await a.PolicyCounters.ReadAsync("solo", 3600, s_counterNow)).Count);

        // Refused: no entry, no reservation.
        Assert.Null(await b.PolicyCounters.TryReserveAndAppendAsync([CountOne("solo", 1)], s_counterNow, Entries(201)));
        Assert.Equal(before + 2, (await a.Audit.GetHeadAsync()).Seq);
        Assert.Equal(1, (await b.PolicyCounters.ReadAsync("solo", 3600, s_counterNow)).Count);

        // Released like any reservation.
        Assert.True(await a.PolicyCounters.ReleaseAsync(granted.Value.ReservationId, ["solo"]));
        Assert.Equal(0, (await a.PolicyCounters.ReadAsync("solo", 3600, s_counterNow)).Count);

        // 40 combined and 20 plain reservations at once against a cap of 10, spread over both instances.
        long start = (await a.Audit.GetHeadAsync()).Seq;
        var combined = Enumerable.Range(0, 40).Select(i => Task.Run(async () =>
            (await (i % 2 == 0 ? a : b).PolicyCounters.TryReserveAndAppendAsync([CountOne()], s_counterNow, Entries(i))) is { } r ? r.Entries : null)).ToList();
        var plain = Enumerable.Range(0, 20).Select(i => Task.Run(() => (i % 2 == 0 ? b : a).PolicyCounters.TryReserveAsync([CountOne()], s_counterNow))).ToList();
        IReadOnlyList<Conclave.Storage.Audit.AuditEntry>?[] written = await Task.WhenAll(combined);
        string?[] plainIds = await Task.WhenAll(plain);
        int grantedCombined = written.Count(w => w is not null);
        Assert.Equal(10, grantedCombined + plainIds.Count(id => id is not null));
        Assert.Equal(10, (await a.PolicyCounters.ReadAsync("p/l/hour/shared", 3600, s_counterNow)).Count);
        Assert.Equal(start + (2 * grantedCombined), (await b.Audit.GetHeadAsync()).Seq);
        Assert.All(written.Where(w => w is not null), w => Assert.Equal(w![0].Seq + 1, w[1].Seq));
        var verified = await a.Audit.VerifyAsync(new Conclave.Storage.Audit.AuditVerifyOptions { AllowUnsigned = true }); // the chain: no checkpoint signer here
        Assert.True(verified.Ok, verified.ToString());
    }

    /// <summary>
    /// The caps' outcome is told before the commit (<c>decided</c>): the reservation id the call then returns when they
    /// hold — told before the entries are durable, while the commit is still to come — null when refused (and the call
    /// returns null); when the commit fails after the caps held, the call fails and neither the reservation nor any entry
    /// is written.
    /// </summary>
    [Fact]
    public async Task A_combined_reservation_tells_the_caps_outcome_before_its_commit()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using IConclaveStore store = await loc.OpenAsync(WithPassphrase());
        static Conclave.Storage.Audit.AuditEntryInput[] Entries(int i) => [new("agent-7", "policy.decide", "k", Bytes(32, (byte)i), "allow", $"decision {i}")];

        var told = new List<string?>();
        long before = (await store.Audit.GetHeadAsync()).Seq;
        var granted = await store.PolicyCounters.TryReserveAndAppendAsync([CountOne("told", 1)], s_counterNow, Entries(1), told.Add);
        Assert.NotNull(granted);
        Assert.Equal(granted.Value.ReservationId, Assert.Single(told));
        Assert.Equal(before + 1, (await store.Audit.GetHeadAsync()).Seq);

        told.Clear();
        Assert.Null(await store.PolicyCounters.TryReserveAndAppendAsync([CountOne("told", 1)], s_counterNow, Entries(2), told.Add));
        Assert.Null(Assert.Single(told));
        Assert.Equal(before + 1, (await store.Audit.GetHeadAsync()).Seq);

        // The entries cannot be written after the caps held (another connection makes the audit table refuse inserts):
        // the outcome was told, the call fails, and nothing is written.
        told.Clear();
        await loc.ExecAsync(Harness.Engine == StoreEngine.Sqlite
            ? "CREATE TRIGGER audit_down BEFORE INSERT ON audit_entries BEGIN SELECT RAISE(ABORT, 'audit down'); END;"
            : "CREATE FUNCTION audit_down() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'audit down'; END $$ LANGUAGE plpgsql; "
              + "CREATE TRIGGER audit_down BEFORE INSERT ON audit_entries FOR EACH ROW EXECUTE FUNCTION audit_down();");
        await Assert.ThrowsAsync<StorageException>(() => store.PolicyCounters.TryReserveAndAppendAsync([CountOne("told-2", 1)], s_counterNow, Entries(3), told.Add));
        await loc.ExecAsync("DROP TRIGGER audit_down" + (Harness.Engine == StoreEngine.Sqlite ? ";" : " ON audit_entries; DROP FUNCTION audit_down();"));
        Assert.NotNull(Assert.Single(told));
        Assert.Equal(0, (await store.PolicyCounters.ReadAsync("told-2", 3600, s_counterNow)).Count);
        Assert.Equal(before + 1, (await store.Audit.GetHeadAsync()).Seq);
        Assert.NotNull(await store.PolicyCounters.TryReserveAndAppendAsync([CountOne("told-2", 1)], s_counterNow, Entries(4), _ => { }));
    }

    /// <summary>
    /// The running totals against a brute-force model (every entry kept, sums recomputed): seeded random reservations on
    /// one counter with clocks that jump ahead and back, windows of 1 s, 60 s and 1 h on the same counter (a policy
    /// version that changed a limit's window), and releases. Every reservation is granted or refused as the model says
    /// and every read equals the model's sum. No timings.
    /// </summary>
    [Fact]
    public async Task Running_totals_equal_a_brute_force_sum_across_jumping_clocks_mixed_windows_and_releases()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using IConclaveStore store = await loc.OpenAsync(WithPassphrase());
        var c = store.PolicyCounters;
        Random r = TestSeed.Random("running totals");
        long[] windows = [1, 60, 3600];
        var model = new List<(string Id, long AtMs, decimal Native, long Count)>();
        DateTimeOffset clock = s_counterNow;
        for (int i = 0; i < 150; i++)
        {
            clock = clock.AddMilliseconds(r.Next(0, 4) == 0 ? r.Next(-90_000, 0) : r.Next(0, 30_000)); // mostly forward, sometimes back
            long window = windows[r.Next(windows.Length)];
            decimal amount = r.Next(1, 40) / 4m;
            decimal cap = r.Next(5, 120);
            string where = $"{TestSeed.EnvironmentVariable}={TestSeed.Run} step {i}";
            await ReserveAsTheModelSaysAsync(c, model, window, amount, cap, clock, where);

            if (model.Count > 0 && r.Next(6) == 0)
            {
                var gone = model[r.Next(model.Count)];
                Assert.True(await c.ReleaseAsync(gone.Id, ["k"]), where);
                model.Remove(gone);
            }

            await AssertReadEqualsTheModelAsync(c, model, windows[r.Next(windows.Length)], clock, where);
        }
    }

    /// <summary>
    /// One reservation on counter "k" of the brute-force model tests: granted exactly when the model's entries in the
    /// window (those stamped later than now included) leave room for it under the cap; a granted one joins the model.
    /// </summary>
    private static async Task ReserveAsTheModelSaysAsync(IPolicyCounterStore c, List<(string Id, long AtMs, decimal Native, long Count)> model, long window, decimal amount, decimal cap, DateTimeOffset clock, string where)
    {
        long nowMs = clock.ToUnixTimeMilliseconds();
        decimal inWindowLater = model.Where(e => e.AtMs > nowMs - (window * 1000)).Sum(e => e.Native); // entries stamped later count too
        string? id = await c.TryReserveAsync([new CounterReservation("k", window, amount, 0m, 1, cap, null, null)], clock);
        Assert.True((inWindowLater + amount <= cap) == (id is not null), $"{where}: reservation of {amount} against cap {cap} with {inWindowLater} in the window");
        if (id is not null)
        {
            model.Add((id, nowMs, amount, 1));
        }
    }

    /// <summary>Counter "k" read over <paramref name="readWindow"/> seconds equals the model's sum of the entries in (now - window, now].</summary>
    private static async Task AssertReadEqualsTheModelAsync(IPolicyCounterStore c, List<(string Id, long AtMs, decimal Native, long Count)> model, long readWindow, DateTimeOffset clock, string where)
    {
        long nowMs = clock.ToUnixTimeMilliseconds();
        CounterTotals read = await c.ReadAsync("k", readWindow, clock);
        var expected = model.Where(e => e.AtMs > nowMs - (readWindow * 1000) && e.AtMs <= nowMs).ToList();
        Assert.True(new CounterTotals(expected.Sum(e => e.Native), 0m, expected.Sum(e => e.Count)) == read, $"{where}: read {read} over {readWindow} s");
    }
}
