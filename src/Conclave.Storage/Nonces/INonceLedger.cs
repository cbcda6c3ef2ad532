using Conclave.Crypto.Memory;

namespace Conclave.Storage.Nonces;

/// <summary>A one-time value's kind.</summary>
public enum NonceKind
{
    /// <summary>A FROST (RFC 9591 §5.1) signing nonce pair, or any one-time signing nonce.</summary>
    Nonce,

    /// <summary>A DKLs23 presignature.</summary>
    Presignature,
}

/// <summary>Where a nonce id stands.</summary>
public enum NonceStatus
{
    Unknown,
    Issued,
    Consumed,
}

/// <summary>
/// A nonce to record as issued. <paramref name="Id"/> is 1 to 64 bytes (a pool id and index, or a 32-byte hash of
/// the commitment). <paramref name="Material"/>, if given, is stored envelope-encrypted (the caller still disposes it).
/// </summary>
public sealed record NonceIssue(byte[] Id, string KeyId, NonceKind Kind, SecretBuffer? Material = null);

/// <summary>
/// The nonce and presignature ledger (DESIGN.md safety rule 1): a value is marked consumed by a durable commit
/// before the caller may use it; a crash can lose a nonce, never reuse one. Consumption is a single conditional
/// UPDATE, safe across processes and PostgreSQL replicas. Backups never contain this ledger.
/// </summary>
public interface INonceLedger
{
    /// <summary>Records issued nonces in one transaction. A duplicate id fails the whole call.</summary>
    Task IssueAsync(IReadOnlyList<NonceIssue> nonces, CancellationToken cancellationToken = default);

    /// <summary>
    /// Records nonces as issued and consumed in one durable transaction, for pools whose secrets live only in the
    /// signer's memory: the public commitments derived from them leave the node right after this call, so the
    /// consumption mark must be durable before that (safety rule 1). A restarted node has lost the secrets; the
    /// ledger still shows every id as used, so none can ever be used again. Material is not allowed here.
    /// </summary>
    Task IssueConsumedAsync(IReadOnlyList<NonceIssue> nonces, CancellationToken cancellationToken = default);

    /// <summary>
    /// Marks the nonce consumed and returns true once the commit is durable; false if it was already consumed
    /// or never issued. Only a true result entitles the caller to use the nonce.
    /// </summary>
    Task<bool> TryConsumeAsync(byte[] id, CancellationToken cancellationToken = default);

    /// <summary>
    /// Consumes the nonce and returns its decrypted material (erased from the store in the same commit), or null
    /// if it was already consumed, unknown, or stored without material.
    /// </summary>
    Task<SecretBuffer?> TryConsumeMaterialAsync(byte[] id, CancellationToken cancellationToken = default);

    Task<NonceStatus> GetStatusAsync(byte[] id, CancellationToken cancellationToken = default);

    /// <summary>Up to <paramref name="limit"/> issued, unconsumed ids for a key, oldest first (to pick from a pool).</summary>
    Task<IReadOnlyList<byte[]>> ListAvailableAsync(string keyId, NonceKind kind, int limit, CancellationToken cancellationToken = default);

    Task<long> CountAvailableAsync(string keyId, NonceKind kind, CancellationToken cancellationToken = default);

    /// <summary>The greatest id in the ledger (ids compare as unsigned bytes, first byte first), or null when it is empty.</summary>
    Task<byte[]?> GetHighestIdAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Deletes the consumed rows whose id is below <paramref name="bound"/> (bytewise) and returns how many. Only for
    /// ledgers whose ids start with a monotonic epoch the caller never issues below again (a signer node's nonce epochs,
    /// docs/STORAGE.md "Nonce ledger"): unconsumed rows are never deleted, and an id below the bound is never issued again.
    /// </summary>
    Task<long> PruneConsumedBelowAsync(byte[] bound, CancellationToken cancellationToken = default);
}
