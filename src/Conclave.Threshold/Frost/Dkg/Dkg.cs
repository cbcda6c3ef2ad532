using System.Security.Cryptography;
using Conclave.Crypto.Randomness;
using Conclave.Threshold.Frost.Ciphersuites;
using Conclave.Threshold.Frost.Internal;

namespace Conclave.Threshold.Frost;

/// <summary>
/// Distributed key generation and its relatives, as one Feldman-VSS engine driven by a <see cref="DkgSession"/>:
/// <list type="bullet">
/// <item>Key generation: the FROST paper's DKG (Komlo–Goldberg 2020, Figure 1), each participant dealing a random
/// polynomial with Feldman commitments (RFC 9591 Appendix C.2) and a proof of knowledge of its constant term, and
/// a random chain-code contribution from which the key's chain code is derived.</item>
/// <item>Refresh (proactive secret sharing, Herzberg et al. 1995): polynomials with zero constant term.</item>
/// <item>Reshare (Desmedt–Jajodia style redistribution): t old signers deal λ_i·s_i to a new committee.</item>
/// </list>
/// Steps: <see cref="Commit"/> (broadcast a hash commitment to the round-one package and the chain-code
/// contribution, and a per-run signing key), <see cref="Round1(DkgCommitSecret, IReadOnlyCollection{DkgCommitment})"/>
/// (once every dealer's commitment arrived: reveal the round-one package — Feldman commitments + proof),
/// <see cref="Round2"/> (check every broadcast against its commitment and validate it, compute the echo digest over
/// all commitments and broadcasts, send signed shares and the contribution point to point), <see cref="Finish"/>
/// (verify signatures, contributions and shares, compare echoes, compute the key and chain code, produce a
/// confirmation), then <see cref="DkgPendingKey.Complete"/> once every receiver confirmed. Every failure names its
/// culprits.
/// </summary>
public static partial class Dkg
{
    /// <summary>
    /// Round two: checks every other dealer's broadcast against the commitment it sent first (else
    /// <see cref="ThresholdFailure.CommitmentMismatch"/> naming the dealer), validates it (ids, duplicates, commitment
    /// length, proof of knowledge bound to the session and the dealer, reshare constant terms), computes the echo
    /// digest over every commitment and every broadcast, and returns the point-to-point shares this participant deals,
    /// each with its chain-code contribution and signed with its per-run key. Consumes <paramref name="secret"/>.
    /// </summary>
    public static (DkgRound2Secret Secret, IReadOnlyList<DkgRound2Package> Outgoing) Round2(DkgRound1Secret secret, IReadOnlyCollection<DkgRound1Package> received, IRandomSource? random = null)
        => Round2Core(secret, received, random, shareFor: null);

    /// <summary>
    /// <see cref="Round2"/>, with <paramref name="shareFor"/> and <paramref name="contributionFor"/> (testing only, null
    /// otherwise) altering the share or the chain-code contribution dealt to each other receiver before it is signed: a
    /// cheating dealer whose signed message convicts it. Internal; reached only by the test assemblies named in
    /// InternalsVisibleTo (the fault-injecting test node).
    /// </summary>
    internal static (DkgRound2Secret Secret, IReadOnlyList<DkgRound2Package> Outgoing) Round2Core(DkgRound1Secret secret, IReadOnlyCollection<DkgRound1Package> received, IRandomSource? random, Func<Identifier, Scalar, Scalar>? shareFor,
        Func<Identifier, byte[], byte[]>? contributionFor = null)
    {
        ArgumentNullException.ThrowIfNull(secret);
        ArgumentNullException.ThrowIfNull(received);
        random ??= HealthCheckedRandomSource.System;
        DkgSession session = secret.Session;
        FrostCiphersuite suite = session.Suite;
        Identifier self = secret.Self;
        IReadOnlyDictionary<Identifier, DkgCommitment>? committed = secret.Commitments;
        if (committed is null)
        {
            // Only Round1(DkgCommitSecret, ...) makes a round-one state: there is no path that skips the commitments.
            secret.Dispose();
            throw ThresholdErrors.Argument(nameof(secret), "round two needs every dealer's commitment (run Dkg.Commit and Dkg.Round1 first)");
        }

        (Scalar[]? coeffs, Scalar? oldShare, byte[] contribution, Scalar? signingKey) = secret.Consume();
        try
        {
            var all = new SortedDictionary<Identifier, DkgRound1Package>();
            var culprits = new List<Identifier>();
            foreach (DkgRound1Package p in received)
            {
                if (!ReferenceEquals(p.Suite, suite) || p.Sender.Equals(self) || !session.Dealers.Contains(p.Sender) || !all.TryAdd(p.Sender, p))
                {
                    culprits.Add(p.Sender);
                }
            }

            if (secret.Package is not null)
            {
                all[self] = secret.Package;
            }

            culprits.AddRange(session.Dealers.Where(d => !all.ContainsKey(d)));
            if (culprits.Count > 0)
            {
                throw ThresholdErrors.Protocol(ThresholdFailure.UnexpectedParticipant, [.. culprits.Distinct()], "round-one broadcasts missing, duplicated or from outside the session");
            }

            // Commit-then-reveal: the package must be the one the dealer committed to before any was revealed.
            List<Identifier> changed = [.. all.Where(kv => !CryptographicOperations.FixedTimeEquals(PackageHash(session, kv.Value, committed[kv.Key].SigningKey), committed[kv.Key].PackageHash)).Select(kv => kv.Key)];
            if (changed.Count > 0)
            {
                throw ThresholdErrors.Protocol(ThresholdFailure.CommitmentMismatch, changed, "round-one packages that differ from what their dealers committed to");
            }

            var commitments = new Dictionary<Identifier, IReadOnlyList<Element?>>();
            var bad = new List<Identifier>();
            var badReshare = new List<Identifier>();
            foreach ((Identifier sender, DkgRound1Package p) in all)
            {
                if (!sender.Equals(self))
                {
                    if (!CheckRound1(session, p))
                    {
                        bad.Add(sender);
                        continue;
                    }

                    if (session.Kind == DkgKind.Reshare)
                    {
                        Element expected = session.OldKey!.VerifyingShare(sender) * Polynomials.Lagrange(suite, session.Dealers, sender);
                        if (!p.Commitment[0].ValueEquals(expected))
                        {
                            badReshare.Add(sender);
                            continue;
                        }
                    }
                }

                commitments[sender] = session.Kind == DkgKind.Refresh ? [null, .. p.Commitment] : [.. p.Commitment];
            }

            if (bad.Count > 0)
            {
                throw ThresholdErrors.Protocol(ThresholdFailure.InvalidProofOfKnowledge, bad, "round-one broadcasts with a wrong commitment length or an invalid proof of knowledge");
            }

            if (badReshare.Count > 0)
            {
                throw ThresholdErrors.Protocol(ThresholdFailure.InvalidReshareCommitment, badReshare, "reshare constant terms that are not the dealers' weighted verifying shares");
            }

            byte[] echo = EchoDigest(session, committed.Values, all.Values);
            var outgoing = new List<DkgRound2Package>();
            Scalar? own = null;
            if (coeffs is not null)
            {
                Element signingPublic = suite.BaseMul(signingKey!);
                foreach (Identifier r in session.Receivers)
                {
                    Scalar share = Polynomials.Evaluate(coeffs, r.Value);
                    if (r.Equals(self))
                    {
                        own = share;
                    }
                    else
                    {
                        share = shareFor?.Invoke(r, share) ?? share;
                        byte[] dealt = contributionFor?.Invoke(r, contribution) ?? contribution;
                        (Element sigR, Scalar sigZ) = SignShare(session, self, r, signingKey!, signingPublic, echo, share, dealt, random);
                        outgoing.Add(new DkgRound2Package(self, r, echo, share, dealt, sigR, sigZ));
                    }
                }
            }

            return (new DkgRound2Secret(session, self, echo, commitments, own, oldShare, contribution, committed), outgoing);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(contribution);
        }
    }

    /// <summary>
    /// The end of round two for a receiver: checks that every dealer sent exactly one share, that it saw the same
    /// commitments and broadcasts (echo), that each message carries its dealer's valid signature, that each chain-code
    /// contribution matches its dealer's commitment and each share its dealer's Feldman commitments (else verifiable
    /// complaints), then computes the new share, verifying shares, group key and chain code, and a confirmation to
    /// broadcast. Consumes <paramref name="secret"/> and disposes the received packages.
    /// </summary>
    public static DkgPendingKey Finish(DkgRound2Secret secret, IReadOnlyCollection<DkgRound2Package> received, IRandomSource? random = null)
    {
        ArgumentNullException.ThrowIfNull(secret);
        ArgumentNullException.ThrowIfNull(received);
        random ??= HealthCheckedRandomSource.System;
        DkgSession session = secret.Session;
        FrostCiphersuite suite = session.Suite;
        Identifier self = secret.Self;
        if (!session.Receivers.Contains(self))
        {
            secret.Dispose();
            throw ThresholdErrors.Argument(nameof(secret), "only receivers get a key; a dealer-only participant is done after round two");
        }

        IReadOnlyDictionary<Identifier, DkgCommitment>? committed = secret.DealerCommitments;
        (Scalar? own, Scalar? oldShare, byte[] ownContribution) = secret.Consume();
        try
        {
            var bySender = new Dictionary<Identifier, DkgRound2Package>();
            var strangers = new List<Identifier>();
            foreach (DkgRound2Package p in received)
            {
                if (!ReferenceEquals(p.Suite, suite) || !p.Recipient.Equals(self) || p.Sender.Equals(self) || !session.Dealers.Contains(p.Sender) || !bySender.TryAdd(p.Sender, p))
                {
                    strangers.Add(p.Sender);
                }
            }

            strangers.AddRange(session.Dealers.Where(d => !d.Equals(self) && !bySender.ContainsKey(d)));
            if (strangers.Count > 0)
            {
                throw ThresholdErrors.Protocol(ThresholdFailure.UnexpectedParticipant, [.. strangers.Distinct()], "round-two shares missing, duplicated or misaddressed");
            }

            List<Identifier> mismatched = [.. bySender.Where(kv => !CryptographicOperations.FixedTimeEquals(kv.Value.EchoDigest, secret.EchoDigest)).Select(kv => kv.Key)];
            if (mismatched.Count > 0)
            {
                throw ThresholdErrors.Protocol(ThresholdFailure.BroadcastMismatch, mismatched, "echo check failed: these participants saw different commitments or round-one broadcasts");
            }

            if (committed is not null)
            {
                // Only a message signed under its dealer's committed key makes a complaint that others can check.
                List<Identifier> unsigned = [.. bySender.Where(kv => !VerifyShareSignature(session, kv.Value.Sender, kv.Value.Recipient, committed[kv.Key].SigningKey, kv.Value.EchoDigest, kv.Value.Share, kv.Value.Contribution, kv.Value.SignatureR, kv.Value.SignatureZ)).Select(kv => kv.Key).Order()];
                if (unsigned.Count > 0)
                {
                    throw ThresholdErrors.Protocol(ThresholdFailure.InvalidShareSignature, unsigned, "round-two messages without a valid signature under their dealers' committed keys");
                }
            }

            var badContribution = new List<DkgComplaint>();
            foreach ((Identifier sender, DkgRound2Package p) in bySender.OrderBy(kv => kv.Key))
            {
                if (!ContributionMatches(session, sender, p.Contribution, committed?[sender]))
                {
                    badContribution.Add(DkgComplaint.About(p));
                }
            }

            if (badContribution.Count > 0)
            {
                throw ThresholdErrors.Protocol(ThresholdFailure.CommitmentMismatch, [.. badContribution.Select(c => c.Accused)], "chain-code contributions that differ from what their dealers committed to", badContribution);
            }

            Scalar sum = own ?? suite.ScalarZero;
            foreach (DkgRound2Package p in bySender.Values)
            {
                sum += p.Share;
            }

            // vss_verify (RFC 9591 Appendix C.2), batched: Σ_j f_j(i)·G == Σ_k A_k·i^k with A_k = Σ_j C_jk costs t
            // multiplications instead of n·t. Only if it fails is each share checked alone (f_j(i)·G == Σ_k C_jk·i^k)
            // to name the culprits with verifiable complaints.
            Element?[] aggregate = AggregateCommitments(session, secret.Commitments);
            if (!suite.BaseMul(sum).ValueEquals(Polynomials.EvaluateCommitment(suite, aggregate, self.Value)))
            {
                var complaints = new List<DkgComplaint>();
                foreach ((Identifier sender, DkgRound2Package p) in bySender.OrderBy(kv => kv.Key))
                {
                    Scalar share = p.Share;
                    if (!suite.BaseMul(share).ValueEquals(Polynomials.EvaluateCommitment(suite, secret.Commitments[sender], self.Value)))
                    {
                        complaints.Add(DkgComplaint.About(p));
                    }
                }

                throw ThresholdErrors.Protocol(ThresholdFailure.InvalidSecretShare, [.. complaints.Select(c => c.Accused)], "received shares that do not match their dealers' commitments", complaints);
            }

            if (oldShare is not null)
            {
                sum += oldShare;
            }

            byte[] chainCode = session.Kind == DkgKind.KeyGeneration
                ? ChainCode(session, session.Dealers.Select(d => d.Equals(self) ? ownContribution : bySender[d].Contribution.ToArray()))
                : session.OldKey!.ChainCode.ToArray();
            PublicKeyPackage key = BuildPublicKey(session, aggregate, chainCode);
            if (!suite.BaseMul(sum).ValueEquals(key.VerifyingShare(self)))
            {
                throw ThresholdErrors.Protocol(ThresholdFailure.InvalidSecretShare, [], "the combined share does not match the combined commitments");
            }

            byte[] digest = ConfirmationDigest(session, secret.EchoDigest, key);
            Scalar k = suite.RandomScalar(random);
            Element r = suite.BaseMul(k);
            Scalar c = ConfirmationChallenge(session, digest, self, key.VerifyingShare(self), r);
            var confirmation = new DkgConfirmation(self, digest, r, k + (c * sum));
            return new DkgPendingKey(session, self, sum, key, digest, confirmation);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(ownContribution);
            foreach (DkgRound2Package p in received)
            {
                p.Dispose();
            }
        }
    }

    /// <summary>
    /// Checks a complaint (see <see cref="DkgComplaint"/>) with the accused's commitment and round-one broadcast, as
    /// relayed to everyone: true when the accused signed the evidence (under the per-run key it committed to) and the
    /// evidence share does not match the accused's Feldman commitments at the accuser's identifier, or the evidence
    /// contribution does not match the accused's committed contribution hash (the accused cheated); false when the
    /// signature fails (the accuser forged or altered the evidence) or the evidence is consistent (the accuser lied).
    /// Throws <see cref="ArgumentException"/> when the inputs do not belong together (other dealer, other session, or a
    /// broadcast that does not match the commitment).
    /// </summary>
    public static bool VerifyComplaint(DkgSession session, DkgComplaint complaint, DkgCommitment accusedCommitment, DkgRound1Package accusedBroadcast)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(complaint);
        ArgumentNullException.ThrowIfNull(accusedCommitment);
        ArgumentNullException.ThrowIfNull(accusedBroadcast);
        FrostCiphersuite suite = session.Suite;
        if (!ReferenceEquals(complaint.Suite, suite) || !accusedBroadcast.Sender.Equals(complaint.Accused) || !accusedCommitment.Sender.Equals(complaint.Accused)
            || !session.Dealers.Contains(complaint.Accused) || !session.Receivers.Contains(complaint.Accuser) || complaint.Accuser.Equals(complaint.Accused))
        {
            throw ThresholdErrors.Argument(nameof(complaint), "complaint, commitment and broadcast do not belong to one dealer and one receiver of the session");
        }

        if (!CryptographicOperations.FixedTimeEquals(PackageHash(session, accusedBroadcast, accusedCommitment.SigningKey), accusedCommitment.PackageHash))
        {
            throw ThresholdErrors.Argument(nameof(accusedBroadcast), "the broadcast is not the one the accused committed to");
        }

        if (!VerifyShareSignature(session, complaint.Accused, complaint.Accuser, accusedCommitment.SigningKey, complaint.EchoDigest, complaint.Evidence, complaint.Contribution, complaint.SignatureR, complaint.SignatureZ))
        {
            return false;
        }

        IReadOnlyList<Element?> c = session.Kind == DkgKind.Refresh ? [null, .. accusedBroadcast.Commitment] : [.. accusedBroadcast.Commitment];
        bool shareBad = !suite.BaseMul(complaint.Evidence).ValueEquals(Polynomials.EvaluateCommitment(suite, c, complaint.Accuser.Value));
        return shareBad || !ContributionMatches(session, complaint.Accused, complaint.Contribution, accusedCommitment);
    }

    /// <summary>
    /// A contribution is 32 bytes for key generation and empty otherwise; with a commitment, it must hash to the
    /// committed value.
    /// </summary>
    private static bool ContributionMatches(DkgSession session, Identifier dealer, ReadOnlySpan<byte> contribution, DkgCommitment? commitment)
    {
        int expected = session.Kind == DkgKind.KeyGeneration ? DkgRound2Package.ContributionSizeInBytes : 0;
        if (contribution.Length != expected)
        {
            return false;
        }

        return commitment is null || CryptographicOperations.FixedTimeEquals(ContributionHash(session, dealer, contribution), commitment.ContributionHash);
    }

    internal static bool CheckRound1(DkgSession session, DkgRound1Package p)
    {
        // ATTACKS.md "Oversized VSS commitment vector" / "Refresh that changes t": exact length, no more, no less.
        if (p.Commitment.Count != session.CommitmentCount)
        {
            return false;
        }

        if (!session.HasProofOfKnowledge)
        {
            return p.ProofR is null;
        }

        if (p.ProofR is null || p.ProofZ is null)
        {
            return false;
        }

        // μ·G == R + c·C_0 (FROST paper Figure 1 round 2 step 1).
        FrostCiphersuite suite = session.Suite;
        Scalar c = ProofChallenge(session, p.Sender, p.Commitment, p.ProofR);
        return suite.MulAddBasePublic(p.Commitment[0], -c, p.ProofZ).ValueEquals(p.ProofR);
    }
}
