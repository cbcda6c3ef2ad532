using Conclave.Storage.Rotation;
using Conclave.Server.Threshold.Engine;
using Conclave.Server.Threshold.Sharing;
using Conclave.Threshold.Frost;
using Conclave.Threshold.Frost.Ciphersuites;

namespace Conclave.Server.Coordinator;

/// <summary>
/// Distributed key generation, refresh and reshare across the nodes as crash-safe rotation runs (docs/ROTATION.md). The
/// run itself (recorded before its first message, Prepared once every party reported the same public key package, then
/// commit, the store's key row, retire; abort before the decision, <see cref="ResumeAsync"/> after it) is the threshold
/// engine's (<see cref="RotationEngine{TKey}"/>), and so are the DKG rounds (<see cref="DkgRounds"/>, run on a FROST
/// ciphersuite by FrostRotationProtocol). The coordinator relays only signed broadcasts, ciphertexts sealed to recipients,
/// confirmations and commits.
/// </summary>
public sealed partial class FrostCoordinator
{
    /// <summary>Creates a new t-of-n key by DKG among <paramref name="nodes"/> (every node deals and receives).</summary>
    public Task<FrostKeyInfo> CreateKeyAsync(string keyId, FrostCiphersuite suite, int threshold, IReadOnlyList<uint> nodes, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(suite);
        ArgumentNullException.ThrowIfNull(nodes);
        return RotateAsync(new RotationPlan(RotationKind.KeyGeneration, keyId, suite.SchemeName, threshold, nodes, nodes, [], 0), ct);
    }

    /// <summary>
    /// Proactive refresh: new shares of the same key (same group key, threshold and participants); every node
    /// must take part. The old shares are erased only after every node committed its new share.
    /// </summary>
    public Task<FrostKeyInfo> RefreshAsync(string keyId, CancellationToken ct) => RotateAsync(PlanRefresh(keyId), ct);

    /// <summary>The plan of a refresh of <paramref name="keyId"/> at its registered version.</summary>
    public RotationPlan PlanRefresh(string keyId)
    {
        FrostKeyInfo key = Find(keyId) ?? throw new ArgumentException($"unknown FROST key {keyId}", nameof(keyId));
        return new RotationPlan(RotationKind.Refresh, keyId, key.Suite.SchemeName, key.PublicKeyPackage.Threshold, key.Nodes, key.Nodes, key.Nodes, key.Version);
    }

    /// <summary>
    /// Reshare: t current holders deal the key to a new committee with a new threshold; the group key stays and the
    /// old shares become useless (erased on every old holder once the new committee committed its shares).
    /// </summary>
    public async Task<FrostKeyInfo> ReshareAsync(string keyId, int threshold, IReadOnlyList<uint> participants, CancellationToken ct) =>
        await RotateAsync(await PlanReshareAsync(keyId, threshold, participants, ct).ConfigureAwait(false), ct).ConfigureAwait(false);

    /// <summary>The plan of a reshare: the first t current holders that answer an attestation deal.</summary>
    public async Task<RotationPlan> PlanReshareAsync(string keyId, int threshold, IReadOnlyList<uint> participants, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(participants);
        FrostKeyInfo key = Find(keyId) ?? throw new ArgumentException($"unknown FROST key {keyId}", nameof(keyId));
        int oldThreshold = key.PublicKeyPackage.Threshold;
        IReadOnlyList<uint> up = await _cluster.AttestAsync(ct).ConfigureAwait(false);
        uint[] dealers = [.. key.Nodes.Where(n => up.Contains(n) && !IsUntrusted(n)).Take(oldThreshold)];
        if (dealers.Length < oldThreshold)
        {
            throw new QuorumUnavailableException($"resharing needs {oldThreshold} current holders of key {keyId} online; {dealers.Length} are");
        }

        return new RotationPlan(RotationKind.Reshare, keyId, key.Suite.SchemeName, threshold, dealers, [.. participants.Order()], key.Nodes, key.Version);
    }

    /// <summary>
    /// Runs a plan as one rotation run. The run goes on when <paramref name="ct"/> is cancelled after the decision
    /// (Prepared) only through <see cref="ResumeAsync"/>: callers that must not lose a run to a client's cancellation pass
    /// a token of their own lifetime, not the request's.
    /// </summary>
    public Task<FrostKeyInfo> RotateAsync(RotationPlan plan, CancellationToken ct, byte[]? runSession = null) => _rotation.RotateAsync(plan, ct, runSession);

    /// <summary>
    /// True while this coordinator is driving the run itself: recovery (which takes runs whose owner is this replica)
    /// leaves it alone, so a run is never aborted by its own server's recovery pass.
    /// </summary>
    public bool IsLive(string runId) => _rotation.IsLive(runId);

    /// <summary>
    /// Drives an unfinished run to its end: a Started run is aborted (nothing was decided), a Prepared or Committed run
    /// is committed and retired. Used at start-up and by the background recovery for runs whose owner is gone, and by
    /// a run itself after its decision. Returns the key as it is afterwards (null for an aborted run).
    /// </summary>
    public Task<FrostKeyInfo?> ResumeAsync(string runId, CancellationToken ct) => _rotation.ResumeAsync(runId, ct);
}
