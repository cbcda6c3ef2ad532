namespace Conclave.Storage;

/// <summary>What went wrong in the store, so callers can react without parsing messages.</summary>
public enum StorageErrorKind
{
    /// <summary>A database or file operation failed.</summary>
    Io,

    /// <summary>The store was written by a newer Conclave; it is refused and left untouched.</summary>
    SchemaTooNew,

    /// <summary>The passphrase, key file or HSM key does not open this store's secrets.</summary>
    WrongKeyEncryptionKey,

    /// <summary>An encrypted record or file failed authentication (altered, swapped or corrupted).</summary>
    Corrupted,

    /// <summary>A record with this id already exists.</summary>
    Duplicate,

    /// <summary>The record does not exist.</summary>
    NotFound,

    /// <summary>The record changed since it was read (version or state mismatch).</summary>
    Conflict,

    /// <summary>An argument is out of range or malformed.</summary>
    InvalidArgument,

    /// <summary>The operation needs a key-encryption key and the store was opened without one.</summary>
    Locked,

    /// <summary>The operation needs an empty store (import) and the store is not empty.</summary>
    NotEmpty,

    /// <summary>
    /// A stored record failed its integrity check: a key row whose MAC does not match (its public key, name, scheme,
    /// state… were changed outside Conclave). The record is refused, never used.
    /// </summary>
    IntegrityCheckFailed,
}

/// <summary>
/// A storage failure. Messages name record ids, tables and parameters, never secret values (CONVENTIONS.md rule 6).
/// </summary>
public sealed class StorageException : Exception
{
    public StorageException() : this(StorageErrorKind.Io, "storage operation failed") { }

    public StorageException(string message) : this(StorageErrorKind.Io, message) { }

    public StorageException(string message, Exception innerException) : this(StorageErrorKind.Io, message, innerException) { }

    public StorageException(StorageErrorKind kind, string message) : base(message) => Kind = kind;

    public StorageException(StorageErrorKind kind, string message, Exception? innerException) : base(message, innerException) => Kind = kind;

    public StorageErrorKind Kind { get; }
}
