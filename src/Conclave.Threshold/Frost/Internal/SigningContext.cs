using Conclave.Threshold.Frost.Ciphersuites;

namespace Conclave.Threshold.Frost.Internal;

/// <summary>
/// The values every signer and the coordinator derive from a signing package and the group key:
/// binding factors (RFC 9591 section 4.4), per-signer commitment shares D_i + ρ_i·E_i, the group commitment R
/// (section 4.5) and the challenge c (section 4.6). With BIP-340 suites the key is first normalised to even Y
/// and <see cref="NegateNonces"/> says whether R had odd Y (then every signer negates its nonces).
/// </summary>
internal sealed class SigningContext
{
    private SigningContext(Dictionary<Identifier, Scalar> bindingFactors, Dictionary<Identifier, Element> commitmentShares, Element r, Scalar challenge, bool negate, Element groupKey, bool negateKey)
    {
        BindingFactors = bindingFactors;
        CommitmentShares = commitmentShares;
        GroupCommitment = r;
        Challenge = challenge;
        NegateNonces = negate;
        GroupKey = groupKey;
        NegateKey = negateKey;
    }

    internal Dictionary<Identifier, Scalar> BindingFactors { get; }

    internal Dictionary<Identifier, Element> CommitmentShares { get; }

    internal Element GroupCommitment { get; }

    internal Scalar Challenge { get; }

    internal bool NegateNonces { get; }

    /// <summary>The (even-Y normalised, for BIP-340) group key.</summary>
    internal Element GroupKey { get; }

    /// <summary>True when the key had odd Y and shares / verifying shares are to be negated.</summary>
    internal bool NegateKey { get; }

    /// <summary>encode_group_commitment_list (RFC 9591 section 4.3).</summary>
    internal static byte[] EncodeCommitmentList(FrostCiphersuite suite, IReadOnlyList<SigningCommitments> list)
    {
        int s = suite.ScalarSizeInBytes, e = suite.ElementSizeInBytes;
        byte[] buf = new byte[list.Count * (s + (2 * e))];
        int o = 0;
        foreach (SigningCommitments c in list)
        {
            c.Identifier.Encoded.CopyTo(buf.AsSpan(o));
            o += s;
            c.Hiding.WriteTo(buf.AsSpan(o, e));
            o += e;
            c.Binding.WriteTo(buf.AsSpan(o, e));
            o += e;
        }

        return buf;
    }

    internal static SigningContext Compute(SigningPackage package, Element rawGroupKey)
    {
        FrostCiphersuite suite = package.Suite;
        bool negateKey = suite.RequiresEvenY && rawGroupKey.HasOddY;
        Element groupKey = negateKey ? -rawGroupKey : rawGroupKey;

        // compute_binding_factors (RFC 9591 section 4.4).
        byte[] pkEnc = groupKey.ToBytes();
        byte[] msgHash = suite.H4(package.Message);
        byte[] comHash = suite.H5(EncodeCommitmentList(suite, package.Commitments));
        int s = suite.ScalarSizeInBytes;
        byte[] rhoInput = [.. pkEnc, .. msgHash, .. comHash, .. new byte[s]];
        var factors = new Dictionary<Identifier, Scalar>(package.Commitments.Count);
        var shares = new Dictionary<Identifier, Element>(package.Commitments.Count);
        var terms = new List<Element>(package.Commitments.Count);
        foreach (SigningCommitments c in package.Commitments)
        {
            c.Identifier.Encoded.CopyTo(rhoInput.AsSpan(rhoInput.Length - s));
            Scalar rho = suite.H1(rhoInput);
            factors[c.Identifier] = rho;
            // compute_group_commitment (section 4.5): R = Σ D_i + ρ_i·E_i.
            Element share = suite.Sum([c.Hiding, c.Binding * rho]);
            shares[c.Identifier] = share;
            terms.Add(share);
        }

        Element r = suite.Sum(terms);
        if (r.IsIdentity)
        {
            // RFC 9591 section 4.5: the group commitment must not be the identity (no valid encoding).
            throw ThresholdErrors.Protocol(ThresholdFailure.InvalidSignatureShare, [], "the group commitment is the identity");
        }

        bool negateNonces = suite.RequiresEvenY && r.HasOddY;
        Element rEffective = negateNonces ? -r : r;
        Scalar challenge = suite.Challenge(rEffective, groupKey, package.Message);
        return new SigningContext(factors, shares, rEffective, challenge, negateNonces, groupKey, negateKey);
    }
}
