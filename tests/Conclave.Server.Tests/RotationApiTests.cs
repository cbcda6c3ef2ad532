using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Conclave.Server.Config;
using Conclave.Server.Coordinator;
using Conclave.Server.Hosting;
using Conclave.Storage;
using Conclave.Storage.Rotation;
using Conclave.Threshold.Frost;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

using static Conclave.Server.Tests.OwnServers;

namespace Conclave.Server.Tests;

/// <summary>
/// Crash-safe rotation through the API (docs/ROTATION.md): a server killed mid-run finishes or aborts it when it starts
/// again (the run log is in its store); a run outlives the request that asked for it; two replicas on one PostgreSQL
/// store never run two rotations of one key; a reshare's threshold and participants are what the key shows afterwards.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class RotationApiTests(VariantNodes fixture) : IClassFixture<VariantNodes>
{
    [Theory]
    [InlineData("started", 1)]
    [InlineData("finish", 1)]
    [InlineData("prepared", 2)]
    [InlineData("nodes-committed", 2)]
    [InlineData("committed", 2)]
    public async Task ServerKilledMidRefresh_FinishesOrAbortsTheRunAtStart_AndTheKeySigns(string boundary, int versionAfter)
    {
        ServerConfig config = Config();
        (WebApplication app, HttpClient http) = await StartAsync(config);
        string name = "crash-" + Guid.NewGuid().ToString("N")[..8];
        JsonNode key = await PostAsync(http, "/v1/keys", $$"""{"name":"{{name}}","scheme":"frost-secp256k1"}""", HttpStatusCode.Created);
        string keyId = key["id"]!.GetValue<string>();
        byte[] groupKey = Convert.FromHexString(key["publicKey"]!.GetValue<string>());

        // The server dies at the boundary: it stops taking work and nothing after the boundary runs (no abort either).
        (app, http) = await RefreshStoppedDeadAtAsync(app, http, config, name, boundary);
        try
        {
            IRotationLog runs = app.Services.GetRequiredService<IConclaveStore>().Rotations;
            RotationRun run = (await runs.ListForKeyAsync(keyId, 10)).Single(r => r.Kind == RotationKind.Refresh);
            await WaitForAsync(async () => (await runs.GetAsync(run.RunId))!.IsFinished, "the interrupted run was finished or aborted at start");
            JsonNode op = await GetAsync(http, $"/v1/operations/{run.RunId}");
            Assert.Equal(versionAfter == 2 ? "retired" : "aborted", op["state"]!.GetValue<string>());
            JsonNode shown = await GetAsync(http, $"/v1/keys/{name}");
            Assert.Equal(versionAfter, shown["version"]!.GetValue<int>());
            Assert.Equal(groupKey, Convert.FromHexString(shown["publicKey"]!.GetValue<string>()));
            await SignAsync(http, name, groupKey, versionAfter);

            // And the key rotates again normally.
            JsonNode again = await PostAsync(http, $"/v1/keys/{name}/refresh", "{}");
            Assert.Equal(versionAfter + 1, again["version"]!.GetValue<int>());
            await SignAsync(http, name, groupKey, versionAfter + 1);
        }
        finally
        {
            await StopAsync(app, http);
        }
    }

    /// <summary>
    /// The same for an ecdsa-dkls23 key (docs/DKLS23.md): the server stopped dead at a boundary of the run's FROST DKG
    /// (round2), of the pairwise setup (setup2; setup3, once every node stored its new share pending) or of the engine
    /// (prepared, nodes-committed) finishes or aborts the run when it starts again; the key signs (libsecp256k1) under the
    /// same public key at the version the run left, and refreshes again.
    /// </summary>
    [Theory]
    [InlineData("round2", 1)]
    [InlineData("setup2", 1)]
    [InlineData("setup3", 1)]
    [InlineData("prepared", 2)]
    [InlineData("nodes-committed", 2)]
    public async Task ServerStoppedMidDklsRefresh_FinishesOrAbortsTheRunAtStart_AndTheKeySigns(string boundary, int versionAfter)
    {
        ServerConfig config = Config();
        (WebApplication app, HttpClient http) = await StartAsync(config);
        string name = "dkls-crash-" + Guid.NewGuid().ToString("N")[..8];
        JsonNode key = await PostAsync(http, "/v1/keys", $$"""{"name":"{{name}}","scheme":"ecdsa-dkls23"}""", HttpStatusCode.Created);
        string keyId = key["id"]!.GetValue<string>();
        byte[] groupKey = Convert.FromHexString(key["publicKey"]!.GetValue<string>());

        (app, http) = await RefreshStoppedDeadAtAsync(app, http, config, name, boundary);
        try
        {
            IRotationLog runs = app.Services.GetRequiredService<IConclaveStore>().Rotations;
            RotationRun run = (await runs.ListForKeyAsync(keyId, 10)).Single(r => r.Kind == RotationKind.Refresh);
            await WaitForAsync(async () => (await runs.GetAsync(run.RunId))!.IsFinished, "the interrupted run was finished or aborted at start");
            JsonNode op = await GetAsync(http, $"/v1/operations/{run.RunId}");
            Assert.Equal(versionAfter == 2 ? "retired" : "aborted", op["state"]!.GetValue<string>());
            JsonNode shown = await GetAsync(http, $"/v1/keys/{name}");
            Assert.Equal(versionAfter, shown["version"]!.GetValue<int>());
            Assert.Equal(groupKey, Convert.FromHexString(shown["publicKey"]!.GetValue<string>()));
            await SignDigestAsync(http, name, groupKey, versionAfter);

            JsonNode again = await PostAsync(http, $"/v1/keys/{name}/refresh", "{}");
            Assert.Equal(versionAfter + 1, again["version"]!.GetValue<int>());
            await SignDigestAsync(http, name, groupKey, versionAfter + 1);
        }
        finally
        {
            await StopAsync(app, http);
        }
    }

    [Fact]
    public async Task Reshare_StoresThresholdAndParticipants_AcrossARestart()
    {
        ServerConfig config = Config();
        (WebApplication app, HttpClient http) = await StartAsync(config);
        string name = "meta-" + Guid.NewGuid().ToString("N")[..8];
        try
        {
            JsonNode key = await PostAsync(http, "/v1/keys", $$"""{"name":"{{name}}","scheme":"frost-ed25519"}""", HttpStatusCode.Created);
            Assert.Equal((2, 3), (key["threshold"]!.GetValue<int>(), key["participants"]!.GetValue<int>()));
            JsonNode reshared = await PostAsync(http, $"/v1/keys/{name}/reshare", """{"threshold":3,"participants":3}""");
            Assert.Equal((3, 3, 2), (reshared["threshold"]!.GetValue<int>(), reshared["participants"]!.GetValue<int>(), reshared["version"]!.GetValue<int>()));
            JsonNode shown = await GetAsync(http, $"/v1/keys/{name}");
            Assert.Equal((3, 3), (shown["threshold"]!.GetValue<int>(), shown["participants"]!.GetValue<int>()));
            JsonNode listed = (await GetAsync(http, "/v1/keys"))["keys"]!.AsArray().Single(k => k!["name"]!.GetValue<string>() == name)!;
            Assert.Equal(3, listed["threshold"]!.GetValue<int>());
        }
        finally
        {
            await StopAsync(app, http);
        }

        (app, http) = await StartAsync(config);
        try
        {
            JsonNode shown = await GetAsync(http, $"/v1/keys/{name}");
            Assert.Equal((3, 3, 2), (shown["threshold"]!.GetValue<int>(), shown["participants"]!.GetValue<int>(), shown["version"]!.GetValue<int>()));
        }
        finally
        {
            await StopAsync(app, http);
        }
    }

    [Fact]
    public async Task Readiness_NamesAKeyThatCannotReachItsQuorum()
    {
        ServerConfig config = Config();
        (WebApplication app, HttpClient http) = await StartAsync(config);
        try
        {
            string name = "quorum-" + Guid.NewGuid().ToString("N")[..8];
            JsonNode key = await PostAsync(http, "/v1/keys", $$"""{"name":"{{name}}","scheme":"frost-ed25519"}""", HttpStatusCode.Created);
            await PostAsync(http, $"/v1/keys/{name}/reshare", """{"threshold":3,"participants":3}""");

            // Issue 18: a restarted server registers no key at start and this one is not used again, yet readiness and
            // the metrics count it (the holders its store row records).
            await StopAsync(app, http);
            (app, http) = await StartAsync(config);
            Assert.Null(app.Services.GetRequiredService<Conclave.Server.Coordinator.FrostCoordinator>().Find(key["id"]!.GetValue<string>()));
            fixture.Nodes.KillNode(3);
            try
            {
                // The cluster's default quorum (2 of 3) is still up, but the 3-of-3 key cannot sign.
                JsonNode? ready = null;
                await WaitForAsync(async () =>
                {
                    using HttpResponseMessage r = await http.GetAsync(new Uri("/readyz", UriKind.Relative));
                    ready = JsonNode.Parse(await r.Content.ReadAsStringAsync());
                    return r.StatusCode == HttpStatusCode.ServiceUnavailable && ready!["nodesUp"]!.AsArray().Count == 2;
                }, "readiness reports the key below its quorum");
                Assert.Contains(key["id"]!.GetValue<string>(), ready!["keysBelowQuorum"]!.AsArray().Select(k => k!.GetValue<string>()));

                // Per-key health in /metrics (issue 20): two of its three holders up, below its threshold.
                string metrics = await http.GetStringAsync(new Uri("/metrics", UriKind.Relative));
                Assert.Contains($"conclave_key_holders_up{{key=\"{name}\",threshold=\"3\"}} 2\n", metrics, StringComparison.Ordinal);
                Assert.Contains($"conclave_key_quorum_reachable{{key=\"{name}\"}} 0\n", metrics, StringComparison.Ordinal);
            }
            finally
            {
                fixture.Nodes.StartNode(3);
                fixture.Nodes.WaitForAll(TimeSpan.FromSeconds(120));
            }

            await WaitForAsync(async () => (await http.GetAsync(new Uri("/readyz", UriKind.Relative))).IsSuccessStatusCode, "ready again with node 3 back");
            Assert.Contains($"conclave_key_quorum_reachable{{key=\"{name}\"}} 1\n", await http.GetStringAsync(new Uri("/metrics", UriKind.Relative)), StringComparison.Ordinal);
        }
        finally
        {
            await StopAsync(app, http);
        }
    }

    [Fact]
    public async Task ARunOutlivingTheRequest_Answers202_AndAClientThatLeavesDoesNotCutIt()
    {
        ServerConfig config = Config();
        config.RequestTimeoutSeconds = 2;
        (WebApplication app, HttpClient http) = await StartAsync(config);
        try
        {
            string name = "slow-" + Guid.NewGuid().ToString("N")[..8];
            JsonNode key = await PostAsync(http, "/v1/keys", $$"""{"name":"{{name}}","scheme":"frost-secp256k1"}""", HttpStatusCode.Created);
            byte[] groupKey = Convert.FromHexString(key["publicKey"]!.GetValue<string>());
            var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            app.Services.GetRequiredService<FrostCoordinator>().FaultInjection = async (_, b) =>
            {
                if (b == "round1")
                {
                    await release.Task; // the run is held here until the test lets it go
                }
            };

            // The request's deadline passes while the run is held: 202 with the operation to poll.
            using HttpResponseMessage accepted = await http.PostAsync(new Uri($"/v1/keys/{name}/refresh", UriKind.Relative), Json("{}"));
            string body = await accepted.Content.ReadAsStringAsync();
            Assert.True(accepted.StatusCode == HttpStatusCode.Accepted, body);
            JsonNode op = JsonNode.Parse(body)!;
            string id = op["id"]!.GetValue<string>();
            Assert.Equal($"/v1/operations/{id}", accepted.Headers.Location?.OriginalString);
            Assert.Equal("started", op["state"]!.GetValue<string>());

            // A second rotation of the same key while it runs is refused.
            using HttpResponseMessage busy = await http.PostAsync(new Uri($"/v1/keys/{name}/refresh", UriKind.Relative), Json("{}"));
            Assert.Equal(HttpStatusCode.Conflict, busy.StatusCode);
            Assert.Contains("rotation-in-progress", await busy.Content.ReadAsStringAsync(), StringComparison.Ordinal);

            release.SetResult();
            await WaitForAsync(async () => (await GetAsync(http, $"/v1/operations/{id}"))["state"]!.GetValue<string>() == "retired", "the run finished");
            Assert.Equal(2, (await GetAsync(http, $"/v1/operations/{id}"))["key"]!["version"]!.GetValue<int>());
            await SignAsync(http, name, groupKey, 2);

            // A client that gives up mid-request: the run goes on.
            var held = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            app.Services.GetRequiredService<FrostCoordinator>().FaultInjection = async (_, b) =>
            {
                if (b == "round2")
                {
                    reached.TrySetResult();
                    await held.Task;
                }
            };
            using (var leave = new CancellationTokenSource())
            {
                Task<HttpResponseMessage> request = http.PostAsync(new Uri($"/v1/keys/{name}/refresh", UriKind.Relative), Json("{}"), leave.Token);
                await reached.Task.WaitAsync(TimeSpan.FromSeconds(60));
                await leave.CancelAsync();
                await Assert.ThrowsAnyAsync<OperationCanceledException>(() => request);
            }

            held.SetResult();
            await WaitForAsync(async () => (await GetAsync(http, $"/v1/keys/{name}"))["version"]!.GetValue<int>() == 3, "the run went on after the client left");
            await SignAsync(http, name, groupKey, 3);
        }
        finally
        {
            await StopAsync(app, http);
        }
    }

    /// <summary>
    /// The HTTP client of a refresh or reshare disconnects while the run is held at a step boundary: the run is not
    /// cancelled, it finishes, the key signs under its unchanged public key at the new version, and the server store
    /// and every signer node agree on that version (POST /v1/cluster/resync finds the key consistent).
    /// </summary>
    [Theory]
    [InlineData("refresh", "started")]
    [InlineData("refresh", "round2")]
    [InlineData("refresh", "prepared")]
    [InlineData("refresh", "nodes-committed")]
    [InlineData("reshare", "round1")]
    [InlineData("reshare", "finish")]
    [InlineData("reshare", "committed")]
    public async Task AClientThatDisconnectsAtAStepBoundary_DoesNotCutTheRun_AndStoreAndNodesAgree(string operation, string boundary)
    {
        ServerConfig config = Config();
        (WebApplication app, HttpClient http) = await StartAsync(config);
        try
        {
            string name = "leave-" + Guid.NewGuid().ToString("N")[..8];
            JsonNode key = await PostAsync(http, "/v1/keys", $$"""{"name":"{{name}}","scheme":"frost-secp256k1"}""", HttpStatusCode.Created);
            byte[] groupKey = Convert.FromHexString(key["publicKey"]!.GetValue<string>());
            RotationKind kind = operation == "refresh" ? RotationKind.Refresh : RotationKind.Reshare;
            var held = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            FrostCoordinator frost = app.Services.GetRequiredService<FrostCoordinator>();
            frost.FaultInjection = async (k, b) =>
            {
                if (k == kind && b == boundary)
                {
                    reached.TrySetResult();
                    await held.Task;
                }
            };
            string body = operation == "refresh" ? "{}" : """{"threshold":3,"participants":3}""";
            using (var leave = new CancellationTokenSource())
            {
                Task<HttpResponseMessage> request = http.PostAsync(new Uri($"/v1/keys/{name}/{operation}", UriKind.Relative), Json(body), leave.Token);
                await reached.Task.WaitAsync(TimeSpan.FromSeconds(60));
                await leave.CancelAsync();
                await Assert.ThrowsAnyAsync<OperationCanceledException>(() => request);
            }

            held.SetResult();
            frost.FaultInjection = null;
            IRotationLog runs = app.Services.GetRequiredService<IConclaveStore>().Rotations;
            RotationRun run = (await runs.ListForKeyAsync(key["id"]!.GetValue<string>(), 10)).Single(r => r.Kind == kind);
            await WaitForAsync(async () => (await runs.GetAsync(run.RunId))!.IsFinished, "the run went on after the client left");
            Assert.Equal("retired", (await GetAsync(http, $"/v1/operations/{run.RunId}"))["state"]!.GetValue<string>());
            JsonNode shown = await GetAsync(http, $"/v1/keys/{name}");
            Assert.Equal(2, shown["version"]!.GetValue<int>());
            Assert.Equal(groupKey, Convert.FromHexString(shown["publicKey"]!.GetValue<string>()));
            await SignAsync(http, name, groupKey, 2);

            // Store and nodes agree on the version.
            JsonNode resync = await PostAsync(http, "/v1/cluster/resync", "{}");
            JsonNode mine = resync["keys"]!.AsArray().Single(k => k!["name"]!.GetValue<string>() == name)!;
            Assert.True(mine["state"]!.GetValue<string>() == "consistent", mine.ToJsonString());
            Assert.Equal((2, 2), (mine["storeVersion"]!.GetValue<int>(), mine["nodeVersion"]!.GetValue<int>()));
        }
        finally
        {
            await StopAsync(app, http);
        }
    }

    [Fact]
    public async Task TwoReplicasOnOnePostgresStore_AskedToRefreshTheSameKeyAtOnce_RunOneRotation()
    {
        string admin = AdminConnectionString();
        string db = "conclave_rot_" + Guid.NewGuid().ToString("N")[..12];
        await ExecAsync(admin, $"CREATE DATABASE {db}");
        try
        {
            ServerConfig a = Config();
            a.PostgresConnectionString = new NpgsqlConnectionStringBuilder(admin) { Database = db }.ConnectionString;
            ServerConfig b = Config();
            b.PostgresConnectionString = a.PostgresConnectionString;
            b.Listen = "127.0.0.1:" + LoopbackPorts.Take().ToString(System.Globalization.CultureInfo.InvariantCulture);
            (WebApplication appA, HttpClient httpA) = await StartAsync(a);
            (WebApplication appB, HttpClient httpB) = await StartAsync(b);
            try
            {
                string name = "race-" + Guid.NewGuid().ToString("N")[..8];
                JsonNode key = await PostAsync(httpA, "/v1/keys", $$"""{"name":"{{name}}","scheme":"frost-secp256k1"}""", HttpStatusCode.Created);
                byte[] groupKey = Convert.FromHexString(key["publicKey"]!.GetValue<string>());
                await SignAsync(httpB, name, groupKey, 1);

                // Both replicas get the request; each holds its run at round one until both have asked, so they overlap.
                var bothAsked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                int arrived = 0;
                Func<RotationKind, string, Task> hold = async (_, boundary) =>
                {
                    if (boundary == "started")
                    {
                        if (Interlocked.Increment(ref arrived) == 2)
                        {
                            bothAsked.TrySetResult();
                        }

                        await bothAsked.Task.WaitAsync(TimeSpan.FromSeconds(5)).ContinueWith(_ => { }, TaskScheduler.Default);
                    }
                };
                appA.Services.GetRequiredService<FrostCoordinator>().FaultInjection = hold;
                appB.Services.GetRequiredService<FrostCoordinator>().FaultInjection = hold;
                HttpResponseMessage[] answers = await Task.WhenAll(
                    httpA.PostAsync(new Uri($"/v1/keys/{name}/refresh", UriKind.Relative), Json("{}")),
                    httpB.PostAsync(new Uri($"/v1/keys/{name}/refresh", UriKind.Relative), Json("{}")));
                string[] bodies = await Task.WhenAll(answers.Select(r => r.Content.ReadAsStringAsync()));
                Assert.True(answers.Count(r => r.StatusCode == HttpStatusCode.OK) == 1, string.Join(" | ", bodies));
                Assert.True(answers.Count(r => r.StatusCode == HttpStatusCode.Conflict) == 1, string.Join(" | ", bodies));
                Assert.Contains(bodies, t => t.Contains("rotation-in-progress", StringComparison.Ordinal));
                foreach (HttpResponseMessage r in answers)
                {
                    r.Dispose();
                }

                IRotationLog runs = appA.Services.GetRequiredService<IConclaveStore>().Rotations;
                Assert.Single(await runs.ListForKeyAsync(key["id"]!.GetValue<string>(), 10), r => r.Kind == RotationKind.Refresh);
                await SignAsync(httpA, name, groupKey, 2);
                await SignAsync(httpB, name, groupKey, 2);
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

    /// <summary>
    /// A run the recovery cannot finish for a reason it does not expect (here a plan of a format this build does not read,
    /// as a newer replica sharing the store would write) is logged and left as it is; the recovery goes on: an interrupted
    /// refresh listed after it is still finished at start, and the loop keeps running. Before, the first such run ended
    /// run recovery and evictions until the next restart, and every later interrupted run kept its key locked.
    /// </summary>
    [Fact]
    public async Task ARunTheRecoveryCannotRead_IsLeft_AndTheRunsListedAfterItAreStillFinished()
    {
        ServerConfig config = Config();
        (WebApplication app, HttpClient http) = await StartAsync(config);
        string tag = Guid.NewGuid().ToString("N")[..8];
        string name = "after-unreadable-" + tag, unreadable = "run-unreadable-" + tag;
        IRotationLog runs = app.Services.GetRequiredService<IConclaveStore>().Rotations;
        // Listed first (oldest), its lease long expired, owned by "another replica": this server takes it at its next pass.
        await runs.BeginAsync(new NewRotationRun(unreadable, "key-of-a-newer-replica-" + tag, RotationKind.Refresh, 1, 2, "server-newer", TimeSpan.FromMilliseconds(1),
            [0, 0, 0, 99, 1, 2, 3]));
        try
        {
            JsonNode key = await PostAsync(http, "/v1/keys", $$"""{"name":"{{name}}","scheme":"frost-secp256k1"}""", HttpStatusCode.Created);
            string keyId = key["id"]!.GetValue<string>();
            byte[] groupKey = Convert.FromHexString(key["publicKey"]!.GetValue<string>());
            (app, http) = await RefreshStoppedDeadAtAsync(app, http, config, name, "prepared");
            runs = app.Services.GetRequiredService<IConclaveStore>().Rotations;
            RotationRun run = (await runs.ListForKeyAsync(keyId, 10)).Single(r => r.Kind == RotationKind.Refresh);
            await WaitForAsync(async () => (await runs.GetAsync(run.RunId))!.IsFinished, "the interrupted refresh was finished at start, after the unreadable run");
            await SignAsync(http, name, groupKey, 2);
            Assert.False((await runs.GetAsync(unreadable))!.IsFinished);
            Assert.Contains(await runs.ListUnfinishedAsync(), r => r.RunId == unreadable);
        }
        finally
        {
            // The other tests of this class share the store: the unreadable run is ended here.
            _ = await runs.TransitionAsync(unreadable, RotationState.Started, RotationState.Aborted, error: "test run");
            await StopAsync(app, http);
        }
    }

    [Fact]
    public async Task KeyVersionTranscript_IsServedForEveryRun_AndVerifiesAgainstTheManifest()
    {
        ServerConfig config = Config();
        (WebApplication app, HttpClient http) = await StartAsync(config);
        try
        {
            string name = "transcript-" + Guid.NewGuid().ToString("N")[..8];
            await PostAsync(http, "/v1/keys", $$"""{"name":"{{name}}","scheme":"frost-secp256k1"}""", HttpStatusCode.Created);
            await PostAsync(http, $"/v1/keys/{name}/refresh", "{}");
            var manifest = Conclave.Node.Config.ClusterManifest.Load(fixture.Nodes.Layout.ManifestPath);
            foreach ((int version, string kind) in new[] { (1, "key-generation"), (2, "refresh") })
            {
                using HttpResponseMessage r = await http.GetAsync(new Uri($"/v1/keys/{name}/versions/{version}/transcript", UriKind.Relative));
                Assert.Equal(HttpStatusCode.OK, r.StatusCode);
                var t = Conclave.Server.Rotation.RotationTranscript.FromJson(await r.Content.ReadAsByteArrayAsync());
                Assert.Equal((kind, version), (t.Kind, t.ToVersion));
                Assert.Equal(new Conclave.Server.Rotation.TranscriptCheck(true, "ok"), Conclave.Server.Rotation.TranscriptVerifier.Verify(t, manifest));
            }

            foreach ((string path, int status) in new[] { ($"/v1/keys/{name}/versions/3/transcript", 404), ($"/v1/keys/{name}/versions/x/transcript", 400), ("/v1/keys/no-such-key/versions/1/transcript", 404) })
            {
                using HttpResponseMessage r = await http.GetAsync(new Uri(path, UriKind.Relative));
                Assert.Equal(status, (int)r.StatusCode);
                Assert.Equal("application/problem+json", r.Content.Headers.ContentType?.MediaType);
            }
        }
        finally
        {
            await StopAsync(app, http);
        }
    }

    private ServerConfig Config() => ServerConfig.Load(fixture.Nodes.Layout.ServerConfigPath);

    /// <summary>
    /// Asks <paramref name="app"/> to refresh key <paramref name="name"/> and stops it dead when the run reaches
    /// <paramref name="boundary"/>, as a crash would (it stops taking work; nothing after the boundary runs, no abort
    /// either); then starts a server on the same configuration and store and returns it.
    /// </summary>
    private static async Task<(WebApplication App, HttpClient Http)> RefreshStoppedDeadAtAsync(WebApplication app, HttpClient http, ServerConfig config, string name, string boundary)
    {
        Func<RotationKind, string, Task> crash = async (_, b) =>
        {
            if (b == boundary)
            {
                await StopDeadAsync(app);
                throw new RotationCrashException(b);
            }
        };
        app.Services.GetRequiredService<FrostCoordinator>().FaultInjection = crash;
        app.Services.GetRequiredService<Conclave.Server.Api.KeyService>().Dkls.FaultInjection = crash;
        try
        {
            using HttpResponseMessage _ = await http.PostAsync(new Uri($"/v1/keys/{name}/refresh", UriKind.Relative), Json("{}"));
        }
        catch (HttpRequestException)
        {
            // the server went away mid-request, as it would
        }

        await StopAsync(app, http);
        return await StartAsync(config);
    }

    /// <summary>An ecdsa-dkls23 signature of a digest, verified with libsecp256k1, made with <paramref name="version"/>.</summary>
    private static async Task SignDigestAsync(HttpClient http, string name, byte[] groupKey, int version)
    {
        byte[] digest = System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes($"{name} v{version}"));
        JsonNode sig = await PostAsync(http, $"/v1/keys/{name}/sign", $$"""{"digest":"{{Convert.ToHexStringLower(digest)}}"}""");
        Assert.Equal(version, sig["keyVersion"]!.GetValue<int>());
        Assert.True(Conclave.Crypto.Secp256k1.EcdsaSecp256k1.Instance.Verify(groupKey, digest, Convert.FromHexString(sig["signature"]!.GetValue<string>())));
    }

    private static async Task SignAsync(HttpClient http, string name, byte[] groupKey, int version)
    {
        JsonNode sig = await PostAsync(http, $"/v1/keys/{name}/sign", """{"message":"0102"}""");
        Assert.Equal(version, sig["keyVersion"]!.GetValue<int>());
        Assert.True(FrostCiphersuite.TryGet((await GetAsync(http, $"/v1/keys/{name}"))["scheme"]!.GetValue<string>(), out FrostCiphersuite? suite));
        Assert.True(suite.Verify(groupKey, [1, 2], Convert.FromHexString(sig["signature"]!.GetValue<string>())));
    }
}
