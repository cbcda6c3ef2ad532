using System.Buffers;
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
/// head message       = "conclave/audit-head/v1" ‖ u64be seq ‖ hash[32] ‖ i64be signedTimeMs ‖ u64be checkpointInterval ‖ u64be checkpointsFrom
/// </code>
/// Every field is length-prefixed, so no two different entries share an encoding.
/// </summary>
internal static class AuditHashing
{
    public const int HashSize = 32;
    private static readonly byte[] s_domain = Encoding.ASCII.GetBytes("conclave/audit/v1");
    private static readonly byte[] s_checkpointDomain = Encoding.ASCII.GetBytes("conclave/audit-checkpoint/v1");
    private static readonly byte[] s_headDomain = Encoding.ASCII.GetBytes("conclave/audit-head/v1");

    public static byte[] Hash(long seq, long timeMs, string actor, string action, string? keyId, byte[]? requestHash,
        string decision, string result, ReadOnlySpan<byte> prevHash)
    {
        var utf8 = Encoding.UTF8;
        int length = s_domain.Length + 8 + 8
            + 4 + utf8.GetByteCount(actor) + 4 + utf8.GetByteCount(action)
            + 1 + (keyId is null ? 0 : 4 + utf8.GetByteCount(keyId))
            + 1 + (requestHash is null ? 0 : 4 + requestHash.Length)
            + 4 + utf8.GetByteCount(decision) + 4 + utf8.GetByteCount(result)
            + prevHash.Length;
        byte[] rented = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            Span<byte> b = rented.AsSpan(0, length);
            int o = 0;
            s_domain.CopyTo(b);
            o += s_domain.Length;
            BinaryPrimitives.WriteUInt64BigEndian(b[o..], unchecked((ulong)seq));
            o += 8;
            BinaryPrimitives.WriteInt64BigEndian(b[o..], timeMs);
            o += 8;
            o += Text(b[o..], actor);
            o += Text(b[o..], action);
            if (keyId is null)
            {
                b[o++] = 0;
            }
            else
            {
                b[o++] = 1;
                o += Text(b[o..], keyId);
            }

            if (requestHash is null)
            {
                b[o++] = 0;
            }
            else
            {
                b[o++] = 1;
                BinaryPrimitives.WriteUInt32BigEndian(b[o..], (uint)requestHash.Length);
                requestHash.CopyTo(b[(o + 4)..]);
                o += 4 + requestHash.Length;
            }

            o += Text(b[o..], decision);
            o += Text(b[o..], result);
            prevHash.CopyTo(b[o..]);
            return SHA256.HashData(b);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    private static int Text(Span<byte> destination, string s)
    {
        int n = Encoding.UTF8.GetBytes(s, destination[4..]);
        BinaryPrimitives.WriteUInt32BigEndian(destination, (uint)n);
        return 4 + n;
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

    /// <summary>
    /// The signed head (issue 14 item 6): the writer signs it with every batch; it also fixes the checkpoint interval
    /// and the seq from which a checkpoint is required at every multiple of it, so neither can be changed unnoticed.
    /// </summary>
    public static byte[] HeadSigningInput(SignatureScheme scheme, long seq, ReadOnlySpan<byte> hash, long timeMs, long interval, long from)
    {
        byte[] m = new byte[s_headDomain.Length + 8 + hash.Length + 24];
        s_headDomain.CopyTo(m, 0);
        int o = s_headDomain.Length;
        BinaryPrimitives.WriteUInt64BigEndian(m.AsSpan(o), unchecked((ulong)seq));
        hash.CopyTo(m.AsSpan(o + 8));
        o += 8 + hash.Length;
        BinaryPrimitives.WriteInt64BigEndian(m.AsSpan(o), timeMs);
        BinaryPrimitives.WriteUInt64BigEndian(m.AsSpan(o + 8), unchecked((ulong)interval));
        BinaryPrimitives.WriteUInt64BigEndian(m.AsSpan(o + 16), unchecked((ulong)from));
        return scheme.InputKind == SignInputKind.Digest32 ? SHA256.HashData(m) : m;
    }
}
