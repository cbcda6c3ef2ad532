namespace Conclave.Server.Coordinator;

// The engine's errors, for every threshold protocol (kept in the Coordinator namespace their callers already import).

/// <summary>A signing attempt failed because of a node that misbehaved (a bad share): the culprit is named.</summary>
public sealed class CulpritException : Exception
{
    public CulpritException() { }

    public CulpritException(string message) : base(message) { }

    public CulpritException(string message, Exception innerException) : base(message, innerException) { }

    public CulpritException(IReadOnlyList<uint> culprits, string message) : base(message) => Culprits = culprits;

    /// <summary>Culprits proven so, each with the reason (for example a DKG complaint judged by the coordinator).</summary>
    public CulpritException(IReadOnlyList<CulpritReason> reasons, string message) : base(message)
    {
        ArgumentNullException.ThrowIfNull(reasons);
        Reasons = reasons;
        Culprits = [.. reasons.Select(r => r.Node).Distinct().Order()];
    }

    public IReadOnlyList<uint> Culprits { get; } = [];

    /// <summary>Why each culprit is one, when the coordinator established it (empty otherwise).</summary>
    public IReadOnlyList<CulpritReason> Reasons { get; } = [];

    /// <summary>
    /// Messages signed by the culprit that prove the reason to anyone holding its identity key (for example the two
    /// round-one broadcasts of a DKLs23 equivocation, serialized envelopes: DklsEquivocation.Proves); empty when none.
    /// </summary>
    public IReadOnlyList<byte[]> Evidence { get; init; } = [];
}

/// <summary>
/// A node the coordinator convicted and why. Reasons: <see cref="InvalidDkgShare"/> (a receiver's signed complaint, checked
/// with the dealer's own signed message, proves the dealer dealt a share or chain-code contribution that does not match
/// its commitments), <see cref="FalseComplaint"/> (a receiver complained and its evidence does not hold),
/// <see cref="RoundOneEquivocation"/> (a DKLs23 signer signed two different round-one broadcast commitments for one session
/// and request, sent to different peers).
/// </summary>
public sealed record CulpritReason(uint Node, string Reason)
{
    public const string InvalidDkgShare = "invalid-dkg-share";
    public const string FalseComplaint = "false-complaint";
    public const string RoundOneEquivocation = "round-one-equivocation";

    /// <summary>A DKG dealer answered one step with two different signed commitments or round-one packages, or addressed one to some peers only.</summary>
    public const string DkgEquivocation = "dkg-equivocation";
}

/// <summary>No quorum of healthy nodes could complete the operation.</summary>
public sealed class QuorumUnavailableException : Exception
{
    public QuorumUnavailableException() { }

    public QuorumUnavailableException(string message) : base(message) { }

    public QuorumUnavailableException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>
/// Thrown by a test's fault injection (<c>RotationEngine.FaultInjection</c>) to stop a run dead at a step
/// boundary, as a crash would: nothing after it runs, not even the abort.
/// </summary>
public sealed class RotationCrashException : Exception
{
    public RotationCrashException() { }

    public RotationCrashException(string message) : base(message) { }

    public RotationCrashException(string message, Exception innerException) : base(message, innerException) { }
}
