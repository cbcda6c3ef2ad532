using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Conclave.Crypto.Ed25519;
using Conclave.Crypto.Secp256k1;
using Conclave.Threshold.Frost.Ciphersuites;

namespace Conclave.Threshold.Frost;

/// <summary>
/// Non-hardened derivation of child keys from a threshold key: a public tweak t and a child chain code from the
/// parent public key and chain code, applied to the group key, every verifying share and every signing share
/// (adding t to the sharing polynomial's constant term). No party ever holds a child private key.
/// <list type="bullet">
/// <item>secp256k1 and taproot: BIP-32 CKDpub (section "Public parent key → public child key"):
/// I = HMAC-SHA512(c_par, ser_P(K_par) ‖ ser_32(i)), t = parse_256(I_L) (refused if ≥ n), K_i = K_par + t·G,
/// c_i = I_R. Child public keys equal BIP-32's for the same parent xpub.</item>
/// <item>ed25519 (no standard exists for non-hardened ed25519 derivation; SLIP-10 is hardened only):
/// I = HMAC-SHA512(c_par, "Conclave/FROST/ed25519-hd/v1" ‖ A_par ‖ ser_32(i)), t = I_L as a little-endian integer
/// mod L, A_i = A_par + t·B, c_i = I_R.</item>
/// </list>
/// Only indices below 2^31 (non-hardened) exist: hardened derivation needs the whole private key.
/// </summary>
public static class HdDerivation
{
    public const uint HardenedOffset = 0x8000_0000;

    public static PublicKeyPackage DeriveChild(PublicKeyPackage parent, uint index)
    {
        ArgumentNullException.ThrowIfNull(parent);
        (Scalar t, byte[] cc) = Tweak(parent, index);
        return parent.WithTweak(false, t, cc);
    }

    /// <summary>The child key package of this participant (the parent is not consumed).</summary>
    public static KeyPackage DeriveChild(KeyPackage parent, uint index)
    {
        ArgumentNullException.ThrowIfNull(parent);
        (Scalar t, byte[] cc) = Tweak(parent.PublicKeyPackage, index);
        return parent.WithTweak(false, t, parent.PublicKeyPackage.WithTweak(false, t, cc));
    }

    public static PublicKeyPackage DerivePath(PublicKeyPackage parent, IReadOnlyList<uint> path)
    {
        ArgumentNullException.ThrowIfNull(path);
        PublicKeyPackage key = parent;
        foreach (uint i in path)
        {
            key = DeriveChild(key, i);
        }

        return key;
    }

    public static KeyPackage DerivePath(KeyPackage parent, IReadOnlyList<uint> path)
    {
        ArgumentNullException.ThrowIfNull(parent);
        ArgumentNullException.ThrowIfNull(path);
        if (path.Count == 0)
        {
            throw ThresholdErrors.Argument(nameof(path), "empty path");
        }

        KeyPackage key = DeriveChild(parent, path[0]);
        for (int k = 1; k < path.Count; k++)
        {
            KeyPackage next = DeriveChild(key, path[k]);
            key.Dispose();
            key = next;
        }

        return key;
    }

    private static (Scalar Tweak, byte[] ChainCode) Tweak(PublicKeyPackage parent, uint index)
    {
        if (index >= HardenedOffset)
        {
            throw ThresholdErrors.Argument(nameof(index), "threshold keys support non-hardened derivation only (index < 2^31)");
        }

        if (parent.Suite is Ed25519Sha512Suite)
        {
            (Ed25519Scalar edTweak, byte[] edChainCode) = Ed25519HdDerivation.Tweak(parent.GroupKey.ToBytes(), parent.ChainCode, index);
            return (new EdScalar(edTweak), edChainCode);
        }

        Span<byte> ser32 = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(ser32, index);
        byte[] i = HMACSHA512.HashData(parent.ChainCode, [.. parent.GroupKey.ToBytes(), .. ser32]);
        try
        {
            Scalar t;
            if (Secp256k1Scalar.TryFromBytes(i.AsSpan(0, 32), out Secp256k1Scalar k))
            {
                t = new K1Scalar(k);
            }
            else
            {
                // BIP-32: "In case parse256(IL) ≥ n ... the resulting key is invalid, and one should proceed with the next value for i."
                throw ThresholdErrors.Argument(nameof(index), "this index gives an invalid child (BIP-32); use the next index");
            }

            return (t, i[32..]);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(i);
        }
    }
}
