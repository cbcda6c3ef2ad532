using Conclave.Crypto.Secp256k1;

namespace Conclave.Threshold.Frost.Ciphersuites;

/// <summary>secp256k1 scalars (32-byte big-endian, RFC 9591 section 6.5).</summary>
internal sealed class K1Scalar(Secp256k1Scalar value) : Scalar
{
    internal readonly Secp256k1Scalar Value = value;

    public override Scalar Add(Scalar other) => new K1Scalar(Value + ((K1Scalar)other).Value);

    public override Scalar Sub(Scalar other) => new K1Scalar(Value - ((K1Scalar)other).Value);

    public override Scalar Mul(Scalar other) => new K1Scalar(Value * ((K1Scalar)other).Value);

    public override Scalar Negate() => new K1Scalar(-Value);

    public override Scalar Invert() => new K1Scalar(Value.Invert());

    public override Scalar InvertPublic()
    {
        if (Value.IsZero)
        {
            throw new ArithmeticException("zero has no inverse modulo the group order");
        }

        System.Numerics.BigInteger inv = PublicInverse.Compute(new System.Numerics.BigInteger(Value.ToBytes(), isUnsigned: true, isBigEndian: true), Secp256k1Scalar.Order);
        byte[] be = new byte[32];
        _ = inv.TryWriteBytes(be.AsSpan(32 - inv.GetByteCount(isUnsigned: true)), out _, isUnsigned: true, isBigEndian: true);
        return new K1Scalar(Secp256k1Scalar.FromBytes(be));
    }

    public override bool IsZero => Value.IsZero;

    public override int Size => 32;

    public override void WriteTo(Span<byte> destination) => Value.WriteTo(destination);

    public override bool ValueEquals(Scalar other) => other is K1Scalar k && Value.Equals(k.Value);
}

/// <summary>secp256k1 points (33-byte SEC1 compressed, RFC 9591 section 6.5).</summary>
internal sealed class K1Element(Secp256k1Point value) : Element
{
    internal readonly Secp256k1Point Value = value;

    public override Element Add(Element other) => new K1Element(Value + ((K1Element)other).Value);

    public override Element Sub(Element other) => new K1Element(Value - ((K1Element)other).Value);

    public override Element Negate() => new K1Element(Value.Negate());

    /// <summary>k·P, variable time in k (<see cref="Secp256k1Point.MultiplyPublic"/>): public scalars only; secret k·G goes through BaseMul.</summary>
    public override Element Mul(Scalar k) => new K1Element(Value.MultiplyPublic(((K1Scalar)k).Value));

    public override bool IsIdentity => Value.IsIdentity;

    public override int Size => 33;

    public override void WriteTo(Span<byte> destination)
    {
        if (Value.IsIdentity)
        {
            throw ThresholdErrors.IdentityElement("element");
        }

        Value.WriteCompressed(destination);
    }

    public override bool ValueEquals(Element other) => other is K1Element k && Value.Equals(k.Value);

    public override bool HasOddY => !Value.IsIdentity && !Value.HasEvenY;

    public override byte[] XOnly() => Value.ToXOnly();
}

/// <summary>Modular inverse of public values by the extended Euclidean algorithm (variable time).</summary>
internal static class PublicInverse
{
    internal static System.Numerics.BigInteger Compute(System.Numerics.BigInteger a, System.Numerics.BigInteger m)
    {
        System.Numerics.BigInteger r0 = m, r1 = a % m, t0 = 0, t1 = 1;
        while (!r1.IsZero)
        {
            System.Numerics.BigInteger q = System.Numerics.BigInteger.DivRem(r0, r1, out System.Numerics.BigInteger rem);
            (r0, r1) = (r1, rem);
            (t0, t1) = (t1, t0 - (q * t1));
        }

        if (!r0.IsOne)
        {
            throw new ArithmeticException("no inverse");
        }

        return t0.Sign < 0 ? t0 + m : t0;
    }
}
