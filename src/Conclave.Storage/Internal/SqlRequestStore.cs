using System.Data.Common;
using Conclave.Storage.Requests;

namespace Conclave.Storage.Internal;

internal sealed class SqlRequestStore(SqlStore store) : IRequestStore
{
    private const string Columns = "id, key_id, operation, requester, request_hash, payload, state, created_at, updated_at, expires_at";
    private const string ReadColumns = Columns + ", result";

    public async Task<RequestRecord> CreateAsync(NewRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        Validate.Identifier(request.Id, "request.Id");
        Validate.OptionalText(request.KeyId, "request.KeyId");
        Validate.Text(request.Operation, "request.Operation");
        Validate.Text(request.Requester, "request.Requester");
        Validate.Hash32(request.RequestHash, "request.RequestHash");
        ArgumentNullException.ThrowIfNull(request.Payload);
        long now = store.NowMs();
        await store.WriteAsync(async (c, tx) =>
        {
            using DbCommand cmd = SqlEngine.Command(c, tx,
                $"INSERT INTO requests ({Columns}) VALUES (@id, @key, @op, @req, @hash, @payload, @state, @now, @now, @exp)");
            cmd.Add("@id", request.Id);
            cmd.Add("@key", request.KeyId);
            cmd.Add("@op", request.Operation);
            cmd.Add("@req", request.Requester);
            cmd.Add("@hash", request.RequestHash);
            cmd.Add("@payload", request.Payload);
            cmd.Add("@state", nameof(RequestState.Pending));
            cmd.Add("@now", now);
            cmd.Add("@exp", request.ExpiresAt?.ToUnixTimeMilliseconds());
            try
            {
                await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (DbException e) when (store.Engine.IsUniqueViolation(e))
            {
                throw StorageErrors.Duplicate("request", request.Id);
            }

            return true;
        }, cancellationToken).ConfigureAwait(false);
        return (await GetAsync(request.Id, cancellationToken).ConfigureAwait(false))!;
    }

    public Task<RequestRecord?> GetAsync(string id, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(id);
        return store.ReadAsync(async c =>
        {
            using DbCommand cmd = SqlEngine.Command(c, null, $"SELECT {ReadColumns} FROM requests WHERE id=@id");
            cmd.Add("@id", id);
            using DbDataReader r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            return await r.ReadAsync(cancellationToken).ConfigureAwait(false) ? Read(r) : null;
        }, cancellationToken);
    }

    public Task<IReadOnlyList<RequestRecord>> ListAsync(RequestState? state = null, int limit = 1000, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        return store.ReadAsync<IReadOnlyList<RequestRecord>>(async c =>
        {
            using DbCommand cmd = SqlEngine.Command(c, null, state is null
                ? $"SELECT {ReadColumns} FROM requests ORDER BY created_at, id LIMIT @limit"
                : $"SELECT {ReadColumns} FROM requests WHERE state=@state ORDER BY created_at, id LIMIT @limit");
            cmd.Add("@limit", limit);
            if (state is not null)
            {
                cmd.Add("@state", state.Value.ToString());
            }

            using DbDataReader r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            var list = new List<RequestRecord>();
            while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                list.Add(Read(r));
            }

            return list;
        }, cancellationToken);
    }

    public Task<bool> TransitionAsync(string id, RequestState from, RequestState to, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(id);
        return store.WriteAsync(async (c, tx) =>
        {
            using DbCommand cmd = SqlEngine.Command(c, tx, "UPDATE requests SET state=@to, updated_at=@now WHERE id=@id AND state=@from");
            cmd.Add("@to", to.ToString());
            cmd.Add("@now", store.NowMs());
            cmd.Add("@id", id);
            cmd.Add("@from", from.ToString());
            return await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1;
        }, cancellationToken);
    }

    public Task<bool> FinishAsync(string id, RequestState from, RequestState to, byte[] result, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(id);
        ArgumentNullException.ThrowIfNull(result);
        return store.WriteAsync(async (c, tx) =>
        {
            using DbCommand cmd = SqlEngine.Command(c, tx, "UPDATE requests SET state=@to, result=@result, updated_at=@now WHERE id=@id AND state=@from");
            cmd.Add("@to", to.ToString());
            cmd.Add("@result", result);
            cmd.Add("@now", store.NowMs());
            cmd.Add("@id", id);
            cmd.Add("@from", from.ToString());
            return await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1;
        }, cancellationToken);
    }

    public Task<bool> AddApprovalAsync(string requestId, string approver, ApprovalDecision decision, byte[]? signature = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(requestId);
        Validate.Text(approver, nameof(approver));
        if (!Enum.IsDefined(decision))
        {
            throw StorageErrors.Invalid(nameof(decision), "unknown decision");
        }

        return store.WriteAsync(async (c, tx) =>
        {
            using (DbCommand check = SqlEngine.Command(c, tx, "SELECT state FROM requests WHERE id=@id" + store.Engine.ForUpdate))
            {
                check.Add("@id", requestId);
                object? state = await check.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
                if (state is not string s)
                {
                    throw StorageErrors.NotFound("request", requestId);
                }

                if (s != nameof(RequestState.Pending))
                {
                    throw StorageErrors.Conflict("request", requestId, "is no longer pending");
                }
            }

            using DbCommand cmd = SqlEngine.Command(c, tx,
                "INSERT INTO approvals (request_id, approver, decision, signature, created_at) VALUES (@id, @who, @d, @sig, @now) ON CONFLICT DO NOTHING");
            cmd.Add("@id", requestId);
            cmd.Add("@who", approver);
            cmd.Add("@d", decision.ToString());
            cmd.Add("@sig", signature);
            cmd.Add("@now", store.NowMs());
            return await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1;
        }, cancellationToken);
    }

    public Task<IReadOnlyList<ApprovalRecord>> GetApprovalsAsync(string requestId, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(requestId);
        return store.ReadAsync<IReadOnlyList<ApprovalRecord>>(async c =>
        {
            using DbCommand cmd = SqlEngine.Command(c, null,
                "SELECT request_id, approver, decision, signature, created_at FROM approvals WHERE request_id=@id ORDER BY created_at, approver");
            cmd.Add("@id", requestId);
            using DbDataReader r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            var list = new List<ApprovalRecord>();
            while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                list.Add(new ApprovalRecord(r.GetString(0), r.GetString(1), Enum.Parse<ApprovalDecision>(r.GetString(2)), r.GetBytesOrNull(3), SqlStore.FromMs(r.GetInt64(4))));
            }

            return list;
        }, cancellationToken);
    }

    private static RequestRecord Read(DbDataReader r) => new(
        r.GetString(0),
        r.GetStringOrNull(1),
        r.GetString(2),
        r.GetString(3),
        (byte[])r.GetValue(4),
        (byte[])r.GetValue(5),
        Enum.Parse<RequestState>(r.GetString(6)),
        SqlStore.FromMs(r.GetInt64(7)),
        SqlStore.FromMs(r.GetInt64(8)),
        r.GetInt64OrNull(9) is long e ? SqlStore.FromMs(e) : null,
        r.GetBytesOrNull(10));
}
