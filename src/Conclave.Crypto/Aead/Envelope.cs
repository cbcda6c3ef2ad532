using System.Buffers.Binary;
using System.Security.Cryptography;
using Conclave.Crypto.Interop;
using Conclave.Crypto.Memory;
using Conclave.Crypto.Randomness;

namespace Conclave.Crypto.Aead;

/// <summary>The AEAD inside an envelope.</summary>
public enum EnvelopeAlgorithm : byte
{
    /// <summary>XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha; libsodium), 24-byte random nonce. The default.</summary>
    XChaCha20Poly1305 = 1,

    /// <summary>AES-256-GCM (NIST SP 800-38D; .NET), 12-byte random nonce.</summary>
    Aes256Gcm = 2,
}

/// <summary>The envelope could not be opened: wrong key, altered ciphertext, header or associated data.</summary>
public sealed class EnvelopeException : Exception
{
    public EnvelopeException() : base("envelope could not be opened") { }

    public EnvelopeException(string message) : base(message) { }

    public EnvelopeException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>
/// A versioned AEAD envelope for secrets at rest:
/// <c>"CNV" ‖ version (1) ‖ algorithm (1) ‖ nonce ‖ ciphertext ‖ tag</c>.
/// The 5-byte header and nonce are authenticated together with the caller's associated data, so changing
/// the algorithm byte, the version or the context (for example the key id and version the store binds)
/// makes opening fail.
/// </summary>
public static class Envelope
{
    public const int KeySizeInBytes = 32;
    public const byte Version = 1;
    public const int TagSizeInBytes = 16;
    private const int HeaderSize = 5;

    private static ReadOnlySpan<byte> Magic => "CNV"u8;

    private static int NonceSize(EnvelopeAlgorithm alg) => alg switch
    {
        EnvelopeAlgorithm.XChaCha20Poly1305 => 24,
        EnvelopeAlgorithm.Aes256Gcm => 12,
        _ => throw new EnvelopeException("unknown envelope algorithm"),
    };

    /// <summary>The sealed size for a plaintext of the given length.</summary>
    public static int SealedSize(int plaintextLength, EnvelopeAlgorithm algorithm = EnvelopeAlgorithm.XChaCha20Poly1305)
        => HeaderSize + NonceSize(algorithm) + plaintextLength + TagSizeInBytes;

    /// <summary>Encrypts a non-empty <paramref name="plaintext"/> under a 32-byte key with a fresh random nonce.</summary>
    public static byte[] Seal(ReadOnlySpan<byte> key, ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> associatedData,
        EnvelopeAlgorithm algorithm = EnvelopeAlgorithm.XChaCha20Poly1305, IRandomSource? random = null)
    {
        if (key.Length != KeySizeInBytes)
        {
            throw CryptoErrors.InvalidLength("key", key.Length, KeySizeInBytes);
        }

        // Open returns the plaintext in a SecretBuffer, which cannot be empty, and refuses an envelope without one:
        // refuse it here too, so Seal never produces an envelope Open will not open.
        if (plaintext.IsEmpty)
        {
            throw CryptoErrors.InvalidLength("plaintext", 0, "at least 1 (an envelope cannot hold an empty plaintext)");
        }

        int nonceSize = NonceSize(algorithm);
        byte[] output = new byte[SealedSize(plaintext.Length, algorithm)];
        Magic.CopyTo(output);
        output[3] = Version;
        output[4] = (byte)algorithm;
        Span<byte> nonce = output.AsSpan(HeaderSize, nonceSize);
        (random ?? SystemRandomSource.Instance).Fill(nonce);
        byte[] ad = BuildAssociatedData(output.AsSpan(0, HeaderSize + nonceSize), associatedData);
        EncryptAead(algorithm, key, nonce, plaintext, ad, output.AsSpan(HeaderSize + nonceSize));
        return output;
    }

    /// <summary>
    /// Decrypts an envelope into a new secret buffer. Throws <see cref="EnvelopeException"/> when the key,
    /// ciphertext, header or associated data does not match; nothing is returned then.
    /// </summary>
    public static SecretBuffer Open(ReadOnlySpan<byte> key, ReadOnlySpan<byte> envelope, ReadOnlySpan<byte> associatedData,
        SecretMemoryKind kind = SecretMemoryKind.Pinned)
    {
        if (key.Length != KeySizeInBytes)
        {
            throw CryptoErrors.InvalidLength("key", key.Length, KeySizeInBytes);
        }

        if (envelope.Length < HeaderSize || !envelope[..3].SequenceEqual(Magic))
        {
            throw new EnvelopeException("not a Conclave envelope (bad magic or truncated)");
        }

        if (envelope[3] != Version)
        {
            throw new EnvelopeException($"unsupported envelope version {envelope[3]}");
        }

        var algorithm = (EnvelopeAlgorithm)envelope[4];
        if (algorithm is not (EnvelopeAlgorithm.XChaCha20Poly1305 or EnvelopeAlgorithm.Aes256Gcm))
        {
            throw new EnvelopeException($"unknown envelope algorithm {envelope[4]}");
        }

        int nonceSize = NonceSize(algorithm);
        int plaintextLength = envelope.Length - HeaderSize - nonceSize - TagSizeInBytes;
        if (plaintextLength <= 0)
        {
            throw new EnvelopeException("envelope is truncated");
        }

        ReadOnlySpan<byte> nonce = envelope.Slice(HeaderSize, nonceSize);
        byte[] ad = BuildAssociatedData(envelope[..(HeaderSize + nonceSize)], associatedData);
        ReadOnlySpan<byte> body = envelope[(HeaderSize + nonceSize)..];
        var result = SecretBuffer.Allocate(plaintextLength, kind);
        try
        {
            DecryptAead(algorithm, key, nonce, body, ad, result.Span);
            return result;
        }
        catch
        {
            result.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The bare AEAD under an envelope (no header): <paramref name="ciphertextAndTag"/> receives ciphertext ‖ 16-byte tag.
    /// Internal so the known-answer tests (Wycheproof) run through the very code <see cref="Seal"/> uses.
    /// </summary>
    internal static void EncryptAead(EnvelopeAlgorithm algorithm, ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> plaintext,
        ReadOnlySpan<byte> associatedData, Span<byte> ciphertextAndTag)
    {
        CheckAeadSizes(algorithm, key, nonce, ciphertextAndTag.Length - plaintext.Length);
        if (algorithm == EnvelopeAlgorithm.Aes256Gcm)
        {
            using var gcm = new AesGcm(key, TagSizeInBytes);
            gcm.Encrypt(nonce, plaintext, ciphertextAndTag[..plaintext.Length], ciphertextAndTag[plaintext.Length..], associatedData);
        }
        else
        {
            SealXChaCha(key, nonce, plaintext, associatedData, ciphertextAndTag);
        }
    }

    /// <summary>The bare AEAD under an envelope: opens ciphertext ‖ tag into <paramref name="plaintext"/> or throws <see cref="EnvelopeException"/>.</summary>
    internal static void DecryptAead(EnvelopeAlgorithm algorithm, ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> ciphertextAndTag,
        ReadOnlySpan<byte> associatedData, Span<byte> plaintext)
    {
        CheckAeadSizes(algorithm, key, nonce, ciphertextAndTag.Length - plaintext.Length);
        if (algorithm == EnvelopeAlgorithm.Aes256Gcm)
        {
            using var gcm = new AesGcm(key, TagSizeInBytes);
            try
            {
                gcm.Decrypt(nonce, ciphertextAndTag[..plaintext.Length], ciphertextAndTag[plaintext.Length..], plaintext, associatedData);
            }
            catch (AuthenticationTagMismatchException)
            {
                throw new EnvelopeException("envelope authentication failed (wrong key, or altered ciphertext or context)");
            }
        }
        else
        {
            OpenXChaCha(key, nonce, ciphertextAndTag, associatedData, plaintext);
        }
    }

    private static void CheckAeadSizes(EnvelopeAlgorithm algorithm, ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce, int tagLength)
    {
        if (key.Length != KeySizeInBytes)
        {
            throw CryptoErrors.InvalidLength("key", key.Length, KeySizeInBytes);
        }

        if (nonce.Length != NonceSize(algorithm))
        {
            throw CryptoErrors.InvalidLength("nonce", nonce.Length, NonceSize(algorithm));
        }

        if (tagLength != TagSizeInBytes)
        {
            throw CryptoErrors.InvalidLength("tag", tagLength, TagSizeInBytes);
        }
    }

    private static byte[] BuildAssociatedData(ReadOnlySpan<byte> headerAndNonce, ReadOnlySpan<byte> context)
    {
        // header ‖ nonce ‖ u32be(len(context)) ‖ context
        byte[] ad = new byte[headerAndNonce.Length + 4 + context.Length];
        headerAndNonce.CopyTo(ad);
        BinaryPrimitives.WriteUInt32BigEndian(ad.AsSpan(headerAndNonce.Length), (uint)context.Length);
        context.CopyTo(ad.AsSpan(headerAndNonce.Length + 4));
        return ad;
    }

    private static unsafe void SealXChaCha(ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> ad, Span<byte> output)
    {
        Sodium.EnsureInitialized();
        ulong clen = 0;
        fixed (byte* k = key)
        fixed (byte* n = nonce)
        fixed (byte* m = plaintext)
        fixed (byte* a = ad)
        fixed (byte* c = output)
        {
            if (Sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(c, &clen, m, (ulong)plaintext.Length, a, (ulong)ad.Length, null, n, k) != 0)
            {
                throw new CryptoOperationException("XChaCha20-Poly1305 encryption failed");
            }
        }
    }

    private static unsafe void OpenXChaCha(ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> ad, Span<byte> output)
    {
        Sodium.EnsureInitialized();
        ulong mlen = 0;
        fixed (byte* k = key)
        fixed (byte* n = nonce)
        fixed (byte* c = ciphertext)
        fixed (byte* a = ad)
        fixed (byte* m = output)
        {
            if (Sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(m, &mlen, null, c, (ulong)ciphertext.Length, a, (ulong)ad.Length, n, k) != 0)
            {
                CryptographicOperations.ZeroMemory(output);
                throw new EnvelopeException("envelope authentication failed (wrong key, or altered ciphertext or context)");
            }
        }
    }
}
