namespace Conclave.Storage.Rotation;

/// <summary>
/// A key's continuous-rotation schedule (docs/ROTATION.md "Continuous rotation"): refresh every
/// <see cref="Interval"/>, and/or after <see cref="AfterSignatures"/> signatures; <see cref="NextDue"/> is when the
/// next refresh is due (an on-demand request sets it to now); <see cref="Signatures"/> counts signatures since the
/// last rotation; <see cref="Failures"/> counts failed scheduled rotations (reset by a success).
/// </summary>
public sealed record RotationSchedule(
    string KeyId,
    TimeSpan? Interval,
    long? AfterSignatures,
    long Signatures,
    DateTimeOffset? LastRotation,
    DateTimeOffset? NextDue,
    long Failures,
    long TotalFailures,
    string? LastError,
    string? DemandReason);

/// <summary>Per-key rotation schedules, shared by server replicas on one store.</summary>
public interface IRotationSchedules
{
    /// <summary>Creates or replaces a key's schedule (counters kept); at least one trigger. Returns it as stored.</summary>
    Task<RotationSchedule> SetAsync(string keyId, TimeSpan? interval, long? afterSignatures, DateTimeOffset? nextDue, CancellationToken cancellationToken = default);

    Task<RotationSchedule?> GetAsync(string keyId, CancellationToken cancellationToken = default);

    Task<IReadOnlyList<RotationSchedule>> ListAsync(CancellationToken cancellationToken = default);

    /// <summary>Removes a key's schedule; false if it had none.</summary>
    Task<bool> RemoveAsync(string keyId, CancellationToken cancellationToken = default);

    /// <summary>Adds signatures to a scheduled key's count (no-op for a key without a schedule).</summary>
    Task AddSignaturesAsync(string keyId, long count, CancellationToken cancellationToken = default);

    /// <summary>On demand (risk escalation): the key's next rotation is due now, with the reason; false if it has no schedule.</summary>
    Task<bool> DemandAsync(string keyId, string reason, DateTimeOffset now, CancellationToken cancellationToken = default);

    /// <summary>A scheduled rotation succeeded: last rotation, next due, signatures and failures reset, demand cleared.</summary>
    Task RecordRotationAsync(string keyId, DateTimeOffset at, DateTimeOffset? nextDue, CancellationToken cancellationToken = default);

    /// <summary>A scheduled rotation failed: failures counted, the error kept, retried at <paramref name="retryAt"/>.</summary>
    Task RecordFailureAsync(string keyId, string error, DateTimeOffset retryAt, CancellationToken cancellationToken = default);
}
