using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json.Nodes;
using Conclave.Server.Config;
using Conclave.Server.Hosting;
using Conclave.Testing;
using Conclave.Threshold.Frost;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

using static Conclave.Server.Tests.OwnServers;

namespace Conclave.Server.Tests;

/// <summary>Three signer-node processes shared by the tests that run a server of their own configuration.</summary>
public sealed class VariantNodes : IDisposable
{
    public LocalClusterProcesses Nodes { get; } = new(RepoPaths.CliDll, 3, 2);

    public void Dispose() => Nodes.Dispose();
}

/// <summary>
/// The server in configurations the shared API cluster does not use: PostgreSQL as its store, and a short request
/// timeout with signer nodes that stop answering.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed partial class ServerVariantsTests(VariantNodes fixture) : IClassFixture<VariantNodes>
{
    [Fact]
    public async Task PostgresStore_KeysSigningAndAuditSurviveARestart()
    {
        string admin = Environment.GetEnvironmentVariable("CONCLAVE_TEST_POSTGRES") is { Length: > 0 } cs
            ? cs
            : throw new InvalidOperationException("CONCLAVE_TEST_POSTGRES is not set: run ./test.sh, or eval \"$(bash scripts/test-services/postgres.sh)\" first");
        string db = "conclave_srv_" + Guid.NewGuid().ToString("N")[..12];
        await using (var c = new NpgsqlConnection(admin))
        {
            await c.OpenAsync();
            await using var cmd = new NpgsqlCommand($"CREATE DATABASE {db}", c);
            await cmd.ExecuteNonQueryAsync();
        }

        try
        {
            ServerConfig config = ServerConfig.Load(fixture.Nodes.Layout.ServerConfigPath);
            config.PostgresConnectionString = new NpgsqlConnectionStringBuilder(admin) { Database = db }.ConnectionString;
            (WebApplication app, HttpClient http) = await StartAsync(config);
            string frostName = "pg-frost-" + Guid.NewGuid().ToString("N")[..6];
            string singleName = "pg-ecdsa-" + Guid.NewGuid().ToString("N")[..6];
            JsonNode frost;
            try
            {
                frost = await PostAsync(http, "/v1/keys", $$"""{"name":"{{frostName}}","scheme":"frost-taproot"}""", HttpStatusCode.Created);
                await PostAsync(http, "/v1/keys", $$"""{"name":"{{singleName}}","scheme":"ecdsa-secp256k1"}""", HttpStatusCode.Created);
                await PostAsync(http, $"/v1/keys/{frostName}/sign", """{"message":"01"}""");
            }
            finally
            {
                await StopAsync(app, http);
            }

            // A new server process on the same database finds the keys (the FROST key's public package is re-registered
            // with the coordinator from PostgreSQL) and signs with both.
            (app, http) = await StartAsync(config);
            try
            {
                JsonNode list = JsonNode.Parse(await http.GetStringAsync(new Uri("/v1/keys", UriKind.Relative)))!;
                Assert.Equal(2, list["keys"]!.AsArray().Count);
                byte[] message = "after restart"u8.ToArray();
                JsonNode sig = await PostAsync(http, $"/v1/keys/{frostName}/sign", $$"""{"message":"{{Convert.ToHexStringLower(message)}}"}""");
                Assert.True(FrostCiphersuite.Secp256k1Taproot.Verify(Convert.FromHexString(frost["outputKey"]!.GetValue<string>()), message,
                    Convert.FromHexString(sig["signature"]!.GetValue<string>())));
                await PostAsync(http, $"/v1/keys/{singleName}/sign", $$"""{"digest":"{{string.Concat(Enumerable.Repeat("ab", 32))}}"}""");
                JsonNode verify = JsonNode.Parse(await http.GetStringAsync(new Uri("/v1/audit/verify", UriKind.Relative)))!;
                Assert.True(verify["ok"]!.GetValue<bool>(), verify.ToJsonString());
                Assert.True(verify["entries"]!.GetValue<long>() >= 8);
            }
            finally
            {
                await StopAsync(app, http);
            }
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            await using var c = new NpgsqlConnection(admin);
            await c.OpenAsync();
            await using var cmd = new NpgsqlCommand($"DROP DATABASE IF EXISTS {db} WITH (FORCE)", c);
            await cmd.ExecuteNonQueryAsync();
        }
    }

    /// <summary>
    /// server.json <c>nodeTransport</c> (docs/ARCHITECTURE.md "Node transport"): "frames" by default, "grpc" carries
    /// every step as an HTTP/2 request (no frame connection opened); both sign, and a value that is neither is refused
    /// naming the field.
    /// </summary>
    [Fact]
    public async Task NodeTransport_FromServerJson_FramesByDefault_GrpcWhenAsked_AndAnUnknownValueIsRefused()
    {
        string path = fixture.Nodes.Layout.ServerConfigPath;
        Assert.Equal("frames", ServerConfig.Load(path).NodeTransport);
        string backup = path + ".bak-" + Guid.NewGuid().ToString("N")[..6];
        File.Copy(path, backup);
        try
        {
            JsonNode json = JsonNode.Parse(File.ReadAllText(path))!;
            json["nodeTransport"] = "http";
            File.WriteAllText(path, json.ToJsonString());
            var e = Assert.Throws<Conclave.Node.Config.ConfigException>(() => ServerConfig.Load(path));
            Assert.Contains("nodeTransport", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Move(backup, path, overwrite: true);
        }

        foreach (string transport in new[] { "grpc", "frames" })
        {
            ServerConfig config = ServerConfig.Load(path);
            config.NodeTransport = transport;
            config.Validate();
            (WebApplication app, HttpClient http) = await StartAsync(config);
            try
            {
                var cluster = app.Services.GetRequiredService<Conclave.Server.Coordinator.Cluster>();
                Assert.Equal(transport == "grpc" ? Conclave.Server.Coordinator.NodeTransport.Grpc : Conclave.Server.Coordinator.NodeTransport.Frames, cluster.Transport);
                string name = "transport-" + transport + "-" + Guid.NewGuid().ToString("N")[..6];
                JsonNode key = await PostAsync(http, "/v1/keys", $$"""{"name":"{{name}}","scheme":"frost-secp256k1"}""", HttpStatusCode.Created);
                byte[] message = TestSeed.Bytes(40, "transport@" + transport);
                JsonNode sig = await PostAsync(http, $"/v1/keys/{name}/sign", $$"""{"message":"{{Convert.ToHexStringLower(message)}}"}""");
                Assert.True(FrostCiphersuite.Secp256k1Sha256.Verify(Convert.FromHexString(key["publicKey"]!.GetValue<string>()), message,
                    Convert.FromHexString(sig["signature"]!.GetValue<string>())));
                long opened = cluster.NodeIds.Sum(id => cluster.Node(id).FrameConnectionsOpened);
                if (transport == "grpc")
                {
                    Assert.Equal(0, opened);
                }
                else
                {
                    Assert.InRange(opened, 2, 3); // one per node the key's DKG and the signature reached
                }
            }
            finally
            {
                await StopAsync(app, http);
            }
        }
    }

    /// <summary>
    /// server.json <c>signStepsInFlight</c> (issue 18, coalescing; docs/ARCHITECTURE.md "Coalescing"): 2 by default, a
    /// value outside 1..512 is refused naming the field; with 1, a sign/batch of a FROST key goes to each node in fewer
    /// steps than it has items, and every item's signature verifies.
    /// </summary>
    [Fact]
    public async Task SignStepsInFlight_FromServerJson_CoalescesABatchIntoFewerSteps_AndEverySignatureVerifies()
    {
        string path = fixture.Nodes.Layout.ServerConfigPath;
        Assert.Equal(2, ServerConfig.Load(path).SignStepsInFlight);
        ServerConfig config = ServerConfig.Load(path);
        foreach (int bad in new[] { 0, 513 })
        {
            config.SignStepsInFlight = bad;
            var e = Assert.Throws<Conclave.Node.Config.ConfigException>(config.Validate);
            Assert.Contains("signStepsInFlight", e.Message, StringComparison.Ordinal);
        }

        config.SignStepsInFlight = 1;
        config.Validate();
        (WebApplication app, HttpClient http) = await StartAsync(config);
        try
        {
            var frost = app.Services.GetRequiredService<Conclave.Server.Coordinator.FrostCoordinator>();
            Assert.Equal(1, frost.SignStepsInFlight);
            string name = "coalesce-" + Guid.NewGuid().ToString("N")[..6];
            JsonNode key = await PostAsync(http, "/v1/keys", $$"""{"name":"{{name}}","scheme":"frost-secp256k1"}""", HttpStatusCode.Created);
            byte[][] messages = [.. Enumerable.Range(0, 64).Select(i => TestSeed.Bytes(32, $"batch item {i}"))];
            string items = string.Join(",", messages.Select(m => $$"""{"message":"{{Convert.ToHexStringLower(m)}}"}"""));
            (long itemsBefore, long stepsBefore) = frost.SignSteps;
            JsonNode batch = await PostAsync(http, $"/v1/keys/{name}/sign/batch", $$"""{"items":[{{items}}]}""");
            (long itemsAfter, long stepsAfter) = frost.SignSteps;
            JsonArray results = batch["results"]!.AsArray();
            Assert.Equal(messages.Length, results.Count);
            byte[] pub = Convert.FromHexString(key["publicKey"]!.GetValue<string>());
            for (int i = 0; i < messages.Length; i++)
            {
                Assert.True(FrostCiphersuite.Secp256k1Sha256.Verify(pub, messages[i], Convert.FromHexString(results[i]!["result"]!["signature"]!.GetValue<string>())),
                    $"item {i} of the batch does not verify");
            }

            Assert.Equal(2 * messages.Length, itemsAfter - itemsBefore);
            Assert.True(stepsAfter - stepsBefore < itemsAfter - itemsBefore, $"{itemsAfter - itemsBefore} shares in {stepsAfter - stepsBefore} steps");
        }
        finally
        {
            await StopAsync(app, http);
        }
    }

    /// <summary>Two server replicas on one PostgreSQL store (docs/OPERATIONS.md): each sees and signs with the keys the
    /// other created, refreshed or reshared.</summary>
    [Fact]
    public async Task TwoReplicasOnOnePostgresStore_FollowEachOthersKeyVersions()
    {
        string admin = AdminConnectionString();
        string db = "conclave_rep_" + Guid.NewGuid().ToString("N")[..12];
        await ExecAsync(admin, $"CREATE DATABASE {db}");
        try
        {
            ServerConfig a = ServerConfig.Load(fixture.Nodes.Layout.ServerConfigPath);
            a.PostgresConnectionString = new NpgsqlConnectionStringBuilder(admin) { Database = db }.ConnectionString;
            ServerConfig b = ServerConfig.Load(fixture.Nodes.Layout.ServerConfigPath);
            b.PostgresConnectionString = a.PostgresConnectionString;
            b.Listen = "127.0.0.1:" + LoopbackPorts.Take().ToString(System.Globalization.CultureInfo.InvariantCulture);
            (WebApplication appA, HttpClient httpA) = await StartAsync(a);
            (WebApplication appB, HttpClient httpB) = await StartAsync(b);
            try
            {
                string name = "rep-" + Guid.NewGuid().ToString("N")[..6];
                JsonNode key = await PostAsync(httpA, "/v1/keys", $$"""{"name":"{{name}}","scheme":"frost-secp256k1"}""", HttpStatusCode.Created);
                byte[] groupKey = Convert.FromHexString(key["publicKey"]!.GetValue<string>());
                async Task SignOn(HttpClient http, int version)
                {
                    JsonNode sig = await PostAsync(http, $"/v1/keys/{name}/sign", """{"message":"0102","path":"4"}""");
                    Assert.Equal(version, sig["keyVersion"]!.GetValue<int>());
                    byte[] child = Convert.FromHexString(sig["publicKey"]!.GetValue<string>());
                    Assert.True(FrostCiphersuite.Secp256k1Sha256.Verify(child, [1, 2], Convert.FromHexString(sig["signature"]!.GetValue<string>())));
                }

                await SignOn(httpB, 1);
                Assert.Equal(2, (await PostAsync(httpA, $"/v1/keys/{name}/refresh", "{}"))["version"]!.GetValue<int>());
                await SignOn(httpB, 2);
                JsonNode reshared = await PostAsync(httpB, $"/v1/keys/{name}/reshare", """{"threshold":3,"participants":3}""");
                Assert.Equal(3, reshared["threshold"]!.GetValue<int>());
                Assert.Equal(groupKey, Convert.FromHexString(reshared["publicKey"]!.GetValue<string>()));
                await SignOn(httpA, 3);
                await SignOn(httpB, 3);
            }
            finally
            {
                await StopAsync(appB, httpB);
                await StopAsync(appA, httpA);
            }
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            await ExecAsync(admin, $"DROP DATABASE IF EXISTS {db} WITH (FORCE)");
        }
    }

    [Fact]
    public async Task RequestTimeout_AnswersGatewayTimeout_AuditsIt_AndTheClusterRecovers()
    {
        // The key is made under the default timeout (a DKG on a loaded CI machine can take over a second), then the
        // server restarts with a 5 s request timeout and a 10-minute round timeout: with every node stopped nothing else
        // can end the request, so the 504 cannot come from a race between the two timeouts.
        ServerConfig config = ServerConfig.Load(fixture.Nodes.Layout.ServerConfigPath);
        string name = "slow-" + Guid.NewGuid().ToString("N")[..6];
        (WebApplication app, HttpClient http) = await StartAsync(config);
        try
        {
            await PostAsync(http, "/v1/keys", $$"""{"name":"{{name}}","scheme":"frost-secp256k1"}""", HttpStatusCode.Created);
        }
        finally
        {
            await StopAsync(app, http);
        }

        config.RequestTimeoutSeconds = 5;
        config.RoundTimeoutMilliseconds = 600_000;
        (app, http) = await StartAsync(config);
        int[] pids = [.. Enumerable.Range(1, 3).Select(i => fixture.Nodes.NodeProcess((uint)i)!.Id)];
        try
        {
            await SignUntilOkAsync(http, name);

            // Every node stops answering (SIGSTOP): the round would wait 10 minutes, the request gives up after 5 s.
            foreach (int pid in pids)
            {
                Assert.Equal(0, Kill(pid, SigStop));
            }

            using (HttpResponseMessage r = await http.PostAsync(new Uri($"/v1/keys/{name}/sign", UriKind.Relative), Json("""{"message":"02"}""")))
            {
                Assert.Equal(HttpStatusCode.GatewayTimeout, r.StatusCode);
                Assert.Equal("application/problem+json", r.Content.Headers.ContentType?.MediaType);
                Assert.Equal("https://conclave.dev/problems/timeout", JsonNode.Parse(await r.Content.ReadAsStringAsync())!["type"]!.GetValue<string>());
            }

            foreach (int pid in pids)
            {
                Assert.Equal(0, Kill(pid, SigCont));
            }

            // The nodes answer again, and so does signing.
            await SignUntilOkAsync(http, name);

            // The timed-out call is in the audit log with its outcome.
            var sw = Stopwatch.StartNew();
            while (true)
            {
                JsonNode page = JsonNode.Parse(await http.GetStringAsync(new Uri("/v1/audit?after=0&limit=1000", UriKind.Relative)))!;
                if (page["entries"]!.AsArray().Any(e => e!["result"]!.GetValue<string>().StartsWith("failed 504 timeout (intent seq ", StringComparison.Ordinal)))
                {
                    break;
                }

                Assert.True(sw.Elapsed < TimeSpan.FromSeconds(60), "no audit entry records the timeout");
                await Task.Delay(100);
            }
        }
        finally
        {
            foreach (int pid in pids)
            {
                _ = Kill(pid, SigCont);
            }

            await StopAsync(app, http);
        }
    }

    [Fact]
    public async Task AuditFailure_FailsClosed_NoSignatureNoKey_ThenRecovers()
    {
        ServerConfig config = ServerConfig.Load(fixture.Nodes.Layout.ServerConfigPath);
        (WebApplication app, HttpClient http) = await StartAsync(config);
        string db = Path.Combine(config.Resolve(config.DataDir), "conclave.db");
        try
        {
            string name = "audited-" + Guid.NewGuid().ToString("N")[..6];
            await PostAsync(http, "/v1/keys", $$"""{"name":"{{name}}","scheme":"ecdsa-secp256k1"}""", HttpStatusCode.Created);
            string digest = string.Concat(Enumerable.Repeat("cd", 32));

            // The audit table starts refusing inserts (as a full disk or a broken database would).
            await NodelessServer.SqlAsync(db, "CREATE TRIGGER audit_down BEFORE INSERT ON audit_entries BEGIN SELECT RAISE(ABORT, 'audit down'); END;");
            foreach ((string path, string json) in new[]
            {
                ($"/v1/keys/{name}/sign", $$"""{"digest":"{{digest}}"}"""),
                ($"/v1/keys/{name}/sign/batch", $$"""{"items":[{"digest":"{{digest}}"}]}"""),
                ("/v1/keys", """{"name":"never-made","scheme":"frost-secp256k1"}"""),
                ("/rpc", """{"jsonrpc":"2.0","id":1,"method":"eth_accounts"}"""),
            })
            {
                using HttpResponseMessage r = await http.PostAsync(new Uri(path, UriKind.Relative), Json(json));
                string text = await r.Content.ReadAsStringAsync();
                Assert.True(r.StatusCode == HttpStatusCode.ServiceUnavailable, $"{path}: {(int)r.StatusCode} {text}");
                Assert.Equal("https://conclave.dev/problems/audit-unavailable", JsonNode.Parse(text)!["type"]!.GetValue<string>());
                Assert.DoesNotContain("signature", text, StringComparison.Ordinal);
            }

            await NodelessServer.SqlAsync(db, "DROP TRIGGER audit_down;");
            JsonNode keys = JsonNode.Parse(await http.GetStringAsync(new Uri("/v1/keys", UriKind.Relative)))!;
            Assert.DoesNotContain(keys["keys"]!.AsArray(), k => k!["name"]!.GetValue<string>() == "never-made");
            await PostAsync(http, $"/v1/keys/{name}/sign", $$"""{"digest":"{{digest}}"}""");
            JsonNode verify = JsonNode.Parse(await http.GetStringAsync(new Uri("/v1/audit/verify", UriKind.Relative)))!;
            Assert.True(verify["ok"]!.GetValue<bool>(), verify.ToJsonString());
        }
        finally
        {
            await NodelessServer.SqlAsync(db, "DROP TRIGGER IF EXISTS audit_down;");
            await StopAsync(app, http);
        }
    }

    private static async Task SignUntilOkAsync(HttpClient http, string name)
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            using HttpResponseMessage r = await http.PostAsync(new Uri($"/v1/keys/{name}/sign", UriKind.Relative), Json("""{"message":"03"}"""));
            if (r.StatusCode == HttpStatusCode.OK)
            {
                return;
            }

            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(180), $"signing did not succeed: {(int)r.StatusCode} {await r.Content.ReadAsStringAsync()}");
            await Task.Delay(250);
        }
    }

    private const int SigStop = 19;
    private const int SigCont = 18;

    [LibraryImport("libc", EntryPoint = "kill")]
    private static partial int Kill(int pid, int signal);
}
