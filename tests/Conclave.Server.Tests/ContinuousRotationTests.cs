using System.Net;
using System.Text.Json.Nodes;
using Conclave.Server.Api;
using Conclave.Server.Config;
using Conclave.Server.Rotation;
using Conclave.Storage;
using Conclave.Storage.Audit;
using Conclave.Storage.Keys;
using Conclave.Storage.Rotation;
using Conclave.Threshold.Frost;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

using static Conclave.Server.Tests.OwnServers;

namespace Conclave.Server.Tests;

/// <summary>
/// Continuous rotation (docs/ROTATION.md "Continuous rotation") on a server with real node processes: a key on a short
/// interval is refreshed again and again by the background rotator; a key scheduled after N signatures is refreshed
/// once it made them; with an injected clock a pass refreshes exactly the keys that are due (interval, on demand),
/// records a failure (a node down) and retries; every outcome is audited and shown in /metrics. No timing asserts:
/// the background cases wait for the version to move, with a deadline.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class ContinuousRotationTests(VariantNodes fixture) : IClassFixture<VariantNodes>
{
    [Fact]
    public async Task ScheduledKeysRotate_ByInterval_BySignatures_OnDemand_AndFailuresAreRetried()
    {
        ServerConfig config = ServerConfig.Load(fixture.Nodes.Layout.ServerConfigPath);
        (WebApplication app, HttpClient http) = await StartAsync(config);
        string tag = Guid.NewGuid().ToString("N")[..8];
        try
        {
            // Bad requests.
            await PostAsync(http, "/v1/keys", $$"""{"name":"single-{{tag}}","scheme":"ed25519"}""", HttpStatusCode.Created);
            await PutProblemAsync(http, $"/v1/keys/single-{tag}/rotation-schedule", """{"intervalSeconds":60}""", 400, "not-threshold-key");
            string interval = "every-" + tag, counted = "counted-" + tag, clocked = "clocked-" + tag;
            byte[] intervalKey = await CreateAsync(http, interval);
            await PutProblemAsync(http, $"/v1/keys/{interval}/rotation-schedule", "{}", 400, "invalid-request");
            await PutProblemAsync(http, $"/v1/keys/{interval}/rotation-schedule", """{"intervalSeconds":0}""", 400, "invalid-request");
            await PutProblemAsync(http, $"/v1/keys/{interval}/rotation-schedule", """{"afterSignatures":0}""", 400, "invalid-request");
            await PutProblemAsync(http, "/v1/keys/no-such-key/rotation-schedule", """{"intervalSeconds":60}""", 404, "unknown-key");
            using (HttpResponseMessage none = await http.GetAsync(new Uri($"/v1/keys/{interval}/rotation-schedule", UriKind.Relative)))
            {
                Assert.Equal(HttpStatusCode.NotFound, none.StatusCode);
            }

            // Every second: the background rotator refreshes it again and again; it keeps signing under its public key.
            JsonNode set = await PutAsync(http, $"/v1/keys/{interval}/rotation-schedule", """{"intervalSeconds":1}""");
            Assert.Equal(1, set["intervalSeconds"]!.GetValue<long>());
            await WaitForAsync(async () => (await GetAsync(http, $"/v1/keys/{interval}"))["version"]!.GetValue<int>() >= 3, "the interval key was refreshed twice");
            await SignAsync(http, interval, intervalKey);
            JsonNode shown = await GetAsync(http, $"/v1/keys/{interval}/rotation-schedule");
            Assert.NotNull(shown["lastRotation"]);
            Assert.Equal(0, shown["failures"]!.GetValue<long>());
            string metrics = await (await http.GetAsync(new Uri("/metrics", UriKind.Relative))).Content.ReadAsStringAsync();
            Assert.Matches($"conclave_rotation_last_timestamp_seconds{{key=\"{interval}\"}} [1-9][0-9]+", metrics);
            Assert.Matches($"conclave_rotation_next_due_timestamp_seconds{{key=\"{interval}\"}} [1-9][0-9]+", metrics);
            Assert.Contains($"conclave_rotation_failures_total{{key=\"{interval}\"}} 0", metrics, StringComparison.Ordinal);
            // The CLI shows and removes it; a bad request is exit 2 with one line.
            string token = http.DefaultRequestHeaders.Authorization!.Parameter!, server = "http://" + config.Listen;
            (int exit, string stdout, string stderr) = Cli(token, server, "rotation", "schedule", interval);
            Assert.True(exit == 0, stderr);
            Assert.Contains("every             1 s", stdout, StringComparison.Ordinal);
            (exit, stdout, _) = Cli(token, server, "rotation", "schedule", interval, "--off");
            Assert.Equal((0, $"{interval}: no schedule"), (exit, stdout.Trim()));
            (exit, _, stderr) = Cli(token, server, "rotation", "schedule", interval, "--every", "0");
            Assert.Equal(2, exit);
            Assert.StartsWith("conclave: error: server: intervalSeconds must be", stderr, StringComparison.Ordinal);
            using (HttpResponseMessage removed = await http.DeleteAsync(new Uri($"/v1/keys/{interval}/rotation-schedule", UriKind.Relative)))
            {
                Assert.Equal(HttpStatusCode.NotFound, removed.StatusCode); // already removed by the CLI
            }

            // After three signatures.
            byte[] countedKey = await CreateAsync(http, counted);
            await PutAsync(http, $"/v1/keys/{counted}/rotation-schedule", """{"afterSignatures":3}""");
            for (int i = 0; i < 3; i++)
            {
                await SignAsync(http, counted, countedKey);
            }

            await WaitForAsync(async () => (await GetAsync(http, $"/v1/keys/{counted}"))["version"]!.GetValue<int>() == 2, "the counted key was refreshed after 3 signatures");
            await SignAsync(http, counted, countedKey);

            // An injected clock: a pass rotates exactly what is due.
            KeyService keys = app.Services.GetRequiredService<KeyService>();
            IConclaveStore store = app.Services.GetRequiredService<IConclaveStore>();
            var clock = new ManualClock(DateTimeOffset.FromUnixTimeMilliseconds(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds())); // the store keeps milliseconds
            var rotator = new ContinuousRotator(keys, clock);
            byte[] clockedKey = await CreateAsync(http, clocked);
            KeyRecord c = (await store.Keys.GetByNameAsync(clocked))!;
            await rotator.SetAsync(c, TimeSpan.FromHours(1), null, CancellationToken.None);
            await rotator.PassAsync(CancellationToken.None);
            Assert.Equal(1, (await store.Keys.GetAsync(c.Id))!.Version); // not due yet
            clock.Now += TimeSpan.FromHours(2);
            await rotator.PassAsync(CancellationToken.None);
            Assert.Equal(2, (await store.Keys.GetAsync(c.Id))!.Version);
            RotationSchedule after = (await store.RotationSchedules.GetAsync(c.Id))!;
            Assert.Equal(clock.Now, after.LastRotation);
            Assert.InRange(after.NextDue!.Value, clock.Now + TimeSpan.FromHours(1), clock.Now + TimeSpan.FromHours(1.1)); // interval plus up to 10 % jitter

            // On demand (risk escalation): due at once.
            Assert.True(await rotator.DemandAsync(c.Id, "risk escalation: test", CancellationToken.None));
            await rotator.PassAsync(CancellationToken.None);
            Assert.Equal(3, (await store.Keys.GetAsync(c.Id))!.Version);

            // A node down: the scheduled refresh fails, is counted and audited, and is retried once the node is back.
            clock.Now += TimeSpan.FromHours(2);
            fixture.Nodes.KillNode(3);
            try
            {
                await rotator.PassAsync(CancellationToken.None);
                RotationSchedule failed = (await store.RotationSchedules.GetAsync(c.Id))!;
                Assert.Equal((1L, 1L), (failed.Failures, failed.TotalFailures));
                Assert.False(string.IsNullOrEmpty(failed.LastError));
                Assert.Equal(3, (await store.Keys.GetAsync(c.Id))!.Version);
            }
            finally
            {
                fixture.Nodes.StartNode(3);
                fixture.Nodes.WaitForAll(TimeSpan.FromSeconds(60));
            }

            // Time passes on the injected clock at every pass, past each backoff: a retry that fails again (the restarted
            // node still resting in the coordinator's health for a few real seconds) is retried at the next pass, as it
            // would be by the running rotator. (With the clock frozen, a second failure pushed the next try past the
            // frozen now for good: a full run failed so.)
            await WaitForAsync(async () =>
            {
                clock.Now += TimeSpan.FromMinutes(2);
                await rotator.PassAsync(CancellationToken.None);
                return (await store.Keys.GetAsync(c.Id))!.Version == 4;
            }, "the failed scheduled refresh was retried");
            RotationSchedule recovered = (await store.RotationSchedules.GetAsync(c.Id))!;
            Assert.Equal((0L, (string?)null), (recovered.Failures, recovered.LastError));
            Assert.True(recovered.TotalFailures >= 1);
            await SignAsync(http, clocked, clockedKey);
            metrics = await (await http.GetAsync(new Uri("/metrics", UriKind.Relative))).Content.ReadAsStringAsync();
            Assert.Contains($"conclave_rotation_failures_total{{key=\"{clocked}\"}} {recovered.TotalFailures}", metrics, StringComparison.Ordinal);

            // Audited: each scheduled refresh with its reason, the failure, the demand.
            IReadOnlyList<AuditEntry> audit = await store.Audit.ReadAsync(1, 1000);
            Assert.Contains(audit, e => e.Action == "rotation.scheduled" && e.Decision == "allow" && e.Result.Contains("interval elapsed", StringComparison.Ordinal));
            Assert.Contains(audit, e => e.Action == "rotation.scheduled" && e.Decision == "allow" && e.Result.Contains("3 signatures", StringComparison.Ordinal));
            Assert.Contains(audit, e => e.Action == "rotation.scheduled" && e.KeyId == c.Id && e.Result.Contains("on demand: risk escalation: test", StringComparison.Ordinal));
            Assert.Contains(audit, e => e.Action == "rotation.scheduled" && e.KeyId == c.Id && e.Decision == "deny");
            Assert.Contains(audit, e => e.Action == "rotation.demand" && e.KeyId == c.Id);
        }
        finally
        {
            await StopAsync(app, http);
        }
    }

    /// <summary>
    /// POST /v1/keys/{name}/rotate: a scheduled key's refresh is due at once and the server's background rotator runs it
    /// (audited with the reason); a key without a schedule, a single key, an unknown key and a bad reason are 4xx problems.
    /// </summary>
    [Fact]
    public async Task RotateRoute_DemandsARefreshOfAScheduledKey_AndBadRequestsAre4xx()
    {
        ServerConfig config = ServerConfig.Load(fixture.Nodes.Layout.ServerConfigPath);
        (WebApplication app, HttpClient http) = await StartAsync(config);
        string tag = Guid.NewGuid().ToString("N")[..8];
        try
        {
            string demanded = "demanded-" + tag;
            byte[] groupKey = await CreateAsync(http, demanded);
            await PostProblemAsync(http, $"/v1/keys/{demanded}/rotate", """{"reason":"volatility spike"}""", 404, "not-found"); // no schedule yet
            await PostAsync(http, "/v1/keys", $$"""{"name":"single-{{tag}}","scheme":"ed25519"}""", HttpStatusCode.Created);
            await PostProblemAsync(http, $"/v1/keys/single-{tag}/rotate", """{"reason":"volatility spike"}""", 400, "not-threshold-key");
            await PostProblemAsync(http, "/v1/keys/no-such-key/rotate", """{"reason":"volatility spike"}""", 404, "unknown-key");
            await PutAsync(http, $"/v1/keys/{demanded}/rotation-schedule", """{"intervalSeconds":3600}""");
            await PostProblemAsync(http, $"/v1/keys/{demanded}/rotate", "{}", 400, "invalid-request");
            await PostProblemAsync(http, $"/v1/keys/{demanded}/rotate", """{"reason":"   "}""", 400, "invalid-request");
            await PostProblemAsync(http, $"/v1/keys/{demanded}/rotate", $$"""{"reason":"{{new string('x', 201)}}"}""", 400, "invalid-request");
            await PostProblemAsync(http, $"/v1/keys/{demanded}/rotate", """{"reason":"a","extra":1}""", 400, "invalid-request");
            Assert.Equal(1, (await GetAsync(http, $"/v1/keys/{demanded}"))["version"]!.GetValue<int>());

            JsonNode accepted = await PostAsync(http, $"/v1/keys/{demanded}/rotate", """{"reason":"volatility spike"}""", HttpStatusCode.Accepted);
            Assert.Equal("volatility spike", accepted["demandReason"]!.GetValue<string>());
            await WaitForAsync(async () => (await GetAsync(http, $"/v1/keys/{demanded}"))["version"]!.GetValue<int>() == 2, "the demanded refresh ran");
            await SignAsync(http, demanded, groupKey);
            IConclaveStore store = app.Services.GetRequiredService<IConclaveStore>();
            KeyRecord k = (await store.Keys.GetByNameAsync(demanded))!;
            IReadOnlyList<AuditEntry> audit = await store.Audit.ReadAsync(1, 100_000);
            Assert.Contains(audit, e => e.Action == "rotation.demand" && e.KeyId == k.Id && e.Result.Contains("volatility spike", StringComparison.Ordinal));
            Assert.Contains(audit, e => e.Action == "rotation.scheduled" && e.KeyId == k.Id && e.Decision == "allow" && e.Result.Contains("on demand: volatility spike", StringComparison.Ordinal));
        }
        finally
        {
            await StopAsync(app, http);
        }
    }

    /// <summary>
    /// The continuous rotator refreshes ecdsa-dkls23 keys too (docs/ROTATION.md "Continuous rotation"): with an injected
    /// clock a pass leaves a fresh DKLs23 key alone, refreshes it once its interval elapsed, and again after its two
    /// signatures (counted by the DKLs23 coordinator); each refresh keeps the public key and Ethereum address, and every
    /// signature, before and after, verifies with libsecp256k1. On-demand rotation accepts the key. Audited with reasons.
    /// </summary>
    [Fact]
    public async Task ScheduledDklsKey_RotatesByInterval_AndBySignatures_AndKeepsItsAddress()
    {
        ServerConfig config = ServerConfig.Load(fixture.Nodes.Layout.ServerConfigPath);
        (WebApplication app, HttpClient http) = await StartAsync(config);
        string name = "dkls-sched-" + Guid.NewGuid().ToString("N")[..8];
        try
        {
            JsonNode created = await PostAsync(http, "/v1/keys", $$"""{"name":"{{name}}","scheme":"ecdsa-dkls23","threshold":2,"participants":3}""", HttpStatusCode.Created);
            byte[] pk = Convert.FromHexString(created["publicKey"]!.GetValue<string>());
            string address = created["addresses"]!["ethereum"]!.GetValue<string>();
            KeyService keys = app.Services.GetRequiredService<KeyService>();
            IConclaveStore store = app.Services.GetRequiredService<IConclaveStore>();
            var clock = new ManualClock(DateTimeOffset.FromUnixTimeMilliseconds(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()));
            var rotator = new ContinuousRotator(keys, clock);
            KeyRecord k = (await store.Keys.GetByNameAsync(name))!;
            await rotator.SetAsync(k, TimeSpan.FromHours(1), 2, CancellationToken.None);
            await rotator.PassAsync(CancellationToken.None);
            Assert.Equal(1, (await store.Keys.GetAsync(k.Id))!.Version); // not due yet

            clock.Now += TimeSpan.FromHours(2);
            await rotator.PassAsync(CancellationToken.None);
            Assert.Equal(2, (await store.Keys.GetAsync(k.Id))!.Version);

            // Two signatures: due (the server's own background rotator may run it first; either is this schedule's refresh).
            await SignDklsAsync(http, name, pk, 1);
            await SignDklsAsync(http, name, pk, 2);
            await WaitForAsync(async () =>
            {
                await rotator.PassAsync(CancellationToken.None);
                return (await store.Keys.GetAsync(k.Id))!.Version == 3;
            }, "the DKLs23 key was refreshed after 2 signatures");
            JsonNode after = await GetAsync(http, $"/v1/keys/{name}");
            Assert.Equal(Convert.ToHexStringLower(pk), after["publicKey"]!.GetValue<string>());
            Assert.Equal(address, after["addresses"]!["ethereum"]!.GetValue<string>());
            await SignDklsAsync(http, name, pk, 3);

            // On demand: accepted for the key (it has a schedule) and run by the server's background rotator.
            JsonNode accepted = await PostAsync(http, $"/v1/keys/{name}/rotate", """{"reason":"dkls demand"}""", HttpStatusCode.Accepted);
            Assert.Equal("dkls demand", accepted["demandReason"]!.GetValue<string>());
            await WaitForAsync(async () => (await store.Keys.GetAsync(k.Id))!.Version == 4, "the demanded DKLs23 refresh ran");
            await SignDklsAsync(http, name, pk, 4);

            IReadOnlyList<AuditEntry> audit = await store.Audit.ReadAsync(1, 100_000);
            Assert.Contains(audit, e => e.Action == "rotation.scheduled" && e.KeyId == k.Id && e.Decision == "allow" && e.Result.Contains("interval elapsed", StringComparison.Ordinal));
            Assert.Contains(audit, e => e.Action == "rotation.scheduled" && e.KeyId == k.Id && e.Decision == "allow" && e.Result.Contains("2 signatures", StringComparison.Ordinal));
            Assert.Contains(audit, e => e.Action == "rotation.scheduled" && e.KeyId == k.Id && e.Decision == "allow" && e.Result.Contains("on demand: dkls demand", StringComparison.Ordinal));
        }
        finally
        {
            await StopAsync(app, http);
        }
    }

    private static async Task SignDklsAsync(HttpClient http, string name, byte[] publicKey, int i)
    {
        byte[] digest = System.Security.Cryptography.SHA256.HashData([(byte)i, 0x5c]);
        JsonNode sig = await PostAsync(http, $"/v1/keys/{name}/sign", $$"""{"digest":"{{Convert.ToHexStringLower(digest)}}"}""");
        Assert.True(Conclave.Crypto.Secp256k1.EcdsaSecp256k1.Instance.Verify(publicKey, digest, Convert.FromHexString(sig["signature"]!.GetValue<string>())));
    }

    private static async Task PostProblemAsync(HttpClient http, string path, string json, int status, string type)
    {
        using HttpResponseMessage r = await http.PostAsync(new Uri(path, UriKind.Relative), Json(json));
        string text = await r.Content.ReadAsStringAsync();
        Assert.True((int)r.StatusCode == status, $"{path}: {(int)r.StatusCode} {text}");
        Assert.Equal("https://conclave.dev/problems/" + type, JsonNode.Parse(text)!["type"]!.GetValue<string>());
    }

    private static (int Exit, string Out, string Err) Cli(string token, string server, params string[] args) => OwnServers.CliWithToken(token, server, args);

    private sealed class ManualClock(DateTimeOffset start) : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = start;

        public override DateTimeOffset GetUtcNow() => Now;
    }

    private static async Task<byte[]> CreateAsync(HttpClient http, string name)
    {
        JsonNode k = await PostAsync(http, "/v1/keys", $$"""{"name":"{{name}}","scheme":"frost-ed25519"}""", HttpStatusCode.Created);
        return Convert.FromHexString(k["publicKey"]!.GetValue<string>());
    }

    private static async Task<JsonNode> PutAsync(HttpClient http, string path, string json)
    {
        using HttpResponseMessage r = await http.PutAsync(new Uri(path, UriKind.Relative), Json(json));
        string text = await r.Content.ReadAsStringAsync();
        Assert.True(r.IsSuccessStatusCode, $"{path}: {(int)r.StatusCode} {text}");
        return JsonNode.Parse(text)!;
    }

    private static async Task PutProblemAsync(HttpClient http, string path, string json, int status, string type)
    {
        using HttpResponseMessage r = await http.PutAsync(new Uri(path, UriKind.Relative), Json(json));
        string text = await r.Content.ReadAsStringAsync();
        Assert.True((int)r.StatusCode == status, $"{path}: {(int)r.StatusCode} {text}");
        Assert.Equal("https://conclave.dev/problems/" + type, JsonNode.Parse(text)!["type"]!.GetValue<string>());
    }

    private static async Task SignAsync(HttpClient http, string name, byte[] groupKey)
    {
        JsonNode sig = await PostAsync(http, $"/v1/keys/{name}/sign", """{"message":"0102"}""");
        Assert.True(FrostCiphersuite.Ed25519Sha512.Verify(groupKey, [1, 2], Convert.FromHexString(sig["signature"]!.GetValue<string>())));
    }
}
