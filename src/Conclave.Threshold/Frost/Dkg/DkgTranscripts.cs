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

    /// <summary>
    /// The echo digest: SHA-256 over the session digest, every dealer's commitment and every round-one broadcast (own
    /// included), each in identifier order. Two participants with equal digests saw the same commitments and packages.
    /// </summary>
    internal static byte[] EchoDigest(DkgSession session, IEnumerable<DkgCommitment> commitments, IEnumerable<DkgRound1Package> packages)
    {
        var t = new Transcript("Conclave/FROST/dkg-echo/v2").Append("session", session.Digest);
        foreach (DkgCommitment c in commitments.OrderBy(c => c.Sender))
        {
            t.Append("commitment", c.ToBytes());
        }

        foreach (DkgRound1Package p in packages.OrderBy(p => p.Sender))
        {
            t.Append("broadcast", p.ToBytes());
        }

        return SHA256.HashData(t.ToArray());
    }

    /// <summary>The commitment to a round-one package: SHA-256(transcript(domain, session digest, dealer, package, signing key)).</summary>
    internal static byte[] PackageHash(DkgSession session, DkgRound1Package package, Element signingKey)
        => SHA256.HashData(new Transcript("Conclave/FROST/dkg-commit-package/v1")
            .Append("session", session.Digest)
            .Append("dealer", package.Sender.Encoded)
            .Append("package", package.ToBytes())
            .Append("signing-key", signingKey.ToBytes())
            .ToArray());

    /// <summary>
    /// The commitment to a chain-code contribution: SHA-256(transcript(domain, session digest, dealer, contribution)).
    /// Hiding because the contribution is 32 uniformly random bytes.
    /// </summary>
    internal static byte[] ContributionHash(DkgSession session, Identifier dealer, ReadOnlySpan<byte> contribution)
        => new Transcript("Conclave/FROST/dkg-commit-chain-code/v1", 512)
            .Append("session", session.Digest)
            .Append("dealer", dealer.Encoded)
            .Append("contribution", contribution)
            .HashAndClear();

    /// <summary>
    /// The chain code of a new key: SHA-256(transcript("Conclave/FROST/dkg-chain-code/v1", session digest, then for
    /// each dealer in identifier order its id and 32-byte contribution)). Uniformly random and unknown to anyone who
    /// lacks even one honest dealer's contribution, which only travels inside sealed round-two messages.
    /// </summary>
    internal static byte[] ChainCode(DkgSession session, IEnumerable<byte[]> contributionsInDealerOrder)
    {
        var t = new Transcript("Conclave/FROST/dkg-chain-code/v1", 256 + (session.Dealers.Count * 128)).Append("session", session.Digest);
        using IEnumerator<byte[]> e = contributionsInDealerOrder.GetEnumerator();
        foreach (Identifier d in session.Dealers)
        {
            if (!e.MoveNext())
            {
                throw new InvalidOperationException("one contribution per dealer");
            }

            t.Append("dealer", d.Encoded).Append("contribution", e.Current);
            CryptographicOperations.ZeroMemory(e.Current);
        }

        return t.HashAndClear();
    }

    /// <summary>m = SHA-256(transcript(domain, session, sender, recipient, signing key, echo, share, contribution)), zeroed after use.</summary>
    private static byte[] ShareMessage(DkgSession session, Identifier sender, Identifier recipient, Element signingKey, ReadOnlySpan<byte> echo, Scalar share, ReadOnlySpan<byte> contribution)
    {
        Span<byte> s = stackalloc byte[share.Size];
        try
        {
            share.WriteTo(s);
            return new Transcript("Conclave/FROST/dkg-share-message/v1", 1024)
                .Append("session", session.Digest)
                .Append("sender", sender.Encoded)
                .Append("recipient", recipient.Encoded)
                .Append("signing-key", signingKey.ToBytes())
                .Append("echo", echo)
                .Append("share", s)
                .Append("contribution", contribution)
                .HashAndClear();
        }
        finally
        {
            CryptographicOperations.ZeroMemory(s);
        }
    }

    private static Scalar ShareChallenge(DkgSession session, Identifier signer, Element signingKey, ReadOnlySpan<byte> message, Element r)
        => session.Suite.HDkg(new Transcript("Conclave/FROST/dkg-share-signature/v1")
            .Append("session", session.Digest)
            .Append("signer", signer.Encoded)
            .Append("signing-key", signingKey.ToBytes())
            .Append("message", message)
            .Append("R", r.ToBytes())
            .ToArray());

    /// <summary>A Schnorr signature (R = k·G, z = k + c·x) by a dealer on one round-two message.</summary>
    internal static (Element R, Scalar Z) SignShare(DkgSession session, Identifier sender, Identifier recipient, Scalar signingKey, Element signingPublic, ReadOnlySpan<byte> echo, Scalar share, ReadOnlySpan<byte> contribution, IRandomSource random)
    {
        FrostCiphersuite suite = session.Suite;
        byte[] m = ShareMessage(session, sender, recipient, signingPublic, echo, share, contribution);
        Scalar k = suite.RandomScalar(random);
        Element r = suite.BaseMul(k);
        return (r, k + (ShareChallenge(session, sender, signingPublic, m, r) * signingKey));
    }

    /// <summary>z·G − c·X == R.</summary>
    internal static bool VerifyShareSignature(DkgSession session, Identifier sender, Identifier recipient, Element signingKey, ReadOnlySpan<byte> echo, Scalar share, ReadOnlySpan<byte> contribution, Element r, Scalar z)
    {
        byte[] m = ShareMessage(session, sender, recipient, signingKey, echo, share, contribution);
        Scalar c = ShareChallenge(session, sender, signingKey, m, r);
        return session.Suite.MulAddBasePublic(signingKey, -c, z).ValueEquals(r);
    }

    /// <summary>
    /// SHA-256(transcript(domain, session digest, echo digest, public key package)). The package encoding includes
    /// the chain code, so participants that derived different chain codes confirm different digests.
    /// </summary>
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
        (_, _, byte[] contribution) = secret.Consume();
        CryptographicOperations.ZeroMemory(contribution);
        // A dealer-only participant exists only in a reshare, which keeps the old chain code.
        PublicKeyPackage key = BuildPublicKey(session, AggregateCommitments(session, commitments), session.OldKey!.ChainCode);
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

    private static PublicKeyPackage BuildPublicKey(DkgSession session, Element?[] aggregate, ReadOnlySpan<byte> chainCode)
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

        return new PublicKeyPackage(suite, t, groupKey, shares, chainCode);
    }
}
