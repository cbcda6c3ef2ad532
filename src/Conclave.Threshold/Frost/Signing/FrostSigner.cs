using Conclave.Crypto.Randomness;
using Conclave.Threshold.Frost.Ciphersuites;
using Conclave.Threshold.Frost.Internal;

namespace Conclave.Threshold.Frost;

/// <summary>The signer's two rounds (RFC 9591 sections 5.1 and 5.2).</summary>
public static class FrostSigner
{
    /// <summary>
    /// Round one, commit (RFC 9591 section 5.1): fresh hedged nonces (section 4.1) and their commitments.
    /// Can run ahead of time: the nonces do not depend on the message.
    /// </summary>
    public static SigningNonces Commit(KeyPackage keyPackage, IRandomSource? random = null)
    {
        ArgumentNullException.ThrowIfNull(keyPackage);
        return SigningNonces.Create(keyPackage.Identifier, keyPackage.Share, random ?? SystemRandomSource.Instance);
    }

    /// <summary>A batch of <paramref name="count"/> independent nonce pairs for a presigned nonce pool.</summary>
    public static IReadOnlyList<SigningNonces> CommitBatch(KeyPackage keyPackage, int count, IRandomSource? random = null)
    {
        ArgumentNullException.ThrowIfNull(keyPackage);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        random ??= SystemRandomSource.Instance;
        Scalar share = keyPackage.Share;
        var list = new SigningNonces[count];
        for (int i = 0; i < count; i++)
        {
            list[i] = SigningNonces.Create(keyPackage.Identifier, share, random);
        }

        return list;
    }

    /// <summary>
    /// Round two, sign (RFC 9591 section 5.2): z_i = d_i + e_i·ρ_i + λ_i·s_i·c. Consumes <paramref name="nonces"/>
    /// whatever the outcome. Refuses a package that does not carry this signer's own commitments unchanged,
    /// has fewer than t signers or names a participant outside the key.
    /// </summary>
    public static SignatureShare Sign(SigningPackage package, SigningNonces nonces, KeyPackage keyPackage)
    {
        ArgumentNullException.ThrowIfNull(package);
        ArgumentNullException.ThrowIfNull(nonces);
        ArgumentNullException.ThrowIfNull(keyPackage);
        (Scalar d, Scalar e) = nonces.Consume();
        FrostCiphersuite suite = keyPackage.Suite;
        if (!ReferenceEquals(package.Suite, suite) || !ReferenceEquals(nonces.Suite, suite))
        {
            throw ThresholdErrors.WrongSuite(nameof(package), suite);
        }

        if (!nonces.Identifier.Equals(keyPackage.Identifier))
        {
            throw ThresholdErrors.Argument(nameof(nonces), "the nonces belong to another participant");
        }

        SigningCommitments? mine = package.Find(keyPackage.Identifier);
        if (mine is null || !mine.SameAs(nonces.Commitments))
        {
            throw ThresholdErrors.Argument(nameof(package), "the signing package does not carry this signer's commitments");
        }

        CheckSigners(package, keyPackage.PublicKeyPackage);
        return SignCore(package, d, e, keyPackage);
    }

    /// <summary>The round-two arithmetic, after the checks (benchmarks call it directly with fixed nonces).</summary>
    internal static SignatureShare SignCore(SigningPackage package, Scalar d, Scalar e, KeyPackage keyPackage)
    {
        FrostCiphersuite suite = keyPackage.Suite;
        SigningContext ctx = SigningContext.Compute(package, keyPackage.PublicKeyPackage.GroupKey);
        Scalar lambda = Polynomials.Lagrange(suite, package.Signers, keyPackage.Identifier);
        Scalar share = keyPackage.Share;
        if (ctx.NegateKey)
        {
            share = -share;
        }

        Scalar noncePart = d + (e * ctx.BindingFactors[keyPackage.Identifier]);
        if (ctx.NegateNonces)
        {
            noncePart = -noncePart;
        }

        return new SignatureShare(keyPackage.Identifier, noncePart + (lambda * share * ctx.Challenge));
    }

    internal static void CheckSigners(SigningPackage package, PublicKeyPackage key)
    {
        if (package.Commitments.Count < key.Threshold)
        {
            throw ThresholdErrors.Argument(nameof(package), $"{package.Commitments.Count} signers are fewer than the threshold {key.Threshold}");
        }

        List<Identifier> strangers = [.. package.Signers.Where(id => !key.Contains(id))];
        if (strangers.Count > 0)
        {
            throw ThresholdErrors.Protocol(ThresholdFailure.UnexpectedParticipant, strangers, "the signing package names participants outside the key");
        }
    }
}
