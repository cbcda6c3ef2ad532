using Conclave.Crypto.Signing;
using Conclave.Storage.Encryption;

namespace Conclave.Storage;

/// <summary>How to open a store.</summary>
public sealed class StoreOptions
{
    /// <summary>
    /// The key-encryption key. When the store has none yet, the source creates one and the store records its
    /// descriptor and a check value; later opens must supply a source that recreates the same KEK, otherwise opening
    /// fails with <see cref="StorageErrorKind.WrongKeyEncryptionKey"/> and nothing is written. Null: secrets unavailable
    /// (enough for the audit verifier and metadata readers).
    /// </summary>
    public IKeyEncryptionKeySource? Kek { get; init; }

    /// <summary>The node identity key that signs audit checkpoints (Ed25519 is a good choice). Null: no checkpoints.</summary>
    public ISigningKey? CheckpointSigner { get; init; }

    /// <summary>A signed checkpoint covers every entry whose seq is a multiple of this (0: only on demand).</summary>
    public int CheckpointInterval { get; init; } = 1000;

    /// <summary>Most audit entries committed in one group-commit transaction.</summary>
    public int MaxAuditBatch { get; init; } = 2048;

    /// <summary>
    /// How long an entry appended with <see cref="Audit.IAuditLog.AppendLazilyAsync"/> may wait for another append to share
    /// its commit before it is committed alone.
    /// </summary>
    public TimeSpan LazyAuditDelay { get; init; } = TimeSpan.FromMilliseconds(5);

    /// <summary>The clock (inject one in tests).</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>Open without migrating or writing (verifiers); SQLite opens the file read-only.</summary>
    public bool ReadOnly { get; init; }
}
