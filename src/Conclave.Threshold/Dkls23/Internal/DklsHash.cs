using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Conclave.Crypto.Secp256k1;

namespace Conclave.Threshold.Dkls23.Internal;

/// <summary>
/// Domain-separated SHA-256 used as the random oracle of every DKLs23 sub-protocol: a tag, then length-prefixed parts,
/// so no two different inputs hash the same. Every tag starts "conclave/dkls23/".
/// </summary>
internal sealed class DklsHash : IDisposable
{
    private readonly IncrementalHash _h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

    internal DklsHash(string tag) => Add(Encoding.ASCII.GetBytes("conclave/dkls23/" + tag));

    internal DklsHash Add(ReadOnlySpan<byte> part)
    {
        Span<byte> len = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(len, part.Length);
        _h.AppendData(len);
        _h.AppendData(part);
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

    internal byte[] Finish() => _h.GetHashAndReset();

    internal void Finish(Span<byte> destination32)
    {
        if (!_h.TryGetHashAndReset(destination32, out int written) || written != 32)
        {
            throw new InvalidOperationException("hash destination must be 32 bytes");
        }
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

    public void Dispose() => _h.Dispose();

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
