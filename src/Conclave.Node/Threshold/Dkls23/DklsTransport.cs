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
    public static List<DklsMessage> OpenFromRun(IEnumerable<Rpc.Envelope> relayed, RunAgreementKey own, IReadOnlyDictionary<uint, byte[]> peerKeys, uint self, string kind, uint round,
        Func<uint, uint, byte[]> context) =>
        OpenCore(relayed, self, kind, round, e =>
        {
            byte[] peer = peerKeys.TryGetValue(e.Sender, out byte[]? k) ? k : throw new ProtocolException($"node {e.Sender} has no run agreement key in this session", e.Sender);
            return HandlerSupport.OpenFrom(own, peer, e.Sender, context(e.Sender, self), e.Payload.ToByteArray(), "DKLs23 message");
        });

    /// <summary>
    /// Opens the relayed messages of one step: each must be of <paramref name="kind"/> and <paramref name="round"/>,
    /// addressed to this node alone, open (<paramref name="open"/>), and be a DKLs23 message from that sender to this
    /// node. A message that fails any of these names its sender (its envelope is signed by it).
    /// </summary>
    private static List<DklsMessage> OpenCore(IEnumerable<Rpc.Envelope> relayed, uint self, string kind, uint round, Func<Rpc.Envelope, SecretBuffer> open)
    {
        var incoming = new List<DklsMessage>();
        foreach (Rpc.Envelope e in relayed)
        {
            if (e.Kind != kind || e.Round != round || e.Recipients.Count != 1 || e.Recipients[0] != self)
            {
                throw new ProtocolException($"expected {kind} messages of round {round} addressed to node {self}, got '{e.Kind}' from {e.Sender}", e.Sender);
            }

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
