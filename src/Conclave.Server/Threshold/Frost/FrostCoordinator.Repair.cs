using Conclave.Node.Frost;
using Conclave.Node.Protocol;
using Conclave.Node.Rpc;
using Conclave.Server.Threshold.Engine;
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
    /// The repair run's rounds (Laing–Stinson, Conclave.Threshold <see cref="Repair"/>) for a FROST key: see
    /// <see cref="RepairStepsAsync"/>. Returns the package (unchanged) and the transcript.
    /// </summary>
    private async Task<(PublicKeyPackage Result, Rotation.RotationTranscript Transcript)> RepairRoundsAsync(byte[] session, RotationPlan plan, FrostKeyInfo key, CancellationToken ct)
    {
        if (key.Version != plan.FromVersion)
        {
            throw new QuorumUnavailableException($"key {plan.KeyId} is at version {key.Version}, not {plan.FromVersion}");
        }

        Rotation.RotationTranscript transcript = await RepairStepsAsync(session, plan, plan.Receivers[0], key.Suite.SchemeName, key.PublicKeyPackage.ToBytes(), ct).ConfigureAwait(false);
        return (key.PublicKeyPackage, transcript);
    }

    /// <summary>
    /// The Laing–Stinson repair steps of a run (Conclave.Threshold <see cref="Repair"/>), the helpers being
    /// <paramref name="plan"/>'s dealers: every participant announces its run agreement key; step one on every helper (δ
    /// pieces, sealed helper to helper), step two (σ, sealed to the lost node, plus each helper's signed public
    /// contribution), step three on the lost node (rebuild, check against its verifying share in
    /// <paramref name="packageBytes"/>, a frost package of <paramref name="scheme"/>'s suite; signed confirmation with a
    /// proof of knowledge). For a FROST key the lost node stores the share pending; for a protocol that continues after
    /// the repair (DKLs23: <paramref name="scheme"/> is that protocol's, <paramref name="fault"/> its fault injection) the
    /// helpers and the lost node keep the share and their run keys for its rounds. Boundaries for crash tests: deltas,
    /// sigmas, finish. Returns the run's transcript (kind repair, the packages as given).
    /// </summary>
    internal async Task<Rotation.RotationTranscript> RepairStepsAsync(byte[] session, RotationPlan plan, uint lostNode, string scheme, byte[] packageBytes,
        CancellationToken ct, Func<RotationKind, string, Task>? fault = null)
    {
        Func<RotationKind, string, Task> faultAsync = fault ?? FaultAsync;
        IReadOnlyList<uint> helpers = plan.Dealers;
        TimeSpan timeout = _cluster.RoundTimeout * 5;
        var start = new PayloadWriter().String(plan.KeyId).U32(lostNode).U32((uint)helpers.Count);
        foreach (uint h in helpers)
        {
            start.U32(h);
        }

        byte[] agreementPayload = start.ToArray();
        byte[] startPayload = start.U32((uint)plan.FromVersion).ToArray();

        // Every participant announces its run agreement key (forward secrecy of the δ pieces and σ values).
        Dictionary<uint, IReadOnlyList<Envelope>> announced = await AllAsync([.. helpers, lostNode],
            n => _cluster.Node(n).StepAsync(_cluster.Request(session, FrostMessages.RepairAgreement, 1, [n], agreementPayload), [], timeout, ct)).ConfigureAwait(false);
        List<Envelope> runKeys = OneRunKeyEach(announced, FrostMessages.RepairAgreementKey);
        Dictionary<uint, IReadOnlyList<Envelope>> deltas = await AllAsync(helpers,
            n => _cluster.Node(n).StepAsync(_cluster.Request(session, FrostMessages.RepairStart, 2, [n], startPayload), runKeys.Where(k => k.Sender != n), timeout, ct)).ConfigureAwait(false);
        List<Envelope> pieces = [.. deltas.Values.SelectMany(m => m)];
        await faultAsync(plan.Kind, "deltas").ConfigureAwait(false);

        Dictionary<uint, IReadOnlyList<Envelope>> sigmas = await AllAsync(helpers,
            n => _cluster.Node(n).StepAsync(_cluster.Request(session, FrostMessages.RepairSigma, 3, [n], []), pieces.Where(p => p.Recipients.Contains(n)), timeout, ct)).ConfigureAwait(false);
        List<Envelope> sealedSigmas = [.. sigmas.Values.SelectMany(m => m).Where(e => e.Kind == FrostMessages.RepairSigmaShare)];
        List<Envelope> contributions = [.. sigmas.Values.SelectMany(m => m).Where(e => e.Kind == FrostMessages.RepairContributed)];
        if (contributions.Count != helpers.Count || sealedSigmas.Count != helpers.Count)
        {
            throw new QuorumUnavailableException("not every helper contributed to the repair");
        }

        await faultAsync(plan.Kind, "sigmas").ConfigureAwait(false);

        var finish = new PayloadWriter().String(plan.KeyId).String(scheme).U32((uint)helpers.Count);
        foreach (uint h in helpers)
        {
            finish.U32(h);
        }

        byte[] finishPayload = finish.U32((uint)plan.FromVersion).Bytes(packageBytes).ToArray();
        IReadOnlyList<Envelope> done = await _cluster.Node(lostNode).StepAsync(
            _cluster.Request(session, FrostMessages.RepairFinish, 4, [lostNode], finishPayload),
            sealedSigmas.Concat(runKeys.Where(k => helpers.Contains(k.Sender))), timeout, ct).ConfigureAwait(false);
        if (done.Count != 1 || done[0].Kind != FrostMessages.RepairDone)
        {
            throw new CulpritException([lostNode], $"node {lostNode} did not confirm the repaired share");
        }

        RepairConfirmation confirmation = RepairEvidence.ReadConfirmation(done[0].Payload.Span);
        if (confirmation.KeyId != plan.KeyId || confirmation.Version != plan.FromVersion
            || !confirmation.PackageHash.AsSpan().SequenceEqual(RepairEvidence.PackageHash(packageBytes)))
        {
            throw new CulpritException([lostNode], $"node {lostNode} confirmed another key, version or package");
        }

        await faultAsync(plan.Kind, "finish").ConfigureAwait(false);
        string hex = Convert.ToHexStringLower(packageBytes);
        return new Rotation.RotationTranscript(Rotation.RotationTranscript.CurrentFormat, Convert.ToHexStringLower(session), "repair",
            plan.KeyId, scheme, plan.Threshold, [.. helpers], [lostNode], plan.FromVersion, plan.ToVersion, hex, hex,
            [.. contributions.OrderBy(c => c.Sender).Select(c => Convert.ToHexStringLower(Google.Protobuf.MessageExtensions.ToByteArray(c)))],
            [Convert.ToHexStringLower(Google.Protobuf.MessageExtensions.ToByteArray(done[0]))]);
    }

    /// <summary>
    /// The run-key announcements of an agreement step, exactly one from each node's own signed reply. A node that answers
    /// with none or several is named: the coordinator holds that reply first-hand (signed by the node, verified by
    /// <see cref="NodeClient"/>). The nodes receiving the relayed announcements name nobody when they see two for one
    /// sender, since a coordinator that asked a node twice for the same session (after a restart) could have made that
    /// (docs/ROTATION.md "Forward secrecy of relayed shares").
    /// </summary>
    internal static List<Envelope> OneRunKeyEach(IReadOnlyDictionary<uint, IReadOnlyList<Envelope>> replies, string kind)
    {
        ArgumentNullException.ThrowIfNull(replies);
        var keys = new List<Envelope>(replies.Count);
        foreach ((uint node, IReadOnlyList<Envelope> messages) in replies.OrderBy(r => r.Key))
        {
            Envelope[] own = [.. messages.Where(e => e.Kind == kind)];
            if (own.Length != 1)
            {
                throw new CulpritException([node], $"node {node} answered the agreement step with {own.Length} run agreement keys, not one");
            }

            keys.Add(own[0]);
        }

        return keys;
    }
}
