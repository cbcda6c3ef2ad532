using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;

namespace Conclave.Crypto.Hashing;

/// <summary>BIP-340 tagged hashes: SHA256(SHA256(tag) ‖ SHA256(tag) ‖ data) (BIP-340 "Design", tagged hashes).</summary>
public static class TaggedHash
{
    private static readonly ConcurrentDictionary<string, byte[]> s_prefixes = new(StringComparer.Ordinal);

    public static void HashData(string tag, ReadOnlySpan<byte> data, Span<byte> destination32)
    {
        ArgumentNullException.ThrowIfNull(tag);
        if (destination32.Length != 32)
        {
            throw new ArgumentException("destination must be exactly 32 bytes", nameof(destination32));
        }

        byte[] prefix = s_prefixes.GetOrAdd(tag, static t =>
        {
            byte[] th = SHA256.HashData(Encoding.UTF8.GetBytes(t));
            return [.. th, .. th];
        });
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        h.AppendData(prefix);
        h.AppendData(data);
        h.GetHashAndReset(destination32);
    }

    public static byte[] HashData(string tag, ReadOnlySpan<byte> data)
    {
        byte[] r = new byte[32];
        HashData(tag, data, r);
        return r;
    }
}
