using System.Security.Cryptography;
using Conclave.Crypto.Interop;

namespace Conclave.Crypto.Ed25519;

/// <summary>
/// A point of the ed25519 prime-order subgroup, or the identity, kept in its 32-byte RFC 8032 encoding.
/// Parsing is strict (RFC 9591 section 6.5 DeserializeElement): the encoding must be canonical, on the curve,
/// in the prime-order subgroup and not of small order; the identity is refused by <see cref="TryParse"/>.
/// </summary>
public readonly struct Ed25519Point : IEquatable<Ed25519Point>
{
    public const int SizeInBytes = 32;

    // The identity (0, 1) encodes as 01 00 .. 00.
    private static readonly byte[] s_identity = CreateIdentity();

    private readonly byte[]? _enc;

    private Ed25519Point(byte[] enc) => _enc = enc;

    private static byte[] CreateIdentity()
    {
        byte[] b = new byte[SizeInBytes];
        b[0] = 1;
        return b;
    }

    public static Ed25519Point Identity => default;

    private ReadOnlySpan<byte> Enc => _enc ?? s_identity;

    public bool IsIdentity => Enc.SequenceEqual(s_identity);

    public static Ed25519Point Generator { get; } = MultiplyGenerator(Ed25519Scalar.One);

    /// <summary>k·B. k = 0 gives the identity.</summary>
    public static unsafe Ed25519Point MultiplyGenerator(Ed25519Scalar k)
    {
        if (k.IsZero)
        {
            return Identity;
        }

        Sodium.EnsureInitialized();
        Span<byte> n = stackalloc byte[32];
        byte[] r = new byte[SizeInBytes];
        try
        {
            k.WriteTo(n);
            fixed (byte* np = n)
            fixed (byte* q = r)
            {
                if (Sodium.crypto_scalarmult_ed25519_base_noclamp(q, np) != 0)
                {
                    return Identity;
                }
            }

            return new Ed25519Point(r);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(n);
        }
    }

    /// <summary>k·P. The identity or k = 0 gives the identity.</summary>
    public unsafe Ed25519Point Multiply(Ed25519Scalar k)
    {
        if (k.IsZero || IsIdentity)
        {
            return Identity;
        }

        Sodium.EnsureInitialized();
        Span<byte> n = stackalloc byte[32];
        byte[] r = new byte[SizeInBytes];
        try
        {
            k.WriteTo(n);
            fixed (byte* np = n)
            fixed (byte* p = Enc)
            fixed (byte* q = r)
            {
                // Fails only when the result is the identity (P is a validated prime-order point).
                if (Sodium.crypto_scalarmult_ed25519_noclamp(q, np, p) != 0)
                {
                    return Identity;
                }
            }

            return new Ed25519Point(r);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(n);
        }
    }

    public static Ed25519Point operator *(Ed25519Scalar k, Ed25519Point p) => p.Multiply(k);

    public static Ed25519Point operator *(Ed25519Point p, Ed25519Scalar k) => p.Multiply(k);

    public static unsafe Ed25519Point operator +(Ed25519Point a, Ed25519Point b)
    {
        Sodium.EnsureInitialized();
        byte[] r = new byte[SizeInBytes];
        fixed (byte* x = a.Enc)
        fixed (byte* y = b.Enc)
        fixed (byte* z = r)
        {
            if (Sodium.crypto_core_ed25519_add(z, x, y) != 0)
            {
                throw new CryptoOperationException("ed25519 point addition failed");
            }
        }

        return new Ed25519Point(r);
    }

    public static unsafe Ed25519Point operator -(Ed25519Point a, Ed25519Point b)
    {
        Sodium.EnsureInitialized();
        byte[] r = new byte[SizeInBytes];
        fixed (byte* x = a.Enc)
        fixed (byte* y = b.Enc)
        fixed (byte* z = r)
        {
            if (Sodium.crypto_core_ed25519_sub(z, x, y) != 0)
            {
                throw new CryptoOperationException("ed25519 point subtraction failed");
            }
        }

        return new Ed25519Point(r);
    }

    public static Ed25519Point operator -(Ed25519Point a) => Identity - a;

    public static Ed25519Point Sum(ReadOnlySpan<Ed25519Point> points)
    {
        Ed25519Point acc = Identity;
        foreach (Ed25519Point p in points)
        {
            acc += p;
        }

        return acc;
    }

    /// <summary>
    /// Parses a canonical encoding of a prime-order-subgroup point that is not the identity
    /// (libsodium crypto_core_ed25519_is_valid_point).
    /// </summary>
    public static unsafe bool TryParse(ReadOnlySpan<byte> encoded, out Ed25519Point point)
    {
        point = Identity;
        if (encoded.Length != SizeInBytes)
        {
            return false;
        }

        Sodium.EnsureInitialized();
        fixed (byte* p = encoded)
        {
            if (Sodium.crypto_core_ed25519_is_valid_point(p) != 1)
            {
                return false;
            }
        }

        point = new Ed25519Point(encoded.ToArray());
        return true;
    }

    public static Ed25519Point Parse(ReadOnlySpan<byte> encoded, string parameterName = "point")
        => TryParse(encoded, out Ed25519Point p)
            ? p
            : encoded.Length != SizeInBytes
                ? throw CryptoErrors.InvalidLength(parameterName, encoded.Length, SizeInBytes)
                : throw CryptoErrors.InvalidPoint(parameterName, "non-canonical, not on the curve, of small order, outside the prime-order subgroup, or the identity");

    public void WriteTo(Span<byte> destination32)
    {
        if (destination32.Length != SizeInBytes)
        {
            throw new ArgumentException("destination must be exactly 32 bytes", nameof(destination32));
        }

        Enc.CopyTo(destination32);
    }

    public byte[] ToBytes() => Enc.ToArray();

    public bool Equals(Ed25519Point other) => Enc.SequenceEqual(other.Enc);

    public override bool Equals(object? obj) => obj is Ed25519Point p && Equals(p);

    public override int GetHashCode() => BitConverter.ToInt32(Enc[..4]);

    public override string ToString() => $"Ed25519Point({Convert.ToHexStringLower(Enc)})";

    public static bool operator ==(Ed25519Point left, Ed25519Point right) => left.Equals(right);

    public static bool operator !=(Ed25519Point left, Ed25519Point right) => !left.Equals(right);
}
