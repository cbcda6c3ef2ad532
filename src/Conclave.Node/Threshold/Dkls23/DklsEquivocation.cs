using System.Security.Cryptography;
using Conclave.Node.Protocol;
using Conclave.Node.Rpc;

namespace Conclave.Node.Threshold.Dkls23;

/// <summary>
/// The signed round-one broadcast of DKLs23 signing on the cluster (docs/DKLS23.md "Echo of round-one data") and the
/// proof that its author equivocated. In round one each signer sends every peer a <see cref="DklsMessages.SignCommit"/>
/// envelope, signed by its identity key, whose payload is the hash of the coordinator's round-one request it answers and
/// its broadcast commitment C_i (<c>DklsSignRound1State.Broadcast</c>, ePrint 2023/765 Protocol 3.6 round one, the
/// commitment to R_i, made the same for every peer). An honest node answers one request once (the replay guard refuses
/// the same request again) and sends the same C_i to all its peers, so two such envelopes from one node for the same
/// session and request with different commitments are proof against that node that nobody else can forge: not a peer,
/// not the coordinator, which can only relay what the node signed. Pure: envelopes in, a verdict out.
/// </summary>
public static class DklsEquivocation
{
    /// <summary>The coordinator's signing round-one request as its answer names it: SHA-256 of the signed transcript.</summary>
    public static byte[] RequestHash(Envelope request) => EnvelopeSigner.Digest(request);

    /// <summary>The payload of a <see cref="DklsMessages.SignCommit"/> envelope: the request hash, then C_i.</summary>
    public static byte[] CommitPayload(ReadOnlySpan<byte> requestHash, ReadOnlySpan<byte> broadcast) =>
        new PayloadWriter().Bytes(requestHash).Bytes(broadcast).ToArray();

    /// <summary>Reads a <see cref="DklsMessages.SignCommit"/> payload (two 32-byte fields, nothing after them).</summary>
    public static (byte[] RequestHash, byte[] Broadcast) ReadCommit(ReadOnlySpan<byte> payload)
    {
        var r = new PayloadReader(payload);
        byte[] request = r.Bytes("requestHash", 32).ToArray();
        byte[] broadcast = r.Bytes("broadcast", 32).ToArray();
        r.End();
        return request.Length == 32 && broadcast.Length == 32 ? (request, broadcast) : throw new ProtocolException("a round-one broadcast holds two 32-byte values");
    }

    /// <summary>
    /// True when <paramref name="a"/> and <paramref name="b"/> are both round-one broadcasts from <paramref name="author"/>
    /// for the same session and the same request, well formed, with different commitments. Signatures are not checked here
    /// (the caller verified them, or use <see cref="Proves"/>).
    /// </summary>
    public static bool Conflict(Envelope a, Envelope b, uint author)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        if (a.Kind != DklsMessages.SignCommit || b.Kind != DklsMessages.SignCommit || a.Round != 1 || b.Round != 1
            || a.Sender != author || b.Sender != author || !a.SessionId.Equals(b.SessionId))
        {
            return false;
        }

        try
        {
            (byte[] ra, byte[] ca) = ReadCommit(a.Payload.Span);
            (byte[] rb, byte[] cb) = ReadCommit(b.Payload.Span);
            return ra.AsSpan().SequenceEqual(rb) && !ca.AsSpan().SequenceEqual(cb);
        }
        catch (ProtocolException)
        {
            return false;
        }
    }

    /// <summary>
    /// The offline check of equivocation evidence: both envelopes signed by <paramref name="author"/>'s identity key
    /// <paramref name="authorIdentityKey"/> (Ed25519) and in <see cref="Conflict"/>. A coordinator that names a node
    /// without two such envelopes named it falsely.
    /// </summary>
    public static bool Proves(Envelope a, Envelope b, uint author, ReadOnlySpan<byte> authorIdentityKey) =>
        Conflict(a, b, author) && EnvelopeSigner.VerifyRecorded(a, authorIdentityKey) && EnvelopeSigner.VerifyRecorded(b, authorIdentityKey);
}
