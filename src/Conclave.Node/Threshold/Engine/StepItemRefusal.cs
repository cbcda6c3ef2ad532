using Conclave.Node.Protocol;

namespace Conclave.Node.Threshold.Engine;

/// <summary>
/// The parts of a coalesced step's reply every protocol frames alike (FROST's <c>frost.shares</c>, DKLs23's
/// <c>dkls.presign.shares</c>): an item's refusal — status 1, the culprit a node names (0: none) and a reason cut to
/// <see cref="MaxReasonBytes"/> — and fields of an exact length.
/// </summary>
internal static class StepItemRefusal
{
    /// <summary>The longest refusal reason a reply carries, in UTF-8 bytes; a longer one is cut (and marked "…").</summary>
    public const int MaxReasonBytes = 512;

    /// <summary>Writes a refused item: status 1, the culprit (0 for none) and the reason, cut to fit.</summary>
    public static void Write(PayloadWriter w, string? refusal, uint? culprit)
    {
        ArgumentNullException.ThrowIfNull(w);
        string reason = refusal ?? "refused";
        if (System.Text.Encoding.UTF8.GetByteCount(reason) > MaxReasonBytes)
        {
            reason = reason[..((MaxReasonBytes / 4) - 1)] + "…"; // at most four bytes a character
        }

        w.U32(1).U32(culprit ?? 0).String(reason);
    }

    /// <summary>Reads a refused item after its status: the reason and the culprit it names (null for none).</summary>
    public static (string Reason, uint? Culprit) Read(ref PayloadReader r)
    {
        uint culprit = r.U32("culprit");
        return (r.String("reason", MaxReasonBytes), culprit == 0 ? null : culprit);
    }

    /// <summary>A field that must be exactly <paramref name="length"/> bytes.</summary>
    public static byte[] Exact(ref PayloadReader r, string field, int length)
    {
        ReadOnlySpan<byte> v = r.Bytes(field, length);
        if (v.Length != length)
        {
            throw new ProtocolException($"{field} must be {length} bytes");
        }

        return v.ToArray();
    }
}
