using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace Conclave.Crypto.Ed25519;

/// <summary>
/// Conclave's non-hardened ed25519 child derivation, one definition for threshold (frost-ed25519) and single ed25519
/// keys. No standard exists (SLIP-10 defines hardened ed25519 derivation only), so it follows BIP-32's public
/// derivation with a domain-separated input and the tweak reduced mod L:
/// I = HMAC-SHA512(c_par, "Conclave/FROST/ed25519-hd/v1" ‖ A_par ‖ ser_32(i)), t = I_L read little-endian mod L,
/// A_i = A_par + t·B, c_i = I_R. Only indexes below 2^31 exist. (The domain string keeps the name it was first
/// published under in docs/FROST.md.)
/// </summary>
public static class Ed25519HdDerivation
{
    private static readonly byte[] Domain = Encoding.ASCII.GetBytes("Conclave/FROST/ed25519-hd/v1");
    private static readonly byte[] PrefixDomain = Encoding.ASCII.GetBytes("Conclave/ed25519-hd/prefix/v1");

    /// <summary>The tweak t and the child chain code for child <paramref name="index"/> of (A_par, c_par).</summary>
    public static (Ed25519Scalar Tweak, byte[] ChildChainCode) Tweak(ReadOnlySpan<byte> parentPublicKey, ReadOnlySpan<byte> chainCode, uint index)
    {
        if (parentPublicKey.Length != 32)
        {
            throw CryptoErrors.InvalidLength(nameof(parentPublicKey), parentPublicKey.Length, 32);
        }

        if (chainCode.Length != 32)
        {
            throw CryptoErrors.InvalidLength(nameof(chainCode), chainCode.Length, 32);
        }

        if (index >= 0x8000_0000u)
        {
            throw new CryptoFormatException(nameof(index), "hardened derivation needs the private key; only non-hardened indexes (below 2^31) can be derived from a public key");
        }

        byte[] data = new byte[Domain.Length + 32 + 4];
        Domain.CopyTo(data, 0);
        parentPublicKey.CopyTo(data.AsSpan(Domain.Length));
        BinaryPrimitives.WriteUInt32BigEndian(data.AsSpan(Domain.Length + 32), index);
        byte[] i = HMACSHA512.HashData(chainCode, data);
        try
        {
            return (Ed25519Scalar.FromBytesReduced(i.AsSpan(0, 32)), i[32..]);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(i);
        }
    }

    /// <summary>
    /// Signs <paramref name="message"/> with the child at <paramref name="path"/> of a single ed25519 key given by its
    /// RFC 8032 seed and chain code; returns the signature (a standard Ed25519 signature under the child public key,
    /// which is also returned). RFC 8032 §5.1.5–5.1.6 on an expanded key: h = SHA-512(seed), a = clamp(h[0..32]),
    /// prefix = h[32..64]; the child scalar is a' = a + Σt mod L (the tweaks of <see cref="Tweak"/>, so a'·B is the
    /// derived public key) and its nonce prefix is SHA-512("Conclave/ed25519-hd/prefix/v1" ‖ prefix ‖ A')[0..32];
    /// r = SHA-512(prefix' ‖ M) mod L, R = r·B, S = r + SHA-512(R ‖ A' ‖ M)·a' mod L. Scalar and base-point
    /// operations are libsodium's constant-time ones; the hash outputs are zeroed after use (the scalar structs
    /// cannot be, see Ed25519Scalar).
    /// </summary>
    public static (byte[] Signature, byte[] ChildPublicKey) SignWithChild(ReadOnlySpan<byte> seed, ReadOnlySpan<byte> chainCode, IReadOnlyList<uint> path, ReadOnlySpan<byte> message)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (seed.Length != 32)
        {
            throw CryptoErrors.InvalidLength(nameof(seed), seed.Length, 32);
        }

        byte[] h = SHA512.HashData(seed);
        byte[] prefixInput = new byte[PrefixDomain.Length + 64];
        byte[] nonceInput = new byte[32 + message.Length];
        byte[] r64 = [];
        try
        {
            h[0] &= 248;
            h[31] &= 127;
            h[31] |= 64;
            Ed25519Scalar a = Ed25519Scalar.FromBytesReduced(h.AsSpan(0, 32));
            Ed25519Point publicKey = Ed25519Point.MultiplyGenerator(a);
            byte[] c = chainCode.ToArray();
            foreach (uint index in path)
            {
                (Ed25519Scalar t, byte[] next) = Tweak(publicKey.ToBytes(), c, index);
                a += t;
                publicKey += Ed25519Point.MultiplyGenerator(t);
                c = next;
            }

            if (publicKey.IsIdentity)
            {
                throw new CryptoFormatException(nameof(path), "this path gives an invalid key; use the next index");
            }

            byte[] childPublicKey = publicKey.ToBytes();
            PrefixDomain.CopyTo(prefixInput, 0);
            h.AsSpan(32, 32).CopyTo(prefixInput.AsSpan(PrefixDomain.Length));
            childPublicKey.CopyTo(prefixInput.AsSpan(PrefixDomain.Length + 32));
            SHA512.HashData(prefixInput).AsSpan(0, 32).CopyTo(nonceInput);
            message.CopyTo(nonceInput.AsSpan(32));
            r64 = SHA512.HashData(nonceInput);
            Ed25519Scalar r = Ed25519Scalar.FromBytesReduced(r64);
            byte[] rEncoded = Ed25519Point.MultiplyGenerator(r).ToBytes();
            byte[] challengeInput = [.. rEncoded, .. childPublicKey, .. message];
            Ed25519Scalar k = Ed25519Scalar.FromBytesReduced(SHA512.HashData(challengeInput));
            byte[] signature = [.. rEncoded, .. (r + (k * a)).ToBytes()];
            return (signature, childPublicKey);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(h);
            CryptographicOperations.ZeroMemory(prefixInput);
            CryptographicOperations.ZeroMemory(nonceInput.AsSpan(0, 32));
            CryptographicOperations.ZeroMemory(r64);
        }
    }
}
