using System.Security.Cryptography;
using Conclave.Crypto.Interop;
using Conclave.Crypto.Randomness;

namespace Conclave.Crypto.Ed25519;

/// <summary>
/// An integer modulo the ed25519 group order L = 2^252 + 27742317777372353535851937790883648493 (RFC 8032 section 5.1),
/// encoded as 32 bytes little-endian. Arithmetic through libsodium's crypto_core_ed25519_scalar_* (constant time).
/// Transient value; long-lived secrets belong in a <see cref="Memory.SecretBuffer"/>.
/// </summary>
public readonly struct Ed25519Scalar : IEquatable<Ed25519Scalar>
{
    public const int SizeInBytes = 32;

    // L, little-endian.
    private static ReadOnlySpan<byte> Order =>
    [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
    ];

    private readonly byte[]? _le;

    private Ed25519Scalar(byte[] le) => _le = le;

    public static Ed25519Scalar Zero => default;

    public static Ed25519Scalar One => FromUInt64(1);

    private ReadOnlySpan<byte> Bytes => _le ?? (ReadOnlySpan<byte>)new byte[SizeInBytes];

    public bool IsZero
    {
        get
        {
            if (_le is null)
            {
                return true;
            }

            int acc = 0;
            foreach (byte b in _le)
            {
                acc |= b;
            }

            return acc == 0;
        }
    }

    public static Ed25519Scalar FromUInt64(ulong value)
    {
        byte[] b = new byte[SizeInBytes];
        BitConverter.TryWriteBytes(b, value);
        if (!BitConverter.IsLittleEndian)
        {
            Array.Reverse(b, 0, 8);
        }

        return new Ed25519Scalar(b);
    }

    /// <summary>Parses a canonical little-endian scalar (less than L).</summary>
    public static bool TryFromBytes(ReadOnlySpan<byte> bytes32, out Ed25519Scalar scalar)
    {
        scalar = default;
        if (bytes32.Length != SizeInBytes || !IsCanonical(bytes32))
        {
            return false;
        }

        scalar = new Ed25519Scalar(bytes32.ToArray());
        return true;
    }

    public static Ed25519Scalar FromBytes(ReadOnlySpan<byte> bytes32, string parameterName = "scalar")
        => TryFromBytes(bytes32, out Ed25519Scalar s) ? s : throw CryptoErrors.InvalidScalar(parameterName, bytes32.Length, SizeInBytes);

    /// <summary>Reduces a little-endian integer of up to 64 bytes modulo L (RFC 8032 "interpret as little-endian integer mod L").</summary>
    public static unsafe Ed25519Scalar FromBytesReduced(ReadOnlySpan<byte> littleEndian)
    {
        if (littleEndian.Length > 64)
        {
            throw new ArgumentException("at most 64 bytes can be reduced", nameof(littleEndian));
        }

        Sodium.EnsureInitialized();
        Span<byte> wide = stackalloc byte[64];
        wide.Clear();
        littleEndian.CopyTo(wide);
        byte[] r = new byte[SizeInBytes];
        try
        {
            fixed (byte* w = wide)
            fixed (byte* o = r)
            {
                Sodium.crypto_core_ed25519_scalar_reduce(o, w);
            }

            return new Ed25519Scalar(r);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(wide);
        }
    }

    /// <summary>A uniformly random non-zero scalar (64 random bytes reduced mod L).</summary>
    public static Ed25519Scalar Random(IRandomSource random)
    {
        ArgumentNullException.ThrowIfNull(random);
        Span<byte> buf = stackalloc byte[64];
        try
        {
            while (true)
            {
                random.Fill(buf);
                Ed25519Scalar s = FromBytesReduced(buf);
                if (!s.IsZero)
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

    /// <summary>Constant-time check that a 32-byte little-endian value is below L.</summary>
    internal static bool IsCanonical(ReadOnlySpan<byte> le32)
    {
        // Compare from the most significant byte: lt/eq flags without data-dependent branches.
        int gt = 0, eq = 1;
        ReadOnlySpan<byte> l = Order;
        for (int i = 31; i >= 0; i--)
        {
            int a = le32[i], b = l[i];
            gt |= ((b - a) >> 8) & eq;
            eq &= ((a ^ b) - 1) >> 8;
        }

        return (gt | eq) == 0;
    }

    public void WriteTo(Span<byte> destination32)
    {
        if (destination32.Length != SizeInBytes)
        {
            throw new ArgumentException("destination must be exactly 32 bytes", nameof(destination32));
        }

        Bytes.CopyTo(destination32);
    }

    public byte[] ToBytes() => Bytes.ToArray();

    public static unsafe Ed25519Scalar operator +(Ed25519Scalar a, Ed25519Scalar b)
    {
        Sodium.EnsureInitialized();
        byte[] r = new byte[SizeInBytes];
        fixed (byte* x = a.Bytes)
        fixed (byte* y = b.Bytes)
        fixed (byte* z = r)
        {
            Sodium.crypto_core_ed25519_scalar_add(z, x, y);
        }

        return new Ed25519Scalar(r);
    }

    public static unsafe Ed25519Scalar operator -(Ed25519Scalar a, Ed25519Scalar b)
    {
        Sodium.EnsureInitialized();
        byte[] r = new byte[SizeInBytes];
        fixed (byte* x = a.Bytes)
        fixed (byte* y = b.Bytes)
        fixed (byte* z = r)
        {
            Sodium.crypto_core_ed25519_scalar_sub(z, x, y);
        }

        return new Ed25519Scalar(r);
    }

    public static Ed25519Scalar operator -(Ed25519Scalar a) => Zero - a;

    public static unsafe Ed25519Scalar operator *(Ed25519Scalar a, Ed25519Scalar b)
    {
        Sodium.EnsureInitialized();
        byte[] r = new byte[SizeInBytes];
        fixed (byte* x = a.Bytes)
        fixed (byte* y = b.Bytes)
        fixed (byte* z = r)
        {
            Sodium.crypto_core_ed25519_scalar_mul(z, x, y);
        }

        return new Ed25519Scalar(r);
    }

    /// <summary>The multiplicative inverse; throws for zero.</summary>
    public unsafe Ed25519Scalar Invert()
    {
        Sodium.EnsureInitialized();
        byte[] r = new byte[SizeInBytes];
        fixed (byte* x = Bytes)
        fixed (byte* z = r)
        {
            if (Sodium.crypto_core_ed25519_scalar_invert(z, x) != 0)
            {
                throw new ArithmeticException("zero has no inverse modulo the group order");
            }
        }

        return new Ed25519Scalar(r);
    }

    public bool Equals(Ed25519Scalar other) => CryptographicOperations.FixedTimeEquals(Bytes, other.Bytes);

    public override bool Equals(object? obj) => obj is Ed25519Scalar s && Equals(s);

    public override int GetHashCode() => 0;

    public override string ToString() => "Ed25519Scalar(****)";

    public static bool operator ==(Ed25519Scalar left, Ed25519Scalar right) => left.Equals(right);

    public static bool operator !=(Ed25519Scalar left, Ed25519Scalar right) => !left.Equals(right);
}
