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

    [Fact]
    public void Ports_are_handed_out_once_per_process_below_the_ephemeral_range_and_were_free_when_drawn()
    {
        var seen = new HashSet<int>();
        for (int i = 0; i < 150; i++)
        {
            int count = i % 3 + 1;
            int first = LoopbackPorts.Take(count);
            for (int p = first; p < first + count; p++)
            {
                Assert.InRange(p, 20000, 32699);
                Assert.True(seen.Add(p), $"port {p} handed out twice");
                using var l = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, p);
                l.Start(); // free when drawn (nothing else of ours holds it)
            }
        }

        Assert.Throws<ArgumentOutOfRangeException>(() => LoopbackPorts.Take(0));
    }

    /// <summary>
    /// Another process cannot hold this process's band: the band's lock file is locked exclusively (flock, what .NET's
    /// FileShare.None takes on Linux), and util-linux's flock from a child process is refused on it. Two test assemblies
    /// running side by side so draw from disjoint bands (CI once lost a venue class to a server port another cluster took).
    /// </summary>
    [Fact]
    public void This_process_band_is_locked_against_other_processes()
    {
        int port = LoopbackPorts.Take();
        int band = (port - 20000) / ((32700 - 20000) / 8);
        string file = Path.Combine(Path.GetTempPath(), "conclave-port-bands", "band-" + band.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.True(File.Exists(file), file);
        Assert.Equal(1, Flock(file));

        // Positive control: a band file nobody holds is taken by the same command.
        string free = Path.Combine(Path.GetTempPath(), "conclave-port-bands-control-" + Guid.NewGuid().ToString("N")[..8]);
        File.WriteAllBytes(free, []);
        try
        {
            Assert.Equal(0, Flock(free));
        }
        finally
        {
            File.Delete(free);
        }
    }

    private static int Flock(string file)
    {
        var psi = new System.Diagnostics.ProcessStartInfo("flock") { UseShellExecute = false };
        foreach (string a in new[] { "--nonblock", "--exclusive", file, "true" })
        {
            psi.ArgumentList.Add(a);
        }

        using var p = System.Diagnostics.Process.Start(psi)!;
        Assert.True(p.WaitForExit(30_000), "flock did not exit");
        return p.ExitCode;
    }
}
