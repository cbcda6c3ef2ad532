using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Conclave.Node.Tests;

/// <summary>`conclave up` as a user runs it: a real process that starts the cluster, serves /readyz, and stops cleanly on SIGTERM.</summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed partial class UpCommandTests
{
    [Fact]
    public async Task Up_StartsClusterServesReadiness_AndStopsOnSigterm()
    {
        string data = Path.Combine(Path.GetTempPath(), "conclave-up-" + Guid.NewGuid().ToString("N")[..10]);
        int apiPort = FreePort();
        int nodePort = FreePort() + 10;
        var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in new[] { RepoPaths.CliDll, "up", "--data", data, "--port", apiPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
                     "--node-port", nodePort.ToString(System.Globalization.CultureInfo.InvariantCulture), "--nodes", "3", "--threshold", "2" })
        {
            psi.ArgumentList.Add(a);
        }

        using Process up = Process.Start(psi)!;
        var lines = new List<string>();
        var ready = new TaskCompletionSource();
        up.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                return;
            }

            lock (lines)
            {
                lines.Add(e.Data);
            }

            if (e.Data.Contains("press Ctrl-C", StringComparison.Ordinal))
            {
                ready.TrySetResult();
            }
        };
        up.BeginOutputReadLine();
        up.BeginErrorReadLine();
        try
        {
            await ready.Task.WaitAsync(TimeSpan.FromSeconds(90));
            string tokenFile;
            lock (lines)
            {
                Assert.Contains(lines, l => l.StartsWith($"API: http://127.0.0.1:{apiPort}", StringComparison.Ordinal));
                tokenFile = lines.Single(l => l.StartsWith("admin token file: ", StringComparison.Ordinal))["admin token file: ".Length..];
            }

            Assert.True(File.Exists(tokenFile));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(tokenFile));
            using var http = new HttpClient();
            HttpResponseMessage r = await http.GetAsync(new Uri($"http://127.0.0.1:{apiPort}/readyz"));
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            Assert.Contains("\"nodesUp\":[1,2,3]", await r.Content.ReadAsStringAsync(), StringComparison.Ordinal);

            Assert.Equal(0, Kill(up.Id, 15));
            Assert.True(up.WaitForExit(TimeSpan.FromSeconds(30)), "conclave up did not stop on SIGTERM");
            Assert.Equal(0, up.ExitCode);
            // The nodes are gone too: their ports no longer accept connections.
            await Task.Delay(500);
            for (int i = 0; i < 3; i++)
            {
                using var tcp = new TcpClient();
                await Assert.ThrowsAnyAsync<SocketException>(() => tcp.ConnectAsync(IPAddress.Loopback, nodePort + i));
            }
        }
        finally
        {
            if (!up.HasExited)
            {
                up.Kill(entireProcessTree: true);
            }

            try
            {
                Directory.Delete(data, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int p = ((IPEndPoint)l.LocalEndpoint).Port;
        // Leave room for consecutive node ports above it.
        return p > 60000 ? p - 5000 : p;
    }

    [LibraryImport("libc", EntryPoint = "kill")]
    private static partial int Kill(int pid, int signal);
}
