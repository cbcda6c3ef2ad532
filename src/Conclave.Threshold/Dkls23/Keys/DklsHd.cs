using System.Buffers.Binary;
using System.Security.Cryptography;
using Conclave.Crypto.Secp256k1;

namespace Conclave.Threshold.Dkls23;

/// <summary>
/// Non-hardened HD children of a DKLs23 key: BIP-32 CKDpub ("Public parent key → public child key") on the group key,
/// I = HMAC-SHA512(c_par, ser_P(K_par) ‖ ser_32(i)), K_i = K_par + parse_256(I_L)·G, c_i = I_R. Along a path the
/// tweaks add up to δ, and the child key is PK + δ·G: signing for the child adds δ to one signer's additive share
/// (the lowest identifier), fixed before R is revealed (Groth–Shoup, ePrint 2021/1330, section 5 on presignatures with
/// additive key derivation). Child keys equal BIP-32's for the same parent xpub.
/// </summary>
public static class DklsHd
{
    public const uint HardenedOffset = 0x8000_0000;

    /// <summary>The child public key (33 bytes compressed) and chain code at <paramref name="path"/>.</summary>
    public static (byte[] PublicKey, byte[] ChainCode) DerivePublic(DklsPublicKey key, IReadOnlyList<uint> path)
    {
        ArgumentNullException.ThrowIfNull(key);
        (Secp256k1Point k, _, byte[] cc) = Derive(key.GroupKey, key.ChainCode, path);
        return (k.ToCompressed(), cc);
    }

    internal static (Secp256k1Point Key, Secp256k1Scalar Tweak, byte[] ChainCode) Derive(Secp256k1Point parent, ReadOnlySpan<byte> chainCode, IReadOnlyList<uint> path)
    {
        ArgumentNullException.ThrowIfNull(path);
        Secp256k1Point k = parent;
        Secp256k1Scalar delta = Secp256k1Scalar.Zero;
        byte[] cc = chainCode.ToArray();
        Span<byte> data = stackalloc byte[37];
        for (int n = 0; n < path.Count; n++)
        {
            uint index = path[n];
            if (index >= HardenedOffset)
            {
                throw DklsErrors.Refused(DklsFailure.PresignatureRefused, $"path[{n}]: threshold keys support non-hardened derivation only (index < 2^31)");
            }

            k.WriteCompressed(data[..33]);
            BinaryPrimitives.WriteUInt32BigEndian(data[33..], index);
            byte[] i = HMACSHA512.HashData(cc, data);
            try
            {
                if (!Secp256k1Scalar.TryFromBytes(i.AsSpan(0, 32), out Secp256k1Scalar il))
                {
                    throw DklsErrors.Refused(DklsFailure.PresignatureRefused, $"path[{n}]: this index gives an invalid child (BIP-32); use the next index");
                }

                k += Secp256k1Point.MultiplyGenerator(il);
                if (k.IsIdentity)
                {
                    throw DklsErrors.Refused(DklsFailure.PresignatureRefused, $"path[{n}]: the child key is the point at infinity (BIP-32); use the next index");
                }

                delta += il;
                cc = i[32..];
            }
            finally
            {
                CryptographicOperations.ZeroMemory(i);
            }
        }

        return (k, delta, cc);
    }
}
