using System.Data.Common;
using Conclave.Crypto.Memory;
using Conclave.Storage.Nodes;

namespace Conclave.Storage.Internal;

/// <summary>
/// Untrusted signer nodes on either engine: one row per node in <c>node_trust</c>, each with a record MAC
/// (<see cref="NodeTrustRecordMac"/>, migration 12). Every write re-reads the row it changes with its MAC checked (so a
/// tampered row is refused rather than re-sealed) and writes the new MAC in the same transaction; every read checks
/// every row when the store is unlocked (a store opened without its KEK cannot, and returns the rows unchecked).
/// </summary>
internal sealed class SqlNodeTrustStore(SqlStore store) : INodeTrustStore
{
    private const int MaxReasonLength = 500;
    private const string Untrusted = "untrusted";

    private sealed record Row(long NodeId, string State, string Reason, long? Replacement, long Since, byte[]? Mac);

    public async Task<UntrustedNode> MarkUntrustedAsync(uint nodeId, string reason, uint? replacement, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(reason);
        if (nodeId == 0 || replacement == 0 || replacement == nodeId)
        {
            throw StorageErrors.Invalid(nameof(nodeId), "node ids are positive and a node cannot replace itself");
        }

        if (reason.Length > MaxReasonLength || reason.Any(char.IsControl))
        {
            throw StorageErrors.Invalid(nameof(reason), $"at most {MaxReasonLength} characters without control characters");
        }

        await store.EnsureKeyMacKeyAsync(cancellationToken).ConfigureAwait(false);
        long now = store.NowMs();
        await store.WriteAsync(async (c, tx) =>
        {
            IReadOnlyList<Row> found = await ReadRowsAsync(c, tx, nodeId, forUpdate: true, cancellationToken).ConfigureAwait(false);
            await VerifyAsync(c, tx, found, cancellationToken).ConfigureAwait(false);
            using SecretBuffer macKey = await MacKeyAsync(c, tx, nodeId, cancellationToken).ConfigureAwait(false);
            if (found.Count == 1)
            {
                // Already untrusted: the first reason and time stay; a replacement given now is recorded.
                Row row = found[0];
                long? rep = replacement is { } r ? (long)r : row.Replacement;
                using DbCommand update = SqlEngine.Command(c, tx, "UPDATE node_trust SET replacement=@replacement, mac=@mac WHERE node_id=@node");
                update.Add("@replacement", rep).DbType = System.Data.DbType.Int64;
                update.Add("@mac", KeyRecordMac.Compute(macKey, NodeTrustRecordMac.Encode(row.NodeId, row.State, row.Reason, rep, row.Since)));
                update.Add("@node", (long)nodeId);
                await update.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                return true;
            }

            long? replacementId = replacement is { } x ? (long)x : null;
            using DbCommand insert = SqlEngine.Command(c, tx,
                "INSERT INTO node_trust (node_id, state, reason, replacement, since, mac) VALUES (@node, @state, @reason, @replacement, @now, @mac)");
            insert.Add("@node", (long)nodeId);
            insert.Add("@state", Untrusted);
            insert.Add("@reason", reason);
            insert.Add("@replacement", replacementId).DbType = System.Data.DbType.Int64;
            insert.Add("@now", now);
            insert.Add("@mac", KeyRecordMac.Compute(macKey, NodeTrustRecordMac.Encode(nodeId, Untrusted, reason, replacementId, now)));
            await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            return true;
        }, cancellationToken).ConfigureAwait(false);
        return (await ListUntrustedAsync(cancellationToken).ConfigureAwait(false)).Single(n => n.NodeId == nodeId);
    }

    public Task<IReadOnlyList<UntrustedNode>> ListUntrustedAsync(CancellationToken cancellationToken = default) =>
        store.ReadAsync<IReadOnlyList<UntrustedNode>>(async c =>
        {
            IReadOnlyList<Row> rows = await ReadRowsAsync(c, null, null, forUpdate: false, cancellationToken).ConfigureAwait(false);
            await VerifyAsync(c, null, rows, cancellationToken).ConfigureAwait(false);
            return [.. rows.Where(r => r.State == Untrusted)
                .Select(r => new UntrustedNode(checked((uint)r.NodeId), r.Reason, r.Replacement is { } rep ? checked((uint)rep) : null, SqlStore.FromMs(r.Since)))];
        }, cancellationToken);

    public Task<bool> ReadmitAsync(uint nodeId, CancellationToken cancellationToken = default) =>
        store.WriteAsync(async (c, tx) =>
        {
            IReadOnlyList<Row> found = await ReadRowsAsync(c, tx, nodeId, forUpdate: true, cancellationToken).ConfigureAwait(false);
            if (found.Count == 0)
            {
                return false;
            }

            // A tampered row is refused, not silently removed.
            await VerifyAsync(c, tx, found, cancellationToken).ConfigureAwait(false);
            using DbCommand cmd = SqlEngine.Command(c, tx, "DELETE FROM node_trust WHERE node_id=@node");
            cmd.Add("@node", (long)nodeId);
            return await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1;
        }, cancellationToken);

    /// <summary>
    /// After migration 12, rows written before it have no MAC: the first unlocked, writable open computes them (trusting the
    /// rows as they are at that moment) and removes the one-time marker. From then on a row without a MAC is refused.
    /// </summary>
    internal async Task BackfillMacsAsync(CancellationToken ct)
    {
        if (await SqlStore.ReadMetaValueAsync(store.Engine, NodeTrustRecordMac.BackfillMarker, ct).ConfigureAwait(false) is null)
        {
            return;
        }

        await store.EnsureKeyMacKeyAsync(ct).ConfigureAwait(false);
        await store.WriteAsync(async (c, tx) =>
        {
            IReadOnlyList<Row> rows = await ReadRowsAsync(c, tx, null, forUpdate: false, ct).ConfigureAwait(false);
            using SecretBuffer macKey = await MacKeyAsync(c, tx, 0, ct).ConfigureAwait(false);
            foreach (Row r in rows.Where(row => row.Mac is null))
            {
                using DbCommand update = SqlEngine.Command(c, tx, "UPDATE node_trust SET mac=@mac WHERE node_id=@node");
                update.Add("@mac", KeyRecordMac.Compute(macKey, NodeTrustRecordMac.Encode(r.NodeId, r.State, r.Reason, r.Replacement, r.Since)));
                update.Add("@node", r.NodeId);
                await update.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }

            using DbCommand done = SqlEngine.Command(c, tx, "DELETE FROM store_meta WHERE name=@n");
            done.Add("@n", NodeTrustRecordMac.BackfillMarker);
            await done.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            return true;
        }, ct).ConfigureAwait(false);
    }

    private async Task<IReadOnlyList<Row>> ReadRowsAsync(DbConnection c, DbTransaction? tx, long? nodeId, bool forUpdate, CancellationToken ct)
    {
        string where = nodeId is null ? " ORDER BY node_id" : " WHERE node_id=@node" + (forUpdate ? store.Engine.ForUpdate : "");
        using DbCommand cmd = SqlEngine.Command(c, tx, $"SELECT {NodeTrustRecordMac.Columns}, mac FROM node_trust{where}");
        if (nodeId is { } n)
        {
            cmd.Add("@node", n);
        }

        var rows = new List<Row>();
        using DbDataReader r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await r.ReadAsync(ct).ConfigureAwait(false))
        {
            rows.Add(new Row(r.GetInt64(0), r.GetString(1), r.GetString(2), r.GetInt64OrNull(3), r.GetInt64(4), r.GetBytesOrNull(5)));
        }

        return rows;
    }

    /// <summary>Checks every row's MAC (an unlocked store only); a row whose MAC is missing or wrong is refused naming its node.</summary>
    private async Task VerifyAsync(DbConnection c, DbTransaction? tx, IReadOnlyList<Row> rows, CancellationToken ct)
    {
        if (rows.Count == 0 || !store.IsUnlocked)
        {
            return;
        }

        using SecretBuffer macKey = await MacKeyAsync(c, tx, rows[0].NodeId, ct).ConfigureAwait(false);
        foreach (Row r in rows)
        {
            if (!KeyRecordMac.Matches(macKey, NodeTrustRecordMac.Encode(r.NodeId, r.State, r.Reason, r.Replacement, r.Since), r.Mac))
            {
                throw StorageErrors.RecordIntegrity("untrusted node", NodeName(r.NodeId));
            }
        }
    }

    private async Task<SecretBuffer> MacKeyAsync(DbConnection c, DbTransaction? tx, long nodeId, CancellationToken ct) =>
        await store.KeyMacKeyAsync(c, tx, ct).ConfigureAwait(false) ?? throw StorageErrors.RecordIntegrity("untrusted node", NodeName(nodeId));

    private static string NodeName(long nodeId) => "node " + nodeId.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
