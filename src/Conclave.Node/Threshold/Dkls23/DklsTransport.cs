using Conclave.Crypto.Memory;
using Conclave.Node.Config;
using Conclave.Node.Protocol;
using Conclave.Node.Threshold.Engine;
using Conclave.Threshold.Dkls23;
using Conclave.Threshold.Frost;
using Conclave.Threshold.Frost.Ciphersuites;

namespace Conclave.Node.Threshold.Dkls23;

/// <summary>
/// DKLs23 messages on the wire between nodes, sealed point to point in envelopes their sender signs, and library
/// refusals turned into step refusals that name the culprit node. The pairwise setup of a key-generation, refresh or
/// reshare run seals between the run agreement keys its DKG announced (<see cref="SealToRun"/>, <see cref="OpenFromRun"/>:
/// ephemeral-ephemeral X25519, erased after the setup; docs/ROTATION.md "Forward secrecy of relayed shares"). The signing
/// rounds use per-session agreement keys announced in round one (<see cref="RunAgreementKey"/>, one per node and signing
/// session): the messages of both rounds are sealed between the sender's and the recipient's session keys with the same
/// two methods.
/// </summary>
internal static class DklsTransport
{
    /// <summary>The FROST suite whose identifiers DKLs23 keys use (identifier n is node n).</summary>
    public static FrostCiphersuite Suite => FrostCiphersuite.Secp256k1Sha256;

    public static Identifier ToIdentifier(uint node) => Identifier.FromInt(Suite, (int)node);

    /// <summary>Seals each library message to its recipient's run agreement key from this node's (<see cref="RunAgreementKey.SealTo"/>).</summary>
    public static List<OutgoingMessage> SealToRun(StepContext ctx, RunAgreementKey own, IReadOnlyDictionary<uint, byte[]> peerKeys, uint self, string kind, uint round, IReadOnlyList<DklsMessage> messages) =>
        SealToRun(own, peerKeys, self, kind, round, messages, (from, to) => DklsMessages.RunSealContext(ctx.SessionId, round, from, to));

    /// <summary>Opens the relayed messages of one setup step sealed between run agreement keys (checks as <see cref="OpenCore"/>).</summary>
    public static List<DklsMessage> OpenFromRun(StepContext ctx, RunAgreementKey own, IReadOnlyDictionary<uint, byte[]> peerKeys, uint self, string kind, uint round) =>
        OpenFromRun(ctx.Relayed, own, peerKeys, self, kind, round, (from, to) => DklsMessages.RunSealContext(ctx.SessionId, round, from, to));

    /// <summary>Seals each library message to its recipient's run (or session) agreement key from this node's, under the message context <paramref name="context"/>(from, to).</summary>
    /// <param name="editWire">Testing only (DklsFaults.Wire): edits each encoded message, header and body, before it is sealed.</param>
    public static List<OutgoingMessage> SealToRun(RunAgreementKey own, IReadOnlyDictionary<uint, byte[]> peerKeys, uint self, string kind, uint round, IReadOnlyList<DklsMessage> messages,
        Func<uint, uint, byte[]> context, Func<byte[], byte[]>? editWire = null)
    {
        var outgoing = new List<OutgoingMessage>(messages.Count);
        foreach (DklsMessage m in messages)
        {
            uint to = FrostNodeIds.ToNode(m.To);
            byte[] peer = peerKeys.TryGetValue(to, out byte[]? k) ? k : throw new ProtocolException($"node {to} has no run agreement key in this session", to);
            byte[] plain = editWire is null ? m.ToBytes() : editWire(m.ToBytes());
            try
            {
                outgoing.Add(new OutgoingMessage(kind, round, [to], HandlerSupport.SealTo(own, peer, context(self, to), plain)));
            }
            finally
            {
                System.Security.Cryptography.CryptographicOperations.ZeroMemory(plain);
            }
        }

        return outgoing;
    }

    /// <summary>Opens relayed messages sealed between run (or session) agreement keys under the message context <paramref name="context"/>(from, to).</summary>
    /// <param name="expected">The peers each of which must have sent one (a step without one is refused naming nobody); null: the library checks.</param>
    /// <param name="droppedBefore">How many relayed messages the service dropped already (<see cref="StepContext.DroppedRelayed"/>), for the refusal's text.</param>
    public static List<DklsMessage> OpenFromRun(IEnumerable<Rpc.Envelope> relayed, RunAgreementKey own, IReadOnlyDictionary<uint, byte[]> peerKeys, uint self, string kind, uint round,
        Func<uint, uint, byte[]> context, IReadOnlyCollection<uint>? expected = null, int droppedBefore = 0) =>
        OpenCore(relayed, self, kind, round, e =>
        {
            byte[] peer = peerKeys.TryGetValue(e.Sender, out byte[]? k) ? k : throw new ProtocolException($"node {e.Sender} has no run agreement key in this session", e.Sender);
            return HandlerSupport.OpenFrom(own, peer, e.Sender, context(e.Sender, self), e.Payload.ToByteArray(), "DKLs23 message");
        }, expected, droppedBefore);

    /// <summary>
    /// Opens the relayed messages of one step (docs/DKLS23.md "Stray relayed messages"). Envelopes of another kind are
    /// other inputs of the step and left alone; one of <paramref name="kind"/> but of another round, or from a node that
    /// is not an <paramref name="expected"/> peer, is dropped: an honest sender signs messages of this kind in more than
    /// one round, so a genuine one relayed into the wrong step is the relay's doing, not its sender's. Each envelope
    /// kept must be addressed to this node alone, open (<paramref name="open"/>), and be a DKLs23 message from that
    /// sender to this node: one that fails any of these names its sender (its envelope is signed by it). Two different
    /// envelopes from one sender (byte-identical copies never get here: the service drops them) refuse the step naming
    /// nobody, before either is opened: they are no proof against the sender, who signs a second one honestly when it
    /// restarted in the middle of the session and is given round one again under its id (without a restart it refuses
    /// that: UsedSessionIds), and only the one of the current attempt opens, so opening the other would name an honest
    /// sender. A missing message refuses the step naming nobody.
    /// </summary>
    private static List<DklsMessage> OpenCore(IEnumerable<Rpc.Envelope> relayed, uint self, string kind, uint round, Func<Rpc.Envelope, SecretBuffer> open,
        IReadOnlyCollection<uint>? expected, int droppedBefore)
    {
        var bySender = new Dictionary<uint, Rpc.Envelope>();
        int dropped = droppedBefore;
        foreach (Rpc.Envelope e in relayed)
        {
            if (e.Kind != kind)
            {
                continue;
            }

            if (e.Round != round || (expected is not null && !expected.Contains(e.Sender)))
            {
                dropped++;
                continue;
            }

            if (e.Recipients.Count != 1 || e.Recipients[0] != self)
            {
                throw new ProtocolException($"node {e.Sender} sent a {kind} message of round {round} addressed to other nodes than node {self} alone", e.Sender);
            }

            if (!bySender.TryAdd(e.Sender, e))
            {
                throw new ProtocolException($"two different {kind} messages of round {round} from node {e.Sender} were relayed");
            }
        }

        uint[] missing = expected is null ? [] : [.. expected.Where(p => !bySender.ContainsKey(p)).Order()];
        if (missing.Length > 0)
        {
            string strays = dropped == 0 ? "" : $" ({dropped} stray relayed message{(dropped == 1 ? " was" : "s were")} dropped)";
            throw new ProtocolException($"no {kind} message of round {round} from node {string.Join(", ", missing)} was relayed{strays}");
        }

        var incoming = new List<DklsMessage>(bySender.Count);
        foreach (Rpc.Envelope e in bySender.Values)
        {
            using SecretBuffer plain = open(e);
            DklsMessage m;
            try
            {
                m = DklsMessage.FromBytes(plain.ReadOnlySpan);
            }
            catch (DklsProtocolException bad)
            {
                // Sealed to this node and signed by its sender, so its sender's own: named, though the library drops it.
                throw new ProtocolException($"node {e.Sender} sent something that is not a DKLs23 message (DKLs23 {bad.Failure}: {bad.Message})", e.Sender);
            }

            if (!m.From.Equals(ToIdentifier(e.Sender)) || !m.To.Equals(ToIdentifier(self)))
            {
                throw new ProtocolException($"node {e.Sender} sent a DKLs23 message in another participant's name or for another recipient", e.Sender);
            }

            incoming.Add(m);
        }

        return incoming;
    }

    /// <summary>
    /// Runs a step: a DKLs23 refusal becomes a step refusal naming its first culprit (none for a Drop: a message that is
    /// not attributable bans nobody), and every other failure is refused as the FROST handlers refuse it.
    /// <paramref name="onFailure"/> runs first (it drops the session's state).
    /// </summary>
    public static ValueTask<T> Refuse<T>(Func<ValueTask<T>> step, Action onFailure) =>
        HandlerSupport.RefuseOnFailure(async () =>
        {
            try
            {
                return await step().ConfigureAwait(false);
            }
            catch (DklsProtocolException e)
            {
                uint? culprit = e.Disposition != DklsDisposition.Drop && e.Culprits.Count > 0 ? FrostNodeIds.ToNode(e.Culprits[0]) : null;
                throw new ProtocolException($"DKLs23 {e.Failure}: {e.Message}", culprit);
            }
        }, onFailure);
}
