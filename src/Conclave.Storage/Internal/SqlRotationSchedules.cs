using System.Data.Common;
using Conclave.Storage.Rotation;

namespace Conclave.Storage.Internal;

/// <summary>Rotation schedules on either engine: one row per key in <c>rotation_schedules</c>.</summary>
internal sealed class SqlRotationSchedules(SqlStore store) : IRotationSchedules
{
    private const string Columns = "key_id, interval_ms, after_signatures, signatures, last_rotation, next_due, failures, total_failures, last_error, demand_reason";

    public async Task<RotationSchedule> SetAsync(string keyId, TimeSpan? interval, long? afterSignatures, DateTimeOffset? nextDue, CancellationToken cancellationToken = default)
    {
        Validate.Identifier(keyId, nameof(keyId));
        if (interval is null && afterSignatures is null)
        {
            throw StorageErrors.Invalid("schedule", "needs an interval or a signature count");
        }

        if (interval <= TimeSpan.Zero || afterSignatures < 1)
        {
            throw StorageErrors.Invalid("schedule", "the interval and the signature count must be positive");
        }

        await store.WriteAsync(async (c, tx) =>
        {
            using (DbCommand update = SqlEngine.Command(c, tx, "UPDATE rotation_schedules SET interval_ms=@i, after_signatures=@n, next_due=@due, updated_at=@now WHERE key_id=@key"))
            {
                Fill(update, keyId, interval, afterSignatures, nextDue);
                if (await update.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1)
                {
                    return true;
                }
            }

            using DbCommand insert = SqlEngine.Command(c, tx,
                "INSERT INTO rotation_schedules (key_id, interval_ms, after_signatures, signatures, last_rotation, next_due, failures, total_failures, last_error, demand_reason, updated_at) " +
                "VALUES (@key, @i, @n, 0, NULL, @due, 0, 0, NULL, NULL, @now)");
            Fill(insert, keyId, interval, afterSignatures, nextDue);
            await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            return true;
        }, cancellationToken).ConfigureAwait(false);
        return (await GetAsync(keyId, cancellationToken).ConfigureAwait(false))!;
    }

    private void Fill(DbCommand cmd, string keyId, TimeSpan? interval, long? afterSignatures, DateTimeOffset? nextDue)
    {
        cmd.Add("@key", keyId);
        cmd.Add("@i", interval is { } i ? (long)i.TotalMilliseconds : null).DbType = System.Data.DbType.Int64;
        cmd.Add("@n", afterSignatures).DbType = System.Data.DbType.Int64;
        cmd.Add("@due", nextDue?.ToUnixTimeMilliseconds()).DbType = System.Data.DbType.Int64;
        cmd.Add("@now", store.NowMs());
    }

    public async Task<RotationSchedule?> GetAsync(string keyId, CancellationToken cancellationToken = default) =>
        (await ListAsync($"SELECT {Columns} FROM rotation_schedules WHERE key_id=@key", keyId, cancellationToken).ConfigureAwait(false)).SingleOrDefault();

    public Task<IReadOnlyList<RotationSchedule>> ListAsync(CancellationToken cancellationToken = default) =>
        ListAsync($"SELECT {Columns} FROM rotation_schedules ORDER BY key_id", null, cancellationToken);

    private Task<IReadOnlyList<RotationSchedule>> ListAsync(string sql, string? keyId, CancellationToken ct) =>
        store.ReadAsync<IReadOnlyList<RotationSchedule>>(async c =>
        {
            using DbCommand cmd = SqlEngine.Command(c, null, sql);
            if (keyId is not null)
            {
                cmd.Add("@key", keyId);
            }

            using DbDataReader r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            var list = new List<RotationSchedule>();
            while (await r.ReadAsync(ct).ConfigureAwait(false))
            {
                list.Add(new RotationSchedule(r.GetString(0), r.IsDBNull(1) ? null : TimeSpan.FromMilliseconds(r.GetInt64(1)), r.IsDBNull(2) ? null : r.GetInt64(2),
                    r.GetInt64(3), r.IsDBNull(4) ? null : SqlStore.FromMs(r.GetInt64(4)), r.IsDBNull(5) ? null : SqlStore.FromMs(r.GetInt64(5)),
                    r.GetInt64(6), r.GetInt64(7), r.IsDBNull(8) ? null : r.GetString(8), r.IsDBNull(9) ? null : r.GetString(9)));
            }

            return list;
        }, ct);

    public Task<bool> RemoveAsync(string keyId, CancellationToken cancellationToken = default) =>
        ExecAsync("DELETE FROM rotation_schedules WHERE key_id=@key", keyId, null, cancellationToken);

    public async Task AddSignaturesAsync(string keyId, long count, CancellationToken cancellationToken = default) =>
        await ExecAsync("UPDATE rotation_schedules SET signatures=signatures+@a WHERE key_id=@key", keyId, cmd => cmd.Add("@a", count), cancellationToken).ConfigureAwait(false);

    public Task<bool> DemandAsync(string keyId, string reason, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(reason);
        return ExecAsync("UPDATE rotation_schedules SET next_due=@due, demand_reason=@why WHERE key_id=@key", keyId, cmd =>
        {
            cmd.Add("@due", now.ToUnixTimeMilliseconds());
            cmd.Add("@why", reason.Length > 200 ? reason[..200] : reason);
        }, cancellationToken);
    }

    public async Task RecordRotationAsync(string keyId, DateTimeOffset at, DateTimeOffset? nextDue, CancellationToken cancellationToken = default) =>
        await ExecAsync("UPDATE rotation_schedules SET last_rotation=@at, next_due=@due, signatures=0, failures=0, last_error=NULL, demand_reason=NULL WHERE key_id=@key", keyId, cmd =>
        {
            cmd.Add("@at", at.ToUnixTimeMilliseconds());
            cmd.Add("@due", nextDue?.ToUnixTimeMilliseconds()).DbType = System.Data.DbType.Int64;
        }, cancellationToken).ConfigureAwait(false);

    public async Task RecordFailureAsync(string keyId, string error, DateTimeOffset retryAt, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(error);
        await ExecAsync("UPDATE rotation_schedules SET failures=failures+1, total_failures=total_failures+1, last_error=@e, next_due=@due WHERE key_id=@key", keyId, cmd =>
        {
            cmd.Add("@e", error.Length > 300 ? error[..300] : error);
            cmd.Add("@due", retryAt.ToUnixTimeMilliseconds());
        }, cancellationToken).ConfigureAwait(false);
    }

    private Task<bool> ExecAsync(string sql, string keyId, Action<DbCommand>? fill, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(keyId);
        return store.WriteAsync(async (c, tx) =>
        {
            using DbCommand cmd = SqlEngine.Command(c, tx, sql);
            cmd.Add("@key", keyId);
            fill?.Invoke(cmd);
            return await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false) == 1;
        }, ct);
    }
}
