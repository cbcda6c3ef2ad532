using System.Security.Cryptography;
using Conclave.Crypto.Randomness;
using Conclave.Crypto.Signing;
using static Conclave.Crypto.Interop.Secp256k1Native;

namespace Conclave.Crypto.Secp256k1;

/// <summary>
/// <c>ecdsa-secp256k1</c>: ECDSA over secp256k1 (SEC 1 section 4.1) through libsecp256k1, with RFC 6979 deterministic
/// nonces, low-S signatures (BIP-146) and a recovery id. Signs a 32-byte digest. Public key: 33-byte SEC1 compressed.
/// Signature: 64-byte compact r ‖ s; <see cref="SignatureResult.RecoveryId"/> carries v (0..3).
/// <see cref="Verify"/> is strict: it refuses high-S signatures; <see cref="VerifyAllowHighS"/> normalizes first.
/// </summary>
public sealed class EcdsaSecp256k1 : SoftwareSignatureScheme
{
    public const string SchemeName = "ecdsa-secp256k1";

    private EcdsaSecp256k1() { }

    public static EcdsaSecp256k1 Instance { get; } = new();

    public override string Name => SchemeName;

    public override SignInputKind InputKind => SignInputKind.Digest32;

    public override int PublicKeySizeInBytes => Secp256k1Point.CompressedSizeInBytes;

    public override int SignatureSizeInBytes => 64;

    public override int PrivateKeySizeInBytes => 32;

    protected override unsafe bool IsValidPrivateKeyCore(ReadOnlySpan<byte> privateKey)
    {
        if (privateKey.Length != 32)
        {
            return false;
        }

        fixed (byte* k = privateKey)
        {
            return secp256k1_ec_seckey_verify(Secp256k1Context.Ptr, k) == 1;
        }
    }

    protected internal override unsafe byte[] DerivePublicKeyCore(ReadOnlySpan<byte> privateKey)
        => PublicKeyFromPrivate(privateKey).ToCompressed();

    internal static unsafe Secp256k1Point PublicKeyFromPrivate(ReadOnlySpan<byte> privateKey)
    {
        var scalar = Secp256k1Scalar.FromBytes(privateKey, "privateKey");
        if (scalar.IsZero)
        {
            throw CryptoErrors.InvalidPrivateKey("privateKey");
        }

        return Secp256k1Point.MultiplyGenerator(scalar);
    }

    protected internal override SignatureResult SignCore(ReadOnlySpan<byte> privateKey, ReadOnlySpan<byte> input, IRandomSource random)
    {
        byte[] sig = new byte[64];
        int recid = SignRecoverable(privateKey, input, sig);
        return new SignatureResult(sig, recid);
    }

    /// <summary>RFC 6979 + low-S signature into <paramref name="signature64"/>; returns the recovery id.</summary>
    public static unsafe int SignRecoverable(ReadOnlySpan<byte> privateKey, ReadOnlySpan<byte> digest32, Span<byte> signature64)
    {
        if (privateKey.Length != 32)
        {
            throw CryptoErrors.InvalidLength("privateKey", privateKey.Length, 32);
        }

        if (digest32.Length != 32)
        {
            throw CryptoErrors.InvalidLength("digest", digest32.Length, 32);
        }

        if (signature64.Length != 64)
        {
            throw new ArgumentException("destination must be exactly 64 bytes", nameof(signature64));
        }

        Span<byte> rsig = stackalloc byte[RecoverableSize];
        int recid = 0;
        fixed (byte* k = privateKey)
        fixed (byte* h = digest32)
        fixed (byte* s = rsig)
        fixed (byte* o = signature64)
        {
            if (secp256k1_ecdsa_sign_recoverable(Secp256k1Context.Ptr, s, h, k, IntPtr.Zero, null) != 1)
            {
                throw CryptoErrors.InvalidPrivateKey("privateKey");
            }

            _ = secp256k1_ecdsa_recoverable_signature_serialize_compact(Secp256k1Context.Ptr, o, &recid, s);
        }

        return recid;
    }

    /// <summary>Signs and returns a DER-encoded signature (Bitcoin's encoding).</summary>
    public static unsafe byte[] SignDer(ReadOnlySpan<byte> privateKey, ReadOnlySpan<byte> digest32)
    {
        Span<byte> compact = stackalloc byte[64];
        _ = SignRecoverable(privateKey, digest32, compact);
        return CompactToDer(compact);
    }

    public static unsafe byte[] CompactToDer(ReadOnlySpan<byte> compact64)
    {
        Span<byte> sig = stackalloc byte[SignatureSize];
        byte[] der = new byte[72];
        nuint len = 72;
        fixed (byte* c = compact64)
        fixed (byte* s = sig)
        fixed (byte* d = der)
        {
            if (compact64.Length != 64 || secp256k1_ecdsa_signature_parse_compact(Secp256k1Context.Ptr, s, c) != 1)
            {
                throw CryptoErrors.InvalidSignature("signature", "r or s is not below the group order");
            }

            _ = secp256k1_ecdsa_signature_serialize_der(Secp256k1Context.Ptr, d, &len, s);
        }

        return der[..(int)len];
    }

    /// <summary>Strict verification: compact 64-byte r ‖ s, low-S required, digest of 32 bytes.</summary>
    public override bool Verify(ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> input, ReadOnlySpan<byte> signature)
        => VerifyCompact(publicKey, input, signature, allowHighS: false);

    /// <summary>Verification that also accepts high-S signatures (plain ECDSA, as Wycheproof's non-Bitcoin files expect).</summary>
    public static bool VerifyAllowHighS(ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> digest32, ReadOnlySpan<byte> signature64)
        => VerifyCompact(publicKey, digest32, signature64, allowHighS: true);

    private static unsafe bool VerifyCompact(ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> digest32, ReadOnlySpan<byte> signature64, bool allowHighS)
    {
        if (signature64.Length != 64 || digest32.Length != 32 || !Secp256k1Point.TryParse(publicKey, out Secp256k1Point pk))
        {
            return false;
        }

        return VerifyParsedCompact(pk, digest32, signature64, allowHighS);
    }

    private static unsafe bool VerifyParsedCompact(Secp256k1Point pk, ReadOnlySpan<byte> digest32, ReadOnlySpan<byte> signature64, bool allowHighS)
    {
        Span<byte> sig = stackalloc byte[SignatureSize];
        fixed (byte* c = signature64)
        fixed (byte* s = sig)
        {
            if (secp256k1_ecdsa_signature_parse_compact(Secp256k1Context.Ptr, s, c) != 1)
            {
                return false;
            }
        }

        return VerifyParsed(pk, digest32, sig, allowHighS);
    }

    /// <summary>Verifies a strict-DER signature (X.690 DER, minimal integers, no trailing data).</summary>
    public static unsafe bool VerifyDer(ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> digest32, ReadOnlySpan<byte> der, bool allowHighS)
    {
        if (digest32.Length != 32 || !Secp256k1Point.TryParse(publicKey, out Secp256k1Point pk) || !StrictDer.TryDecode(der, out byte[]? compact))
        {
            return false;
        }

        return VerifyParsedCompact(pk, digest32, compact, allowHighS);
    }

    private static unsafe bool VerifyParsed(Secp256k1Point pk, ReadOnlySpan<byte> digest32, Span<byte> sig, bool allowHighS)
    {
        byte[] raw = pk.Raw;
        fixed (byte* s = sig)
        fixed (byte* h = digest32)
        fixed (byte* p = raw)
        {
            if (allowHighS)
            {
                _ = secp256k1_ecdsa_signature_normalize(Secp256k1Context.Ptr, s, s);
            }

            return secp256k1_ecdsa_verify(Secp256k1Context.Ptr, s, h, p) == 1;
        }
    }

    /// <summary>Recovers the public key from a compact signature and recovery id (the Ethereum ecrecover).</summary>
    public static unsafe bool TryRecover(ReadOnlySpan<byte> digest32, ReadOnlySpan<byte> signature64, int recoveryId, out Secp256k1Point publicKey)
    {
        publicKey = Secp256k1Point.Identity;
        if (digest32.Length != 32 || signature64.Length != 64 || recoveryId is < 0 or > 3)
        {
            return false;
        }

        Span<byte> rsig = stackalloc byte[RecoverableSize];
        byte[] raw = new byte[PubkeySize];
        fixed (byte* c = signature64)
        fixed (byte* s = rsig)
        fixed (byte* h = digest32)
        fixed (byte* p = raw)
        {
            if (secp256k1_ecdsa_recoverable_signature_parse_compact(Secp256k1Context.Ptr, s, c, recoveryId) != 1
                || secp256k1_ecdsa_recover(Secp256k1Context.Ptr, p, s, h) != 1)
            {
                return false;
            }
        }

        Span<byte> enc = stackalloc byte[65];
        fixed (byte* p = raw)
        fixed (byte* e = enc)
        {
            nuint len = 65;
            _ = secp256k1_ec_pubkey_serialize(Secp256k1Context.Ptr, e, &len, p, SECP256K1_EC_UNCOMPRESSED);
        }

        return Secp256k1Point.TryParse(enc, out publicKey);
    }

    /// <summary>ECDH (libsecp256k1 default: SHA-256 of the compressed shared point).</summary>
    public static unsafe Memory.SecretBuffer Ecdh(ReadOnlySpan<byte> privateKey, ReadOnlySpan<byte> peerPublicKey)
    {
        if (privateKey.Length != 32)
        {
            throw CryptoErrors.InvalidLength("privateKey", privateKey.Length, 32);
        }

        return Ecdh(privateKey, Secp256k1Point.Parse(peerPublicKey, nameof(peerPublicKey)));
    }

    /// <summary>
    /// ECDH with a peer point already parsed (libsecp256k1 default: SHA-256 of the compressed shared point): the same
    /// output as <see cref="Ecdh(ReadOnlySpan{byte}, ReadOnlySpan{byte})"/> of its encoding, without serializing and
    /// parsing the point again (a square root). The identity is refused.
    /// </summary>
    public static unsafe Memory.SecretBuffer Ecdh(ReadOnlySpan<byte> privateKey, Secp256k1Point peer)
    {
        if (privateKey.Length != 32)
        {
            throw CryptoErrors.InvalidLength("privateKey", privateKey.Length, 32);
        }

        var output = Memory.SecretBuffer.Allocate(32);
        byte[] raw = peer.Raw;
        fixed (byte* o = output.Span)
        fixed (byte* p = raw)
        fixed (byte* k = privateKey)
        {
            if (secp256k1_ecdh(Secp256k1Context.Ptr, o, p, k, IntPtr.Zero, null) != 1)
            {
                output.Dispose();
                throw CryptoErrors.InvalidPrivateKey("privateKey");
            }
        }

        return output;
    }
}
