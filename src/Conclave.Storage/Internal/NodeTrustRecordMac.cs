using System.Buffers.Binary;
using System.Text;

namespace Conclave.Storage.Internal;

/// <summary>
/// Integrity of <c>node_trust</c> rows (issue 13), under the same per-store MAC key as key records
/// (<see cref="KeyRecordMac"/>), domain-separated:
/// <c>node_trust.mac = HMAC-SHA256(macKey, "conclave/node-trust-record/v1" ‖ u64be node_id ‖ lp(state) ‖ lp(reason)
/// ‖ u8 has_replacement ‖ u64be replacement (0 when none) ‖ i64be since)</c>, lp = u32be length ‖ bytes. So whoever can
/// write the database file alone cannot change which node an eviction names, its reason, replacement or time unnoticed.
/// A deleted row (an eviction removed) is not detected by a row MAC; see docs/ROTATION.md.
/// </summary>
internal static class NodeTrustRecordMac
{
    /// <summary>The one-time marker of migration 12: rows written before it get their MAC at the first unlocked open.</summary>
    public const string BackfillMarker = "node_trust_mac_backfill";

    private static readonly byte[] s_domain = Encoding.ASCII.GetBytes("conclave/node-trust-record/v1");

    /// <summary>The columns the MAC covers, in this order, as every reader selects them (then <c>mac</c>).</summary>
    public const string Columns = "node_id, state, reason, replacement, since";

    public static byte[] Encode(long nodeId, string state, string reason, long? replacement, long sinceMs)
    {
        using var ms = new MemoryStream();
        ms.Write(s_domain);
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteInt64BigEndian(b, nodeId);
        ms.Write(b);
        Lp(ms, Encoding.UTF8.GetBytes(state));
        Lp(ms, Encoding.UTF8.GetBytes(reason));
        ms.WriteByte(replacement is null ? (byte)0 : (byte)1);
        BinaryPrimitives.WriteInt64BigEndian(b, replacement ?? 0);
        ms.Write(b);
        BinaryPrimitives.WriteInt64BigEndian(b, sinceMs);
        ms.Write(b);
        return ms.ToArray();
    }

    private static void Lp(MemoryStream ms, byte[] bytes)
    {
        Span<byte> len = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(len, (uint)bytes.Length);
        ms.Write(len);
        ms.Write(bytes);
    }
}
