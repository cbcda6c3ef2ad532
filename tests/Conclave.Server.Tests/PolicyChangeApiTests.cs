using System.Net;
using System.Text.Json.Nodes;
using Conclave.Server.Api;
using Conclave.Server.Policy;
using Conclave.Storage;
using Microsoft.Extensions.DependencyInjection;

using static Conclave.Server.Tests.PolicyEnforcementTests;
using Conclave.Server.Hosting;

namespace Conclave.Server.Tests;

/// <summary>
/// Changing policies through the API (docs/POLICY.md "Changing policies"): <c>PUT /v1/policies/{id}</c> holds the change
/// (202 and a request id) with its classification; a tightening takes effect on one approver's vote, a loosening needs
/// the quorum and then the time lock (a clock the test moves, no sleeps); a reject is final, also during the time
/// lock; a change expires unapproved; everything is audited. The approvers are principals handed to
/// <see cref="ApprovalService"/>, as in PolicyApprovalTests; the initiator is the admin token.
/// </summary>
public sealed class PolicyChangeApiTests
{
    // The starter policy with messages denied: a tightening of the starter (a deny rule added).
    private const string NoMessages = """
        {"id":"starter","version":2,"rules":[
          {"id":"admin-signs","effect":"allow","match":{"principals":["admin"],"operations":["message","typed-data","transfer","liquidate","settle","exercise","margin-call","release-collateral","hedge"]}},
          {"id":"admin-raw-digests","effect":"allow","match":{"principals":["admin"],"operations":["raw-digest"],"labels":["scheme:ecdsa-secp256k1","scheme:ecdsa-dkls23","scheme:schnorr-bip340","scheme:hsm-ecdsa-secp256k1"]}},
          {"id":"no-messages","effect":"deny","match":{"operations":["message"]}}]}
        """;

    // Version 3 without the deny rule: a loosening of version 2.
    private static string MessagesAgain(int version)
    {
        JsonObject d = JsonNode.Parse(NoMessages)!.AsObject();
        d["version"] = version;
        JsonArray rules = d["rules"]!.AsArray();
        rules.Remove(rules.Single(r => r!["id"]!.GetValue<string>() == "no-messages"));
        return d.ToJsonString();
    }

    private static async Task<JsonObject> ProposeAsync(PolicyServer s, string json)
    {
        var r = await SendAsync(s.Http, HttpMethod.Put, "/v1/policies/starter", json);
        Assert.True(r.Status == HttpStatusCode.Accepted, r.Text);
        return r.Body!.AsObject();
    }

    private static Task<JsonObject> VoteAsync(IServiceProvider services, string approver, JsonObject held, bool approve, TimeProvider? time = null)
    {
        ApprovalService approvals = time is null ? services.GetRequiredService<ApprovalService>()
            : new ApprovalService(services.GetRequiredService<IConclaveStore>(), services.GetRequiredService<PolicyGate>(), time);
        return approvals.VoteAsync(PolicyApprover(approver), held["requestId"]!.GetValue<string>(), approve, held["requestHash"]!.GetValue<string>(),
            held["policyHash"]!.GetValue<string>(), "{}"u8.ToArray(), CancellationToken.None);
    }

    private static async Task<long> StarterVersionAsync(PolicyServer s) =>
        (await SendAsync(s.Http, HttpMethod.Get, "/v1/policies/starter")).Body!["version"]!.GetValue<long>();

    private static async Task<HttpStatusCode> SignMessageAsync(PolicyServer s, string key) =>
        (await SendAsync(s.Http, HttpMethod.Post, $"/v1/keys/{key}/sign", """{"message":"01"}""")).Status;

    private static async Task<string[]> AuditAsync(PolicyServer s) =>
        [.. (await SendAsync(s.Http, HttpMethod.Get, "/v1/audit?last=200")).Body!["entries"]!.AsArray()
            .Select(e => e!["action"]!.GetValue<string>() + " " + e!["result"]?.GetValue<string>())];

    [Fact]
    public async Task A_tightening_is_held_and_takes_effect_on_one_approvers_vote()
    {
        await using PolicyServer s = await PolicyServer.StartAsync();
        (string ed, _) = await CreateKeyAsync(s.Http, "ed25519");
        JsonObject held = await ProposeAsync(s, NoMessages);
        Assert.Equal("pending", held["status"]!.GetValue<string>());
        Assert.StartsWith("req-", held["requestId"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal("tightening", held["change"]!["kind"]!.GetValue<string>());
        Assert.Equal(1, held["change"]!["approvalsNeeded"]!.GetValue<int>());
        Assert.Equal(0, held["change"]!["timeLockSeconds"]!.GetValue<long>());
        Assert.Contains("deny rule no-messages added", held["change"]!["reasons"]!.AsArray().Select(x => x!.GetValue<string>()));

        // Not in force until approved: version 1 still, messages still signed.
        Assert.Equal(1, await StarterVersionAsync(s));
        Assert.Equal(HttpStatusCode.OK, await SignMessageAsync(s, ed));
        // The initiator never counts; the admin token is no approver.
        ApiException self = await Assert.ThrowsAsync<ApiException>(() => VoteAsync(s.App.Services, "admin", held, true));
        Assert.Equal(403, self.Problem.Status);
        var byToken = await SendAsync(s.Http, HttpMethod.Post, $"/v1/requests/{held["requestId"]}/approve",
            $$"""{"requestHash":"{{held["requestHash"]}}","policyHash":"{{held["policyHash"]}}"}""");
        Assert.Equal(HttpStatusCode.Forbidden, byToken.Status);

        JsonObject done = await VoteAsync(s.App.Services, "policy-approver-1", held, true);
        Assert.Equal("executed", done["status"]!.GetValue<string>());
        Assert.Equal(2, await StarterVersionAsync(s));
        Assert.Equal(HttpStatusCode.Forbidden, await SignMessageAsync(s, ed));

        string[] audit = await AuditAsync(s);
        Assert.Contains(audit, a => a.StartsWith("policy.change.held ", StringComparison.Ordinal) && a.Contains("tightening", StringComparison.Ordinal)
            && a.Contains("deny rule no-messages added", StringComparison.Ordinal));
        Assert.Contains(audit, a => a.StartsWith("policy.put starter v2", StringComparison.Ordinal) && a.Contains("tightening approved", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_loosening_needs_the_quorum_and_then_the_time_lock()
    {
        await using PolicyServer s = await PolicyServer.StartAsync();
        (string ed, _) = await CreateKeyAsync(s.Http, "ed25519");
        await PutPolicyAsync(s, NoMessages);
        Assert.Equal(HttpStatusCode.Forbidden, await SignMessageAsync(s, ed));

        JsonObject held = await ProposeAsync(s, MessagesAgain(3));
        Assert.Equal("loosening", held["change"]!["kind"]!.GetValue<string>());
        Assert.Equal(["deny rule no-messages removed"], held["change"]!["reasons"]!.AsArray().Select(x => x!.GetValue<string>()));
        Assert.Equal(2, held["change"]!["approvalsNeeded"]!.GetValue<int>());
        Assert.Equal(3600, held["change"]!["timeLockSeconds"]!.GetValue<long>());

        Assert.Equal("pending", (await VoteAsync(s.App.Services, "policy-approver-1", held, true))["status"]!.GetValue<string>());
        JsonObject approved = await VoteAsync(s.App.Services, "policy-approver-2", held, true);
        Assert.Equal("approved", approved["status"]!.GetValue<string>());
        DateTimeOffset effective = approved["change"]!["effectiveAt"]!.GetValue<DateTimeOffset>();
        Assert.InRange(effective, DateTimeOffset.UtcNow.AddSeconds(3500), DateTimeOffset.UtcNow.AddSeconds(3700));
        // The quorum is met but the time lock runs: still version 2, still denied.
        Assert.Equal(2, await StarterVersionAsync(s));
        Assert.Equal(HttpStatusCode.Forbidden, await SignMessageAsync(s, ed));

        IConclaveStore store = s.App.Services.GetRequiredService<IConclaveStore>();
        PolicyGate gate = s.App.Services.GetRequiredService<PolicyGate>();
        var almost = new ApprovalService(store, gate, new ShiftedTime(TimeSpan.FromSeconds(3500)));
        await almost.ApplyDuePolicyChangesAsync(CancellationToken.None);
        Assert.Equal("approved", (await almost.GetAsync(held["requestId"]!.GetValue<string>(), CancellationToken.None))!["status"]!.GetValue<string>());
        Assert.Equal(2, await StarterVersionAsync(s));

        var after = new ApprovalService(store, gate, new ShiftedTime(TimeSpan.FromSeconds(3700)));
        await after.ApplyDuePolicyChangesAsync(CancellationToken.None);
        Assert.Equal("executed", (await after.GetAsync(held["requestId"]!.GetValue<string>(), CancellationToken.None))!["status"]!.GetValue<string>());
        Assert.Equal(3, await StarterVersionAsync(s));
        Assert.Equal(HttpStatusCode.OK, await SignMessageAsync(s, ed));
        Assert.Contains(await AuditAsync(s), a => a.StartsWith("policy.put starter v3", StringComparison.Ordinal) && a.Contains("loosening approved", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_reject_is_final_also_during_the_time_lock_and_a_change_expires()
    {
        await using PolicyServer s = await PolicyServer.StartAsync();
        await PutPolicyAsync(s, NoMessages);
        IConclaveStore store = s.App.Services.GetRequiredService<IConclaveStore>();
        PolicyGate gate = s.App.Services.GetRequiredService<PolicyGate>();
        var muchLater = new ApprovalService(store, gate, new ShiftedTime(TimeSpan.FromHours(5)));

        // Rejected before the quorum.
        JsonObject first = await ProposeAsync(s, MessagesAgain(3));
        await VoteAsync(s.App.Services, "policy-approver-1", first, true);
        Assert.Equal("rejected", (await VoteAsync(s.App.Services, "policy-approver-2", first, false))["status"]!.GetValue<string>());
        ApiException late = await Assert.ThrowsAsync<ApiException>(() => VoteAsync(s.App.Services, "policy-approver-3", first, true));
        Assert.Equal(409, late.Problem.Status);

        // Rejected during the time lock: never in force.
        JsonObject second = await ProposeAsync(s, MessagesAgain(4));
        await VoteAsync(s.App.Services, "policy-approver-1", second, true);
        Assert.Equal("approved", (await VoteAsync(s.App.Services, "policy-approver-2", second, true))["status"]!.GetValue<string>());
        // The initiator may not stop it either (it never votes); an approver not in the list may not.
        Assert.Equal(403, (await Assert.ThrowsAsync<ApiException>(() => VoteAsync(s.App.Services, "admin", second, false))).Problem.Status);
        Assert.Equal(403, (await Assert.ThrowsAsync<ApiException>(() => VoteAsync(s.App.Services, "mallory", second, false))).Problem.Status);
        Assert.Equal("rejected", (await VoteAsync(s.App.Services, "policy-approver-3", second, false))["status"]!.GetValue<string>());
        await muchLater.ApplyDuePolicyChangesAsync(CancellationToken.None);
        Assert.Equal(2, await StarterVersionAsync(s));

        // Unapproved past its time to live (an hour on test servers): expired, never in force.
        JsonObject third = await ProposeAsync(s, MessagesAgain(5));
        Assert.Equal("expired", (await muchLater.GetAsync(third["requestId"]!.GetValue<string>(), CancellationToken.None))!["status"]!.GetValue<string>());
        Assert.Equal(409, (await Assert.ThrowsAsync<ApiException>(() => VoteAsync(s.App.Services, "policy-approver-1", third, true))).Problem.Status);
        Assert.Equal(2, await StarterVersionAsync(s));

        // The request shows an agent nothing of this (admin sees it); a stale version is refused at once.
        var stale = await SendAsync(s.Http, HttpMethod.Put, "/v1/policies/starter", NoMessages);
        Assert.Equal((HttpStatusCode.Conflict, ProblemTypes.PolicyVersion), (stale.Status, stale.Body!["type"]!.GetValue<string>()));
    }

    [Fact]
    public async Task Without_configured_approvers_no_policy_can_be_changed_but_the_starter_policy_is_installed()
    {
        await using PolicyServer s = await PolicyServer.StartAsync(c => c.PolicyChanges = null);
        Assert.Equal(1, await StarterVersionAsync(s));
        var r = await SendAsync(s.Http, HttpMethod.Put, "/v1/policies/starter", NoMessages);
        Assert.Equal(HttpStatusCode.Conflict, r.Status);
        Assert.Equal(ProblemTypes.PolicyChangeRefused, r.Body!["type"]!.GetValue<string>());
        Assert.Contains("policyChanges.approvers", r.Body!["detail"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Two_replicas_on_one_PostgreSQL_apply_an_approved_change_exactly_once()
    {
        string adminCs = OwnServers.AdminConnectionString();
        string db = "conclave_chg_" + Guid.NewGuid().ToString("N")[..12];
        await OwnServers.ExecAsync(adminCs, $"CREATE DATABASE {db}");
        string dir = Path.Combine(Path.GetTempPath(), "conclave-chg-" + Guid.NewGuid().ToString("N")[..10]);
        var apps = new List<Microsoft.AspNetCore.Builder.WebApplication>();
        try
        {
            var layout = new Conclave.Server.Hosting.LocalClusterLayout(dir);
            layout.EnsureCreated(3, 2, LoopbackPorts.Take(), LoopbackPorts.Take());
            string cs = new Npgsql.NpgsqlConnectionStringBuilder(adminCs) { Database = db }.ConnectionString;
            Conclave.Server.Config.ServerConfig Config()
            {
                var c = Conclave.Server.Config.ServerConfig.Load(layout.ServerConfigPath);
                c.PostgresConnectionString = cs;
                c.PolicyChanges = NodelessServer.TestPolicyChanges();
                c.Listen = "127.0.0.1:" + LoopbackPorts.Take().ToString(System.Globalization.CultureInfo.InvariantCulture);
                return c;
            }

            Conclave.Server.Config.ServerConfig ca = Config();
            foreach (Conclave.Server.Config.ServerConfig c in new[] { ca, Config() })
            {
                var app = await Conclave.Server.Hosting.ServerHost.BuildAsync(c);
                await app.StartAsync();
                apps.Add(app);
            }

            string token = (await File.ReadAllTextAsync(apps[0].Services.GetRequiredService<Conclave.Server.Hosting.ServerPaths>().AdminTokenFile)).Trim();
            using HttpClient http = PolicyServer.Client(ca, token);

            // A loosening (an allow rule added): two approvers, then the one-hour time lock.
            JsonObject d = JsonNode.Parse(MessagesAgain(2))!.AsObject();
            d["rules"]!.AsArray().Add(JsonNode.Parse("""{"id":"operators","effect":"allow","match":{"roles":["operator"],"operations":["message"]}}"""));
            var put = await SendAsync(http, HttpMethod.Put, "/v1/policies/starter", d.ToJsonString());
            Assert.True(put.Status == HttpStatusCode.Accepted, put.Text);
            JsonObject held = put.Body!.AsObject();
            string id = held["requestId"]!.GetValue<string>();
            Assert.Equal("loosening", held["change"]!["kind"]!.GetValue<string>());
            await VoteAsync(apps[0].Services, "policy-approver-1", held, true);
            JsonObject approved = await VoteAsync(apps[1].Services, "policy-approver-2", held, true);
            Assert.Equal("approved", approved["status"]!.GetValue<string>());

            // The time lock is over for both replicas at once: each applies due changes from several callers concurrently.
            var later = new ShiftedTime(TimeSpan.FromSeconds(3601));
            ApprovalService[] services = [.. apps.SelectMany(a => Enumerable.Range(0, 4).Select(_ =>
                new ApprovalService(a.Services.GetRequiredService<IConclaveStore>(), a.Services.GetRequiredService<PolicyGate>(), later)))];
            await Task.WhenAll(services.Select(x => Task.Run(() => x.ApplyDuePolicyChangesAsync(CancellationToken.None))));

            // Applied once: version 2 stored with the proposed hash, the request executed, one policy.put and one
            // request.executed in the shared audit log, nothing failed.
            IConclaveStore store = apps[1].Services.GetRequiredService<IConclaveStore>();
            Assert.Equal(held["policyHash"]!.GetValue<string>(), (await store.Policies.GetAsync("starter", 2))!.Hash);
            Assert.Equal(2, (await store.Policies.GetAsync("starter", null))!.Version);
            Assert.Equal("executed", (await services[^1].GetAsync(id, CancellationToken.None))!["status"]!.GetValue<string>());
            string[] audit = [.. (await SendAsync(http, HttpMethod.Get, "/v1/audit?last=300")).Body!["entries"]!.AsArray()
                .Select(e => e!["action"]!.GetValue<string>() + " " + e!["result"]?.GetValue<string>())];
            Assert.Single(audit, a => a.StartsWith("policy.put starter v2 ", StringComparison.Ordinal) && a.Contains($"approved ({id})", StringComparison.Ordinal));
            Assert.Single(audit, a => a.StartsWith("request.executed " + id, StringComparison.Ordinal));
            Assert.DoesNotContain(audit, a => a.StartsWith("request.failed", StringComparison.Ordinal));
        }
        finally
        {
            foreach (var app in apps)
            {
                await app.StopAsync();
                await app.DisposeAsync();
            }

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
