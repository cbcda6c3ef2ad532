using System.Security.Cryptography;
using Conclave.Crypto.Interop;
using static Conclave.Crypto.Interop.Secp256k1Native;

namespace Conclave.Crypto.Secp256k1;

/// <summary>
/// A point of the secp256k1 group (SEC 2 section 2.4.1), or the identity. Public data.
/// Parsing validates fully: length, prefix (compressed 02/03, uncompressed 04; the hybrid 06/07 form is refused)
/// and that the point lies on the curve (libsecp256k1 secp256k1_ec_pubkey_parse). secp256k1 has cofactor 1,
/// so every point on the curve other than the identity is in the prime-order group.
/// </summary>
public readonly struct Secp256k1Point : IEquatable<Secp256k1Point>
{
    public const int CompressedSizeInBytes = 33;
    public const int UncompressedSizeInBytes = 65;
    public const int XOnlySizeInBytes = 32;

    // libsecp256k1's opaque 64-byte secp256k1_pubkey; null for the identity.
    private readonly byte[]? _raw;

    private Secp256k1Point(byte[] raw) => _raw = raw;

    public static Secp256k1Point Identity => default;

    public bool IsIdentity => _raw is null;

    /// <summary>The generator G.</summary>
    public static Secp256k1Point Generator { get; } = MultiplyGenerator(Secp256k1Scalar.One);

    /// <summary>k·G. k = 0 gives the identity.</summary>
    public static unsafe Secp256k1Point MultiplyGenerator(Secp256k1Scalar k)
    {
        if (k.IsZero)
        {
            return Identity;
        }

        Span<byte> sk = stackalloc byte[32];
        byte[] raw = new byte[PubkeySize];
        try
        {
            k.WriteTo(sk);
            fixed (byte* s = sk)
            fixed (byte* p = raw)
            {
                if (secp256k1_ec_pubkey_create(Secp256k1Context.Ptr, p, s) != 1)
                {
                    throw new CryptoOperationException("secp256k1 base multiplication failed");
                }
            }

            return new Secp256k1Point(raw);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(sk);
        }
    }

    /// <summary>
    /// k·P for a PUBLIC scalar k. VARIABLE TIME: libsecp256k1's <c>secp256k1_ec_pubkey_tweak_mul</c> uses its
    /// variable-time multiplication (ecmult), so its timing depends on k. Never pass a secret (a private key, a share,
    /// a nonce); for k·G with a secret k use <see cref="MultiplyGenerator"/>, which is constant time. No constant-time
    /// k·P exists here because no caller needs one yet.
    /// </summary>
    public unsafe Secp256k1Point MultiplyPublic(Secp256k1Scalar k)
    {
        if (_raw is null || k.IsZero)
        {
            return Identity;
        }

        Span<byte> t = stackalloc byte[32];
        byte[] raw = (byte[])_raw.Clone();
        try
        {
            k.WriteTo(t);
            fixed (byte* s = t)
            fixed (byte* p = raw)
            {
                if (secp256k1_ec_pubkey_tweak_mul(Secp256k1Context.Ptr, p, s) != 1)
                {
                    throw new CryptoOperationException("secp256k1 point multiplication failed");
                }
            }

            return new Secp256k1Point(raw);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(t);
        }
    }

    /// <summary>k·P through <see cref="MultiplyPublic"/>: VARIABLE TIME, public scalars only.</summary>
    public static Secp256k1Point operator *(Secp256k1Scalar k, Secp256k1Point p) => p.MultiplyPublic(k);

    /// <summary>P·k through <see cref="MultiplyPublic"/>: VARIABLE TIME, public scalars only.</summary>
    public static Secp256k1Point operator *(Secp256k1Point p, Secp256k1Scalar k) => p.MultiplyPublic(k);

    public static Secp256k1Point operator +(Secp256k1Point a, Secp256k1Point b)
    {
        if (a._raw is null)
        {
            return b;
        }

        if (b._raw is null)
        {
            return a;
        }

        return Sum([a, b]);
    }

    public static Secp256k1Point operator -(Secp256k1Point a) => a.Negate();

    public static Secp256k1Point operator -(Secp256k1Point a, Secp256k1Point b) => a + b.Negate();

    /// <summary>The sum of many points in one call (secp256k1_ec_pubkey_combine).</summary>
    public static unsafe Secp256k1Point Sum(ReadOnlySpan<Secp256k1Point> points)
    {
        int count = 0;
        foreach (Secp256k1Point p in points)
        {
            if (p._raw is not null)
            {
                count++;
            }
        }

        if (count == 0)
        {
            return Identity;
        }

        var handles = new System.Runtime.InteropServices.GCHandle[count];
        byte** ptrs = stackalloc byte*[count];
        try
        {
            int i = 0;
            foreach (Secp256k1Point p in points)
            {
                if (p._raw is not null)
                {
                    handles[i] = System.Runtime.InteropServices.GCHandle.Alloc(p._raw, System.Runtime.InteropServices.GCHandleType.Pinned);
                    ptrs[i] = (byte*)handles[i].AddrOfPinnedObject();
                    i++;
                }
            }

            byte[] raw = new byte[PubkeySize];
            fixed (byte* o = raw)
            {
                // combine returns 0 when the sum is the point at infinity.
                return secp256k1_ec_pubkey_combine(Secp256k1Context.Ptr, o, ptrs, (nuint)count) == 1
                    ? new Secp256k1Point(raw)
                    : Identity;
            }
        }
        finally
        {
            foreach (System.Runtime.InteropServices.GCHandle h in handles)
            {
                if (h.IsAllocated)
                {
                    h.Free();
                }
            }
        }
    }

    public unsafe Secp256k1Point Negate()
    {
        if (_raw is null)
        {
            return Identity;
        }

        byte[] raw = (byte[])_raw.Clone();
        fixed (byte* p = raw)
        {
            _ = secp256k1_ec_pubkey_negate(Secp256k1Context.Ptr, p);
        }

        return new Secp256k1Point(raw);
    }

    /// <summary>Parses a SEC1 compressed (33 bytes) or uncompressed (65 bytes) point. The identity has no encoding.</summary>
    public static unsafe bool TryParse(ReadOnlySpan<byte> encoded, out Secp256k1Point point)
    {
        point = Identity;
        bool lengthOk = (encoded.Length == CompressedSizeInBytes && (encoded[0] == 0x02 || encoded[0] == 0x03))
            || (encoded.Length == UncompressedSizeInBytes && encoded[0] == 0x04);
        if (!lengthOk)
        {
            return false;
        }

        byte[] raw = new byte[PubkeySize];
        fixed (byte* i = encoded)
        fixed (byte* p = raw)
        {
            if (secp256k1_ec_pubkey_parse(Secp256k1Context.Ptr, p, i, (nuint)encoded.Length) != 1)
            {
                return false;
            }
        }

        point = new Secp256k1Point(raw);
        return true;
    }

    public static Secp256k1Point Parse(ReadOnlySpan<byte> encoded, string parameterName = "point")
    {
        if (TryParse(encoded, out Secp256k1Point p))
        {
            return p;
        }

        if (encoded.Length is not (CompressedSizeInBytes or UncompressedSizeInBytes))
        {
            throw CryptoErrors.InvalidLength(parameterName, encoded.Length, "33 (compressed) or 65 (uncompressed) bytes");
        }

        throw CryptoErrors.InvalidPoint(parameterName, "bad prefix or not on the curve");
    }

    /// <summary>Parses a BIP-340 x-only key: the point with this x coordinate and an even y.</summary>
    public static bool TryParseXOnly(ReadOnlySpan<byte> x32, out Secp256k1Point point)
    {
        point = Identity;
        if (x32.Length != XOnlySizeInBytes)
        {
            return false;
        }

        Span<byte> c = stackalloc byte[CompressedSizeInBytes];
        c[0] = 0x02;
        x32.CopyTo(c[1..]);
        return TryParse(c, out point);
    }

    public static Secp256k1Point ParseXOnly(ReadOnlySpan<byte> x32, string parameterName = "point")
        => TryParseXOnly(x32, out Secp256k1Point p)
            ? p
            : x32.Length != XOnlySizeInBytes
                ? throw CryptoErrors.InvalidLength(parameterName, x32.Length, XOnlySizeInBytes)
                : throw CryptoErrors.InvalidPoint(parameterName, "no curve point has this x coordinate");

    private unsafe void Serialize(Span<byte> destination, uint flags, int expected)
    {
        if (_raw is null)
        {
            throw CryptoErrors.Identity("point");
        }

        if (destination.Length != expected)
        {
            throw new ArgumentException($"destination must be exactly {expected} bytes", nameof(destination));
        }

        nuint len = (nuint)expected;
        fixed (byte* o = destination)
        fixed (byte* p = _raw)
        {
            _ = secp256k1_ec_pubkey_serialize(Secp256k1Context.Ptr, o, &len, p, flags);
        }
    }

    /// <summary>SEC1 compressed encoding (33 bytes). Throws for the identity.</summary>
    public void WriteCompressed(Span<byte> destination33) => Serialize(destination33, SECP256K1_EC_COMPRESSED, CompressedSizeInBytes);

    public void WriteUncompressed(Span<byte> destination65) => Serialize(destination65, SECP256K1_EC_UNCOMPRESSED, UncompressedSizeInBytes);

    public byte[] ToCompressed()
    {
        byte[] b = new byte[CompressedSizeInBytes];
        WriteCompressed(b);
        return b;
    }

    public byte[] ToUncompressed()
    {
        byte[] b = new byte[UncompressedSizeInBytes];
        WriteUncompressed(b);
        return b;
    }

    /// <summary>The x coordinate (BIP-340 x-only form, 32 bytes).</summary>
    public byte[] ToXOnly() => ToCompressed()[1..];

    /// <summary>True when the y coordinate is even (BIP-340 has_even_y).</summary>
    public bool HasEvenY
    {
        get
        {
            Span<byte> c = stackalloc byte[CompressedSizeInBytes];
            WriteCompressed(c);
            return c[0] == 0x02;
        }
    }

    public bool Equals(Secp256k1Point other)
    {
        if (_raw is null || other._raw is null)
        {
            return _raw is null && other._raw is null;
        }

        Span<byte> a = stackalloc byte[CompressedSizeInBytes];
        Span<byte> b = stackalloc byte[CompressedSizeInBytes];
        WriteCompressed(a);
        other.WriteCompressed(b);
        return a.SequenceEqual(b);
    }

    public override bool Equals(object? obj) => obj is Secp256k1Point p && Equals(p);

    public override int GetHashCode()
    {
        if (_raw is null)
        {
            return 0;
        }

        Span<byte> a = stackalloc byte[CompressedSizeInBytes];
        WriteCompressed(a);
        return BitConverter.ToInt32(a[1..5]);
    }

    public override string ToString() => _raw is null ? "Secp256k1Point(identity)" : $"Secp256k1Point({Convert.ToHexStringLower(ToCompressed())})";

    public static bool operator ==(Secp256k1Point left, Secp256k1Point right) => left.Equals(right);

    public static bool operator !=(Secp256k1Point left, Secp256k1Point right) => !left.Equals(right);

    internal byte[] Raw => _raw ?? throw CryptoErrors.Identity("point");
}
