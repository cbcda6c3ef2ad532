namespace Conclave.Server.Coordinator;

// The engine's errors, for every threshold protocol (kept in the Coordinator namespace their callers already import).

/// <summary>A signing attempt failed because of a node that misbehaved (a bad share): the culprit is named.</summary>
public sealed class CulpritException : Exception
{
    public CulpritException() { }

    public CulpritException(string message) : base(message) { }

    public CulpritException(string message, Exception innerException) : base(message, innerException) { }

    public CulpritException(IReadOnlyList<uint> culprits, string message) : base(message) => Culprits = culprits;

    public IReadOnlyList<uint> Culprits { get; } = [];
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
