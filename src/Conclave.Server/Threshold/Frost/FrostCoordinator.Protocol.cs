using Conclave.Node.Threshold.Engine;
using Conclave.Server.Threshold.Engine;
using Conclave.Server.Threshold.Sharing;
using Conclave.Storage.Rotation;
using Conclave.Threshold.Frost;
using Conclave.Threshold.Frost.Ciphersuites;

namespace Conclave.Server.Coordinator;

public sealed partial class FrostCoordinator
{
    /// <summary>
    /// FROST as a rotation protocol of the engine: its rounds are the engine's DKG rounds (<see cref="DkgRounds"/>: commit,
    /// reveal, round two, finish, complete) or, for a repair, its repair steps (<see cref="RepairRoundsAsync"/>), its result is
    /// the public key package every party reported, and a committed run
    /// registers the new version and drops the commitments pooled for the run's nodes.
    /// </summary>
    private sealed class FrostRotationProtocol(FrostCoordinator owner) : IRotationProtocol<FrostKeyInfo>
    {
        public bool Handles(string scheme) => FrostCiphersuite.TryGet(scheme, out _);

        public FrostKeyInfo? Find(string keyId) => owner.Find(keyId);

        public async Task<byte[]> PrepareAsync(byte[] session, RotationPlan plan, CancellationToken ct)
        {
            FrostCiphersuite suite = Suite(plan);
            FrostKeyInfo? current = plan.Kind == RotationKind.KeyGeneration ? null
                : owner.Find(plan.KeyId) ?? throw new ArgumentException($"unknown FROST key {plan.KeyId}", nameof(plan));
            (PublicKeyPackage result, Rotation.RotationTranscript transcript) = plan.Kind == RotationKind.Repair
                ? await owner.RepairRoundsAsync(session, plan, current!, ct).ConfigureAwait(false)
                : await owner._engine.Dkg.RunAsync(session, plan, suite, current?.PublicKeyPackage, owner.FaultAsync, ct).ConfigureAwait(false);
            // The public transcript is kept before the decision, so every committed run has one (docs/ROTATION.md
            // "Verifying a rotation"); the engine records Prepared only after this returns.
            await owner.Runs.SaveTranscriptAsync(Convert.ToHexStringLower(session), transcript.ToJsonBytes(), CancellationToken.None).ConfigureAwait(false);
            return result.ToBytes();
        }

        public PreparedKey Describe(RotationPlan plan, byte[] result)
        {
            PublicKeyPackage package = PublicKeyPackage.FromBytes(Suite(plan), result);
            return new PreparedKey(package.VerificationKey, package.Threshold, package.ParticipantCount)
            {
                Holders = [.. package.Participants.Select(p => FrostNodeIds.ToNode(p))],
            };
        }

        public FrostKeyInfo Committed(RotationPlan plan, byte[] result)
        {
            FrostCiphersuite suite = Suite(plan);
            var info = new FrostKeyInfo(plan.KeyId, suite, PublicKeyPackage.FromBytes(suite, result), plan.ToVersion);
            foreach (uint n in plan.Everyone)
            {
                owner.DropPool(plan.KeyId, n);
            }

            owner.Register(info);
            return info;
        }

        private static FrostCiphersuite Suite(RotationPlan plan) =>
            FrostCiphersuite.TryGet(plan.Scheme, out FrostCiphersuite? suite) ? suite : throw new ArgumentException($"unknown FROST scheme {plan.Scheme}", nameof(plan));
    }
}
