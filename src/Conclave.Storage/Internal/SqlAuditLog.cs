using System.Data.Common;
using System.Text;
using System.Threading.Channels;
using Conclave.Crypto.Signing;
using Conclave.Storage.Audit;

namespace Conclave.Storage.Internal;

/// <summary>
/// The audit log. Appends go through a channel to one background writer that commits everything queued so far in a
/// single transaction (group commit): one fsync per batch instead of per entry. Each batch reads and locks the head
/// row, so several processes (PostgreSQL replicas) can share one chain. An append's task completes only after its
/// batch committed; if the batch fails, every append in it fails (DESIGN.md safety rule 6). Entries appended together
/// (<see cref="AppendAllAsync"/>) are one queue item, never split across transactions; a batch holding only lazy
/// entries (<see cref="AppendLazilyAsync"/>: nothing waits for them) waits up to <see cref="StoreOptions.LazyAuditDelay"/>
/// for an append something does wait for, so the two share one fsync.
/// </summary>
internal sealed class SqlAuditLog(SqlStore store) : IAuditLog
{
    private const int RowsPerStatement = 256;
    private const string EntryColumns = "seq, time, actor, action, key_id, request_hash, decision, result, prev_hash, hash";

    private readonly Channel<Pending> _queue = Channel.CreateUnbounded<Pending>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Dictionary<int, string> _insertSql = [];

    /// <summary>The writer's own connection: every batch commits on it, its statements compiled once.</summary>
    private readonly WriterConnection _connection = new();
    private Task? _writer;

    /// <summary>The checkpoint signer in use: the store's, until a handover switches it (written only by the writer loop).</summary>
    private volatile ISigningKey? _signer = store.Options.CheckpointSigner;

    /// <summary>A queued append; <see cref="HandOverTo"/> makes it the handover entry to that key (its input is a placeholder).</summary>
    /// <summary>A queued append; <see cref="Guard"/>, when set, runs first in the batch's transaction and the entries are
    /// written only if it returns true (it must write nothing when it returns false).</summary>
    private sealed record Pending(AuditEntryInput[] Inputs, bool Lazy, TaskCompletionSource<IReadOnlyList<AuditEntry>> Done, ISigningKey? HandOverTo = null,
        Func<DbConnection, DbTransaction, Task<bool>>? Guard = null);

    /// <inheritdoc/>
    public ReadOnlyMemory<byte>? CheckpointPublicKey => _signer?.PublicKey;

    internal ISigningKey? Signer => _signer;

    public async Task<AuditEntry?> HandOverCheckpointKeyAsync(ISigningKey next, string actor, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(next);
        Validate.Text(actor, "actor");
        if (_signer is null)
        {
            throw StorageErrors.Invalid("CheckpointSigner", "the store was opened without a checkpoint signer: there is no key to hand over from");
        }

        if (_writer is null)
        {
            throw StorageErrors.Invalid("store", "opened read-only");
        }

        // Through the writer queue, as one item: no batch of this process signs with the old key after the handover.
        var pending = new Pending([new AuditEntryInput(actor, AuditKeyHandover.Action, null, null, "allow", "")], Lazy: false,
            new TaskCompletionSource<IReadOnlyList<AuditEntry>>(TaskCreationOptions.RunContinuationsAsynchronously), next);
        if (!_queue.Writer.TryWrite(pending))
        {
            throw new ObjectDisposedException(nameof(IConclaveStore));
        }

        IReadOnlyList<AuditEntry> written = await pending.Done.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        return written.Count == 0 ? null : written[0];
    }

    public void Start() => _writer = Task.Run(WriterLoopAsync);

    public async Task StopAsync()
    {
        _queue.Writer.TryComplete();
        if (_writer is not null)
        {
            await _writer.ConfigureAwait(false);
        }
    }

    public async Task<AuditEntry> AppendAsync(AuditEntryInput entry, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(entry);
        return (await Enqueue([entry], lazy: false, cancellationToken).ConfigureAwait(false))[0];
    }

    public Task<IReadOnlyList<AuditEntry>> AppendAllAsync(IReadOnlyList<AuditEntryInput> entries, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(entries);
        if (entries.Count == 0)
        {
            throw StorageErrors.Invalid("entries", "at least one entry is required");
        }

        return Enqueue(entries, lazy: false, cancellationToken);
    }

    public async Task<AuditEntry> AppendLazilyAsync(AuditEntryInput entry, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(entry);
        return (await Enqueue([entry], lazy: true, cancellationToken).ConfigureAwait(false))[0];
    }

    /// <summary>
    /// Appends <paramref name="entries"/> like <see cref="AppendAllAsync"/> after <paramref name="guard"/> ran in the same
    /// transaction (one commit for both); when the guard returns false, nothing of this item is written and the result is
    /// empty. The guard runs inside the writer's batch: it must be short, and write nothing when it refuses.
    /// </summary>
    internal Task<IReadOnlyList<AuditEntry>> AppendGuardedAsync(IReadOnlyList<AuditEntryInput> entries, Func<DbConnection, DbTransaction, Task<bool>> guard, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entries);
        ArgumentNullException.ThrowIfNull(guard);
        if (entries.Count == 0)
        {
            throw StorageErrors.Invalid("entries", "at least one entry is required");
        }

        return Enqueue(entries, lazy: false, cancellationToken, guard);
    }

    private Task<IReadOnlyList<AuditEntry>> Enqueue(IReadOnlyList<AuditEntryInput> entries, bool lazy, CancellationToken cancellationToken,
        Func<DbConnection, DbTransaction, Task<bool>>? guard = null)
    {
        var inputs = new AuditEntryInput[entries.Count];
        for (int k = 0; k < inputs.Length; k++)
        {
            AuditEntryInput entry = entries[k] ?? throw new ArgumentNullException(nameof(entries));
            Validate.Text(entry.Actor, "entry.Actor");
            Validate.Text(entry.Action, "entry.Action");
            Validate.OptionalText(entry.KeyId, "entry.KeyId");
            Validate.Text(entry.Decision, "entry.Decision");
            Validate.Text(entry.Result, "entry.Result");
            if (entry.RequestHash is not null)
            {
                Validate.Hash32(entry.RequestHash, "entry.RequestHash");
            }

            inputs[k] = entry with { RequestHash = entry.RequestHash?.ToArray() };
        }

        if (_writer is null)
        {
            throw StorageErrors.Invalid("store", "opened read-only");
        }

        // One queue item however many entries: the writer never splits an item across two transactions.
        var pending = new Pending(inputs, lazy, new TaskCompletionSource<IReadOnlyList<AuditEntry>>(TaskCreationOptions.RunContinuationsAsynchronously), Guard: guard);
        if (!_queue.Writer.TryWrite(pending))
        {
            throw new ObjectDisposedException(nameof(IConclaveStore));
        }

        // Cancellation only stops the caller waiting; a queued entry is still written.
        return pending.Done.Task.WaitAsync(cancellationToken);
    }

    private async Task WriterLoopAsync()
    {
        int max = Math.Max(1, store.Options.MaxAuditBatch);
        var batch = new List<Pending>();
        while (await _queue.Reader.WaitToReadAsync().ConfigureAwait(false))
        {
            batch.Clear();
            int entries = 0;
            bool urgent = Drain(batch, ref entries, max);

            // Only entries nothing waits for: give another append LazyAuditDelay to share this commit.
            if (!urgent && entries < max)
            {
                await WaitForUrgentAsync(batch, entries, max).ConfigureAwait(false);
            }

            try
            {
                (IReadOnlyList<AuditEntry> written, HashSet<Pending> skipped) = await CommitBatchAsync(batch).ConfigureAwait(false);
                int at = 0;
                foreach (Pending p in batch)
                {
                    var mine = new AuditEntry[skipped.Contains(p) ? 0 : p.Inputs.Length];
                    for (int k = 0; k < mine.Length; k++)
                    {
                        mine[k] = written[at++];
                    }

                    p.Done.TrySetResult(mine);
                }
            }
            catch (Exception e)
            {
                var failure = e as StorageException ?? StorageErrors.Io("audit append", e);
                foreach (Pending p in batch)
                {
                    p.Done.TrySetException(failure);
                }
            }
        }

        await _connection.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>Moves queued items into <paramref name="batch"/> (at least one, whatever its size); true if any is not lazy.</summary>
    private bool Drain(List<Pending> batch, ref int entries, int max)
    {
        bool urgent = false;
        while ((batch.Count == 0 || entries < max) && _queue.Reader.TryPeek(out Pending? next)
            && (batch.Count == 0 || entries + next.Inputs.Length <= max) && _queue.Reader.TryRead(out Pending? p))
        {
            batch.Add(p);
            entries += p.Inputs.Length;
            urgent |= !p.Lazy;
        }

        return urgent;
    }

    /// <summary>
    /// Keeps taking queued items into a batch of lazy entries until a non-lazy one arrives, the batch is full, the queue
    /// is completed or <see cref="StoreOptions.LazyAuditDelay"/> has passed since the batch was started.
    /// </summary>
    private async Task WaitForUrgentAsync(List<Pending> batch, int entries, int max)
    {
        // Real time whatever clock the store was given: a test's frozen clock must not hold entries back for good.
        TimeProvider clock = TimeProvider.System;
        long started = clock.GetTimestamp();
        TimeSpan delay = store.Options.LazyAuditDelay;
        while (entries < max)
        {
            TimeSpan left = delay - clock.GetElapsedTime(started);
            if (left <= TimeSpan.Zero)
            {
                return;
            }

            using var timeout = new CancellationTokenSource(left);
            try
            {
                if (!await _queue.Reader.WaitToReadAsync(timeout.Token).ConfigureAwait(false))
                {
                    return; // completed (StopAsync): commit what there is
                }
            }
            catch (OperationCanceledException)
            {
                return;
            }

            if (Drain(batch, ref entries, max))
            {
                return;
            }
        }
    }

    /// <summary>Commits a batch; returns the entries written in order, and the items that wrote none (a handover already
    /// done, a guard that refused).</summary>
    private Task<(IReadOnlyList<AuditEntry> Written, HashSet<Pending> Skipped)> CommitBatchAsync(List<Pending> batch) =>
        store.WriteAsync<(IReadOnlyList<AuditEntry>, HashSet<Pending>)>(async (c, tx) =>
        {
            HeadState head = await ReadHeadStateAsync(c, tx, lockRow: true, CancellationToken.None).ConfigureAwait(false);
            ISigningKey? signer = _signer;
            if (head.Interval is not null && signer is null)
            {
                throw StorageErrors.Invalid("CheckpointSigner", $"the audit log is signed (from seq {head.From}); open the store with its checkpoint signer to append");
            }

            if (signer is not null && head.PublicKey is not null && !head.PublicKey.AsSpan().SequenceEqual(signer.PublicKey.Span)
                && batch.FirstOrDefault(p => p.HandOverTo is not null)?.HandOverTo?.PublicKey.Span.SequenceEqual(head.PublicKey) != true
                && await IsHandedOverToAsync(c, tx, head.PublicKey).ConfigureAwait(false))
            {
                // Another process (a replica, an operator's rotation) handed the key over: signing on with this one would
                // break the log's key schedule. Appends fail until this process is started with the new key.
                throw StorageErrors.Invalid("CheckpointSigner",
                    $"the audit log's checkpoint key was handed over to {Convert.ToHexStringLower(head.PublicKey)[..16]}…; this process still holds the previous key (start it with the new one)");
            }

            long time = store.NowMs();
            var entries = new List<AuditEntry>(batch.Count);
            var signers = new List<ISigningKey?>(batch.Count);
            var skipped = new HashSet<Pending>();
            byte[] prev = head.Hash;
            long seq = head.Seq;
            foreach (Pending p in batch)
            {
                if (p.HandOverTo is { } next)
                {
                    if (head.PublicKey is not null && next.PublicKey.Span.SequenceEqual(head.PublicKey) && await IsHandedOverToAsync(c, tx, head.PublicKey).ConfigureAwait(false))
                    {
                        signer = next; // handed over already (a restart between the handover and promoting the key file)
                        skipped.Add(p);
                        continue;
                    }

                    AuditKeyHandover handover = AuditKeyHandover.Create(signer!, next, prev);
                    AuditEntryInput i = p.Inputs[0] with { Result = handover.ToResultText() };
                    seq++;
                    byte[] h = AuditHashing.Hash(seq, time, i.Actor, i.Action, i.KeyId, i.RequestHash, i.Decision, i.Result, prev);
                    entries.Add(new AuditEntry(seq, SqlStore.FromMs(time), i.Actor, i.Action, i.KeyId, i.RequestHash, i.Decision, i.Result, prev, h));
                    signer = next;
                    signers.Add(signer);
                    prev = h;
                    continue;
                }

                if (p.Guard is { } guard && !await guard(c, tx).ConfigureAwait(false))
                {
                    skipped.Add(p); // refused: it wrote nothing, and none of its entries is written
                    continue;
                }

                foreach (AuditEntryInput i in p.Inputs)
                {
                    seq++;
                    byte[] hash = AuditHashing.Hash(seq, time, i.Actor, i.Action, i.KeyId, i.RequestHash, i.Decision, i.Result, prev);
                    entries.Add(new AuditEntry(seq, SqlStore.FromMs(time), i.Actor, i.Action, i.KeyId, i.RequestHash, i.Decision, i.Result, prev, hash));
                    signers.Add(signer);
                    prev = hash;
                }
            }

            if (entries.Count == 0)
            {
                _signer = signer;
                return (entries, skipped);
            }

            if (store.Engine.Kind == StoreEngine.Sqlite)
            {
                // SQLite: one single-row statement, compiled once (kept on the writer's connection) and re-bound per
                // entry (no round trips to save).
                using Statement insert = SqlEngine.Statement(c, tx, InsertSql(1));
                DbCommand cmd = insert.Command;
                DbParameter[] p = AddRowParameters(cmd, 0);
                foreach (AuditEntry e in entries)
                {
                    Bind(p, e, time);
                    await cmd.ExecuteNonQueryAsync().ConfigureAwait(false);
                }
            }
            else
            {
                // PostgreSQL: multi-row INSERTs, one round trip per RowsPerStatement entries.
                for (int start = 0; start < entries.Count; start += RowsPerStatement)
                {
                    int count = Math.Min(RowsPerStatement, entries.Count - start);
                    using Statement insert = SqlEngine.Statement(c, tx, InsertSql(count));
                    DbCommand cmd = insert.Command;
                    for (int k = 0; k < count; k++)
                    {
                        Bind(AddRowParameters(cmd, k), entries[start + k], time);
                    }

                    await cmd.ExecuteNonQueryAsync().ConfigureAwait(false);
                }
            }

            using (Statement upd = SqlEngine.Statement(c, tx, "UPDATE audit_head SET seq=@s, hash=@h WHERE id=1"))
            {
                upd.Command.Add("@s", seq);
                upd.Command.Add("@h", prev);
                await upd.Command.ExecuteNonQueryAsync().ConfigureAwait(false);
            }

            // A signed checkpoint at every multiple of the interval, in the same transaction as the entry it covers. A
            // signed log uses the interval fixed (and signed) when it was first signed; the head is re-signed every batch.
            long interval = head.Interval ?? store.Options.CheckpointInterval;
            for (int k = 0; k < entries.Count; k++)
            {
                if (signers[k] is { } entrySigner && interval > 0 && entries[k].Seq % interval == 0)
                {
                    await InsertCheckpointAsync(c, tx, entrySigner, entries[k].Seq, entries[k].Hash, CancellationToken.None).ConfigureAwait(false);
                }
            }

            if (head.Interval is long fixedInterval)
            {
                await SignHeadAsync(c, tx, signer!, seq, prev, fixedInterval, head.From!.Value, CancellationToken.None).ConfigureAwait(false);
            }

            // The new key signs from the next batch on; a failed commit throws before this and leaves the old one.
            _signer = signer;
            return (entries, skipped);
        }, CancellationToken.None, _connection);

    private static DbParameter[] AddRowParameters(DbCommand cmd, int row)
    {
        string s = row.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return
        [
            cmd.Add("@s" + s, null), cmd.Add("@t" + s, null), cmd.Add("@a" + s, null), cmd.Add("@c" + s, null), cmd.Add("@k" + s, null),
            cmd.Add("@r" + s, null), cmd.Add("@d" + s, null), cmd.Add("@o" + s, null), cmd.Add("@p" + s, null), cmd.Add("@h" + s, null),
        ];
    }

    private static void Bind(DbParameter[] p, AuditEntry e, long time)
    {
        p[0].Value = e.Seq;
        p[1].Value = time;
        p[2].Value = e.Actor;
        p[3].Value = e.Action;
        p[4].Value = (object?)e.KeyId ?? DBNull.Value;
        p[5].Value = (object?)e.RequestHash ?? DBNull.Value;
        p[6].Value = e.Decision;
        p[7].Value = e.Result;
        p[8].Value = e.PrevHash;
        p[9].Value = e.Hash;
    }

    private string InsertSql(int rows)
    {
        lock (_insertSql)
        {
            if (_insertSql.TryGetValue(rows, out string? sql))
            {
                return sql;
            }

            var sb = new StringBuilder($"INSERT INTO audit_entries ({EntryColumns}) VALUES ");
            for (int k = 0; k < rows; k++)
            {
                string s = k.ToString(System.Globalization.CultureInfo.InvariantCulture);
                sb.Append(k == 0 ? "" : ", ").Append($"(@s{s}, @t{s}, @a{s}, @c{s}, @k{s}, @r{s}, @d{s}, @o{s}, @p{s}, @h{s})");
            }

            sql = sb.ToString();
            _insertSql[rows] = sql;
            return sql;
        }
    }

    /// <summary>True when the log's last handover names <paramref name="publicKey"/> as its new key.</summary>
    private static async Task<bool> IsHandedOverToAsync(DbConnection c, DbTransaction tx, byte[] publicKey)
    {
        using DbCommand cmd = SqlEngine.Command(c, tx, "SELECT result FROM audit_entries WHERE action=@a ORDER BY seq DESC LIMIT 1");
        cmd.Add("@a", AuditKeyHandover.Action);
        return await cmd.ExecuteScalarAsync().ConfigureAwait(false) is string result
            && AuditKeyHandover.TryParse(result, out AuditKeyHandover? last) && last!.NewPublicKey.AsSpan().SequenceEqual(publicKey);
    }

    private async Task<AuditCheckpoint> InsertCheckpointAsync(DbConnection c, DbTransaction tx, ISigningKey signer, long seq, byte[] hash, CancellationToken ct)
    {
        byte[] input = AuditHashing.CheckpointSigningInput(signer.Scheme, seq, hash);
        byte[] signature = signer.Sign(input).Signature;
        long time = store.NowMs();
        using DbCommand cmd = SqlEngine.Command(c, tx,
            "INSERT INTO audit_checkpoints (seq, hash, scheme, public_key, signature, time) VALUES (@s, @h, @scheme, @pk, @sig, @t) ON CONFLICT DO NOTHING");
        cmd.Add("@s", seq);
        cmd.Add("@h", hash);
        cmd.Add("@scheme", signer.Scheme.Name);
        cmd.Add("@pk", signer.PublicKey.ToArray());
        cmd.Add("@sig", signature);
        cmd.Add("@t", time);
        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        return new AuditCheckpoint(seq, hash, signer.Scheme.Name, signer.PublicKey.ToArray(), signature, SqlStore.FromMs(time));
    }

    /// <summary>The head row with its signature columns (migration 2); Interval is null while the log is unsigned.</summary>
    internal sealed record HeadState(long Seq, byte[] Hash, long? Interval, long? From, long? SignedTimeMs, string? Scheme, byte[]? PublicKey, byte[]? Signature);

    internal const string HeadColumns = "seq, hash, checkpoint_interval, checkpoints_from, signed_time, scheme, public_key, signature";

    private const string HeadSql = $"SELECT {HeadColumns} FROM audit_head WHERE id=1";

    /// <summary>The head read that locks the row (PostgreSQL: FOR UPDATE), built once rather than at every batch.</summary>
    private readonly string _headForUpdateSql = HeadSql + store.Engine.ForUpdate;

    internal static HeadState ReadHeadState(DbDataReader r) => new(r.GetInt64(0), (byte[])r.GetValue(1),
        r.IsDBNull(2) ? null : r.GetInt64(2), r.IsDBNull(3) ? null : r.GetInt64(3), r.IsDBNull(4) ? null : r.GetInt64(4),
        r.GetStringOrNull(5), r.GetBytesOrNull(6), r.GetBytesOrNull(7));

    internal async Task<HeadState> ReadHeadStateAsync(DbConnection c, DbTransaction? tx, bool lockRow, CancellationToken ct)
    {
        using Statement head = SqlEngine.Statement(c, tx, lockRow ? _headForUpdateSql : HeadSql);
        using DbDataReader r = await head.Command.ExecuteReaderAsync(ct).ConfigureAwait(false);
        return await r.ReadAsync(ct).ConfigureAwait(false)
            ? ReadHeadState(r)
            : new HeadState(0, new byte[AuditHashing.HashSize], null, null, null, null, null, null);
    }

    /// <summary>Signs the head (seq, hash, time, interval, from) with the checkpoint signer and stores it in the head row.</summary>
    private async Task SignHeadAsync(DbConnection c, DbTransaction tx, ISigningKey signer, long seq, byte[] hash, long interval, long from, CancellationToken ct)
    {
        long time = store.NowMs();
        byte[] signature = signer.Sign(AuditHashing.HeadSigningInput(signer.Scheme, seq, hash, time, interval, from)).Signature;
        using DbCommand cmd = SqlEngine.Command(c, tx,
            "UPDATE audit_head SET checkpoint_interval=@i, checkpoints_from=@f, signed_time=@t, scheme=@scheme, public_key=@pk, signature=@sig WHERE id=1");
        cmd.Add("@i", interval);
        cmd.Add("@f", from);
        cmd.Add("@t", time);
        cmd.Add("@scheme", signer.Scheme.Name);
        cmd.Add("@pk", signer.PublicKey.ToArray());
        cmd.Add("@sig", signature);
        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Starts signing a log that is not signed yet: a new store, or one just migrated to schema 2 (the one-time
    /// 'audit_head_init' marker the migration wrote). Fixes the checkpoint interval and requires checkpoints from the
    /// current head on. Without a checkpoint signer nothing happens (the marker waits for an open with one).
    /// </summary>
    internal async Task InitializeHeadAsync(CancellationToken ct)
    {
        if (_signer is null
            || await SqlStore.ReadMetaValueAsync(store.Engine, "audit_head_init", ct).ConfigureAwait(false) is null)
        {
            return;
        }

        await store.WriteAsync(async (c, tx) =>
        {
            await StartSigningAsync(c, tx, ct).ConfigureAwait(false);
            using DbCommand done = SqlEngine.Command(c, tx, "DELETE FROM store_meta WHERE name='audit_head_init'");
            await done.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            return true;
        }, ct).ConfigureAwait(false);
    }

    /// <summary>Signs the current head with a fresh interval and "from" if the log is not signed yet (also used after an import).</summary>
    internal async Task StartSigningAsync(DbConnection c, DbTransaction tx, CancellationToken ct)
    {
        if (_signer is not { } signer)
        {
            return;
        }

        HeadState head = await ReadHeadStateAsync(c, tx, lockRow: true, ct).ConfigureAwait(false);
        if (head.Interval is null)
        {
            await SignHeadAsync(c, tx, signer, head.Seq, head.Hash, Math.Max(0, store.Options.CheckpointInterval), head.Seq, ct).ConfigureAwait(false);
        }
    }

    public Task<AuditAnchor> GetAnchorAsync(CancellationToken cancellationToken = default) =>
        store.ReadAsync(async c =>
        {
            HeadState h = await ReadHeadStateAsync(c, null, lockRow: false, cancellationToken).ConfigureAwait(false);
            if (h.Interval is null || h.Signature is null || h.PublicKey is null || h.Scheme is null || h.SignedTimeMs is null || h.From is null)
            {
                throw StorageErrors.Invalid("audit head", "the head is not signed: the log was written without a checkpoint signer");
            }

            return new AuditAnchor(h.Seq, h.Hash, SqlStore.FromMs(h.SignedTimeMs.Value), h.Interval.Value, h.From.Value, h.Scheme, h.PublicKey, h.Signature);
        }, cancellationToken);

    internal async Task<AuditHead> ReadHeadAsync(DbConnection c, DbTransaction? tx, bool lockRow, CancellationToken ct)
    {
        using DbCommand cmd = SqlEngine.Command(c, tx, "SELECT seq, hash FROM audit_head WHERE id=1" + (lockRow ? store.Engine.ForUpdate : ""));
        using DbDataReader r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        return await r.ReadAsync(ct).ConfigureAwait(false)
            ? new AuditHead(r.GetInt64(0), (byte[])r.GetValue(1))
            : new AuditHead(0, new byte[AuditHashing.HashSize]);
    }

    public Task<AuditCheckpoint?> CheckpointAsync(CancellationToken cancellationToken = default)
    {
        if (_signer is null)
        {
            throw StorageErrors.Invalid("CheckpointSigner", "the store was opened without a checkpoint signer");
        }

        return store.WriteAsync<AuditCheckpoint?>(async (c, tx) =>
        {
            HeadState head = await ReadHeadStateAsync(c, tx, lockRow: true, cancellationToken).ConfigureAwait(false);
            ISigningKey signer = _signer;
            if (head.PublicKey is not null && !head.PublicKey.AsSpan().SequenceEqual(signer.PublicKey.Span) && await IsHandedOverToAsync(c, tx, head.PublicKey).ConfigureAwait(false))
            {
                throw StorageErrors.Invalid("CheckpointSigner", "the audit log's checkpoint key was handed over to another key; this process still holds the previous key");
            }

            return head.Seq == 0 ? null : await InsertCheckpointAsync(c, tx, signer, head.Seq, head.Hash, cancellationToken).ConfigureAwait(false);
        }, cancellationToken);
    }

    public Task<AuditHead> GetHeadAsync(CancellationToken cancellationToken = default) =>
        store.ReadAsync(c => ReadHeadAsync(c, null, lockRow: false, cancellationToken), cancellationToken);

    public Task<IReadOnlyList<AuditEntry>> ReadAsync(long fromSeq, int limit, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        return store.ReadAsync<IReadOnlyList<AuditEntry>>(async c =>
        {
            using DbCommand cmd = SqlEngine.Command(c, null, $"SELECT {EntryColumns} FROM audit_entries WHERE seq >= @from ORDER BY seq LIMIT @limit");
            cmd.Add("@from", fromSeq);
            cmd.Add("@limit", limit);
            using DbDataReader r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            var list = new List<AuditEntry>();
            while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                list.Add(ReadEntry(r));
            }

            return list;
        }, cancellationToken);
    }

    public Task<IReadOnlyList<AuditCheckpoint>> GetCheckpointsAsync(CancellationToken cancellationToken = default) =>
        store.ReadAsync(c => ReadCheckpointsAsync(c, null, cancellationToken), cancellationToken);

    internal static async Task<IReadOnlyList<AuditCheckpoint>> ReadCheckpointsAsync(DbConnection c, DbTransaction? tx, CancellationToken ct)
    {
        using DbCommand cmd = SqlEngine.Command(c, tx, "SELECT seq, hash, scheme, public_key, signature, time FROM audit_checkpoints ORDER BY seq");
        using DbDataReader r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        var list = new List<AuditCheckpoint>();
        while (await r.ReadAsync(ct).ConfigureAwait(false))
        {
            list.Add(new AuditCheckpoint(r.GetInt64(0), (byte[])r.GetValue(1), r.GetString(2), (byte[])r.GetValue(3), (byte[])r.GetValue(4), SqlStore.FromMs(r.GetInt64(5))));
        }

        return list;
    }

    internal static AuditEntry ReadEntry(DbDataReader r) => new(
        r.GetInt64(0),
        SqlStore.FromMs(r.GetInt64(1)),
        r.GetString(2),
        r.GetString(3),
        r.GetStringOrNull(4),
        r.GetBytesOrNull(5),
        r.GetString(6),
        r.GetString(7),
        (byte[])r.GetValue(8),
        (byte[])r.GetValue(9));

    public Task<AuditVerificationResult> VerifyAsync(AuditVerifyOptions? options = null, CancellationToken cancellationToken = default) =>
        store.ReadAsync(c => AuditVerifier.VerifyAsync(store.Engine, c, options ?? new AuditVerifyOptions(), cancellationToken), cancellationToken);
}
