using System.Data;
using System.Data.Common;
using System.Security.Cryptography;
using Conclave.Crypto.Signing;
using Conclave.Storage.Audit;

namespace Conclave.Storage.Internal;

/// <summary>
/// Recomputes the chain in one read snapshot and names the first bad seq. It detects any change to an entry
/// (its hash no longer matches), a deleted or inserted entry (seq gap, a renumbered entry whose hash matches another
/// seq, a broken prev-hash link, or a head/checkpoint that disagrees with the rows) and reordering (an entry whose
/// prev-hash is the hash of a later entry). A rewrite of the whole tail with recomputed hashes is caught by the next
/// signed checkpoint or the head; see docs/STORAGE.md for what a database-level attacker can and cannot hide.
/// </summary>
internal static class AuditVerifier
{
    private const int MaxShift = 256;

    private sealed record Row(long Seq, long TimeMs, string Actor, string Action, string? KeyId, byte[]? RequestHash,
        string Decision, string Result, byte[] PrevHash, byte[] Hash)
    {
        public byte[] Recompute(long seq) => AuditHashing.Hash(seq, TimeMs, Actor, Action, KeyId, RequestHash, Decision, Result, PrevHash);
    }

    private sealed record Failure(long Seq, AuditTamperKind Kind, string Detail);

    public static async Task<AuditVerificationResult> VerifyAsync(SqlEngine engine, DbConnection c, AuditVerifyOptions options, CancellationToken ct)
    {
        DbTransaction tx = engine.Kind == StoreEngine.Postgres
            ? await c.BeginTransactionAsync(IsolationLevel.RepeatableRead, ct).ConfigureAwait(false)
            : await c.BeginTransactionAsync(ct).ConfigureAwait(false);
        await using (tx.ConfigureAwait(false))
        {
            SqlAuditLog.HeadState state;
            using (DbCommand cmd = SqlEngine.Command(c, tx, $"SELECT {SqlAuditLog.HeadColumns} FROM audit_head WHERE id=1"))
            using (DbDataReader r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false))
            {
                state = await r.ReadAsync(ct).ConfigureAwait(false)
                    ? SqlAuditLog.ReadHeadState(r)
                    : new SqlAuditLog.HeadState(0, new byte[32], null, null, null, null, null, null);
            }

            var head = new AuditHead(state.Seq, state.Hash);
            AuditAnchor? anchor = options.Anchor;

            // The checkpoint keys in order: the first handover's outgoing key, then each handover's new one (docs/STORAGE.md
            // "Rotating the checkpoint key"). Read ahead here, proven in order below: each handover must be signed by the
            // key in effect before it. Without handovers the log has one key: the pinned one, if any.
            IReadOnlyList<AuditKeyHandover> handovers = await ReadHandoversAsync(c, tx, ct).ConfigureAwait(false);
            byte[]? pinned = options.TrustedCheckpointKey ?? anchor?.PublicKey;
            List<byte[]> schedule = handovers.Count > 0 ? [handovers[0].OldPublicKey, .. handovers.Select(h => h.NewPublicKey)] : pinned is null ? [] : [pinned];
            bool InSchedule(byte[] key) => schedule.Any(k => k.AsSpan().SequenceEqual(key));

            // An external anchor is trusted more than the database: its key is pinned unless one was given.
            if (anchor is not null && (!anchor.VerifySignature() || !InSchedule(anchor.PublicKey)))
            {
                return Result(head, 0, 0, new Failure(anchor.Seq, AuditTamperKind.AnchorMismatch,
                    "the anchor's signature does not verify (or it was signed by a key that is not one of the log's checkpoint keys)"), headSigned: false);
            }

            if (options.TrustedCheckpointKey is { } trustedKey && !InSchedule(trustedKey))
            {
                return Result(head, 0, 0, new Failure(handovers.Count > 0 ? 1 : state.Seq, AuditTamperKind.BadCheckpoint,
                    "the trusted key is not one of the log's checkpoint keys"), headSigned: false);
            }

            byte[]? current = schedule.Count > 0 ? schedule[0] : null;
            Failure? headFailure = CheckHead(state, options, schedule.Count > 0 ? schedule[^1] : null);
            long interval = state.Interval ?? 0;
            long from = state.From ?? long.MaxValue;

            IReadOnlyList<AuditCheckpoint> checkpoints = await SqlAuditLog.ReadCheckpointsAsync(c, tx, ct).ConfigureAwait(false);
            var bySeq = checkpoints.ToDictionary(k => k.Seq);
            long checkedEntries = 0, checkedCheckpoints = 0;
            byte[] prev = new byte[32];
            long expected = 1;
            Row? bad = null;
            Failure? failure = null;

            using (DbCommand cmd = SqlEngine.Command(c, tx,
                "SELECT seq, time, actor, action, key_id, request_hash, decision, result, prev_hash, hash FROM audit_entries ORDER BY seq"))
            using (DbDataReader r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false))
            {
                while (await r.ReadAsync(ct).ConfigureAwait(false))
                {
                    var row = new Row(r.GetInt64(0), r.GetInt64(1), r.GetString(2), r.GetString(3), r.GetStringOrNull(4), r.GetBytesOrNull(5),
                        r.GetString(6), r.GetString(7), (byte[])r.GetValue(8), (byte[])r.GetValue(9));
                    if (row.Seq != expected)
                    {
                        failure = new Failure(expected, AuditTamperKind.Deleted, $"entries {expected}..{row.Seq - 1} are missing");
                        break;
                    }

                    if (!CryptographicOperations.FixedTimeEquals(row.Recompute(row.Seq), row.Hash) || !row.PrevHash.AsSpan().SequenceEqual(prev))
                    {
                        bad = row;
                        break;
                    }

                    if (row.Action == AuditKeyHandover.Action)
                    {
                        failure = CheckHandover(row, ref current);
                        if (failure is not null)
                        {
                            break;
                        }
                    }

                    if (anchor is not null && row.Seq == anchor.Seq && !row.Hash.AsSpan().SequenceEqual(anchor.Hash))
                    {
                        failure = new Failure(row.Seq, AuditTamperKind.AnchorMismatch, $"the entry at seq {row.Seq} is not the one the anchor recorded (the log was rewritten or truncated and regrown)");
                        break;
                    }

                    if (anchor is not null && row.Seq == anchor.Seq && current is not null && !current.AsSpan().SequenceEqual(anchor.PublicKey))
                    {
                        failure = new Failure(row.Seq, AuditTamperKind.AnchorMismatch, $"the anchor is signed by a key that was not the checkpoint key at seq {row.Seq}");
                        break;
                    }

                    if (interval > 0 && row.Seq > from && row.Seq % interval == 0 && !bySeq.ContainsKey(row.Seq))
                    {
                        failure = new Failure(row.Seq, AuditTamperKind.MissingCheckpoint,
                            $"no signed checkpoint at seq {row.Seq} (one is required every {interval} entries after seq {from})");
                        break;
                    }

                    if (bySeq.TryGetValue(row.Seq, out AuditCheckpoint? cp))
                    {
                        failure = CheckCheckpoint(cp, row.Hash, current);
                        if (failure is not null)
                        {
                            break;
                        }

                        checkedCheckpoints++;
                    }

                    prev = row.Hash;
                    checkedEntries++;
                    expected++;
                }
            }

            long last = expected - 1;
            if (bad is not null)
            {
                failure = await ClassifyAsync(c, tx, bad, prev, ct).ConfigureAwait(false);
            }

            if (failure is null)
            {
                AuditCheckpoint? beyond = checkpoints.FirstOrDefault(k => k.Seq > last);
                if (beyond is not null)
                {
                    failure = new Failure(last + 1, AuditTamperKind.Deleted, $"a signed checkpoint covers seq {beyond.Seq} but the log ends at {last}");
                }
                else if (head.Seq > last)
                {
                    failure = new Failure(last + 1, AuditTamperKind.Deleted, $"the head records seq {head.Seq} but the log ends at {last}");
                }
                else if (head.Seq < last)
                {
                    failure = new Failure(head.Seq + 1, AuditTamperKind.Inserted, $"entries after the head (seq {head.Seq})");
                }
                else if (!head.Hash.AsSpan().SequenceEqual(prev))
                {
                    failure = new Failure(last, AuditTamperKind.Changed, "the last entry's hash differs from the head");
                }
                else if (anchor is not null && anchor.Seq > last)
                {
                    failure = new Failure(last + 1, AuditTamperKind.AnchorMismatch, $"the anchor records seq {anchor.Seq} but the log ends at {last}");
                }
            }

            failure ??= headFailure;
            return Result(head, checkedEntries, checkedCheckpoints, failure, headSigned: headFailure is null && state.Interval is not null) with
            {
                AnchorSeq = failure is null ? anchor?.Seq : null,
            };
        }
    }

    private static AuditVerificationResult Result(AuditHead head, long entries, long checkpoints, Failure? failure, bool headSigned) => failure is null
        ? new AuditVerificationResult(true, entries, checkpoints, head, null, AuditTamperKind.None, "") { HeadSigned = headSigned }
        : new AuditVerificationResult(false, entries, checkpoints, head, failure.Seq, failure.Kind, failure.Detail) { HeadSigned = headSigned };

    /// <summary>
    /// A handover entry must parse, hand over from the key in effect (when one is known) and carry that key's signature
    /// for its place in the chain; the new key is in effect from its seq on.
    /// </summary>
    private static Failure? CheckHandover(Row row, ref byte[]? current)
    {
        if (!AuditKeyHandover.TryParse(row.Result, out AuditKeyHandover? h) || h is null)
        {
            return new Failure(row.Seq, AuditTamperKind.BadCheckpoint, "a checkpoint-key handover entry is malformed");
        }

        if (current is not null && !current.AsSpan().SequenceEqual(h.OldPublicKey))
        {
            return new Failure(row.Seq, AuditTamperKind.BadCheckpoint, "a checkpoint-key handover is made by a key that was not in effect");
        }

        if (!h.Verify(row.PrevHash))
        {
            return new Failure(row.Seq, AuditTamperKind.BadCheckpoint, "a checkpoint-key handover's signature does not verify");
        }

        current = h.NewPublicKey;
        return null;
    }

    private static async Task<IReadOnlyList<AuditKeyHandover>> ReadHandoversAsync(DbConnection c, DbTransaction tx, CancellationToken ct)
    {
        using DbCommand cmd = SqlEngine.Command(c, tx, "SELECT result FROM audit_entries WHERE action=@a ORDER BY seq");
        cmd.Add("@a", AuditKeyHandover.Action);
        using DbDataReader r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        var list = new List<AuditKeyHandover>();
        while (await r.ReadAsync(ct).ConfigureAwait(false))
        {
            if (AuditKeyHandover.TryParse(r.GetString(0), out AuditKeyHandover? h) && h is not null)
            {
                list.Add(h);
            }
        }

        return list;
    }

    /// <summary>
    /// The head must carry a signature (issue 14 item 6) over its seq, hash, time, checkpoint interval and "from", by the
    /// key in effect at the head when one is known (the pinned key, or the last handover's new key).
    /// </summary>
    private static Failure? CheckHead(SqlAuditLog.HeadState h, AuditVerifyOptions options, byte[]? expectedKey)
    {
        if (h.Interval is null)
        {
            return h.Seq == 0 || options.AllowUnsigned
                ? null
                : new Failure(h.Seq, AuditTamperKind.Unsigned, "the head is not signed (written without a checkpoint signer, or its signature was removed)");
        }

        if (h.Scheme is null || h.PublicKey is null || h.Signature is null || h.SignedTimeMs is null || h.From is null
            || !SignatureSchemes.TryGet(h.Scheme, out SoftwareSignatureScheme? scheme) || scheme is null)
        {
            return new Failure(h.Seq, AuditTamperKind.BadCheckpoint, "the head's signature is missing or incomplete");
        }

        if (expectedKey is not null && !expectedKey.AsSpan().SequenceEqual(h.PublicKey))
        {
            return new Failure(h.Seq, AuditTamperKind.BadCheckpoint, "the head is signed by a key other than the trusted one");
        }

        byte[] input = AuditHashing.HeadSigningInput(scheme, h.Seq, h.Hash, h.SignedTimeMs.Value, h.Interval.Value, h.From.Value);
        bool ok;
        try
        {
            ok = scheme.Verify(h.PublicKey, input, h.Signature);
        }
        catch (ArgumentException)
        {
            ok = false;
        }

        return ok ? null : new Failure(h.Seq, AuditTamperKind.BadCheckpoint, "the head's signature does not verify (the head, its interval or the tail was rewritten)");
    }

    private static Failure? CheckCheckpoint(AuditCheckpoint cp, byte[] rowHash, byte[]? expectedKey)
    {
        if (!cp.Hash.AsSpan().SequenceEqual(rowHash))
        {
            return new Failure(cp.Seq, AuditTamperKind.Changed, "the chain up to this entry differs from the signed checkpoint");
        }

        if (!SignatureSchemes.TryGet(cp.Scheme, out SoftwareSignatureScheme? scheme) || scheme is null)
        {
            return new Failure(cp.Seq, AuditTamperKind.BadCheckpoint, $"checkpoint signed with unknown scheme '{cp.Scheme}'");
        }

        if (expectedKey is not null && !expectedKey.AsSpan().SequenceEqual(cp.PublicKey))
        {
            return new Failure(cp.Seq, AuditTamperKind.BadCheckpoint, "checkpoint signed by a key other than the trusted node key");
        }

        byte[] input = AuditHashing.CheckpointSigningInput(scheme, cp.Seq, cp.Hash);
        return scheme.Verify(cp.PublicKey, input, cp.Signature)
            ? null
            : new Failure(cp.Seq, AuditTamperKind.BadCheckpoint, "checkpoint signature does not verify");
    }

    private static async Task<Failure> ClassifyAsync(DbConnection c, DbTransaction tx, Row row, byte[] expectedPrev, CancellationToken ct)
    {
        long k = row.Seq;
        long? owner = await FindSeqByHashAsync(c, tx, row.PrevHash, ct).ConfigureAwait(false);
        if (owner > k)
        {
            return new Failure(k, AuditTamperKind.Reordered, $"entry {k} follows entry {owner} in the chain");
        }

        bool selfOk = CryptographicOperations.FixedTimeEquals(row.Recompute(k), row.Hash);
        if (!selfOk)
        {
            for (int d = 1; d <= MaxShift; d++)
            {
                if (k + d > 0 && row.Recompute(k + d).AsSpan().SequenceEqual(row.Hash))
                {
                    return new Failure(k, AuditTamperKind.Deleted, $"the entry stored at {k} was written as seq {k + d}: {d} entr{(d == 1 ? "y" : "ies")} removed and the rest renumbered");
                }

                if (k - d > 0 && row.Recompute(k - d).AsSpan().SequenceEqual(row.Hash))
                {
                    return new Failure(k - d, AuditTamperKind.Inserted, $"the entry stored at {k} was written as seq {k - d}: {d} entr{(d == 1 ? "y" : "ies")} inserted before it");
                }
            }

            return new Failure(k, AuditTamperKind.Changed, "the entry's content does not match its hash");
        }

        // The entry is self-consistent but does not link to its predecessor.
        if (owner is long j && j < k - 1)
        {
            return new Failure(j + 1, AuditTamperKind.Inserted, $"entry {k} links to entry {j}: entries {j + 1}..{k - 1} were inserted");
        }

        _ = expectedPrev;
        return new Failure(Math.Max(1, k - 1), AuditTamperKind.Changed, $"entry {k} does not link to entry {k - 1} (entry {k - 1} was rewritten, or entries between them were removed)");
    }

    private static async Task<long?> FindSeqByHashAsync(DbConnection c, DbTransaction tx, byte[] hash, CancellationToken ct)
    {
        using DbCommand cmd = SqlEngine.Command(c, tx, "SELECT seq FROM audit_entries WHERE hash=@h ORDER BY seq LIMIT 1");
        cmd.Add("@h", hash);
        object? v = await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false);
        return v is null or DBNull ? null : Convert.ToInt64(v, System.Globalization.CultureInfo.InvariantCulture);
    }
}
