namespace Conclave.Chains.Bitcoin;

/// <summary>
/// Segwit addresses: bech32 (BIP-173) for witness version 0 and bech32m (BIP-350, constant 0x2bc830a3) for
/// versions 1 to 16. Encoding only needs the checksum; decoding verifies it and the program length.
/// </summary>
public static class Bech32m
{
    private const string Charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    private const uint Bech32Const = 1;
    private const uint Bech32mConst = 0x2bc830a3;

    /// <summary>Encodes a segwit address (BIP-350 section "Addresses for segregated witness outputs").</summary>
    public static string EncodeSegwitAddress(string hrp, int witnessVersion, ReadOnlySpan<byte> program)
    {
        ArgumentException.ThrowIfNullOrEmpty(hrp);
        if (witnessVersion is < 0 or > 16)
        {
            throw ChainErrors.Format(nameof(witnessVersion), "must be 0..16");
        }

        if (program.Length is < 2 or > 40 || (witnessVersion == 0 && program.Length is not (20 or 32)))
        {
            throw ChainErrors.Format(nameof(program), "invalid witness program length");
        }

        var data = new List<byte> { (byte)witnessVersion };
        data.AddRange(ConvertBits(program, 8, 5, pad: true));
        uint constant = witnessVersion == 0 ? Bech32Const : Bech32mConst;
        byte[] checksum = Checksum(hrp, data, constant);
        var sb = new System.Text.StringBuilder(hrp.Length + 1 + data.Count + 6);
        sb.Append(hrp).Append('1');
        foreach (byte d in data)
        {
            sb.Append(Charset[d]);
        }

        foreach (byte c in checksum)
        {
            sb.Append(Charset[c]);
        }

        return sb.ToString();
    }

    /// <summary>Decodes a segwit address for <paramref name="hrp"/>; throws for any malformed input.</summary>
    public static (int WitnessVersion, byte[] Program) DecodeSegwitAddress(string hrp, string address)
    {
        ArgumentNullException.ThrowIfNull(hrp);
        ArgumentNullException.ThrowIfNull(address);
        if (address.Length > 90 || (address.ToLowerInvariant() != address && address.ToUpperInvariant() != address))
        {
            throw ChainErrors.Format(nameof(address), "invalid length or mixed case");
        }

        string a = address.ToLowerInvariant();
        int sep = a.LastIndexOf('1');
        if (sep < 1 || a[..sep] != hrp || a.Length - sep - 1 < 7)
        {
            throw ChainErrors.Format(nameof(address), "wrong prefix or too short");
        }

        var values = new List<byte>();
        foreach (char ch in a[(sep + 1)..])
        {
            int v = Charset.IndexOf(ch, StringComparison.Ordinal);
            if (v < 0)
            {
                throw ChainErrors.Format(nameof(address), "invalid character");
            }

            values.Add((byte)v);
        }

        int version = values[0];
        uint expected = version == 0 ? Bech32Const : Bech32mConst;
        if (Polymod(HrpExpand(hrp).Concat(values)) != expected)
        {
            throw ChainErrors.Format(nameof(address), "bad checksum");
        }

        byte[] program = ConvertBits(values.Skip(1).Take(values.Count - 7).ToArray(), 5, 8, pad: false);
        if (version > 16 || program.Length is < 2 or > 40 || (version == 0 && program.Length is not (20 or 32)))
        {
            throw ChainErrors.Format(nameof(address), "invalid witness program");
        }

        return (version, program);
    }

    private static byte[] Checksum(string hrp, List<byte> data, uint constant)
    {
        uint mod = Polymod(HrpExpand(hrp).Concat(data).Concat(new byte[6])) ^ constant;
        var result = new byte[6];
        for (int i = 0; i < 6; i++)
        {
            result[i] = (byte)((mod >> (5 * (5 - i))) & 31);
        }

        return result;
    }

    private static IEnumerable<byte> HrpExpand(string hrp) =>
        hrp.Select(c => (byte)(c >> 5)).Append((byte)0).Concat(hrp.Select(c => (byte)(c & 31)));

    private static uint Polymod(IEnumerable<byte> values)
    {
        ReadOnlySpan<uint> gen = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];
        uint chk = 1;
        foreach (byte v in values)
        {
            uint top = chk >> 25;
            chk = unchecked(((chk & 0x1ffffff) << 5) ^ v);
            for (int i = 0; i < 5; i++)
            {
                if (((top >> i) & 1) != 0)
                {
                    chk ^= gen[i];
                }
            }
        }

        return chk;
    }

    private static byte[] ConvertBits(ReadOnlySpan<byte> data, int from, int to, bool pad)
    {
        int acc = 0;
        int bits = 0;
        int maxv = (1 << to) - 1;
        var result = new List<byte>(((data.Length * from) / to) + 1);
        foreach (byte value in data)
        {
            acc = ((acc << from) | value) & 0xfffff;
            bits += from;
            while (bits >= to)
            {
                bits -= to;
                result.Add((byte)((acc >> bits) & maxv));
            }
        }

        if (pad)
        {
            if (bits > 0)
            {
                result.Add((byte)((acc << (to - bits)) & maxv));
            }
        }
        else if (bits >= from || ((acc << (to - bits)) & maxv) != 0)
        {
            throw ChainErrors.Format("data", "invalid padding");
        }

        return [.. result];
    }
}
