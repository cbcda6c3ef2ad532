using Conclave.Server.Hosting;

namespace Conclave.Node.Tests;

/// <summary>
/// Runs a node of a local cluster as the test node host tests/Conclave.Node.FaultyNode, whose fault hooks (DKG faults,
/// DKLs23 signing faults) cannot be set through `conclave node run`.
/// </summary>
internal static class FaultyNodeHost
{
    private static string Dll
    {
        get
        {
            string dir = AppContext.BaseDirectory.Replace("Conclave.Node.Tests", "Conclave.Node.FaultyNode", StringComparison.Ordinal);
            string dll = Path.Combine(dir, "Conclave.Node.FaultyNode.dll");
            return File.Exists(dll) ? dll : throw new FileNotFoundException("build tests/Conclave.Node.FaultyNode first", dll);
        }
    }

    private static int s_generation;

    /// <summary>
    /// Restarts <paramref name="node"/> as the faulty host with its fault chosen through <paramref name="faultFile"/>
    /// (<see cref="ChooseFault"/>; FaultyNode's SwitchableFaults), no fault to begin with: one restart for a whole test
    /// class instead of two per fault.
    /// </summary>
    public static void StartWithSwitchableFaults(LocalClusterProcesses c, uint node, string faultFile)
    {
        File.WriteAllText(faultFile, "");
        c.KillNode(node);
        c.StartNodeWith(node, Dll, ["--fault-file", faultFile]);
        c.WaitForAll(TimeSpan.FromSeconds(60));
    }

    /// <summary>
    /// Makes the host started by <see cref="StartWithSwitchableFaults"/> inject <paramref name="fault"/> (a fresh one) of the
    /// kind <paramref name="option"/> names ("--dkg-fault" or "--dkls-fault") from its next hook on; null fault: none.
    /// </summary>
    public static void ChooseFault(string faultFile, string option, string? fault)
    {
        string line = fault is null ? "" : $"{option} {fault} {Interlocked.Increment(ref s_generation)}";
        string temp = faultFile + ".tmp";
        File.WriteAllText(temp, line);
        File.Move(temp, faultFile, overwrite: true);
    }

    /// <summary>Runs <paramref name="body"/> with the host started by <see cref="StartWithSwitchableFaults"/> injecting <paramref name="fault"/>, then heals it.</summary>
    public static async Task WithSwitchedFaultAsync(string faultFile, string option, string fault, Func<Task> body)
    {
        ChooseFault(faultFile, option, fault);
        try
        {
            await body();
        }
        finally
        {
            ChooseFault(faultFile, option, null);
        }
    }

    /// <summary>Restarts <paramref name="node"/> as the faulty host with <paramref name="fault"/>, runs <paramref name="body"/>, then restarts it as an ordinary node.</summary>
    public static async Task WithFaultAsync(LocalClusterProcesses c, uint node, string[] fault, Func<Task> body)
    {
        c.KillNode(node);
        c.StartNodeWith(node, Dll, fault);
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
/// (<see cref="FaultyNodeHost.ChooseFault"/>): no fault until a test chooses one, none again after it. Each fault is a
/// fresh instance, so a test sees node 4 as a restart into that fault would have left it, without two restarts per fault.
/// </summary>
public sealed class FaultyFourCluster : IDisposable
{
    public FaultyFourCluster()
    {
        FaultFile = Path.Combine(Cluster.DataDir, "node-4-fault");
        FaultyNodeHost.StartWithSwitchableFaults(Cluster, 4, FaultFile);
    }

    public LocalClusterProcesses Cluster { get; } = new(RepoPaths.CliDll, 5, 3);

    public string FaultFile { get; }

    public void Dispose() => Cluster.Dispose();
}
