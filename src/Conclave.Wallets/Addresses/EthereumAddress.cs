using Conclave.Crypto.Hashing;
using Conclave.Crypto.Secp256k1;

namespace Conclave.Wallets.Addresses;

/// <summary>
/// Ethereum account addresses: the last 20 bytes of Keccak-256 of the 64-byte uncompressed public key (Yellow Paper
/// eq. 284), printed with the EIP-55 mixed-case checksum. Kept here until Conclave.Chains exists; then it moves there.
/// </summary>
public static class EthereumAddress
{
    public const int SizeInBytes = 20;

    /// <summary>The 20-byte address of a secp256k1 public key (SEC1 compressed or uncompressed).</summary>
    public static byte[] FromPublicKey(ReadOnlySpan<byte> secp256k1PublicKey)
    {
        if (!Secp256k1Point.TryParse(secp256k1PublicKey, out Secp256k1Point point))
        {
            throw WalletErrors.PublicKey("publicKey", "not a SEC1 secp256k1 point");
        }

        return FromPublicKey(point);
    }

    public static byte[] FromPublicKey(Secp256k1Point publicKey)
    {
        Span<byte> uncompressed = stackalloc byte[Secp256k1Point.UncompressedSizeInBytes];
        publicKey.WriteUncompressed(uncompressed);
        return Keccak256.HashData(uncompressed[1..])[12..];
    }

    /// <summary>The EIP-55 checksummed text ("0x" + 40 hex digits) of a secp256k1 public key.</summary>
    public static string ChecksumAddressOf(ReadOnlySpan<byte> secp256k1PublicKey) => ToChecksumString(FromPublicKey(secp256k1PublicKey));

    /// <summary>
    /// EIP-55: hex-encode the address in lowercase, hash that ASCII text with Keccak-256, and upper-case each letter
    /// whose corresponding hash nibble is 8 or more.
    /// </summary>
    public static string ToChecksumString(ReadOnlySpan<byte> address20)
    {
        if (address20.Length != SizeInBytes)
        {
            throw new Crypto.CryptoFormatException("address", $"address must be {SizeInBytes} bytes, got {address20.Length}");
        }

        string lower = Convert.ToHexStringLower(address20);
        byte[] hash = Keccak256.HashData(System.Text.Encoding.ASCII.GetBytes(lower));
        var chars = new char[2 + lower.Length];
        chars[0] = '0';
        chars[1] = 'x';
        for (int i = 0; i < lower.Length; i++)
        {
            int nibble = (i & 1) == 0 ? hash[i >> 1] >> 4 : hash[i >> 1] & 0x0F;
            char c = lower[i];
            chars[2 + i] = c is >= 'a' and <= 'f' && nibble >= 8 ? (char)(c - 32) : c;
        }

        return new string(chars);
    }
}
