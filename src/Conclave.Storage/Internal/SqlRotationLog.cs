using System.Data.Common;
using Conclave.Crypto.Memory;
using Conclave.Storage.Keys;
using Conclave.Storage.Rotation;

namespace Conclave.Storage.Internal;

/// <summary>
/// Rotation runs on either engine. "One unfinished run per key" is a row in <c>rotation_active</c> keyed by the key id,
/// inserted in the same transaction as the run and deleted in the transaction that finishes it: a second run of the
/// same key, from this process or another replica, fails on the primary key; a crashed owner leaves the row, so the
/// key stays locked until its run is recovered (finished or aborted), never silently unlocked.
/// </summary>
internal sealed class SqlRotationLog(SqlStore store) : IRotationLog
{
    private const string Columns = "run_id, key_id, kind, from_version, to_version, state, owner, lease_until, parameters, result, error, created_at, updated_at";

    public async Task<RotationRun> BeginAsync(NewRotationRun run, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(run);
        Validate.Identifier(run.RunId, "run.RunId");
        Validate.Identifier(run.KeyId, "run.KeyId");
        Validate.Text(run.Owner, "run.Owner");
        ArgumentNullException.ThrowIfNull(run.Parameters);
        if (!Enum.IsDefined(run.Kind) || run.FromVersion < 0 || run.ToVersion < 1)
        {
            throw StorageErrors.Invalid("run", "kind and versions must be valid");
        }

        long now = store.NowMs();
        await store.WriteAsync(async (c, tx) =>
        {
            if (await ActiveRunIdAsync(c, tx, run.KeyId, cancellationToken).ConfigureAwait(false) is string other)
            {
                throw StorageErrors.Conflict("key", run.KeyId, $"has an unfinished rotation run {other}");
            }

            using (DbCommand cmd = SqlEngine.Command(c, tx, $"INSERT INTO rotation_runs ({Columns}) VALUES (@run, @key, @kind, @from, @to, @state, @owner, @lease, @params, NULL, NULL, @now, @now)"))
            {
                cmd.Add("@run", run.RunId);
                cmd.Add("@key", run.KeyId);
                cmd.Add("@kind", run.Kind.ToString());
                cmd.Add("@from", run.FromVersion);
                cmd.Add("@to", run.ToVersion);
                cmd.Add("@state", nameof(RotationState.Started));
                cmd.Add("@owner", run.Owner);
                cmd.Add("@lease", now + (long)run.Lease.TotalMilliseconds);
                cmd.Add("@params", run.Parameters);
                cmd.Add("@now", now);
                try
                {
                    await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (DbException e) when (store.Engine.IsUniqueViolation(e))
                {
                    throw StorageErrors.Duplicate("rotation run", run.RunId);
                }
            }

            using (DbCommand cmd = SqlEngine.Command(c, tx, "INSERT INTO rotation_active (key_id, run_id) VALUES (@key, @run)"))
            {
                cmd.Add("@key", run.KeyId);
                cmd.Add("@run", run.RunId);
                try
                {
                    await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (DbException e) when (store.Engine.IsUniqueViolation(e))
                {
                    // Another replica began a run of this key between our check and our insert.
                    throw StorageErrors.Conflict("key", run.KeyId, "has an unfinished rotation run");
                }
            }

            return true;
        }, cancellationToken).ConfigureAwait(false);
        return (await GetAsync(run.RunId, cancellationToken).ConfigureAwait(false))!;
    }

    public Task<RotationRun?> GetAsync(string runId, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(runId);
        return store.ReadAsync(async c =>
        {
            using DbCommand cmd = SqlEngine.Command(c, null, $"SELECT {Columns} FROM rotation_runs WHERE run_id=@run");
            cmd.Add("@run", runId);
            using DbDataReader r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            return await r.ReadAsync(cancellationToken).ConfigureAwait(false) ? Read(r) : null;
        }, cancellationToken);
    }

    public Task<RotationRun?> GetActiveAsync(string keyId, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(keyId);
        return store.ReadAsync(async c =>
        {
            using DbCommand cmd = SqlEngine.Command(c, null,
                $"SELECT {Prefixed("r")} FROM rotation_active a JOIN rotation_runs r ON r.run_id = a.run_id WHERE a.key_id=@key");
            cmd.Add("@key", keyId);
            using DbDataReader r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            return await r.ReadAsync(cancellationToken).ConfigureAwait(false) ? Read(r) : null;
        }, cancellationToken);
    }

    public Task<IReadOnlyList<RotationRun>> ListUnfinishedAsync(CancellationToken cancellationToken = default) =>
        ListAsync($"SELECT {Prefixed("r")} FROM rotation_active a JOIN rotation_runs r ON r.run_id = a.run_id ORDER BY r.created_at", null, 0, cancellationToken);

    public Task<IReadOnlyList<RotationRun>> ListForKeyAsync(string keyId, int limit, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(keyId);
        return ListAsync($"SELECT {Columns} FROM rotation_runs WHERE key_id=@key ORDER BY created_at DESC LIMIT @limit", keyId, Math.Clamp(limit, 1, 10_000), cancellationToken);
    }

    private Task<IReadOnlyList<RotationRun>> ListAsync(string sql, string? keyId, int limit, CancellationToken ct) =>
        store.ReadAsync<IReadOnlyList<RotationRun>>(async c =>
        {
            using DbCommand cmd = SqlEngine.Command(c, null, sql);
            if (keyId is not null)
            {
                cmd.Add("@key", keyId);
                cmd.Add("@limit", limit);
            }

            using DbDataReader r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            var list = new List<RotationRun>();
            while (await r.ReadAsync(ct).ConfigureAwait(false))
            {
                list.Add(Read(r));
            }

            return list;
        }, ct);

    public async Task<RotationRun> TransitionAsync(string runId, RotationState expected, RotationState next, byte[]? result = null, string? error = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(runId);
        await store.WriteAsync((c, tx) => TransitionInTransactionAsync(c, tx, runId, expected, next, result, error, cancellationToken), cancellationToken).ConfigureAwait(false);
        return (await GetAsync(runId, cancellationToken).ConfigureAwait(false))!;
    }

    public async Task<RotationRun> RetireAsync(string runId, Audit.AuditEntryInput? audit = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(runId);
        if (audit is null)
        {
            return await TransitionAsync(runId, RotationState.Committed, RotationState.Retired, cancellationToken: cancellationToken).ConfigureAwait(false);
        }

        // The retire runs first in the audit writer's batch transaction (as a policy reservation does): the entry is
        // written only when the run moves, and both commit together or not at all. The guard writes nothing when the run
        // is not Committed (already retired by an earlier call: no second entry). Its own token is not the caller's (a
        // batch is shared with other appends).
        IReadOnlyList<Audit.AuditEntry> written = await store.AuditLog.AppendGuardedAsync([audit],
            (c, tx) => TryTransitionInTransactionAsync(c, tx, runId, RotationState.Committed, RotationState.Retired, null, null, CancellationToken.None),
            cancellationToken).ConfigureAwait(false);
        return written.Count == 1
            ? (await GetAsync(runId, cancellationToken).ConfigureAwait(false))!
            : throw StorageErrors.Conflict("rotation run", runId, "is not committed");
    }

    private async Task<bool> TransitionInTransactionAsync(DbConnection c, DbTransaction tx, string runId, RotationState expected, RotationState next,
        byte[]? result, string? error, CancellationToken ct) =>
        await TryTransitionInTransactionAsync(c, tx, runId, expected, next, result, error, ct).ConfigureAwait(false)
            ? true
            : throw StorageErrors.Conflict("rotation run", runId, $"is not {expected.ToString().ToLowerInvariant()}");

    /// <summary>The transition inside a transaction; false, with nothing written, when the run is not in <paramref name="expected"/>.</summary>
    private async Task<bool> TryTransitionInTransactionAsync(DbConnection c, DbTransaction tx, string runId, RotationState expected, RotationState next,
        byte[]? result, string? error, CancellationToken ct)
    {
        if (!Enum.IsDefined(next))
        {
            throw StorageErrors.Invalid(nameof(next), "unknown rotation state");
        }

        using (DbCommand cmd = SqlEngine.Command(c, tx,
            "UPDATE rotation_runs SET state=@next, result=COALESCE(@result, result), error=COALESCE(@error, error), updated_at=@now WHERE run_id=@run AND state=@expected"))
        {
            cmd.Add("@next", next.ToString());
            cmd.Add("@result", result).DbType = System.Data.DbType.Binary;
            cmd.Add("@error", error).DbType = System.Data.DbType.String;
            cmd.Add("@now", store.NowMs());
            cmd.Add("@run", runId);
            cmd.Add("@expected", expected.ToString());
            if (await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false) != 1)
            {
                return false;
            }
        }

        if (next is RotationState.Retired or RotationState.Aborted)
        {
            using DbCommand cmd = SqlEngine.Command(c, tx, "DELETE FROM rotation_active WHERE run_id=@run");
            cmd.Add("@run", runId);
            await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }

        return true;
    }

    public async Task<bool> TryLeaseAsync(string runId, string owner, TimeSpan lease, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(runId);
        Validate.Text(owner, nameof(owner));
        long now = store.NowMs();
        return await store.WriteAsync(async (c, tx) =>
        {
            using DbCommand cmd = SqlEngine.Command(c, tx,
                "UPDATE rotation_runs SET owner=@owner, lease_until=@until, updated_at=@now WHERE run_id=@run AND state NOT IN ('Retired', 'Aborted') AND (owner=@owner OR lease_until < @now)");
            cmd.Add("@owner", owner);
            cmd.Add("@until", now + (long)lease.TotalMilliseconds);
            cmd.Add("@now", now);
            cmd.Add("@run", runId);
            return await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1;
        }, cancellationToken).ConfigureAwait(false);
    }

    public async Task<RotationRun> CommitKeyAsync(string runId, KeyRotation rotation, SecretBuffer? material, NewKey? create = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(runId);
        ArgumentNullException.ThrowIfNull(rotation);
        var keys = (SqlKeyStore)store.Keys;
        (string Labels, (string KekId, byte[] Wrapped, byte[] Cipher)? Sealed)? prepared = create is null ? null : keys.PrepareNewKey(create, material);
        await store.EnsureKeyMacKeyAsync(cancellationToken).ConfigureAwait(false);
        await store.WriteAsync(async (c, tx) =>
        {
            RotationRun run = await ReadInTransactionAsync(c, tx, runId, cancellationToken).ConfigureAwait(false) ?? throw StorageErrors.NotFound("rotation run", runId);
            if (run.State == RotationState.Committed)
            {
                return true;
            }

            if (run.KeyId != rotation.KeyId || run.FromVersion != rotation.FromVersion || run.ToVersion != rotation.ToVersion)
            {
                throw StorageErrors.Conflict("rotation run", runId, "names another key or other versions");
            }

            if (prepared is { } p)
            {
                await keys.InsertKeyInTransactionAsync(c, tx, create!, p.Labels, p.Sealed, store.NowMs(), cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await keys.CommitRotationInTransactionAsync(c, tx, rotation, material, cancellationToken).ConfigureAwait(false);
            }

            return await TransitionInTransactionAsync(c, tx, runId, RotationState.Prepared, RotationState.Committed, null, null, cancellationToken).ConfigureAwait(false);
        }, cancellationToken).ConfigureAwait(false);
        return (await GetAsync(runId, cancellationToken).ConfigureAwait(false))!;
    }

    private static async Task<RotationRun?> ReadInTransactionAsync(DbConnection c, DbTransaction tx, string runId, CancellationToken ct)
    {
        using DbCommand cmd = SqlEngine.Command(c, tx, $"SELECT {Columns} FROM rotation_runs WHERE run_id=@run");
        cmd.Add("@run", runId);
        using DbDataReader r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        return await r.ReadAsync(ct).ConfigureAwait(false) ? Read(r) : null;
    }

    private static async Task<string?> ActiveRunIdAsync(DbConnection c, DbTransaction tx, string keyId, CancellationToken ct)
    {
        using DbCommand cmd = SqlEngine.Command(c, tx, "SELECT run_id FROM rotation_active WHERE key_id=@key");
        cmd.Add("@key", keyId);
        return await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false) as string;
    }

    private static string Prefixed(string alias) => string.Join(", ", Columns.Split(", ").Select(col => alias + "." + col));

    private static RotationRun Read(DbDataReader r) => new(
        r.GetString(0),
        r.GetString(1),
        Enum.Parse<RotationKind>(r.GetString(2)),
        r.GetInt32(3),
        r.GetInt32(4),
        Enum.Parse<RotationState>(r.GetString(5)),
        r.GetString(6),
        SqlStore.FromMs(r.GetInt64(7)),
        (byte[])r.GetValue(8),
        r.GetBytesOrNull(9),
        r.GetStringOrNull(10),
        SqlStore.FromMs(r.GetInt64(11)),
        SqlStore.FromMs(r.GetInt64(12)));

    public async Task SaveTranscriptAsync(string runId, byte[] transcript, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(runId);
        ArgumentNullException.ThrowIfNull(transcript);
        await store.WriteAsync(async (c, tx) =>
        {
            using DbCommand cmd = SqlEngine.Command(c, tx, "INSERT INTO rotation_transcripts (run_id, transcript, created_at) VALUES (@run, @t, @now)");
            cmd.Add("@run", runId);
            cmd.Add("@t", transcript);
            cmd.Add("@now", store.NowMs());
            try
            {
                await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (DbException e) when (store.Engine.IsUniqueViolation(e))
            {
                throw StorageErrors.Duplicate("rotation transcript", runId);
            }

            return true;
        }, cancellationToken).ConfigureAwait(false);
    }

    public Task<byte[]?> GetTranscriptAsync(string keyId, int version, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(keyId);
        return store.ReadAsync<byte[]?>(async c =>
        {
            using DbCommand cmd = SqlEngine.Command(c, null,
                "SELECT t.transcript FROM rotation_transcripts t JOIN rotation_runs r ON r.run_id = t.run_id WHERE r.key_id=@key AND r.to_version=@v AND r.kind <> 'Repair' AND r.state IN ('Committed', 'Retired')");
            cmd.Add("@key", keyId);
            cmd.Add("@v", version);
            using DbDataReader r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            return await r.ReadAsync(cancellationToken).ConfigureAwait(false) ? (byte[])r.GetValue(0) : null;
        }, cancellationToken);
    }

    public Task<byte[]?> GetRunTranscriptAsync(string runId, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(runId);
        return store.ReadAsync<byte[]?>(async c =>
        {
            using DbCommand cmd = SqlEngine.Command(c, null,
                "SELECT t.transcript FROM rotation_transcripts t JOIN rotation_runs r ON r.run_id = t.run_id WHERE r.run_id=@run AND r.state IN ('Committed', 'Retired')");
            cmd.Add("@run", runId);
            using DbDataReader r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            return await r.ReadAsync(cancellationToken).ConfigureAwait(false) ? (byte[])r.GetValue(0) : null;
        }, cancellationToken);
    }
}
