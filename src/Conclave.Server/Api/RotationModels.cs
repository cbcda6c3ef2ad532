namespace Conclave.Server.Api;

/// <summary>PUT /v1/keys/{name}/rotation-schedule: refresh every <c>intervalSeconds</c> and/or after <c>afterSignatures</c> signatures.</summary>
public sealed record RotationScheduleRequest(long? IntervalSeconds, long? AfterSignatures);

/// <summary>A key's rotation schedule and its state (docs/ROTATION.md "Continuous rotation").</summary>
public sealed record RotationScheduleResponse(
    string Key,
    long? IntervalSeconds,
    long? AfterSignatures,
    long Signatures,
    DateTimeOffset? LastRotation,
    DateTimeOffset? NextDue,
    long Failures,
    long TotalFailures,
    string? LastError,
    string? DemandReason);

/// <summary>POST /v1/keys/{name}/rotate: make a scheduled key's next refresh due now, with the reason (1 to 200 characters).</summary>
public sealed record RotationDemandRequest(string? Reason);
