using System.Security.Cryptography;
using Conclave.Crypto.Interop;
using Conclave.Crypto.Memory;
using Conclave.Crypto.Randomness;

namespace Conclave.Crypto.Kdf;

/// <summary>X25519 Diffie-Hellman (RFC 7748) through libsodium, for encrypting point-to-point protocol messages.</summary>
public static class X25519
{
    public const int KeySizeInBytes = 32;

    /// <summary>Generates a private key into a guarded buffer and returns it with the public key.</summary>
    public static unsafe (SecretBuffer PrivateKey, byte[] PublicKey) GenerateKeyPair(IRandomSource? random = null)
    {
        var sk = SecretBuffer.Allocate(KeySizeInBytes, SecretMemoryKind.Guarded);
        try
        {
            (random ?? SystemRandomSource.Instance).Fill(sk.Span);
            return (sk, PublicKeyOf(sk.ReadOnlySpan));
        }
        catch
        {
            sk.Dispose();
            throw;
        }
    }

    public static unsafe byte[] PublicKeyOf(ReadOnlySpan<byte> privateKey)
    {
        if (privateKey.Length != KeySizeInBytes)
        {
            throw CryptoErrors.InvalidLength("privateKey", privateKey.Length, KeySizeInBytes);
        }

        Sodium.EnsureInitialized();
        byte[] pk = new byte[KeySizeInBytes];
        fixed (byte* s = privateKey)
        fixed (byte* p = pk)
        {
            _ = Sodium.crypto_scalarmult_curve25519_base(p, s);
        }

        return pk;
    }

    /// <summary>The shared secret; throws for a low-order peer key (all-zero output, RFC 7748 section 6.1).</summary>
    public static unsafe SecretBuffer SharedSecret(ReadOnlySpan<byte> privateKey, ReadOnlySpan<byte> peerPublicKey)
    {
        if (privateKey.Length != KeySizeInBytes)
        {
            throw CryptoErrors.InvalidLength("privateKey", privateKey.Length, KeySizeInBytes);
        }

        if (peerPublicKey.Length != KeySizeInBytes)
        {
            throw CryptoErrors.InvalidLength("peerPublicKey", peerPublicKey.Length, KeySizeInBytes);
        }

        Sodium.EnsureInitialized();
        var shared = SecretBuffer.Allocate(KeySizeInBytes);
        fixed (byte* s = privateKey)
        fixed (byte* p = peerPublicKey)
        fixed (byte* o = shared.Span)
        {
            if (Sodium.crypto_scalarmult_curve25519(o, s, p) != 0)
            {
                shared.Dispose();
                throw CryptoErrors.InvalidPoint(nameof(peerPublicKey), "low-order X25519 public key");
            }
        }

        return shared;
    }

    /// <summary>Convenience: X25519 then HKDF-SHA256 with the given info, binding both public keys.</summary>
    public static SecretBuffer DeriveKey(ReadOnlySpan<byte> privateKey, ReadOnlySpan<byte> peerPublicKey, ReadOnlySpan<byte> info, int length = 32)
    {
        using SecretBuffer shared = SharedSecret(privateKey, peerPublicKey);
        var okm = SecretBuffer.Allocate(length);
        HKDF.DeriveKey(HashAlgorithmName.SHA256, shared.ReadOnlySpan, okm.Span, ReadOnlySpan<byte>.Empty, info);
        return okm;
    }
}
