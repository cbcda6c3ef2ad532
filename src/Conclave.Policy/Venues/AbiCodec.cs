using System.Globalization;
using System.Numerics;
using Conclave.Policy.Operations;

namespace Conclave.Policy.Venues;

/// <summary>
/// Encoding and strict decoding of static ABI arguments (Solidity ABI specification, "Formal Specification of the
/// Encoding": each static value is one 32-byte word; uintN/address/bool left-padded with zeros, intN sign-extended,
/// bytesN right-padded). Decoding refuses any word that is not the canonical encoding of its type.
/// </summary>
internal static class AbiCodec
{
    public static void EncodeWord(AbiType type, BigInteger raw, ReadOnlySpan<byte> fixedBytes, Span<byte> word32)
    {
        word32.Clear();
        switch (type.Kind)
        {
            case AbiKind.FixedBytes:
                fixedBytes.CopyTo(word32);
                break;
            case AbiKind.Int when raw.Sign < 0:
                word32.Fill(0xff);
                WriteBigEndian(raw, word32);
                break;
            default:
                WriteBigEndian(raw, word32);
                break;
        }
    }

    private static void WriteBigEndian(BigInteger value, Span<byte> word32)
    {
        byte[] bytes = value.ToByteArray(isUnsigned: value.Sign >= 0, isBigEndian: true);
        if (value.Sign < 0 && bytes.Length > 32)
        {
            throw new OverflowException();
        }

        bytes.CopyTo(word32[(32 - bytes.Length)..]);
    }

    /// <summary>Range check of an integer for a type.</summary>
    public static bool InRange(AbiType type, BigInteger v) => type.Kind switch
    {
        AbiKind.Uint => v.Sign >= 0 && v < (BigInteger.One << type.Bits),
        AbiKind.Int => v >= -(BigInteger.One << (type.Bits - 1)) && v < (BigInteger.One << (type.Bits - 1)),
        AbiKind.Address => v.Sign >= 0 && v < (BigInteger.One << 160),
        AbiKind.Bool => v == 0 || v == 1,
        _ => false,
    };

    /// <summary>Decodes one canonical word; null when the word is not a canonical encoding of the type.</summary>
    public static PolicyValue? DecodeWord(AbiType type, ReadOnlySpan<byte> word, int decimals)
    {
        switch (type.Kind)
        {
            case AbiKind.Address:
                return word[..12].ContainsAnyExcept((byte)0) ? null : PolicyValue.OfAddress("0x" + Convert.ToHexStringLower(word[12..]));
            case AbiKind.Bool:
                return word[..31].ContainsAnyExcept((byte)0) || word[31] > 1 ? null : PolicyValue.Of(word[31] == 1);
            case AbiKind.FixedBytes:
                int n = type.Bits / 8;
                return word[n..].ContainsAnyExcept((byte)0) ? null : PolicyValue.OfText("0x" + Convert.ToHexStringLower(word[..n]));
            case AbiKind.Uint:
            {
                var v = new BigInteger(word, isUnsigned: true, isBigEndian: true);
                return InRange(type, v) ? Scale(v, decimals) : null;
            }

            default:
            {
                var v = new BigInteger(word, isUnsigned: false, isBigEndian: true);
                return InRange(type, v) ? Scale(v, decimals) : null;
            }
        }
    }

    /// <summary>raw / 10^decimals as a decimal, or null when it does not fit a decimal exactly.</summary>
    public static PolicyValue? Scale(BigInteger raw, int decimals)
    {
        var divisor = BigInteger.Pow(10, decimals);
        var whole = BigInteger.DivRem(BigInteger.Abs(raw), divisor, out var frac);
        string text = whole.ToString(CultureInfo.InvariantCulture);
        if (decimals > 0 && !frac.IsZero)
        {
            text += "." + frac.ToString(CultureInfo.InvariantCulture).PadLeft(decimals, '0').TrimEnd('0');
        }

        if (raw.Sign < 0)
        {
            text = "-" + text;
        }

        if (!decimal.TryParse(text, NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out decimal d)
            || PolicyCanonicalNumber(d) != text)
        {
            return null;
        }

        return PolicyValue.Of(d);
    }

    private static string PolicyCanonicalNumber(decimal d) => Documents.PolicyCanonicalWriter.Number(d);

    /// <summary>Parses a plain decimal text (no exponent) times 10^decimals into an integer; null when not exact.</summary>
    public static BigInteger? ParseScaled(string text, int decimals)
    {
        if (string.IsNullOrEmpty(text) || text.Length > 100)
        {
            return null;
        }

        bool negative = text[0] == '-';
        string body = negative ? text[1..] : text;
        string[] parts = body.Split('.');
        if (parts.Length > 2 || parts[0].Length == 0 || !parts[0].All(char.IsAsciiDigit) || (parts.Length == 2 && (parts[1].Length == 0 || !parts[1].All(char.IsAsciiDigit))))
        {
            return null;
        }

        string frac = parts.Length == 2 ? parts[1].TrimEnd('0') : string.Empty;
        if (frac.Length > decimals)
        {
            return null;
        }

        var v = BigInteger.Parse(parts[0] + frac.PadRight(decimals, '0'), NumberStyles.None, CultureInfo.InvariantCulture);
        return negative ? -v : v;
    }
}
