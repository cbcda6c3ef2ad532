using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using Conclave.Server.Hosting;

namespace Conclave.Node.Tests;

/// <summary>
/// `conclave up` as a user runs it: a real process that starts the cluster and serves the API, used from the CLI
/// (keys and audit, with the token file it printed) and from ethers v6 over JSON-RPC, then stops cleanly on SIGTERM.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed partial class UpCommandTests
{
    [Fact]
    public async Task Up_StartsClusterServesTheApiToCliAndEthers_AndStopsOnSigterm()
    {
        (string data, int apiPort, int nodePort) = NewLayout("conclave-up-");
        (Process up, List<string> lines, Task ready) = StartUp(data, apiPort, nodePort);
        using Process process = up;
        try
        {
            await ready.WaitAsync(TimeSpan.FromSeconds(180));
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
            UseTheApi($"http://127.0.0.1:{apiPort}", tokenFile);

            // Positive control: the three nodes listen on the ports they were given, so "not listening" below means stopped.
            Assert.Equal(3, await Listening(nodePort));

            Assert.Equal(0, Kill(up.Id, 15));
            Assert.True(up.WaitForExit(TimeSpan.FromSeconds(60)), "conclave up did not stop on SIGTERM");
            Assert.Equal(0, up.ExitCode);
            // The nodes are gone too: their ports stop accepting connections.
            await NoneListeningWithin(nodePort, TimeSpan.FromSeconds(60), "after conclave up stopped on SIGTERM");
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

    [Fact]
    public async Task Up_WithTls_ServesHttpsWithTheDevelopmentCa_AndTheCliTrustsIt()
    {
        (string data, int apiPort, int nodePort) = NewLayout("conclave-up-tls-");
        string state = data + "-state";
        (Process up, List<string> lines, Task ready) = StartUp(data, apiPort, nodePort, state, "--tls");
        using Process process = up;
        try
        {
            await ready.WaitAsync(TimeSpan.FromSeconds(180));
            lock (lines)
            {
                Assert.Contains(lines, l => l.StartsWith($"API: https://127.0.0.1:{apiPort}", StringComparison.Ordinal));
            }

            // The CLI finds the server, its token and the development CA from --data, and from the recorded 'up' alone.
            string name = "tls-" + Guid.NewGuid().ToString("N")[..8];
            (int exit, string output, string error) = CliIn(state, "keys", "create", name, "--scheme", "ed25519", "--data", data, "--json");
            Assert.True(exit == 0, output + error);
            (exit, output, error) = CliIn(state, "keys", "list", "--json");
            Assert.True(exit == 0, output + error);
            Assert.Contains(name, output, StringComparison.Ordinal);

            // The starter policy is editable: a change is held for the development approver (server.json policyChanges,
            // written by conclave up), whose credential conclave up made; its one vote applies the change.
            string approver = Path.Combine(data, "server", "dev-approver.json");
            lock (lines)
            {
                Assert.Contains(lines, l => l.StartsWith("policy-change approver credential: " + approver, StringComparison.Ordinal));
            }

            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(approver));
            string tightened = Path.Combine(state, "starter-v2.json");
            await File.WriteAllTextAsync(tightened, Conclave.Server.Hosting.LocalClusterLayout.StarterPolicyJson
                .Replace("\"version\": 1", "\"version\": 2", StringComparison.Ordinal).Replace(", \"hedge\"]", "]", StringComparison.Ordinal));
            (exit, output, error) = CliIn(state, "policies", "put", tightened, "--data", data);
            Assert.True(exit == 0, output + error);
            string requestId = System.Text.RegularExpressions.Regex.Match(output, "request (req-[0-9a-f]+)").Groups[1].Value;
            Assert.False(string.IsNullOrEmpty(requestId), output);
            (exit, output, error) = CliIn(state, "approvals", "approve", requestId, "--credential", approver, "--data", data);
            Assert.True(exit == 0, output + error);
            (exit, output, error) = CliIn(state, "policies", "get", "starter", "--data", data, "--json");
            Assert.True(exit == 0, output + error);
            Assert.Contains("\"version\":2", output.Replace(" ", "", StringComparison.Ordinal), StringComparison.Ordinal);

            // Without the development CA the certificate is not trusted; plain HTTP is not served on that port.
            using var untrusting = new HttpClient();
            HttpRequestException e = await Assert.ThrowsAsync<HttpRequestException>(() => untrusting.GetAsync(new Uri($"https://127.0.0.1:{apiPort}/readyz")));
            Assert.IsType<System.Security.Authentication.AuthenticationException>(e.InnerException);
            await Assert.ThrowsAsync<HttpRequestException>(() => untrusting.GetAsync(new Uri($"http://127.0.0.1:{apiPort}/healthz")));
        }
        finally
        {
            if (!up.HasExited)
            {
                up.Kill(entireProcessTree: true);
            }

            foreach (string dir in new[] { data, state })
            {
                try
                {
                    Directory.Delete(dir, recursive: true);
                }
                catch (IOException)
                {
                }
            }
        }
    }

    private static (int Exit, string Out, string Err) CliIn(string stateDir, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Path.GetTempPath() };
        psi.ArgumentList.Add(RepoPaths.CliDll);
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["CONCLAVE_STATE_DIR"] = stateDir;
        foreach (string v in new[] { "CONCLAVE_TOKEN", "CONCLAVE_TOKEN_FILE", "CONCLAVE_SERVER", "CONCLAVE_CA" })
        {
            psi.Environment.Remove(v);
        }

        using Process p = Process.Start(psi)!;
        Task<string> o = p.StandardOutput.ReadToEndAsync();
        Task<string> e = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(TimeSpan.FromSeconds(120)), "the CLI did not finish");
        return (p.ExitCode, o.Result, e.Result);
    }

    [Fact]
    public async Task Up_KilledWithSigkill_LeavesNoSignerNodesBehind()
    {
        (string data, int apiPort, int nodePort) = NewLayout("conclave-upkill-");
        (Process up, _, Task ready) = StartUp(data, apiPort, nodePort);
        using Process process = up;
        try
        {
            await ready.WaitAsync(TimeSpan.FromSeconds(180));
            Assert.Equal(3, await Listening(nodePort)); // positive control: the nodes were listening on these ports
            Assert.Equal(0, Kill(up.Id, 9));
            Assert.True(up.WaitForExit(TimeSpan.FromSeconds(30)));

            // Each node watches its parent and stops soon after it vanishes.
            await NoneListeningWithin(nodePort, TimeSpan.FromSeconds(60), "after their parent was killed");
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

    /// <summary>The CLI against the `up` API: a FROST key by DKG signs (verified here with libsecp256k1's BIP-340
    /// verifier), an ECDSA key signs a transaction for ethers v6 through /rpc, and the audit log verifies.</summary>
    private static void UseTheApi(string url, string tokenFile)
    {
        (int exit, string output, string error) = Cli(url, tokenFile, "keys", "create", "up-taproot", "--scheme", "frost-taproot", "--json");
        Assert.True(exit == 0, error);
        // frost-taproot signs under the BIP-86 output key of its internal key (publicKey).
        byte[] publicKey = Convert.FromHexString(JsonNode.Parse(output)!["outputKey"]!.GetValue<string>());
        (exit, output, error) = Cli(url, tokenFile, "keys", "sign", "up-taproot", "--message", "75702d6d657373616765", "--json");
        Assert.True(exit == 0, error);
        byte[] signature = Convert.FromHexString(JsonNode.Parse(output)!["signature"]!.GetValue<string>());
        Assert.True(Conclave.Crypto.Signing.SignatureSchemes.SchnorrBip340.Verify(publicKey, "up-message"u8, signature));

        (exit, output, error) = Cli(url, tokenFile, "keys", "create", "up-ecdsa", "--scheme", "ecdsa-secp256k1", "--json");
        Assert.True(exit == 0, error);
        string address = JsonNode.Parse(output)!["addresses"]!["ethereum"]!.GetValue<string>();
        JsonNode rpc = NodeInterop.Run("rpc", [new { url = url + "/rpc", token = File.ReadAllText(tokenFile).Trim(), address, chainId = 1 }])[0]!;
        Assert.Equal(address, rpc["tx"]!["from"]!.GetValue<string>());
        Assert.Equal("1", rpc["tx"]!["chainId"]!.GetValue<string>());
        Assert.Equal(7, rpc["tx"]!["nonce"]!.GetValue<int>());
        Assert.Equal("1500000000000000000", rpc["tx"]!["value"]!.GetValue<string>());
        Assert.Equal(address, rpc["typedSigner"]!.GetValue<string>());

        (exit, output, error) = Cli(url, tokenFile, "audit", "verify");
        Assert.True(exit == 0, error);
        Assert.Contains("audit log ok", output, StringComparison.Ordinal);
    }

    private static (int Exit, string Out, string Err) Cli(string url, string tokenFile, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(RepoPaths.CliDll);
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.ArgumentList.Add("--server");
        psi.ArgumentList.Add(url);
        psi.ArgumentList.Add("--token-file");
        psi.ArgumentList.Add(tokenFile);
        psi.Environment.Remove("CONCLAVE_TOKEN");
        using Process p = Process.Start(psi)!;
        Task<string> o = p.StandardOutput.ReadToEndAsync();
        Task<string> e = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(TimeSpan.FromSeconds(120)), "the CLI did not finish");
        return (p.ExitCode, o.Result, e.Result);
    }

    private static (string Data, int ApiPort, int NodePort) NewLayout(string prefix)
    {
        // Four consecutive ports, each checked free: the API on the first, the three nodes on the next three.
        int first = LoopbackPorts.Take(4);
        return (Path.Combine(Path.GetTempPath(), prefix + Guid.NewGuid().ToString("N")[..10]), first, first + 1);
    }

    /// <summary>How many of the three node ports accept a TCP connection now.</summary>
    private static async Task<int> Listening(int nodePort)
    {
        int listening = 0;
        for (int i = 0; i < 3; i++)
        {
            using var tcp = new TcpClient();
            try
            {
                await tcp.ConnectAsync(IPAddress.Loopback, nodePort + i);
                listening++;
            }
            catch (SocketException)
            {
            }
        }

        return listening;
    }

    /// <summary>Waits until no node port accepts connections; fails after the (generous) deadline, never on a timing window.</summary>
    private static async Task NoneListeningWithin(int nodePort, TimeSpan deadline, string when)
    {
        var sw = Stopwatch.StartNew();
        int listening;
        while ((listening = await Listening(nodePort)) > 0)
        {
            Assert.True(sw.Elapsed < deadline, $"{listening} signer node(s) still listening {when}");
            await Task.Delay(100);
        }
    }

    /// <summary>Starts `conclave up` (3 nodes, threshold 2); <c>Ready</c> completes when it prints "press Ctrl-C".</summary>
    private static (Process Up, List<string> Lines, Task Ready) StartUp(string data, int apiPort, int nodePort, string? stateDir = null, params string[] extra)
    {
        var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in new[] { RepoPaths.CliDll, "up", "--data", data, "--port", apiPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
                     "--node-port", nodePort.ToString(System.Globalization.CultureInfo.InvariantCulture), "--nodes", "3", "--threshold", "2" }.Concat(extra))
        {
            psi.ArgumentList.Add(a);
        }

        if (stateDir is not null)
        {
            psi.Environment["CONCLAVE_STATE_DIR"] = stateDir;
        }

        Process up = Process.Start(psi)!;
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
        return (up, lines, ready.Task);
    }

    [LibraryImport("libc", EntryPoint = "kill")]
    private static partial int Kill(int pid, int signal);
}
