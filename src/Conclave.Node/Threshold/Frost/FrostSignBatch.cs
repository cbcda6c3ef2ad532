using Conclave.Node.Protocol;
using Conclave.Node.Threshold.Engine;

namespace Conclave.Node.Frost;

/// <summary>
/// One signature share asked of a node: sign <see cref="SigningPackage"/> (RFC 9591 section 5.2) with the pooled nonce
/// <see cref="NonceId"/> of <see cref="KeyId"/> at <see cref="KeyVersion"/>, for the (non-hardened) child at
/// <see cref="Path"/> (empty: the key itself). <see cref="SessionId"/> is the signing round's own session: both audit
/// logs name the round by it (<see cref="SignAuditRecords"/>), whichever step carried the item.
/// </summary>
public sealed record FrostSignItem(byte[] SessionId, string KeyId, byte[] NonceId, byte[] SigningPackage, IReadOnlyList<uint> Path, int KeyVersion);

/// <summary>A node's answer to one <see cref="FrostSignItem"/>: the encoded share, or why it refused that item alone.</summary>
public sealed record FrostSignOutcome(byte[]? Share, string? Refusal, uint? Culprit)
{
    public static FrostSignOutcome Signed(byte[] share) => new(share, null, null);

    public static FrostSignOutcome Refused(string reason, uint? culprit = null) => new(null, reason, culprit);
}

/// <summary>
/// The payloads of <see cref="FrostMessages.Sign"/> and <see cref="FrostMessages.Shares"/> (issue 18, coalescing): one
/// step carries 1..<see cref="MaxItems"/> sign items, so concurrent signatures that need the same node share one
/// coordinator envelope signature, one node envelope signature, one frame each way and one group commit of the node's
/// audit records. Each item stands alone: its own nonce, key, version and session; a refusal of one item (a nonce
/// already used, a version the node no longer holds) is answered in that item's slot and the others are still signed.
/// <code>
/// frost.sign:   count (u32, 1..256), then per item: session (32 bytes), keyId, nonce id (16 bytes), signing package,
///               path length (u32, ≤ 255) and that many non-hardened indexes (u32), key version (u32)
/// frost.shares: count (u32, = the request's), then per item: status (u32: 0 signed, 1 refused), then
///               signed: the encoded share; refused: culprit (u32, 0 = none) and the reason (UTF-8, ≤ 512 bytes)
/// </code>
/// The node's envelope signature covers the whole reply, so a bad share is still signed evidence against its sender.
/// </summary>
public static class FrostSignBatch
{
    /// <summary>Most items one step carries (as <c>POST /v1/keys/{name}/sign/batch</c>).</summary>
    public const int MaxItems = 256;


    public static byte[] EncodeRequest(IReadOnlyList<FrostSignItem> items)
    {
        ArgumentNullException.ThrowIfNull(items);
        if (items.Count is 0 or > MaxItems)
        {
            throw new ArgumentException($"a sign step carries 1..{MaxItems} items", nameof(items));
        }

        var w = new PayloadWriter().U32((uint)items.Count);
        foreach (FrostSignItem item in items)
        {
            if (item.SessionId.Length != EnvelopeSigner.SessionIdSizeInBytes || item.NonceId.Length != NonceEpochs.NonceIdSizeInBytes)
            {
                throw new ArgumentException("an item's session id or nonce id has the wrong length", nameof(items));
            }

            w.Bytes(item.SessionId).String(item.KeyId).Bytes(item.NonceId).Bytes(item.SigningPackage).U32((uint)item.Path.Count);
            foreach (uint index in item.Path)
            {
                w.U32(index);
            }

            w.U32((uint)item.KeyVersion);
        }

        return w.ToArray();
    }

    /// <summary>Reads a sign step; anything malformed refuses the whole step (<see cref="ProtocolException"/>).</summary>
    public static IReadOnlyList<FrostSignItem> DecodeRequest(ReadOnlySpan<byte> payload)
    {
        var r = new PayloadReader(payload);
        uint count = r.U32("count");
        if (count is 0 or > MaxItems)
        {
            throw new ProtocolException($"a sign step carries 1..{MaxItems} items");
        }

        var items = new FrostSignItem[count];
        for (int i = 0; i < items.Length; i++)
        {
            byte[] session = StepItemRefusal.Exact(ref r, "session", EnvelopeSigner.SessionIdSizeInBytes);
            string keyId = r.String("keyId");
            byte[] nonceId = StepItemRefusal.Exact(ref r, "nonceId", NonceEpochs.NonceIdSizeInBytes);
            byte[] package = r.Bytes("signingPackage").ToArray();
            uint[] path = r.NonHardenedPath();
            uint version = r.U32("keyVersion");
            if (version is 0 or > int.MaxValue)
            {
                throw new ProtocolException("key version out of range");
            }

            items[i] = new FrostSignItem(session, keyId, nonceId, package, path, (int)version);
        }

        r.End();
        return items;
    }

    public static byte[] EncodeReply(IReadOnlyList<FrostSignOutcome> outcomes)
    {
        ArgumentNullException.ThrowIfNull(outcomes);
        var w = new PayloadWriter().U32((uint)outcomes.Count);
        foreach (FrostSignOutcome o in outcomes)
        {
            if (o.Share is { } share)
            {
                w.U32(0).Bytes(share);
            }
            else
            {
                StepItemRefusal.Write(w, o.Refusal, o.Culprit);
            }
        }

        return w.ToArray();
    }

    /// <summary>
    /// Reads a node's reply to a step of <paramref name="expectedCount"/> items; a reply that does not parse, or answers
    /// another number of items, is the node's fault (<see cref="ProtocolException"/>, the caller names the node).
    /// </summary>
    public static IReadOnlyList<FrostSignOutcome> DecodeReply(ReadOnlySpan<byte> payload, int expectedCount)
    {
        var r = new PayloadReader(payload);
        if (r.U32("count") != expectedCount)
        {
            throw new ProtocolException("the reply answers another number of items than were asked");
        }

        var outcomes = new FrostSignOutcome[expectedCount];
        for (int i = 0; i < outcomes.Length; i++)
        {
            outcomes[i] = r.U32("status") switch
            {
                0 => FrostSignOutcome.Signed(r.Bytes("share", 1024).ToArray()),
                1 => Refusal(ref r),
                _ => throw new ProtocolException("an item's status is neither signed nor refused"),
            };
        }

        r.End();
        return outcomes;
    }

    private static FrostSignOutcome Refusal(ref PayloadReader r)
    {
        (string reason, uint? culprit) = StepItemRefusal.Read(ref r);
        return FrostSignOutcome.Refused(reason, culprit);
    }
}
