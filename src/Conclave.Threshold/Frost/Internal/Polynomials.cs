using Conclave.Crypto.Randomness;
using Conclave.Threshold.Frost.Ciphersuites;

namespace Conclave.Threshold.Frost.Internal;

/// <summary>Polynomial and interpolation arithmetic (RFC 9591 section 4.2 and Appendix C).</summary>
internal static class Polynomials
{
    /// <summary>
    /// derive_interpolating_value(L, x_i) (RFC 9591 section 4.2): the Lagrange coefficient of x_i at 0 over L.
    /// Refuses x_i not in L and duplicates in L, so every inverse exists.
    /// </summary>
    internal static Scalar Lagrange(FrostCiphersuite suite, IReadOnlyList<Identifier> list, Identifier xi)
        => LagrangeAt(suite, list, xi, suite.ScalarZero);

    /// <summary>The Lagrange coefficient of x_i evaluated at x (used by repair, where x is the lost participant).</summary>
    internal static Scalar LagrangeAt(FrostCiphersuite suite, IReadOnlyList<Identifier> list, Identifier xi, Scalar x)
    {
        EnsureDistinct(list, "participants");
        if (!list.Contains(xi))
        {
            throw ThresholdErrors.Argument("participants", $"participant {xi} is not in the list");
        }

        Scalar num = suite.ScalarOne;
        Scalar den = suite.ScalarOne;
        foreach (Identifier xj in list)
        {
            if (xj.Equals(xi))
            {
                continue;
            }

            num *= xj.Value - x;
            den *= xj.Value - xi.Value;
        }

        return num * den.InvertPublic();
    }

    /// <summary>
    /// Every Lagrange coefficient at 0 over <paramref name="list"/> with a single (batched, Montgomery's trick)
    /// inversion: what the coordinator needs to verify t shares.
    /// </summary>
    internal static Dictionary<Identifier, Scalar> LagrangeAll(FrostCiphersuite suite, IReadOnlyList<Identifier> list)
    {
        EnsureDistinct(list, "participants");
        int n = list.Count;
        var nums = new Scalar[n];
        var dens = new Scalar[n];
        for (int i = 0; i < n; i++)
        {
            Scalar num = suite.ScalarOne, den = suite.ScalarOne;
            for (int j = 0; j < n; j++)
            {
                if (j != i)
                {
                    num *= list[j].Value;
                    den *= list[j].Value - list[i].Value;
                }
            }

            nums[i] = num;
            dens[i] = den;
        }

        // prefix[i] = dens[0]·…·dens[i−1]; one inversion of the full product, then walk back.
        var prefix = new Scalar[n + 1];
        prefix[0] = suite.ScalarOne;
        for (int i = 0; i < n; i++)
        {
            prefix[i + 1] = prefix[i] * dens[i];
        }

        Scalar inv = prefix[n].InvertPublic();
        var result = new Dictionary<Identifier, Scalar>(n);
        for (int i = n - 1; i >= 0; i--)
        {
            result[list[i]] = nums[i] * inv * prefix[i];
            inv *= dens[i];
        }

        return result;
    }

    internal static void EnsureDistinct(IReadOnlyList<Identifier> list, string parameter)
    {
        var seen = new HashSet<Identifier>();
        foreach (Identifier id in list)
        {
            if (!seen.Add(id))
            {
                throw ThresholdErrors.Argument(parameter, $"participant {id} appears twice");
            }
        }
    }

    /// <summary>polynomial_evaluate(x, coeffs) by Horner's rule (RFC 9591 Appendix C.1); coefficients from constant up.</summary>
    internal static Scalar Evaluate(IReadOnlyList<Scalar> coefficients, Scalar x)
    {
        Scalar value = coefficients[^1];
        for (int i = coefficients.Count - 2; i >= 0; i--)
        {
            value = (value * x) + coefficients[i];
        }

        return value;
    }

    /// <summary>
    /// Σ_k C_k·x^k: the public image of a Feldman VSS commitment at x (RFC 9591 Appendix C.2 vss_verify;
    /// FROST paper Figure 1 round 2 step 2). A null entry stands for the identity (zero constant term of refresh).
    /// </summary>
    internal static Element EvaluateCommitment(FrostCiphersuite suite, IReadOnlyList<Element?> commitment, Scalar x)
    {
        var terms = new List<Element>(commitment.Count);
        Scalar power = suite.ScalarOne;
        for (int k = 0; k < commitment.Count; k++)
        {
            Element? c = commitment[k];
            if (c is not null)
            {
                terms.Add(k == 0 ? c : c * power);
            }

            power *= x;
        }

        return suite.Sum(terms);
    }

    /// <summary>Random coefficients a_1..a_{t-1} after the given constant term.</summary>
    internal static Scalar[] RandomPolynomial(FrostCiphersuite suite, Scalar constant, int threshold, IRandomSource random)
    {
        var coeffs = new Scalar[threshold];
        coeffs[0] = constant;
        for (int i = 1; i < threshold; i++)
        {
            coeffs[i] = suite.RandomScalar(random);
        }

        return coeffs;
    }
}
