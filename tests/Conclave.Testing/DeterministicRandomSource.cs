using System.Security.Cryptography;
using Conclave.Crypto.Randomness;

namespace Conclave.Testing;

/// <summary>
/// A reproducible random source for tests: SHA-256 in counter mode over a seed. Never for production use,
/// which is why it lives in the test-support project only.
/// </summary>
public sealed class DeterministicRandomSource : IRandomSource
{
    private readonly byte[] _seed;
    private ulong _counter;
    private readonly byte[] _block = new byte[32];
    private int _offset = 32;

    public DeterministicRandomSource(ulong seed) : this(BitConverter.GetBytes(seed)) { }

    public DeterministicRandomSource(ReadOnlySpan<byte> seed) => _seed = seed.ToArray();

    public void Fill(Span<byte> destination)
    {
        for (int i = 0; i < destination.Length; i++)
        {
            if (_offset == 32)
            {
                byte[] input = [.. _seed, .. BitConverter.GetBytes(_counter++)];
                SHA256.HashData(input, _block);
                _offset = 0;
            }

            destination[i] = _block[_offset++];
        }
    }

    /// <summary>The next <paramref name="count"/> bytes of the stream.</summary>
    public byte[] Bytes(int count)
    {
        byte[] b = new byte[count];
        Fill(b);
        return b;
    }
}

/// <summary>Replays fixed bytes (test-vector nonces and randomness), then fails loudly if asked for more.</summary>
public sealed class FixedRandomSource : IRandomSource
{
    private readonly Queue<byte[]> _chunks;

    public FixedRandomSource(params byte[][] chunks) => _chunks = new Queue<byte[]>(chunks);

    public void Fill(Span<byte> destination)
    {
        if (!_chunks.TryDequeue(out byte[]? next) || next.Length != destination.Length)
        {
            throw new InvalidOperationException($"FixedRandomSource has no {destination.Length}-byte chunk queued");
        }

        next.CopyTo(destination);
    }
}
