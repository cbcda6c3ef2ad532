using System.Globalization;
using System.Numerics;
using System.Text;
using Conclave.Crypto.Hashing;

namespace Conclave.Server.Tests.Venue;

/// <summary>
/// Just enough of the Solidity ABI for the venue tests to call contracts themselves (independently of Conclave's venue
/// profiles): static arguments only, each one 32-byte word (Solidity ABI specification, "Formal Specification of the
/// Encoding"), after the selector = first 4 bytes of Keccak-256 of the canonical signature.
/// </summary>
internal static class Abi
{
    public const long Ether = 1_000_000_000_000_000_000;

    /// <summary>Calldata for <paramref name="signature"/> (canonical, e.g. <c>liquidate(address)</c>) with static arguments:
    /// <see cref="BigInteger"/>, <see cref="long"/>, <see cref="bool"/> or an address as 0x text.</summary>
    public static string Call(string signature, params object[] args) => "0x" + Convert.ToHexStringLower(Selector(signature)) + Words(args);

    public static byte[] Selector(string signature) => Keccak256.HashData(Encoding.ASCII.GetBytes(signature))[..4];

    /// <summary>The arguments as ABI words in hex (no 0x).</summary>
    public static string Words(params object[] args)
    {
        var sb = new StringBuilder();
        foreach (object a in args)
        {
            byte[] word = new byte[32];
            switch (a)
            {
                case string address:
                    Convert.FromHexString(address[2..]).CopyTo(word, 12);
                    break;
                case bool b:
                    word[31] = b ? (byte)1 : (byte)0;
                    break;
                case long l:
                    Write(new BigInteger(l), word);
                    break;
                case int i:
                    Write(new BigInteger(i), word);
                    break;
                case BigInteger v:
                    Write(v, word);
                    break;
                default:
                    throw new ArgumentException("unsupported ABI argument " + a.GetType().Name);
            }

            sb.Append(Convert.ToHexStringLower(word));
        }

        return sb.ToString();
    }

    private static void Write(BigInteger v, byte[] word)
    {
        if (v.Sign < 0)
        {
            v += BigInteger.One << 256; // two's complement of an int256
        }

        byte[] bytes = v.ToByteArray(isUnsigned: true, isBigEndian: true);
        bytes.CopyTo(word, 32 - bytes.Length);
    }

    /// <summary>Word <paramref name="index"/> of returned data as an unsigned integer.</summary>
    public static BigInteger Uint(byte[] data, int index = 0) => new(data.AsSpan(32 * index, 32), isUnsigned: true, isBigEndian: true);

    /// <summary>Word <paramref name="index"/> of returned data as a signed integer (int256).</summary>
    public static BigInteger Int(byte[] data, int index = 0) => new(data.AsSpan(32 * index, 32), isUnsigned: false, isBigEndian: true);

    public static bool Bool(byte[] data, int index = 0) => Uint(data, index) == BigInteger.One;

    /// <summary>Word <paramref name="index"/> as a lowercase 0x address.</summary>
    public static string Address(byte[] data, int index = 0) => "0x" + Convert.ToHexStringLower(data.AsSpan((32 * index) + 12, 20));

    /// <summary>A decimal amount of ether (e.g. "0.42") in wei.</summary>
    public static BigInteger Wei(string ether)
    {
        string[] parts = ether.Split('.');
        string frac = parts.Length > 1 ? parts[1] : string.Empty;
        return BigInteger.Parse(parts[0] + frac.PadRight(18, '0'), NumberStyles.None, CultureInfo.InvariantCulture);
    }
}
