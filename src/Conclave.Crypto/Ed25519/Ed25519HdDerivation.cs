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
}
