namespace Conclave.Storage.Internal;

/// <summary>Every storage exception is built here, so messages stay secret-free and consistent.</summary>
internal static class StorageErrors
{
    public static StorageException SchemaTooNew(long found, long supported) =>
        new(StorageErrorKind.SchemaTooNew, $"the store has schema version {found}, newer than this Conclave supports ({supported}); it was not modified: upgrade Conclave");

    public static StorageException WrongKek(string kekId) =>
        new(StorageErrorKind.WrongKeyEncryptionKey, $"the passphrase or key file does not open this store (key-encryption key '{kekId}' check failed); nothing was changed");

    public static StorageException UnknownKek(string kekId) =>
        new(StorageErrorKind.WrongKeyEncryptionKey, $"data is wrapped under key-encryption key '{kekId}', which is not the active one");

    public static StorageException Corrupted(string what, Exception? inner = null) =>
        new(StorageErrorKind.Corrupted, $"{what} failed authentication (altered, swapped or corrupted)", inner);

    public static StorageException Duplicate(string what, string id) =>
        new(StorageErrorKind.Duplicate, $"{what} '{id}' already exists");

    public static StorageException NotFound(string what, string id) =>
        new(StorageErrorKind.NotFound, $"{what} '{id}' does not exist");

    public static StorageException Conflict(string what, string id, string detail) =>
        new(StorageErrorKind.Conflict, $"{what} '{id}' {detail}");

    public static StorageException Invalid(string parameter, string detail) =>
        new(StorageErrorKind.InvalidArgument, $"{parameter}: {detail}");

    public static StorageException Locked() =>
        new(StorageErrorKind.Locked, "the store was opened without a key-encryption key (passphrase, key file or HSM); secrets are unavailable");

    public static StorageException NotEmpty() =>
        new(StorageErrorKind.NotEmpty, "the target store is not empty; import only restores into a new store and overwrites nothing");

    public static StorageException KeyIntegrity(string keyId) =>
        new(StorageErrorKind.IntegrityCheckFailed, $"key '{keyId}': the key record failed its integrity check (its public key, name, scheme, state, threshold, participants, version or labels were changed outside Conclave); it is refused");

    public static StorageException RecordIntegrity(string what, string id) =>
        new(StorageErrorKind.IntegrityCheckFailed, $"{what} '{id}': the record failed its integrity check (it was changed outside Conclave); it is refused");

    public static StorageException InsecureFolder(string line) => new(StorageErrorKind.Io, line);

    public static StorageException Io(string operation, Exception inner) =>
        new(StorageErrorKind.Io, $"storage {operation} failed: {(inner is System.Data.Common.DbException d ? d.Message : inner.GetType().Name)}", inner);

    public static StorageException BadBackup(string detail, Exception? inner = null) =>
        new(StorageErrorKind.Corrupted, $"backup rejected: {detail}; nothing was imported", inner);
}
