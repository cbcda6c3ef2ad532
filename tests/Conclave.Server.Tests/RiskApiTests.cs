using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Conclave.Policy.Risk;
using Conclave.Server.Api;
using Conclave.Server.Config;
using Conclave.Server.Hosting;
using Conclave.Server.Risk;
using Conclave.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace Conclave.Server.Tests;

/// <summary>
/// The risk level at server level (issue 16 "Risk levels", "Tests" → Adaptive; docs/POLICY.md "Risk levels"): servers
/// without nodes on a clock the test moves (no sleeps), prices posted through /v1/risk/prices, the level read through
/// GET /v1/risk and through the <see cref="IRiskLevelSource"/> policy enforcement reads.
/// </summary>
public sealed partial class RiskApiTests
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 30, 12, 0, 0, TimeSpan.Zero);

    private static readonly RiskSettings Settings = new()
    {
        CoolDownSeconds = 1800,
        LockdownExit = new LockdownExitSettings { Approvers = ["alice", "bob", "carol"], K = 2 },
        PollMilliseconds = 60_000,
    };

    private sealed class ManualClock(DateTimeOffset now) : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = now;

        public override DateTimeOffset GetUtcNow() => Now;
    }

    private sealed class Server : IAsyncDisposable
    {
        public required WebApplication App { get; init; }

        public required HttpClient Http { get; init; }

        public required string Dir { get; init; }

        public required string Token { get; init; }

        public required string BaseUrl { get; init; }

        public bool DeleteDir { get; init; } = true;

        public RiskService Risk => App.Services.GetRequiredService<RiskService>();

        public async ValueTask DisposeAsync()
        {
            Http.Dispose();
            await App.StopAsync();
            await App.DisposeAsync();
            if (DeleteDir)
            {
                try
                {
                    Directory.Delete(Dir, recursive: true);
                }
                catch (IOException)
                {
                }
            }
        }

        public async Task<(HttpStatusCode Status, JsonNode? Body, string Text)> SendAsync(HttpMethod method, string path, string? json = null, string? token = null)
        {
            using var req = new HttpRequestMessage(method, path) { Content = json is null ? null : new StringContent(json, Encoding.UTF8, "application/json") };
            if (token is not null)
            {
                req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            }

            using HttpResponseMessage r = await Http.SendAsync(req);
            string text = await r.Content.ReadAsStringAsync();
            JsonNode? body = null;
            try
            {
                body = text.Length > 0 ? JsonNode.Parse(text) : null;
            }
            catch (System.Text.Json.JsonException)
            {
            }

            return (r.StatusCode, body, text);
        }

        public async Task<JsonNode> RiskAsync()
        {
            var r = await SendAsync(HttpMethod.Get, "/v1/risk");
            Assert.True(r.Status == HttpStatusCode.OK, r.Text);
            return r.Body!;
        }
    }

    private static string NewDir() => Path.Combine(Path.GetTempPath(), "conclave-risk-" + Guid.NewGuid().ToString("N")[..10]);

    /// <summary>A server on the layout in <paramref name="dir"/> (made if missing), without nodes, on <paramref name="clock"/>.</summary>
    private static async Task<Server> StartAsync(string dir, TimeProvider clock, Action<ServerConfig>? configure = null, bool deleteDir = true)
    {
        var layout = new LocalClusterLayout(dir);
        if (!layout.Exists)
        {
            layout.EnsureCreated(3, 2, LoopbackPorts.Take(), LoopbackPorts.Take());
        }

        ServerConfig config = ServerConfig.Load(layout.ServerConfigPath);
        config.Risk = Settings;
        configure?.Invoke(config);
        WebApplication app = await ServerHost.BuildAsync(config, clock: clock);
        await app.StartAsync();
        string token = (await File.ReadAllTextAsync(app.Services.GetRequiredService<ServerPaths>().AdminTokenFile)).Trim();
        var http = new HttpClient { BaseAddress = new Uri("http://" + config.Listen) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return new Server { App = app, Http = http, Dir = dir, DeleteDir = deleteDir, Token = token, BaseUrl = "http://" + config.Listen };
    }

    /// <summary>Samples of ETH-USD every minute from <paramref name="from"/> to <paramref name="to"/>, alternating by ±0.1 %.</summary>
    private static string Calm(DateTimeOffset from, DateTimeOffset to, decimal price = 2000m)
    {
        var samples = new List<string>();
        for (DateTimeOffset t = from; t <= to; t = t.AddMinutes(1))
        {
            decimal p = (int)(t - T0).TotalMinutes % 2 == 0 ? price : price * 1.001m;
            samples.Add(Sample(t, p));
        }

        return "{\"samples\":[" + string.Join(",", samples) + "]}";
    }

    private static string Sample(DateTimeOffset at, decimal price, string source = "ETH-USD") =>
        $"{{\"source\":\"{source}\",\"price\":{price.ToString(CultureInfo.InvariantCulture)},\"at\":\"{at:yyyy-MM-ddTHH:mm:ssZ}\"}}";

    private static async Task<JsonNode> PostPricesAsync(Server s, string json)
    {
        var r = await s.SendAsync(HttpMethod.Post, "/v1/risk/prices", json);
        Assert.True(r.Status == HttpStatusCode.OK, r.Text);
        return r.Body!;
    }

    private static async Task<List<JsonNode>> AuditAsync(Server s)
    {
        var r = await s.SendAsync(HttpMethod.Get, "/v1/audit?last=1000");
        Assert.True(r.Status == HttpStatusCode.OK, r.Text);
        return [.. r.Body!["entries"]!.AsArray().Select(e => e!)];
    }

    /// <summary>
    /// Issue 16 "Adaptive" at server level: a 6 % move in posted price samples raises normal to elevated on the request
    /// that posts it (nobody sets anything), the change is audited and shown in /metrics and to policy enforcement, and
    /// the level holds until the spike has left the one-hour window and the 30-minute cool-down has passed.
    /// </summary>
    [Fact]
    public async Task A_volatility_spike_in_posted_prices_raises_the_level_by_itself_and_it_falls_only_after_the_cool_down()
    {
        var clock = new ManualClock(T0);
        await using Server s = await StartAsync(NewDir(), clock);
        JsonNode calm = await PostPricesAsync(s, Calm(T0.AddMinutes(-59), T0));
        Assert.Equal("normal", calm["level"]!.GetValue<string>());
        Assert.Equal(60, calm["inputs"]!["prices"]![0]!["samples"]!.GetValue<int>());

        clock.Now = T0.AddMinutes(1);
        JsonNode spiked = await PostPricesAsync(s, "{\"samples\":[" + Sample(T0.AddMinutes(1), 2000m * 0.94m) + "]}");
        Assert.Equal("elevated", spiked["level"]!.GetValue<string>());
        Assert.Equal(T0.AddMinutes(1), spiked["since"]!.GetValue<DateTimeOffset>());
        Assert.Contains(spiked["reasons"]!.AsArray(), r => r!.GetValue<string>().StartsWith("realised volatility of ETH-USD", StringComparison.Ordinal));
        Assert.True(spiked["inputs"]!["prices"]![0]!["volatility"]!.GetValue<double>() >= 0.05);
        Assert.Equal(RiskLevel.Elevated, s.App.Services.GetRequiredService<IRiskLevelSource>().Current.Level);
        Assert.Contains(await AuditAsync(s), e => e["action"]!.GetValue<string>() == "risk.level" && e["actor"]!.GetValue<string>() == "risk"
            && e["result"]!.GetValue<string>().StartsWith("normal -> elevated: realised volatility", StringComparison.Ordinal));

        // Calm prices again; the spike's return is in the window while both its samples are (through minute 59).
        clock.Now = T0.AddMinutes(59);
        await PostPricesAsync(s, Calm(T0.AddMinutes(2), clock.Now, 1880m));
        JsonNode held = await s.RiskAsync();
        Assert.Equal("elevated", held["level"]!.GetValue<string>());
        Assert.Equal(T0.AddMinutes(59), held["lastDemandedAt"]!.GetValue<DateTimeOffset>());
        Assert.Equal(T0.AddMinutes(89), held["canFallAfter"]!.GetValue<DateTimeOffset>());

        // Minute 60: nothing demands elevated any more, but the cool-down has not passed.
        clock.Now = T0.AddMinutes(88);
        await PostPricesAsync(s, Calm(T0.AddMinutes(60), clock.Now, 1880m));
        JsonNode cooling = await s.RiskAsync();
        Assert.Equal("elevated", cooling["level"]!.GetValue<string>());
        Assert.Equal("normal", cooling["inputs"]!["demanded"]!.GetValue<string>());
        Assert.Equal(RiskLevel.Elevated, s.Risk.Current.Level);

        clock.Now = T0.AddMinutes(89);
        await PostPricesAsync(s, "{\"samples\":[" + Sample(clock.Now, 1880m) + "]}");
        JsonNode fallen = await s.RiskAsync();
        Assert.Equal("normal", fallen["level"]!.GetValue<string>());
        Assert.Contains(fallen["reasons"]!.AsArray(), r => r!.GetValue<string>().StartsWith("fell from elevated after a cool-down", StringComparison.Ordinal));
        Assert.Contains(await AuditAsync(s), e => e["action"]!.GetValue<string>() == "risk.level" && e["result"]!.GetValue<string>().StartsWith("elevated -> normal", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_restarted_server_keeps_the_level_and_why()
    {
        var clock = new ManualClock(T0);
        string dir = NewDir();
        try
        {
            await using (Server s = await StartAsync(dir, clock, deleteDir: false))
            {
                var r = await s.SendAsync(HttpMethod.Put, "/v1/risk", """{"level":"stressed","reason":"FOMC at 14:00"}""");
                Assert.True(r.Status == HttpStatusCode.OK, r.Text);
                Assert.Equal("stressed", r.Body!["level"]!.GetValue<string>());
                Assert.Equal("admin", r.Body["inputs"]!["manual"]!["by"]!.GetValue<string>());
            }

            clock.Now = T0.AddMinutes(5);
            await using Server again = await StartAsync(dir, clock, deleteDir: false);
            // In force before any request: the level is read from the store at start.
            Assert.Equal(RiskLevel.Stressed, again.App.Services.GetRequiredService<IRiskLevelSource>().Current.Level);
            JsonNode risk = await again.RiskAsync();
            Assert.Equal("stressed", risk["level"]!.GetValue<string>());
            Assert.Equal(T0, risk["since"]!.GetValue<DateTimeOffset>());
            Assert.Equal("FOMC at 14:00", risk["inputs"]!["manual"]!["reason"]!.GetValue<string>());
            Assert.Contains(risk["reasons"]!.AsArray(), x => x!.GetValue<string>() == "set to stressed by an operator");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>Two servers on one fresh PostgreSQL database and one cluster folder, on <paramref name="clock"/>; both removed afterwards.</summary>
    private static async Task TwoReplicasAsync(ManualClock clock, Action<ServerConfig>? configure, Func<Server, Server, Task> body)
    {
        string admin = OwnServers.AdminConnectionString();
        string db = "conclave_risk_" + Guid.NewGuid().ToString("N")[..12];
        await OwnServers.ExecAsync(admin, $"CREATE DATABASE {db}");
        string dir = NewDir();
        try
        {
            string cs = new NpgsqlConnectionStringBuilder(admin) { Database = db }.ConnectionString;
            await using Server a = await StartAsync(dir, clock, c =>
            {
                c.PostgresConnectionString = cs;
                configure?.Invoke(c);
            }, deleteDir: false);
            await using Server b = await StartAsync(dir, clock, c =>
            {
                c.PostgresConnectionString = cs;
                c.Listen = "127.0.0.1:" + LoopbackPorts.Take().ToString(CultureInfo.InvariantCulture);
                configure?.Invoke(c);
            }, deleteDir: false);
            await body(a, b);
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            await OwnServers.ExecAsync(admin, $"DROP DATABASE IF EXISTS {db} WITH (FORCE)");
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>
    /// Two replicas on one PostgreSQL: a spike posted to one raises the level both enforce; a level set on the other is
    /// seen by the first on its next read of the store (GET /v1/risk, or its poll of risk.pollMilliseconds).
    /// </summary>
    [Fact]
    public Task Two_replicas_on_one_PostgreSQL_share_one_level()
    {
        var clock = new ManualClock(T0);
        return TwoReplicasAsync(clock, null, async (a, b) =>
        {
            await PostPricesAsync(a, Calm(T0.AddMinutes(-59), T0));
            clock.Now = T0.AddMinutes(1);
            await PostPricesAsync(a, "{\"samples\":[" + Sample(T0.AddMinutes(1), 2000m * 0.94m) + "]}");
            JsonNode onB = await b.RiskAsync();
            Assert.Equal("elevated", onB["level"]!.GetValue<string>());
            Assert.Equal(RiskLevel.Elevated, b.Risk.Current.Level);

            var set = await b.SendAsync(HttpMethod.Put, "/v1/risk", """{"level":"lockdown","reason":"venue halted"}""");
            Assert.True(set.Status == HttpStatusCode.OK, set.Text);
            await a.Risk.RefreshAsync(CancellationToken.None); // what a's poll does
            Assert.Equal(RiskLevel.Lockdown, a.Risk.Current.Level);
            Assert.Equal("lockdown", (await a.RiskAsync())["level"]!.GetValue<string>());
            // One change, one audit entry, whichever replica made it.
            Assert.Single(await AuditAsync(a), e => e["action"]!.GetValue<string>() == "risk.level" && e["result"]!.GetValue<string>().StartsWith("elevated -> lockdown", StringComparison.Ordinal));
        });
    }

    /// <summary>
    /// The threat signal is shared: a burst spread over two replicas on one PostgreSQL counts once, whole. Six refused
    /// requests, three to each replica, against a threshold of six raise the level on both; each replica alone saw three.
    /// A replica's events join the shared count at its next refresh (its poll; the test calls it). They leave the count
    /// when they leave the threat window.
    /// </summary>
    [Fact]
    public Task A_threat_burst_spread_over_two_replicas_is_counted_whole()
    {
        var clock = new ManualClock(T0);
        return TwoReplicasAsync(clock, c => c.Risk = new RiskSettings { Threat = new() { ["elevated"] = 6, ["stressed"] = 50 }, PollMilliseconds = 60_000 }, async (a, b) =>
        {
            foreach (Server s in new[] { a, b, a, b, a })
            {
                Assert.Equal(HttpStatusCode.Unauthorized, (await s.SendAsync(HttpMethod.Get, "/v1/keys", token: "cnt_wrong")).Status);
            }

            // Five so far: b's two join the shared count at b's next refresh (its poll); a reads all five, below the threshold.
            await b.Risk.RefreshAsync(CancellationToken.None);
            JsonNode five = await a.RiskAsync();
            Assert.Equal(5, five["inputs"]!["threatEvents"]!.GetValue<int>());
            Assert.Equal("normal", five["level"]!.GetValue<string>());

            Assert.Equal(HttpStatusCode.Unauthorized, (await b.SendAsync(HttpMethod.Get, "/v1/keys", token: "cnt_wrong")).Status);
            await b.Risk.RefreshAsync(CancellationToken.None); // what b's poll does: its events join the shared count
            JsonNode six = await a.RiskAsync();
            Assert.Equal(6, six["inputs"]!["threatEvents"]!.GetValue<int>());
            Assert.Equal("elevated", six["level"]!.GetValue<string>());
            Assert.Contains(six["reasons"]!.AsArray(), r => r!.GetValue<string>() == "6 denied or badly signed requests in 300 s (elevated)");
            Assert.Equal(RiskLevel.Elevated, (await b.Risk.RefreshAsync(CancellationToken.None)).State.Level);

            // Past the window the count is empty again (the level then falls only after its cool-down).
            clock.Now = T0.AddSeconds(301);
            Assert.Equal(0, (await b.RiskAsync())["inputs"]!["threatEvents"]!.GetValue<int>());
        });
    }

    /// <summary>
    /// Leaving lockdown takes k = 2 distinct configured approvers (through the service API: the admin token's principal is
    /// not an approver, so the route refuses it), after the cool-down and once nothing demands lockdown; it goes to stressed.
    /// </summary>
    [Fact]
    public async Task Leaving_lockdown_needs_a_quorum_of_distinct_approvers_and_the_cool_down()
    {
        var clock = new ManualClock(T0);
        await using Server s = await StartAsync(NewDir(), clock);
        Assert.Equal(HttpStatusCode.OK, (await s.SendAsync(HttpMethod.Put, "/v1/risk", """{"level":"lockdown"}""")).Status);

        var refused = await s.SendAsync(HttpMethod.Post, "/v1/risk/lockdown/exit");
        Assert.Equal(HttpStatusCode.Forbidden, refused.Status);
        Assert.Equal(ProblemTypes.Forbidden, refused.Body!["type"]!.GetValue<string>());

        // Still demanded by the manual floor.
        Assert.Equal("still-demanded", (await s.Risk.VoteLockdownExitAsync("alice", CancellationToken.None)).Outcome);
        clock.Now = T0.AddMinutes(1);
        Assert.Equal(HttpStatusCode.OK, (await s.SendAsync(HttpMethod.Put, "/v1/risk", """{"level":"normal","reason":"venue resumed"}""")).Status);
        Assert.Equal("lockdown", (await s.RiskAsync())["level"]!.GetValue<string>()); // lowering the floor does not leave lockdown

        Assert.Equal("already-voted", (await s.Risk.VoteLockdownExitAsync("alice", CancellationToken.None)).Outcome);
        Assert.Equal("recorded", (await s.Risk.VoteLockdownExitAsync("mallory", CancellationToken.None)).Outcome); // not an approver: does not count
        LockdownVote bob = await s.Risk.VoteLockdownExitAsync("bob", CancellationToken.None);
        Assert.Equal("waiting-cool-down", bob.Outcome); // lockdown was last demanded at minute 0
        Assert.Equal(RiskLevel.Lockdown, s.Risk.Current.Level);

        clock.Now = T0.AddMinutes(29);
        Assert.Equal("lockdown", (await s.RiskAsync())["level"]!.GetValue<string>());
        clock.Now = T0.AddMinutes(30);
        JsonNode left = await s.RiskAsync();
        Assert.Equal("stressed", left["level"]!.GetValue<string>());
        Assert.Contains(left["reasons"]!.AsArray(), r => r!.GetValue<string>() == "left lockdown with the approval of 2 approver(s)");
        var again = await s.SendAsync(HttpMethod.Post, "/v1/risk/lockdown/exit");
        Assert.Equal(HttpStatusCode.Forbidden, again.Status);
        Assert.Equal("not-in-lockdown", (await s.Risk.VoteLockdownExitAsync("carol", CancellationToken.None)).Outcome);
        List<JsonNode> audit = await AuditAsync(s);
        Assert.Equal(4, audit.Count(e => e["action"]!.GetValue<string>() == "risk.lockdown-exit"));
        Assert.Contains(audit, e => e["action"]!.GetValue<string>() == "risk.level" && e["result"]!.GetValue<string>().StartsWith("lockdown -> stressed", StringComparison.Ordinal));
    }

    /// <summary>
    /// The same quorum over HTTP with real principals: each approver votes with a request signed under
    /// their own credential (RFC 9421); an operator and an approver not listed in server.json are refused; a second vote
    /// is refused; lockdown is left once two listed approvers voted and the cool-down is over.
    /// </summary>
    [Fact]
    public async Task Leaving_lockdown_over_http_takes_two_listed_approver_principals_each_signing_their_own_vote()
    {
        var clock = new ManualClock(T0);
        await using Server s = await StartAsync(NewDir(), clock);
        var signers = new Dictionary<string, TestSigner>();
        foreach ((string id, string role) in new[] { ("alice", "approver"), ("bob", "approver"), ("mallory", "approver"), ("oscar", "operator") })
        {
            var made = await s.SendAsync(HttpMethod.Post, "/v1/principals", $$$"""{"id":"{{{id}}}","kind":"person","roles":["{{{role}}}"],"scope":{"keys":["*"],"operations":["*"]}}""");
            Assert.True(made.Status == HttpStatusCode.Created, made.Text);
            var signer = TestSigner.Ed25519(id + "-key");
            var cred = await s.SendAsync(HttpMethod.Post, $"/v1/principals/{id}/credentials", $$"""{"keyId":"{{signer.KeyId}}","algorithm":"ed25519","publicKey":"{{signer.PublicKeyBase64}}"}""");
            Assert.True(cred.Status == HttpStatusCode.Created, cred.Text);
            signers[id] = signer;
        }

        using var anonymous = new HttpClient();
        async Task<(HttpStatusCode Status, JsonNode? Body)> Vote(string who)
        {
            using HttpRequestMessage req = signers[who].Request(HttpMethod.Post, s.BaseUrl + "/v1/risk/lockdown/exit");
            using HttpResponseMessage r = await anonymous.SendAsync(req);
            string text = await r.Content.ReadAsStringAsync();
            return (r.StatusCode, text.Length > 0 ? JsonNode.Parse(text) : null);
        }

        try
        {
            Assert.Equal(HttpStatusCode.Conflict, (await Vote("alice")).Status); // not in lockdown: not-in-lockdown
            Assert.Equal(HttpStatusCode.OK, (await s.SendAsync(HttpMethod.Put, "/v1/risk", """{"level":"lockdown","reason":"oracle outage"}""")).Status);
            Assert.Equal(HttpStatusCode.OK, (await s.SendAsync(HttpMethod.Put, "/v1/risk", """{"level":"normal","reason":"oracle back"}""")).Status);

            var oscar = await Vote("oscar");
            Assert.Equal(HttpStatusCode.Forbidden, oscar.Status);
            Assert.Equal(ProblemTypes.Forbidden, oscar.Body!["type"]!.GetValue<string>());
            var mallory = await Vote("mallory");
            Assert.Equal(HttpStatusCode.Forbidden, mallory.Status);
            Assert.Contains("only the approvers listed in server.json", mallory.Body!["detail"]!.GetValue<string>(), StringComparison.Ordinal);

            var alice = await Vote("alice");
            Assert.Equal(HttpStatusCode.OK, alice.Status);
            Assert.Equal("recorded", alice.Body!["outcome"]!.GetValue<string>());
            Assert.Equal(["alice"], alice.Body["risk"]!["lockdownExit"]!["votes"]!.AsArray().Select(v => v!.GetValue<string>()));
            var twice = await Vote("alice");
            Assert.Equal(HttpStatusCode.Conflict, twice.Status);
            Assert.Equal(ProblemTypes.AlreadyVoted, twice.Body!["type"]!.GetValue<string>());
            var bob = await Vote("bob");
            Assert.Equal("waiting-cool-down", bob.Body!["outcome"]!.GetValue<string>());
            Assert.Equal("lockdown", bob.Body["risk"]!["level"]!.GetValue<string>());

            clock.Now = T0.AddMinutes(30);
            Assert.Equal("stressed", (await s.RiskAsync())["level"]!.GetValue<string>());
            var late = await Vote("bob");
            Assert.Equal(HttpStatusCode.Conflict, late.Status);
            Assert.Equal(ProblemTypes.NotInLockdown, late.Body!["type"]!.GetValue<string>());
            List<JsonNode> audit = await AuditAsync(s);
            Assert.Contains(audit, e => e["actor"]!.GetValue<string>() == "alice" && e["action"]!.GetValue<string>() == "risk.lockdown-exit" && e["decision"]!.GetValue<string>() == "allow");
            Assert.Contains(audit, e => e["actor"]!.GetValue<string>() == "bob" && e["action"]!.GetValue<string>() == "risk.lockdown-exit");
        }
        finally
        {
            foreach (TestSigner signer in signers.Values)
            {
                signer.Dispose();
            }
        }
    }

    /// <summary>Requests policy denies are threat events too (issue 16: "a burst of denied or badly signed requests").</summary>
    [Fact]
    public async Task A_burst_of_requests_denied_by_policy_raises_the_level()
    {
        var clock = new ManualClock(T0);
        await using Server s = await StartAsync(NewDir(), clock, c =>
        {
            c.Risk = new RiskSettings { Threat = new() { ["elevated"] = 3, ["stressed"] = 50 }, PollMilliseconds = 60_000 };
            c.AdminSigning = false; // every signature the admin asks for is denied by policy
        });
        var created = await s.SendAsync(HttpMethod.Post, "/v1/keys", """{"name":"treasury","scheme":"ecdsa-secp256k1"}""");
        Assert.True(created.Status == HttpStatusCode.Created || created.Status == HttpStatusCode.OK, created.Text);
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal("normal", (await s.RiskAsync())["level"]!.GetValue<string>());
            var denied = await s.SendAsync(HttpMethod.Post, "/v1/keys/treasury/sign", $$"""{"digest":"{{new string('a', 64)}}"}""");
            Assert.Equal(HttpStatusCode.Forbidden, denied.Status);
            Assert.Contains("policy-denied", denied.Body!["type"]!.GetValue<string>(), StringComparison.Ordinal);
        }

        JsonNode risk = await s.RiskAsync();
        Assert.Equal("elevated", risk["level"]!.GetValue<string>());
        Assert.Equal(3, risk["inputs"]!["threatEvents"]!.GetValue<int>());
    }

    [Fact]
    public async Task A_burst_of_refused_requests_an_evicted_node_and_a_stale_price_raise_the_level()
    {
        var clock = new ManualClock(T0);
        await using Server s = await StartAsync(NewDir(), clock, c => c.Risk = new RiskSettings { Threat = new() { ["elevated"] = 5, ["stressed"] = 50 }, PollMilliseconds = 60_000 });
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await s.SendAsync(HttpMethod.Get, "/v1/keys", token: "cnt_wrong")).Status);
        }

        // Badly signed requests count too: RFC 9421 signatures by a key the server does not know.
        using (Conclave.Policy.HttpSignatures.HttpSigningKey stranger = Conclave.Policy.HttpSignatures.HttpSigningKey.Ed25519FromSeed(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)))
        using (var signed = Conclave.Client.ConclaveClient.ForAgent(new Uri(s.BaseUrl), stranger, "key-nobody-registered"))
        {
            for (int i = 0; i < 2; i++)
            {
                Assert.Equal(401, (await Assert.ThrowsAsync<Conclave.Client.ConclaveApiException>(() => signed.ListKeysAsync())).Status);
            }
        }

        JsonNode threat = await s.RiskAsync();
        Assert.Equal("elevated", threat["level"]!.GetValue<string>());
        Assert.Equal(5, threat["inputs"]!["threatEvents"]!.GetValue<int>());
        Assert.Contains(threat["reasons"]!.AsArray(), r => r!.GetValue<string>() == "5 denied or badly signed requests in 300 s (elevated)");

        // An evicted node (the store's mark, shared by replicas) is a culprit signal.
        await s.App.Services.GetRequiredService<IConclaveStore>().NodeTrust.MarkUntrustedAsync(2, "test", null);
        JsonNode culprit = await s.RiskAsync();
        Assert.Equal(1, culprit["inputs"]!["culpritNodes"]!.GetValue<int>());
        Assert.Contains(culprit["inputs"]!["demandedReasons"]!.AsArray(), r => r!.GetValue<string>() == "1 signer node(s) named as culprit");

        // A price source that stops: stale after 300 s.
        await PostPricesAsync(s, "{\"samples\":[" + Sample(T0, 2000m, "BTC-USD") + "]}");
        clock.Now = T0.AddMinutes(6);
        JsonNode stale = await s.RiskAsync();
        Assert.True(stale["inputs"]!["prices"]![0]!["stale"]!.GetValue<bool>());
        Assert.Contains(stale["inputs"]!["demandedReasons"]!.AsArray(), r => r!.GetValue<string>() == "price of BTC-USD is stale (no sample for more than 300 s)");
    }

    /// <summary>
    /// An operator (a person principal with the role operator) sets the level with an RFC 9421 signed request, as a risk
    /// system would; the change is audited under the operator's id. An agent may not (403).
    /// </summary>
    [Fact]
    public async Task An_operator_sets_the_level_with_a_signed_request_and_it_is_audited_as_the_operator()
    {
        await using Server s = await StartAsync(NewDir(), TimeProvider.System); // the real clock: signatures carry the caller's time
        using var admin = new Conclave.Client.ConclaveClient(new Uri(s.BaseUrl), s.Token);
        async Task<Conclave.Client.ConclaveClient> SignedAs(string id, string role, Conclave.Policy.HttpSignatures.HttpSigningKey key)
        {
            await admin.CreatePrincipalAsync(new Conclave.Client.CreatePrincipalRequest(id, role == "agent" ? "agent" : "person", role == "agent" ? null : [role]));
            Conclave.Client.CredentialInfo c = await admin.AddCredentialAsync(id, new Conclave.Client.AddCredentialRequest("ed25519", Convert.ToBase64String(key.PublicKey.PublicKey.ToArray())));
            return Conclave.Client.ConclaveClient.ForAgent(new Uri(s.BaseUrl), key, c.KeyId);
        }

        using Conclave.Policy.HttpSignatures.HttpSigningKey opsKey = Conclave.Policy.HttpSignatures.HttpSigningKey.Ed25519FromSeed(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        using Conclave.Policy.HttpSignatures.HttpSigningKey agentKey = Conclave.Policy.HttpSignatures.HttpSigningKey.Ed25519FromSeed(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        using Conclave.Client.ConclaveClient ops = await SignedAs("ops-risk", "operator", opsKey);
        using Conclave.Client.ConclaveClient agent = await SignedAs("bot-risk", "agent", agentKey);

        Conclave.Client.RiskStatus set = await ops.SetRiskAsync("stressed", "exchange halted");
        Assert.Equal("stressed", set.Level);
        Assert.Equal("stressed", (await s.RiskAsync())["level"]!.GetValue<string>());
        Assert.Contains(await AuditAsync(s), e => e["action"]!.GetValue<string>() == "risk.set" && e["actor"]!.GetValue<string>().Contains("ops-risk", StringComparison.Ordinal)
            && e["result"]!.GetValue<string>().Contains("exchange halted", StringComparison.Ordinal));
        Assert.Equal(403, (await Assert.ThrowsAsync<Conclave.Client.ConclaveApiException>(() => agent.SetRiskAsync("normal"))).Status);
    }

    /// <summary>Issue 13: a rise to stressed demands a refresh of every key with a rotation schedule (ContinuousRotator.DemandAsync).</summary>
    [Fact]
    public async Task A_rise_to_stressed_demands_the_rotation_of_scheduled_keys_and_shows_in_metrics()
    {
        var clock = new ManualClock(T0);
        await using Server s = await StartAsync(NewDir(), clock);
        IConclaveStore store = s.App.Services.GetRequiredService<IConclaveStore>();
        await store.RotationSchedules.SetAsync("key-scheduled", TimeSpan.FromDays(30), null, T0.AddDays(30));
        Assert.Equal(HttpStatusCode.OK, (await s.SendAsync(HttpMethod.Put, "/v1/risk", """{"level":"elevated"}""")).Status);
        Assert.DoesNotContain(await AuditAsync(s), e => e["action"]!.GetValue<string>() == "rotation.demand");
        Assert.Equal(HttpStatusCode.OK, (await s.SendAsync(HttpMethod.Put, "/v1/risk", """{"level":"stressed"}""")).Status);
        Assert.Contains(await AuditAsync(s), e => e["action"]!.GetValue<string>() == "rotation.demand" && e["keyId"]!.GetValue<string>() == "key-scheduled"
            && e["result"]!.GetValue<string>() == "risk level rose to stressed");

        var metrics = await s.SendAsync(HttpMethod.Get, "/metrics");
        Assert.Equal(HttpStatusCode.OK, metrics.Status);
        Assert.Contains("\nconclave_risk_level 2\n", metrics.Text, StringComparison.Ordinal);
    }

    private static readonly (string Method, string Path, string Json, string Type, string Detail)[] BadRequests =
    [
        ("PUT", "/v1/risk", """{"level":"panic"}""", "invalid-request", "level is required and must be one of normal, elevated, stressed, lockdown"),
        ("PUT", "/v1/risk", """{"reason":"x"}""", "invalid-request", "level is required"),
        ("PUT", "/v1/risk", """{"level":"stressed","lvl":"x"}""", "invalid-request", "unknown field 'lvl'"),
        ("PUT", "/v1/risk", """{"level":3}""", "malformed-json", "field 'level' must be one of"),
        ("POST", "/v1/risk/prices", """{"samples":[]}""", "invalid-request", "samples must hold 1 to 1000 price samples"),
        ("POST", "/v1/risk/prices", """{"samples":[{"source":"ETH-USD","price":-1}]}""", "invalid-request", "samples[0].price is required and must be positive"),
        ("POST", "/v1/risk/prices", """{"samples":[{"source":"ETH-USD","price":"2000"}]}""", "malformed-json", "field 'samples[0].price' must be a positive number"),
        ("POST", "/v1/risk/prices", """{"samples":[{"source":"ETH USD; drop","price":1}]}""", "invalid-request", "samples[0].source must be 1 to 64 characters"),
        ("POST", "/v1/risk/prices", """{"samples":[{"source":"ETH-USD","price":1,"at":"2027-01-01T00:00:00Z"}]}""", "invalid-request", "samples[0].at is in the future"),
        ("POST", "/v1/risk/prices", """{"samples":[{"source":"ETH-USD","price":1,"at":"yesterday"}]}""", "malformed-json", "field 'samples[0].at' must be an RFC 3339 time"),
    ];

    [Fact]
    public async Task Bad_risk_requests_get_a_typed_problem_naming_the_field_and_change_nothing()
    {
        await using Server s = await StartAsync(NewDir(), new ManualClock(T0));
        foreach ((string method, string path, string json, string type, string detail) in BadRequests)
        {
            var r = await s.SendAsync(new HttpMethod(method), path, json);
            Assert.True(r.Status == HttpStatusCode.BadRequest, $"{json}: {r.Text}");
            Assert.Equal(ProblemTypes.Base + type, r.Body!["type"]!.GetValue<string>());
            Assert.True(r.Body["detail"]!.GetValue<string>().Contains(detail, StringComparison.Ordinal), $"{json}: {r.Text}");
            Assert.DoesNotContain("panic", r.Text, StringComparison.Ordinal);
            Assert.DoesNotContain("drop", r.Text, StringComparison.Ordinal);
        }

        JsonNode risk = await s.RiskAsync();
        Assert.Equal("normal", risk["level"]!.GetValue<string>());
        Assert.Empty(risk["inputs"]!["prices"]!.AsArray());
    }

    private static readonly (string Risk, string Message)[] BadSettings =
    [
        ("""{"volatility":{"elevated":0.1,"stressed":0.05}}""", "risk.volatility.stressed must be higher than risk.volatility.elevated"),
        ("""{"volatility":{"severe":0.1}}""", "risk.volatility: levels are elevated, stressed and lockdown"),
        ("""{"threat":{"elevated":2.5}}""", "risk.threat: counts must be whole numbers"),
        ("""{"coolDownSeconds":-1}""", "risk.coolDownSeconds must be between 0 and 604800"),
        ("""{"stalePriceLevel":"normal"}""", "risk.stalePriceLevel must be elevated, stressed or lockdown"),
        ("""{"lockdownExit":{"approvers":["alice"],"k":2}}""", "risk.lockdownExit.k must be from 1 to the number of approvers (1)"),
        ("""{"lockdownExit":{"approvers":["al ice"]}}""", "risk.lockdownExit.approvers: each must be a principal id"),
        ("""{"rotateAtLevel":"sometimes"}""", "risk.rotateAtLevel must be elevated, stressed or lockdown"),
        ("""{"pollMilliseconds":1}""", "risk.pollMilliseconds must be between 50 and 60000"),
    ];

    [Fact]
    public void Risk_settings_in_server_json_are_validated_with_the_field_named()
    {
        string dir = NewDir();
        try
        {
            var layout = new LocalClusterLayout(dir);
            layout.EnsureCreated(3, 2, LoopbackPorts.Take(), LoopbackPorts.Take());
            string original = File.ReadAllText(layout.ServerConfigPath);
            foreach ((string risk, string message) in BadSettings)
            {
                JsonNode json = JsonNode.Parse(original)!;
                json["risk"] = JsonNode.Parse(risk);
                File.WriteAllText(layout.ServerConfigPath, json.ToJsonString());
                var e = Assert.Throws<Conclave.Node.Config.ConfigException>(() => ServerConfig.Load(layout.ServerConfigPath));
                Assert.True(e.Message.Contains(message, StringComparison.Ordinal), $"{risk}: {e.Message}");
            }

            // A valid section loads, with its values.
            JsonNode good = JsonNode.Parse(original)!;
            good["risk"] = JsonNode.Parse("""{"coolDownSeconds":600,"volatility":{"elevated":0.02,"lockdown":0.3},"lockdownExit":{"approvers":["alice","bob"],"k":2}}""");
            File.WriteAllText(layout.ServerConfigPath, good.ToJsonString());
            RiskConfig config = ServerConfig.Load(layout.ServerConfigPath).Risk!.ToConfig();
            Assert.Equal(TimeSpan.FromMinutes(10), config.CoolDown);
            Assert.Equal([new LevelThreshold(RiskLevel.Elevated, 0.02), new LevelThreshold(RiskLevel.Lockdown, 0.3)], config.Volatility);
            Assert.Equal(2, config.LockdownExit.K);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task Cli_risk_show_set_and_exit_lockdown()
    {
        await using Server s = await StartAsync(NewDir(), new ManualClock(T0));
        (int exit, string output, string error) = Cli(s, "risk", "show");
        Assert.True(exit == 0, error);
        Assert.Matches(@"(?m)^level +normal$", output);

        (exit, output, error) = Cli(s, "risk", "set", "stressed", "--reason", "FOMC at 14:00");
        Assert.True(exit == 0, error);
        Assert.Matches(@"(?m)^level +stressed$", output);
        Assert.Matches(@"(?m)^manual level +stressed \(by admin: FOMC at 14:00\)$", output);
        Assert.Equal(RiskLevel.Stressed, s.Risk.Current.Level);

        (exit, output, error) = Cli(s, "risk", "show", "--json");
        Assert.True(exit == 0, error);
        Assert.Equal("stressed", JsonNode.Parse(output)!["level"]!.GetValue<string>());

        (exit, _, error) = Cli(s, "risk", "set", "panic");
        Assert.Equal(2, exit);
        Assert.Equal("conclave: error: the level must be one of normal, elevated, stressed, lockdown", error.Trim());

        // The admin token's principal is not an approver: refused by the server, one line, exit 2.
        (exit, _, error) = Cli(s, "risk", "exit-lockdown");
        Assert.Equal(2, exit);
        string line = Assert.Single(error.Trim().Split('\n'));
        Assert.Contains("principal 'admin' (admin) may not do this: this route needs the role approver", line, StringComparison.Ordinal);
        Assert.EndsWith("(https://conclave.dev/problems/forbidden)", line, StringComparison.Ordinal);
    }

    /// <summary>
    /// <c>conclave risk exit-lockdown</c> as two of the approvers server.json lists, each signing their vote with their own
    /// credential (--credential): the first is recorded, the second waits for the cool-down, after which lockdown is left for
    /// stressed; an approver principal not listed in server.json is refused in one line.
    /// </summary>
    [Fact]
    public async Task Cli_exit_lockdown_signed_by_listed_approvers()
    {
        var clock = new ManualClock(T0);
        await using Server s = await StartAsync(NewDir(), clock);
        string dir = Path.Combine(Path.GetTempPath(), "conclave-risk-cli-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        var made = new List<PrincipalCredentialFiles.Made>();
        try
        {
            foreach (string id in new[] { "alice", "bob", "mallory" })
            {
                made.Add(await PrincipalCredentialFiles.PersonAsync(s.Http, dir, id, algorithm: id == "bob" ? "ecdsa-p256-sha256" : "ed25519"));
            }

            Assert.Equal(HttpStatusCode.OK, (await s.SendAsync(HttpMethod.Put, "/v1/risk", """{"level":"lockdown","reason":"oracle outage"}""")).Status);
            Assert.Equal(HttpStatusCode.OK, (await s.SendAsync(HttpMethod.Put, "/v1/risk", """{"level":"normal","reason":"oracle back"}""")).Status);

            (int exit, string output, string error) = Cli(s, "risk", "exit-lockdown", "--credential", made[2].Path);
            Assert.Equal(2, exit);
            Assert.Contains("only the approvers listed in server.json", Assert.Single(error.Trim().Split('\n')), StringComparison.Ordinal);

            (exit, output, error) = Cli(s, "risk", "exit-lockdown", "--credential", made[0].Path);
            Assert.True(exit == 0, error);
            Assert.Matches(@"(?m)^vote: recorded$", output);
            Assert.Matches(@"(?m)^lockdown exit +1 of 2 vote\(s\): alice$", output);
            (exit, output, error) = Cli(s, "risk", "exit-lockdown", "--credential", made[1].Path, "--json");
            Assert.True(exit == 0, error);
            JsonNode vote = JsonNode.Parse(output)!;
            Assert.Equal("waiting-cool-down", vote["outcome"]!.GetValue<string>());
            Assert.Equal(["alice", "bob"], vote["risk"]!["lockdownExit"]!["votes"]!.AsArray().Select(v => v!.GetValue<string>()).Order());

            clock.Now = T0.AddMinutes(30);
            (exit, output, error) = Cli(s, "risk", "show", "--credential", made[0].Path);
            Assert.True(exit == 0, error);
            Assert.Matches(@"(?m)^level +stressed$", output);
            Assert.Contains("left lockdown with the approval of 2 approver(s)", output, StringComparison.Ordinal);
        }
        finally
        {
            foreach (PrincipalCredentialFiles.Made m in made)
            {
                m.Key.Dispose();
            }

            Directory.Delete(dir, recursive: true);
        }
    }

    private static (int Exit, string Out, string Err) Cli(Server s, params string[] args)
    {
        var psi = new System.Diagnostics.ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(RepoPaths.CliDll);
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["CONCLAVE_TOKEN"] = s.Token;
        psi.Environment["CONCLAVE_SERVER"] = s.BaseUrl;
        using var p = System.Diagnostics.Process.Start(psi)!;
        Task<string> stdout = p.StandardOutput.ReadToEndAsync();
        Task<string> stderr = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(120_000), "the CLI did not exit");
        return (p.ExitCode, stdout.Result, stderr.Result);
    }
}
