using System.Numerics;

namespace Conclave.Chains.Ethereum;

/// <summary>
/// Recursive Length Prefix encoding (Ethereum Yellow Paper, appendix B). Items are byte strings or lists;
/// integers are big-endian with no leading zeros (zero is the empty string). Decoding is strict: canonical
/// lengths only, no trailing bytes.
/// </summary>
public static class Rlp
{
    public static byte[] EncodeBytes(ReadOnlySpan<byte> value)
    {
        if (value.Length == 1 && value[0] < 0x80)
        {
            return [value[0]];
        }

        return [.. Prefix(0x80, value.Length), .. value];
    }

    public static byte[] EncodeUInt(BigInteger value)
    {
        if (value.Sign < 0)
        {
            throw ChainErrors.Format(nameof(value), "must not be negative");
        }

        return EncodeBytes(value.IsZero ? [] : value.ToByteArray(isUnsigned: true, isBigEndian: true));
    }

    /// <summary>Encodes a list from items that are already RLP-encoded.</summary>
    public static byte[] EncodeList(params IEnumerable<byte[]> encodedItems)
    {
        ArgumentNullException.ThrowIfNull(encodedItems);
        byte[] payload = [.. encodedItems.SelectMany(i => i)];
        return [.. Prefix(0xc0, payload.Length), .. payload];
    }

    private static byte[] Prefix(byte offset, int length)
    {
        if (length < 56)
        {
            return [(byte)(offset + length)];
        }

        byte[] len = new BigInteger(length).ToByteArray(isUnsigned: true, isBigEndian: true);
        return [(byte)(offset + 55 + len.Length), .. len];
    }

    /// <summary>Decodes one item that spans the whole input.</summary>
    public static RlpItem Decode(ReadOnlySpan<byte> encoded)
    {
        int consumed = DecodeAt(encoded, out RlpItem item);
        if (consumed != encoded.Length)
        {
            throw ChainErrors.Format(nameof(encoded), "trailing bytes after the RLP item");
        }

        return item;
    }

    private static int DecodeAt(ReadOnlySpan<byte> s, out RlpItem item)
    {
        if (s.IsEmpty)
        {
            throw ChainErrors.Format("encoded", "truncated RLP");
        }

        byte b = s[0];
        if (b < 0x80)
        {
            item = new RlpItem([b], null);
            return 1;
        }

        bool isList = b >= 0xc0;
        int shortBase = isList ? 0xc0 : 0x80;
        int header;
        int length;
        if (b - shortBase < 56)
        {
            header = 1;
            length = b - shortBase;
        }
        else
        {
            int lenOfLen = b - shortBase - 55;
            if (lenOfLen > 4 || s.Length < 1 + lenOfLen || s[1] == 0)
            {
                throw ChainErrors.Format("encoded", "bad RLP length");
            }

            length = 0;
            for (int i = 0; i < lenOfLen; i++)
            {
                length = checked((length << 8) | s[1 + i]);
            }

            if (length < 56)
            {
                throw ChainErrors.Format("encoded", "non-canonical RLP length");
            }

            header = 1 + lenOfLen;
        }

        if (s.Length - header < length)
        {
            throw ChainErrors.Format("encoded", "truncated RLP");
        }

        ReadOnlySpan<byte> body = s.Slice(header, length);
        if (!isList)
        {
            if (length == 1 && body[0] < 0x80)
            {
                throw ChainErrors.Format("encoded", "non-canonical single byte");
            }

            item = new RlpItem(body.ToArray(), null);
            return header + length;
        }

        var items = new List<RlpItem>();
        while (!body.IsEmpty)
        {
            int n = DecodeAt(body, out RlpItem child);
            items.Add(child);
            body = body[n..];
        }

        item = new RlpItem(null, items);
        return header + length;
    }
}

/// <summary>A decoded RLP item: a byte string or a list.</summary>
public sealed class RlpItem
{
    internal RlpItem(byte[]? bytes, IReadOnlyList<RlpItem>? items)
    {
        Bytes = bytes;
        Items = items;
    }

    public byte[]? Bytes { get; }

    public IReadOnlyList<RlpItem>? Items { get; }

    public bool IsList => Items is not null;

    public byte[] AsBytes(string name) => Bytes ?? throw ChainErrors.Format(name, "expected a byte string");

    public IReadOnlyList<RlpItem> AsList(string name) => Items ?? throw ChainErrors.Format(name, "expected a list");

    /// <summary>A canonical unsigned integer (no leading zero byte), at most 32 bytes.</summary>
    public BigInteger AsUInt(string name)
    {
        byte[] b = AsBytes(name);
        if (b.Length > 32 || (b.Length > 0 && b[0] == 0))
        {
            throw ChainErrors.Format(name, "not a canonical integer");
        }

        return new BigInteger(b, isUnsigned: true, isBigEndian: true);
    }
}
