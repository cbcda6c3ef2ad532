using Conclave.Node.Protocol;
using Conclave.Node.Rpc;
using Conclave.Node.Threshold.Dkls23;
using Conclave.Node.Threshold.Engine;
using Conclave.Server.Coordinator;
using Conclave.Server.Threshold.Engine;
using Conclave.Server.Threshold.Sharing;
using Conclave.Storage.Rotation;
using Conclave.Threshold.Dkls23;
using Conclave.Threshold.Frost;
using Conclave.Threshold.Frost.Ciphersuites;

namespace Conclave.Server.Threshold.Dkls23;

/// <summary>
/// DKLs23 key generation as a rotation run: the engine's DKG rounds on secp256k1 under the run's session id (commit before
/// reveal, proofs of knowledge, echo, confirmations, agreed chain code; <see cref="DkgRounds"/>), after which every
/// node holds its share in memory only; then the DKLs23 pairwise setup (DKLs23 section 3) in three steps whose
/// point-to-point messages the coordinator relays sealed; at its last step every node stores its key share pending and
/// reports the public key (DklsPublicKey encoding, which binds the DKG session id and the chain code). The run is
/// Prepared once every node reported the same public key, which is the DKG's key (same verifying shares, group key and
/// chain code). Before that, the run's public transcript is saved (docs/ROTATION.md "Verifying a rotation", docs/DKLS23.md
/// "Rotation transcripts"): the DKG's broadcasts and confirmations, the old and new DKLs23 public keys, and every node's
/// signed report of the key it stored.
/// </summary>
public sealed partial class DklsCoordinator
{
    private async Task<byte[]> PrepareKeyAsync(byte[] session, RotationPlan plan, CancellationToken ct)
    {
        // Refresh and reshare re-share the old key through the same DKG (DklsCoordinator.Rotation): its public package
        // is the old key's, as a frost-secp256k1 package; the new key keeps the DKG session id and moves to the next epoch.
        DklsPublicKey? old = OldKeyOf(plan);
        (PublicKeyPackage frostKey, Rotation.RotationTranscript dkgTranscript) = await _engine.Dkg.RunAsync(session, plan, FrostCiphersuite.Secp256k1Sha256, old?.ToFrostPublicKeyPackage(), _rotation.FaultAsync, ct).ConfigureAwait(false);
        await _rotation.FaultAsync(plan.Kind, "dkg").ConfigureAwait(false);

        IReadOnlyList<uint> nodes = plan.Receivers;
        byte[] keyPayload = old is null
            ? new PayloadWriter().String(plan.KeyId).ToArray()
            : new PayloadWriter().String(plan.KeyId).Bytes(old.DkgSessionId).U32(old.Epoch).ToArray();
        (byte[] result, List<Envelope> reports) = await PairwiseSetupAsync(session, plan, keyPayload, ct).ConfigureAwait(false);
        DklsPublicKey key = DklsPublicKey.FromBytes(result);
        if (!key.GroupPublicKey.AsSpan().SequenceEqual(frostKey.VerificationKey) || key.Threshold != plan.Threshold || key.ParticipantCount != nodes.Count
            || !key.DkgSessionId.AsSpan().SequenceEqual(old?.DkgSessionId ?? session) || key.Epoch != (old is null ? 0 : old.Epoch + 1)
            || (old is not null && !key.ChainCode.SequenceEqual(old.ChainCode)) || !key.ToFrostPublicKeyPackage().PublicEquals(frostKey))
        {
            throw new QuorumUnavailableException("the pairwise setup did not produce the key the DKG made");
        }

        // The public transcript (the DKG's, with the DKLs23 keys in place of their frost-secp256k1 form and every node's
        // signed setup report) is kept before the decision, as for FROST runs: every committed run has one.
        Rotation.RotationTranscript transcript = dkgTranscript with
        {
            OldPublicKeyPackage = old is null ? null : Convert.ToHexStringLower(old.ToBytes()),
            NewPublicKeyPackage = Convert.ToHexStringLower(result),
            SetupReports = Hex(reports),
        };
        await _rotation.Runs.SaveTranscriptAsync(Convert.ToHexStringLower(session), transcript.ToJsonBytes(), CancellationToken.None).ConfigureAwait(false);
        return result;
    }

    private static List<string> Hex(IEnumerable<Envelope> envelopes) =>
        [.. envelopes.OrderBy(e => e.Sender).Select(e => Convert.ToHexStringLower(Google.Protobuf.MessageExtensions.ToByteArray(e)))];

    /// <summary>
    /// The DKLs23 pairwise setup of a run on every receiver of <paramref name="plan"/> (DKLs23 section 3: base OTs,
    /// OT-extension seeds and zero-share seeds for both directions of every pair), each node holding its secp256k1 share
    /// from the run's earlier rounds: start (<paramref name="keyPayload"/>), round two, finish. Every node reports the key
    /// it stored pending (signed dkls.setup.done); all must report the same one at the run's version. Returns that key's
    /// encoding and the reports. Boundaries for crash tests: setup1, setup2, setup3 (every node stored its share pending).
    /// </summary>
    private async Task<(byte[] Result, List<Envelope> Reports)> PairwiseSetupAsync(byte[] session, RotationPlan plan, byte[] keyPayload, CancellationToken ct)
    {
        IReadOnlyList<uint> nodes = plan.Receivers;
        TimeSpan timeout = _cluster.RoundTimeout * 5;
        Dictionary<uint, IReadOnlyList<Envelope>> round1 = await RotationEngine<DklsKeyInfo>.AllAsync(nodes,
            n => _cluster.Node(n).StepAsync(_cluster.Request(session, DklsMessages.SetupStart, 11, [n], keyPayload), [], timeout, ct)).ConfigureAwait(false);
        List<Envelope> messages1 = [.. round1.Values.SelectMany(m => m).Where(m => m.Kind == DklsMessages.SetupMessage)];
        await _rotation.FaultAsync(plan.Kind, "setup1").ConfigureAwait(false);

        Dictionary<uint, IReadOnlyList<Envelope>> round2 = await RotationEngine<DklsKeyInfo>.AllAsync(nodes,
            n => _cluster.Node(n).StepAsync(_cluster.Request(session, DklsMessages.SetupRound2, 12, [n], []), messages1.Where(m => m.Recipients.Contains(n)), timeout, ct)).ConfigureAwait(false);
        List<Envelope> messages2 = [.. round2.Values.SelectMany(m => m).Where(m => m.Kind == DklsMessages.SetupMessage)];
        await _rotation.FaultAsync(plan.Kind, "setup2").ConfigureAwait(false);

        Dictionary<uint, IReadOnlyList<Envelope>> done = await RotationEngine<DklsKeyInfo>.AllAsync(nodes,
            n => _cluster.Node(n).StepAsync(_cluster.Request(session, DklsMessages.SetupFinish, 13, [n], []), messages2.Where(m => m.Recipients.Contains(n)), timeout, ct)).ConfigureAwait(false);

        byte[]? result = null;
        var reports = new List<Envelope>(done.Count);
        foreach ((uint node, IReadOnlyList<Envelope> reply) in done)
        {
            if (reply.Count != 1 || reply[0].Kind != DklsMessages.SetupDone)
            {
                throw new CulpritException([node], $"node {node} did not report the prepared key");
            }

            var r = new PayloadReader(reply[0].Payload.Span);
            int version = (int)r.U32("version");
            byte[] pub = r.Bytes("publicKey").ToArray();
            r.End();
            if (version != plan.ToVersion)
            {
                throw new CulpritException([node], $"node {node} prepared version {version}, not {plan.ToVersion}");
            }

            if (result is null)
            {
                result = pub;
            }
            else if (!result.AsSpan().SequenceEqual(pub))
            {
                throw new CulpritException([node], $"node {node} prepared a different key than the others");
            }

            reports.Add(reply[0]);
        }

        // Every node now holds its new key share pending (or staged, in a repair); the run is not yet prepared.
        await _rotation.FaultAsync(plan.Kind, "setup3").ConfigureAwait(false);
        return result is null ? throw new QuorumUnavailableException("no node reported the prepared key") : (result, reports);
    }

    /// <summary>DKLs23's part of a rotation run: its rounds, the key row's summary, and registering the committed key.</summary>
    private sealed class DklsRotationProtocol(DklsCoordinator owner) : IRotationProtocol<DklsKeyInfo>
    {
        public bool Handles(string scheme) => scheme == DklsScheme.Name;

        public DklsKeyInfo? Find(string keyId) => owner.Find(keyId);

        public Task<byte[]> PrepareAsync(byte[] session, RotationPlan plan, CancellationToken ct) =>
            plan.Kind == RotationKind.Repair ? owner.PrepareRepairAsync(session, plan, ct) : owner.PrepareKeyAsync(session, plan, ct);

        public PreparedKey Describe(RotationPlan plan, byte[] result)
        {
            DklsPublicKey key = DklsPublicKey.FromBytes(result);
            return new PreparedKey(key.GroupPublicKey, key.Threshold, key.ParticipantCount)
            {
                Holders = [.. key.Participants.Select(FrostNodeIds.ToNode)],
            };
        }

        public DklsKeyInfo Committed(RotationPlan plan, byte[] result)
        {
            var info = new DklsKeyInfo(plan.KeyId, DklsPublicKey.FromBytes(result), plan.ToVersion);
            if (plan.Kind == RotationKind.Repair)
            {
                // Same version, new pairwise state on every holder: presignatures pooled before the repair are void.
                owner._presignatures?.Drop(k => k.KeyId == plan.KeyId);
            }

            owner.Register(info);
            return info;
        }
    }
}
