using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Conclave.Crypto.Secp256k1;

namespace Conclave.Threshold.Dkls23.Internal;

/// <summary>
/// Domain-separated SHA-256 used as the random oracle of every DKLs23 sub-protocol: a tag, then length-prefixed parts,
/// so no two different inputs hash the same. Every tag starts "conclave/dkls23/".
/// The encoding is gathered in a pooled buffer (zeroed when it goes back: parts may be secret) and hashed once at
/// <see cref="Finish()"/>: the same SHA-256 of the same bytes as appending each part to an incremental hash, without a
/// call into the platform's SHA-256 per part (the OT setup and the RVOLE check hash thousands of short parts).
/// </summary>
internal sealed class DklsHash : IDisposable
{
    private const string Prefix = "conclave/dkls23/";
    private byte[] _buffer;
    private int _length;

    internal DklsHash(string tag)
    {
        _buffer = ArrayPool<byte>.Shared.Rent(256);
        int n = Encoding.ASCII.GetByteCount(tag) + Prefix.Length;
        Span<byte> t = Reserve(4 + n);
        BinaryPrimitives.WriteInt32BigEndian(t, n);
        Encoding.ASCII.GetBytes(Prefix, t.Slice(4, Prefix.Length));
        Encoding.ASCII.GetBytes(tag, t[(4 + Prefix.Length)..]);
    }

    internal DklsHash Add(ReadOnlySpan<byte> part)
    {
        Span<byte> dst = Reserve(4 + part.Length);
        BinaryPrimitives.WriteInt32BigEndian(dst, part.Length);
        part.CopyTo(dst[4..]);
        return this;
    }

    internal DklsHash Add(int value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(b, value);
        return Add(b);
    }

    internal DklsHash Add(Secp256k1Point p)
    {
        Span<byte> b = stackalloc byte[33];
        p.WriteCompressed(b);
        return Add(b);
    }

    internal DklsHash Add(Frost.Identifier id) => Add(id.Encoded);

    internal byte[] Finish()
    {
        byte[] digest = new byte[32];
        Finish(digest);
        return digest;
    }

    /// <summary>The hash of everything added; the hash is then reset to empty (no tag) and may be disposed.</summary>
    internal void Finish(Span<byte> destination32)
    {
        ObjectDisposedException.ThrowIf(_buffer.Length == 0, this);
        if (destination32.Length != 32)
        {
            throw new InvalidOperationException("hash destination must be 32 bytes");
        }

        SHA256.HashData(_buffer.AsSpan(0, _length), destination32);
        CryptographicOperations.ZeroMemory(_buffer.AsSpan(0, _length));
        _length = 0;
    }

    /// <summary>The hash as a scalar: SHA-256 output reduced mod n (bias below 2^-127 because n > 2^256 − 2^129).</summary>
    internal Secp256k1Scalar FinishScalar()
    {
        Span<byte> d = stackalloc byte[32];
        Finish(d);
        try
        {
            return Secp256k1Scalar.FromBytesReduced(d);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(d);
        }
    }

    public void Dispose()
    {
        byte[] b = _buffer;
        if (b.Length == 0)
        {
            return;
        }

        CryptographicOperations.ZeroMemory(b.AsSpan(0, _length));
        _buffer = [];
        _length = 0;
        ArrayPool<byte>.Shared.Return(b);
    }

    /// <summary>The next <paramref name="count"/> bytes of the encoding, growing the pooled buffer (the old one zeroed).</summary>
    private Span<byte> Reserve(int count)
    {
        ObjectDisposedException.ThrowIf(_buffer.Length == 0, this);
        if (_length + count > _buffer.Length)
        {
            byte[] bigger = ArrayPool<byte>.Shared.Rent(Math.Max(_length + count, 2 * _buffer.Length));
            _buffer.AsSpan(0, _length).CopyTo(bigger);
            CryptographicOperations.ZeroMemory(_buffer.AsSpan(0, _length));
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = bigger;
        }

        Span<byte> span = _buffer.AsSpan(_length, count);
        _length += count;
        return span;
    }

    internal static byte[] Of(string tag, params ReadOnlySpan<byte[]> parts)
    {
        using var h = new DklsHash(tag);
        foreach (byte[] p in parts)
        {
            h.Add(p);
        }

        return h.Finish();
    }
}
