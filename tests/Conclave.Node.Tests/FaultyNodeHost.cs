using Conclave.Server.Hosting;

namespace Conclave.Node.Tests;

/// <summary>
/// Runs a node of a local cluster as the test node host tests/Conclave.Node.FaultyNode, whose fault hooks (DKG faults,
/// DKLs23 signing faults) cannot be set through `conclave node run`.
/// </summary>
internal static class FaultyNodeHost
{
    /// <summary>
    /// Restarts <paramref name="node"/> as the faulty host reading its fault from <paramref name="faults"/> (no fault to
    /// begin with): one restart for a whole test class instead of two per fault.
    /// </summary>
    public static void StartWithFaultFile(LocalClusterProcesses c, uint node, NodeFaultFile faults)
    {
        faults.Clear();
        c.KillNode(node);
        c.StartNodeWith(node, RepoPaths.FaultyNodeDll, faults.HostArguments);
        c.WaitForAll(TimeSpan.FromSeconds(60));
    }

    /// <summary>Restarts <paramref name="node"/> as the faulty host with <paramref name="fault"/>, runs <paramref name="body"/>, then restarts it as an ordinary node.</summary>
    public static async Task WithFaultAsync(LocalClusterProcesses c, uint node, string[] fault, Func<Task> body)
    {
        c.KillNode(node);
        c.StartNodeWith(node, RepoPaths.FaultyNodeDll, fault);
        c.WaitForAll(TimeSpan.FromSeconds(60));
        try
        {
            await body();
        }
        finally
        {
            c.KillNode(node);
            c.StartNode(node);
            c.WaitForAll(TimeSpan.FromSeconds(60));
        }
    }
}

/// <summary>
/// A five-node cluster whose node 4 runs, for the whole class, as the faulty host with its fault chosen through a file
/// (<see cref="NodeFaultFile"/>): no fault until a test chooses one, none again after it. Each fault is a
/// fresh instance, so a test sees node 4 as a restart into that fault would have left it, without two restarts per fault.
/// </summary>
public sealed class FaultyFourCluster : IDisposable
{
    public FaultyFourCluster()
    {
        Faults = new NodeFaultFile(Path.Combine(Cluster.DataDir, "node-4-fault"));
        FaultyNodeHost.StartWithFaultFile(Cluster, 4, Faults);
    }

    public LocalClusterProcesses Cluster { get; } = new(RepoPaths.CliDll, 5, 3);

    public NodeFaultFile Faults { get; }

    public void Dispose() => Cluster.Dispose();
}
