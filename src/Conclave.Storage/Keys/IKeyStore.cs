using Conclave.Crypto.Memory;

namespace Conclave.Storage.Keys;

/// <summary>
/// Keys, their versions and their encrypted material (a private key, a threshold share, an HSM handle…).
/// Material is sealed per version with its own data key, bound by associated data to (key id, version), and the
/// data key is wrapped under the store's KEK.
/// </summary>
public interface IKeyStore
{
    /// <summary>Creates a key at version 1, with its material if given (requires an unlocked store). Duplicate id or name fails.</summary>
    Task<KeyRecord> CreateAsync(NewKey key, SecretBuffer? material = null, CancellationToken cancellationToken = default);

    Task<KeyRecord?> GetAsync(string id, CancellationToken cancellationToken = default);

    Task<KeyRecord?> GetByNameAsync(string name, CancellationToken cancellationToken = default);

    Task<IReadOnlyList<KeyRecord>> ListAsync(CancellationToken cancellationToken = default);

    /// <summary>Every version, oldest first, each with its public key.</summary>
    Task<IReadOnlyList<KeyVersionRecord>> GetVersionsAsync(string id, CancellationToken cancellationToken = default);

    /// <summary>
    /// Adds version <paramref name="expectedVersion"/> + 1 with a new public key (and material); the old versions stay.
    /// Fails with <see cref="StorageErrorKind.Conflict"/> if the key is not at <paramref name="expectedVersion"/>.
    /// </summary>
    Task<KeyRecord> RotateAsync(string id, int expectedVersion, byte[] newPublicKey, SecretBuffer? material = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Erases the sealed material of one version (its public key and history stay). Used by the second phase of
    /// refresh and reshare once every party confirmed the new shares (DESIGN.md safety rule 2). True if it existed.
    /// </summary>
    Task<bool> DestroyMaterialAsync(string id, int version, CancellationToken cancellationToken = default);

    /// <summary>
    /// Replaces the sealed material of one existing version in place (same key, version and public key; sealed under the
    /// current KEK, bound to the key id and version), for a secret that changes without becoming a new version: a DKLs23
    /// share whose pairwise state with a banned peer was discarded (docs/DKLS23.md "Bans"). The old ciphertext is
    /// scrubbed. False when the version has no material (never had any, or it was destroyed).
    /// </summary>
    Task<bool> ReplaceMaterialAsync(string id, int version, SecretBuffer material, CancellationToken cancellationToken = default);

    /// <summary>
    /// Records the holders of a threshold key whose row names none (written before holders were recorded) at
    /// <paramref name="version"/>, as the server read them from the key's checked public package. Nothing changes when
    /// the key is at another version, already names holders (its rotation wrote them and they are the authority) or has
    /// another number of participants. Returns the key as it now is; NotFound if there is no such key.
    /// </summary>
    Task<KeyRecord> RecordHoldersAsync(string id, int version, IReadOnlyList<uint> holders, CancellationToken cancellationToken = default);

    Task<KeyRecord> SetStateAsync(string id, KeyState state, CancellationToken cancellationToken = default);

    Task<KeyRecord> SetLabelsAsync(string id, IReadOnlyDictionary<string, string> labels, CancellationToken cancellationToken = default);

    /// <summary>Decrypts the material of a version (current if null) into a new secret buffer the caller disposes.</summary>
    /// <summary>
    /// Stores <paramref name="pendingVersion"/> (above the current version) with its public key and material without
    /// making it current: a rotation run's first phase on a signer. Conflict if the key is not at
    /// <paramref name="currentVersion"/> or the version exists already.
    /// </summary>
    Task<KeyRecord> AddPendingVersionAsync(string id, int currentVersion, int pendingVersion, byte[] publicKey, SecretBuffer material, CancellationToken cancellationToken = default);

    /// <summary>
    /// Makes a stored pending version current (and a <see cref="KeyState.Pending"/> key active), with the threshold and
    /// participants of <paramref name="rotation"/>; a replacement staged for the target version
    /// (<see cref="StageReplacementAsync"/>) becomes its material. Idempotent: a key already at the target version with no
    /// staged replacement is returned as is.
    /// Conflict if neither the current nor the pending version matches.
    /// </summary>
    Task<KeyRecord> CommitPendingVersionAsync(KeyRotation rotation, CancellationToken cancellationToken = default);

    /// <summary>
    /// Stores a replacement of the material of the key's current version <paramref name="version"/> without using it (a
    /// rotation run that keeps the version but renews the share's state: a DKLs23 repair renews every holder's pairwise
    /// state). The version keeps its material until <see cref="CommitPendingVersionAsync"/> of that version replaces it with
    /// this one (the old ciphertext is overwritten and scrubbed); <see cref="DiscardPendingVersionAsync"/> of that version
    /// drops it. Conflict if the key is not active at <paramref name="version"/> or already holds a replacement of it.
    /// </summary>
    Task<KeyRecord> StageReplacementAsync(string id, int version, SecretBuffer material, CancellationToken cancellationToken = default);

    /// <summary>
    /// Discards a pending version (above the current one), or a whole <see cref="KeyState.Pending"/> key whose only
    /// version it is, and a replacement staged for that version: an aborted run leaves nothing behind. True if something was removed; the current version is
    /// never touched.
    /// </summary>
    Task<bool> DiscardPendingVersionAsync(string id, int version, CancellationToken cancellationToken = default);

    Task<SecretBuffer> OpenMaterialAsync(string id, int? version = null, CancellationToken cancellationToken = default);
}
