using Conclave.Crypto.Memory;
using Conclave.Node.Config;
using Conclave.Node.Frost;
using Conclave.Node.Protocol;
using Conclave.Threshold.Dkls23;
using Conclave.Threshold.Frost;
using Conclave.Threshold.Frost.Ciphersuites;

namespace Conclave.Node.Threshold.Dkls23;

/// <summary>
/// DKLs23 messages on the wire between nodes, sealed point to point in envelopes their sender signs, and library
/// refusals turned into step refusals that name the culprit node. The pairwise setup of a key-generation, refresh or
/// reshare run seals between the run agreement keys its DKG announced (<see cref="SealToRun"/>, <see cref="OpenFromRun"/>:
/// ephemeral-ephemeral X25519, erased after the setup; docs/ROTATION.md "Forward secrecy of relayed shares"); the
/// signing rounds still seal static-static between the nodes' long-term agreement keys (<see cref="Seal"/>,
/// <see cref="Open"/>, HandlerSupport.SealToLongTermKey).
/// </summary>
internal static class DklsTransport
{
    /// <summary>The FROST suite whose identifiers DKLs23 keys use (identifier n is node n).</summary>
    public static FrostCiphersuite Suite => FrostCiphersuite.Secp256k1Sha256;

    public static Identifier ToIdentifier(uint node) => Identifier.FromInt(Suite, (int)node);

    /// <summary>Seals each library message to the node it is addressed to.</summary>
    public static List<OutgoingMessage> Seal(StepContext ctx, ClusterManifest manifest, uint self, string kind, uint round, IReadOnlyList<DklsMessage> messages, bool corrupt = false)
    {
        var outgoing = new List<OutgoingMessage>(messages.Count);
        foreach (DklsMessage m in messages)
        {
            uint to = FrostNodeIds.ToNode(m.To);
            byte[] plain = m.ToBytes();
            if (corrupt)
            {
                plain[^1] ^= 1; // testing only (NodeConfig.FaultInjection): a well-formed message with a wrong value
            }

            outgoing.Add(new OutgoingMessage(kind, round, [to], HandlerSupport.SealToLongTermKey(ctx, manifest, to, DklsMessages.SealContext(ctx.SessionId, round, self, to), plain)));
        }

        return outgoing;
    }

    /// <summary>Seals each library message to its recipient's run agreement key from this node's (<see cref="RunAgreementKey.SealTo"/>).</summary>
    public static List<OutgoingMessage> SealToRun(StepContext ctx, RunAgreementKey own, IReadOnlyDictionary<uint, byte[]> peerKeys, uint self, string kind, uint round, IReadOnlyList<DklsMessage> messages)
    {
        var outgoing = new List<OutgoingMessage>(messages.Count);
        foreach (DklsMessage m in messages)
        {
            uint to = FrostNodeIds.ToNode(m.To);
            byte[] peer = peerKeys.TryGetValue(to, out byte[]? k) ? k : throw new ProtocolException($"node {to} has no run agreement key in this session", to);
            outgoing.Add(new OutgoingMessage(kind, round, [to], HandlerSupport.SealTo(own, peer, DklsMessages.RunSealContext(ctx.SessionId, round, self, to), m.ToBytes())));
        }

        return outgoing;
    }

    /// <summary>Opens the relayed messages of one step sealed between run agreement keys (checks as <see cref="Open"/>).</summary>
    public static List<DklsMessage> OpenFromRun(StepContext ctx, RunAgreementKey own, IReadOnlyDictionary<uint, byte[]> peerKeys, uint self, string kind, uint round) =>
        OpenCore(ctx, self, kind, round, e =>
        {
            byte[] peer = peerKeys.TryGetValue(e.Sender, out byte[]? k) ? k : throw new ProtocolException($"node {e.Sender} has no run agreement key in this session", e.Sender);
            return HandlerSupport.OpenFrom(own, peer, e.Sender, DklsMessages.RunSealContext(ctx.SessionId, round, e.Sender, self), e.Payload.ToByteArray(), "DKLs23 message");
        });

    /// <summary>
    /// Opens the relayed messages of one step: each must be of <paramref name="kind"/> and <paramref name="round"/>,
    /// addressed to this node alone, open under the sender's agreement key, and be a DKLs23 message from that sender to
    /// this node. A message that fails any of these names its sender (its envelope is signed by it).
    /// </summary>
    public static List<DklsMessage> Open(StepContext ctx, ClusterManifest manifest, uint self, string kind, uint round) =>
        OpenCore(ctx, self, kind, round, e => HandlerSupport.OpenFromLongTermKey(ctx, manifest, e.Sender, DklsMessages.SealContext(ctx.SessionId, round, e.Sender, self), e.Payload.ToByteArray(), "DKLs23 message"));

    private static List<DklsMessage> OpenCore(StepContext ctx, uint self, string kind, uint round, Func<Rpc.Envelope, SecretBuffer> open)
    {
        var incoming = new List<DklsMessage>(ctx.Relayed.Count);
        foreach (Rpc.Envelope e in ctx.Relayed)
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
            catch (DklsProtocolException)
            {
                throw new ProtocolException($"node {e.Sender} sent something that is not a DKLs23 message", e.Sender);
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
