using System.Buffers.Binary;
using Conclave.Crypto.Secp256k1;
using Conclave.Threshold.Frost;

namespace Conclave.Threshold.Dkls23.Internal;

/// <summary>Writes message bodies: fixed-size fields in a fixed order, no length ambiguity.</summary>
internal sealed class DklsWriter(int capacity)
{
    private readonly List<byte> _buf = new(capacity);

    internal DklsWriter Raw(ReadOnlySpan<byte> b)
    {
        foreach (byte x in b)
        {
            _buf.Add(x);
        }

        return this;
    }

    internal DklsWriter Scalar(Secp256k1Scalar s)
    {
        Span<byte> b = stackalloc byte[32];
        s.WriteTo(b);
        return Raw(b);
    }

    internal DklsWriter Point(Secp256k1Point p)
    {
        Span<byte> b = stackalloc byte[33];
        p.WriteCompressed(b);
        return Raw(b);
    }

    internal DklsWriter U32(uint v)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(b, v);
        return Raw(b);
    }

    internal DklsWriter Blob(ReadOnlySpan<byte> b) => U32((uint)b.Length).Raw(b);

    internal byte[] ToArray() => [.. _buf];
}

/// <summary>
/// Reads message bodies strictly: exact lengths, canonical scalars (below n), points on the curve and not the identity.
/// Every refusal is a typed <see cref="DklsProtocolException"/> naming the field and the sender.
/// </summary>
internal sealed class DklsReader(byte[] data, Identifier? sender, string what)
{
    private int _pos;

    internal ReadOnlySpan<byte> Raw(int count, string field)
    {
        if (count < 0 || data.Length - _pos < count)
        {
            throw DklsErrors.Malformed(sender, $"{what}.{field}", $"truncated (needs {count} more bytes)");
        }

        ReadOnlySpan<byte> s = data.AsSpan(_pos, count);
        _pos += count;
        return s;
    }

    internal Secp256k1Scalar Scalar(string field)
        => Secp256k1Scalar.TryFromBytes(Raw(32, field), out Secp256k1Scalar s)
            ? s
            : throw DklsErrors.Malformed(sender, $"{what}.{field}", "scalar is not below the group order n");

    internal Secp256k1Point Point(string field)
        => Secp256k1Point.TryParse(Raw(33, field), out Secp256k1Point p)
            ? p
            : throw DklsErrors.Malformed(sender, $"{what}.{field}", "not a compressed point on secp256k1 (off the curve, bad prefix or the point at infinity)");

    internal uint U32(string field) => BinaryPrimitives.ReadUInt32BigEndian(Raw(4, field));

    internal ReadOnlySpan<byte> Blob(string field, int maxLength)
    {
        uint len = U32(field);
        if (len > (uint)maxLength)
        {
            throw DklsErrors.Malformed(sender, $"{what}.{field}", $"length {len} exceeds {maxLength}");
        }

        return Raw((int)len, field);
    }

    internal void End()
    {
        if (_pos != data.Length)
        {
            throw DklsErrors.Malformed(sender, what, $"{data.Length - _pos} trailing bytes");
        }
    }
}
