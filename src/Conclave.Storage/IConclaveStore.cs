using Conclave.Storage.Audit;
using Conclave.Storage.Encryption;
using Conclave.Storage.Keys;
using Conclave.Storage.Nonces;
using Conclave.Storage.Requests;

namespace Conclave.Storage;

/// <summary>The database engine behind a store.</summary>
public enum StoreEngine
{
    /// <summary>An SQLite file in a data folder: the embedded default (one node or a single-host cluster).</summary>
    Sqlite,

    /// <summary>A PostgreSQL database shared by server replicas.</summary>
    Postgres,
}

/// <summary>
/// One Conclave store: keys and their versions with envelope-encrypted material, the nonce and presignature
/// ledger, policy requests and approvals, and the hash-chained audit log. Open one with <see cref="ConclaveStore"/>.
/// Thread-safe; dispose it to flush pending audit appends and release the database.
/// </summary>
public interface IConclaveStore : IAsyncDisposable
{
    StoreEngine Engine { get; }

    /// <summary>The schema version after migrations.</summary>
    int SchemaVersion { get; }

    /// <summary>A random id created with the store (kept by backups).</summary>
    string StoreId { get; }

    /// <summary>The active KEK, or null when the store was opened without one (secrets unavailable).</summary>
    KekDescriptor? ActiveKek { get; }

    IKeyStore Keys { get; }

    INonceLedger Nonces { get; }

    IRequestStore Requests { get; }

    IAuditLog Audit { get; }

    /// <summary>Rotation runs (DKG, refresh, reshare, repair) and the one-unfinished-run-per-key rule.</summary>
    Rotation.IRotationLog Rotations { get; }

    /// <summary>Signer nodes evicted as suspect (never chosen again until re-admitted).</summary>
    Nodes.INodeTrustStore NodeTrust { get; }

    /// <summary>Per-key continuous rotation schedules.</summary>
    Rotation.IRotationSchedules RotationSchedules { get; }
    /// <summary>Velocity counters for policy limits, reserved atomically across processes sharing the store (issue 16).</summary>
    Policy.IPolicyCounterStore PolicyCounters { get; }

    /// <summary>Principals (people and agents), their credentials, and the nonces of signed requests (issue 16).</summary>
    Principals.IPrincipalStore Principals { get; }

    /// <summary>The risk level, its price inputs and lockdown-exit votes, shared by server replicas (issue 16).</summary>
    Risk.IRiskStore Risk { get; }

    /// <summary>Versioned policy documents, shadow or enforced (issue 16).</summary>
    Policy.IPolicyStore Policies { get; }

    /// <summary>Versioned venue profiles: contracts, ABI fragments per operation, amounts and price sources (issue 16).</summary>
    Policy.IVenueProfileStore VenueProfiles { get; }

    /// <summary>Ethereum account nonces per (chain id, address) for transactions Conclave builds (issue 17).</summary>
    Ethereum.IEthereumNonceStore EthereumNonces { get; }

    /// <summary>Safes registered with Conclave: address, chain, owner keys and threshold (issue 17).</summary>
    Ethereum.ISafeStore Safes { get; }

    /// <summary>
    /// Re-wraps every data key (key material and nonce material) under a new KEK in one transaction, then retires
    /// the old one. Ciphertexts are not touched; a failure changes nothing.
    /// </summary>
    Task<KekDescriptor> RotateKekAsync(IKeyEncryptionKeySource newKek, CancellationToken cancellationToken = default);

    /// <summary>
    /// Writes an encrypted backup of the whole store except the nonce ledger (a nonce is never restored),
    /// sealed under a KEK from <paramref name="backupKek"/> (a new salt or key each time).
    /// </summary>
    Task ExportAsync(Stream destination, IKeyEncryptionKeySource backupKek, CancellationToken cancellationToken = default);

    /// <summary>
    /// Restores a backup into this store, which must be empty. The whole file is authenticated and its audit chain
    /// verified before the first row is written; the rows are then written in one transaction.
    /// </summary>
    Task ImportAsync(Stream source, IKeyEncryptionKeySource backupKek, CancellationToken cancellationToken = default);
}
