using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Conclave.Crypto.Aead;
using Conclave.Crypto.Memory;
using Conclave.Crypto.Randomness;
using Conclave.Storage.Encryption;

namespace Conclave.Storage.Internal;

/// <summary>
/// Envelope encryption: every secret is sealed with its own random 32-byte data key (<see cref="Envelope"/>,
/// XChaCha20-Poly1305), and the data key is wrapped under the KEK. Both layers take associated data naming the
/// record (purpose, id, version), so a ciphertext or wrapped key copied onto another row does not open.
/// </summary>
internal static class SecretSealer
{
    public static (byte[] WrappedKey, byte[] Ciphertext) Seal(IKeyEncryptionKey kek, ReadOnlySpan<byte> plaintext, byte[] context)
    {
        using SecretBuffer dataKey = SecretBuffer.Allocate(Envelope.KeySizeInBytes);
        SystemRandomSource.Instance.Fill(dataKey.Span);
        byte[] ciphertext = Envelope.Seal(dataKey.ReadOnlySpan, plaintext, Ad("conclave/data/v1", context));
        byte[] wrapped = kek.Wrap(dataKey.ReadOnlySpan, Ad("conclave/dek/v1", context));
        return (wrapped, ciphertext);
    }

    public static SecretBuffer Open(IKeyEncryptionKey kek, byte[] wrappedKey, byte[] ciphertext, byte[] context, string what)
    {
        SecretBuffer? dataKey = null;
        try
        {
            dataKey = kek.Unwrap(wrappedKey, Ad("conclave/dek/v1", context));
            return Envelope.Open(dataKey.ReadOnlySpan, ciphertext, Ad("conclave/data/v1", context));
        }
        catch (EnvelopeException e)
        {
            throw StorageErrors.Corrupted(what, e);
        }
        finally
        {
            dataKey?.Dispose();
        }
    }

    /// <summary>Re-wraps a data key under a new KEK (KEK rotation); the ciphertext stays as it is.</summary>
    public static byte[] Rewrap(IKeyEncryptionKey from, IKeyEncryptionKey to, byte[] wrappedKey, byte[] context, string what)
    {
        byte[] ad = Ad("conclave/dek/v1", context);
        SecretBuffer dataKey;
        try
        {
            dataKey = from.Unwrap(wrappedKey, ad);
        }
        catch (EnvelopeException e)
        {
            throw StorageErrors.Corrupted(what, e);
        }

        using (dataKey)
        {
            return to.Wrap(dataKey.ReadOnlySpan, ad);
        }
    }

    /// <summary>Check value proving a KEK is the one a store (or backup) was sealed under.</summary>
    public static byte[] MakeCheck(IKeyEncryptionKey kek, string scope)
    {
        Span<byte> zero = stackalloc byte[32];
        zero.Clear();
        return kek.Wrap(zero, Ad("conclave/kek-check/v1", Context(scope, kek.Id)));
    }

    public static bool VerifyCheck(IKeyEncryptionKey kek, byte[] check, string scope)
    {
        try
        {
            using SecretBuffer _ = kek.Unwrap(check, Ad("conclave/kek-check/v1", Context(scope, kek.Id)));
            return true;
        }
        catch (EnvelopeException)
        {
            return false;
        }
        catch (CryptographicException)
        {
            return false;
        }
    }

    /// <summary>Length-prefixed (u32 big-endian) encoding of the context fields.</summary>
    public static byte[] Context(params string[] fields)
    {
        using var ms = new MemoryStream();
        Span<byte> len = stackalloc byte[4];
        foreach (string f in fields)
        {
            byte[] b = Encoding.UTF8.GetBytes(f);
            BinaryPrimitives.WriteUInt32BigEndian(len, (uint)b.Length);
            ms.Write(len);
            ms.Write(b);
        }

        return ms.ToArray();
    }

    public static byte[] KeyMaterialContext(string keyId, int version) =>
        Context("key-material", keyId, version.ToString(System.Globalization.CultureInfo.InvariantCulture));

    public static byte[] NonceContext(byte[] nonceId, string keyId, string kind) =>
        Context("nonce", Convert.ToHexStringLower(nonceId), keyId, kind);

    private static byte[] Ad(string label, byte[] context)
    {
        byte[] l = Encoding.ASCII.GetBytes(label);
        byte[] ad = new byte[l.Length + 1 + context.Length];
        l.CopyTo(ad, 0);
        context.CopyTo(ad, l.Length + 1);
        return ad;
    }
}
