using System.Net;
using System.Numerics;
using System.Text;
using System.Text.Json.Nodes;
using Conclave.Server.Policy;
using Microsoft.Extensions.DependencyInjection;

namespace Conclave.Server.Tests.Venue;

/// <summary>The example venue with the Safe 1.4.1 singleton and proxy factory named in server.json <c>safeContracts</c>.</summary>
public sealed class SafeVenue : IAsyncLifetime
{
    public ExampleVenue Venue { get; } = new(allowAgents: false, safeContracts: true);

    public Task InitializeAsync() => Venue.InitializeAsync();

    public Task DisposeAsync() => Venue.DisposeAsync();
}

/// <summary>
/// Safes deployed by Conclave (<c>POST /v1/safes</c> with <c>deploy</c>) on a real chain and a real 2-of-3 cluster, Safe
/// transactions held for approval and run once approved, and how velocity limits count a Safe transaction.
/// </summary>
public sealed partial class SafeTreasuryTests(SafeVenue fixture) : IClassFixture<SafeVenue>
{
    private const string P = "https://conclave.dev/problems/";

    private ExampleVenue V => fixture.Venue;

    private async Task<(HttpStatusCode Status, JsonNode? Body)> Post(string path, string json)
    {
        using var content = new StringContent(json, Encoding.UTF8, "application/json");
        using HttpResponseMessage r = await V.Http.PostAsync(path, content);
        string text = await r.Content.ReadAsStringAsync();
        return (r.StatusCode, text.Length == 0 ? null : JsonNode.Parse(text));
    }

    private static string JsonList(IEnumerable<string> items) => new JsonArray(items.Select(i => (JsonNode?)JsonValue.Create(i)).ToArray()).ToJsonString();

    private static string Deploy(string name, string[] owners, int threshold, string deploy, long chainId = AnvilChain.ChainId) =>
        $$"""{"name":"{{name}}","chainId":{{chainId}},"owners":{{JsonList(owners)}},"threshold":{{threshold}},"deploy":{{deploy}}}""";

    private static string Transfer(string to, string wei, string executor, params string[] signers) =>
        $$"""{"to":"{{to}}","value":"{{wei}}","signers":{{JsonList(signers)}},"execute":true,"executor":"{{executor}}"}""";

    private async Task<BigInteger> BalanceAsync(string address) => AnvilChain.Q(await V.Chain.Call("eth_getBalance", address, "latest"));

    private async Task<BigInteger> SafeNonceAsync(string safe) => Abi.Uint(await V.Chain.EthCallAsync(safe, Abi.Call("nonce()")));

    /// <summary>
    /// A held Safe transfer that ran once approved: two owner signatures, its execution mined and sent by the software
    /// owner key's address, the recipient paid, the Safe's nonce now 1.
    /// </summary>
    private async Task AssertFirstTransferMinedAsync(JsonNode result, string softAddress, string recipient, BigInteger expectedBalance, string safe)
    {
        Assert.Equal(2, result["signatures"]!.AsArray().Count);
        JsonNode receipt = await V.Chain.ReceiptAsync(result["execution"]!["hash"]!.GetValue<string>());
        Assert.Equal("0x1", receipt["status"]!.GetValue<string>());
        Assert.Equal(softAddress.ToLowerInvariant(), receipt["from"]!.GetValue<string>());
        Assert.Equal(expectedBalance, await BalanceAsync(recipient));
        Assert.Equal(BigInteger.One, await SafeNonceAsync(safe));
    }

    /// <summary>Deploys a 2-of-2 Safe of two fresh keys through the API, funded with 10 ether; its name, address and the keys.</summary>
    private async Task<(string Name, string Address, string Soft, string SoftAddress, string Hsm, string HsmId)> DeployedPairAsync()
    {
        (string soft, string softAddress, _) = await V.CreateFundedKeyAsync("ecdsa-secp256k1");
        (string hsm, _, string hsmId) = await V.CreateFundedKeyAsync("hsm-ecdsa-secp256k1");
        string name = "pair-" + Guid.NewGuid().ToString("N")[..8];
        (HttpStatusCode status, JsonNode? body) = await Post("/v1/safes", Deploy(name, [soft, hsm], 2, $$"""{"deployer":"{{soft}}"}"""));
        Assert.True(status == HttpStatusCode.Created, body?.ToJsonString());
        string address = body!["address"]!.GetValue<string>();
        await V.Chain.Call("anvil_setBalance", address, "0x8AC7230489E80000"); // 10 ether
        return (name, address, soft, softAddress, hsm, hsmId);
    }

    [Fact]
    public async Task A_Safe_deployed_through_the_API_has_the_requested_owners_and_threshold_and_moves_funds_with_two_of_its_three_owners()
    {
        (string soft, string softAddress, _) = await V.CreateFundedKeyAsync("ecdsa-secp256k1");
        (string hsm, string hsmAddress, _) = await V.CreateFundedKeyAsync("hsm-ecdsa-secp256k1");
        (string deployer, string deployerAddress, _) = await V.CreateFundedKeyAsync("ecdsa-secp256k1");
        (string edKey, _) = await CreateKeyAsync("ed25519");
        string[] owners = [V.KeeperName, soft, hsm];
        string by = $$"""{"deployer":"{{deployer}}"}""";

        // Refused before anything is sent: an unknown deployer, an owner key without an Ethereum address, a threshold out
        // of range, a chain without Safe contracts, both address and deploy, a singleton that is not a Safe (the chain refuses).
        (HttpStatusCode status, JsonNode? body) = await Post("/v1/safes", Deploy("t", owners, 2, """{"deployer":"no-such-key"}"""));
        Assert.True(status == HttpStatusCode.NotFound, body?.ToJsonString());
        Assert.Equal(P + "unknown-key", body!["type"]!.GetValue<string>());
        (status, body) = await Post("/v1/safes", Deploy("t", [V.KeeperName, edKey], 1, by));
        Assert.True(status == HttpStatusCode.BadRequest, body?.ToJsonString());
        Assert.Equal(P + "unsupported", body!["type"]!.GetValue<string>());
        (status, body) = await Post("/v1/safes", Deploy("t", owners, 4, by));
        Assert.True(status == HttpStatusCode.BadRequest, body?.ToJsonString());
        Assert.Equal(P + "invalid-request", body!["type"]!.GetValue<string>());
        (status, body) = await Post("/v1/safes", Deploy("t", owners, 0, by));
        Assert.Equal(P + "invalid-request", body!["type"]!.GetValue<string>());
        (status, body) = await Post("/v1/safes", Deploy("t", owners, 2, by, ExampleVenue.ChainWithoutSafeContracts));
        Assert.True(status == HttpStatusCode.BadRequest, body?.ToJsonString());
        Assert.Equal(P + "safe-contracts-unknown", body!["type"]!.GetValue<string>());
        (status, body) = await Post("/v1/safes",
            $$"""{"name":"t","chainId":31337,"address":"{{V.Engine}}","owners":{{JsonList(owners)}},"threshold":2,"deploy":{{by}}}""");
        Assert.Equal(P + "invalid-request", body!["type"]!.GetValue<string>());
        (status, body) = await Post("/v1/safes", Deploy("t", owners, 2, $$"""{"deployer":"{{deployer}}","singleton":"{{V.Engine}}"}"""));
        Assert.True(status == HttpStatusCode.UnprocessableEntity, body?.ToJsonString());
        Assert.Equal(P + "chain-refused", body!["type"]!.GetValue<string>());
        Assert.Equal(0, await V.Chain.TransactionCountAsync(deployerAddress, "pending"));
        using (HttpResponseMessage none = await V.Http.GetAsync("/v1/safes/t"))
        {
            Assert.Equal(HttpStatusCode.NotFound, none.StatusCode);
        }

        // Deployed by the deployer key through the proxy factory named in server.json, then registered.
        (status, body) = await Post("/v1/safes", Deploy("deployed", owners, 2, by));
        Assert.True(status == HttpStatusCode.Created, body?.ToJsonString());
        string safe = body!["address"]!.GetValue<string>().ToLowerInvariant();
        JsonNode deployment = body["deployment"]!;
        Assert.Equal(V.SafeAddresses.Factory.ToLowerInvariant(), deployment["proxyFactory"]!.GetValue<string>());
        JsonNode receipt = await V.Chain.ReceiptAsync(deployment["transaction"]!.GetValue<string>());
        Assert.Equal("0x1", receipt["status"]!.GetValue<string>());
        Assert.Equal(deployerAddress.ToLowerInvariant(), receipt["from"]!.GetValue<string>());
        Assert.Equal(V.SafeAddresses.Factory.ToLowerInvariant(), receipt["to"]!.GetValue<string>());

        // The chain says what the request asked: getOwners (in the order given) and getThreshold.
        byte[] onChainOwners = await V.Chain.EthCallAsync(safe, Abi.Call("getOwners()"));
        Assert.Equal(3, (int)Abi.Uint(onChainOwners, 1));
        Assert.Equal(new[] { V.KeeperAddress, softAddress, hsmAddress }.Select(a => a.ToLowerInvariant()),
            Enumerable.Range(0, 3).Select(i => "0x" + Convert.ToHexStringLower(onChainOwners.AsSpan(64 + (32 * i) + 12, 20))));
        Assert.Equal(2, (int)Abi.Uint(await V.Chain.EthCallAsync(safe, Abi.Call("getThreshold()"))));
        using (HttpResponseMessage got = await V.Http.GetAsync("/v1/safes/deployed"))
        {
            Assert.Equal(HttpStatusCode.OK, got.StatusCode);
            Assert.Equal(2, JsonNode.Parse(await got.Content.ReadAsStringAsync())!["threshold"]!.GetValue<int>());
        }

        // The same name again, or the same salt nonce under another name (the Safe would land where one already is): 409, nothing sent.
        long sentBefore = await V.Chain.TransactionCountAsync(deployerAddress, "pending");
        (status, body) = await Post("/v1/safes", Deploy("deployed", owners, 2, by));
        Assert.Equal(P + "safe-exists", body!["type"]!.GetValue<string>());
        (status, body) = await Post("/v1/safes", Deploy("deployed-again", owners, 2,
            $$"""{"deployer":"{{deployer}}","saltNonce":"{{deployment["saltNonce"]!.GetValue<string>()}}"}"""));
        Assert.True(status == HttpStatusCode.Conflict, body?.ToJsonString());
        Assert.Equal(P + "safe-exists", body!["type"]!.GetValue<string>());
        Assert.Equal(sentBefore, await V.Chain.TransactionCountAsync(deployerAddress, "pending"));

        // Two of its three owners move 0.25 ether out of it: the software key and the HSM key sign, the HSM key executes.
        await V.Chain.Call("anvil_setBalance", safe, "0xDE0B6B3A7640000"); // 1 ether
        string recipient = V.Accounts[7];
        BigInteger before = await BalanceAsync(recipient);
        (status, body) = await Post("/v1/safes/deployed/transactions", Transfer(recipient, Abi.Wei("0.25").ToString(System.Globalization.CultureInfo.InvariantCulture), hsm, soft, hsm));
        Assert.True(status == HttpStatusCode.OK, body?.ToJsonString());
        receipt = await V.Chain.ReceiptAsync(body!["execution"]!["hash"]!.GetValue<string>());
        Assert.Equal("0x1", receipt["status"]!.GetValue<string>());
        Assert.Equal(before + Abi.Wei("0.25"), await BalanceAsync(recipient));
        Assert.Equal(BigInteger.One, await SafeNonceAsync(safe));
    }

    [Fact]
    public async Task A_Safe_transaction_that_needs_approval_is_held_runs_once_approved_and_never_reaches_the_chain_when_rejected_or_expired()
    {
        (string name, string safe, string soft, string softAddress, string hsm, string hsmId) = await DeployedPairAsync();
        string softId = (await GetKeyAsync(soft))["id"]!.GetValue<string>();

        // Policy: a transfer signed by the HSM key needs one of two treasury approvers (the starter policy grants it otherwise).
        await PolicyEnforcementTests.PutPolicyAsync(V.Http, V.Cluster.App.Services, $$$"""
            {"id":"treasury-approvals","version":1,"rules":[{"id":"hsm-transfers","effect":"require-approval","match":{"keys":["{{{hsmId}}}"],"operations":["transfer"]},
             "approval":{"mode":"or","groups":[{"name":"treasury","members":["treasury-approver-1","treasury-approver-2"],"k":1}],"ttlSeconds":600}}]}
            """);
        ApprovalService approvals = V.Cluster.App.Services.GetRequiredService<ApprovalService>();
        string recipient = V.Accounts[8];
        string route = $"/v1/safes/{name}/transactions";
        try
        {
            // Held: 202 with the request id; nothing signed or sent yet (the software key sent only the deployment so far).
            BigInteger before = await BalanceAsync(recipient);
            long softSent = await V.Chain.TransactionCountAsync(softAddress, "pending");
            (HttpStatusCode status, JsonNode? body) = await Post(route, Transfer(recipient, "1000", soft, soft, hsm));
            Assert.True(status == HttpStatusCode.Accepted, body?.ToJsonString());
            string id = body!["requestId"]!.GetValue<string>();
            Assert.Equal("pending", body["status"]!.GetValue<string>());
            Assert.Equal("require-approval", body["policy"]!["decision"]!.GetValue<string>());
            Assert.Equal(softSent, await V.Chain.TransactionCountAsync(softAddress, "pending"));

            // One approver approves: the Safe transaction runs (the other owner's signature and the execution decided now),
            // and the request's result is what the route would have answered.
            JsonObject done = await approvals.VoteAsync(PolicyEnforcementTests.PolicyApprover("treasury-approver-1"), id, true, body["requestHash"]!.GetValue<string>(),
                body["policy"]!["policyHash"]!.GetValue<string>(), "{}"u8.ToArray(), CancellationToken.None);
            Assert.True(done["status"]!.GetValue<string>() == "executed", done.ToJsonString());
            JsonNode result = done["result"]!;
            Assert.Equal("0", result["nonce"]!.GetValue<string>());
            await AssertFirstTransferMinedAsync(result, softAddress, recipient, before + 1000, safe);

            // Rejected: final, and nothing reaches the chain.
            (status, body) = await Post(route, Transfer(recipient, "2000", soft, soft, hsm));
            Assert.True(status == HttpStatusCode.Accepted, body?.ToJsonString());
            id = body!["requestId"]!.GetValue<string>();
            done = await approvals.VoteAsync(PolicyEnforcementTests.PolicyApprover("treasury-approver-2"), id, false, body["requestHash"]!.GetValue<string>(),
                body["policy"]!["policyHash"]!.GetValue<string>(), "{}"u8.ToArray(), CancellationToken.None);
            Assert.Equal("rejected", done["status"]!.GetValue<string>());

            // Expired: past its 600 s, the request is expired and takes no vote; nothing reaches the chain.
            (status, body) = await Post(route, Transfer(recipient, "3000", soft, soft, hsm));
            Assert.True(status == HttpStatusCode.Accepted, body?.ToJsonString());
            id = body!["requestId"]!.GetValue<string>();
            var later = new ApprovalService(V.Cluster.App.Services.GetRequiredService<Conclave.Storage.IConclaveStore>(), V.Cluster.App.Services.GetRequiredService<PolicyGate>(),
                new PolicyEnforcementTests.ShiftedTime(TimeSpan.FromSeconds(601)));
            Assert.Equal("expired", (await later.GetAsync(id, CancellationToken.None))!["status"]!.GetValue<string>());

            await Task.Delay(1500); // a block or so: anything sent would be mined by now
            Assert.Equal(softSent + 1, await V.Chain.TransactionCountAsync(softAddress, "pending"));
            Assert.Equal(BigInteger.One, await SafeNonceAsync(safe));
            Assert.Equal(before + 1000, await BalanceAsync(recipient));

            // Both owners' signatures (and the software key's execution) need approval, from two groups: one request,
            // pending until both groups approved, then run.
            await PolicyEnforcementTests.PutPolicyAsync(V.Http, V.Cluster.App.Services, $$$"""
                {"id":"treasury-approvals","version":2,"rules":[{"id":"hsm-transfers","effect":"require-approval","match":{"keys":["{{{hsmId}}}"],"operations":["transfer"]},
                 "approval":{"mode":"or","groups":[{"name":"treasury","members":["treasury-approver-1","treasury-approver-2"],"k":1}],"ttlSeconds":600}},
                 {"id":"soft-transfers","effect":"require-approval","match":{"keys":["{{{softId}}}"],"operations":["transfer"]},
                 "approval":{"mode":"or","groups":[{"name":"operations","members":["ops-approver-1"],"k":1}],"ttlSeconds":600}}]}
                """);
            (status, body) = await Post(route, Transfer(recipient, "4000", soft, soft, hsm));
            Assert.True(status == HttpStatusCode.Accepted, body?.ToJsonString());
            id = body!["requestId"]!.GetValue<string>();
            string requestHash = body["requestHash"]!.GetValue<string>();
            string policyHash = body["policy"]!["policyHash"]!.GetValue<string>();
            done = await approvals.VoteAsync(PolicyEnforcementTests.PolicyApprover("treasury-approver-1"), id, true, requestHash, policyHash, "{}"u8.ToArray(), CancellationToken.None);
            Assert.Equal("pending", done["status"]!.GetValue<string>());
            Assert.Equal(BigInteger.One, await SafeNonceAsync(safe));
            done = await approvals.VoteAsync(PolicyEnforcementTests.PolicyApprover("ops-approver-1"), id, true, requestHash, policyHash, "{}"u8.ToArray(), CancellationToken.None);
            Assert.True(done["status"]!.GetValue<string>() == "executed", done.ToJsonString());
            Assert.Equal("0x1", (await V.Chain.ReceiptAsync(done["result"]!["execution"]!["hash"]!.GetValue<string>()))["status"]!.GetValue<string>());
            Assert.Equal(before + 5000, await BalanceAsync(recipient));
            Assert.Equal(new BigInteger(2), await SafeNonceAsync(safe));
        }
        finally
        {
            await PolicyEnforcementTests.PutPolicyAsync(V.Http, V.Cluster.App.Services,
                """{"id":"treasury-approvals","version":3,"rules":[{"id":"hsm-transfers","effect":"deny","match":{"keys":["none"],"operations":["transfer"]}}]}""");
        }
    }

    [Fact]
    public async Task A_velocity_limit_counts_a_Safe_transaction_once_per_owner_signature_and_once_for_its_execution()
    {
        (string name, string safe, string soft, string softAddress, string hsm, string hsmId) = await DeployedPairAsync();
        string softId = (await GetKeyAsync(soft))["id"]!.GetValue<string>();
        string recipient = V.Accounts[6];
        string route = $"/v1/safes/{name}/transactions";
        string signOnly = $$"""{"to":"{{recipient}}","value":"5","signers":["{{soft}}"]}""";

        // The starter policy without transfers for these two keys; a rule granting them 4 transfers an hour, shared.
        JsonNode starter;
        using (HttpResponseMessage got = await V.Http.GetAsync("/v1/policies/starter"))
        {
            starter = JsonNode.Parse(await got.Content.ReadAsStringAsync())!;
        }

        long version = starter["version"]!.GetValue<long>();
        string original = starter["document"]!.ToJsonString();
        await PolicyEnforcementTests.PutPolicyAsync(V.Http, V.Cluster.App.Services, $$$"""
            {"id":"pair-limit","version":1,"rules":[{"id":"pair-transfers","effect":"allow","match":{"principals":["admin"],"keys":["{{{softId}}}","{{{hsmId}}}"],"operations":["transfer"]},
             "limits":{"velocity":[{"id":"hour","windowSeconds":3600,"count":4,"scope":"shared"}]}}]}
            """);
        await PolicyEnforcementTests.PutPolicyAsync(V.Http, V.Cluster.App.Services, StarterWithout(original, version + 1, "transfer"));
        try
        {
            // Two signatures and the execution: three of the four.
            string first = Transfer(recipient, "5", soft, soft, hsm);
            (HttpStatusCode status, JsonNode? body) = await Post(route, first);
            Assert.True(status == HttpStatusCode.OK, body?.ToJsonString());
            Assert.Equal("0x1", (await V.Chain.ReceiptAsync(body!["execution"]!["hash"]!.GetValue<string>()))["status"]!.GetValue<string>());

            // The route holds its audit entries (AuditOneCommit): the intent and the first owner signature's allow decision,
            // which reserved one of the four, are consecutive entries of one commit (one commit time).
            using (HttpResponseMessage audit = await V.Http.GetAsync("/v1/audit?last=200"))
            {
                JsonArray entries = JsonNode.Parse(await audit.Content.ReadAsStringAsync())!["entries"]!.AsArray();
                string intentHash = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes("POST\0" + route + "\0" + first)));
                JsonNode intent = entries.Single(e => e!["requestHash"]?.GetValue<string>() == intentHash && e["result"]!.GetValue<string>() == "accepted")!;
                JsonNode decision = entries.Single(e => e!["seq"]!.GetValue<long>() == intent["seq"]!.GetValue<long>() + 1)!;
                Assert.Equal("policy.decide", decision["action"]!.GetValue<string>());
                Assert.Equal("allow", decision["decision"]!.GetValue<string>());
                Assert.Equal(intent["time"]!.GetValue<DateTimeOffset>(), decision["time"]!.GetValue<DateTimeOffset>());
            }

            // The next one needs three more: the first signature takes the fourth, the second is denied, nothing is signed,
            // and the fourth is given back.
            long pending = await V.Chain.TransactionCountAsync(softAddress, "pending");
            (status, body) = await Post(route, Transfer(recipient, "5", soft, soft, hsm));
            Assert.True(status == HttpStatusCode.Forbidden, body?.ToJsonString());
            Assert.Equal(P + "policy-denied", body!["type"]!.GetValue<string>());
            Assert.Equal(pending, await V.Chain.TransactionCountAsync(softAddress, "pending"));
            Assert.Equal(BigInteger.One, await SafeNonceAsync(safe));

            // One signature without execution fits (the fourth); then the limit is spent.
            (status, body) = await Post(route, signOnly);
            Assert.True(status == HttpStatusCode.OK, body?.ToJsonString());
            (status, body) = await Post(route, signOnly);
            Assert.True(status == HttpStatusCode.Forbidden, body?.ToJsonString());
        }
        finally
        {
            await PolicyEnforcementTests.PutPolicyAsync(V.Http, V.Cluster.App.Services, WithVersion(original, version + 2));
            await PolicyEnforcementTests.PutPolicyAsync(V.Http, V.Cluster.App.Services,
                """{"id":"pair-limit","version":2,"rules":[{"id":"pair-transfers","effect":"deny","match":{"keys":["none"],"operations":["transfer"]}}]}""");
        }
    }

    /// <summary>The starter policy at <paramref name="version"/> with <paramref name="operation"/> taken out of every rule's operations.</summary>
    private static string StarterWithout(string original, long version, string operation)
    {
        JsonObject doc = JsonNode.Parse(original)!.AsObject();
        doc["version"] = version;
        foreach (JsonNode? rule in doc["rules"]!.AsArray())
        {
            if (rule!["match"]?["operations"] is JsonArray ops)
            {
                foreach (JsonNode? op in ops.Where(o => o!.GetValue<string>() == operation).ToList())
                {
                    ops.Remove(op);
                }
            }
        }

        return doc.ToJsonString();
    }

    private static string WithVersion(string original, long version)
    {
        JsonObject doc = JsonNode.Parse(original)!.AsObject();
        doc["version"] = version;
        return doc.ToJsonString();
    }

    private async Task<JsonNode> GetKeyAsync(string name)
    {
        using HttpResponseMessage r = await V.Http.GetAsync($"/v1/keys/{name}");
        return JsonNode.Parse(await r.Content.ReadAsStringAsync())!;
    }

    private async Task<(string Name, string Id)> CreateKeyAsync(string scheme)
    {
        string name = "venue-" + Guid.NewGuid().ToString("N")[..8];
        (HttpStatusCode status, JsonNode? body) = await Post("/v1/keys", $$"""{"name":"{{name}}","scheme":"{{scheme}}"}""");
        Assert.True(status == HttpStatusCode.Created, body?.ToJsonString());
        return (name, body!["id"]!.GetValue<string>());
    }
}
