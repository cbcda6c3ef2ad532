using System.Buffers.Binary;
using System.Text;

namespace Conclave.Node.Frost;

/// <summary>Message kinds of the FROST protocols between the coordinator and the nodes, and shared encodings.</summary>
public static class FrostMessages
{
    /// <summary>Coordinator → node: a dealer-split key package sealed to the node's agreement key (key import).</summary>
    public const string Import = "frost.import";

    /// <summary>Node → coordinator: the public key package the node stored.</summary>
    public const string Imported = "frost.imported";

    /// <summary>Coordinator → node: make a batch of round-1 commitments for a key (nonce pool).</summary>
    public const string Commit = "frost.commit";

    /// <summary>Node → coordinator: nonce ids and their public commitments.</summary>
    public const string Commitments = "frost.commitments";

    /// <summary>Coordinator → node: sign a signing package with one pooled nonce.</summary>
    public const string Sign = "frost.sign";

    /// <summary>Node → coordinator: a signature share.</summary>
    public const string Share = "frost.share";

    public const int NonceIdSizeInBytes = 16;

    /// <summary>Most commitments one request may ask for.</summary>
    public const int MaxBatch = 1024;

    /// <summary>The HKDF info (and AEAD context) a sealed key package is bound to: session, recipient node and key id.</summary>
    public static byte[] ImportContext(ReadOnlySpan<byte> sessionId, uint nodeId, string keyId)
    {
        byte[] label = "conclave/frost-import/v1"u8.ToArray();
        byte[] key = Encoding.UTF8.GetBytes(keyId);
        byte[] r = new byte[label.Length + 4 + sessionId.Length + 4 + 4 + key.Length];
        var span = r.AsSpan();
        label.CopyTo(span);
        int p = label.Length;
        BinaryPrimitives.WriteUInt32BigEndian(span[p..], (uint)sessionId.Length);
        p += 4;
        sessionId.CopyTo(span[p..]);
        p += sessionId.Length;
        BinaryPrimitives.WriteUInt32BigEndian(span[p..], nodeId);
        p += 4;
        BinaryPrimitives.WriteUInt32BigEndian(span[p..], (uint)key.Length);
        p += 4;
        key.CopyTo(span[p..]);
        return r;
    }
}
