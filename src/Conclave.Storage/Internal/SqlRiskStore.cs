using System.Data.Common;
using System.Globalization;
using System.Text.Json;
using Conclave.Storage.Risk;

namespace Conclave.Storage.Internal;

/// <summary>
/// The risk level and its inputs on either engine (migration 10): <c>risk_state</c> (one row, id 1, made by the
/// migration with version 0 = never written), <c>risk_prices</c> (prices as invariant decimal text, so no engine rounds
/// them) and <c>risk_lockdown_votes</c> (one row per lockdown and approver).
/// </summary>
internal sealed class SqlRiskStore(SqlStore store) : IRiskStore
{
    private const string Columns = "level, since_ms, reasons, last_demanded_ms, manual_level, manual_by, manual_reason, manual_at, version";
    private const int MaxSourceLength = 64;

    public Task<StoredRiskState?> GetAsync(CancellationToken cancellationToken = default) =>
        store.ReadAsync(c => ReadStateAsync(c, null, "", cancellationToken), cancellationToken);

    public async Task<(StoredRiskState? Before, StoredRiskState? After)> UpdateAsync(Func<StoredRiskState?, StoredRiskState?> change, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(change);
        return await store.WriteAsync(async (c, tx) =>
        {
            // The row lock (PostgreSQL; SQLite's write transaction is exclusive already) makes replicas change the state one at a time.
            StoredRiskState? before = await ReadStateAsync(c, tx, store.Engine.ForUpdate, cancellationToken).ConfigureAwait(false);
            StoredRiskState? next = change(before);
            if (next is null)
            {
                return (before, before);
            }

            Check(next);
            long version = (before?.Version ?? 0) + 1;
            using DbCommand cmd = SqlEngine.Command(c, tx,
                "UPDATE risk_state SET level=@l, since_ms=@s, reasons=@r, last_demanded_ms=@d, manual_level=@ml, manual_by=@mb, manual_reason=@mr, manual_at=@ma, version=@v WHERE id=1");
            cmd.Add("@l", next.Level);
            cmd.Add("@s", next.Since.ToUnixTimeMilliseconds());
            cmd.Add("@r", JsonSerializer.Serialize(next.Reasons.ToArray()));
            cmd.Add("@d", next.LastDemandedAt.ToUnixTimeMilliseconds());
            cmd.Add("@ml", next.ManualLevel);
            cmd.Add("@mb", next.ManualBy);
            cmd.Add("@mr", next.ManualReason);
            cmd.Add("@ma", next.ManualAt?.ToUnixTimeMilliseconds()).DbType = System.Data.DbType.Int64;
            cmd.Add("@v", version);
            await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            return (before, (StoredRiskState?)(next with { Version = version }));
        }, cancellationToken).ConfigureAwait(false);
    }

    public async Task AddPricesAsync(IReadOnlyList<StoredPriceSample> samples, DateTimeOffset pruneBefore, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(samples);
        foreach (StoredPriceSample s in samples)
        {
            Source(s.Source);
            if (s.Price <= 0)
            {
                throw StorageErrors.Invalid("samples", "prices must be positive");
            }
        }

        await store.WriteAsync(async (c, tx) =>
        {
            foreach (StoredPriceSample s in samples)
            {
                using DbCommand ins = SqlEngine.Command(c, tx, "INSERT INTO risk_prices (source, at_ms, price) VALUES (@s, @at, @p)");
                ins.Add("@s", s.Source);
                ins.Add("@at", s.At.ToUnixTimeMilliseconds());
                ins.Add("@p", s.Price.ToString(CultureInfo.InvariantCulture));
                await ins.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            // Old samples go, but never a source's latest one (it is what shows the source went stale).
            using DbCommand prune = SqlEngine.Command(c, tx,
                "DELETE FROM risk_prices WHERE at_ms < @before AND at_ms < (SELECT MAX(l.at_ms) FROM risk_prices l WHERE l.source = risk_prices.source)");
            prune.Add("@before", pruneBefore.ToUnixTimeMilliseconds());
            await prune.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            return true;
        }, cancellationToken).ConfigureAwait(false);
    }

    public async Task AddThreatsAsync(IReadOnlyList<StoredThreatBucket> buckets, DateTimeOffset pruneBefore, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(buckets);
        if (buckets.Any(b => b.Count < 1 || b.At.ToUnixTimeMilliseconds() % 1000 != 0))
        {
            throw StorageErrors.Invalid("buckets", "counts must be positive and times whole seconds");
        }

        await store.WriteAsync(async (c, tx) =>
        {
            foreach (StoredThreatBucket b in buckets.OrderBy(b => b.At))
            {
                using DbCommand up = SqlEngine.Command(c, tx,
                    "INSERT INTO risk_threats (second_ms, events) VALUES (@s, @n) ON CONFLICT (second_ms) DO UPDATE SET events = risk_threats.events + excluded.events");
                up.Add("@s", b.At.ToUnixTimeMilliseconds());
                up.Add("@n", b.Count);
                await up.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            using DbCommand prune = SqlEngine.Command(c, tx, "DELETE FROM risk_threats WHERE second_ms < @before");
            prune.Add("@before", pruneBefore.ToUnixTimeMilliseconds());
            await prune.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            return true;
        }, cancellationToken).ConfigureAwait(false);
    }

    public Task<IReadOnlyList<StoredThreatBucket>> ReadThreatsAsync(DateTimeOffset from, CancellationToken cancellationToken = default) =>
        store.ReadAsync<IReadOnlyList<StoredThreatBucket>>(async c =>
        {
            using DbCommand cmd = SqlEngine.Command(c, null, "SELECT second_ms, events FROM risk_threats WHERE second_ms > @from ORDER BY second_ms");
            cmd.Add("@from", from.ToUnixTimeMilliseconds());
            return await cmd.ListAsync(r => new StoredThreatBucket(SqlStore.FromMs(r.GetInt64(0)), r.GetInt64(1)), cancellationToken).ConfigureAwait(false);
        }, cancellationToken);

    public Task<IReadOnlyList<StoredPriceSample>> ReadPricesAsync(DateTimeOffset from, CancellationToken cancellationToken = default) =>
        store.ReadAsync<IReadOnlyList<StoredPriceSample>>(async c =>
        {
            using DbCommand cmd = SqlEngine.Command(c, null,
                "SELECT source, at_ms, price FROM risk_prices WHERE at_ms > @from " +
                "UNION SELECT p.source, p.at_ms, p.price FROM risk_prices p JOIN (SELECT source, MAX(at_ms) AS m FROM risk_prices GROUP BY source) l ON p.source = l.source AND p.at_ms = l.m");
            cmd.Add("@from", from.ToUnixTimeMilliseconds());
            List<StoredPriceSample> list = await cmd.ListAsync(
                r => new StoredPriceSample(r.GetString(0), SqlStore.FromMs(r.GetInt64(1)), decimal.Parse(r.GetString(2), NumberStyles.Number, CultureInfo.InvariantCulture)),
                cancellationToken).ConfigureAwait(false);
            return [.. list.OrderBy(s => s.Source, StringComparer.Ordinal).ThenBy(s => s.At)];
        }, cancellationToken);

    public Task<bool> AddLockdownVoteAsync(DateTimeOffset lockdownSince, string approver, DateTimeOffset at, CancellationToken cancellationToken = default)
    {
        Validate.Identifier(approver, nameof(approver));
        return store.WriteAsync(async (c, tx) =>
        {
            using DbCommand cmd = SqlEngine.Command(c, tx,
                "INSERT INTO risk_lockdown_votes (lockdown_since_ms, approver, at_ms) VALUES (@s, @a, @at) ON CONFLICT DO NOTHING");
            cmd.Add("@s", lockdownSince.ToUnixTimeMilliseconds());
            cmd.Add("@a", approver);
            cmd.Add("@at", at.ToUnixTimeMilliseconds());
            return await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1;
        }, cancellationToken);
    }

    public Task<IReadOnlyList<string>> LockdownVotesAsync(DateTimeOffset lockdownSince, CancellationToken cancellationToken = default) =>
        store.ReadAsync<IReadOnlyList<string>>(async c =>
        {
            using DbCommand cmd = SqlEngine.Command(c, null, "SELECT approver FROM risk_lockdown_votes WHERE lockdown_since_ms=@s");
            cmd.Add("@s", lockdownSince.ToUnixTimeMilliseconds());
            List<string> list = await cmd.ListAsync(r => r.GetString(0), cancellationToken).ConfigureAwait(false);
            return [.. list.Order(StringComparer.Ordinal)];
        }, cancellationToken);

    private static async Task<StoredRiskState?> ReadStateAsync(DbConnection c, DbTransaction? tx, string forUpdate, CancellationToken ct)
    {
        using DbCommand cmd = SqlEngine.Command(c, tx, $"SELECT {Columns} FROM risk_state WHERE id=1{forUpdate}");
        using DbDataReader r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        if (!await r.ReadAsync(ct).ConfigureAwait(false) || r.GetInt64(8) == 0)
        {
            return null;
        }

        IReadOnlyList<string> reasons = JsonSerializer.Deserialize<string[]>(r.GetString(2)) ?? [];
        return new StoredRiskState(r.GetString(0), SqlStore.FromMs(r.GetInt64(1)), reasons, SqlStore.FromMs(r.GetInt64(3)), r.GetString(4),
            r.IsDBNull(5) ? null : r.GetString(5), r.IsDBNull(6) ? null : r.GetString(6), r.IsDBNull(7) ? null : SqlStore.FromMs(r.GetInt64(7)), r.GetInt64(8));
    }

    private static void Check(StoredRiskState s)
    {
        Validate.Identifier(s.Level, "state.Level");
        Validate.Identifier(s.ManualLevel, "state.ManualLevel");
        Validate.OptionalText(s.ManualBy, "state.ManualBy");
        ArgumentNullException.ThrowIfNull(s.Reasons);
        if (s.Reasons.Count > 64 || (s.ManualReason?.Length ?? 0) > 1024)
        {
            throw StorageErrors.Invalid("state", "at most 64 reasons and a manual reason of at most 1024 characters");
        }
    }

    private static void Source(string? source)
    {
        Validate.Text(source, "sample.Source");
        if (source!.Length > MaxSourceLength)
        {
            throw StorageErrors.Invalid("sample.Source", $"longer than {MaxSourceLength} characters");
        }
    }
}
