using Conclave.Threshold.Dkls23;

namespace Conclave.Node.Threshold.Dkls23;

/// <summary>
/// Testing only: makes a node misbehave in DKLs23 signing or in the pairwise setup of key generation so that tests can watch its peers and the coordinator catch it
/// through the real transport (docs/DKLS23.md "Every check, and what a party does when it fails"). Each hook edits what
/// this node computed before it is sealed and signed, so the transport accepts it as the node's own. As for
/// <see cref="Conclave.Node.Threshold.Sharing.DkgFaults"/>, the hooks are internal and only the test node host
/// (tests/Conclave.Node.FaultyNode) sets them; the configuration faults "bad-dkls-round1" and "bad-dkls-round2"
/// (NodeConfig.FaultInjection) are two fixed hooks (<see cref="FromConfig"/>).
/// </summary>
internal sealed class DklsFaults
{
    /// <summary>Edits each signing round-one message to a peer, given this node's round-one state.</summary>
    public Func<DklsSignRound1State, DklsMessage, DklsMessage>? Round1 { get; init; }

    /// <summary>Replaces this node's round-one broadcast commitment C_i (the same to every peer), given its round-one state.</summary>
    public Func<DklsSignRound1State, byte[], byte[]>? Broadcast { get; init; }

    /// <summary>
    /// Edits each encoded signing round-one message to a peer, header (version, kind, session id, from, to) and body, just
    /// before it is sealed: for headers no library message can carry (a sender identifier 0 or ≡ 0 mod n).
    /// </summary>
    public Func<byte[], byte[]>? Wire { get; init; }

    /// <summary>Edits each signing round-two message to a peer.</summary>
    public Func<DklsMessage, DklsMessage>? Round2 { get; init; }

    /// <summary>Edits each pairwise-setup round-one message to a peer (base-OT receiver message, base-OT sender point, zero-seed commitment, key digest).</summary>
    public Func<DklsMessage, DklsMessage>? SetupRound1 { get; init; }

    /// <summary>Edits each pairwise-setup round-two message to a peer (the zero-seed opening).</summary>
    public Func<DklsMessage, DklsMessage>? SetupRound2 { get; init; }

    /// <summary>
    /// The presignature the online round of a pooled presignature signs with, given the one taken from the pool (which the
    /// hook disposes if it returns another): for example an earlier presignature whose secrets it kept, a reused presignature.
    /// </summary>
    public Func<DklsPresignature, DklsPresignature>? OnlinePresignature { get; init; }

    /// <summary>Edits this node's encoded signature share (u_i, w_i) before it leaves, in three rounds and from a presignature.</summary>
    public Func<byte[], byte[]>? Share { get; init; }

    /// <summary>
    /// Edits each envelope this node returns after it signed it (any kind; the node service applies it): for example a
    /// flipped signature bit, so a message is not validly signed by its sender although it arrives over that sender's own
    /// authenticated connection (docs/ARCHITECTURE.md "Reply signatures on the signing path").
    /// </summary>
    public Func<Rpc.Envelope, Rpc.Envelope>? SignedEnvelope { get; init; }

    /// <summary>
    /// The configuration faults: "bad-dkls-round1" flips the last bit of every round-one message (in the OT-extension check
    /// value t̃), "bad-dkls-round2" the last bit of every round-two message (in the RVOLE check value ρ̃); anything else: none.
    /// </summary>
    public static DklsFaults? FromConfig(string? faultInjection) => faultInjection switch
    {
        "bad-dkls-round1" => new DklsFaults { Round1 = (_, m) => FlipLastBit(m) },
        "bad-dkls-round2" => new DklsFaults { Round2 = FlipLastBit },
        _ => null,
    };

    /// <summary>Flips the last bit of the encoded message, which is the last bit of its body (DklsMessage.ToBytes).</summary>
    private static DklsMessage FlipLastBit(DklsMessage m)
    {
        byte[] wire = m.ToBytes();
        wire[^1] ^= 1;
        return DklsMessage.FromBytes(wire);
    }
}
