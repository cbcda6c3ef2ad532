using Conclave.Threshold.Frost.Ciphersuites;
using Conclave.Threshold.Frost.Internal;

namespace Conclave.Threshold.Frost;

/// <summary>How the aggregator checks shares.</summary>
public enum AggregationMode
{
    /// <summary>Every share is verified before aggregation (DESIGN.md safety rule 4), then the signature. The default.</summary>
    VerifyEachShare,

    /// <summary>
    /// The aggregate is verified first and shares only when it fails, to name the culprits (RFC 9591 section 5.3 /
    /// the ZcashFoundation implementation). Never returns an invalid signature; saves about one multiplication per
    /// share. Bad shares that cancel out exactly (only colluding signers can do that) yield a valid signature and
    /// go unnamed.
    /// </summary>
    VerifySignatureFirst,
}

/// <summary>The coordinator's last step (RFC 9591 sections 5.3 and 5.4) and signature verification.</summary>
public static class FrostAggregator
{
    /// <summary>
    /// Verifies every signature share against its signer's verifying share (section 5.4, identifiable abort:
    /// all bad shares are named in one <see cref="ThresholdProtocolException"/>), aggregates z = Σ z_i
    /// (section 5.3) and verifies the result under the group key before returning it: no invalid signature
    /// is ever returned (DESIGN.md safety rule 4).
    /// </summary>
    public static byte[] Aggregate(SigningPackage package, IReadOnlyCollection<SignatureShare> shares, PublicKeyPackage publicKeyPackage, AggregationMode mode = AggregationMode.VerifyEachShare)
    {
        ArgumentNullException.ThrowIfNull(package);
        ArgumentNullException.ThrowIfNull(shares);
        ArgumentNullException.ThrowIfNull(publicKeyPackage);
        FrostCiphersuite suite = publicKeyPackage.Suite;
        if (!ReferenceEquals(package.Suite, suite))
        {
            throw ThresholdErrors.WrongSuite(nameof(package), suite);
        }

        FrostSigner.CheckSigners(package, publicKeyPackage);
        var byId = new Dictionary<Identifier, SignatureShare>();
        foreach (SignatureShare s in shares)
        {
            if (!ReferenceEquals(s.Suite, suite))
            {
                throw ThresholdErrors.WrongSuite(nameof(shares), suite);
            }

            if (!byId.TryAdd(s.Identifier, s))
            {
                throw ThresholdErrors.Protocol(ThresholdFailure.UnexpectedParticipant, [s.Identifier], "two signature shares from one participant");
            }
        }

        IReadOnlyList<Identifier> signers = package.Signers;
        List<Identifier> missing = [.. signers.Where(id => !byId.ContainsKey(id))];
        List<Identifier> extra = [.. byId.Keys.Where(id => package.Find(id) is null)];
        if (missing.Count > 0 || extra.Count > 0)
        {
            throw ThresholdErrors.Protocol(ThresholdFailure.UnexpectedParticipant, [.. missing, .. extra], "signature shares do not match the signers of the package");
        }

        SigningContext ctx = SigningContext.Compute(package, publicKeyPackage.GroupKey);
        Dictionary<Identifier, Scalar> lambdas = Polynomials.LagrangeAll(suite, signers);
        Scalar z = suite.ScalarZero;
        foreach (Identifier id in signers)
        {
            z += byId[id].Value;
        }

        if (mode == AggregationMode.VerifyEachShare)
        {
            ThrowOnBadShares(suite, ctx, lambdas, signers, byId, publicKeyPackage);
        }

        byte[] signature = suite.EncodeSignature(ctx.GroupCommitment, z);
        if (!suite.VerifyAggregate(publicKeyPackage, package.Message, signature, ctx, suite.Identity))
        {
            // With VerifySignatureFirst this is where bad shares are found and named.
            ThrowOnBadShares(suite, ctx, lambdas, signers, byId, publicKeyPackage);
            throw ThresholdErrors.Protocol(ThresholdFailure.InvalidAggregateSignature, [], "the aggregate signature does not verify");
        }

        return signature;
    }

    private static void ThrowOnBadShares(FrostCiphersuite suite, SigningContext ctx, Dictionary<Identifier, Scalar> lambdas, IReadOnlyList<Identifier> signers, Dictionary<Identifier, SignatureShare> byId, PublicKeyPackage key)
    {
        var culprits = new List<Identifier>();
        foreach (Identifier id in signers)
        {
            if (!VerifyShare(suite, ctx, lambdas[id], id, byId[id].Value, key.VerifyingShare(id)))
            {
                culprits.Add(id);
            }
        }

        if (culprits.Count > 0)
        {
            throw ThresholdErrors.Protocol(ThresholdFailure.InvalidSignatureShare, culprits, "invalid signature shares");
        }
    }

    /// <summary>verify_signature_share (RFC 9591 section 5.4): z_i·G == (D_i + ρ_i·E_i) + (c·λ_i)·PK_i, with BIP-340 negations.</summary>
    internal static bool VerifyShare(FrostCiphersuite suite, SigningContext ctx, Scalar lambda, Identifier id, Scalar zi, Element verifyingShare)
    {
        Element commShare = ctx.CommitmentShares[id];
        if (ctx.NegateNonces)
        {
            commShare = -commShare;
        }

        Element pki = ctx.NegateKey ? -verifyingShare : verifyingShare;
        // Checked as D_i + ρ_i·E_i == z_i·G − (c·λ_i)·PK_i: one public multiply-add.
        return suite.MulAddBasePublic(pki, -(ctx.Challenge * lambda), zi).ValueEquals(commShare);
    }

    /// <summary>Verifies a final signature under the published verification key (<see cref="PublicKeyPackage.VerificationKey"/>).</summary>
    public static bool Verify(FrostCiphersuite suite, ReadOnlySpan<byte> verificationKey, ReadOnlySpan<byte> message, ReadOnlySpan<byte> signature)
    {
        ArgumentNullException.ThrowIfNull(suite);
        return suite.Verify(verificationKey, message, signature);
    }
}
