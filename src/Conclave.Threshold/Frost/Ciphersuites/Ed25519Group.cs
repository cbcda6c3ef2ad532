using Conclave.Crypto.Ed25519;

namespace Conclave.Threshold.Frost.Ciphersuites;

/// <summary>ed25519 scalars (32-byte little-endian, RFC 9591 section 6.1).</summary>
internal sealed class EdScalar(Ed25519Scalar value) : Scalar
{
    internal readonly Ed25519Scalar Value = value;

    public override Scalar Add(Scalar other) => new EdScalar(Value + ((EdScalar)other).Value);

    public override Scalar Sub(Scalar other) => new EdScalar(Value - ((EdScalar)other).Value);

    public override Scalar Mul(Scalar other) => new EdScalar(Value * ((EdScalar)other).Value);

    public override Scalar Negate() => new EdScalar(-Value);

    public override Scalar Invert() => new EdScalar(Value.Invert());

    private static readonly System.Numerics.BigInteger s_order = System.Numerics.BigInteger.Parse("7237005577332262213973186563042994240857116359379907606001950938285454250989", System.Globalization.CultureInfo.InvariantCulture);

    public override Scalar InvertPublic()
    {
        if (Value.IsZero)
        {
            throw new ArithmeticException("zero has no inverse modulo the group order");
        }

        System.Numerics.BigInteger inv = PublicInverse.Compute(new System.Numerics.BigInteger(Value.ToBytes(), isUnsigned: true, isBigEndian: false), s_order);
        byte[] le = new byte[32];
        _ = inv.TryWriteBytes(le, out _, isUnsigned: true, isBigEndian: false);
        return new EdScalar(Ed25519Scalar.FromBytes(le));
    }

    public override bool IsZero => Value.IsZero;

    public override int Size => 32;

    public override void WriteTo(Span<byte> destination) => Value.WriteTo(destination);

    public override bool ValueEquals(Scalar other) => other is EdScalar k && Value.Equals(k.Value);
}

/// <summary>ed25519 points (32-byte RFC 8032 encoding, RFC 9591 section 6.1).</summary>
internal sealed class EdElement(Ed25519Point value) : Element
{
    internal readonly Ed25519Point Value = value;

    public override Element Add(Element other) => new EdElement(Value + ((EdElement)other).Value);

    public override Element Sub(Element other) => new EdElement(Value - ((EdElement)other).Value);

    public override Element Negate() => new EdElement(-Value);

    public override Element Mul(Scalar k) => new EdElement(Value.Multiply(((EdScalar)k).Value));

    public override bool IsIdentity => Value.IsIdentity;

    public override int Size => 32;

    public override void WriteTo(Span<byte> destination)
    {
        if (Value.IsIdentity)
        {
            throw ThresholdErrors.IdentityElement("element");
        }

        Value.WriteTo(destination);
    }

    public override bool ValueEquals(Element other) => other is EdElement k && Value.Equals(k.Value);
}
