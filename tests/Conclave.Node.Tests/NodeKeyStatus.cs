using Conclave.Node.Frost;
using Conclave.Node.Protocol;
using Conclave.Node.Rpc;
using Conclave.Server.Coordinator;

namespace Conclave.Node.Tests;

/// <summary>What a signer node holds of a key, from its rotation-status step (the tests' one reader of that reply).</summary>
internal static class NodeKeyStatus
{
    /// <summary>The key's version on <paramref name="node"/>, its state, the id of an unfinished run (empty: none) and that run's state.</summary>
    public static async Task<(int Version, string State, string Run, string RunState)> ReadAsync(Cluster coordinator, uint node, string keyId)
    {
        IReadOnlyList<Envelope> reply = await coordinator.Node(node).StepAsync(
            coordinator.Request(Cluster.NewSessionId(), FrostMessages.RotationStatus, 9, [node], new PayloadWriter().String(keyId).ToArray()), [],
            TimeSpan.FromSeconds(20), CancellationToken.None);
        var r = new PayloadReader(Assert.Single(reply).Payload.Span);
        int version = (int)r.U32("version");
        string state = r.String("state");
        string run = r.String("run");
        string runState = r.String("runState");
        r.End();
        return (version, state, run, runState);
    }
}
