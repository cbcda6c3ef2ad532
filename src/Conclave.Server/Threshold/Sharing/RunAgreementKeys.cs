using Conclave.Node.Protocol;
using Conclave.Node.Rpc;
using Conclave.Server.Coordinator;

namespace Conclave.Server.Threshold.Sharing;

/// <summary>The run agreement keys every participant of a DKG or repair run announces (docs/ROTATION.md "Forward secrecy of relayed shares").</summary>
public static class RunAgreementKeys
{
    /// <summary>
    /// The run-key announcements of an agreement step, exactly one from each node's own signed reply. A node that answers
    /// with none or several is named: the coordinator holds that reply first-hand (signed by the node, verified by
    /// <see cref="NodeClient"/>). The nodes receiving the relayed announcements name nobody when they see two for one
    /// sender, since a coordinator that asked a node twice for the same session (after a restart) could have made that
    /// (docs/ROTATION.md "Forward secrecy of relayed shares").
    /// </summary>
    public static List<Envelope> OneEach(IReadOnlyDictionary<uint, IReadOnlyList<Envelope>> replies, string kind)
    {
        ArgumentNullException.ThrowIfNull(replies);
        var keys = new List<Envelope>(replies.Count);
        foreach ((uint node, IReadOnlyList<Envelope> messages) in replies.OrderBy(r => r.Key))
        {
            Envelope[] own = [.. messages.Where(e => e.Kind == kind)];
            if (own.Length != 1)
            {
                throw new CulpritException([node], $"node {node} answered the agreement step with {own.Length} run agreement keys, not one");
            }

            keys.Add(own[0]);
        }

        return keys;
    }
}
