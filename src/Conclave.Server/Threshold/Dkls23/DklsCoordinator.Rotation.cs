using Conclave.Server.Coordinator;
using Conclave.Server.Threshold.Engine;
using Conclave.Storage.Rotation;
using Conclave.Threshold.Dkls23;

namespace Conclave.Server.Threshold.Dkls23;

/// <summary>
/// Refresh and reshare of ecdsa-dkls23 keys as crash-safe rotation runs of the threshold engine (docs/ROTATION.md), the
/// same machinery as key generation and as FROST keys: recorded before the first message, every receiver holds its new
/// share pending until the run's commit, an abort discards it, and the old version is erased (retire) only once every
/// receiver signed that it committed; one run per key at a time.
/// The rounds (DklsCoordinator.Setup): the engine's DKG rounds (<see cref="Sharing.DkgRounds"/>) re-share the old key's
/// Shamir shares, for a refresh with polynomials of zero constant term (proactive secret sharing, Herzberg et al. 1995;
/// the re-sharing DKLs23 section 3 names for key refresh), for a reshare with λ_i·p(i) dealt by t old holders to the new committee (t′, n′); then every
/// receiver runs a fresh DKLs23 pairwise setup (new base OTs, OT-extension and zero-share seeds) at the key's next epoch.
/// The group key, chain code and DKG session id stay, so the address does too; presignatures made before the run carry
/// the old epoch and setup session and are refused.
/// </summary>
public sealed partial class DklsCoordinator
{
    /// <summary>Proactive refresh: new shares and pairwise state of the same key; every holder takes part.</summary>
    public Task<DklsKeyInfo> RefreshAsync(string keyId, CancellationToken ct) => RotateAsync(PlanRefresh(keyId), ct);

    /// <summary>The plan of a refresh of <paramref name="keyId"/> at its registered version.</summary>
    public RotationPlan PlanRefresh(string keyId)
    {
        DklsKeyInfo key = Find(keyId) ?? throw new ArgumentException($"unknown DKLs23 key {keyId}", nameof(keyId));
        return new RotationPlan(RotationKind.Refresh, keyId, DklsScheme.Name, key.Threshold, key.Nodes, key.Nodes, key.Nodes, key.Version);
    }

    /// <summary>
    /// Reshare to <paramref name="participants"/> with threshold <paramref name="threshold"/>: t current holders deal, the
    /// group key stays, and the old shares are erased on every old holder once the new committee committed.
    /// </summary>
    public async Task<DklsKeyInfo> ReshareAsync(string keyId, int threshold, IReadOnlyList<uint> participants, CancellationToken ct) =>
        await RotateAsync(await PlanReshareAsync(keyId, threshold, participants, ct).ConfigureAwait(false), ct).ConfigureAwait(false);

    /// <summary>The plan of a reshare: the first t current holders that answer an attestation and are trusted deal.</summary>
    public async Task<RotationPlan> PlanReshareAsync(string keyId, int threshold, IReadOnlyList<uint> participants, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(participants);
        DklsKeyInfo key = Find(keyId) ?? throw new ArgumentException($"unknown DKLs23 key {keyId}", nameof(keyId));
        uint[] committee = [.. participants.Distinct().Order()];
        if (committee.Length != participants.Count || threshold < 2 || threshold > committee.Length)
        {
            throw new ArgumentException("a reshare needs distinct participants and 2 ≤ threshold ≤ participants", nameof(participants));
        }

        IReadOnlyList<uint> up = await _cluster.AttestAsync(ct).ConfigureAwait(false);
        uint[] dealers = [.. key.Nodes.Where(n => up.Contains(n) && !_health.IsUntrusted(n)).Take(key.Threshold)];
        if (dealers.Length < key.Threshold)
        {
            throw new QuorumUnavailableException($"resharing needs {key.Threshold} current holders of key {keyId} online; {dealers.Length} are");
        }

        return new RotationPlan(RotationKind.Reshare, keyId, DklsScheme.Name, threshold, dealers, committee, key.Nodes, key.Version);
    }

    /// <summary>
    /// The reshare that moves <paramref name="keyId"/> away from an evicted (untrusted) <paramref name="node"/>
    /// (docs/ROTATION.md "Evicting a suspect node"; <see cref="EvictionPlanner.PlanAsync"/>, as for FROST keys): the same
    /// threshold, the remaining trusted holders plus <paramref name="replacement"/> as the new committee, which runs a
    /// fresh pairwise setup; the node is neither dealer, receiver nor old holder, so the run never contacts it. Null when
    /// the node does not hold the key.
    /// </summary>
    public Task<RotationPlan?> PlanEvictionAsync(string keyId, uint node, uint? replacement, CancellationToken ct)
    {
        DklsKeyInfo key = Find(keyId) ?? throw new ArgumentException($"unknown DKLs23 key {keyId}", nameof(keyId));
        return _engine.Eviction.PlanAsync(key, DklsScheme.Name, node, replacement, ct);
    }

    /// <summary>The key a refresh or reshare starts from (null for key generation), at the version the plan names.</summary>
    private DklsPublicKey? OldKeyOf(RotationPlan plan)
    {
        if (plan.Kind == RotationKind.KeyGeneration)
        {
            return null;
        }

        if (plan.Kind == RotationKind.Repair)
        {
            throw new InvalidOperationException("a repair run has no DKG (DklsCoordinator.Repair)");
        }

        DklsKeyInfo key = Find(plan.KeyId) ?? throw new ArgumentException($"unknown DKLs23 key {plan.KeyId}", nameof(plan));
        if (key.Version != plan.FromVersion)
        {
            throw new QuorumUnavailableException($"the coordinator holds key {plan.KeyId} at version {key.Version}, the run starts from {plan.FromVersion}");
        }

        return key.PublicKey;
    }
}
