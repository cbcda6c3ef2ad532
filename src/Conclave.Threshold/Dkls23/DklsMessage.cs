using Conclave.Threshold.Dkls23.Internal;
using Conclave.Threshold.Frost;

namespace Conclave.Threshold.Dkls23;

/// <summary>The protocol step a <see cref="DklsMessage"/> belongs to.</summary>
public enum DklsMessageKind : byte
{
    SetupRound1 = 1,
    SetupRound2 = 2,
    SignRound1 = 3,
    SignRound2 = 4,
    Refresh = 5,
}

/// <summary>
/// A point-to-point DKLs23 message: kind, session id, sender, recipient and body. Every message is bound to its session,
/// sender and recipient: a step that gets a message for another session, kind or recipient, a duplicate or a stranger's,
/// refuses it with disposition <see cref="DklsDisposition.Drop"/> and leaves its own state usable, so the caller can drop
/// the message and go on. The body is checked by the step (typed refusal naming the sender). Pairwise-setup and
/// round-two signing bodies carry secrets for the recipient only: the transport must seal them point to point.
/// </summary>
public sealed class DklsMessage
{
    private const byte Version = 1;
    private const int MaxBody = 1 << 20;

    internal DklsMessage(DklsMessageKind kind, ReadOnlySpan<byte> sessionId, Identifier from, Identifier to, byte[] body)
    {
        Kind = kind;
        SessionIdBytes = sessionId.ToArray();
        From = from;
        To = to;
        Body = body;
    }

    public DklsMessageKind Kind { get; }

    internal byte[] SessionIdBytes { get; }

    public byte[] SessionId => (byte[])SessionIdBytes.Clone();

    public Identifier From { get; }

    public Identifier To { get; }

    internal byte[] Body { get; }

    public int SizeInBytes => 4 + SessionIdBytes.Length + 64 + 4 + Body.Length;

    /// <summary>The encoding: version ‖ kind ‖ len(sid) ‖ sid ‖ from ‖ to ‖ len(body) ‖ body.</summary>
    public byte[] ToBytes()
        => new DklsWriter(SizeInBytes).Raw([Version, (byte)Kind, (byte)SessionIdBytes.Length]).Raw(SessionIdBytes)
            .Raw(From.Encoded).Raw(To.Encoded).Blob(Body).ToArray();

    /// <summary>Parses an encoded message. A malformed header is refused as <see cref="DklsDisposition.Drop"/> (no sender can be blamed).</summary>
    public static DklsMessage FromBytes(ReadOnlySpan<byte> encoded)
    {
        if (encoded.Length < 3 + 64 + 4 || encoded[0] != Version || encoded[1] is < 1 or > 5 || encoded[2] is < 16 or > 64)
        {
            throw DklsErrors.Drop("not a DKLs23 message (version, kind or session id length)");
        }

        int sidLen = encoded[2];
        if (encoded.Length < 3 + sidLen + 64 + 4)
        {
            throw DklsErrors.Drop("truncated DKLs23 message header");
        }

        ReadOnlySpan<byte> sid = encoded.Slice(3, sidLen);
        Identifier from = Parties.Read(encoded.Slice(3 + sidLen, 32), "from");
        Identifier to = Parties.Read(encoded.Slice(3 + sidLen + 32, 32), "to");
        var r = new DklsReader(encoded[(3 + sidLen + 64)..].ToArray(), from, "message");
        byte[] body = r.Blob("body", MaxBody).ToArray();
        r.End();
        return new DklsMessage((DklsMessageKind)encoded[1], sid, from, to, body);
    }

    /// <summary>Tests and transports: the same header with another body.</summary>
    internal DklsMessage WithBody(byte[] body) => new(Kind, SessionIdBytes, From, To, body);

    /// <summary>
    /// Checks a step's incoming messages before any state is consumed: kind, session, recipient, one from each expected
    /// peer and no other. Throws with disposition Drop (or InvalidSignerSet when a peer's message is missing).
    /// </summary>
    internal static Dictionary<Identifier, DklsMessage> Route(IReadOnlyList<DklsMessage> incoming, DklsMessageKind kind, ReadOnlySpan<byte> sid, Identifier me, IEnumerable<Identifier> peers)
    {
        ArgumentNullException.ThrowIfNull(incoming);
        var expected = peers.Where(p => !p.Equals(me)).ToHashSet();
        var byPeer = new Dictionary<Identifier, DklsMessage>();
        foreach (DklsMessage m in incoming)
        {
            ArgumentNullException.ThrowIfNull(m);
            if (m.Kind != kind)
            {
                throw DklsErrors.Drop($"a {m.Kind} message from {m.From} where {kind} was expected");
            }

            if (!m.SessionIdBytes.AsSpan().SequenceEqual(sid))
            {
                throw DklsErrors.Drop($"a message from {m.From} for another session");
            }

            if (!m.To.Equals(me))
            {
                throw DklsErrors.Drop($"a message from {m.From} addressed to {m.To}, not to {me}");
            }

            if (!expected.Contains(m.From))
            {
                throw DklsErrors.Drop($"a message from {m.From}, who is not a peer in this session");
            }

            if (!byPeer.TryAdd(m.From, m))
            {
                throw DklsErrors.Drop($"a second {kind} message from {m.From} (replay)");
            }
        }

        List<Identifier> missing = [.. expected.Where(p => !byPeer.ContainsKey(p)).Order()];
        if (missing.Count > 0)
        {
            throw DklsErrors.Refused(DklsFailure.InvalidSignerSet, $"no {kind} message yet from {string.Join(", ", missing)}");
        }

        return byPeer;
    }
}
