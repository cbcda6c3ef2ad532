using Conclave.Crypto.Hashing;
using Conclave.Crypto.Memory;
using Conclave.Crypto.Secp256k1;

namespace Conclave.Chains.Bitcoin;

/// <summary>
/// The private side of a taproot key-path spend (BIP-341 "Constructing and spending Taproot outputs",
/// <c>taproot_tweak_seckey</c>): from the internal private key d0 with P = d0·G,
/// d = (has_even_y(P) ? d0 : n − d0), t = int(hash_TapTweak(bytes(P) ‖ h)), and the tweaked key (d + t) mod n.
/// A BIP-340 signature made with it verifies under the output key Q = lift_x(P) + t·G that
/// <see cref="TaprootAddress.TweakPublicKey"/> computes, i.e. the key in the P2TR address; the BIP-340 signer
/// normalises Q to even y itself. With an empty <c>h</c> this is BIP-86's key-path-only output.
/// </summary>
public static class TaprootPrivateKey
{
    /// <summary>BIP-86: <c>taproot_tweak_seckey(d0, h = empty)</c>. The result is a 32-byte secret the caller disposes.</summary>
    public static SecretBuffer Bip86Tweak(ReadOnlySpan<byte> internalPrivateKey) => Tweak(internalPrivateKey, []);

    /// <summary>BIP-341 <c>taproot_tweak_seckey(d0, h)</c> with a merkle root h of 0 (key path only) or 32 bytes.</summary>
    public static SecretBuffer Tweak(ReadOnlySpan<byte> internalPrivateKey, ReadOnlySpan<byte> merkleRoot)
    {
        if (internalPrivateKey.Length != Secp256k1Scalar.SizeInBytes)
        {
            throw ChainErrors.Format(nameof(internalPrivateKey), "must be 32 bytes");
        }

        if (merkleRoot.Length is not (0 or 32))
        {
            throw ChainErrors.Format(nameof(merkleRoot), "a merkle root is empty (key path only) or 32 bytes");
        }

        // Scalars are transient constant-time values (Conclave.Crypto); the result goes to a pinned buffer.
        if (!Secp256k1Scalar.TryFromBytes(internalPrivateKey, out Secp256k1Scalar d0) || d0.IsZero)
        {
            throw ChainErrors.Format(nameof(internalPrivateKey), "not a valid secp256k1 private key (0 < d < n)");
        }

        Secp256k1Point p = Secp256k1Point.MultiplyGenerator(d0);
        // The parity of P is public (it is part of the public key), so this branch leaks nothing secret.
        Secp256k1Scalar d = p.HasEvenY ? d0 : -d0;
        byte[] px = p.ToXOnly();
        byte[] h = TaggedHash.HashData("TapTweak", [.. px, .. merkleRoot]);
        if (!Secp256k1Scalar.TryFromBytes(h, out Secp256k1Scalar t))
        {
            // BIP-341: "if t >= SECP256K1_ORDER: raise ValueError"; probability about 2^-128.
            throw ChainErrors.Format(nameof(internalPrivateKey), "the tap tweak is not below the group order");
        }

        Secp256k1Scalar tweaked = d + t;
        if (tweaked.IsZero)
        {
            throw ChainErrors.Format(nameof(internalPrivateKey), "the tweaked private key is zero");
        }

        SecretBuffer result = SecretBuffer.Allocate(Secp256k1Scalar.SizeInBytes, SecretMemoryKind.Pinned);
        tweaked.WriteTo(result.Span);
        return result;
    }
}
