using Conclave.Server.Threshold.Engine;
using Conclave.Server.Threshold.Sharing;
using Conclave.Storage.Rotation;
using Conclave.Threshold.Frost;

namespace Conclave.Server.Coordinator;

public sealed partial class FrostCoordinator
{
    /// <summary>
    /// Rebuilds the share of <paramref name="lostNode"/> (for example after its store was deleted) with t healthy
    /// holders as helpers, as a crash-safe rotation run (docs/ROTATION.md): recorded before its first message, under the
    /// key's one-run lock; the lost node holds the rebuilt share as pending until the run is prepared and committed, and
    /// a crash before the decision aborts the run (the pending share is discarded). The helpers and the lost node first
    /// announce per-run agreement keys (signed by their identity keys); the coordinator then relays only those
    /// announcements, δ pieces and σ values sealed between run keys; the lost node checks the result against its
    /// verifying share. The run leaves a public transcript (kind "repair"). Returns the key (same version, same public
    /// key package).
    /// </summary>
    public async Task<FrostKeyInfo> RepairAsync(string keyId, uint lostNode, CancellationToken ct) =>
        await RotateAsync(await PlanRepairAsync(keyId, lostNode, ct).ConfigureAwait(false), ct).ConfigureAwait(false);

    /// <summary>The plan of a repair: the first t other holders that answer an attestation (and are trusted) help.</summary>
    public async Task<RotationPlan> PlanRepairAsync(string keyId, uint lostNode, CancellationToken ct)
    {
        FrostKeyInfo key = Find(keyId) ?? throw new ArgumentException($"unknown FROST key {keyId}", nameof(keyId));
        if (!key.Nodes.Contains(lostNode))
        {
            throw new ArgumentException($"node {lostNode} holds no share of key {keyId}", nameof(lostNode));
        }

        IReadOnlyList<uint> up = await _cluster.AttestAsync(ct).ConfigureAwait(false);
        uint[] helpers = [.. key.Nodes.Where(n => n != lostNode && up.Contains(n) && !IsUntrusted(n)).Take(key.PublicKeyPackage.Threshold)];
        if (helpers.Length < key.PublicKeyPackage.Threshold)
        {
            throw new QuorumUnavailableException($"repair needs {key.PublicKeyPackage.Threshold} healthy holders of key {keyId}; {helpers.Length} are up");
        }

        return new RotationPlan(RotationKind.Repair, keyId, key.Suite.SchemeName, key.PublicKeyPackage.Threshold, helpers, [lostNode], [], key.Version);
    }

    /// <summary>
    /// The repair run's rounds for a FROST key: the engine's repair steps (<see cref="RepairRounds"/>; Laing–Stinson,
    /// Conclave.Threshold <see cref="Repair"/>). Returns the package (unchanged) and the transcript.
    /// </summary>
    private async Task<(PublicKeyPackage Result, Rotation.RotationTranscript Transcript)> RepairRoundsAsync(byte[] session, RotationPlan plan, FrostKeyInfo key, CancellationToken ct)
    {
        if (key.Version != plan.FromVersion)
        {
            throw new QuorumUnavailableException($"key {plan.KeyId} is at version {key.Version}, not {plan.FromVersion}");
        }

        Rotation.RotationTranscript transcript = await _engine.Repair.RunAsync(session, plan, plan.Receivers[0], key.Suite.SchemeName, key.PublicKeyPackage.ToBytes(), FaultAsync, ct).ConfigureAwait(false);
        return (key.PublicKeyPackage, transcript);
    }
}
