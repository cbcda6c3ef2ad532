using System.Globalization;
using Conclave.Crypto.Ed25519;
using Conclave.Crypto.Secp256k1;
using Conclave.Wallets.Hd;

namespace Conclave.Chains.Derivation;

/// <summary>
/// Non-hardened derivation of child PUBLIC keys (no private key needed).
/// <list type="bullet">
/// <item>secp256k1: BIP-32 CKDpub — I = HMAC-SHA512(c, serP(K) ‖ ser32(i)), K_i = K + parse256(I_L)·G, c_i = I_R —
/// computed by Conclave.Wallets' <see cref="Bip32PublicDerivation"/> (with its SLIP-10 retry for the never-seen
/// I_L ≥ n case, so public and private derivation agree).</item>
/// <item>ed25519: Conclave's additive scheme, the same for single and threshold keys
/// (<see cref="Ed25519HdDerivation"/>): I = HMAC-SHA512(c, "Conclave/FROST/ed25519-hd/v1" ‖ A ‖ ser32(i)),
/// tweak = I_L mod L, A_i = A + tweak·B, c_i = I_R. (The tweak is public, so the small bias of reducing 256 bits mod
/// L does not matter: the child secret is the parent's uniform secret plus it.)</item>
/// </list>
/// Paths are "0/1/2", optionally starting with "m/"; every index below 2^31; hardened indexes (' or h) are refused.
/// </summary>
public static class PublicDerivation
{
    public static IReadOnlyList<uint> ParsePath(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        string p = path.Trim();
        if (p is "m" or "")
        {
            return [];
        }

        if (p.StartsWith("m/", StringComparison.Ordinal))
        {
            p = p[2..];
        }

        string[] parts = p.Split('/');
        if (parts.Length > 255)
        {
            throw ChainErrors.Format(nameof(path), "at most 255 levels");
        }

        var result = new List<uint>(parts.Length);
        foreach (string part in parts)
        {
            if (part.EndsWith('\'') || part.EndsWith('h') || part.EndsWith('H'))
            {
                throw ChainErrors.Hardened(nameof(path));
            }

            if (part.Length is 0 or > 10 || !part.All(char.IsAsciiDigit) || !uint.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out uint i))
            {
                throw ChainErrors.Format(nameof(path), "indexes are decimal numbers separated by '/'");
            }

            if (i >= 0x8000_0000u)
            {
                throw ChainErrors.Hardened(nameof(path));
            }

            result.Add(i);
        }

        return result;
    }

    /// <summary>BIP-32 CKDpub along a path: returns the child's compressed key and chain code.</summary>
    public static (byte[] PublicKey, byte[] ChainCode) Secp256k1(ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> chainCode, IReadOnlyList<uint> path)
    {
        ArgumentNullException.ThrowIfNull(path);
        CheckChainCode(chainCode);
        Secp256k1Point k = Secp256k1Point.Parse(publicKey, nameof(publicKey));
        byte[] c = chainCode.ToArray();
        foreach (uint index in path)
        {
            if (index >= 0x8000_0000u)
            {
                throw ChainErrors.Hardened(nameof(path));
            }

            // One CKDpub for the whole code base: Conclave.Wallets' (the one its private derivation agrees with).
            Bip32ChildTweak step = Bip32PublicDerivation.ComputeTweak(k, c, index);
            k = step.ChildPublicKey;
            c = step.ChildChainCode.ToArray();
        }

        return (k.ToCompressed(), c);
    }

    /// <summary>The additive ed25519 derivation along a path: child key, chain code, and the total tweak (public).</summary>
    public static (byte[] PublicKey, byte[] ChainCode, byte[] Tweak) Ed25519(ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> chainCode, IReadOnlyList<uint> path)
    {
        ArgumentNullException.ThrowIfNull(path);
        CheckChainCode(chainCode);
        Ed25519Point a = Ed25519Point.Parse(publicKey, nameof(publicKey));
        byte[] c = chainCode.ToArray();
        Ed25519Scalar total = Ed25519Scalar.Zero;
        foreach (uint index in path)
        {
            if (index >= 0x8000_0000u)
            {
                throw ChainErrors.Hardened(nameof(path));
            }

            (Ed25519Scalar tweak, byte[] childChainCode) = Ed25519HdDerivation.Tweak(a.ToBytes(), c, index);
            c = childChainCode;
            a += Ed25519Point.MultiplyGenerator(tweak);
            total += tweak;
            if (a.IsIdentity)
            {
                throw ChainErrors.Format(nameof(path), "this index gives an invalid key; use the next index");
            }
        }

        return (a.ToBytes(), c, total.ToBytes());
    }

    private static void CheckChainCode(ReadOnlySpan<byte> chainCode)
    {
        if (chainCode.Length != 32)
        {
            throw ChainErrors.Format(nameof(chainCode), "must be 32 bytes");
        }
    }
}
