using System.Security.Cryptography;
using Conclave.Node.Config;
using Conclave.Storage;
using Conclave.Storage.Audit;

namespace Conclave.Node.Protocol;

/// <summary>
/// The coordinator tells a node that a peer was evicted (<see cref="EvictKind"/>) or re-admitted
/// (<see cref="ReadmitKind"/>), in a request signed by the coordinator's identity key like every request (checked by the
/// service before this handler runs). Payload: the peer's node id (u32). The node records it in its own store
/// (<see cref="PeerTrust"/>), audits it and answers a signed <see cref="RecordedKind"/>: node id (u32), then 1 when the
/// peer is now untrusted here, 0 when trusted. A node is never told of its own eviction (the evicted node is never
/// contacted) and refuses a notice about itself or a node outside the manifest.
/// <para>
/// Why a node may take the coordinator's word here (docs/ROTATION.md "What the other nodes do"): an eviction only makes
/// the node refuse more, which a lying coordinator could already achieve by never relaying that peer; a re-admission
/// returns the node to accepting the peer, which is where every node stood before it was told.
/// </para>
/// </summary>
public sealed class NodeTrustHandler(PeerTrust trust, ClusterManifest manifest, IConclaveStore store, NodeIdentity identity) : IProtocolHandler
{
    public const string EvictKind = "node.trust.evict";
    public const string ReadmitKind = "node.trust.readmit";
    public const string RecordedKind = "node.trust.recorded";

    public IReadOnlyCollection<string> Kinds { get; } = [EvictKind, ReadmitKind];

    /// <summary>The payload of a notice about <paramref name="node"/>.</summary>
    public static byte[] NoticePayload(uint node) => new PayloadWriter().U32(node).ToArray();

    /// <summary>The payload of a node's answer: the peer and whether it is now untrusted there.</summary>
    public static byte[] RecordedPayload(uint node, bool untrusted) => new PayloadWriter().U32(node).U32(untrusted ? 1u : 0u).ToArray();

    public async ValueTask<IReadOnlyList<OutgoingMessage>> HandleAsync(StepContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        var r = new PayloadReader(context.Request.Payload.Span);
        uint node = r.U32("node");
        r.End();
        if (node == identity.NodeId)
        {
            throw new ProtocolException($"node {node} is never told of its own eviction or re-admission");
        }

        if (manifest.Nodes.All(n => n.Id != node))
        {
            throw new ProtocolException($"node {node} is not in the cluster manifest");
        }

        bool evict = context.Request.Kind == EvictKind;
        try
        {
            if (evict)
            {
                await trust.MarkUntrustedAsync(node, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await trust.ReadmitAsync(node, cancellationToken).ConfigureAwait(false);
            }

            await store.Audit.AppendAsync(new AuditEntryInput("coordinator", context.Request.Kind, null, SHA256.HashData(context.Request.Payload.Span), "allow",
                evict ? $"node {node} untrusted: its messages are refused" : $"node {node} trusted again"), cancellationToken).ConfigureAwait(false);
        }
        catch (StorageException e)
        {
            // A node_trust record that fails its MAC, for example: refused with the store's reason (it names no secret).
            throw new ProtocolException($"node store: {e.Message}");
        }
        IReadOnlyList<OutgoingMessage> reply = [new OutgoingMessage(RecordedKind, context.Request.Round, [0], RecordedPayload(node, trust.IsUntrusted(node)))];
        return reply;
    }
}
