using System.Data.Common;
using System.Globalization;
using Conclave.Storage.Policy;

namespace Conclave.Storage.Internal;

/// <summary>
/// Velocity counters in <c>policy_counter_keys</c> (one lock row per counter) and <c>policy_counter_entries</c>
/// (one row per reservation and counter; amounts as invariant decimal text, summed in .NET so no engine rounds them).
/// </summary>
internal sealed class SqlPolicyCounters(SqlStore store) : IPolicyCounterStore
{
    public Task<CounterTotals> ReadAsync(string counterKey, long windowSeconds, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        Validate.Text(counterKey, nameof(counterKey));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(windowSeconds);
        return store.ReadAsync(c => SumAsync(c, null, counterKey, windowSeconds, now, cancellationToken), cancellationToken);
    }

    public async Task<string?> TryReserveAsync(IReadOnlyList<CounterReservation> reservations, DateTimeOffset now, CancellationToken cancellationToken = default)
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

        string id = Guid.NewGuid().ToString("N");
        bool ok = await store.WriteAsync(async (c, tx) =>
        {
            // Lock rows in key order, so two replicas reserving overlapping counters cannot deadlock.
            foreach (string key in reservations.Select(r => r.CounterKey).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal))
            {
                using (DbCommand ins = SqlEngine.Command(c, tx, "INSERT INTO policy_counter_keys (counter_key) VALUES (@k) ON CONFLICT DO NOTHING"))
                {
                    ins.Add("@k", key);
                    await ins.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }

                using DbCommand lockRow = SqlEngine.Command(c, tx, "SELECT counter_key FROM policy_counter_keys WHERE counter_key=@k" + store.Engine.ForUpdate);
                lockRow.Add("@k", key);
                await lockRow.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
            }

            foreach (var r in reservations)
            {
                // Entries stamped after this call's "now" count too: concurrent callers read their clocks before they get
                // the lock, so a later-stamped entry may already be in; leaving it out would let the cap be overspent.
                var t = await SumAsync(c, tx, r.CounterKey, r.WindowSeconds, now, cancellationToken, includeLater: true).ConfigureAwait(false);
                if ((r.MaxNative is { } mn && t.Native + r.Native > mn) || (r.MaxUsd is { } mu && t.Usd + r.Usd > mu) || (r.MaxCount is { } mc && t.Count + r.Count > mc))
                {
                    return false;
                }
            }

            long at = now.ToUnixTimeMilliseconds();
            foreach (var r in reservations)
            {
                using DbCommand ins = SqlEngine.Command(c, tx,
                    "INSERT INTO policy_counter_entries (reservation_id, counter_key, at_ms, native, usd, count) VALUES (@id, @k, @at, @n, @u, @c)");
                ins.Add("@id", id);
                ins.Add("@k", r.CounterKey);
                ins.Add("@at", at);
                ins.Add("@n", r.Native.ToString(CultureInfo.InvariantCulture));
                ins.Add("@u", r.Usd.ToString(CultureInfo.InvariantCulture));
                ins.Add("@c", r.Count);
                await ins.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            return true;
        }, cancellationToken).ConfigureAwait(false);
        return ok ? id : null;
    }

    public Task<bool> ReleaseAsync(string reservationId, CancellationToken cancellationToken = default)
    {
        Validate.Text(reservationId, nameof(reservationId));
        return store.WriteAsync(async (c, tx) =>
        {
            using DbCommand cmd = SqlEngine.Command(c, tx, "DELETE FROM policy_counter_entries WHERE reservation_id=@id");
            cmd.Add("@id", reservationId);
            return await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) > 0;
        }, cancellationToken);
    }

    private static async Task<CounterTotals> SumAsync(DbConnection c, DbTransaction? tx, string key, long windowSeconds, DateTimeOffset now, CancellationToken ct, bool includeLater = false)
    {
        long to = includeLater ? long.MaxValue : now.ToUnixTimeMilliseconds();
        long from = now.ToUnixTimeMilliseconds() - checked(windowSeconds * 1000);
        using DbCommand cmd = SqlEngine.Command(c, tx, "SELECT native, usd, count FROM policy_counter_entries WHERE counter_key=@k AND at_ms > @from AND at_ms <= @to");
        cmd.Add("@k", key);
        cmd.Add("@from", from);
        cmd.Add("@to", to);
        using DbDataReader r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        decimal native = 0, usd = 0;
        long count = 0;
        while (await r.ReadAsync(ct).ConfigureAwait(false))
        {
            native += decimal.Parse(r.GetString(0), NumberStyles.Number, CultureInfo.InvariantCulture);
            usd += decimal.Parse(r.GetString(1), NumberStyles.Number, CultureInfo.InvariantCulture);
            count += r.GetInt64(2);
        }

        return new CounterTotals(native, usd, count);
    }
}
