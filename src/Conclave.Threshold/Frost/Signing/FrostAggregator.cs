using Conclave.Threshold.Frost.Ciphersuites;
using Conclave.Threshold.Frost.Internal;

namespace Conclave.Threshold.Frost;

/// <summary>The coordinator's last step (RFC 9591 sections 5.3 and 5.4) and signature verification.</summary>
public static class FrostAggregator
{
    /// <summary>
    /// Verifies every signature share against its signer's verifying share (section 5.4, identifiable abort:
    /// all bad shares are named in one <see cref="ThresholdProtocolException"/>), aggregates z = Σ z_i
    /// (section 5.3) and verifies the result under the group key before returning it: no invalid signature
    /// is ever returned (DESIGN.md safety rule 4).
    /// </summary>
    public static byte[] Aggregate(SigningPackage package, IReadOnlyCollection<SignatureShare> shares, PublicKeyPackage publicKeyPackage)
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
        var culprits = new List<Identifier>();
        var ziG = new List<Element>(signers.Count);
        Scalar z = suite.ScalarZero;
        foreach (Identifier id in signers)
        {
            Scalar zi = byId[id].Value;
            Element lhs = suite.BaseMul(zi);
            if (!VerifyShare(suite, ctx, lambdas[id], id, lhs, publicKeyPackage.VerifyingShare(id)))
            {
                culprits.Add(id);
            }

            ziG.Add(lhs);
            z += zi;
        }

        if (culprits.Count > 0)
        {
            throw ThresholdErrors.Protocol(ThresholdFailure.InvalidSignatureShare, culprits, "invalid signature shares");
        }

        byte[] signature = suite.EncodeSignature(ctx.GroupCommitment, z);
        if (!suite.VerifyAggregate(publicKeyPackage, package.Message, signature, ctx, suite.Sum(ziG)))
        {
            throw ThresholdErrors.Protocol(ThresholdFailure.InvalidAggregateSignature, [], "the aggregate signature does not verify");
        }

        return signature;
    }

    /// <summary>verify_signature_share (RFC 9591 section 5.4): z_i·G == (D_i + ρ_i·E_i) + (c·λ_i)·PK_i, with BIP-340 negations.</summary>
    internal static bool VerifyShare(FrostCiphersuite suite, SigningContext ctx, Scalar lambda, Identifier id, Element lhs, Element verifyingShare)
    {
        Element commShare = ctx.CommitmentShares[id];
        if (ctx.NegateNonces)
        {
            commShare = -commShare;
        }

        Element pki = ctx.NegateKey ? -verifyingShare : verifyingShare;
        Element rhs = suite.Sum([commShare, pki * (ctx.Challenge * lambda)]);
        return lhs.ValueEquals(rhs);
    }

    /// <summary>Verifies a final signature under the published verification key (<see cref="PublicKeyPackage.VerificationKey"/>).</summary>
    public static bool Verify(FrostCiphersuite suite, ReadOnlySpan<byte> verificationKey, ReadOnlySpan<byte> message, ReadOnlySpan<byte> signature)
    {
        ArgumentNullException.ThrowIfNull(suite);
        return suite.Verify(verificationKey, message, signature);
    }
}
