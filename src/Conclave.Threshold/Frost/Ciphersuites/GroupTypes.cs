namespace Conclave.Threshold.Frost.Ciphersuites;

/// <summary>
/// A scalar of a ciphersuite's prime-order group (RFC 9591 section 3.1, "Scalar").
/// The generic FROST core computes with these; each ciphersuite supplies the concrete type.
/// Transient: values may be secret; long-lived secrets are kept in SecretBuffers by the packages.
/// </summary>
internal abstract class Scalar
{
    public abstract Scalar Add(Scalar other);

    public abstract Scalar Sub(Scalar other);

    public abstract Scalar Mul(Scalar other);

    public abstract Scalar Negate();

    /// <summary>Multiplicative inverse; throws <see cref="ArithmeticException"/> for zero.</summary>
    public abstract Scalar Invert();

    public abstract bool IsZero { get; }

    /// <summary>
    /// Variable-time inverse, for public values only (Lagrange coefficients of public identifiers): the binary
    /// extended Euclid over big integers is an order of magnitude faster than the constant-time exponentiation.
    /// </summary>
    public abstract Scalar InvertPublic();

    /// <summary>SerializeScalar (RFC 9591 section 3.1): the ciphersuite's canonical fixed-size encoding.</summary>
    public abstract void WriteTo(Span<byte> destination);

    public abstract int Size { get; }

    /// <summary>Constant-time equality.</summary>
    public abstract bool ValueEquals(Scalar other);

    public byte[] ToBytes()
    {
        byte[] b = new byte[Size];
        WriteTo(b);
        return b;
    }

    public static Scalar operator +(Scalar a, Scalar b) => a.Add(b);

    public static Scalar operator -(Scalar a, Scalar b) => a.Sub(b);

    public static Scalar operator -(Scalar a) => a.Negate();

    public static Scalar operator *(Scalar a, Scalar b) => a.Mul(b);

    public override string ToString() => "Scalar(****)";
}

/// <summary>An element of a ciphersuite's prime-order group (RFC 9591 section 3.1, "Element"). Public data.</summary>
internal abstract class Element
{
    public abstract Element Add(Element other);

    public abstract Element Sub(Element other);

    public abstract Element Negate();

    public abstract Element Mul(Scalar k);

    public abstract bool IsIdentity { get; }

    /// <summary>SerializeElement (RFC 9591 section 3.1); throws for the identity, which has no encoding.</summary>
    public abstract void WriteTo(Span<byte> destination);

    public abstract int Size { get; }

    public abstract bool ValueEquals(Element other);

    /// <summary>True when the y coordinate is odd (only meaningful for secp256k1; BIP-340 even-Y handling).</summary>
    public virtual bool HasOddY => false;

    /// <summary>The x coordinate (secp256k1 only; BIP-340 x-only form).</summary>
    public virtual byte[] XOnly() => throw new NotSupportedException("x-only encoding exists only for secp256k1");

    public byte[] ToBytes()
    {
        byte[] b = new byte[Size];
        WriteTo(b);
        return b;
    }

    public static Element operator +(Element a, Element b) => a.Add(b);

    public static Element operator -(Element a, Element b) => a.Sub(b);

    public static Element operator -(Element a) => a.Negate();

    public static Element operator *(Element p, Scalar k) => p.Mul(k);

    public static Element operator *(Scalar k, Element p) => p.Mul(k);
}
