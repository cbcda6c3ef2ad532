namespace Conclave.Storage.Rotation;

/// <summary>
/// The durable record of rotation runs (DKG, refresh, reshare, repair) and the rule that a key has at most one
/// unfinished run: <see cref="BeginAsync"/> fails with <see cref="StorageErrorKind.Conflict"/> while another run of the
/// same key is unfinished, in this process or in any other sharing the database (a unique row per key, so the rule
/// holds across server replicas on one PostgreSQL and survives a crash of the run's owner).
/// </summary>
public interface IRotationLog
{
    /// <summary>Records a new run in <see cref="RotationState.Started"/>; conflict if the key has an unfinished run.</summary>
    Task<RotationRun> BeginAsync(NewRotationRun run, CancellationToken cancellationToken = default);

    Task<RotationRun?> GetAsync(string runId, CancellationToken cancellationToken = default);

    /// <summary>The unfinished run of a key, if any.</summary>
    Task<RotationRun?> GetActiveAsync(string keyId, CancellationToken cancellationToken = default);

    /// <summary>Every unfinished run, oldest first.</summary>
    Task<IReadOnlyList<RotationRun>> ListUnfinishedAsync(CancellationToken cancellationToken = default);

    /// <summary>The runs of a key, newest first.</summary>
    Task<IReadOnlyList<RotationRun>> ListForKeyAsync(string keyId, int limit, CancellationToken cancellationToken = default);

    /// <summary>
    /// Moves a run from <paramref name="expected"/> to <paramref name="next"/> (a finished state also releases the key),
    /// optionally recording the public result or an error. Conflict if the run is not in <paramref name="expected"/>.
    /// </summary>
    Task<RotationRun> TransitionAsync(string runId, RotationState expected, RotationState next, byte[]? result = null, string? error = null,
        CancellationToken cancellationToken = default);

    /// <summary>
    /// Moves a run from Committed to Retired (which releases the key), and, when <paramref name="audit"/> is given, appends
    /// it to the audit log in the same transaction: the entry is written if and only if this call retires the run, so it
    /// can be neither lost (a failed write leaves the run Committed, and whoever finishes the run retires it again with
    /// the entry) nor doubled (a run already retired writes nothing). Conflict, with nothing written, if the run is not
    /// Committed. Used for the <c>node.evict.key</c> entry of a move off an evicted node (docs/ROTATION.md "Evicting a
    /// suspect node").
    /// </summary>
    Task<RotationRun> RetireAsync(string runId, Audit.AuditEntryInput? audit = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Takes over (or renews) the lease of an unfinished run for <paramref name="owner"/>: succeeds if the run is
    /// already owned by <paramref name="owner"/> or its lease has expired. False if another live owner holds it.
    /// </summary>
    Task<bool> TryLeaseAsync(string runId, string owner, TimeSpan lease, CancellationToken cancellationToken = default);

    /// <summary>
    /// The server's commit point of a threshold key rotation, in one transaction: the key row moves from
    /// <paramref name="fromVersion"/> to <paramref name="toVersion"/> with the new public key, threshold and
    /// participants, the new version's (public) material is stored, and the run moves from Prepared to Committed.
    /// Idempotent: a run already committed changes nothing. For a new key (<paramref name="create"/> given, from version
    /// 0) the key row is created instead, so a key made by DKG appears in the store exactly when its run commits.
    /// </summary>
    Task<RotationRun> CommitKeyAsync(string runId, Keys.KeyRotation rotation, Conclave.Crypto.Memory.SecretBuffer? material, Keys.NewKey? create = null,
        CancellationToken cancellationToken = default);

    /// <summary>
    /// Keeps the public transcript of a run (docs/ROTATION.md "Verifying a rotation"): public data only, written once
    /// before the run is prepared. Duplicate if the run already has one.
    /// </summary>
    Task SaveTranscriptAsync(string runId, byte[] transcript, CancellationToken cancellationToken = default);

    /// <summary>
    /// The transcript of the committed run that made version <paramref name="version"/> of a key (key generation, refresh
    /// or reshare; not a repair, which keeps the version), if one was kept.
    /// </summary>
    Task<byte[]?> GetTranscriptAsync(string keyId, int version, CancellationToken cancellationToken = default);

    /// <summary>The transcript of one run (any kind, a repair included) once it is committed, if one was kept.</summary>
    Task<byte[]?> GetRunTranscriptAsync(string runId, CancellationToken cancellationToken = default);
}
