using System.Buffers.Binary;
using System.Globalization;
using System.Numerics;
using System.Security.Cryptography;
using Conclave.Crypto.Internal;
using Conclave.Crypto.Randomness;

namespace Conclave.Crypto.Secp256k1;

/// <summary>
/// An integer modulo the secp256k1 group order n (SEC 2 section 2.4.1), encoded as 32 bytes big-endian.
/// Arithmetic is constant time. A scalar may be secret: it never prints its value, and long-lived
/// secret scalars belong in a <see cref="Memory.SecretBuffer"/>; this struct is for transient values.
/// </summary>
public readonly struct Secp256k1Scalar : IEquatable<Secp256k1Scalar>
{
    /// <summary>Size of an encoded scalar.</summary>
    public const int SizeInBytes = 32;

    internal static readonly Montgomery256 Field = new(BigInteger.Parse(
        "0FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141", NumberStyles.HexNumber, CultureInfo.InvariantCulture));

    private readonly ulong _l0, _l1, _l2, _l3;

    private Secp256k1Scalar(ulong l0, ulong l1, ulong l2, ulong l3)
    {
        _l0 = l0;
        _l1 = l1;
        _l2 = l2;
        _l3 = l3;
    }

    public static Secp256k1Scalar Zero => default;

    public static Secp256k1Scalar One => new(1, 0, 0, 0);

    /// <summary>The group order n as a big integer (public).</summary>
    public static BigInteger Order => Field.Modulus;

    public bool IsZero => ((_l0 | _l1 | _l2 | _l3) == 0);

    public static Secp256k1Scalar FromUInt64(ulong value) => new(value, 0, 0, 0);

    /// <summary>Parses a canonical 32-byte big-endian scalar; false if the value is n or more.</summary>
    public static bool TryFromBytes(ReadOnlySpan<byte> bytes32, out Secp256k1Scalar scalar)
    {
        if (bytes32.Length != SizeInBytes)
        {
            scalar = default;
            return false;
        }

        ulong l3 = BinaryPrimitives.ReadUInt64BigEndian(bytes32[..8]);
        ulong l2 = BinaryPrimitives.ReadUInt64BigEndian(bytes32[8..16]);
        ulong l1 = BinaryPrimitives.ReadUInt64BigEndian(bytes32[16..24]);
        ulong l0 = BinaryPrimitives.ReadUInt64BigEndian(bytes32[24..32]);
        ulong ok = Field.LessThanModulusMask(l0, l1, l2, l3);
        scalar = new Secp256k1Scalar(l0 & ok, l1 & ok, l2 & ok, l3 & ok);
        return ok != 0;
    }

    /// <summary>Parses a canonical scalar or throws <see cref="CryptoFormatException"/>.</summary>
    public static Secp256k1Scalar FromBytes(ReadOnlySpan<byte> bytes32, string parameterName = "scalar")
        => TryFromBytes(bytes32, out Secp256k1Scalar s)
            ? s
            : throw CryptoErrors.InvalidScalar(parameterName, bytes32.Length, SizeInBytes);

    /// <summary>Reduces a big-endian integer of up to 64 bytes modulo n (used by hash_to_field).</summary>
    public static Secp256k1Scalar FromBytesReduced(ReadOnlySpan<byte> bigEndian)
    {
        if (bigEndian.Length > 64)
        {
            throw new ArgumentException("at most 64 bytes can be reduced", nameof(bigEndian));
        }

        Span<byte> wide = stackalloc byte[64];
        wide.Clear();
        bigEndian.CopyTo(wide[(64 - bigEndian.Length)..]);
        try
        {
            Secp256k1Scalar hi = Reduce256(wide[..32]);
            Secp256k1Scalar lo = Reduce256(wide[32..]);
            Field.MulR(hi._l0, hi._l1, hi._l2, hi._l3, out ulong h0, out ulong h1, out ulong h2, out ulong h3);
            return new Secp256k1Scalar(h0, h1, h2, h3) + lo;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(wide);
        }
    }

    private static Secp256k1Scalar Reduce256(ReadOnlySpan<byte> be32)
    {
        ulong l3 = BinaryPrimitives.ReadUInt64BigEndian(be32[..8]);
        ulong l2 = BinaryPrimitives.ReadUInt64BigEndian(be32[8..16]);
        ulong l1 = BinaryPrimitives.ReadUInt64BigEndian(be32[16..24]);
        ulong l0 = BinaryPrimitives.ReadUInt64BigEndian(be32[24..32]);
        Field.ReduceOnce(0, l0, l1, l2, l3, out ulong r0, out ulong r1, out ulong r2, out ulong r3);
        return new Secp256k1Scalar(r0, r1, r2, r3);
    }

    /// <summary>A uniformly random non-zero scalar (rejection sampling).</summary>
    public static Secp256k1Scalar Random(IRandomSource random)
    {
        ArgumentNullException.ThrowIfNull(random);
        Span<byte> buf = stackalloc byte[SizeInBytes];
        try
        {
            while (true)
            {
                random.Fill(buf);
                if (TryFromBytes(buf, out Secp256k1Scalar s) && !s.IsZero)
                {
                    return s;
                }
            }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(buf);
        }
    }

    public void WriteTo(Span<byte> destination32)
    {
        if (destination32.Length != SizeInBytes)
        {
            throw new ArgumentException("destination must be exactly 32 bytes", nameof(destination32));
        }

        BinaryPrimitives.WriteUInt64BigEndian(destination32[..8], _l3);
        BinaryPrimitives.WriteUInt64BigEndian(destination32[8..16], _l2);
        BinaryPrimitives.WriteUInt64BigEndian(destination32[16..24], _l1);
        BinaryPrimitives.WriteUInt64BigEndian(destination32[24..32], _l0);
    }

    public byte[] ToBytes()
    {
        byte[] b = new byte[SizeInBytes];
        WriteTo(b);
        return b;
    }

    public static Secp256k1Scalar operator +(Secp256k1Scalar a, Secp256k1Scalar b)
    {
        Field.Add(a._l0, a._l1, a._l2, a._l3, b._l0, b._l1, b._l2, b._l3, out ulong r0, out ulong r1, out ulong r2, out ulong r3);
        return new Secp256k1Scalar(r0, r1, r2, r3);
    }

    public static Secp256k1Scalar operator -(Secp256k1Scalar a, Secp256k1Scalar b)
    {
        Field.Sub(a._l0, a._l1, a._l2, a._l3, b._l0, b._l1, b._l2, b._l3, out ulong r0, out ulong r1, out ulong r2, out ulong r3);
        return new Secp256k1Scalar(r0, r1, r2, r3);
    }

    public static Secp256k1Scalar operator -(Secp256k1Scalar a) => Zero - a;

    public static Secp256k1Scalar operator *(Secp256k1Scalar a, Secp256k1Scalar b)
    {
        Field.Mul(a._l0, a._l1, a._l2, a._l3, b._l0, b._l1, b._l2, b._l3, out ulong r0, out ulong r1, out ulong r2, out ulong r3);
        return new Secp256k1Scalar(r0, r1, r2, r3);
    }

    /// <summary>This scalar prepared for many multiplications (<see cref="Secp256k1ScalarMultiplier"/>).</summary>
    public Secp256k1ScalarMultiplier ToMultiplier()
    {
        Field.MulR(_l0, _l1, _l2, _l3, out ulong m0, out ulong m1, out ulong m2, out ulong m3);
        return new Secp256k1ScalarMultiplier(m0, m1, m2, m3);
    }

    /// <summary>
    /// This scalar times a bit, <paramref name="bit"/> ∈ {0, 1}: the same value as <c>this * FromUInt64(bit)</c>, in
    /// constant time (a mask, no multiplication and no branch on the bit).
    /// </summary>
    public Secp256k1Scalar MultiplyByBit(int bit)
    {
        if ((uint)bit > 1)
        {
            throw new ArgumentOutOfRangeException(nameof(bit), "a bit is 0 or 1");
        }

        ulong mask = unchecked(0UL - (ulong)bit);
        return new Secp256k1Scalar(_l0 & mask, _l1 & mask, _l2 & mask, _l3 & mask);
    }

    /// <summary>this·m·2^-256 mod n: with m = k·2^256 mod n (a multiplier), this·k.</summary>
    internal Secp256k1Scalar MontgomeryMultiply(ulong m0, ulong m1, ulong m2, ulong m3)
    {
        Field.MontMul(_l0, _l1, _l2, _l3, m0, m1, m2, m3, out ulong r0, out ulong r1, out ulong r2, out ulong r3);
        return new Secp256k1Scalar(r0, r1, r2, r3);
    }

    /// <summary>The multiplicative inverse; throws for zero, which has none.</summary>
    public Secp256k1Scalar Invert()
    {
        if (IsZero)
        {
            throw new ArithmeticException("zero has no inverse modulo the group order");
        }

        Field.Invert(_l0, _l1, _l2, _l3, out ulong r0, out ulong r1, out ulong r2, out ulong r3);
        return new Secp256k1Scalar(r0, r1, r2, r3);
    }

    /// <summary>Constant-time equality.</summary>
    public bool Equals(Secp256k1Scalar other)
        => ((_l0 ^ other._l0) | (_l1 ^ other._l1) | (_l2 ^ other._l2) | (_l3 ^ other._l3)) == 0;

    public override bool Equals(object? obj) => obj is Secp256k1Scalar s && Equals(s);

    /// <summary>Scalars may be secret; the hash code does not depend on the value.</summary>
    public override int GetHashCode() => 0;

    public override string ToString() => "Secp256k1Scalar(****)";

    public static bool operator ==(Secp256k1Scalar left, Secp256k1Scalar right) => left.Equals(right);

    public static bool operator !=(Secp256k1Scalar left, Secp256k1Scalar right) => !left.Equals(right);

    internal BigInteger ToBigInteger()
    {
        Span<byte> b = stackalloc byte[32];
        WriteTo(b);
        return new BigInteger(b, isUnsigned: true, isBigEndian: true);
    }
}
