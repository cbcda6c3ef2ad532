using Conclave.Node.Protocol;
using Conclave.Storage;

namespace Conclave.Node.Threshold.Engine;

/// <summary>
/// The threshold engine on a node: the protocols plugged into it, and what they share. <see cref="Handlers"/> is every
/// handler the node registers (the dispatch by message kind is the node service's, one handler per kind): each
/// protocol's own, and the engine's rotation steps, which find a run's protocol by the scheme the run recorded.
/// </summary>
public sealed class NodeEngine
{
    private readonly IReadOnlyList<INodeProtocol> _protocols;

    public NodeEngine(IConclaveStore store, uint nodeId, IReadOnlyList<INodeProtocol> protocols)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(protocols);
        Store = store;
        NodeId = nodeId;
        _protocols = protocols;
    }

    public IConclaveStore Store { get; }

    public uint NodeId { get; }

    /// <summary>Every handler of the node's threshold protocols, then the engine's rotation steps.</summary>
    public IReadOnlyList<IProtocolHandler> Handlers => [.. _protocols.SelectMany(p => p.Handlers), new RotationHandlers(this)];

    /// <summary>The protocol of <paramref name="scheme"/>; a refusal when no protocol on this node handles it.</summary>
    public INodeProtocol For(string scheme) =>
        _protocols.FirstOrDefault(p => p.Handles(scheme)) ?? throw new ProtocolException($"no threshold protocol on node {NodeId} handles scheme {scheme}");

    /// <summary>Every protocol forgets what it holds opened or pooled for the key.</summary>
    public void Evict(string keyId)
    {
        foreach (INodeProtocol p in _protocols)
        {
            p.Evict(keyId);
        }
    }

    /// <summary>A run committed a new version of the key on this node (<see cref="INodeProtocol.Committed"/>).</summary>
    public void Committed(string keyId, int previousVersion)
    {
        foreach (INodeProtocol p in _protocols)
        {
            p.Committed(keyId, previousVersion);
        }
    }

    /// <summary>Every protocol forgets the run's in-memory round state.</summary>
    public void DropRun(string runId)
    {
        foreach (INodeProtocol p in _protocols)
        {
            p.DropRun(runId);
        }
    }
}
