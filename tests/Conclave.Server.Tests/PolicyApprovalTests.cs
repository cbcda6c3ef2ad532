using System.Net;
using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;
using Conclave.Client;
using Conclave.Crypto.Signing;
using Conclave.Policy.HttpSignatures;
using Conclave.Policy.Principals;
using Conclave.Server.Api;
using Conclave.Server.Policy;
using Conclave.Storage;
using Microsoft.Extensions.DependencyInjection;

using static Conclave.Server.Tests.PolicyEnforcementTests;

namespace Conclave.Server.Tests;

/// <summary>
/// Requests held for approval (issue 16 "Approvals", docs/POLICY.md "Approvals"): 202 with a request id, votes over
/// the request hash and the policy hash, quorum met and the signature made, self-approval refused, a double vote
/// refused, a reject final, expiry, each end audited. The initiator is the admin or an agent (through HTTP); the
/// approvers are principals handed to <see cref="ApprovalService"/> directly, as the authentication middleware hands
/// them, or real principals voting over HTTP with RFC 9421 signatures
/// (<see cref="An_approver_never_approves_their_own_request_and_an_agent_never_approves"/>).
/// </summary>
public sealed class PolicyApprovalTests
{
    internal const string HeldPolicy = """
        {"id":"starter","version":2,"rules":[{"id":"held","effect":"require-approval","match":{"principals":["admin"],"operations":["message"]},
          "approval":{"mode":"and","groups":[{"name":"risk","members":["alice","bob","carol","admin"],"k":2}],"ttlSeconds":600}}]}
        """;

    internal static CallerIdentity Approver(string id, params Role[] more) =>
        new(new Principal(id, PrincipalKind.Person, [Role.Approver, .. more], PrincipalScope.Nothing), AuthMethod.HttpSignature, "cred-" + id);

    private static async Task<(string Id, string RequestHash, string PolicyHash)> HoldAsync(HttpClient http, string key, string message)
    {
        var r = await SendAsync(http, HttpMethod.Post, $"/v1/keys/{key}/sign", $$"""{"message":"{{message}}"}""");
        Assert.True(r.Status == HttpStatusCode.Accepted, r.Text);
        Assert.Equal("pending", r.Body!["status"]!.GetValue<string>());
        Assert.Equal("require-approval", r.Body!["policy"]!["decision"]!.GetValue<string>());
        return (r.Body!["requestId"]!.GetValue<string>(), r.Body!["requestHash"]!.GetValue<string>(), r.Body!["policy"]!["policyHash"]!.GetValue<string>());
    }

    private static async Task<ApiException> RefusedAsync(Func<Task> vote) => await Assert.ThrowsAsync<ApiException>(vote);

    [Fact]
    public async Task Quorum_met_signs_self_approval_and_double_votes_are_refused()
    {
        await using PolicyServer s = await PolicyServer.StartAsync();
        (string ed, _) = await CreateKeyAsync(s.Http, "ed25519");
        var key = await SendAsync(s.Http, HttpMethod.Get, $"/v1/keys/{ed}");
        byte[] publicKey = Convert.FromHexString(key.Body!["publicKey"]!.GetValue<string>());
        await PutPolicyAsync(s, HeldPolicy);
        (string id, string hash, string policyHash) = await HoldAsync(s.Http, ed, "68656c6c6f");

        var pending = await SendAsync(s.Http, HttpMethod.Get, "/v1/requests?status=pending");
        Assert.Contains(pending.Body!["requests"]!.AsArray(), r => r!["requestId"]!.GetValue<string>() == id);
        Assert.Equal(HttpStatusCode.BadRequest, (await SendAsync(s.Http, HttpMethod.Get, "/v1/requests?status=later")).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await SendAsync(s.Http, HttpMethod.Get, "/v1/requests/req-none")).Status);

        // The admin token is not an approver.
        var byAdmin = await SendAsync(s.Http, HttpMethod.Post, $"/v1/requests/{id}/approve", $$"""{"requestHash":"{{hash}}","policyHash":"{{policyHash}}"}""");
        Assert.Equal(HttpStatusCode.Forbidden, byAdmin.Status);
        Assert.Equal(ProblemTypes.Forbidden, byAdmin.Body!["type"]!.GetValue<string>());

        ApprovalService approvals = s.App.Services.GetRequiredService<ApprovalService>();
        byte[] evidence = "{}"u8.ToArray();
        // The initiator never counts, even as a member of the group.
        ApiException self = await RefusedAsync(() => approvals.VoteAsync(Approver("admin", Role.Admin), id, true, hash, policyHash, evidence, CancellationToken.None));
        Assert.Equal((ProblemTypes.VoteRefused, 403), (self.Problem.Type, self.Problem.Status));
        // A vote is over this request's hash and policy hash.
        ApiException wrong = await RefusedAsync(() => approvals.VoteAsync(Approver("alice"), id, true, new string('0', 64), policyHash, evidence, CancellationToken.None));
        Assert.Equal(ProblemTypes.VoteRefused, wrong.Problem.Type);
        await RefusedAsync(() => approvals.VoteAsync(Approver("alice"), id, true, hash, "sha256:" + new string('0', 64), evidence, CancellationToken.None));
        // Not in a group.
        Assert.Equal(403, (await RefusedAsync(() => approvals.VoteAsync(Approver("dave"), id, true, hash, policyHash, evidence, CancellationToken.None))).Problem.Status);

        JsonObject afterAlice = await approvals.VoteAsync(Approver("alice"), id, true, hash, policyHash, evidence, CancellationToken.None);
        Assert.Equal("pending", afterAlice["status"]!.GetValue<string>());
        ApiException twice = await RefusedAsync(() => approvals.VoteAsync(Approver("alice"), id, true, hash, policyHash, evidence, CancellationToken.None));
        Assert.Equal((ProblemTypes.VoteRefused, 409), (twice.Problem.Type, twice.Problem.Status));

        JsonObject done = await approvals.VoteAsync(Approver("bob"), id, true, hash, policyHash, evidence, CancellationToken.None);
        Assert.Equal("executed", done["status"]!.GetValue<string>());

        // The client polls the request and gets the signature, made under the key after the quorum.
        var polled = await SendAsync(s.Http, HttpMethod.Get, $"/v1/requests/{id}");
        Assert.Equal("executed", polled.Body!["status"]!.GetValue<string>());
        byte[] signature = Convert.FromHexString(polled.Body!["result"]!["signature"]!.GetValue<string>());
        Assert.True(SignatureSchemes.Ed25519.Verify(publicKey, Convert.FromHexString("68656c6c6f"), signature));
        Assert.Equal(["alice", "bob"], polled.Body!["votes"]!.AsArray().Select(v => v!["approver"]!.GetValue<string>()).Order());
        // Decided: no more votes.
        Assert.Equal(409, (await RefusedAsync(() => approvals.VoteAsync(Approver("carol"), id, true, hash, policyHash, evidence, CancellationToken.None))).Problem.Status);

        // Everything is audited.
        var audit = await SendAsync(s.Http, HttpMethod.Get, "/v1/audit?last=100");
        string[] actions = [.. audit.Body!["entries"]!.AsArray().Select(e => e!["action"]!.GetValue<string>())];
        Assert.Contains("request.held", actions);
        Assert.Contains("request.approve", actions);
        Assert.Contains("request.executed", actions);
        // The vote's evidence is stored with it.
        IConclaveStore store = s.App.Services.GetRequiredService<IConclaveStore>();
        Assert.All(await store.Requests.GetApprovalsAsync(id), v => Assert.Equal(evidence, v.Signature));
    }

    [Fact]
    public async Task A_reject_is_final_and_a_request_expires()
    {
        await using PolicyServer s = await PolicyServer.StartAsync();
        (string ed, _) = await CreateKeyAsync(s.Http, "ed25519");
        await PutPolicyAsync(s, HeldPolicy);
        ApprovalService approvals = s.App.Services.GetRequiredService<ApprovalService>();
        byte[] evidence = "{}"u8.ToArray();

        (string id, string hash, string policyHash) = await HoldAsync(s.Http, ed, "01");
        JsonObject rejected = await approvals.VoteAsync(Approver("bob"), id, false, hash, policyHash, evidence, CancellationToken.None);
        Assert.Equal("rejected", rejected["status"]!.GetValue<string>());
        Assert.Equal(409, (await RefusedAsync(() => approvals.VoteAsync(Approver("alice"), id, true, hash, policyHash, evidence, CancellationToken.None))).Problem.Status);
        Assert.Equal(409, (await RefusedAsync(() => approvals.VoteAsync(Approver("carol"), id, true, hash, policyHash, evidence, CancellationToken.None))).Problem.Status);
        Assert.False((await SendAsync(s.Http, HttpMethod.Get, $"/v1/requests/{id}")).Body!.AsObject().ContainsKey("result"));

        // Ten minutes later (the approval's time to live) the next request has expired unapproved.
        (string id2, string hash2, string policyHash2) = await HoldAsync(s.Http, ed, "02");
        var later = new ApprovalService(s.App.Services.GetRequiredService<IConclaveStore>(), s.App.Services.GetRequiredService<PolicyGate>(), new LaterTime(TimeSpan.FromSeconds(601)));
        ApiException expired = await RefusedAsync(() => later.VoteAsync(Approver("alice"), id2, true, hash2, policyHash2, evidence, CancellationToken.None));
        Assert.Equal(409, expired.Problem.Status);
        Assert.Equal("expired", (await later.GetAsync(id2, CancellationToken.None))!["status"]!.GetValue<string>());

        // Both ends are audited once, against the request's key and hash: the reject by the approver who made it (after
        // that vote, also audited), the expiry by the server; the rejected request never expires, and late votes are refused entries.
        string keyId = (await SendAsync(s.Http, HttpMethod.Get, $"/v1/keys/{ed}")).Body!["id"]!.GetValue<string>();
        JsonNode[] audit = [.. (await SendAsync(s.Http, HttpMethod.Get, "/v1/audit?last=200")).Body!["entries"]!.AsArray().Select(e => e!)];
        static string Field(JsonNode e, string name) => e[name]?.GetValue<string>() ?? "";
        JsonNode rejectVote = Assert.Single(audit, e => Field(e, "action") == "request.reject");
        Assert.Equal(("bob", "allow"), (Field(rejectVote, "actor"), Field(rejectVote, "decision")));
        JsonNode rejectedEntry = Assert.Single(audit, e => Field(e, "action") == "request.rejected");
        Assert.Equal(("bob", "deny", id + " rejected", keyId, hash), (Field(rejectedEntry, "actor"), Field(rejectedEntry, "decision"), Field(rejectedEntry, "result"),
            Field(rejectedEntry, "keyId"), Field(rejectedEntry, "requestHash")));
        Assert.True(rejectedEntry["seq"]!.GetValue<long>() > rejectVote["seq"]!.GetValue<long>());
        JsonNode expiredEntry = Assert.Single(audit, e => Field(e, "action") == "request.expired");
        Assert.Equal(("coordinator", "deny", id2 + " expired unapproved", keyId, hash2), (Field(expiredEntry, "actor"), Field(expiredEntry, "decision"),
            Field(expiredEntry, "result"), Field(expiredEntry, "keyId"), Field(expiredEntry, "requestHash")));
        Assert.Equal(3, audit.Count(e => Field(e, "action") == "request.approve" && Field(e, "decision") == "deny"));
    }

    /// <summary>
    /// An agent principal with an Ed25519 credential (its key from the run seed, named by <paramref name="test"/> and
    /// <paramref name="id"/>), and an HTTP client that signs every request as it (RFC 9421).
    /// </summary>
    internal static async Task<HttpClient> AgentAsync(PolicyServer s, string id, string operations, [CallerMemberName] string test = "") =>
        (await AgentWithCredentialAsync(s, id, operations, null, test)).Http;

    /// <summary>As <see cref="AgentAsync"/>, with the credential's lease (seconds, the server's default when null) and its key id.</summary>
    internal static async Task<(HttpClient Http, string KeyId)> AgentWithCredentialAsync(PolicyServer s, string id, string operations, long? leaseSeconds, string test)
    {
        var created = await SendAsync(s.Http, HttpMethod.Post, "/v1/principals",
            $$$"""{"id":"{{{id}}}","kind":"agent","scope":{"keys":["*"],"labels":[],"operations":{{{operations}}}}}""");
        Assert.True(created.Status == HttpStatusCode.Created, created.Text);
        return await CredentialClientAsync(s, id, TestSeed.Bytes(32, "agent key " + id, test), leaseSeconds);
    }

    /// <summary>Registers an Ed25519 credential made from <paramref name="seed"/> for principal <paramref name="id"/>: an HTTP client signing as it (RFC 9421) and the key id.</summary>
    private static async Task<(HttpClient Http, string KeyId)> CredentialClientAsync(PolicyServer s, string id, byte[] seed, long? leaseSeconds)
    {
        var key = HttpSigningKey.Ed25519FromSeed(seed);
        string lease = leaseSeconds is { } l ? $",\"leaseSeconds\":{l}" : "";
        var cred = await SendAsync(s.Http, HttpMethod.Post, $"/v1/principals/{id}/credentials",
            $$"""{"algorithm":"ed25519","publicKey":"{{Convert.ToBase64String([.. key.PublicKey.PublicKey])}}"{{lease}}}""");
        Assert.True(cred.Status is HttpStatusCode.Created or HttpStatusCode.OK, cred.Text);
        string keyId = cred.Body!["keyId"]!.GetValue<string>();
        var handler = new AgentSigningHandler(key, keyId) { InnerHandler = new HttpClientHandler() };
        return (new HttpClient(handler, disposeHandler: true) { BaseAddress = new Uri("http://" + s.Config.Listen) }, keyId);
    }

    /// <summary>
    /// A held request made under an RFC 9421 credential is signed only if that credential is still live when the quorum
    /// is met: revoking it (the answer to a leaked agent key) fails the agent's pending requests at once, and a lease that
    /// lapsed before the quorum fails the request on the approval; nothing is signed and no velocity room is spent, and
    /// each failure is audited with its reason. A request of the admin token under the same one-per-hour limit is
    /// signed afterwards, so neither failed request kept a reservation.
    /// </summary>
    [Fact]
    public async Task A_held_request_of_a_revoked_or_lapsed_credential_is_never_signed_and_revoking_fails_it_at_once()
    {
        await using PolicyServer s = await PolicyServer.StartAsync();
        (string ed, _) = await CreateKeyAsync(s.Http, "ed25519");
        await PutPolicyAsync(s, """
            {"id":"starter","version":2,"rules":[{"id":"held","effect":"require-approval","match":{"operations":["message"]},
              "limits":{"velocity":[{"id":"one","windowSeconds":3600,"count":1,"scope":"shared"}]},
              "approval":{"mode":"or","groups":[{"name":"risk","members":["alice"],"k":1}],"ttlSeconds":600}}]}
            """);
        ApprovalService approvals = s.App.Services.GetRequiredService<ApprovalService>();
        byte[] evidence = "{}"u8.ToArray();
        static async Task<JsonArray> AuditAsync(PolicyServer s) => (await SendAsync(s.Http, HttpMethod.Get, "/v1/audit?last=200")).Body!["entries"]!.AsArray();

        // Revoked: the agent revokes its own (leaked) credential; its pending request fails at once, audited with the reason.
        (HttpClient leaked, string leakedKey) = await AgentWithCredentialAsync(s, "bot-leaked", """["message"]""", null, nameof(A_held_request_of_a_revoked_or_lapsed_credential_is_never_signed_and_revoking_fails_it_at_once));
        using (leaked)
        {
            (string id, string hash, string policyHash) = await HoldAsync(leaked, ed, "0a");
            var revoked = await SendAsync(leaked, HttpMethod.Post, $"/v1/principals/bot-leaked/credentials/{leakedKey}/revoke", "{}");
            Assert.True(revoked.Status == HttpStatusCode.OK, revoked.Text);
            var failed = await SendAsync(s.Http, HttpMethod.Get, $"/v1/requests/{id}");
            Assert.True(failed.Body!["status"]!.GetValue<string>() == "failed", failed.Text);
            Assert.Contains("revoked", failed.Body!["result"]!["error"]!.GetValue<string>(), StringComparison.Ordinal);
            Assert.Contains(await AuditAsync(s), e => e!["action"]!.GetValue<string>() == "request.failed"
                && e["result"]!.GetValue<string>().StartsWith(id, StringComparison.Ordinal) && e["result"]!.GetValue<string>().Contains("revoked", StringComparison.Ordinal));
            // The approver's vote comes too late: nothing is signed.
            ApiException late = await RefusedAsync(() => approvals.VoteAsync(Approver("alice"), id, true, hash, policyHash, evidence, CancellationToken.None));
            Assert.Equal((ProblemTypes.VoteRefused, 409), (late.Problem.Type, late.Problem.Status));
            Assert.False((await SendAsync(s.Http, HttpMethod.Get, $"/v1/requests/{id}")).Body!["result"]!.AsObject().ContainsKey("signature"));
        }

        // Lapsed: a 60 s lease; the quorum is met 120 s later (a clock the test moves), the request fails, nothing signed.
        (HttpClient brief, _) = await AgentWithCredentialAsync(s, "bot-brief", """["message"]""", 60, nameof(A_held_request_of_a_revoked_or_lapsed_credential_is_never_signed_and_revoking_fails_it_at_once));
        using (brief)
        {
            (string id, string hash, string policyHash) = await HoldAsync(brief, ed, "0b");
            var later = new ApprovalService(s.App.Services.GetRequiredService<IConclaveStore>(), s.App.Services.GetRequiredService<PolicyGate>(), new LaterTime(TimeSpan.FromSeconds(120)));
            later.Register(ApprovalService.SignRoute, Conclave.Server.Hosting.PolicySetup.SignExecutor(s.App.Services.GetRequiredService<KeyService>()));
            JsonObject lapsed = await later.VoteAsync(Approver("alice"), id, true, hash, policyHash, evidence, CancellationToken.None);
            Assert.True(lapsed["status"]!.GetValue<string>() == "failed", lapsed.ToJsonString());
            Assert.Contains("lapsed", lapsed["result"]!["error"]!.GetValue<string>(), StringComparison.Ordinal);
            Assert.False(lapsed["result"]!.AsObject().ContainsKey("signature"));
            Assert.Contains(await AuditAsync(s), e => e!["action"]!.GetValue<string>() == "request.failed"
                && e["result"]!.GetValue<string>().StartsWith(id, StringComparison.Ordinal) && e["result"]!.GetValue<string>().Contains("lapsed", StringComparison.Ordinal));
        }

        // The one-per-hour room is still free: the admin's held request is signed on approval.
        (string adminId, string adminHash, string adminPolicy) = await HoldAsync(s.Http, ed, "0c");
        JsonObject done = await approvals.VoteAsync(Approver("alice"), adminId, true, adminHash, adminPolicy, evidence, CancellationToken.None);
        Assert.True(done["status"]!.GetValue<string>() == "executed", done.ToJsonString());
    }

    [Fact]
    public async Task An_agent_sees_only_the_requests_it_made_and_another_agents_is_not_found()
    {
        await using PolicyServer s = await PolicyServer.StartAsync();
        (string ed, _) = await CreateKeyAsync(s.Http, "ed25519");
        await PutPolicyAsync(s, """
            {"id":"starter","version":2,"rules":[{"id":"held","effect":"require-approval","match":{"operations":["message"]},
              "approval":{"mode":"or","groups":[{"name":"risk","members":["alice","bob"],"k":1}],"ttlSeconds":600}}]}
            """);
        using HttpClient botA = await AgentAsync(s, "bot-a", """["message"]""");
        using HttpClient botB = await AgentAsync(s, "bot-b", """["message"]""");
        (string idA, _, _) = await HoldAsync(botA, ed, "0a");
        (string idB, _, _) = await HoldAsync(botB, ed, "0b");

        // Its own request: visible; another agent's: 404 exactly like an id that does not exist.
        var own = await SendAsync(botA, HttpMethod.Get, $"/v1/requests/{idA}");
        Assert.True(own.Status == HttpStatusCode.OK, own.Text);
        Assert.Equal("bot-a", own.Body!["requester"]!.GetValue<string>());
        var other = await SendAsync(botA, HttpMethod.Get, $"/v1/requests/{idB}");
        var none = await SendAsync(botA, HttpMethod.Get, "/v1/requests/req-none");
        Assert.Equal(HttpStatusCode.NotFound, other.Status);
        Assert.Equal(none.Body!["type"]!.GetValue<string>(), other.Body!["type"]!.GetValue<string>());
        Assert.DoesNotContain("bot-b", other.Text, StringComparison.Ordinal);

        // The list shows an agent its own requests only, with or without a status filter.
        foreach (string path in new[] { "/v1/requests", "/v1/requests?status=pending" })
        {
            var listA = await SendAsync(botA, HttpMethod.Get, path);
            Assert.True(listA.Status == HttpStatusCode.OK, listA.Text);
            Assert.Equal([idA], listA.Body!["requests"]!.AsArray().Select(r => r!["requestId"]!.GetValue<string>()));
            var listB = await SendAsync(botB, HttpMethod.Get, path);
            Assert.Equal([idB], listB.Body!["requests"]!.AsArray().Select(r => r!["requestId"]!.GetValue<string>()));
        }

        // Other roles as before: the admin sees both, and each one by id.
        var all = await SendAsync(s.Http, HttpMethod.Get, "/v1/requests");
        string[] ids = [.. all.Body!["requests"]!.AsArray().Select(r => r!["requestId"]!.GetValue<string>())];
        Assert.Contains(idA, ids);
        Assert.Contains(idB, ids);
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(s.Http, HttpMethod.Get, $"/v1/requests/{idB}")).Status);
    }

    /// <summary>
    /// A principal (<paramref name="kind"/> person with <paramref name="roles"/>, or agent) scoped to every key and
    /// operation, its Ed25519 credential made from <paramref name="seed"/>, and an HTTP client that signs as it (RFC 9421).
    /// </summary>
    internal static async Task<HttpClient> PrincipalClientAsync(PolicyServer s, string id, string kind, string? roles, byte[] seed)
    {
        string rolesPart = roles is null ? "" : $",\"roles\":{roles}";
        var created = await SendAsync(s.Http, HttpMethod.Post, "/v1/principals",
            $$$"""{"id":"{{{id}}}","kind":"{{{kind}}}"{{{rolesPart}}},"scope":{"keys":["*"],"labels":[],"operations":["*"]}}""");
        Assert.True(created.Status == HttpStatusCode.Created, created.Text);
        return (await CredentialClientAsync(s, id, seed, null)).Http;
    }

    [Fact]
    public async Task An_approver_never_approves_their_own_request_and_an_agent_never_approves()
    {
        await using PolicyServer s = await PolicyServer.StartAsync();
        (string ed, _) = await CreateKeyAsync(s.Http, "ed25519");
        await PutPolicyAsync(s, """
            {"id":"starter","version":2,"rules":[{"id":"held","effect":"require-approval","match":{"operations":["message"]},
              "approval":{"mode":"or","groups":[{"name":"risk","members":["pat","alice","bob","bot"],"k":1}],"ttlSeconds":600}}]}
            """);
        byte[] botSeed = TestSeed.Bytes(32, "bot key");
        static string Vote(string hash, string policyHash) => $$"""{"requestHash":"{{hash}}","policyHash":"{{policyHash}}"}""";

        // Pat may sign (admin) and approve; pat's own request is never approved by pat, over HTTP under pat's own key.
        using HttpClient pat = await PrincipalClientAsync(s, "pat", "person", """["admin","approver"]""", TestSeed.Bytes(32, "pat key"));
        (string patsId, string patsHash, string patsPolicy) = await HoldAsync(pat, ed, "0a");
        var self = await SendAsync(pat, HttpMethod.Post, $"/v1/requests/{patsId}/approve", Vote(patsHash, patsPolicy));
        Assert.True(self.Status == HttpStatusCode.Forbidden, self.Text);
        Assert.Equal(ProblemTypes.VoteRefused, self.Body!["type"]!.GetValue<string>());

        // An agent never votes, even one an approval group lists.
        using HttpClient bot = await PrincipalClientAsync(s, "bot", "agent", null, botSeed);
        var byAgent = await SendAsync(bot, HttpMethod.Post, $"/v1/requests/{patsId}/approve", Vote(patsHash, patsPolicy));
        Assert.True(byAgent.Status == HttpStatusCode.Forbidden, byAgent.Text);
        Assert.Equal(ProblemTypes.Forbidden, byAgent.Body!["type"]!.GetValue<string>());
        ApprovalService approvals = s.App.Services.GetRequiredService<ApprovalService>();
        var agent = new CallerIdentity(new Principal("bot", PrincipalKind.Agent, [Role.Agent], PrincipalScope.Everything), AuthMethod.HttpSignature, "cred-bot");
        Assert.Equal(ProblemTypes.Forbidden, (await RefusedAsync(() => approvals.VoteAsync(agent, patsId, true, patsHash, patsPolicy, "{}"u8.ToArray(), CancellationToken.None))).Problem.Type);

        // Alice's credential is the agent's own key: the holder of that key never approves the agent's request.
        (string botsId, string botsHash, string botsPolicy) = await HoldAsync(bot, ed, "0b");
        using HttpClient alice = await PrincipalClientAsync(s, "alice", "person", """["approver"]""", botSeed);
        var twin = await SendAsync(alice, HttpMethod.Post, $"/v1/requests/{botsId}/approve", Vote(botsHash, botsPolicy));
        Assert.True(twin.Status == HttpStatusCode.Forbidden, twin.Text);
        Assert.Equal(ProblemTypes.VoteRefused, twin.Body!["type"]!.GetValue<string>());
        Assert.Equal("pending", (await SendAsync(s.Http, HttpMethod.Get, $"/v1/requests/{botsId}")).Body!["status"]!.GetValue<string>());
        // Alice may approve someone else's request.
        var alicesVote = await SendAsync(alice, HttpMethod.Post, $"/v1/requests/{patsId}/approve", Vote(patsHash, patsPolicy));
        Assert.True(alicesVote.Status == HttpStatusCode.OK, alicesVote.Text);
        Assert.Equal("executed", alicesVote.Body!["status"]!.GetValue<string>());

        // Bob, with a key of his own, approves the agent's request.
        using HttpClient bob = await PrincipalClientAsync(s, "bob", "person", """["approver"]""", TestSeed.Bytes(32, "bob key"));
        var bobsVote = await SendAsync(bob, HttpMethod.Post, $"/v1/requests/{botsId}/approve", Vote(botsHash, botsPolicy));
        Assert.True(bobsVote.Status == HttpStatusCode.OK, bobsVote.Text);
        Assert.Equal("executed", bobsVote.Body!["status"]!.GetValue<string>());
        Assert.Equal(["bob"], bobsVote.Body!["votes"]!.AsArray().Select(v => v!["approver"]!.GetValue<string>()));

        // The refused votes are audited.
        var audit = await SendAsync(s.Http, HttpMethod.Get, "/v1/audit?last=200");
        Assert.Contains(audit.Body!["entries"]!.AsArray(), e => e!["action"]!.GetValue<string>() == "request.approve" && e["actor"]!.GetValue<string>() == "alice"
            && e["decision"]!.GetValue<string>() == "deny");
        Assert.Contains(audit.Body!["entries"]!.AsArray(), e => e!["action"]!.GetValue<string>() == "request.approve" && e["actor"]!.GetValue<string>() == "pat"
            && e["decision"]!.GetValue<string>() == "deny");
    }

    private static async Task<JsonNode> RpcAsync(HttpClient http, string method, string @params)
    {
        var r = await SendAsync(http, HttpMethod.Post, "/rpc", $$"""{"jsonrpc":"2.0","id":1,"method":"{{method}}","params":{{@params}}}""");
        Assert.True(r.Status == HttpStatusCode.OK, r.Text);
        return r.Body!;
    }

    [Fact]
    public async Task A_held_rpc_call_answers_an_error_with_the_request_id_and_is_signed_once_approved_and_a_batch_item_is_refused_on_its_own()
    {
        await using PolicyServer s = await PolicyServer.StartAsync();
        (_, string address) = await CreateKeyAsync(s.Http);
        await PutPolicyAsync(s, """
            {"id":"starter","version":2,"rules":[
              {"id":"held","effect":"require-approval","match":{"principals":["admin"],"operations":["message","transfer"]},
               "approval":{"mode":"or","groups":[{"name":"risk","members":["alice","bob"],"k":1}],"ttlSeconds":600}},
              {"id":"raw","effect":"allow","match":{"principals":["admin"],"operations":["raw-digest"],"labels":["scheme:ecdsa-secp256k1"]}}]}
            """);
        ApprovalService approvals = s.App.Services.GetRequiredService<ApprovalService>();

        // personal_sign needs approval: a JSON-RPC error carrying the held request, nothing signed yet.
        JsonNode held = await RpcAsync(s.Http, "personal_sign", $$"""["0x68656c6c6f","{{address}}"]""");
        Assert.Null(held["result"]);
        Assert.Equal(EthereumRpc.HeldForApprovalCode, held["error"]!["code"]!.GetValue<int>());
        JsonNode data = held["error"]!["data"]!;
        string id = data["requestId"]!.GetValue<string>();
        Assert.Contains(id, held["error"]!["message"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal("pending", data["status"]!.GetValue<string>());
        Assert.Equal("require-approval", data["policy"]!["decision"]!.GetValue<string>());
        var pending = await SendAsync(s.Http, HttpMethod.Get, $"/v1/requests/{id}");
        Assert.Equal("pending", pending.Body!["status"]!.GetValue<string>());
        Assert.Equal("message", pending.Body!["operation"]!.GetValue<string>());

        // Approved: signed, and the request's result is the signature the call would have returned.
        JsonObject done = await approvals.VoteAsync(Approver("alice"), id, true, data["requestHash"]!.GetValue<string>(), data["policy"]!["policyHash"]!.GetValue<string>(),
            "{}"u8.ToArray(), CancellationToken.None);
        Assert.True(done["status"]!.GetValue<string>() == "executed", done.ToJsonString());
        var polled = await SendAsync(s.Http, HttpMethod.Get, $"/v1/requests/{id}");
        Assert.Equal("personal_sign", polled.Body!["result"]!["method"]!.GetValue<string>());
        byte[] sig = Convert.FromHexString(polled.Body!["result"]!["result"]!.GetValue<string>()[2..]);
        Assert.Equal(65, sig.Length);
        Assert.True(Conclave.Crypto.Secp256k1.EcdsaSecp256k1.TryRecover(Conclave.Chains.Ethereum.PersonalMessage.Hash("hello"u8), sig.AsSpan(0, 64), sig[64] - 27,
            out Conclave.Crypto.Secp256k1.Secp256k1Point pk));
        Assert.Equal(address, Conclave.Chains.Ethereum.EthereumAddress.FromPublicKey(pk.ToCompressed()));

        // eth_signTransaction of a plain transfer: held, approved, and the result is the raw transaction from this key.
        JsonNode heldTx = await RpcAsync(s.Http, "eth_signTransaction",
            $$"""[{"from":"{{address}}","to":"0x3535353535353535353535353535353535353535","value":"0x1","chainId":"0x1","nonce":"0x0","gas":"0x5208","gasPrice":"0x1"}]""");
        Assert.Equal(EthereumRpc.HeldForApprovalCode, heldTx["error"]!["code"]!.GetValue<int>());
        JsonNode txData = heldTx["error"]!["data"]!;
        string txId = txData["requestId"]!.GetValue<string>();
        Assert.Equal("transfer", (await SendAsync(s.Http, HttpMethod.Get, $"/v1/requests/{txId}")).Body!["operation"]!.GetValue<string>());
        JsonObject txDone = await approvals.VoteAsync(Approver("bob"), txId, true, txData["requestHash"]!.GetValue<string>(), txData["policy"]!["policyHash"]!.GetValue<string>(),
            "{}"u8.ToArray(), CancellationToken.None);
        Assert.True(txDone["status"]!.GetValue<string>() == "executed", txDone.ToJsonString());
        byte[] raw = Convert.FromHexString(txDone["result"]!["result"]!.GetValue<string>()[2..]);
        Assert.Equal(address, Conclave.Chains.Ethereum.SignedEthereumTransaction.Decode(raw).SenderAddress);

        // A batch holds nothing: each item that needs approval is refused in its own slot with the decision, nothing is stored.
        (string ed, _) = await CreateKeyAsync(s.Http, "ed25519");
        int pendingBefore = (await SendAsync(s.Http, HttpMethod.Get, "/v1/requests?status=pending")).Body!["requests"]!.AsArray().Count;
        var batch = await SendAsync(s.Http, HttpMethod.Post, $"/v1/keys/{ed}/sign/batch", """{"items":[{"message":"01"},{"message":"02"}]}""");
        Assert.True(batch.Status == HttpStatusCode.OK, batch.Text);
        foreach (JsonNode? item in batch.Body!["results"]!.AsArray())
        {
            JsonNode refused = item!["error"]!;
            Assert.Equal(ProblemTypes.PolicyDenied, refused["type"]!.GetValue<string>());
            Assert.Contains("does not hold requests for approval", refused["detail"]!.GetValue<string>(), StringComparison.Ordinal);
            Assert.Equal("deny", refused["policy"]!["decision"]!.GetValue<string>());
            Assert.Equal(["starter/held"], refused["policy"]!["rules"]!.AsArray().Select(r => r!.GetValue<string>()));
        }

        Assert.Equal(pendingBefore, (await SendAsync(s.Http, HttpMethod.Get, "/v1/requests?status=pending")).Body!["requests"]!.AsArray().Count);
    }

    private sealed class LaterTime(TimeSpan offset) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => System.GetUtcNow() + offset;
    }
}
