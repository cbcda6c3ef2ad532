using System.Collections.Concurrent;
using Conclave.Node.Protocol;
using Conclave.Node.Rpc;
using Conclave.Server.Coordinator;

namespace Conclave.Server.Threshold.Engine;

/// <summary>
/// Tells every trusted signer node which peers are evicted (docs/ROTATION.md "What the other nodes do"): for each node
/// this coordinator ever saw untrusted, a notice signed by the coordinator (<see cref="NodeTrustHandler.EvictKind"/> or
/// <see cref="NodeTrustHandler.ReadmitKind"/>) goes to every other node until that node answers, signed, that it recorded
/// it. The evicted node itself is never contacted. A node that is down keeps the notice pending; the next
/// <see cref="TellAsync"/> (the server's background pass) tries again. What a node acknowledged is kept in memory only, so
/// a restarted server tells every node once more (nodes answer a repeated notice the same way).
/// </summary>
public sealed class NodeTrustNotices(Cluster cluster, NodeHealth health)
{
    private readonly ConcurrentDictionary<(uint Target, uint Node), bool> _acknowledged = new();
    private readonly ConcurrentDictionary<uint, byte> _seen = new();
    private readonly SemaphoreSlim _gate = new(1, 1);

    /// <summary>How long one node is given to answer a notice.</summary>
    public TimeSpan NoticeTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Remembers that <paramref name="node"/> was untrusted, so its re-admission is told too.</summary>
    public void Saw(uint node) => _seen[node] = 0;

    /// <summary>
    /// Sends every notice a trusted node has not acknowledged yet (nodes in parallel, one notice after another per node)
    /// and returns the nodes that still miss one (down, or refusing): they are told by a later call.
    /// </summary>
    public async Task<IReadOnlyList<uint>> TellAsync(CancellationToken ct)
    {
        foreach (uint n in health.Untrusted)
        {
            Saw(n);
        }

        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            uint[] about = [.. _seen.Keys.Order()];
            if (about.Length == 0)
            {
                return [];
            }

            uint[] targets = [.. cluster.NodeIds.Where(t => !health.IsUntrusted(t)).Order()];
            bool[] told = await Task.WhenAll(targets.Select(t => TellNodeAsync(t, about, ct))).ConfigureAwait(false);
            return [.. targets.Where((_, i) => !told[i])];
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>What <paramref name="target"/> has acknowledged about <paramref name="node"/>: true untrusted, false trusted, null nothing yet.</summary>
    public bool? Acknowledged(uint target, uint node) => _acknowledged.TryGetValue((target, node), out bool untrusted) ? untrusted : null;

    private async Task<bool> TellNodeAsync(uint target, uint[] about, CancellationToken ct)
    {
        foreach (uint node in about.Where(n => n != target))
        {
            bool untrusted = health.IsUntrusted(node);
            if (_acknowledged.TryGetValue((target, node), out bool known) && known == untrusted)
            {
                continue;
            }

            try
            {
                string kind = untrusted ? NodeTrustHandler.EvictKind : NodeTrustHandler.ReadmitKind;
                Envelope request = cluster.Request(Cluster.NewSessionId(), kind, 1, [target], NodeTrustHandler.NoticePayload(node));
                IReadOnlyList<Envelope> reply = await cluster.Node(target).StepAsync(request, [], NoticeTimeout, ct).ConfigureAwait(false);
                if (reply.Count != 1 || reply[0].Kind != NodeTrustHandler.RecordedKind
                    || !reply[0].Payload.Span.SequenceEqual(NodeTrustHandler.RecordedPayload(node, untrusted)))
                {
                    return false;
                }

                _acknowledged[(target, node)] = untrusted;
            }
            catch (NodeCallException)
            {
                return false; // down or refusing: told again by the next pass
            }
        }

        return true;
    }
}
