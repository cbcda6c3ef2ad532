using Conclave.Node.Protocol;
using Conclave.Node.Rpc;
using Conclave.Server.Coordinator;
using Conclave.Server.Threshold.Engine;
using Conclave.Server.Threshold.Sharing;
using Conclave.Storage.Rotation;
using Conclave.Threshold.Dkls23;

namespace Conclave.Server.Threshold.Dkls23;

/// <summary>
/// Repair of an ecdsa-dkls23 key as a crash-safe rotation run of the engine (kind repair, from version v to v; docs/DKLS23.md
/// "Repair"): node N, whose store was lost, gets its secp256k1 Shamir share back by the same Laing–Stinson repair steps as
/// a FROST key (the engine's <see cref="RepairRounds"/>: every other holder helps, δ pieces and σ values sealed between run
/// agreement keys, N proves knowledge of the rebuilt share), then every holder runs a fresh DKLs23 pairwise setup (DKLs23
/// section 3) at the key's epoch under a setup session id derived from the run id: N gets pairwise state with every peer,
/// and every peer replaces its pairwise state (all of it: the key share has one setup session id, to which presignatures
/// are bound). N stores its key share as a pending key; every other holder stages its new key share as a replacement of
/// version v (IKeyStore.StageReplacementAsync); nothing signs with it until the engine's commit, and an abort drops it,
/// so a failure before the decision leaves every holder signing with its old state. The public key (verifying shares,
/// group key, chain code, DKG session id, epoch) and the version do not change.
/// </summary>
public sealed partial class DklsCoordinator
{
    /// <summary>Rebuilds node <paramref name="lostNode"/>'s share and pairwise state (see the type's summary).</summary>
    public async Task<DklsKeyInfo> RepairAsync(string keyId, uint lostNode, CancellationToken ct) =>
        await RotateAsync(await PlanRepairAsync(keyId, lostNode, ct).ConfigureAwait(false), ct).ConfigureAwait(false);

    /// <summary>
    /// The plan of a repair: every other holder helps and takes part in the new pairwise setup, so every other holder must
    /// be up and trusted (the dealers); the receivers, who each commit the run, are all the holders.
    /// </summary>
    public async Task<RotationPlan> PlanRepairAsync(string keyId, uint lostNode, CancellationToken ct)
    {
        DklsKeyInfo key = Find(keyId) ?? throw new ArgumentException($"unknown DKLs23 key {keyId}", nameof(keyId));
        if (!key.Nodes.Contains(lostNode))
        {
            throw new ArgumentException($"node {lostNode} holds no share of key {keyId}", nameof(lostNode));
        }

        IReadOnlyList<uint> up = await _cluster.AttestAsync(ct).ConfigureAwait(false);
        uint[] others = [.. key.Nodes.Where(n => n != lostNode).Order()];
        uint[] helpers = [.. others.Where(n => up.Contains(n) && !_health.IsUntrusted(n))];
        if (helpers.Length != others.Length || helpers.Length < key.Threshold)
        {
            throw new QuorumUnavailableException(
                $"repairing a DKLs23 share of key {keyId} needs every other holder up and trusted (the repaired node runs a pairwise setup with each): {helpers.Length} of {others.Length} are");
        }

        return new RotationPlan(RotationKind.Repair, keyId, DklsScheme.Name, key.Threshold, helpers, [.. key.Nodes.Order()], [], key.Version);
    }

    /// <summary>
    /// The repair's rounds: the engine's repair steps on the key's frost-secp256k1 form (boundaries deltas, sigmas, finish), then
    /// the pairwise setup on every holder (setup1, setup2). Every holder must report the key unchanged. The transcript (kind
    /// repair: the helpers' contributions, the repaired node's confirmation and every holder's setup report) is saved
    /// before the run is prepared.
    /// </summary>
    private async Task<byte[]> PrepareRepairAsync(byte[] session, RotationPlan plan, CancellationToken ct)
    {
        DklsKeyInfo key = Find(plan.KeyId) ?? throw new ArgumentException($"unknown DKLs23 key {plan.KeyId}", nameof(plan));
        if (key.Version != plan.FromVersion)
        {
            throw new QuorumUnavailableException($"the coordinator holds key {plan.KeyId} at version {key.Version}, the run starts from {plan.FromVersion}");
        }

        uint lost = plan.Receivers.Except(plan.Dealers).Single();
        byte[] expected = key.PublicKey.ToBytes();
        Rotation.RotationTranscript repair = await _engine.Repair.RunAsync(session, plan, lost, DklsScheme.Name, key.PublicKey.ToFrostPublicKeyPackage().ToBytes(),
            _rotation.FaultAsync, ct).ConfigureAwait(false);

        byte[] keyPayload = new PayloadWriter().String(plan.KeyId).Bytes(key.PublicKey.DkgSessionId).U32(key.PublicKey.Epoch).ToArray();
        (byte[] result, List<Envelope> reports) = await PairwiseSetupAsync(session, plan, keyPayload, ct).ConfigureAwait(false);
        if (!result.AsSpan().SequenceEqual(expected))
        {
            throw new QuorumUnavailableException("the pairwise setup of the repair did not report the key unchanged");
        }

        string hex = Convert.ToHexStringLower(expected);
        Rotation.RotationTranscript transcript = repair with { OldPublicKeyPackage = hex, NewPublicKeyPackage = hex, SetupReports = Hex(reports) };
        await _rotation.Runs.SaveTranscriptAsync(Convert.ToHexStringLower(session), transcript.ToJsonBytes(), CancellationToken.None).ConfigureAwait(false);
        return result;
    }
}
