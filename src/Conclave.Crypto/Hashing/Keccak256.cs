using Org.BouncyCastle.Crypto.Digests;

namespace Conclave.Crypto.Hashing;

/// <summary>Keccak-256 as Ethereum uses it (the original Keccak padding, not SHA3-256), via BouncyCastle.</summary>
public static class Keccak256
{
    public const int HashSizeInBytes = 32;

    public static void HashData(ReadOnlySpan<byte> data, Span<byte> destination32)
    {
        if (destination32.Length != HashSizeInBytes)
        {
            throw new ArgumentException("destination must be exactly 32 bytes", nameof(destination32));
        }

        var digest = new KeccakDigest(256);
        digest.BlockUpdate(data);
        digest.DoFinal(destination32);
    }

    public static byte[] HashData(ReadOnlySpan<byte> data)
    {
        byte[] h = new byte[HashSizeInBytes];
        HashData(data, h);
        return h;
    }
}
