using System.Data.Common;
using System.Text.Json;
using Conclave.Storage.Ethereum;

namespace Conclave.Storage.Internal;

/// <summary>Registered Safes in <c>safes</c> (one row per Safe, owner key ids as a JSON array). Migration 14.</summary>
internal sealed class SqlSafeStore(SqlStore store) : ISafeStore
{
    private const int MaxOwners = 64;

    public Task AddAsync(SafeRecord safe, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(safe);
        Validate.Identifier(safe.Name, nameof(safe.Name));
        if (safe.ChainId <= 0)
        {
            throw StorageErrors.Invalid(nameof(safe.ChainId), "a positive chain id");
        }

        if (safe.Address is not { Length: 42 } a || !a.StartsWith("0x", StringComparison.Ordinal) || !a.Skip(2).All(c => char.IsAsciiHexDigitLower(c) || char.IsAsciiDigit(c)))
        {
            throw StorageErrors.Invalid(nameof(safe.Address), "lowercase 0x and 40 hex digits");
        }

        if (safe.OwnerKeyIds is null || safe.OwnerKeyIds.Count is 0 or > MaxOwners || safe.OwnerKeyIds.Distinct(StringComparer.Ordinal).Count() != safe.OwnerKeyIds.Count)
        {
            throw StorageErrors.Invalid(nameof(safe.OwnerKeyIds), $"1 to {MaxOwners} distinct key ids");
        }

        foreach (string id in safe.OwnerKeyIds)
        {
            Validate.Identifier(id, nameof(safe.OwnerKeyIds));
        }

        if (safe.Threshold < 1 || safe.Threshold > safe.OwnerKeyIds.Count)
        {
            throw StorageErrors.Invalid(nameof(safe.Threshold), "between 1 and the number of owner keys");
        }

        return store.WriteAsync(async (c, tx) =>
        {
            using DbCommand ins = SqlEngine.Command(c, tx,
                "INSERT INTO safes (name, chain_id, address, threshold, owner_key_ids, created_at) VALUES (@n, @c, @a, @t, @o, @at)");
            ins.Add("@n", safe.Name);
            ins.Add("@c", safe.ChainId);
            ins.Add("@a", safe.Address);
            ins.Add("@t", (long)safe.Threshold);
            ins.Add("@o", JsonSerializer.Serialize(safe.OwnerKeyIds.ToArray()));
            ins.Add("@at", safe.CreatedAt.ToUnixTimeMilliseconds());
            try
            {
                await ins.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (DbException e) when (store.Engine.IsUniqueViolation(e))
            {
                throw StorageErrors.Duplicate("Safe", safe.Name);
            }

            return true;
        }, cancellationToken);
    }

    public Task<SafeRecord?> GetAsync(string name, CancellationToken cancellationToken = default)
    {
        Validate.Identifier(name, nameof(name));
        return store.ReadAsync(async c =>
        {
            using DbCommand cmd = SqlEngine.Command(c, null, "SELECT name, chain_id, address, threshold, owner_key_ids, created_at FROM safes WHERE name=@n");
            cmd.Add("@n", name);
            using DbDataReader r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            return await r.ReadAsync(cancellationToken).ConfigureAwait(false) ? Read(r) : null;
        }, cancellationToken);
    }

    public Task<IReadOnlyList<SafeRecord>> ListAsync(CancellationToken cancellationToken = default) =>
        store.ReadAsync<IReadOnlyList<SafeRecord>>(async c =>
        {
            using DbCommand cmd = SqlEngine.Command(c, null, "SELECT name, chain_id, address, threshold, owner_key_ids, created_at FROM safes ORDER BY name");
            using DbDataReader r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            var all = new List<SafeRecord>();
            while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                all.Add(Read(r));
            }

            return all;
        }, cancellationToken);

    private static SafeRecord Read(DbDataReader r)
    {
        string[] owners;
        try
        {
            owners = JsonSerializer.Deserialize<string[]>(r.GetString(4)) ?? throw StorageErrors.Corrupted("safes.owner_key_ids");
        }
        catch (JsonException e)
        {
            throw StorageErrors.Corrupted("safes.owner_key_ids", e);
        }

        return new SafeRecord(r.GetString(0), r.GetInt64(1), r.GetString(2), checked((int)r.GetInt64(3)), owners,
            SqlStore.FromMs(r.GetInt64(5)));
    }
}
