using System.Security.Cryptography;

namespace Conclave.Wallets.Codecs;

/// <summary>
/// Base58 with the Bitcoin alphabet (BIP-32 "Serialization format", Solana addresses). Leading zero bytes map to
/// leading '1' characters. Quadratic in the length, which is fine for keys and addresses (at most ~100 bytes).
/// Not constant time: use it for public data, and for secret data (xprv) only where the encoded form is the output.
/// </summary>
public static class Base58
{
    private const string Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

    /// <summary>Longest input accepted by <see cref="Decode"/> (characters); keys and addresses are far shorter.</summary>
    public const int MaxEncodedLength = 512;

    private static readonly sbyte[] s_digitOf = BuildDigitTable();

    private static sbyte[] BuildDigitTable()
    {
        var table = new sbyte[128];
        Array.Fill(table, (sbyte)-1);
        for (int i = 0; i < Alphabet.Length; i++)
        {
            table[Alphabet[i]] = (sbyte)i;
        }

        return table;
    }

    public static string Encode(ReadOnlySpan<byte> data)
    {
        int zeros = 0;
        while (zeros < data.Length && data[zeros] == 0)
        {
            zeros++;
        }

        // log(256) / log(58) < 1.37: enough base-58 digits for the rest.
        int capacity = ((data.Length - zeros) * 137 / 100) + 1;
        byte[] digits = new byte[capacity];
        int used = 0;
        try
        {
            for (int i = zeros; i < data.Length; i++)
            {
                int carry = data[i];
                for (int j = 0; j < used; j++)
                {
                    carry += digits[j] << 8;
                    digits[j] = (byte)(carry % 58);
                    carry /= 58;
                }

                while (carry > 0)
                {
                    digits[used++] = (byte)(carry % 58);
                    carry /= 58;
                }
            }

            var chars = new char[zeros + used];
            chars.AsSpan(0, zeros).Fill('1');
            for (int k = 0; k < used; k++)
            {
                chars[zeros + k] = Alphabet[digits[used - 1 - k]];
            }

            return new string(chars);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(digits);
        }
    }

    /// <summary>Decodes Base58 text or throws <see cref="Crypto.CryptoFormatException"/> naming the bad position.</summary>
    public static byte[] Decode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.Length == 0)
        {
            throw WalletErrors.Base58("empty");
        }

        if (text.Length > MaxEncodedLength)
        {
            throw WalletErrors.Base58($"longer than {MaxEncodedLength} characters");
        }

        int zeros = 0;
        while (zeros < text.Length && text[zeros] == '1')
        {
            zeros++;
        }

        // log(58) / log(256) < 0.733.
        byte[] bytes = new byte[((text.Length - zeros) * 733 / 1000) + 1];
        int used = 0;
        try
        {
            for (int i = zeros; i < text.Length; i++)
            {
                char c = text[i];
                int digit = c < 128 ? s_digitOf[c] : -1;
                if (digit < 0)
                {
                    throw WalletErrors.Base58($"character {i + 1} is not in the Base58 alphabet");
                }

                int carry = digit;
                for (int j = 0; j < used; j++)
                {
                    carry += bytes[j] * 58;
                    bytes[j] = (byte)(carry & 0xFF);
                    carry >>= 8;
                }

                while (carry > 0)
                {
                    bytes[used++] = (byte)(carry & 0xFF);
                    carry >>= 8;
                }
            }

            byte[] result = new byte[zeros + used];
            for (int k = 0; k < used; k++)
            {
                result[zeros + k] = bytes[used - 1 - k];
            }

            return result;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(bytes);
        }
    }
}

/// <summary>Base58Check (BIP-32 "Serialization format"): Base58 of payload || first 4 bytes of SHA-256(SHA-256(payload)).</summary>
public static class Base58Check
{
    public const int ChecksumSizeInBytes = 4;

    public static string Encode(ReadOnlySpan<byte> payload)
    {
        byte[] buffer = new byte[payload.Length + ChecksumSizeInBytes];
        try
        {
            payload.CopyTo(buffer);
            WriteChecksum(payload, buffer.AsSpan(payload.Length));
            return Base58.Encode(buffer);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(buffer);
        }
    }

    /// <summary>Decodes and verifies the checksum; throws <see cref="Crypto.CryptoFormatException"/> on any error.</summary>
    public static byte[] Decode(string text)
    {
        byte[] raw = Base58.Decode(text);
        try
        {
            if (raw.Length < ChecksumSizeInBytes)
            {
                throw WalletErrors.Base58("too short for a checksum");
            }

            ReadOnlySpan<byte> payload = raw.AsSpan(0, raw.Length - ChecksumSizeInBytes);
            Span<byte> expected = stackalloc byte[ChecksumSizeInBytes];
            WriteChecksum(payload, expected);
            if (!CryptographicOperations.FixedTimeEquals(expected, raw.AsSpan(payload.Length)))
            {
                throw WalletErrors.Base58("checksum does not match");
            }

            return payload.ToArray();
        }
        finally
        {
            CryptographicOperations.ZeroMemory(raw);
        }
    }

    private static void WriteChecksum(ReadOnlySpan<byte> payload, Span<byte> destination4)
    {
        Span<byte> h = stackalloc byte[32];
        SHA256.HashData(payload, h);
        SHA256.HashData(h, h);
        h[..ChecksumSizeInBytes].CopyTo(destination4);
    }
}
