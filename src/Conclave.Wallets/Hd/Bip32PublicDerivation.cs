using System.Buffers.Binary;
using System.Security.Cryptography;
using Conclave.Crypto.Memory;
using Conclave.Crypto.Secp256k1;

namespace Conclave.Wallets.Hd;

/// <summary>
/// One non-hardened BIP-32 step on secp256k1, computed from public data only: the scalar tweak IL, the child public
/// key K + IL·G and the child chain code IR. Whoever holds the parent private key k gets the child key as k + IL;
/// a threshold group holding shares of k adds IL to the group's secret (Lagrange coefficients sum to one, so the
/// tweak is applied once, by convention to every share with the group key shifted by IL·G).
/// </summary>
public readonly struct Bip32ChildTweak
{
    internal Bip32ChildTweak(uint index, Secp256k1Scalar tweak, Secp256k1Point childPublicKey, byte[] childChainCode)
    {
        Index = index;
        Tweak = tweak;
        ChildPublicKey = childPublicKey;
        ChildChainCode = childChainCode;
    }

    public uint Index { get; }

    /// <summary>IL as a scalar: child private key = parent private key + Tweak (mod n).</summary>
    public Secp256k1Scalar Tweak { get; }

    /// <summary>K + Tweak·G.</summary>
    public Secp256k1Point ChildPublicKey { get; }

    /// <summary>IR, the child's chain code (32 bytes).</summary>
    public ReadOnlyMemory<byte> ChildChainCode { get; }
}

/// <summary>A non-hardened path applied to a public key: the sum of the per-step tweaks, the final key and chain code.</summary>
public readonly struct Bip32PathTweak
{
    internal Bip32PathTweak(Secp256k1Scalar tweak, Secp256k1Point childPublicKey, byte[] childChainCode)
    {
        Tweak = tweak;
        ChildPublicKey = childPublicKey;
        ChildChainCode = childChainCode;
    }

    /// <summary>Descendant private key = ancestor private key + Tweak (mod n), the sum of every step's IL.</summary>
    public Secp256k1Scalar Tweak { get; }

    public Secp256k1Point ChildPublicKey { get; }

    public ReadOnlyMemory<byte> ChildChainCode { get; }
}

/// <summary>
/// BIP-32 "Public parent key → public child key" (CKDpub) on secp256k1, exposed as tweak computations so that
/// other key holders (FROST threshold keys in Conclave.Threshold) can derive children of a key nobody holds whole.
/// Retry rule: SLIP-10's (IL ≥ n or a child at infinity: I = HMAC-SHA512(c, 0x01 || IR || ser32(i)), repeat), the same
/// rule <see cref="ExtendedPrivateKey"/> uses, so private and public derivation agree; for secp256k1 it is never
/// reached in practice (probability below 2^-127).
/// </summary>
public static class Bip32PublicDerivation
{
    /// <summary>The CKDpub tweak for one non-hardened index.</summary>
    public static Bip32ChildTweak ComputeTweak(Secp256k1Point parentPublicKey, ReadOnlySpan<byte> parentChainCode, uint index)
    {
        if (parentPublicKey.IsIdentity)
        {
            throw WalletErrors.PublicKey(nameof(parentPublicKey), "the point at infinity");
        }

        if (parentChainCode.Length != 32)
        {
            throw new Crypto.CryptoFormatException(nameof(parentChainCode), $"{nameof(parentChainCode)} must be 32 bytes, got {parentChainCode.Length}");
        }

        if (KeyPath.IsHardened(index))
        {
            throw new Crypto.CryptoFormatException("index", "a hardened child cannot be derived from a public key; use the private key");
        }

        Span<byte> data = stackalloc byte[37];
        Span<byte> i = stackalloc byte[64];
        parentPublicKey.WriteCompressed(data[..33]);
        BinaryPrimitives.WriteUInt32BigEndian(data[33..], index);
        HMACSHA512.HashData(parentChainCode, data, i);
        while (true)
        {
            if (Secp256k1Scalar.TryFromBytes(i[..32], out Secp256k1Scalar tweak))
            {
                Secp256k1Point child = parentPublicKey + Secp256k1Point.MultiplyGenerator(tweak);
                if (!child.IsIdentity)
                {
                    return new Bip32ChildTweak(index, tweak, child, i[32..].ToArray());
                }
            }

            data[0] = 1;
            i[32..].CopyTo(data[1..33]);
            HMACSHA512.HashData(parentChainCode, data, i);
        }
    }

    /// <summary>The combined tweak of a non-hardened path taken relative to (parentPublicKey, parentChainCode).</summary>
    public static Bip32PathTweak ComputeTweak(Secp256k1Point parentPublicKey, ReadOnlySpan<byte> parentChainCode, KeyPath relativePath)
    {
        ReadOnlySpan<uint> indices = relativePath.Indices;
        for (int d = 0; d < indices.Length; d++)
        {
            if (KeyPath.IsHardened(indices[d]))
            {
                throw WalletErrors.HardenedFromPublic(d + 1);
            }
        }

        Secp256k1Scalar total = Secp256k1Scalar.Zero;
        Secp256k1Point key = parentPublicKey;
        byte[] chainCode = parentChainCode.ToArray();
        foreach (uint index in indices)
        {
            Bip32ChildTweak step = ComputeTweak(key, chainCode, index);
            total += step.Tweak;
            key = step.ChildPublicKey;
            chainCode = step.ChildChainCode.ToArray();
        }

        return new Bip32PathTweak(total, key, chainCode);
    }
}

/// <summary>
/// The private side of <see cref="Bip32PublicDerivation"/> for keys held whole (single secp256k1 keys with a chain
/// code): the non-hardened child's private key k_i = k + Σ IL mod n, whose public key is exactly the CKDpub child.
/// </summary>
public static class Bip32NonHardenedPrivateDerivation
{
    /// <summary>
    /// The child private key at <paramref name="relativePath"/> (non-hardened only). With
    /// <paramref name="evenYParent"/> the parent is used as BIP-340 uses an x-only key — as lift_x(P), the point with
    /// even Y — so k is first replaced by n − k when k·G has odd Y (BIP-340 "Default Signing"); that is how a
    /// schnorr-bip340 key's children are derived from its 32-byte public key.
    /// </summary>
    public static SecretBuffer DeriveChild(ReadOnlySpan<byte> privateKey, ReadOnlySpan<byte> chainCode, KeyPath relativePath, bool evenYParent = false)
    {
        if (!Secp256k1Scalar.TryFromBytes(privateKey, out Secp256k1Scalar k) || k.IsZero)
        {
            throw new Crypto.CryptoFormatException(nameof(privateKey), "not a valid secp256k1 private key");
        }

        Secp256k1Point parent = Secp256k1Point.MultiplyGenerator(k);
        if (evenYParent && !parent.HasEvenY)
        {
            k = -k;
            parent = parent.Negate();
        }

        Bip32PathTweak tweak = Bip32PublicDerivation.ComputeTweak(parent, chainCode, relativePath);
        Secp256k1Scalar childKey = k + tweak.Tweak;
        if (childKey.IsZero)
        {
            // The child public key would be the point at infinity, which ComputeTweak already refuses; kept as a guard.
            throw new Crypto.CryptoFormatException(nameof(relativePath), "this path gives an invalid key");
        }

        SecretBuffer child = SecretBuffer.Allocate(32);
        childKey.WriteTo(child.Span);
        return child;
    }
}
