using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using Conclave.Server.Config;
using Conclave.Server.Hosting;
using Conclave.Threshold.Frost;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

using static Conclave.Server.Tests.OwnServers;

namespace Conclave.Server.Tests;

/// <summary>
/// Issue 20 bug 4: a server backup restored into a cluster whose nodes moved on (a key refreshed after the backup). The
/// server checks its store against the nodes' committed versions at start, takes the nodes' version when every holder
/// agrees and the package verifies, and otherwise names the key and what is wrong (readyz, problem+json on sign).
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class RestoreTests(VariantNodes fixture) : IClassFixture<VariantNodes>
{
    [Fact]
    public async Task AnOldServerBackup_IsResynchronisedFromTheNodes_OnceEveryHolderAnswers_ThenSignsAndRefreshes()
    {
        ServerConfig config = ServerConfig.Load(fixture.Nodes.Layout.ServerConfigPath);
        string dataDir = config.Resolve(config.DataDir);
        string backup = Path.Combine(Path.GetTempPath(), "conclave-restore-" + Guid.NewGuid().ToString("N")[..8]);
        string name = "restore-" + Guid.NewGuid().ToString("N")[..8];

        (WebApplication app, HttpClient http) = await StartAsync(config);
        JsonNode key;
        try
        {
            key = await PostAsync(http, "/v1/keys", $$"""{"name":"{{name}}","scheme":"frost-secp256k1"}""", HttpStatusCode.Created);
        }
        finally
        {
            await StopAsync(app, http);
        }

        string keyId = key["id"]!.GetValue<string>();
        byte[] groupKey = Convert.FromHexString(key["publicKey"]!.GetValue<string>());
        CopyStore(dataDir, backup);
        try
        {
            // After the backup the key is refreshed: every node commits version 2 and erases version 1.
            (app, http) = await StartAsync(config);
            try
            {
                Assert.Equal(2, (await PostAsync(http, $"/v1/keys/{name}/refresh", "{}"))["version"]!.GetValue<int>());
            }
            finally
            {
                await StopAsync(app, http);
            }

            // The old backup comes back while node 3 is down: the nodes that answer are ahead of the store, and the store
            // is not changed until every holder answered. Readiness and signing say so, naming the key and node 3.
            CopyStore(backup, dataDir);
            fixture.Nodes.KillNode(3);
            try
            {
                app = await ServerHost.BuildAsync(config);
                await app.StartAsync();
                http = Client(app, config);
                JsonNode? ready = null;
                await WaitForAsync(async () =>
                {
                    using HttpResponseMessage r = await http.GetAsync(new Uri("/readyz", UriKind.Relative));
                    ready = JsonNode.Parse(await r.Content.ReadAsStringAsync());
                    return r.StatusCode == HttpStatusCode.ServiceUnavailable && ready!["keysOutOfSync"]!.AsArray().Count > 0;
                }, "readiness names the key the store and the nodes disagree about");
                JsonNode entry = ready!["keysOutOfSync"]!.AsArray().Single(k => k!["id"]!.GetValue<string>() == keyId)!;
                string problem = entry["problem"]!.GetValue<string>();
                Assert.Contains("server store is at version 1", problem, StringComparison.Ordinal);
                Assert.Contains("node(s) 1,2 at version 2", problem, StringComparison.Ordinal);
                Assert.Contains("node(s) 3 did not answer", problem, StringComparison.Ordinal);

                using (HttpResponseMessage refused = await http.PostAsync(new Uri($"/v1/keys/{name}/sign", UriKind.Relative), Json("""{"message":"0102"}""")))
                {
                    string body = await refused.Content.ReadAsStringAsync();
                    Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
                    Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
                    JsonNode p = JsonNode.Parse(body)!;
                    Assert.Equal("https://conclave.dev/problems/key-out-of-sync", p["type"]!.GetValue<string>());
                    Assert.Contains("node(s) 3 did not answer", p["detail"]!.GetValue<string>(), StringComparison.Ordinal);
                }

                using (HttpResponseMessage refused = await http.PostAsync(new Uri($"/v1/keys/{name}/refresh", UriKind.Relative), Json("{}")))
                {
                    Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
                    Assert.Contains("key-out-of-sync", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
                }

                Assert.Equal(1, (await GetAsync(http, $"/v1/keys/{name}"))["version"]!.GetValue<int>());
                Assert.Contains($"conclave_key_in_sync{{key=\"{name}\"}} 0\n", await http.GetStringAsync(new Uri("/metrics", UriKind.Relative)), StringComparison.Ordinal);
            }
            finally
            {
                fixture.Nodes.StartNode(3);
                fixture.Nodes.WaitForAll(TimeSpan.FromSeconds(120));
            }

            try
            {
                // Node 3 is back: every holder agrees on version 2, so the store takes it, audited, and the key works.
                await WaitForAsync(async () => (await http.GetAsync(new Uri("/readyz", UriKind.Relative))).IsSuccessStatusCode, "ready once the store was re-synchronised");
                JsonNode shown = await GetAsync(http, $"/v1/keys/{name}");
                Assert.Equal(2, shown["version"]!.GetValue<int>());
                Assert.Equal(groupKey, Convert.FromHexString(shown["publicKey"]!.GetValue<string>()));
                await SignAsync(http, name, groupKey, 2);
                Assert.Contains($"conclave_key_in_sync{{key=\"{name}\"}} 1\n", await http.GetStringAsync(new Uri("/metrics", UriKind.Relative)), StringComparison.Ordinal);
                Assert.Equal(3, (await PostAsync(http, $"/v1/keys/{name}/refresh", "{}"))["version"]!.GetValue<int>());
                await SignAsync(http, name, groupKey, 3);

                JsonNode audit = await GetAsync(http, "/v1/audit?last=1000");
                Assert.Contains(audit["entries"]!.AsArray(), e => e!["action"]!.GetValue<string>() == "key.resync" && e["keyId"]!.GetValue<string>() == keyId
                    && e["result"]!.GetValue<string>().Contains("store version 1 -> 2", StringComparison.Ordinal));

                // The explicit check agrees: the key is consistent now.
                JsonNode check = await PostAsync(http, "/v1/cluster/resync", "{}");
                JsonNode mine = check["keys"]!.AsArray().Single(k => k!["keyId"]!.GetValue<string>() == keyId)!;
                Assert.Equal("consistent", mine["state"]!.GetValue<string>());
                Assert.Equal(3, mine["storeVersion"]!.GetValue<int>());
            }
            finally
            {
                await StopAsync(app, http);
            }
        }
        finally
        {
            Directory.Delete(backup, recursive: true);
        }
    }

    [Fact]
    public async Task AnOldServerBackup_WithEveryNodeUp_SignsAndRefreshesAfterStart()
    {
        // The plain case of issue 20 bug 4 (before the fix: sign answered 503 and refresh 500 after the restore).
        ServerConfig config = ServerConfig.Load(fixture.Nodes.Layout.ServerConfigPath);
        string dataDir = config.Resolve(config.DataDir);
        string backup = Path.Combine(Path.GetTempPath(), "conclave-restore-" + Guid.NewGuid().ToString("N")[..8]);
        string name = "restore-up-" + Guid.NewGuid().ToString("N")[..8];
        (WebApplication app, HttpClient http) = await StartAsync(config);
        JsonNode key;
        try
        {
            key = await PostAsync(http, "/v1/keys", $$"""{"name":"{{name}}","scheme":"frost-ed25519"}""", HttpStatusCode.Created);
        }
        finally
        {
            await StopAsync(app, http);
        }

        byte[] groupKey = Convert.FromHexString(key["publicKey"]!.GetValue<string>());
        CopyStore(dataDir, backup);
        try
        {
            (app, http) = await StartAsync(config);
            try
            {
                await PostAsync(http, $"/v1/keys/{name}/reshare", """{"threshold":3,"participants":3}""");
            }
            finally
            {
                await StopAsync(app, http);
            }

            CopyStore(backup, dataDir);
            (app, http) = await StartAsync(config);
            try
            {
                // The reshare's threshold comes back with the nodes' version.
                JsonNode shown = await GetAsync(http, $"/v1/keys/{name}");
                Assert.Equal((2, 3), (shown["version"]!.GetValue<int>(), shown["threshold"]!.GetValue<int>()));
                await SignAsync(http, name, groupKey, 2);
                Assert.Equal(3, (await PostAsync(http, $"/v1/keys/{name}/refresh", "{}"))["version"]!.GetValue<int>());
                await SignAsync(http, name, groupKey, 3);
            }
            finally
            {
                await StopAsync(app, http);
            }
        }
        finally
        {
            Directory.Delete(backup, recursive: true);
        }
    }

    [Fact]
    public async Task AServerStoreAheadOfTheNodes_IsReportedAndNotChanged()
    {
        // The opposite mistake: the server backup is newer than the nodes'. Simulated by a store whose key names a
        // version no node ever held: the nodes hold version 1, the store version 2 with the same package.
        ServerConfig config = ServerConfig.Load(fixture.Nodes.Layout.ServerConfigPath);
        (WebApplication app, HttpClient http) = await StartAsync(config);
        string name = "ahead-" + Guid.NewGuid().ToString("N")[..8];
        string keyId;
        try
        {
            JsonNode key = await PostAsync(http, "/v1/keys", $$"""{"name":"{{name}}","scheme":"frost-ed25519"}""", HttpStatusCode.Created);
            keyId = key["id"]!.GetValue<string>();
            Storage.IConclaveStore store = app.Services.GetRequiredService<Storage.IConclaveStore>();
            using Crypto.Memory.SecretBuffer package = await store.Keys.OpenMaterialAsync(keyId, 1);
            byte[] pk = Convert.FromHexString(key["publicKey"]!.GetValue<string>());
            await store.Keys.AddPendingVersionAsync(keyId, 1, 2, pk, package);
            await store.Keys.CommitPendingVersionAsync(new Storage.Keys.KeyRotation(keyId, 1, 2, pk, 2, 3));

            JsonNode check = await PostAsync(http, "/v1/cluster/resync", "{}");
            JsonNode mine = check["keys"]!.AsArray().Single(k => k!["keyId"]!.GetValue<string>() == keyId)!;
            Assert.Equal("out-of-sync", mine["state"]!.GetValue<string>());
            Assert.Contains("the server store is at version 2 but the nodes hold at most version 1", mine["problem"]!.GetValue<string>(), StringComparison.Ordinal);
            Assert.Equal(new[] { 1, 1, 1 }, mine["nodes"]!.AsArray().Select(n => n!["version"]!.GetValue<int>()));

            using HttpResponseMessage refused = await http.PostAsync(new Uri($"/v1/keys/{name}/sign", UriKind.Relative), Json("""{"message":"0102"}"""));
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
            Assert.Contains("restore the server backup taken with them", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            Assert.Equal(2, (await GetAsync(http, $"/v1/keys/{name}"))["version"]!.GetValue<int>());

            // The CLI says the same, one line per key, and exits 4.
            string token = (await File.ReadAllTextAsync(app.Services.GetRequiredService<ServerPaths>().AdminTokenFile)).Trim();
            (int exit, string output, _) = Cli(config, token, "keys", "check");
            Assert.Equal(4, exit);
            Assert.Contains($"{name}: out-of-sync: key {name}: the server store is at version 2 but the nodes hold at most version 1", output, StringComparison.Ordinal);

            // This class's other test restarts a server on the same store: the inconsistent key is retired from the check.
            await store.Keys.SetStateAsync(keyId, Storage.Keys.KeyState.Destroyed);
        }
        finally
        {
            await StopAsync(app, http);
        }
    }

    private static (int Exit, string Out, string Err) Cli(ServerConfig config, string token, params string[] args)
    {
        var psi = new System.Diagnostics.ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(RepoPaths.CliDll);
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["CONCLAVE_TOKEN"] = token;
        psi.Environment["CONCLAVE_SERVER"] = "http://" + config.Listen;
        using System.Diagnostics.Process p = System.Diagnostics.Process.Start(psi)!;
        Task<string> o = p.StandardOutput.ReadToEndAsync();
        Task<string> e = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(TimeSpan.FromSeconds(60)));
        return (p.ExitCode, o.Result, e.Result);
    }

    private static HttpClient Client(WebApplication app, ServerConfig config)
    {
        string token = File.ReadAllText(app.Services.GetRequiredService<ServerPaths>().AdminTokenFile).Trim();
        var http = new HttpClient { BaseAddress = new Uri("http://" + config.Listen), Timeout = TimeSpan.FromMinutes(3) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return http;
    }

    /// <summary>A file-level backup of a stopped server's SQLite store (the database and its WAL files), or its restore.</summary>
    private static void CopyStore(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (string old in Directory.GetFiles(to, "conclave.db*"))
        {
            File.Delete(old);
        }

        foreach (string f in Directory.GetFiles(from, "conclave.db*"))
        {
            File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
        }
    }

    private static async Task SignAsync(HttpClient http, string name, byte[] groupKey, int version)
    {
        JsonNode sig = await PostAsync(http, $"/v1/keys/{name}/sign", """{"message":"0102"}""");
        Assert.Equal(version, sig["keyVersion"]!.GetValue<int>());
        Assert.True(FrostCiphersuite.TryGet((await GetAsync(http, $"/v1/keys/{name}"))["scheme"]!.GetValue<string>(), out FrostCiphersuite? suite));
        Assert.True(suite.Verify(groupKey, [1, 2], Convert.FromHexString(sig["signature"]!.GetValue<string>())));
    }
}
