namespace Conclave.Storage.Ethereum;

/// <summary>
/// Durable account nonces per (chain id, address) for transactions Conclave builds (docs/VENUE.md "Nonces"). A reservation
/// takes the lowest released nonce, else the next one; a nonce whose transaction was never sent is released and handed out
/// again, so no gap is left. Every call is one write transaction on the (chain, address) row: SQLite's single writer or a
/// PostgreSQL row lock (<c>FOR UPDATE</c>), so server replicas on one database never hand out the same nonce. Not in backups
/// (a restored store resynchronises from the chain).
/// </summary>
public interface IEthereumNonceStore
{
    /// <summary>
    /// Reserves a nonce for <paramref name="address"/> on <paramref name="chainId"/>. <paramref name="chainPending"/> is the
    /// upstream's <c>eth_getTransactionCount(address, "pending")</c> when known: when it is ahead of the stored next nonce
    /// (nonces used outside Conclave) the state moves up to it and released nonces below it are dropped.
    /// </summary>
    Task<long> ReserveAsync(long chainId, string address, long? chainPending, CancellationToken cancellationToken = default);

    /// <summary>
    /// Gives back a reserved nonce whose transaction was not signed or not sent: the next reservation gets it again.
    /// Returns false when the nonce was not outstanding (never reserved, or already released).
    /// </summary>
    Task<bool> ReleaseAsync(long chainId, string address, long nonce, CancellationToken cancellationToken = default);

    /// <summary>The next never-reserved nonce and the released ones waiting to be handed out again (for tests and diagnostics).</summary>
    Task<EthereumNonceState> ReadAsync(long chainId, string address, CancellationToken cancellationToken = default);
}

/// <summary>The stored state of one account: the next fresh nonce and released nonces below it, ascending.</summary>
public sealed record EthereumNonceState(long Next, IReadOnlyList<long> Released);
