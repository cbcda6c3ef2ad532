using System.Security.Cryptography;
using Conclave.Crypto.Randomness;
using Conclave.Threshold.Frost.Ciphersuites;
using Conclave.Threshold.Frost.Internal;

namespace Conclave.Threshold.Frost;

/// <summary>DKG transcripts, confirmations and key assembly (see <see cref="Dkg"/>).</summary>
public static partial class Dkg
{
    /// <summary>
    /// c = HDKG(length-prefixed transcript: domain, session digest (which binds the session id, kind, threshold and
    /// all participants), prover id, every commitment, R). Full-length challenge, one repetition.
    /// </summary>
    internal static Scalar ProofChallenge(DkgSession session, Identifier prover, IReadOnlyList<Element> commitment, Element r)
    {
        var t = new Transcript("Conclave/FROST/dkg-proof-of-knowledge/v1")
            .Append("session", session.Digest)
            .Append("prover", prover.Encoded)
            .Append("commitment-count", (ulong)commitment.Count);
        foreach (Element c in commitment)
        {
            t.Append("commitment", c.ToBytes());
        }

        t.Append("R", r.ToBytes());
        return session.Suite.HDkg(t.ToArray());
    }

    internal static byte[] EchoDigest(DkgSession session, IEnumerable<DkgRound1Package> packages)
    {
        var t = new Transcript("Conclave/FROST/dkg-echo/v1").Append("session", session.Digest);
        foreach (DkgRound1Package p in packages.OrderBy(p => p.Sender))
        {
            t.Append("broadcast", p.ToBytes());
        }

        return SHA256.HashData(t.ToArray());
    }

    internal static byte[] ConfirmationDigest(DkgSession session, ReadOnlySpan<byte> echo, PublicKeyPackage key)
        => SHA256.HashData(new Transcript("Conclave/FROST/dkg-confirm/v1")
            .Append("session", session.Digest)
            .Append("echo", echo)
            .Append("key", key.ToBytes())
            .ToArray());

    internal static Scalar ConfirmationChallenge(DkgSession session, ReadOnlySpan<byte> digest, Identifier prover, Element verifyingShare, Element r)
        => session.Suite.HDkg(new Transcript("Conclave/FROST/dkg-confirm-proof/v1")
            .Append("session", session.Digest)
            .Append("digest", digest)
            .Append("prover", prover.Encoded)
            .Append("verifying-share", verifyingShare.ToBytes())
            .Append("R", r.ToBytes())
            .ToArray());

    internal static void CheckConfirmations(DkgSession session, PublicKeyPackage key, ReadOnlySpan<byte> digest, IReadOnlyCollection<DkgConfirmation> confirmations, Identifier self)
    {
        FrostCiphersuite suite = session.Suite;
        var seen = new Dictionary<Identifier, DkgConfirmation>();
        var culprits = new List<Identifier>();
        foreach (DkgConfirmation c in confirmations)
        {
            if (!ReferenceEquals(c.Suite, suite) || !session.Receivers.Contains(c.Sender) || !seen.TryAdd(c.Sender, c))
            {
                culprits.Add(c.Sender);
            }
        }

        List<Identifier> missing = [.. session.Receivers.Where(r => !r.Equals(self) && !seen.ContainsKey(r))];
        if (culprits.Count > 0 || missing.Count > 0)
        {
            throw ThresholdErrors.Protocol(ThresholdFailure.InvalidConfirmation, [.. culprits, .. missing], "confirmations missing, duplicated or from outside the session");
        }

        foreach ((Identifier sender, DkgConfirmation c) in seen)
        {
            bool ok = CryptographicOperations.FixedTimeEquals(c.Digest, digest);
            if (ok)
            {
                Element yi = key.VerifyingShare(sender);
                Scalar ch = ConfirmationChallenge(session, c.Digest, sender, yi, c.ProofR);
                ok = suite.MulAddBasePublic(yi, -ch, c.ProofZ).ValueEquals(c.ProofR);
            }

            if (!ok)
            {
                culprits.Add(sender);
            }
        }

        if (culprits.Count > 0)
        {
            throw ThresholdErrors.Protocol(ThresholdFailure.InvalidConfirmation, culprits, "confirmations that disagree with this participant's result or whose proof fails");
        }
    }

    /// <summary>
    /// For a dealer that receives nothing (an old member leaving in a reshare): after round two, checks every new
    /// member's confirmation against the key it computes from the same broadcasts, and returns that public key
    /// package. Only when this succeeds may the leaving member delete its old share (DESIGN.md safety rule 2).
    /// Consumes <paramref name="secret"/>.
    /// </summary>
    public static PublicKeyPackage ConfirmAsDealer(DkgRound2Secret secret, IReadOnlyCollection<DkgConfirmation> confirmations)
    {
        ArgumentNullException.ThrowIfNull(secret);
        ArgumentNullException.ThrowIfNull(confirmations);
        DkgSession session = secret.Session;
        if (session.Receivers.Contains(secret.Self))
        {
            throw ThresholdErrors.Argument(nameof(secret), "receivers complete with DkgPendingKey.Complete");
        }

        byte[] echo = secret.EchoDigest.ToArray();
        IReadOnlyDictionary<Identifier, IReadOnlyList<Element?>> commitments = secret.Commitments;
        _ = secret.Consume();
        PublicKeyPackage key = BuildPublicKey(session, AggregateCommitments(session, commitments));
        CheckConfirmations(session, key, ConfirmationDigest(session, echo, key), confirmations, secret.Self);
        return key;
    }

    /// <summary>The aggregate commitment A_k = Σ_j C_jk (FROST paper Figure 1 round 2 step 4); null for an identity constant term.</summary>
    private static Element?[] AggregateCommitments(DkgSession session, IReadOnlyDictionary<Identifier, IReadOnlyList<Element?>> commitments)
    {
        var aggregate = new Element?[session.Threshold];
        for (int k = 0; k < aggregate.Length; k++)
        {
            List<Element> terms = [.. commitments.Values.Select(c => c[k]).OfType<Element>()];
            aggregate[k] = terms.Count == 0 ? null : session.Suite.Sum(terms);
            if (aggregate[k] is { IsIdentity: true })
            {
                aggregate[k] = null;
            }
        }

        return aggregate;
    }

    private static PublicKeyPackage BuildPublicKey(DkgSession session, Element?[] aggregate)
    {
        FrostCiphersuite suite = session.Suite;
        int t = session.Threshold;
        // PK_r = Σ_k A_k·r^k (+ old PK_r for refresh).

        Element groupKey;
        if (session.Kind == DkgKind.Refresh)
        {
            groupKey = session.OldKey!.GroupKey;
        }
        else
        {
            groupKey = aggregate[0] ?? throw ThresholdErrors.Protocol(ThresholdFailure.InvalidProofOfKnowledge, [], "the group key would be the identity");
            if (session.Kind == DkgKind.Reshare && !groupKey.ValueEquals(session.OldKey!.GroupKey))
            {
                throw ThresholdErrors.Protocol(ThresholdFailure.InvalidReshareCommitment, [], "the reshared constant terms do not add up to the group key");
            }
        }

        var shares = new List<KeyValuePair<Identifier, Element>>(session.Receivers.Count);
        foreach (Identifier r in session.Receivers)
        {
            Element y = Polynomials.EvaluateCommitment(suite, aggregate, r.Value);
            if (session.Kind == DkgKind.Refresh)
            {
                y = suite.Sum([y, session.OldKey!.VerifyingShare(r)]);
            }

            shares.Add(new(r, y));
        }

        byte[] chainCode = session.OldKey is null ? PublicKeyPackage.DefaultChainCode(suite, groupKey) : session.OldKey.ChainCode.ToArray();
        return new PublicKeyPackage(suite, t, groupKey, shares, chainCode);
    }
}
