using System.Data.Common;
using Conclave.Storage.Policy;

namespace Conclave.Storage.Internal;

/// <summary>Policy documents in <c>policies</c>: one row per (id, version), never updated.</summary>
internal sealed class SqlPolicyStore(SqlStore store) : IPolicyStore
{
    private const string Columns = "policy_id, version, hash, mode, document, created_by, created_at";

    public Task<bool> PutAsync(StoredPolicy policy, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(policy);
        VersionedRows.ValidateNew("policy", policy.Id, policy.Version, policy.Hash, policy.Document, policy.CreatedBy);
        if (!Enum.IsDefined(policy.Mode))
        {
            throw StorageErrors.Invalid("policy.Mode", "unknown mode");
        }

        return VersionedRows.AppendAsync(store, "policies", "policy_id", policy.Id, policy.Version, $"INSERT INTO policies ({Columns}) VALUES (@id, @v, @h, @m, @d, @by, @at)", ins =>
        {
            ins.Add("@id", policy.Id);
            ins.Add("@v", policy.Version);
            ins.Add("@h", policy.Hash);
            ins.Add("@m", policy.Mode.ToString());
            ins.Add("@d", policy.Document);
            ins.Add("@by", policy.CreatedBy);
            ins.Add("@at", policy.CreatedAt.ToUnixTimeMilliseconds());
        }, cancellationToken);
    }

    public async Task<StoredPolicy?> GetAsync(string id, long? version = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(id);
        var list = await QueryAsync(VersionedRows.SelectOne(Columns, "policies", "policy_id", version), id, version, cancellationToken).ConfigureAwait(false);
        return list.Count == 0 ? null : list[0];
    }

    public Task<IReadOnlyList<StoredPolicy>> ListAsync(CancellationToken cancellationToken = default) =>
        QueryAsync(VersionedRows.SelectNewestOfEach(Columns, "policies", "policy_id"), null, null, cancellationToken);

    public Task<IReadOnlyList<PolicyHead>> ListHeadsAsync(CancellationToken cancellationToken = default) =>
        VersionedRows.QueryAsync(store, VersionedRows.SelectNewestOfEach("policy_id, version, hash", "policies", "policy_id"), null, null,
            r => new PolicyHead(r.GetString(0), r.GetInt64(1), r.GetString(2)), cancellationToken);

    public Task<IReadOnlyList<StoredPolicy>> HistoryAsync(string id, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(id);
        return QueryAsync($"SELECT {Columns} FROM policies WHERE policy_id=@id ORDER BY version", id, null, cancellationToken);
    }

    private Task<IReadOnlyList<StoredPolicy>> QueryAsync(string sql, string? id, long? version, CancellationToken ct) =>
        VersionedRows.QueryAsync(store, sql, id, version, r => new StoredPolicy(r.GetString(0), r.GetInt64(1), r.GetString(2), Enum.Parse<PolicyMode>(r.GetString(3)),
            (byte[])r.GetValue(4), r.GetString(5), SqlStore.FromMs(r.GetInt64(6))), ct);
}
