using System.Net;
using System.Numerics;
using System.Text.Json.Nodes;
using Conclave.Client;
using Conclave.Policy.HttpSignatures;
using Conclave.Storage;
using Microsoft.Extensions.DependencyInjection;

namespace Conclave.Server.Tests.Venue;

/// <summary>A held Safe transaction requested by an agent (issue 17): approved by people, run as that agent.</summary>
public sealed partial class SafeTreasuryTests
{
    /// <summary>
    /// A principal made through the API (<paramref name="kind"/> with <paramref name="roles"/>, scoped to
    /// <paramref name="keyIds"/> and every operation) with an Ed25519 credential from the run seed, and a client that signs
    /// every request as it (RFC 9421, <see cref="AgentSigningHandler"/>).
    /// </summary>
    private async Task<HttpClient> SignedPrincipalAsync(string id, string kind, string? roles, params string[] keyIds)
    {
        string rolesPart = roles is null ? "" : $",\"roles\":{roles}";
        (HttpStatusCode status, JsonNode? body) = await Post("/v1/principals",
            $$$"""{"id":"{{{id}}}","kind":"{{{kind}}}"{{{rolesPart}}},"scope":{"keys":{{{JsonList(keyIds)}}},"labels":[],"operations":["*"]}}""");
        Assert.True(status == HttpStatusCode.Created, body?.ToJsonString());
        var key = HttpSigningKey.Ed25519FromSeed(TestSeed.Bytes(32, "principal key " + id));
        (status, body) = await Post($"/v1/principals/{id}/credentials",
            $$"""{"algorithm":"ed25519","publicKey":"{{Convert.ToBase64String([.. key.PublicKey.PublicKey])}}"}""");
        Assert.True(status is HttpStatusCode.Created or HttpStatusCode.OK, body?.ToJsonString());
        var handler = new AgentSigningHandler(key, body!["keyId"]!.GetValue<string>()) { InnerHandler = new HttpClientHandler() };
        return new HttpClient(handler, disposeHandler: true) { BaseAddress = V.Http.BaseAddress, Timeout = TimeSpan.FromMinutes(3) };
    }

    private static async Task<(HttpStatusCode Status, JsonNode? Body)> PostAs(HttpClient client, string path, string json)
    {
        var r = await PolicyEnforcementTests.SendAsync(client, HttpMethod.Post, path, json);
        return (r.Status, r.Body);
    }

    private async Task<JsonArray> AuditAsync()
    {
        using HttpResponseMessage r = await V.Http.GetAsync("/v1/audit?last=1000");
        return JsonNode.Parse(await r.Content.ReadAsStringAsync())!["entries"]!.AsArray();
    }

    [Fact]
    public async Task A_Safe_transaction_an_agent_requests_is_held_approved_by_people_and_runs_as_that_agent_and_another_agent_cannot_have_it_run()
    {
        (string name, string safe, string soft, string softAddress, string hsm, string hsmId) = await DeployedPairAsync();
        string softId = (await GetKeyAsync(soft))["id"]!.GetValue<string>();
        string run = Guid.NewGuid().ToString("N")[..8];
        string agent = "safe-bot-" + run, other = "other-bot-" + run, approver1 = "treasurer-1-" + run, approver2 = "treasurer-2-" + run;
        using HttpClient agentHttp = await SignedPrincipalAsync(agent, "agent", null, softId, hsmId);
        using HttpClient otherHttp = await SignedPrincipalAsync(other, "agent", null, V.KeeperId); // not scoped to the Safe's owner keys
        using HttpClient approver1Http = await SignedPrincipalAsync(approver1, "person", """["approver"]""");
        using HttpClient approver2Http = await SignedPrincipalAsync(approver2, "person", """["approver"]""");

        // Transfers with the two owner keys are allowed to the admin and both agents under a per-principal limit of 10 an
        // hour; the HSM key's signature for the agent needs one of the two treasurers.
        string policyId = "agent-safe-" + run;
        await PolicyEnforcementTests.PutPolicyAsync(V.Http, V.Cluster.App.Services, $$$"""
            {"id":"{{{policyId}}}","version":1,"rules":[
             {"id":"transfers","effect":"allow","match":{"principals":["admin","{{{agent}}}","{{{other}}}"],"keys":["{{{softId}}}","{{{hsmId}}}"],"operations":["transfer"]},
              "limits":{"velocity":[{"id":"hour","windowSeconds":3600,"count":10}]}},
             {"id":"held","effect":"require-approval","match":{"principals":["{{{agent}}}"],"keys":["{{{hsmId}}}"],"operations":["transfer"]},
              "approval":{"mode":"or","groups":[{"name":"treasury","members":["{{{approver1}}}","{{{approver2}}}"],"k":1}],"ttlSeconds":600}}]}
            """);
        IConclaveStore store = V.Cluster.App.Services.GetRequiredService<IConclaveStore>();
        async Task<long> SpentAsync(string principal) =>
            (await store.PolicyCounters.ReadAsync($"{policyId}/transfers/hour/p:{principal}", 3600, DateTimeOffset.UtcNow)).Count;

        string recipient = V.Accounts[5];
        string route = $"/v1/safes/{name}/transactions";
        try
        {
            // The agent asks: held (202), nothing signed or sent, the grants decided meanwhile given back.
            BigInteger before = await BalanceAsync(recipient);
            long softSent = await V.Chain.TransactionCountAsync(softAddress, "pending");
            (HttpStatusCode status, JsonNode? body) = await PostAs(agentHttp, route, Transfer(recipient, "1000", soft, soft, hsm));
            Assert.True(status == HttpStatusCode.Accepted, body?.ToJsonString());
            string id = body!["requestId"]!.GetValue<string>();
            string requestHash = body["requestHash"]!.GetValue<string>();
            string policyHash = body["policy"]!["policyHash"]!.GetValue<string>();
            string vote = $$"""{"requestHash":"{{requestHash}}","policyHash":"{{policyHash}}"}""";
            Assert.Equal(softSent, await V.Chain.TransactionCountAsync(softAddress, "pending"));
            Assert.Equal(0, await SpentAsync(agent));
            var mine = await PolicyEnforcementTests.SendAsync(agentHttp, HttpMethod.Get, $"/v1/requests/{id}");
            Assert.True(mine.Status == HttpStatusCode.OK, mine.Text);
            Assert.Equal(agent, mine.Body!["requester"]!.GetValue<string>());

            // The other agent cannot have it run: the same Safe transaction from it is denied (out of its scope) and holds
            // nothing; it does not see the agent's request; it never votes.
            (status, body) = await PostAs(otherHttp, route, Transfer(recipient, "1000", soft, soft, hsm));
            Assert.True(status == HttpStatusCode.Forbidden, body?.ToJsonString());
            Assert.Equal(P + "policy-denied", body!["type"]!.GetValue<string>());
            Assert.Contains(body["policy"]!["reasons"]!.AsArray(), r => r!.GetValue<string>().Contains($"out of scope: principal {other} is not scoped to key {softId}", StringComparison.Ordinal));
            Assert.Equal(HttpStatusCode.NotFound, (await PolicyEnforcementTests.SendAsync(otherHttp, HttpMethod.Get, $"/v1/requests/{id}")).Status);
            var refused = await PolicyEnforcementTests.SendAsync(otherHttp, HttpMethod.Post, $"/v1/requests/{id}/approve", vote);
            Assert.True(refused.Status == HttpStatusCode.Forbidden, refused.Text);
            Assert.Empty((await PolicyEnforcementTests.SendAsync(otherHttp, HttpMethod.Get, "/v1/requests")).Body!["requests"]!.AsArray());
            Assert.Equal("pending", (await PolicyEnforcementTests.SendAsync(V.Http, HttpMethod.Get, $"/v1/requests/{id}")).Body!["status"]!.GetValue<string>());
            Assert.Equal(softSent, await V.Chain.TransactionCountAsync(softAddress, "pending"));
            Assert.Equal(0, await SpentAsync(other));

            // A treasurer approves over HTTP under their own signed credential: it runs, as the agent.
            long auditFrom = (await AuditAsync()).Max(e => e!["seq"]!.GetValue<long>());
            var approved = await PolicyEnforcementTests.SendAsync(approver1Http, HttpMethod.Post, $"/v1/requests/{id}/approve", vote);
            Assert.True(approved.Status == HttpStatusCode.OK, approved.Text);
            Assert.True(approved.Body!["status"]!.GetValue<string>() == "executed", approved.Text);
            JsonNode result = approved.Body["result"]!;
            await AssertFirstTransferMinedAsync(result, softAddress, recipient, before + 1000, safe);

            // The agent's counter is charged for both signatures and the execution (the HSM key's reserved by the approval),
            // nobody else's.
            Assert.Equal(3, await SpentAsync(agent));
            Assert.Equal(0, await SpentAsync("admin"));
            Assert.Equal(0, await SpentAsync(approver1));
            Assert.Equal(0, await SpentAsync(other));

            // The audit log: the vote by the treasurer, the decisions made when it ran (the software key's signature and the
            // execution) by the agent, none by the admin or the treasurer, then the request executed.
            JsonNode[] after = [.. (await AuditAsync()).Where(e => e!["seq"]!.GetValue<long>() > auditFrom).Select(e => e!)];
            Assert.Contains(after, e => e["action"]!.GetValue<string>() == "request.approve" && e["actor"]!.GetValue<string>() == approver1);
            JsonNode[] decided = [.. after.Where(e => e["action"]!.GetValue<string>() == "policy.decide")];
            Assert.Equal(2, decided.Length);
            Assert.All(decided, e =>
            {
                Assert.Equal(agent, e["actor"]!.GetValue<string>());
                Assert.Equal("allow", e["decision"]!.GetValue<string>());
                Assert.Equal(softId, e["keyId"]!.GetValue<string>());
            });
            Assert.Contains(after, e => e["action"]!.GetValue<string>() == "request.executed" && e["result"]!.GetValue<string>().StartsWith(id, StringComparison.Ordinal));
            Assert.Contains(await AuditAsync(), e => e!["action"]!.GetValue<string>() == "request.held" && e["actor"]!.GetValue<string>() == agent
                && e["result"]!.GetValue<string>().StartsWith(id, StringComparison.Ordinal));

            // Held again, then the agent is disabled: approved, it does not run (it would run as a disabled principal).
            (status, body) = await PostAs(agentHttp, route, Transfer(recipient, "2000", soft, soft, hsm));
            Assert.True(status == HttpStatusCode.Accepted, body?.ToJsonString());
            id = body!["requestId"]!.GetValue<string>();
            vote = $$"""{"requestHash":"{{body["requestHash"]!.GetValue<string>()}}","policyHash":"{{body["policy"]!["policyHash"]!.GetValue<string>()}}"}""";
            (status, body) = await Post($"/v1/principals/{agent}/disable", "{}");
            Assert.True(status == HttpStatusCode.OK, body?.ToJsonString());
            var failed = await PolicyEnforcementTests.SendAsync(approver2Http, HttpMethod.Post, $"/v1/requests/{id}/approve", vote);
            Assert.True(failed.Status == HttpStatusCode.OK, failed.Text);
            Assert.True(failed.Body!["status"]!.GetValue<string>() == "failed", failed.Text);
            Assert.Contains("disabled", failed.Body["result"]!["error"]!.GetValue<string>(), StringComparison.Ordinal);
            await Task.Delay(1500); // a block or so: anything sent would be mined by now
            Assert.Equal(softSent + 1, await V.Chain.TransactionCountAsync(softAddress, "pending"));
            Assert.Equal(BigInteger.One, await SafeNonceAsync(safe));
            Assert.Equal(before + 1000, await BalanceAsync(recipient));
            Assert.Equal(3, await SpentAsync(agent)); // the approval's reservation given back
        }
        finally
        {
            await PolicyEnforcementTests.PutPolicyAsync(V.Http, V.Cluster.App.Services,
                $$$"""{"id":"{{{policyId}}}","version":2,"rules":[{"id":"transfers","effect":"deny","match":{"keys":["none"],"operations":["transfer"]}}]}""");
        }
    }
}
