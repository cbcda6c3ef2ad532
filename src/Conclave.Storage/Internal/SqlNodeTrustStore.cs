using System.Data.Common;
using Conclave.Storage.Nodes;

namespace Conclave.Storage.Internal;

/// <summary>Untrusted signer nodes on either engine: one row per node in <c>node_trust</c>.</summary>
internal sealed class SqlNodeTrustStore(SqlStore store) : INodeTrustStore
{
    private const int MaxReasonLength = 500;

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

        long now = store.NowMs();
        await store.WriteAsync(async (c, tx) =>
        {
            using (DbCommand update = SqlEngine.Command(c, tx, "UPDATE node_trust SET replacement=COALESCE(@replacement, replacement) WHERE node_id=@node"))
            {
                update.Add("@replacement", replacement is { } r ? (long)r : null).DbType = System.Data.DbType.Int64;
                update.Add("@node", (long)nodeId);
                if (await update.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1)
                {
                    return true;
                }
            }

            using DbCommand insert = SqlEngine.Command(c, tx, "INSERT INTO node_trust (node_id, state, reason, replacement, since) VALUES (@node, 'untrusted', @reason, @replacement, @now)");
            insert.Add("@node", (long)nodeId);
            insert.Add("@reason", reason);
            insert.Add("@replacement", replacement is { } rep ? (long)rep : null).DbType = System.Data.DbType.Int64;
            insert.Add("@now", now);
            await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            return true;
        }, cancellationToken).ConfigureAwait(false);
        return (await ListUntrustedAsync(cancellationToken).ConfigureAwait(false)).Single(n => n.NodeId == nodeId);
    }

    public Task<IReadOnlyList<UntrustedNode>> ListUntrustedAsync(CancellationToken cancellationToken = default) =>
        store.ReadAsync<IReadOnlyList<UntrustedNode>>(async c =>
        {
            using DbCommand cmd = SqlEngine.Command(c, null, "SELECT node_id, reason, replacement, since FROM node_trust WHERE state='untrusted' ORDER BY node_id");
            using DbDataReader r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            var list = new List<UntrustedNode>();
            while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                list.Add(new UntrustedNode(checked((uint)r.GetInt64(0)), r.GetString(1), r.IsDBNull(2) ? null : checked((uint)r.GetInt64(2)), SqlStore.FromMs(r.GetInt64(3))));
            }

            return list;
        }, cancellationToken);

    public Task<bool> ReadmitAsync(uint nodeId, CancellationToken cancellationToken = default) =>
        store.WriteAsync(async (c, tx) =>
        {
            using DbCommand cmd = SqlEngine.Command(c, tx, "DELETE FROM node_trust WHERE node_id=@node");
            cmd.Add("@node", (long)nodeId);
            return await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1;
        }, cancellationToken);
}
