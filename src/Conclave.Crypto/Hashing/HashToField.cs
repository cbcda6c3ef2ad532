using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Conclave.Crypto.Hashing;

/// <summary>
/// RFC 9380 section 5.3.1 expand_message_xmd, with SHA-256 or SHA-512.
/// </summary>
public static class ExpandMessageXmd
{
    /// <summary>Writes len_in_bytes = destination.Length uniform bytes derived from msg and the domain separation tag.</summary>
    public static void Expand(HashAlgorithmName hash, ReadOnlySpan<byte> message, ReadOnlySpan<byte> dst, Span<byte> destination)
    {
        int bInBytes, sInBytes;
        if (hash == HashAlgorithmName.SHA256)
        {
            (bInBytes, sInBytes) = (32, 64);
        }
        else if (hash == HashAlgorithmName.SHA512)
        {
            (bInBytes, sInBytes) = (64, 128);
        }
        else
        {
            throw new ArgumentException("only SHA-256 and SHA-512 are supported", nameof(hash));
        }

        int lenInBytes = destination.Length;
        int ell = (lenInBytes + bInBytes - 1) / bInBytes;
        // RFC 9380 5.3.1 step 2: ABORT if ell > 255 or len_in_bytes > 65535 or len(DST) > 255.
        if (ell > 255 || lenInBytes > 65535 || lenInBytes == 0)
        {
            throw new ArgumentException("requested length is out of range for expand_message_xmd", nameof(destination));
        }

        if (dst.Length > 255)
        {
            throw new ArgumentException("DST longer than 255 bytes must be hashed first (RFC 9380 section 5.3.3)", nameof(dst));
        }

        Span<byte> dstPrime = stackalloc byte[dst.Length + 1];
        dst.CopyTo(dstPrime);
        dstPrime[^1] = (byte)dst.Length;

        Span<byte> b0 = stackalloc byte[bInBytes];
        Span<byte> bi = stackalloc byte[bInBytes];
        Span<byte> tmp = stackalloc byte[bInBytes];
        Span<byte> lib = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(lib, (ushort)lenInBytes);
        using var h = IncrementalHash.CreateHash(hash);
        try
        {
            // b_0 = H(Z_pad || msg || l_i_b_str || I2OSP(0, 1) || DST_prime)
            Span<byte> zPad = stackalloc byte[sInBytes];
            zPad.Clear();
            h.AppendData(zPad);
            h.AppendData(message);
            h.AppendData(lib);
            h.AppendData([0]);
            h.AppendData(dstPrime);
            h.GetHashAndReset(b0);

            // b_1 = H(b_0 || I2OSP(1, 1) || DST_prime)
            h.AppendData(b0);
            h.AppendData([1]);
            h.AppendData(dstPrime);
            h.GetHashAndReset(bi);

            int written = 0;
            for (int i = 1; ; i++)
            {
                int n = Math.Min(bInBytes, lenInBytes - written);
                bi[..n].CopyTo(destination[written..]);
                written += n;
                if (written == lenInBytes)
                {
                    break;
                }

                // b_i = H(strxor(b_0, b_(i-1)) || I2OSP(i, 1) || DST_prime)
                for (int j = 0; j < bInBytes; j++)
                {
                    tmp[j] = (byte)(b0[j] ^ bi[j]);
                }

                h.AppendData(tmp);
                h.AppendData([(byte)(i + 1)]);
                h.AppendData(dstPrime);
                h.GetHashAndReset(bi);
            }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(b0);
            CryptographicOperations.ZeroMemory(bi);
            CryptographicOperations.ZeroMemory(tmp);
        }
    }
}

/// <summary>RFC 9380 section 5.2 hash_to_field for the secp256k1 scalar field (count = 1, m = 1, L = 48).</summary>
public static class HashToField
{
    /// <summary>hash_to_field(msg, 1) over Z/nZ with expand_message_xmd(SHA-256), as FROST(secp256k1, SHA-256) uses it (RFC 9591 section 6.5).</summary>
    public static Secp256k1.Secp256k1Scalar Secp256k1Scalar(ReadOnlySpan<byte> message, ReadOnlySpan<byte> dst)
    {
        Span<byte> uniform = stackalloc byte[48];
        try
        {
            ExpandMessageXmd.Expand(HashAlgorithmName.SHA256, message, dst, uniform);
            return Crypto.Secp256k1.Secp256k1Scalar.FromBytesReduced(uniform);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(uniform);
        }
    }
}
