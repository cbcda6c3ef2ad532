using Conclave.Crypto.Randomness;
using Conclave.Threshold.Frost.Ciphersuites;
using Conclave.Threshold.Frost.Internal;

namespace Conclave.Threshold.Frost;

/// <summary>The commit step and round one (see <see cref="Dkg"/>).</summary>
public static partial class Dkg
{
    /// <summary>
    /// The first step of every DKG, refresh and reshare run: a dealer draws its polynomial (FROST paper Figure 1
    /// round 1 steps 1–4: coefficients, Feldman commitments, proof of knowledge of a_0), a per-run signing key and,
    /// for key generation, a 32-byte chain-code contribution, and returns only a <see cref="DkgCommitment"/> to
    /// broadcast; the round-one package stays inside the returned state until
    /// <see cref="Round1(DkgCommitSecret, IReadOnlyCollection{DkgCommitment})"/> has every dealer's commitment.
    /// A participant that only receives (a new member in a reshare) takes part too: it gets no commitment to send
    /// but must collect the dealers' commitments. <paramref name="currentKey"/> is required for refresh and for
    /// dealers of a reshare (its share is read, not consumed: keep it until the new key is complete).
    /// </summary>
    public static DkgCommitSecret Commit(DkgSession session, Identifier self, KeyPackage? currentKey = null, IRandomSource? random = null)
        => CommitCore(session, self, currentKey, random, default);

    /// <summary>
    /// Round one: once every dealer's commitment has arrived (this participant's own excluded, as for every
    /// broadcast), records them and reveals this participant's round-one package (<see cref="DkgRound1Secret.Package"/>,
    /// to broadcast). Consumes <paramref name="secret"/> whatever the outcome.
    /// </summary>
    public static DkgRound1Secret Round1(DkgCommitSecret secret, IReadOnlyCollection<DkgCommitment> received)
    {
        ArgumentNullException.ThrowIfNull(secret);
        ArgumentNullException.ThrowIfNull(received);
        DkgCommitment? own = secret.Commitment;
        DkgRound1Secret inner = secret.Release();
        try
        {
            DkgSession session = inner.Session;
            Identifier self = inner.Self;
            var all = new SortedDictionary<Identifier, DkgCommitment>();
            var culprits = new List<Identifier>();
            foreach (DkgCommitment c in received)
            {
                ArgumentNullException.ThrowIfNull(c, nameof(received));
                if (!ReferenceEquals(c.Suite, session.Suite) || c.Sender.Equals(self) || !session.Dealers.Contains(c.Sender) || !all.TryAdd(c.Sender, c))
                {
                    culprits.Add(c.Sender);
                }
            }

            if (own is not null)
            {
                all[self] = own;
            }

            culprits.AddRange(session.Dealers.Where(d => !all.ContainsKey(d)));
            if (culprits.Count > 0)
            {
                throw ThresholdErrors.Protocol(ThresholdFailure.UnexpectedParticipant, [.. culprits.Distinct()], "commitments missing, duplicated or from outside the session");
            }

            inner.Commitments = all;
            return inner;
        }
        catch
        {
            inner.Dispose();
            throw;
        }
    }

    /// <param name="contributionForTest">Non-empty only in tests: the chain-code contribution to use instead of a random one.</param>
    /// <param name="packageForTest">
    /// Null except in the fault-injecting test node: edits the round-one package before it is committed to, so a dealer
    /// that reveals a malformed package (a wrong commitment length, a bad proof of knowledge) still matches its own
    /// commitment and only the checks of round two can catch it.
    /// </param>
    internal static DkgCommitSecret CommitCore(DkgSession session, Identifier self, KeyPackage? currentKey, IRandomSource? random, ReadOnlySpan<byte> contributionForTest,
        Func<DkgRound1Package, DkgRound1Package>? packageForTest = null)
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
            return new DkgCommitSecret(new DkgRound1Secret(session, self, null, null, null), null);
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
        package = packageForTest?.Invoke(package) ?? package;
        Scalar signingKey = suite.RandomScalar(random);
        Element signingPublic = suite.BaseMul(signingKey);
        byte[] contribution = [];
        try
        {
            if (session.Kind == DkgKind.KeyGeneration)
            {
                contribution = new byte[DkgRound2Package.ContributionSizeInBytes];
                if (contributionForTest.IsEmpty)
                {
                    random.Fill(contribution);
                }
                else
                {
                    contributionForTest.CopyTo(contribution);
                }
            }

            var commit = new DkgCommitment(self, PackageHash(session, package, signingPublic), ContributionHash(session, self, contribution), signingPublic);
            var inner = new DkgRound1Secret(session, self, coeffs, session.Kind == DkgKind.Refresh ? currentKey!.Share : null, package, contribution, signingKey);
            return new DkgCommitSecret(inner, commit);
        }
        finally
        {
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(contribution);
        }
    }
}
