using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using Conclave.Server.Config;
using Conclave.Server.Coordinator;
using Conclave.Server.Hosting;
using Conclave.Server.Rotation;
using Conclave.Storage;
using Conclave.Storage.Rotation;
using Conclave.Threshold.Frost;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

using static Conclave.Server.Tests.OwnServers;

namespace Conclave.Server.Tests;

/// <summary>The signer nodes of <see cref="RepairApiTests"/>, their own: the tests delete a node's store.</summary>
public sealed class RepairNodes : IDisposable
{
    public LocalClusterProcesses Nodes { get; } = new(RepoPaths.CliDll, 3, 2);

    public void Dispose() => Nodes.Dispose();
}

/// <summary>
/// Repair through the API and the CLI (docs/ROTATION.md "Repairing a lost share"): POST /v1/keys/{name}/repair rebuilds
/// a node's lost share as a recorded run, a client that disconnects mid-run does not cut it, the run's transcript is
/// served at GET /v1/operations/{id}/transcript and verifies against the manifest, and the repaired node signs again.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class RepairApiTests(RepairNodes fixture) : IClassFixture<RepairNodes>
{
    [Fact]
    public async Task Repair_ThroughTheApiAndCli_RebuildsALostShare_SurvivesAClientDisconnect_AndLeavesAVerifiableTranscript()
    {
        ServerConfig config = ServerConfig.Load(fixture.Nodes.Layout.ServerConfigPath);
        (WebApplication app, HttpClient http) = await StartAsync(config);
        try
        {
            string a = "repair-a-" + Guid.NewGuid().ToString("N")[..8], b = "repair-b-" + Guid.NewGuid().ToString("N")[..8];
            JsonNode keyA = await PostAsync(http, "/v1/keys", $$"""{"name":"{{a}}","scheme":"frost-secp256k1"}""", HttpStatusCode.Created);
            JsonNode keyB = await PostAsync(http, "/v1/keys", $$"""{"name":"{{b}}","scheme":"frost-ed25519"}""", HttpStatusCode.Created);
            byte[] groupA = Convert.FromHexString(keyA["publicKey"]!.GetValue<string>());
            byte[] groupB = Convert.FromHexString(keyB["publicKey"]!.GetValue<string>());
            // An ecdsa-dkls23 key: its repair also renews the pairwise OT state of every holder with node 3.
            string d = "repair-dkls-" + Guid.NewGuid().ToString("N")[..8];
            JsonNode keyD = await PostAsync(http, "/v1/keys", $$"""{"name":"{{d}}","scheme":"ecdsa-dkls23"}""", HttpStatusCode.Created);
            byte[] groupD = Convert.FromHexString(keyD["publicKey"]!.GetValue<string>());

            // More keys, each repaired below with its client leaving at another step boundary of the run.
            string[] otherBoundaries = ["started", "sigmas", "finish", "prepared", "nodes-committed"];
            var others = new List<(string Name, string Boundary, JsonNode Key)>();
            foreach (string boundary in otherBoundaries)
            {
                string name = $"repair-{boundary}-" + Guid.NewGuid().ToString("N")[..8];
                others.Add((name, boundary, await PostAsync(http, "/v1/keys", $$"""{"name":"{{name}}","scheme":"frost-ed25519"}""", HttpStatusCode.Created)));
            }

            // Bad requests: typed 4xx problems, nothing started.
            await ProblemAsync(http, $"/v1/keys/{a}/repair", "{}", 400, "node is required");
            await ProblemAsync(http, $"/v1/keys/{a}/repair", """{"node":9}""", 400, "node 9 holds no share");
            await ProblemAsync(http, $"/v1/keys/{a}/repair", """{"node":0}""", 400, "node 0 holds no share");
            await ProblemAsync(http, "/v1/keys/no-such-key/repair", """{"node":1}""", 404, "no-such-key");
            await ProblemAsync(http, "/v1/operations/00ff/transcript", null, 404, "no operation");

            // Node 3 loses its store (every key's share).
            fixture.Nodes.KillNode(3);
            foreach (string f in Directory.GetFiles(Path.Combine(fixture.Nodes.DataDir, "node-3", "data"), "*.db*"))
            {
                File.Delete(f);
            }

            fixture.Nodes.StartNode(3);
            fixture.Nodes.WaitForAll(TimeSpan.FromSeconds(120));

            // Key a: the client leaves while the run is held after the δ pieces; the run goes on and finishes.
            FrostCoordinator frost = app.Services.GetRequiredService<FrostCoordinator>();
            IRotationLog runs = app.Services.GetRequiredService<IConclaveStore>().Rotations;
            RotationRun run = await RepairLeavingAtAsync(http, frost, runs, a, keyA, "deltas");

            // The other keys: the client leaves at another boundary each (before and after the run is prepared); every run
            // still finishes retired at the unchanged version.
            foreach ((string name, string boundary, JsonNode key) in others)
            {
                RotationRun other = await RepairLeavingAtAsync(http, frost, runs, name, key, boundary);
                Assert.Equal(RotationState.Retired, (await runs.GetAsync(other.RunId))!.State);
            }

            // Its transcript: served by operation id, verifies offline against the manifest (the API object and the CLI).
            using (HttpResponseMessage r = await http.GetAsync(new Uri($"/v1/operations/{run.RunId}/transcript", UriKind.Relative)))
            {
                Assert.Equal(HttpStatusCode.OK, r.StatusCode);
                byte[] bytes = await r.Content.ReadAsByteArrayAsync();
                RotationTranscript t = RotationTranscript.FromJson(bytes);
                Assert.Equal(("repair", 1, 3u), (t.Kind, t.FromVersion, Assert.Single(t.Receivers)));
                var manifest = Conclave.Node.Config.ClusterManifest.Load(fixture.Nodes.Layout.ManifestPath);
                Assert.Equal(new TranscriptCheck(true, "ok"), TranscriptVerifier.Verify(t, manifest));
                string file = Path.Combine(Directory.CreateTempSubdirectory("conclave-repair-api-").FullName, "repair.json");
                await File.WriteAllBytesAsync(file, bytes);
                (int exit, string stdout, string stderr) = Cli(http, "rotation", "verify", file, "--manifest", fixture.Nodes.Layout.ManifestPath);
                Assert.True(exit == 0, stderr);
                Assert.StartsWith($"ok: repair of key {keyA["id"]!.GetValue<string>()} at version 1", stdout, StringComparison.Ordinal);
            }

            // The DKLs23 key through the API: a recorded repair run, retired at the unchanged version, whose transcript
            // verifies against the manifest.
            (string dklsRunId, JsonNode dklsRun) = await RepairAsync(http, runs, d, keyD);
            Assert.Equal(("repair", "retired", 1), (dklsRun["kind"]!.GetValue<string>(), dklsRun["state"]!.GetValue<string>(), dklsRun["key"]!["version"]!.GetValue<int>()));
            Assert.Equal(Convert.ToHexStringLower(groupD), dklsRun["key"]!["publicKey"]!.GetValue<string>().ToLowerInvariant());
            using (HttpResponseMessage r = await http.GetAsync(new Uri($"/v1/operations/{dklsRunId}/transcript", UriKind.Relative)))
            {
                Assert.Equal(HttpStatusCode.OK, r.StatusCode);
                RotationTranscript t = RotationTranscript.FromJson(await r.Content.ReadAsByteArrayAsync());
                Assert.Equal(("ecdsa-dkls23", "repair", 1, 3u), (t.Scheme, t.Kind, t.FromVersion, Assert.Single(t.Receivers)));
                Assert.Equal(new TranscriptCheck(true, "ok"), TranscriptVerifier.Verify(t, Conclave.Node.Config.ClusterManifest.Load(fixture.Nodes.Layout.ManifestPath)));
            }

            // Key b through the CLI, which waits for the run.
            (int code, string output, string error) = Cli(http, "keys", "repair", b, "--node", "3", "--json");
            Assert.True(code == 0, error);
            Assert.Equal(1, JsonNode.Parse(output)!["version"]!.GetValue<int>());
            (code, _, error) = Cli(http, "keys", "repair", b, "--node", "7");
            Assert.NotEqual(0, code);
            Assert.Contains("node 7 holds no share", error, StringComparison.Ordinal);
            Assert.Single(error.Trim().Split('\n'));

            // Every key signs under its unchanged public key with node 3 in the quorum (node 1 taken out).
            fixture.Nodes.KillNode(1);
            try
            {
                await SignAsync(http, a, groupA);
                await SignAsync(http, b, groupB);
                await SignDigestAsync(http, d, groupD); // nodes 2 and 3: node 3's rebuilt share and pairwise state
                foreach ((string name, _, JsonNode key) in others)
                {
                    await SignAsync(http, name, Convert.FromHexString(key["publicKey"]!.GetValue<string>()));
                }
            }
            finally
            {
                fixture.Nodes.StartNode(1);
                fixture.Nodes.WaitForAll(TimeSpan.FromSeconds(120));
            }
        }
        finally
        {
            await StopAsync(app, http);
        }
    }

    /// <summary>
    /// Repairs node 3's share of <paramref name="name"/> through the API while its client leaves once the run reached
    /// <paramref name="boundary"/> (the run is held there until the client is gone); returns the run once it finished
    /// retired at the key's unchanged version.
    /// </summary>
    private static async Task<RotationRun> RepairLeavingAtAsync(HttpClient http, FrostCoordinator frost, IRotationLog runs, string name, JsonNode key, string boundary)
    {
        var held = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        frost.FaultInjection = async (kind, at) =>
        {
            if (kind == RotationKind.Repair && at == boundary)
            {
                reached.TrySetResult();
                await held.Task;
            }
        };
        try
        {
            using var leave = new CancellationTokenSource();
            Task<HttpResponseMessage> request = http.PostAsync(new Uri($"/v1/keys/{name}/repair", UriKind.Relative), Json("""{"node":3}"""), leave.Token);
            await reached.Task.WaitAsync(TimeSpan.FromSeconds(60));
            await leave.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => request);
        }
        finally
        {
            held.TrySetResult();
            frost.FaultInjection = null;
        }

        RotationRun run = (await runs.ListForKeyAsync(key["id"]!.GetValue<string>(), 10)).Single(r => r.Kind == RotationKind.Repair);
        await WaitForAsync(async () => (await runs.GetAsync(run.RunId))!.IsFinished, $"the repair went on after the client left at {boundary}");
        JsonNode op = await GetAsync(http, $"/v1/operations/{run.RunId}");
        Assert.Equal(("repair", "retired", 1), (op["kind"]!.GetValue<string>(), op["state"]!.GetValue<string>(), op["key"]!["version"]!.GetValue<int>()));
        return run;
    }

    private static async Task ProblemAsync(HttpClient http, string path, string? body, int status, string detail)
    {
        using HttpResponseMessage r = body is null
            ? await http.GetAsync(new Uri(path, UriKind.Relative))
            : await http.PostAsync(new Uri(path, UriKind.Relative), Json(body));
        string text = await r.Content.ReadAsStringAsync();
        Assert.True((int)r.StatusCode == status, text);
        Assert.Equal("application/problem+json", r.Content.Headers.ContentType?.MediaType);
        Assert.Contains(detail, text, StringComparison.Ordinal);
    }

    private static async Task SignAsync(HttpClient http, string name, byte[] groupKey)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        JsonNode? sig = null;
        await WaitForAsync(async () =>
        {
            using HttpResponseMessage r = await http.PostAsync(new Uri($"/v1/keys/{name}/sign", UriKind.Relative), Json("""{"message":"0102"}"""), cts.Token);
            sig = r.IsSuccessStatusCode ? JsonNode.Parse(await r.Content.ReadAsStringAsync(cts.Token)) : null;
            return sig is not null;
        }, $"key {name} signs with node 1 down");
        Assert.Equal(1, sig!["keyVersion"]!.GetValue<int>());
        Assert.True(FrostCiphersuite.TryGet((await GetAsync(http, $"/v1/keys/{name}"))["scheme"]!.GetValue<string>(), out FrostCiphersuite? suite));
        Assert.True(suite.Verify(groupKey, [1, 2], Convert.FromHexString(sig["signature"]!.GetValue<string>())));
    }

    /// <summary>POST /v1/keys/{name}/repair {"node":3}: the run's id and its finished operation (200 with the key, or 202 polled until it finished).</summary>
    private static async Task<(string RunId, JsonNode Operation)> RepairAsync(HttpClient http, IRotationLog runs, string name, JsonNode key)
    {
        using HttpResponseMessage r = await http.PostAsync(new Uri($"/v1/keys/{name}/repair", UriKind.Relative), Json("""{"node":3}"""));
        string text = await r.Content.ReadAsStringAsync();
        Assert.True(r.StatusCode is HttpStatusCode.OK or HttpStatusCode.Accepted, text);
        RotationRun run = (await runs.ListForKeyAsync(key["id"]!.GetValue<string>(), 10)).Single(x => x.Kind == RotationKind.Repair);
        JsonNode? op = null;
        await WaitForAsync(async () => (op = await GetAsync(http, $"/v1/operations/{run.RunId}"))["state"]!.GetValue<string>() is "retired" or "aborted",
            $"the repair of {name} finished");
        return (run.RunId, op!);
    }

    private static async Task SignDigestAsync(HttpClient http, string name, byte[] groupKey)
    {
        byte[] digest = System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(name));
        JsonNode? sig = null;
        await WaitForAsync(async () =>
        {
            using HttpResponseMessage r = await http.PostAsync(new Uri($"/v1/keys/{name}/sign", UriKind.Relative), Json($$"""{"digest":"{{Convert.ToHexStringLower(digest)}}"}"""));
            sig = r.IsSuccessStatusCode ? JsonNode.Parse(await r.Content.ReadAsStringAsync()) : null;
            return sig is not null;
        }, $"key {name} signs with node 1 down");
        Assert.Equal(1, sig!["keyVersion"]!.GetValue<int>());
        Assert.True(Conclave.Crypto.Secp256k1.EcdsaSecp256k1.Instance.Verify(groupKey, digest, Convert.FromHexString(sig["signature"]!.GetValue<string>())));
    }

    private static (int Exit, string Out, string Err) Cli(HttpClient http, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(RepoPaths.CliDll);
        foreach (string arg in args)
        {
            psi.ArgumentList.Add(arg);
        }

        psi.Environment["CONCLAVE_TOKEN"] = http.DefaultRequestHeaders.Authorization!.Parameter!;
        psi.Environment["CONCLAVE_SERVER"] = http.BaseAddress!.ToString().TrimEnd('/');
        using Process p = Process.Start(psi)!;
        Task<string> stdout = p.StandardOutput.ReadToEndAsync();
        Task<string> stderr = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(120_000), "the CLI did not exit");
        return (p.ExitCode, stdout.Result, stderr.Result);
    }
}
