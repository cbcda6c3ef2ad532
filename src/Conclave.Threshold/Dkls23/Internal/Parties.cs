using Conclave.Crypto.Secp256k1;
using Conclave.Threshold.Frost;
using Conclave.Threshold.Frost.Ciphersuites;

namespace Conclave.Threshold.Dkls23.Internal;

/// <summary>Party identifiers as secp256k1 scalars, and Lagrange coefficients at zero over a signer set.</summary>
internal static class Parties
{
    internal static bool IsSecp256k1(Identifier id) => id.Suite.SchemeName == "frost-secp256k1";

    /// <summary>The identifier as a scalar; refuses other suites and zero (Identifier already refuses ≡ 0 mod n).</summary>
    internal static Secp256k1Scalar X(Identifier id)
    {
        if (!IsSecp256k1(id))
        {
            throw DklsErrors.Refused(DklsFailure.InvalidParticipant, $"participant {id} is not a frost-secp256k1 identifier");
        }

        var s = Secp256k1Scalar.FromBytes(id.Encoded, "identifier");
        return s.IsZero ? throw DklsErrors.Refused(DklsFailure.InvalidParticipant, "participant identifier zero") : s;
    }

    /// <summary>λ_i = Π_{j≠i} x_j / (x_j − x_i): the Lagrange coefficient at zero (Shamir reconstruction).</summary>
    internal static Secp256k1Scalar Lagrange(IReadOnlyList<Identifier> set, Identifier i)
    {
        Secp256k1Scalar xi = X(i), num = Secp256k1Scalar.One, den = Secp256k1Scalar.One;
        foreach (Identifier j in set)
        {
            if (j.Equals(i))
            {
                continue;
            }

            Secp256k1Scalar xj = X(j);
            num *= xj;
            den *= xj - xi;
        }

        return num * InvertPublic(den);
    }

    /// <summary>λ_i(x) = Π_{j≠i} (x − x_j) / (x_i − x_j): the Lagrange basis polynomial of i at x (public values).</summary>
    internal static Secp256k1Scalar LagrangeAt(IReadOnlyList<Identifier> set, Identifier i, Secp256k1Scalar x)
    {
        Secp256k1Scalar xi = X(i), num = Secp256k1Scalar.One, den = Secp256k1Scalar.One;
        foreach (Identifier j in set)
        {
            if (j.Equals(i))
            {
                continue;
            }

            Secp256k1Scalar xj = X(j);
            num *= x - xj;
            den *= xi - xj;
        }

        return num * InvertPublic(den);
    }

    /// <summary>
    /// The inverse of a public non-zero value (a product of identifier differences), by the variable-time extended Euclid
    /// the FROST aggregation uses (<see cref="PublicInverse"/>) instead of the constant-time exponentiation, which costs
    /// about 380 Montgomery multiplications: identifiers and signer sets are public.
    /// </summary>
    private static Secp256k1Scalar InvertPublic(Secp256k1Scalar value)
    {
        if (value.IsZero)
        {
            throw new ArithmeticException("zero has no inverse modulo the group order");
        }

        System.Numerics.BigInteger inv = PublicInverse.Compute(new System.Numerics.BigInteger(value.ToBytes(), isUnsigned: true, isBigEndian: true), Secp256k1Scalar.Order);
        byte[] be = new byte[32];
        _ = inv.TryWriteBytes(be.AsSpan(32 - inv.GetByteCount(isUnsigned: true)), out _, isUnsigned: true, isBigEndian: true);
        return Secp256k1Scalar.FromBytes(be);
    }

    /// <summary>Reads a 32-byte identifier from a message header: canonical, non-zero, secp256k1.</summary>
    internal static Identifier Read(ReadOnlySpan<byte> encoded, string field)
    {
        if (encoded.Length != 32 || !Secp256k1Scalar.TryFromBytes(encoded, out Secp256k1Scalar s) || s.IsZero)
        {
            throw DklsErrors.DropInvalidParticipant(field);
        }

        return Identifier.Read(FrostCiphersuite.All.First(c => c.SchemeName == "frost-secp256k1"), encoded, field);
    }
}
