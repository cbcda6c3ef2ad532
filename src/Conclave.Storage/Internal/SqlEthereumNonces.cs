using System.Data.Common;
using Conclave.Storage.Ethereum;

namespace Conclave.Storage.Internal;

/// <summary>
/// Account nonces in <c>eth_nonces</c> (one row per chain and address: the next fresh nonce, also the lock row) and
/// <c>eth_nonces_released</c> (nonces given back, handed out again lowest first). Migration 11.
/// </summary>
internal sealed class SqlEthereumNonces(SqlStore store) : IEthereumNonceStore
{
    public Task<long> ReserveAsync(long chainId, string address, long? chainPending, CancellationToken cancellationToken = default)
    {
        Check(chainId, address);
        if (chainPending is < 0)
        {
            throw StorageErrors.Invalid(nameof(chainPending), "a non-negative transaction count");
        }

        return store.WriteAsync(async (c, tx) =>
        {
            long next = await LockAsync(c, tx, chainId, address, cancellationToken).ConfigureAwait(false);
            if (chainPending is { } pending && pending > next)
            {
                // Nonces below the chain's pending count were used outside Conclave: none of them can be handed out.
                next = pending;
                await SetNextAsync(c, tx, chainId, address, next, cancellationToken).ConfigureAwait(false);
            }

            if (chainPending is { } p)
            {
                using DbCommand drop = SqlEngine.Command(c, tx, "DELETE FROM eth_nonces_released WHERE chain_id=@c AND address=@a AND nonce < @p");
                drop.Add("@c", chainId);
                drop.Add("@a", address);
                drop.Add("@p", p);
                await drop.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            using (DbCommand low = SqlEngine.Command(c, tx, "SELECT MIN(nonce) FROM eth_nonces_released WHERE chain_id=@c AND address=@a"))
            {
                low.Add("@c", chainId);
                low.Add("@a", address);
                object? min = await low.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
                if (min is not null and not DBNull)
                {
                    long reused = Convert.ToInt64(min, System.Globalization.CultureInfo.InvariantCulture);
                    using DbCommand take = SqlEngine.Command(c, tx, "DELETE FROM eth_nonces_released WHERE chain_id=@c AND address=@a AND nonce=@n");
                    take.Add("@c", chainId);
                    take.Add("@a", address);
                    take.Add("@n", reused);
                    await take.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                    return reused;
                }
            }

            await SetNextAsync(c, tx, chainId, address, checked(next + 1), cancellationToken).ConfigureAwait(false);
            return next;
        }, cancellationToken);
    }

    public Task<bool> ReleaseAsync(long chainId, string address, long nonce, CancellationToken cancellationToken = default)
    {
        Check(chainId, address);
        ArgumentOutOfRangeException.ThrowIfNegative(nonce);
        return store.WriteAsync(async (c, tx) =>
        {
            long next = await LockAsync(c, tx, chainId, address, cancellationToken).ConfigureAwait(false);
            if (nonce >= next)
            {
                return false;
            }

            using DbCommand ins = SqlEngine.Command(c, tx, "INSERT INTO eth_nonces_released (chain_id, address, nonce) VALUES (@c, @a, @n) ON CONFLICT DO NOTHING");
            ins.Add("@c", chainId);
            ins.Add("@a", address);
            ins.Add("@n", nonce);
            return await ins.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) > 0;
        }, cancellationToken);
    }

    public Task<EthereumNonceState> ReadAsync(long chainId, string address, CancellationToken cancellationToken = default)
    {
        Check(chainId, address);
        return store.ReadAsync(async c =>
        {
            long next = 0;
            using (DbCommand cmd = SqlEngine.Command(c, null, "SELECT next_nonce FROM eth_nonces WHERE chain_id=@c AND address=@a"))
            {
                cmd.Add("@c", chainId);
                cmd.Add("@a", address);
                if (await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is { } v and not DBNull)
                {
                    next = Convert.ToInt64(v, System.Globalization.CultureInfo.InvariantCulture);
                }
            }

            var released = new List<long>();
            using (DbCommand cmd = SqlEngine.Command(c, null, "SELECT nonce FROM eth_nonces_released WHERE chain_id=@c AND address=@a ORDER BY nonce"))
            {
                cmd.Add("@c", chainId);
                cmd.Add("@a", address);
                using DbDataReader r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    released.Add(r.GetInt64(0));
                }
            }

            return new EthereumNonceState(next, released);
        }, cancellationToken);
    }

    private static void Check(long chainId, string address)
    {
        if (chainId <= 0)
        {
            throw StorageErrors.Invalid(nameof(chainId), "a positive chain id");
        }

        Validate.Text(address, nameof(address));
    }

    /// <summary>Creates the account's row if needed and locks it for the rest of the transaction; returns its next nonce.</summary>
    private async Task<long> LockAsync(DbConnection c, DbTransaction tx, long chainId, string address, CancellationToken ct)
    {
        using (DbCommand ins = SqlEngine.Command(c, tx, "INSERT INTO eth_nonces (chain_id, address, next_nonce) VALUES (@c, @a, 0) ON CONFLICT DO NOTHING"))
        {
            ins.Add("@c", chainId);
            ins.Add("@a", address);
            await ins.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }

        using DbCommand sel = SqlEngine.Command(c, tx, "SELECT next_nonce FROM eth_nonces WHERE chain_id=@c AND address=@a" + store.Engine.ForUpdate);
        sel.Add("@c", chainId);
        sel.Add("@a", address);
        return Convert.ToInt64(await sel.ExecuteScalarAsync(ct).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture);
    }

    private static async Task SetNextAsync(DbConnection c, DbTransaction tx, long chainId, string address, long next, CancellationToken ct)
    {
        using DbCommand up = SqlEngine.Command(c, tx, "UPDATE eth_nonces SET next_nonce=@n WHERE chain_id=@c AND address=@a");
        up.Add("@n", next);
        up.Add("@c", chainId);
        up.Add("@a", address);
        await up.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }
}
