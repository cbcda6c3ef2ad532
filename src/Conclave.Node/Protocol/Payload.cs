using System.Buffers.Binary;
using System.Text;

namespace Conclave.Node.Protocol;

/// <summary>
/// The binary encoding of request and reply payloads: big-endian integers and u32-length-prefixed byte strings,
/// read back strictly (every field present, nothing left over). Malformed input is a <see cref="ProtocolException"/>.
/// </summary>
public sealed class PayloadWriter
{
    private readonly MemoryStream _buffer = new();

    public PayloadWriter U32(uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(b, value);
        _buffer.Write(b);
        return this;
    }

    public PayloadWriter Bytes(ReadOnlySpan<byte> value)
    {
        U32((uint)value.Length);
        _buffer.Write(value);
        return this;
    }

    public PayloadWriter String(string value) => Bytes(Encoding.UTF8.GetBytes(value));

    public byte[] ToArray() => _buffer.ToArray();
}

public ref struct PayloadReader
{
    private readonly ReadOnlySpan<byte> _data;
    private int _pos;

    public PayloadReader(ReadOnlySpan<byte> data)
    {
        _data = data;
        _pos = 0;
    }

    public uint U32(string field)
    {
        if (_data.Length - _pos < 4)
        {
            throw new ProtocolException($"payload is truncated at {field}");
        }

        uint v = BinaryPrimitives.ReadUInt32BigEndian(_data[_pos..]);
        _pos += 4;
        return v;
    }

    public ReadOnlySpan<byte> Bytes(string field, int maxLength = 1 << 24)
    {
        uint len = U32(field);
        if (len > maxLength || len > _data.Length - _pos)
        {
            throw new ProtocolException($"payload field {field} has a bad length");
        }

        ReadOnlySpan<byte> v = _data.Slice(_pos, (int)len);
        _pos += (int)len;
        return v;
    }

    public string String(string field, int maxLength = 256)
    {
        ReadOnlySpan<byte> b = Bytes(field, maxLength);
        try
        {
            return new UTF8Encoding(false, true).GetString(b);
        }
        catch (DecoderFallbackException)
        {
            throw new ProtocolException($"payload field {field} is not UTF-8");
        }
    }

    /// <summary>A u32 count (1..255, or 0 when <paramref name="allowEmpty"/>) followed by that many u32 node ids.</summary>
    public uint[] NodeIds(string field, bool allowEmpty = false)
    {
        uint count = U32(field);
        if ((count == 0 && !allowEmpty) || count > 255)
        {
            throw new ProtocolException($"{field} must list {(allowEmpty ? 0 : 1)}..255 nodes");
        }

        uint[] ids = new uint[count];
        for (int i = 0; i < count; i++)
        {
            ids[i] = U32(field);
        }

        return ids;
    }

    /// <summary>
    /// The derivation path of a threshold sign request: a u32 count (0 = the key itself, at most 255) and that many
    /// non-hardened BIP-32 indexes (threshold keys derive non-hardened children only).
    /// </summary>
    public uint[] NonHardenedPath()
    {
        uint count = U32("pathLength");
        if (count > MaxPathLength)
        {
            throw new ProtocolException($"a derivation path has at most {MaxPathLength} levels");
        }

        uint[] path = new uint[count];
        for (int i = 0; i < path.Length; i++)
        {
            path[i] = U32("pathIndex");
            if (path[i] >= Conclave.Threshold.Frost.HdDerivation.HardenedOffset)
            {
                throw new ProtocolException("threshold keys derive non-hardened children only");
            }
        }

        return path;
    }

    /// <summary>Most levels a derivation path in a payload may have.</summary>
    public const int MaxPathLength = 255;

    public readonly void End()
    {
        if (_pos != _data.Length)
        {
            throw new ProtocolException("payload has trailing bytes");
        }
    }
}
