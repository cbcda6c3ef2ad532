using Conclave.Server.Hosting;

namespace Conclave.Server.Tests;

/// <summary>
/// The real-node harness every cluster test starts from: when nodes do not come up, the failure says which, why, and
/// what they wrote (a full run once failed six venue tests on "signer nodes did not come up" and nothing more).
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class LocalClusterProcessesTests
{
    [Fact]
    public async Task A_node_that_exits_is_named_with_its_exit_code_and_output_at_once_not_after_the_deadline()
    {
        using var cluster = new LocalClusterProcesses(RepoPaths.CliDll, 2, 2);

        // Positive control: both nodes answer.
        cluster.WaitForAll(TimeSpan.FromSeconds(30));
        Assert.Equal([1u, 2u], await cluster.Coordinator.AttestAsync(CancellationToken.None));
        int[] ports = [.. cluster.Manifest.Nodes.Select(n => int.Parse(n.Address.Split(':')[^1], System.Globalization.CultureInfo.InvariantCulture))];
        Assert.All(ports, p => Assert.InRange(p, 20000, 32767)); // below the ephemeral range

        cluster.KillNode(2);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        NodesNotUpException e = Assert.Throws<NodesNotUpException>(() => cluster.WaitForAll(TimeSpan.FromMinutes(5)));
        Assert.True(sw.Elapsed < TimeSpan.FromMinutes(4), "an exited node fails the wait at once");
        Assert.True(e.SomeExited);
        Assert.StartsWith("signer nodes 2 did not answer", e.Message, StringComparison.Ordinal);
        Assert.Contains("node 2 (" + cluster.Manifest.Node(2).Address + "): exited with code", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("node 1 (", e.Message, StringComparison.Ordinal);
        Assert.Contains("    | ", e.Message, StringComparison.Ordinal); // the node's own last lines (its start-up log)
    }
}
