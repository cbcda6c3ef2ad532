namespace Conclave.Storage.Rotation;

/// <summary>What a rotation run does to a threshold key.</summary>
public enum RotationKind
{
    /// <summary>A new key by distributed key generation.</summary>
    KeyGeneration,

    /// <summary>New shares of the same key, same threshold and participants.</summary>
    Refresh,

    /// <summary>The same key moved to a new committee and threshold.</summary>
    Reshare,

    /// <summary>A lost share rebuilt at the key's current version.</summary>
    Repair,
}

/// <summary>
/// Where a rotation run stands. The server records each state durably before the phase it starts:
/// <see cref="Started"/> (nothing decided: the run may still be aborted), <see cref="Prepared"/> (every party holds the
/// new share as pending and reported the same public key package: the decision to commit is taken and the run can
/// only roll forward), <see cref="Committed"/> (the key row names the new version), <see cref="Retired"/> (the old
/// version is erased everywhere: finished) and <see cref="Aborted"/> (the pending version discarded: finished).
/// A node records its own view with the same states.
/// </summary>
public enum RotationState
{
    Started,
    Prepared,
    Committed,
    Retired,
    Aborted,
}

/// <summary>
/// One rotation run as a store records it. <paramref name="Parameters"/> is the caller's own encoding of what the run
/// needs to be finished or aborted after a crash (participants, threshold, the node's role); <paramref name="Result"/>
/// the public outcome once prepared (for the server, the new public key package). Neither ever holds a secret.
/// </summary>
public sealed record RotationRun(
    string RunId,
    string KeyId,
    RotationKind Kind,
    int FromVersion,
    int ToVersion,
    RotationState State,
    string Owner,
    DateTimeOffset LeaseUntil,
    byte[] Parameters,
    byte[]? Result,
    string? Error,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt)
{
    /// <summary>Retired and aborted runs are finished; any other state must be driven to one of them.</summary>
    public bool IsFinished => State is RotationState.Retired or RotationState.Aborted;
}

/// <summary>What a caller supplies to begin a run.</summary>
public sealed record NewRotationRun(string RunId, string KeyId, RotationKind Kind, int FromVersion, int ToVersion, string Owner, TimeSpan Lease, byte[] Parameters);
