namespace Conclave.Node.Threshold.Engine;

/// <summary>
/// Message kinds of the second phase of a rotation run (docs/ROTATION.md), the same for every threshold protocol: the run's
/// protocol-specific rounds leave every receiver holding its new share as pending; these steps make it current, erase
/// the old version, or discard the pending one. Each request carries the run id as its session id and the key id as payload.
/// </summary>
public static class RotationMessages
{
    /// <summary>
    /// Coordinator → receiver of a prepared run: make the pending version current. Idempotent; the node answers
    /// <see cref="Committed"/> again for a run it already committed.
    /// </summary>
    public const string Commit = "rotation.commit";

    /// <summary>Receiver → everyone: signed evidence that it made the run's new version current (key id, version, result hash).</summary>
    public const string Committed = "rotation.committed";

    /// <summary>
    /// Coordinator → every old and new holder, relaying every receiver's <see cref="Committed"/>: erase the old version (a
    /// leaving dealer: the key). A node erases only with a signed commit from every receiver of the same run.
    /// </summary>
    public const string Retire = "rotation.retire";

    /// <summary>Node → coordinator: the run is retired on this node.</summary>
    public const string Retired = "rotation.retired";

    /// <summary>Coordinator → every participant of a run that was not prepared: discard the pending version.</summary>
    public const string Abort = "rotation.abort";

    /// <summary>Node → coordinator: the run is aborted on this node (or was never known).</summary>
    public const string Aborted = "rotation.aborted";

    /// <summary>Coordinator → node: report the key's current version and unfinished run (recovery and convergence checks).</summary>
    public const string Status = "rotation.status";

    /// <summary>Node → coordinator: current version, key state, unfinished run id and state.</summary>
    public const string StatusReply = "rotation.status-reply";

    /// <summary>Rounds of the commit, retire, abort and status steps (after the protocol's own rounds 1 to 5).</summary>
    public const uint CommitRound = 6, RetireRound = 7, AbortRound = 8, StatusRound = 9;
}
