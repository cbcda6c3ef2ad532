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

    public override Element Mul(Scalar k) => new K1Element(Value.Multiply(((K1Scalar)k).Value));

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
