namespace Conclave.Chains.Solana;

/// <summary>
/// Base58 with the Bitcoin alphabet (as Solana uses it for addresses and signatures): big-endian base conversion,
/// each leading zero byte written as '1'.
/// </summary>
public static class Base58
{
    private const string Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

    public static string Encode(ReadOnlySpan<byte> data)
    {
        int zeros = 0;
        while (zeros < data.Length && data[zeros] == 0)
        {
            zeros++;
        }

        // log(256)/log(58) < 1.37
        var digits = new byte[((data.Length - zeros) * 137 / 100) + 1];
        int length = 0;
        for (int i = zeros; i < data.Length; i++)
        {
            int carry = data[i];
            int j = 0;
            for (; j < length || carry != 0; j++)
            {
                carry += 256 * digits[j];
                digits[j] = (byte)(carry % 58);
                carry /= 58;
            }

            length = j;
        }

        var sb = new System.Text.StringBuilder(zeros + length);
        sb.Append('1', zeros);
        for (int i = length - 1; i >= 0; i--)
        {
            sb.Append(Alphabet[digits[i]]);
        }

        return sb.ToString();
    }

    public static byte[] Decode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        int zeros = 0;
        while (zeros < text.Length && text[zeros] == '1')
        {
            zeros++;
        }

        var bytes = new byte[(text.Length * 733 / 1000) + 1];
        int length = 0;
        for (int i = zeros; i < text.Length; i++)
        {
            int carry = Alphabet.IndexOf(text[i], StringComparison.Ordinal);
            if (carry < 0)
            {
                throw ChainErrors.Format("text", "not base58");
            }

            int j = 0;
            for (; j < length || carry != 0; j++)
            {
                carry += 58 * bytes[j];
                bytes[j] = (byte)(carry & 0xff);
                carry >>= 8;
            }

            length = j;
        }

        var result = new byte[zeros + length];
        for (int i = 0; i < length; i++)
        {
            result[zeros + i] = bytes[length - 1 - i];
        }

        return result;
    }
}
