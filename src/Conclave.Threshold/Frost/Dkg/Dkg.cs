using System.Security.Cryptography;
using Conclave.Crypto.Randomness;
using Conclave.Threshold.Frost.Ciphersuites;
using Conclave.Threshold.Frost.Internal;

namespace Conclave.Threshold.Frost;

/// <summary>
/// Distributed key generation and its relatives, as one Feldman-VSS engine driven by a <see cref="DkgSession"/>:
/// <list type="bullet">
/// <item>Key generation: the FROST paper's DKG (Komlo–Goldberg 2020, Figure 1), each participant dealing a random
/// polynomial with Feldman commitments (RFC 9591 Appendix C.2) and a proof of knowledge of its constant term.</item>
/// <item>Refresh (proactive secret sharing, Herzberg et al. 1995): polynomials with zero constant term.</item>
/// <item>Reshare (Desmedt–Jajodia style redistribution): t old signers deal λ_i·s_i to a new committee.</item>
/// </list>
/// Rounds: <see cref="Round1"/> (broadcast commitments + proof), <see cref="Round2"/> (validate every broadcast,
/// compute the echo digest, send shares point to point), <see cref="Finish"/> (verify shares, compare echoes,
/// compute the key, produce a confirmation), then <see cref="DkgPendingKey.Complete"/> once every receiver
/// confirmed. Every failure names its culprits.
/// </summary>
public static partial class Dkg
{
    /// <summary>
    /// Round one. <paramref name="currentKey"/> is required for refresh and for dealers of a reshare (its share
    /// is read, not consumed: keep it until the new key is complete).
    /// </summary>
    public static DkgRound1Secret Round1(DkgSession session, Identifier self, KeyPackage? currentKey = null, IRandomSource? random = null)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(self);
        random ??= HealthCheckedRandomSource.System;
        FrostCiphersuite suite = session.Suite;
        bool dealer = session.Dealers.Contains(self);
        if (!dealer && !session.Receivers.Contains(self))
        {
            throw ThresholdErrors.Argument(nameof(self), $"participant {self} is not part of the session");
        }

        if (session.Kind != DkgKind.KeyGeneration && dealer)
        {
            if (currentKey is null || !currentKey.Identifier.Equals(self) || !currentKey.PublicKeyPackage.PublicEquals(session.OldKey!))
            {
                throw ThresholdErrors.Argument(nameof(currentKey), "the current key package of this participant, for the key named by the session, is required");
            }
        }

        if (!dealer)
        {
            return new DkgRound1Secret(session, self, null, null, null);
        }

        Scalar constant = session.Kind switch
        {
            DkgKind.KeyGeneration => suite.RandomScalar(random),
            DkgKind.Refresh => suite.ScalarZero,
            _ => Polynomials.Lagrange(suite, session.Dealers, self) * currentKey!.Share,
        };
        Scalar[] coeffs = Polynomials.RandomPolynomial(suite, constant, session.Threshold, random);
        var commitment = new List<Element>(session.CommitmentCount);
        for (int k = session.Kind == DkgKind.Refresh ? 1 : 0; k < coeffs.Length; k++)
        {
            commitment.Add(suite.BaseMul(coeffs[k]));
        }

        Element? proofR = null;
        Scalar? proofZ = null;
        if (session.HasProofOfKnowledge)
        {
            // σ = (R, μ): k ← Z_q, R = k·G, c = HDKG(transcript), μ = k + a_0·c (FROST paper Figure 1 round 1 step 2).
            Scalar k = suite.RandomScalar(random);
            proofR = suite.BaseMul(k);
            Scalar c = ProofChallenge(session, self, commitment, proofR);
            proofZ = k + (coeffs[0] * c);
        }

        var package = new DkgRound1Package(self, commitment, proofR, proofZ);
        return new DkgRound1Secret(session, self, coeffs, session.Kind == DkgKind.Refresh ? currentKey!.Share : null, package);
    }

    /// <summary>
    /// Round two: validates every other dealer's broadcast (ids, duplicates, commitment length, proof of knowledge
    /// bound to the session and the dealer, reshare constant terms), computes the echo digest over all broadcasts,
    /// and returns the point-to-point shares this participant deals. Consumes <paramref name="secret"/>.
    /// </summary>
    public static (DkgRound2Secret Secret, IReadOnlyList<DkgRound2Package> Outgoing) Round2(DkgRound1Secret secret, IReadOnlyCollection<DkgRound1Package> received)
    {
        ArgumentNullException.ThrowIfNull(secret);
        ArgumentNullException.ThrowIfNull(received);
        DkgSession session = secret.Session;
        FrostCiphersuite suite = session.Suite;
        Identifier self = secret.Self;
        (Scalar[]? coeffs, Scalar? oldShare) = secret.Consume();

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

        byte[] echo = EchoDigest(session, all.Values);
        var outgoing = new List<DkgRound2Package>();
        Scalar? own = null;
        if (coeffs is not null)
        {
            foreach (Identifier r in session.Receivers)
            {
                Scalar share = Polynomials.Evaluate(coeffs, r.Value);
                if (r.Equals(self))
                {
                    own = share;
                }
                else
                {
                    outgoing.Add(new DkgRound2Package(self, r, echo, share));
                }
            }
        }

        return (new DkgRound2Secret(session, self, echo, commitments, own, oldShare), outgoing);
    }

    /// <summary>
    /// The end of round two for a receiver: checks that every dealer sent exactly one share, that it saw the same
    /// broadcasts (echo), that each share matches its dealer's commitment (else verifiable complaints), then
    /// computes the new share, verifying shares and group key, and a confirmation to broadcast.
    /// Consumes <paramref name="secret"/> and disposes the received packages.
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

        (Scalar? own, Scalar? oldShare) = secret.Consume();
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
                throw ThresholdErrors.Protocol(ThresholdFailure.BroadcastMismatch, mismatched, "echo check failed: these participants saw different round-one broadcasts");
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
                        complaints.Add(new DkgComplaint(self, sender, share));
                    }
                }

                throw ThresholdErrors.Protocol(ThresholdFailure.InvalidSecretShare, [.. complaints.Select(c => c.Accused)], "received shares that do not match their dealers' commitments", complaints);
            }

            if (oldShare is not null)
            {
                sum += oldShare;
            }

            PublicKeyPackage key = BuildPublicKey(session, aggregate);
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
            foreach (DkgRound2Package p in received)
            {
                p.Dispose();
            }
        }
    }

    /// <summary>
    /// Checks a complaint against the accused's round-one broadcast: true when the evidence share indeed does
    /// not match the accused's commitment at the accuser's identifier (the accused cheated), false when the
    /// complaint is unfounded (the accuser lied).
    /// </summary>
    public static bool VerifyComplaint(DkgSession session, DkgComplaint complaint, DkgRound1Package accusedBroadcast)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(complaint);
        ArgumentNullException.ThrowIfNull(accusedBroadcast);
        if (!accusedBroadcast.Sender.Equals(complaint.Accused) || !session.Receivers.Contains(complaint.Accuser))
        {
            throw ThresholdErrors.Argument(nameof(complaint), "complaint and broadcast do not match");
        }

        IReadOnlyList<Element?> c = session.Kind == DkgKind.Refresh ? [null, .. accusedBroadcast.Commitment] : [.. accusedBroadcast.Commitment];
        return !session.Suite.BaseMul(complaint.Evidence).ValueEquals(Polynomials.EvaluateCommitment(session.Suite, c, complaint.Accuser.Value));
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
