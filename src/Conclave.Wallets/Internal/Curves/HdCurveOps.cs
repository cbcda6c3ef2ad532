using System.Security.Cryptography;
using Conclave.Crypto.Ed25519;
using Conclave.Crypto.Kdf;
using Conclave.Crypto.Secp256k1;

namespace Conclave.Wallets.Internal.Curves;

/// <summary>The per-curve pieces of SLIP-10 key derivation: scalar validity, the child-key addition and point(k).</summary>
internal abstract class HdCurveOps
{
    internal const int KeySizeInBytes = 32;

    /// <summary>True for curves where a child key is IL + k mod n (secp256k1, nist256p1); false where it is IL itself.</summary>
    internal abstract bool AddsTweak { get; }

    /// <summary>0 &lt; k &lt; n (always true for the 25519 curves, whose keys are any 32 bytes).</summary>
    internal abstract bool IsValidPrivateKey(ReadOnlySpan<byte> key32);

    /// <summary>child = IL + parent mod n; false when IL ≥ n or the sum is zero (SLIP-10 then retries).</summary>
    internal abstract bool TryAddTweak(ReadOnlySpan<byte> il32, ReadOnlySpan<byte> parent32, Span<byte> child32);

    /// <summary>The public key as SLIP-10 serializes it: 33 bytes (SEC1 compressed, or 0x00 || key for the 25519 curves).</summary>
    internal abstract void WriteSerializedPublicKey(ReadOnlySpan<byte> key32, Span<byte> destination33);
}

/// <summary>secp256k1 (SEC 2) through Conclave.Crypto / libsecp256k1; constant-time scalar arithmetic.</summary>
internal sealed class Secp256k1HdOps : HdCurveOps
{
    internal override bool AddsTweak => true;

    internal override bool IsValidPrivateKey(ReadOnlySpan<byte> key32)
        => Secp256k1Scalar.TryFromBytes(key32, out Secp256k1Scalar k) & !k.IsZero;

    internal override bool TryAddTweak(ReadOnlySpan<byte> il32, ReadOnlySpan<byte> parent32, Span<byte> child32)
    {
        if (!Secp256k1Scalar.TryFromBytes(il32, out Secp256k1Scalar tweak))
        {
            return false;
        }

        Secp256k1Scalar child = tweak + Secp256k1Scalar.FromBytes(parent32, "privateKey");
        child.WriteTo(child32);
        return !child.IsZero;
    }

    internal override void WriteSerializedPublicKey(ReadOnlySpan<byte> key32, Span<byte> destination33)
        => Secp256k1Point.MultiplyGenerator(Secp256k1Scalar.FromBytes(key32, "privateKey")).WriteCompressed(destination33);
}

/// <summary>NIST P-256 (SLIP-10 "nist256p1"): scalar arithmetic in <see cref="Modular256"/>, point(k) by .NET's ECDsa (OpenSSL).</summary>
internal sealed class Nist256p1HdOps : HdCurveOps
{
    private static readonly Modular256 s_order = new(Convert.FromHexString("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551"));

    internal override bool AddsTweak => true;

    internal override bool IsValidPrivateKey(ReadOnlySpan<byte> key32) => s_order.IsInRangeNonZero(key32);

    internal override bool TryAddTweak(ReadOnlySpan<byte> il32, ReadOnlySpan<byte> parent32, Span<byte> child32)
    {
        // IL = 0 is allowed here (the sum is checked); only IL ≥ n is invalid.
        bool ilBelowN = s_order.IsInRangeNonZero(il32) || !il32.ContainsAnyExcept((byte)0);
        bool nonZero = s_order.AddMod(il32, parent32, child32);
        return ilBelowN & nonZero;
    }

    internal override void WriteSerializedPublicKey(ReadOnlySpan<byte> key32, Span<byte> destination33)
    {
        byte[] d = GC.AllocateArray<byte>(KeySizeInBytes, pinned: true);
        ECParameters exported = default;
        try
        {
            key32.CopyTo(d);
            using var ecdsa = ECDsa.Create(new ECParameters { Curve = ECCurve.NamedCurves.nistP256, D = d });
            exported = ecdsa.ExportParameters(includePrivateParameters: false);
            destination33[0] = (byte)(0x02 | (exported.Q.Y![^1] & 1));
            exported.Q.X!.CopyTo(destination33[1..]);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(d);
        }
    }
}

/// <summary>Ed25519 (SLIP-10): the private key is the RFC 8032 seed; public key per RFC 8032 section 5.1.5.</summary>
internal sealed class Ed25519HdOps : HdCurveOps
{
    internal override bool AddsTweak => false;

    internal override bool IsValidPrivateKey(ReadOnlySpan<byte> key32) => key32.Length == KeySizeInBytes;

    internal override bool TryAddTweak(ReadOnlySpan<byte> il32, ReadOnlySpan<byte> parent32, Span<byte> child32)
        => throw new InvalidOperationException("ed25519 child keys are IL itself");

    /// <summary>
    /// RFC 8032 section 5.1.5: h = SHA-512(seed); s = clamp(h[0..32]) read little-endian; A = s·B. Since B has prime
    /// order L, s·B = (s mod L)·B, so the reduced scalar gives the same point without a guarded signing-key allocation.
    /// </summary>
    internal override void WriteSerializedPublicKey(ReadOnlySpan<byte> key32, Span<byte> destination33)
    {
        Span<byte> h = stackalloc byte[64];
        try
        {
            SHA512.HashData(key32, h);
            h[0] &= 248;
            h[31] &= 127;
            h[31] |= 64;
            Ed25519Scalar s = Ed25519Scalar.FromBytesReduced(h[..32]);
            destination33[0] = 0;
            Ed25519Point.MultiplyGenerator(s).WriteTo(destination33[1..]);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(h);
        }
    }
}

/// <summary>Curve25519 (SLIP-10, for X25519 key agreement): public key = X25519(k, 9) by libsodium.</summary>
internal sealed class Curve25519HdOps : HdCurveOps
{
    internal override bool AddsTweak => false;

    internal override bool IsValidPrivateKey(ReadOnlySpan<byte> key32) => key32.Length == KeySizeInBytes;

    internal override bool TryAddTweak(ReadOnlySpan<byte> il32, ReadOnlySpan<byte> parent32, Span<byte> child32)
        => throw new InvalidOperationException("curve25519 child keys are IL itself");

    internal override void WriteSerializedPublicKey(ReadOnlySpan<byte> key32, Span<byte> destination33)
    {
        destination33[0] = 0;
        X25519.PublicKeyOf(key32).CopyTo(destination33[1..]);
    }
}
