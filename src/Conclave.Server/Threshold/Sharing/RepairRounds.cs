using Conclave.Node.Frost;
using Conclave.Node.Protocol;
using Conclave.Node.Rpc;
using Conclave.Node.Threshold.Sharing;
using Conclave.Server.Coordinator;
using Conclave.Server.Threshold.Engine;
using Conclave.Storage.Rotation;
using Conclave.Threshold.Frost;

namespace Conclave.Server.Threshold.Sharing;

/// <summary>
/// The repair steps of a repair run on the cluster, for every protocol whose shares are Shamir shares on a FROST
/// ciphersuite's group: Laing and Stinson's repairable threshold scheme (2017, section 4; Conclave.Threshold
/// <see cref="Repair"/>; docs/ROTATION.md "Repair is a run too"), the helpers being the plan's dealers. Every participant announces its run agreement key; step one on every
/// helper (δ pieces, sealed helper to helper), step two (σ, sealed to the lost node, plus each helper's signed public
/// contribution), step three on the lost node (rebuild, check against its verifying share, signed confirmation with a
/// proof of knowledge). The nodes' side is the repair handlers (message kinds <c>frost.repair.*</c>).
/// </summary>
public sealed class RepairRounds(Cluster cluster)
{
    /// <summary>
    /// Runs the repair steps for <paramref name="lostNode"/>; <paramref name="packageBytes"/> is a frost package of
    /// <paramref name="scheme"/>'s suite (the lost node checks its rebuilt share against its verifying share there). For a
    /// FROST key the lost node stores the share pending; for a protocol that continues after the repair (DKLs23:
    /// <paramref name="scheme"/> is that protocol's) the helpers and the lost node keep the share and their run keys for its
    /// rounds. <paramref name="faultAsync"/> is the protocol's rotation fault injection (boundaries deltas, sigmas,
    /// finish). Returns the run's transcript (kind repair, the packages as given).
    /// </summary>
    public async Task<Rotation.RotationTranscript> RunAsync(byte[] session, RotationPlan plan, uint lostNode, string scheme, byte[] packageBytes,
        Func<RotationKind, string, Task> faultAsync, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(packageBytes);
        ArgumentNullException.ThrowIfNull(faultAsync);
        IReadOnlyList<uint> helpers = plan.Dealers;
        TimeSpan timeout = cluster.RoundTimeout * 5;
        var start = new PayloadWriter().String(plan.KeyId).U32(lostNode).U32((uint)helpers.Count);
        foreach (uint h in helpers)
        {
            start.U32(h);
        }

        byte[] agreementPayload = start.ToArray();
        byte[] startPayload = start.U32((uint)plan.FromVersion).ToArray();

        // Every participant announces its run agreement key (forward secrecy of the δ pieces and σ values).
        Dictionary<uint, IReadOnlyList<Envelope>> announced = await RotationEngine<IThresholdKey>.AllAsync([.. helpers, lostNode],
            n => cluster.Node(n).StepAsync(cluster.Request(session, FrostMessages.RepairAgreement, 1, [n], agreementPayload), [], timeout, ct)).ConfigureAwait(false);
        List<Envelope> runKeys = RunAgreementKeys.OneEach(announced, FrostMessages.RepairAgreementKey);
        Dictionary<uint, IReadOnlyList<Envelope>> deltas = await RotationEngine<IThresholdKey>.AllAsync(helpers,
            n => cluster.Node(n).StepAsync(cluster.Request(session, FrostMessages.RepairStart, 2, [n], startPayload), runKeys.Where(k => k.Sender != n), timeout, ct)).ConfigureAwait(false);
        List<Envelope> pieces = [.. deltas.Values.SelectMany(m => m)];
        await faultAsync(plan.Kind, "deltas").ConfigureAwait(false);

        Dictionary<uint, IReadOnlyList<Envelope>> sigmas = await RotationEngine<IThresholdKey>.AllAsync(helpers,
            n => cluster.Node(n).StepAsync(cluster.Request(session, FrostMessages.RepairSigma, 3, [n], []), pieces.Where(p => p.Recipients.Contains(n)), timeout, ct)).ConfigureAwait(false);
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
        IReadOnlyList<Envelope> done = await cluster.Node(lostNode).StepAsync(
            cluster.Request(session, FrostMessages.RepairFinish, 4, [lostNode], finishPayload),
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
}
