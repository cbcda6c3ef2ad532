namespace Conclave.Storage.Keys;

/// <summary>The lifecycle state of a key.</summary>
public enum KeyState
{
    /// <summary>Usable for signing.</summary>
    Active,

    /// <summary>Temporarily not usable (for example by policy or an operator).</summary>
    Disabled,

    /// <summary>Rotated out or decommissioned: verify only.</summary>
    Retired,

    /// <summary>Material destroyed; only public keys remain.</summary>
    Destroyed,

    /// <summary>
    /// Held but not yet usable: a signer that joins a threshold key through a reshare stores its share as pending
    /// until the run that made it is committed (docs/ROTATION.md).
    /// </summary>
    Pending,
}

/// <summary>What a caller supplies to create a key. <paramref name="PublicKey"/> is the scheme's canonical encoding.</summary>
public sealed record NewKey(
    string Id,
    string Name,
    string Scheme,
    byte[] PublicKey,
    int Threshold = 1,
    int Participants = 1,
    IReadOnlyDictionary<string, string>? Labels = null)
{
    /// <summary>
    /// The version the key starts at (1 for a new key). A signer that joins an existing threshold key through a
    /// reshare starts at the committee's current version so every holder agrees on it.
    /// </summary>
    public int InitialVersion { get; init; } = 1;

    /// <summary><see cref="KeyState.Active"/> (the default) or <see cref="KeyState.Pending"/> for a share that waits for its run's commit.</summary>
    public KeyState InitialState { get; init; } = KeyState.Active;

    /// <summary>
    /// The signer nodes holding shares of the version created (a threshold key on the server), <see cref="Participants"/>
    /// distinct ids; null when the key has none (a single key) or its holders are not recorded.
    /// </summary>
    public IReadOnlyList<uint>? Holders { get; init; }
}

/// <summary>
/// A threshold key moving from one version to the next: the public key (unchanged by refresh and reshare, but stated
/// so the store can check it), and the threshold and participants of the new version (reshare changes them).
/// </summary>
public sealed record KeyRotation(string KeyId, int FromVersion, int ToVersion, byte[] PublicKey, int Threshold, int Participants)
{
    /// <summary>
    /// The signer nodes holding shares of the new version (<see cref="Participants"/> distinct ids); null leaves the key's
    /// holders unrecorded (a committee that may have changed is never carried over).
    /// </summary>
    public IReadOnlyList<uint>? Holders { get; init; }
}

/// <summary>A stored key: metadata and the public key of its current version. Never holds secret material.</summary>
public sealed record KeyRecord(
    string Id,
    string Name,
    string Scheme,
    byte[] PublicKey,
    int Threshold,
    int Participants,
    int Version,
    KeyState State,
    IReadOnlyDictionary<string, string> Labels,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt)
{
    /// <summary>
    /// The signer nodes holding shares of the current version, ascending (a threshold key on the server), covered by the
    /// row's MAC like every other field; null for a key without holders (single keys, a signer's own rows) and for a
    /// threshold key whose row was written before holders were recorded (until it is next used or rotated).
    /// </summary>
    public IReadOnlyList<uint>? Holders { get; init; }
}

/// <summary>One version of a key; rotation appends versions and keeps every public key.</summary>
public sealed record KeyVersionRecord(string KeyId, int Version, byte[] PublicKey, DateTimeOffset CreatedAt, bool HasMaterial);
