using System.Data.Common;
using System.Globalization;
using Conclave.Storage.Policy;

namespace Conclave.Storage.Internal;

/// <summary>
/// Velocity counters in <c>policy_counter_keys</c> (one lock row per counter) and <c>policy_counter_entries</c>
/// (one row per reservation and counter; amounts as invariant decimal text, summed in .NET so no engine rounds them).
/// Each counter's row also keeps a running total of its entries stamped after a watermark (migration 15), updated under
/// the row's lock: a reservation moves the watermark up to its window's start, subtracting the entries it passes, and
/// adds back the entries between its window's start and the watermark when its window reaches further back (another
/// caller's clock ran ahead, or a longer window), so every sum is exact while a reservation reads only the entries
/// between the two instead of every entry in the window (before: O(entries in the window) per reservation and per
/// decision, 1,400 entries ≈ 2 ms on this VM). A NULL watermark (a new column, a restored backup) is filled from the
/// entries once. Pruning (<see cref="PruneAsync"/>) moves the watermark the same way before it deletes, so it deletes
/// only entries the running totals no longer hold.
/// </summary>
internal sealed class SqlPolicyCounters(SqlStore store) : IPolicyCounterStore
{
    /// <summary>A counter's running totals: the sum of its entries stamped after <see cref="Watermark"/>.</summary>
    private readonly record struct Running(long Watermark, CounterTotals Totals);

    /// <remarks>
    /// Without a lock (an estimate for the evaluator: a reservation re-checks every cap under the counter's lock): the
    /// running totals corrected by the entries between the watermark and the window's start, less entries stamped after
    /// <paramref name="now"/>. Statements run one after another, so a reservation or release in between can make the
    /// estimate off by what it wrote.
    /// </remarks>
    public Task<CounterTotals> ReadAsync(string counterKey, long windowSeconds, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        Validate.Text(counterKey, nameof(counterKey));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(windowSeconds);
        return store.ReadAsync(async c =>
        {
            Running? running = await LoadRunningAsync(c, null, counterKey, "", cancellationToken).ConfigureAwait(false);
            if (running is not { } r)
            {
                return await SumRangeAsync(c, null, counterKey, WindowStart(now, windowSeconds), now.ToUnixTimeMilliseconds(), cancellationToken).ConfigureAwait(false);
            }

            // One query: the entries between the watermark and the window's start (they correct the running totals) and
            // those stamped after now (not in (now - window, now]).
            long nowMs = now.ToUnixTimeMilliseconds();
            long from = WindowStart(now, windowSeconds);
            (long lo, long hi) = from >= r.Watermark ? (r.Watermark, from) : (from, r.Watermark);
            CounterTotals between = default, later = default;
            using DbCommand cmd = SqlEngine.Command(c, null,
                "SELECT at_ms, native, usd, count FROM policy_counter_entries WHERE counter_key=@k AND ((at_ms > @lo AND at_ms <= @hi) OR at_ms > @now)");
            cmd.Add("@k", counterKey);
            cmd.Add("@lo", lo);
            cmd.Add("@hi", hi);
            cmd.Add("@now", nowMs);
            using (DbDataReader rows = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
            {
                while (await rows.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    long at = rows.GetInt64(0);
                    CounterTotals amount = ReadTotals(rows, 1);
                    if (at > lo && at <= hi)
                    {
                        between = Plus(between, amount);
                    }

                    if (at > nowMs)
                    {
                        later = Plus(later, amount);
                    }
                }
            }

            return Minus(from >= r.Watermark ? Minus(r.Totals, between) : Plus(r.Totals, between), later);
        }, cancellationToken);
    }

    private static long WindowStart(DateTimeOffset now, long windowSeconds) => now.ToUnixTimeMilliseconds() - checked(windowSeconds * 1000);

    private static CounterTotals Plus(CounterTotals a, CounterTotals b) => new(a.Native + b.Native, a.Usd + b.Usd, a.Count + b.Count);

    private static CounterTotals Minus(CounterTotals a, CounterTotals b) => new(a.Native - b.Native, a.Usd - b.Usd, a.Count - b.Count);

    /// <summary>The counter's entries stamped after <paramref name="from"/> (the window's start), from its running totals.</summary>
    private static async Task<CounterTotals> InWindowAsync(DbConnection c, DbTransaction? tx, string key, Running r, long from, CancellationToken ct) =>
        from >= r.Watermark
            ? Minus(r.Totals, await SumRangeAsync(c, tx, key, r.Watermark, from, ct).ConfigureAwait(false))
            : Plus(r.Totals, await SumRangeAsync(c, tx, key, from, r.Watermark, ct).ConfigureAwait(false));

    /// <summary>
    /// The counter's running totals (its row locked with <paramref name="forUpdate"/> in a write transaction); null when
    /// it has no row, or — in a read (<paramref name="tx"/> null) — no totals yet (a NULL watermark). In a write
    /// transaction, a NULL watermark is filled from every entry of the counter (watermark <see cref="long.MinValue"/>)
    /// and written back.
    /// </summary>
    private static async Task<Running?> LoadRunningAsync(DbConnection c, DbTransaction? tx, string key, string forUpdate, CancellationToken ct)
    {
        using (Statement running = SqlEngine.Statement(c, tx, "SELECT watermark_ms, total_native, total_usd, total_count FROM policy_counter_keys WHERE counter_key=@k" + forUpdate))
        {
            running.Command.Add("@k", key);
            using DbDataReader r = await running.Command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            if (!await r.ReadAsync(ct).ConfigureAwait(false))
            {
                return null; // no row: nothing locked, nothing to fill
            }

            if (!r.IsDBNull(0))
            {
                return new Running(r.GetInt64(0), ReadTotals(r, 1));
            }
        }

        if (tx is null)
        {
            return null;
        }

        var filled = new Running(long.MinValue, await SumRangeAsync(c, tx, key, long.MinValue, long.MaxValue, ct).ConfigureAwait(false));
        await SaveRunningAsync(c, tx, key, filled, ct).ConfigureAwait(false);
        return filled;
    }

    private static async Task SaveRunningAsync(DbConnection c, DbTransaction tx, string key, Running r, CancellationToken ct)
    {
        using Statement save = SqlEngine.Statement(c, tx, "UPDATE policy_counter_keys SET watermark_ms=@w, total_native=@n, total_usd=@u, total_count=@c WHERE counter_key=@k");
        DbCommand cmd = save.Command;
        cmd.Add("@w", r.Watermark);
        cmd.Add("@n", r.Totals.Native.ToString(CultureInfo.InvariantCulture));
        cmd.Add("@u", r.Totals.Usd.ToString(CultureInfo.InvariantCulture));
        cmd.Add("@c", r.Totals.Count);
        cmd.Add("@k", key);
        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    private static decimal ParseAmount(string text) => decimal.Parse(text, NumberStyles.Number, CultureInfo.InvariantCulture);

    /// <summary>An amount as the tables store it: native and USD as invariant decimal text, then the count, from column <paramref name="first"/> on.</summary>
    private static CounterTotals ReadTotals(DbDataReader r, int first) =>
        new(ParseAmount(r.GetString(first)), ParseAmount(r.GetString(first + 1)), r.GetInt64(first + 2));

    public async Task<string?> TryReserveAsync(IReadOnlyList<CounterReservation> reservations, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        ValidateReservations(reservations);
        string id = ReservationId(now);
        bool ok = await store.WriteAsync((c, tx) => ReserveInAsync(c, tx, reservations, now, id, cancellationToken), cancellationToken).ConfigureAwait(false);
        return ok ? id : null;
    }

    public Task<(string ReservationId, IReadOnlyList<Audit.AuditEntry> Entries)?> TryReserveAndAppendAsync(IReadOnlyList<CounterReservation> reservations,
        DateTimeOffset now, IReadOnlyList<Audit.AuditEntryInput> entries, CancellationToken cancellationToken = default) =>
        TryReserveAndAppendAsync(reservations, now, entries, static _ => { }, cancellationToken);

    public async Task<(string ReservationId, IReadOnlyList<Audit.AuditEntry> Entries)?> TryReserveAndAppendAsync(IReadOnlyList<CounterReservation> reservations,
        DateTimeOffset now, IReadOnlyList<Audit.AuditEntryInput> entries, Action<string?> decided, CancellationToken cancellationToken = default)
    {
        ValidateReservations(reservations);
        ArgumentNullException.ThrowIfNull(decided);
        string id = ReservationId(now);

        // The reservation runs first in the audit writer's batch transaction: the entries are written only when it holds.
        // The guard's own cancellation is not the caller's (a batch is shared with other requests' entries). The writer
        // never re-runs a transaction, so the caps' outcome told here is the one the commit writes (or the call fails).
        IReadOnlyList<Audit.AuditEntry> written = await store.AuditLog.AppendGuardedAsync(entries, async (c, tx) =>
        {
            bool held = await ReserveInAsync(c, tx, reservations, now, id, CancellationToken.None).ConfigureAwait(false);
            decided(held ? id : null);
            return held;
        }, cancellationToken).ConfigureAwait(false);
        return written.Count == 0 ? null : (id, written);
    }

    /// <summary>
    /// A new reservation id: the entries' time in Unix milliseconds, a dot, and 128 random bits (unique across replicas).
    /// The time lets <see cref="ReleaseAsync"/> find each entry by the table's key (counter, time, id) without an index
    /// on the id (migration 20 dropped it: one page fewer in every reservation's commit).
    /// </summary>
    private static string ReservationId(DateTimeOffset now) =>
        now.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture) + "." + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(ReservationIdRandomBytes));

    private const int ReservationIdRandomBytes = 16;

    /// <summary>The entries' time a <see cref="ReservationId"/> carries; false for any other text (ids made before migration 20 were UUIDs).</summary>
    private static bool TryReadStamp(string reservationId, out long atMs)
    {
        int dot = reservationId.IndexOf('.', StringComparison.Ordinal);
        atMs = 0;
        return dot > 0 && reservationId.Length - dot - 1 == 2 * ReservationIdRandomBytes
            && long.TryParse(reservationId.AsSpan(0, dot), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out atMs);
    }

    private static void ValidateReservations(IReadOnlyList<CounterReservation> reservations)
    {
        ArgumentNullException.ThrowIfNull(reservations);
        foreach (var r in reservations)
        {
            Validate.Text(r.CounterKey, "reservation.CounterKey");
            if (r.WindowSeconds <= 0 || r.Native < 0 || r.Usd < 0 || r.Count < 0)
            {
                throw StorageErrors.Invalid("reservation", "a positive window and non-negative amounts");
            }
        }

        if (reservations.Select(r => r.CounterKey).Distinct(StringComparer.Ordinal).Count() != reservations.Count)
        {
            throw StorageErrors.Invalid("reservations", "one reservation per counter");
        }
    }

    /// <summary>Checks every cap under the counters' lock rows and writes the reservation; false (nothing written but a new counter's row) when a cap would be exceeded.</summary>
    private async Task<bool> ReserveInAsync(DbConnection c, DbTransaction tx, IReadOnlyList<CounterReservation> reservations, DateTimeOffset now, string id, CancellationToken cancellationToken)
    {
        // Lock rows in key order, so two replicas reserving overlapping counters cannot deadlock; each row's running
        // totals are read with its lock.
        var running = new Dictionary<string, Running>(StringComparer.Ordinal);
        foreach (string key in reservations.Select(r => r.CounterKey).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal))
        {
            if (await LoadRunningAsync(c, tx, key, store.Engine.ForUpdate, cancellationToken).ConfigureAwait(false) is { } existing)
            {
                running[key] = existing;
                continue;
            }

            // A counter used for the first time: its row, then read (and filled) under its lock.
            using (DbCommand ins = SqlEngine.Command(c, tx, "INSERT INTO policy_counter_keys (counter_key) VALUES (@k) ON CONFLICT DO NOTHING"))
            {
                ins.Add("@k", key);
                await ins.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            running[key] = (await LoadRunningAsync(c, tx, key, store.Engine.ForUpdate, cancellationToken).ConfigureAwait(false))!.Value;
        }

        foreach (var r in reservations)
        {
            // Entries stamped after this call's "now" count too (the running totals hold every entry after the
            // watermark): concurrent callers read their clocks before they get the lock, so a later-stamped entry may
            // already be in; leaving it out would let the cap be overspent.
            Running state = running[r.CounterKey];
            long from = WindowStart(now, r.WindowSeconds);
            CounterTotals t = await InWindowAsync(c, tx, r.CounterKey, state, from, cancellationToken).ConfigureAwait(false);
            if (from > state.Watermark)
            {
                // The window starts after the watermark: what is in it is the new running total from its start, so the
                // watermark moves up to it (written below if the reservation is granted).
                running[r.CounterKey] = new Running(from, t);
            }

            if ((r.MaxNative is { } mn && t.Native + r.Native > mn) || (r.MaxUsd is { } mu && t.Usd + r.Usd > mu) || (r.MaxCount is { } mc && t.Count + r.Count > mc))
            {
                return false;
            }
        }

        long at = now.ToUnixTimeMilliseconds();
        foreach (var r in reservations)
        {
            Running state = running[r.CounterKey];
            await SaveRunningAsync(c, tx, r.CounterKey, at > state.Watermark ? state with { Totals = Plus(state.Totals, new CounterTotals(r.Native, r.Usd, r.Count)) } : state,
                cancellationToken).ConfigureAwait(false);
            using Statement entry = SqlEngine.Statement(c, tx,
                "INSERT INTO policy_counter_entries (reservation_id, counter_key, at_ms, native, usd, count) VALUES (@id, @k, @at, @n, @u, @c)");
            DbCommand ins = entry.Command;
            ins.Add("@id", id);
            ins.Add("@k", r.CounterKey);
            ins.Add("@at", at);
            ins.Add("@n", r.Native.ToString(CultureInfo.InvariantCulture));
            ins.Add("@u", r.Usd.ToString(CultureInfo.InvariantCulture));
            ins.Add("@c", r.Count);
            await ins.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        return true;
    }

    public async Task<bool> ReleaseAsync(string reservationId, IReadOnlyList<string> counterKeys, CancellationToken cancellationToken = default)
    {
        Validate.Text(reservationId, nameof(reservationId));
        ArgumentNullException.ThrowIfNull(counterKeys);
        foreach (string key in counterKeys)
        {
            Validate.Text(key, "counterKeys");
        }

        if (!TryReadStamp(reservationId, out long at))
        {
            return false;
        }

        return await store.WriteAsync(async (c, tx) =>
        {
            // Under each counter's lock row, in key order (as reservations take them): an entry still in the running
            // totals (stamped after the watermark) leaves them with the entry.
            bool removed = false;
            foreach (string key in counterKeys.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal))
            {
                if (await LoadRunningAsync(c, tx, key, store.Engine.ForUpdate, cancellationToken).ConfigureAwait(false) is not { } state)
                {
                    continue;
                }

                CounterTotals amount;
                using (DbCommand delete = SqlEngine.Command(c, tx,
                    "DELETE FROM policy_counter_entries WHERE counter_key=@k AND at_ms=@at AND reservation_id=@id RETURNING native, usd, count"))
                {
                    delete.Add("@k", key);
                    delete.Add("@at", at);
                    delete.Add("@id", reservationId);
                    using DbDataReader r = await delete.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                    if (!await r.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        continue;
                    }

                    amount = ReadTotals(r, 0);
                }

                removed = true;
                if (at > state.Watermark)
                {
                    await SaveRunningAsync(c, tx, key, state with { Totals = Minus(state.Totals, amount) }, cancellationToken).ConfigureAwait(false);
                }
            }

            return removed;
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Entries one pruning transaction deletes at most (with those sharing the last one's millisecond).</summary>
    internal const int PruneBatch = 500;

    /// <summary>Counters read per page while looking for those with entries to prune.</summary>
    private const int PruneKeyPage = 200;

    /// <remarks>
    /// Counters are found by a read (those with an entry at or before <paramref name="before"/>, in key order, a page at a
    /// time); each is then pruned in write transactions of at most <see cref="PruneBatch"/> entries, each taking only
    /// that counter's lock row, so a pruning transaction never holds two counters and cannot deadlock with a
    /// reservation (which takes its counters in key order). Replicas pruning at once queue on the same lock row; the
    /// second finds nothing left.
    /// </remarks>
    public async Task<int> PruneAsync(DateTimeOffset before, int maxEntries, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxEntries);
        long beforeMs = before.ToUnixTimeMilliseconds();
        int deleted = 0;
        string? after = null;
        while (deleted < maxEntries)
        {
            string? pageAfter = after;
            IReadOnlyList<string> keys = await store.ReadAsync(c => CountersToPruneAsync(c, pageAfter, beforeMs, cancellationToken), cancellationToken).ConfigureAwait(false);
            foreach (string key in keys)
            {
                bool more = true;
                while (more && deleted < maxEntries)
                {
                    int limit = Math.Min(PruneBatch, maxEntries - deleted);
                    (int n, more) = await store.WriteAsync((c, tx) => PruneCounterAsync(c, tx, key, beforeMs, limit, cancellationToken), cancellationToken).ConfigureAwait(false);
                    deleted += n;
                }
            }

            if (keys.Count < PruneKeyPage)
            {
                break;
            }

            after = keys[^1];
        }

        return deleted;
    }

    /// <summary>Up to <see cref="PruneKeyPage"/> counters after <paramref name="after"/> (in key order) with an entry stamped at or before <paramref name="beforeMs"/>.</summary>
    private static async Task<IReadOnlyList<string>> CountersToPruneAsync(DbConnection c, string? after, long beforeMs, CancellationToken ct)
    {
        using DbCommand cmd = SqlEngine.Command(c, null,
            "SELECT k.counter_key FROM policy_counter_keys k WHERE " + (after is null ? "" : "k.counter_key > @after AND ") +
            "EXISTS (SELECT 1 FROM policy_counter_entries e WHERE e.counter_key = k.counter_key AND e.at_ms <= @before) ORDER BY k.counter_key LIMIT @n");
        if (after is not null)
        {
            cmd.Add("@after", after);
        }

        cmd.Add("@before", beforeMs);
        cmd.Add("@n", (long)PruneKeyPage);
        var keys = new List<string>();
        using DbDataReader r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await r.ReadAsync(ct).ConfigureAwait(false))
        {
            keys.Add(r.GetString(0));
        }

        return keys;
    }

    /// <summary>
    /// Under the counter's lock row: deletes its oldest entries stamped at or before <paramref name="beforeMs"/>, up to the
    /// <paramref name="limit"/>-th oldest and every entry in that entry's millisecond. The watermark first moves up to the
    /// last millisecond deleted (if it is behind it) and the running totals lose the entries it passes, exactly as a
    /// reservation whose window started there would move it; every deleted entry is then at or behind the watermark, so
    /// the totals (the entries after it) are unchanged by the delete. More is true when entries at or before
    /// <paramref name="beforeMs"/> may remain.
    /// </summary>
    private async Task<(int Deleted, bool More)> PruneCounterAsync(DbConnection c, DbTransaction tx, string key, long beforeMs, int limit, CancellationToken ct)
    {
        if (await LoadRunningAsync(c, tx, key, store.Engine.ForUpdate, ct).ConfigureAwait(false) is not { } state)
        {
            return (0, false); // no row (rows are never deleted; nothing to prune)
        }

        long cut = beforeMs;
        bool more = false;
        using (DbCommand nth = SqlEngine.Command(c, tx, "SELECT at_ms FROM policy_counter_entries WHERE counter_key=@k AND at_ms <= @before ORDER BY at_ms LIMIT 1 OFFSET @skip"))
        {
            nth.Add("@k", key);
            nth.Add("@before", beforeMs);
            nth.Add("@skip", (long)(limit - 1));
            if (await nth.ExecuteScalarAsync(ct).ConfigureAwait(false) is { } at and not DBNull)
            {
                cut = Convert.ToInt64(at, CultureInfo.InvariantCulture); // the limit-th oldest: delete up to its millisecond, then look again
                more = true;
            }
        }

        if (cut > state.Watermark)
        {
            // At most the entries about to be deleted: everything at or before the cut.
            CounterTotals passed = await SumRangeAsync(c, tx, key, state.Watermark, cut, ct).ConfigureAwait(false);
            await SaveRunningAsync(c, tx, key, new Running(cut, Minus(state.Totals, passed)), ct).ConfigureAwait(false);
        }

        using DbCommand del = SqlEngine.Command(c, tx, "DELETE FROM policy_counter_entries WHERE counter_key=@k AND at_ms <= @cut");
        del.Add("@k", key);
        del.Add("@cut", cut);
        return (await del.ExecuteNonQueryAsync(ct).ConfigureAwait(false), more);
    }

    /// <summary>The counter's entries stamped in (<paramref name="after"/>, <paramref name="upTo"/>].</summary>
    private static async Task<CounterTotals> SumRangeAsync(DbConnection c, DbTransaction? tx, string key, long after, long upTo, CancellationToken ct)
    {
        if (after >= upTo)
        {
            return default;
        }

        using Statement range = SqlEngine.Statement(c, tx, "SELECT native, usd, count FROM policy_counter_entries WHERE counter_key=@k AND at_ms > @from AND at_ms <= @to");
        DbCommand cmd = range.Command;
        cmd.Add("@k", key);
        cmd.Add("@from", after);
        cmd.Add("@to", upTo);
        using DbDataReader r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        CounterTotals sum = default;
        while (await r.ReadAsync(ct).ConfigureAwait(false))
        {
            sum = Plus(sum, ReadTotals(r, 0));
        }

        return sum;
    }
}
