using System.Security.Cryptography;
using Org.BouncyCastle.Crypto.Digests;

namespace Conclave.Wallets.Internal;

/// <summary>HASH160 = RIPEMD-160(SHA-256(data)), the BIP-32 key identifier ("Key identifiers").</summary>
internal static class Hash160
{
    internal const int SizeInBytes = 20;

    internal static void HashData(ReadOnlySpan<byte> data, Span<byte> destination20)
    {
        Span<byte> sha = stackalloc byte[32];
        SHA256.HashData(data, sha);
        var ripemd = new RipeMD160Digest();
        ripemd.BlockUpdate(sha);
        ripemd.DoFinal(destination20);
    }

    /// <summary>The BIP-32 fingerprint: the first 32 bits of the identifier, big-endian.</summary>
    internal static uint Fingerprint(ReadOnlySpan<byte> publicKey)
    {
        Span<byte> id = stackalloc byte[SizeInBytes];
        HashData(publicKey, id);
        return System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(id);
    }
}
