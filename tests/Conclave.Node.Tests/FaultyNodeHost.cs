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
