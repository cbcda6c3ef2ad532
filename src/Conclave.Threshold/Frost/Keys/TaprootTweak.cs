using Conclave.Crypto.Hashing;
using Conclave.Crypto.Secp256k1;
using Conclave.Threshold.Frost.Ciphersuites;

namespace Conclave.Threshold.Frost;

/// <summary>
/// The BIP-341 taproot tweak applied to a threshold key (frost-taproot only): with internal key P (normalised to
/// even Y, BIP-340), t = int(hash_TapTweak(x(P) ‖ merkle_root)) and the output key Q = P + t·G. Applied to the
/// shares (s_i' = ±s_i + t) and to every verifying share, so FROST signatures made with the tweaked packages are
/// BIP-340 signatures under x(Q) — a taproot key-path spend. An empty merkle root is BIP-341's recommendation for
/// key-path-only outputs ("Q = P + int(hashTapTweak(bytes(P)))G"); a 32-byte root commits to a script tree.
/// </summary>
public static class TaprootTweak
{
    /// <summary>The tweaked public key package (Q and the tweaked verifying shares). The chain code is kept.</summary>
    public static PublicKeyPackage Apply(PublicKeyPackage internalKey, ReadOnlySpan<byte> merkleRoot)
    {
        ArgumentNullException.ThrowIfNull(internalKey);
        (bool negate, Scalar t) = Compute(internalKey, merkleRoot);
        return internalKey.WithTweak(negate, t, internalKey.ChainCode);
    }

    /// <summary>The tweaked key package for this participant (the input is not consumed).</summary>
    public static KeyPackage Apply(KeyPackage internalKey, ReadOnlySpan<byte> merkleRoot)
    {
        ArgumentNullException.ThrowIfNull(internalKey);
        PublicKeyPackage tweaked = Apply(internalKey.PublicKeyPackage, merkleRoot);
        (bool negate, Scalar t) = Compute(internalKey.PublicKeyPackage, merkleRoot);
        return internalKey.WithTweak(negate, t, tweaked);
    }

    private static (bool Negate, Scalar Tweak) Compute(PublicKeyPackage key, ReadOnlySpan<byte> merkleRoot)
    {
        if (!key.Suite.RequiresEvenY)
        {
            throw ThresholdErrors.Argument(nameof(key), "the taproot tweak applies to frost-taproot keys only");
        }

        if (merkleRoot.Length is not (0 or 32))
        {
            throw ThresholdErrors.Argument(nameof(merkleRoot), "a merkle root is empty (key path only) or 32 bytes");
        }

        byte[] h = TaggedHash.HashData("TapTweak", [.. key.GroupKey.XOnly(), .. merkleRoot]);
        // BIP-341 taproot_tweak_pubkey: fail if t ≥ n.
        if (!Secp256k1Scalar.TryFromBytes(h, out Secp256k1Scalar t))
        {
            throw ThresholdErrors.Format(nameof(merkleRoot), "the tap tweak is not below the group order");
        }

        return (key.GroupKey.HasOddY, new K1Scalar(t));
    }
}
