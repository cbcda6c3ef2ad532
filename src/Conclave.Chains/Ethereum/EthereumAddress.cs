using Conclave.Crypto.Hashing;
using Conclave.Crypto.Secp256k1;

namespace Conclave.Chains.Ethereum;

/// <summary>
/// Ethereum account addresses: the last 20 bytes of Keccak-256 of the 64-byte uncompressed public key (x ‖ y),
/// written with the EIP-55 mixed-case checksum.
/// </summary>
public static class EthereumAddress
{
    /// <summary>The 20-byte address of a secp256k1 public key (SEC1 33 or 65 bytes).</summary>
    public static byte[] FromPublicKeyBytes(ReadOnlySpan<byte> secp256k1PublicKey)
    {
        Secp256k1Point p = Secp256k1Point.Parse(secp256k1PublicKey, nameof(secp256k1PublicKey));
        byte[] uncompressed = p.ToUncompressed();
        return Keccak256.HashData(uncompressed.AsSpan(1))[12..];
    }

    /// <summary>The EIP-55 checksummed address of a secp256k1 public key.</summary>
    public static string FromPublicKey(ReadOnlySpan<byte> secp256k1PublicKey) => ToChecksum(FromPublicKeyBytes(secp256k1PublicKey));

    /// <summary>EIP-55: hex digit i is upper case when nibble i of Keccak-256(lowercase hex) is ≥ 8.</summary>
    public static string ToChecksum(ReadOnlySpan<byte> address20)
    {
        if (address20.Length != 20)
        {
            throw ChainErrors.Format(nameof(address20), "must be 20 bytes");
        }

        string lower = Convert.ToHexStringLower(address20);
        byte[] hash = Keccak256.HashData(System.Text.Encoding.ASCII.GetBytes(lower));
        var chars = new char[42];
        chars[0] = '0';
        chars[1] = 'x';
        for (int i = 0; i < 40; i++)
        {
            int nibble = (hash[i / 2] >> (i % 2 == 0 ? 4 : 0)) & 0xf;
            char c = lower[i];
            chars[2 + i] = c is >= 'a' and <= 'f' && nibble >= 8 ? char.ToUpperInvariant(c) : c;
        }

        return new string(chars);
    }

    /// <summary>Parses "0x" + 40 hex digits; a mixed-case address must carry a valid EIP-55 checksum.</summary>
    public static bool TryParse(string? text, out byte[] address20)
    {
        address20 = [];
        if (text is null || text.Length != 42 || !text.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        string hex = text[2..];
        if (!hex.All(Uri.IsHexDigit))
        {
            return false;
        }

        byte[] bytes = Convert.FromHexString(hex);
        bool mixed = hex.Any(char.IsUpper) && hex.Any(char.IsLower);
        if (mixed && ToChecksum(bytes) != "0x" + hex)
        {
            return false;
        }

        address20 = bytes;
        return true;
    }
}
