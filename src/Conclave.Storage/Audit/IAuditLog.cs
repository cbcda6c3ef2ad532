using Conclave.Crypto.Signing;

namespace Conclave.Storage.Audit;

/// <summary>
/// The append-only, SHA-256 hash-chained audit log with signed checkpoints. Appends from all callers are batched
/// into one transaction (group commit); an append completes only after its batch is durably committed, and a failed
/// write fails the append (DESIGN.md safety rule 6).
/// </summary>
public interface IAuditLog
{
    /// <summary>Appends an entry; returns it (with seq and hashes) once durable.</summary>
    Task<AuditEntry> AppendAsync(AuditEntryInput entry, CancellationToken cancellationToken = default);

    /// <summary>
    /// Appends <paramref name="entries"/> in this order with consecutive seqs, in one transaction (one fsync): all are
    /// durable when the task completes, or none is written and it fails. Entries of one request written together cost
    /// one commit instead of one each.
    /// </summary>
    Task<IReadOnlyList<AuditEntry>> AppendAllAsync(IReadOnlyList<AuditEntryInput> entries, CancellationToken cancellationToken = default);

    /// <summary>
    /// Appends an entry nothing waits for (a request's outcome, written after its response): it rides in the next commit
    /// another append causes, or is committed on its own once <see cref="StoreOptions.LazyAuditDelay"/> has passed with no
    /// other append. The task completes when it is durable, as for <see cref="AppendAsync"/>.
    /// </summary>
    Task<AuditEntry> AppendLazilyAsync(AuditEntryInput entry, CancellationToken cancellationToken = default);

    /// <summary>Entries with seq ≥ <paramref name="fromSeq"/>, in order, at most <paramref name="limit"/>.</summary>
    Task<IReadOnlyList<AuditEntry>> ReadAsync(long fromSeq, int limit, CancellationToken cancellationToken = default);

    Task<AuditHead> GetHeadAsync(CancellationToken cancellationToken = default);

    Task<IReadOnlyList<AuditCheckpoint>> GetCheckpointsAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Hands the checkpoint key over to <paramref name="next"/> (docs/STORAGE.md "Rotating the checkpoint key"): appends a
    /// <see cref="AuditKeyHandover"/> entry signed by the current checkpoint signer, and signs every checkpoint from it on,
    /// and the head, with <paramref name="next"/>, which this store uses from then on (the caller keeps ownership of both
    /// keys and must keep <paramref name="next"/> alive while the store is open). Returns the entry; returns null and only
    /// switches the signer when the head is already signed by <paramref name="next"/> after a handover to it (a process
    /// that stopped between the handover and promoting its key file, started again).
    /// </summary>
    Task<AuditEntry?> HandOverCheckpointKeyAsync(ISigningKey next, string actor, CancellationToken cancellationToken = default);

    /// <summary>The public key that signs this store's checkpoints now (null without a checkpoint signer).</summary>
    ReadOnlyMemory<byte>? CheckpointPublicKey { get; }

    /// <summary>Signs a checkpoint at the current head now (requires a checkpoint signer); null for an empty log.</summary>
    Task<AuditCheckpoint?> CheckpointAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// The signed head as an anchor to keep outside the database (<see cref="AuditAnchor"/>). Fails with
    /// <see cref="StorageErrorKind.InvalidArgument"/> when the head is not signed (no checkpoint signer ever wrote it).
    /// </summary>
    Task<AuditAnchor> GetAnchorAsync(CancellationToken cancellationToken = default);

    /// <summary>Recomputes the whole chain, checks the head and every checkpoint, and names the first bad seq.</summary>
    Task<AuditVerificationResult> VerifyAsync(AuditVerifyOptions? options = null, CancellationToken cancellationToken = default);
}
