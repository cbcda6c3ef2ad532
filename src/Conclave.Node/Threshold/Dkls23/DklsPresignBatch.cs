using Conclave.Node.Protocol;
using Conclave.Node.Threshold.Engine;
using Conclave.Threshold.Dkls23;

namespace Conclave.Node.Threshold.Dkls23;

/// <summary>
/// One online signature asked of a node (DKLs23 Protocol 3.6, the message-dependent step, ePrint 2023/765 §3): sign
/// <see cref="Digest"/> with the node's half of the pooled presignature <see cref="PresignatureId"/> of
/// <see cref="KeyId"/> at <see cref="KeyVersion"/>, made by <see cref="Signers"/> for the non-hardened child at
/// <see cref="Path"/>. <see cref="SessionId"/> is the online round's own session: the server's "dkls.sign" entry and the
/// node's "dkls.sign-share" entry both name the round by it (<c>conclave audit reconcile</c>), whichever step carried it.
/// </summary>
public sealed record DklsPresignItem(byte[] SessionId, string KeyId, int KeyVersion, uint[] Signers, uint[] Path, byte[] PresignatureId, byte[] Digest);

/// <summary>A node's answer to one <see cref="DklsPresignItem"/>: R and its signature share, or why it refused that item alone.</summary>
public sealed record DklsPresignOutcome(byte[]? NoncePoint, byte[]? Share, string? Refusal, uint? Culprit)
{
    public static DklsPresignOutcome Signed(byte[] noncePoint, byte[] share) => new(noncePoint, share, null, null);

    public static DklsPresignOutcome Refused(string reason, uint? culprit = null) => new(null, null, reason, culprit);
}

/// <summary>
/// The payloads of the coalesced online round, <see cref="DklsPresignHandlers.PresignSign"/> and
/// <see cref="DklsPresignHandlers.Shares"/> (issue 15, as FROST's <c>FrostSignBatch</c>): one step carries
/// 1..<see cref="MaxItems"/> presigned signatures that need the same node, so they share one coordinator envelope
/// signature, one node envelope signature, one frame each way and one group commit of the node's audit records. Each
/// item stands alone: its own presignature (taken once), key version lease, session and audit record; a refusal of one
/// item is answered in its own slot and the others are still signed.
/// <code>
/// dkls.presign.sign:   count (u32, 1..256), then per item: session (32 bytes), keyId, key version (u32, ≥ 1),
///                      signers (u32 count 1..255 and that many u32 ids), path length (u32, ≤ 255) and that many
///                      non-hardened indexes (u32), presignature id (16 bytes), digest (32 bytes)
/// dkls.presign.shares: count (u32, = the request's), then per item: status (u32: 0 signed, 1 refused), then
///                      signed: R (33 bytes) and the encoded share (DklsSignatureShare); refused: culprit (u32, 0 = none)
///                      and the reason (UTF-8, ≤ 512 bytes)
/// </code>
/// The node's envelope signature covers the whole reply, so a bad share is still signed evidence against its sender.
/// </summary>
public static class DklsPresignBatch
{
    /// <summary>Most items one step carries.</summary>
    public const int MaxItems = 256;

    /// <summary>Length of a compressed R.</summary>
    public const int NoncePointSizeInBytes = 33;

    /// <summary>Upper bound on an encoded share on the wire (as the three-round answer).</summary>
    public const int MaxShareBytes = 256;

    private const int DigestSizeInBytes = 32;

    public static byte[] EncodeRequest(IReadOnlyList<DklsPresignItem> items)
    {
        ArgumentNullException.ThrowIfNull(items);
        if (items.Count is 0 or > MaxItems)
        {
            throw new ArgumentException($"an online step carries 1..{MaxItems} items", nameof(items));
        }

        var w = new PayloadWriter().U32((uint)items.Count);
        foreach (DklsPresignItem item in items)
        {
            if (item.SessionId.Length != EnvelopeSigner.SessionIdSizeInBytes || item.PresignatureId.Length != MaterialPool<string, DklsPresignature>.IdSizeInBytes
                || item.Digest.Length != DigestSizeInBytes || item.KeyVersion < 1 || item.Signers.Length is 0 or > 255 || item.Path.Length > PayloadReader.MaxPathLength)
            {
                throw new ArgumentException("an item's session, presignature id, digest, version, signers or path is out of range", nameof(items));
            }

            w.Bytes(item.SessionId).String(item.KeyId).U32((uint)item.KeyVersion).U32((uint)item.Signers.Length);
            foreach (uint s in item.Signers)
            {
                w.U32(s);
            }

            w.U32((uint)item.Path.Length);
            foreach (uint index in item.Path)
            {
                w.U32(index);
            }

            w.Bytes(item.PresignatureId).Bytes(item.Digest);
        }

        return w.ToArray();
    }

    /// <summary>Reads an online step; anything malformed refuses the whole step (<see cref="ProtocolException"/>).</summary>
    public static IReadOnlyList<DklsPresignItem> DecodeRequest(ReadOnlySpan<byte> payload)
    {
        var r = new PayloadReader(payload);
        uint count = r.U32("count");
        if (count is 0 or > MaxItems)
        {
            throw new ProtocolException($"an online step carries 1..{MaxItems} items");
        }

        var items = new DklsPresignItem[count];
        for (int i = 0; i < items.Length; i++)
        {
            byte[] session = StepItemRefusal.Exact(ref r, "session", EnvelopeSigner.SessionIdSizeInBytes);
            string keyId = r.String("keyId");
            uint version = r.U32("keyVersion");
            if (version is 0 or > int.MaxValue)
            {
                throw new ProtocolException("key version out of range");
            }

            uint[] signers = r.NodeIds("signers");
            uint[] path = r.NonHardenedPath();
            byte[] id = StepItemRefusal.Exact(ref r, "presignatureId", MaterialPool<string, DklsPresignature>.IdSizeInBytes);
            byte[] digest = StepItemRefusal.Exact(ref r, "digest", DigestSizeInBytes);
            items[i] = new DklsPresignItem(session, keyId, (int)version, signers, path, id, digest);
        }

        r.End();
        return items;
    }

    public static byte[] EncodeReply(IReadOnlyList<DklsPresignOutcome> outcomes)
    {
        ArgumentNullException.ThrowIfNull(outcomes);
        var w = new PayloadWriter().U32((uint)outcomes.Count);
        foreach (DklsPresignOutcome o in outcomes)
        {
            if (o.NoncePoint is { } r && o.Share is { } share)
            {
                w.U32(0).Bytes(r).Bytes(share);
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
    /// another number of items, is the node's fault (<see cref="ProtocolException"/>, the caller names the node). R and
    /// the share are only framed here; the coordinator's combine parses and checks them.
    /// </summary>
    public static IReadOnlyList<DklsPresignOutcome> DecodeReply(ReadOnlySpan<byte> payload, int expectedCount)
    {
        var r = new PayloadReader(payload);
        if (r.U32("count") != expectedCount)
        {
            throw new ProtocolException("the reply answers another number of items than were asked");
        }

        var outcomes = new DklsPresignOutcome[expectedCount];
        for (int i = 0; i < outcomes.Length; i++)
        {
            switch (r.U32("status"))
            {
                case 0:
                    byte[] nonce = StepItemRefusal.Exact(ref r, "R", NoncePointSizeInBytes);
                    outcomes[i] = DklsPresignOutcome.Signed(nonce, r.Bytes("share", MaxShareBytes).ToArray());
                    break;
                case 1:
                    (string reason, uint? culprit) = StepItemRefusal.Read(ref r);
                    outcomes[i] = DklsPresignOutcome.Refused(reason, culprit);
                    break;
                default:
                    throw new ProtocolException("an item's status is neither signed nor refused");
            }
        }

        r.End();
        return outcomes;
    }
}
