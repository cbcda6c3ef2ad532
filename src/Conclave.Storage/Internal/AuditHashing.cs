using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Conclave.Crypto.Signing;

namespace Conclave.Storage.Internal;

/// <summary>
/// The canonical encoding of an audit entry and of a checkpoint:
/// <code>
/// hash = SHA-256("conclave/audit/v1" ‖ u64be seq ‖ i64be timeMs ‖ lp(actor) ‖ lp(action) ‖ opt(keyId)
///                ‖ opt(requestHash) ‖ lp(decision) ‖ lp(result) ‖ prevHash[32])
/// lp(x)  = u32be len(x) ‖ x (UTF-8 for text);  opt(x) = 0x00 if absent, else 0x01 ‖ lp(x)
/// checkpoint message = "conclave/audit-checkpoint/v1" ‖ u64be seq ‖ hash[32]
/// </code>
/// Every field is length-prefixed, so no two different entries share an encoding.
/// </summary>
internal static class AuditHashing
{
    public const int HashSize = 32;
    private static readonly byte[] s_domain = Encoding.ASCII.GetBytes("conclave/audit/v1");
    private static readonly byte[] s_checkpointDomain = Encoding.ASCII.GetBytes("conclave/audit-checkpoint/v1");

    public static byte[] Hash(long seq, long timeMs, string actor, string action, string? keyId, byte[]? requestHash,
        string decision, string result, ReadOnlySpan<byte> prevHash)
    {
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Span<byte> n = stackalloc byte[8];
        h.AppendData(s_domain);
        BinaryPrimitives.WriteUInt64BigEndian(n, unchecked((ulong)seq));
        h.AppendData(n);
        BinaryPrimitives.WriteInt64BigEndian(n, timeMs);
        h.AppendData(n);
        Text(h, actor);
        Text(h, action);
        Optional(h, keyId is null ? null : Encoding.UTF8.GetBytes(keyId));
        Optional(h, requestHash);
        Text(h, decision);
        Text(h, result);
        h.AppendData(prevHash);
        return h.GetHashAndReset();
    }

    public static byte[] CheckpointMessage(long seq, ReadOnlySpan<byte> hash)
    {
        byte[] m = new byte[s_checkpointDomain.Length + 8 + hash.Length];
        s_checkpointDomain.CopyTo(m, 0);
        BinaryPrimitives.WriteUInt64BigEndian(m.AsSpan(s_checkpointDomain.Length), unchecked((ulong)seq));
        hash.CopyTo(m.AsSpan(s_checkpointDomain.Length + 8));
        return m;
    }

    /// <summary>What the scheme signs: the message itself, or its SHA-256 for digest schemes (ECDSA).</summary>
    public static byte[] CheckpointSigningInput(SignatureScheme scheme, long seq, ReadOnlySpan<byte> hash)
    {
        byte[] m = CheckpointMessage(seq, hash);
        return scheme.InputKind == SignInputKind.Digest32 ? SHA256.HashData(m) : m;
    }

    private static void Text(IncrementalHash h, string s) => Bytes(h, Encoding.UTF8.GetBytes(s));

    private static void Bytes(IncrementalHash h, byte[] b)
    {
        Span<byte> len = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(len, (uint)b.Length);
        h.AppendData(len);
        h.AppendData(b);
    }

    private static void Optional(IncrementalHash h, byte[]? b)
    {
        if (b is null)
        {
            h.AppendData([0]);
        }
        else
        {
            h.AppendData([1]);
            Bytes(h, b);
        }
    }
}
