namespace Conclave.Storage.Ethereum;

/// <summary>
/// A Safe (Safe 1.4.1 multisig contract) registered with Conclave (docs/VENUE.md "Safe treasury"): its name, chain and
/// address, the Conclave keys (by key id) that are among its owners, and the threshold of owner signatures it needs.
/// <paramref name="Address"/> is lowercase 0x hex.
/// </summary>
public sealed record SafeRecord(string Name, long ChainId, string Address, int Threshold, IReadOnlyList<string> OwnerKeyIds, DateTimeOffset CreatedAt);

/// <summary>
/// Registered Safes (migration 14, both engines). A name is registered once, and so is a (chain id, address): adding either
/// twice is <see cref="StorageErrorKind.Duplicate"/>. Registrations are configuration: they are kept in backups.
/// </summary>
public interface ISafeStore
{
    /// <summary>Registers a Safe; <see cref="StorageErrorKind.Duplicate"/> when the name or the (chain, address) is taken.</summary>
    Task AddAsync(SafeRecord safe, CancellationToken cancellationToken = default);

    /// <summary>The Safe with this name, or null.</summary>
    Task<SafeRecord?> GetAsync(string name, CancellationToken cancellationToken = default);

    /// <summary>Every registered Safe, by name.</summary>
    Task<IReadOnlyList<SafeRecord>> ListAsync(CancellationToken cancellationToken = default);
}
