using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Conclave.Chains.Ethereum;
using Conclave.Client;
using Conclave.Policy.HttpSignatures;
using Conclave.Policy.Operations;
using Conclave.Policy.Principals;
using Conclave.Policy.Venues;
using Conclave.Server.Api;
using Conclave.Server.Policy;
using Microsoft.Extensions.DependencyInjection;

using static Conclave.Server.Tests.PolicyEnforcementTests;

namespace Conclave.Server.Tests;

/// <summary>
/// The risk level the posted prices raise, enforced on real signing requests (issue 16 "Tests" → Adaptive): an agent
/// principal signs typed venue operations through <c>POST /v1/keys/{name}/ethereum/transactions</c> (built from the venue
/// profile, signed without sending: fees and nonce given, so the configured upstream is never called) and through
/// <c>/rpc</c> <c>eth_signTransaction</c> (calldata the profile classifies; no chain at all).
/// </summary>
public sealed partial class RiskApiTests
{
    private const string PerpContract = "0x00000000000000000000000000000000000000aa";

    /// <summary>perpx on chain 1: liquidate, release-collateral and hedge, each with an 18-decimal amount.</summary>
    private const string PerpProfile = """
        {"venue":"perpx","chainId":1,"contract":"0x00000000000000000000000000000000000000AA","priceSource":"ETH-USD",
         "operations":{
           "liquidate":{"function":"liquidate(address account, uint256 amount)","amount":"amount","decimals":{"amount":18}},
           "release-collateral":{"function":"releaseCollateral(address account, uint256 amount)","amount":"amount","decimals":{"amount":18}},
           "hedge":{"function":"openPosition(bytes32 market, int256 size, bool reduceOnly)","amount":"size","decimals":{"size":18}}}}
        """;

    /// <summary>
    /// The venue policy with native limits (liquidations up to 100, releases up to 10, hedges up to 50): at elevated
    /// limits are halved and a collateral release needs one of the risk group.
    /// </summary>
    private const string VenuePolicy = """
        {"id":"venue-a","version":1,
         "rules":[
           {"id":"liq","effect":"allow","match":{"roles":["agent"],"operations":["liquidate"],"venues":["perpx"]},"limits":{"perTransaction":{"native":100}}},
           {"id":"release","effect":"allow","match":{"roles":["agent"],"operations":["release-collateral"],"venues":["perpx"]},"limits":{"perTransaction":{"native":10}}},
           {"id":"hedge","effect":"allow","match":{"roles":["agent"],"operations":["hedge"],"venues":["perpx"]},"limits":{"perTransaction":{"native":50}}}],
         "levels":{"elevated":{"limitMultiplier":0.5,"approvalOperations":["release-collateral"]}},
         "levelApproval":{"mode":"or","groups":[{"name":"risk","members":["alice","bob"],"k":1}],"ttlSeconds":600}}
        """;

    private const string Account = "0x1111111111111111111111111111111111111111";

    private static readonly string Market = "0x" + new string('e', 64);

    /// <summary>A typed venue operation for the REST transaction route: built from the profile, signed, not sent.</summary>
    private static string TypedTransaction(string operation, string args) =>
        $$"""{"operation":"{{operation}}","venue":"perpx","args":{{args}},"gas":"200000","maxFeePerGas":"30000000000","maxPriorityFeePerGas":"1000000000","nonce":"7","send":false}""";

    private static string HedgeArgs(string size) => $$"""{"market":"{{Market}}","size":"{{size}}","reduceOnly":false}""";

    /// <summary>An <c>eth_signTransaction</c> call of releaseCollateral(account, amount) to the perpx contract, its calldata built from the profile.</summary>
    private static string ReleaseCall(string from, string amount)
    {
        using JsonDocument args = JsonDocument.Parse($$"""{"account":"{{Account}}","amount":"{{amount}}"}""");
        byte[] data = new VenueRegistry([VenueProfile.Parse(PerpProfile)]).Build(OperationKind.ReleaseCollateral, "perpx", args.RootElement).Calldata;
        return $$"""{"jsonrpc":"2.0","id":1,"method":"eth_signTransaction","params":[{"from":"{{from}}","to":"{{PerpContract}}","data":"0x{{Convert.ToHexStringLower(data)}}","chainId":"0x1","nonce":"0x0","gas":"0x30000","gasPrice":"0x1"}]}""";
    }

    /// <summary>The raw transaction of a 200 answer decoded: it verifies, recovers to <paramref name="address"/> and carries the profile's calldata for <paramref name="operation"/>.</summary>
    private static void AssertSignedBy(string address, string rawHex, OperationKind operation, string args)
    {
        SignedEthereumTransaction tx = SignedEthereumTransaction.Decode(Convert.FromHexString(rawHex[2..]));
        Assert.Equal(address, tx.SenderAddress);
        using JsonDocument a = JsonDocument.Parse(args);
        byte[] expected = new VenueRegistry([VenueProfile.Parse(PerpProfile)]).Build(operation, "perpx", a.RootElement).Calldata;
        Assert.Equal(Convert.ToHexStringLower(expected), Convert.ToHexStringLower(tx.Transaction.Data));
    }

    private static async Task<string> TransactionSignedAsync(HttpClient agent, string key, string address, OperationKind operation, string args)
    {
        var r = await SendAsync(agent, HttpMethod.Post, $"/v1/keys/{key}/ethereum/transactions", TypedTransaction(Operations.Name(operation), args));
        Assert.True(r.Status == HttpStatusCode.OK, r.Text);
        Assert.False(r.Body!["sent"]!.GetValue<bool>());
        AssertSignedBy(address, r.Body!["raw"]!.GetValue<string>(), operation, args);
        return r.Body!["policy"]!["rules"]!.AsArray().Single()!.GetValue<string>();
    }

    private static async Task AssertHedgeRefusedAsync(HttpClient agent, string key, string size, string limit)
    {
        var r = await SendAsync(agent, HttpMethod.Post, $"/v1/keys/{key}/ethereum/transactions", TypedTransaction("hedge", HedgeArgs(size)));
        Assert.True(r.Status == HttpStatusCode.Forbidden, r.Text);
        Assert.Equal(ProblemTypes.PolicyDenied, r.Body!["type"]!.GetValue<string>());
        Assert.Null(r.Body!["raw"]);
        Assert.Contains(r.Body!["policy"]!["reasons"]!.AsArray(), x => x!.GetValue<string>().Contains($"rule hedge: amount exceeds the per-transaction limit of {limit}", StringComparison.Ordinal));
    }

    /// <summary>
    /// Issue 16 "Adaptive", end to end: before the spike the agent's hedge of 30 and collateral release of 4 are signed.
    /// The spike posted to /v1/risk/prices raises the level to elevated on that request, and the very next requests,
    /// without a restart, get what that level says: a liquidation of 80 is signed (the transaction verifies and recovers
    /// to the key), a release of 4 is held for approval (on /rpc the JSON-RPC error -32002 with the request id; signed
    /// once one of the risk group approves), a hedge of 30 is refused 403 naming the halved limit of 25 (one of 20 is
    /// signed). The level does not fall before the cool-down: at minutes 59 and 88 the hedge of 30 is still refused; at
    /// minute 89 the level is normal and the same hedge is signed.
    /// </summary>
    [Fact]
    public async Task After_a_spike_the_next_liquidation_is_signed_a_release_held_and_a_hedge_over_the_shrunken_limit_refused_until_the_cool_down()
    {
        var clock = new ManualClock(T0);
        string dir = NewDir();
        await using Server s = await StartAsync(dir, clock, c =>
        {
            string policyFile = Path.Combine(dir, "venue-a-policy.json");
            string profileFile = Path.Combine(dir, "perpx-profile.json");
            File.WriteAllText(policyFile, VenuePolicy);
            File.WriteAllText(profileFile, PerpProfile);
            c.StarterPolicy = policyFile; // installed at start, as a development server's starter policy is
            c.VenueProfiles = [profileFile];
            c.Upstreams = new() { ["1"] = "http://127.0.0.1:9" }; // the transaction route needs one for chain 1; never called here
        });
        (string key, string address) = await CreateKeyAsync(s.Http);
        string keyId = (await SendAsync(s.Http, HttpMethod.Get, $"/v1/keys/{key}")).Body!["id"]!.GetValue<string>();
        using HttpClient bot = await RiskAgentAsync(s, "bot", keyId);
        await PostPricesAsync(s, Calm(T0.AddMinutes(-59), T0));

        // Normal: a hedge of 30 (limit 50) and a release of 4 (limit 10) are signed.
        Assert.Equal("venue-a/hedge", await TransactionSignedAsync(bot, key, address, OperationKind.Hedge, HedgeArgs("30")));
        var release = await SendAsync(bot, HttpMethod.Post, "/rpc", ReleaseCall(address, "4"));
        Assert.True(release.Body?["result"] is not null, release.Text);
        Assert.Equal(address, SignedEthereumTransaction.Decode(Convert.FromHexString(release.Body!["result"]!.GetValue<string>()[2..])).SenderAddress);

        // The spike: elevated on the request that posts it, nobody sets anything.
        clock.Now = T0.AddMinutes(1);
        Assert.Equal("elevated", (await PostPricesAsync(s, "{\"samples\":[" + Sample(T0.AddMinutes(1), 2000m * 0.94m) + "]}"))["level"]!.GetValue<string>());

        // The next liquidation is still signed (risk-reducing: its base limit of 100 at every level).
        Assert.Equal("venue-a/liq", await TransactionSignedAsync(bot, key, address, OperationKind.Liquidate, $$"""{"account":"{{Account}}","amount":"80"}"""));

        // The same release is now held for approval; nothing is signed until one of the risk group approves it.
        var held = await SendAsync(bot, HttpMethod.Post, "/rpc", ReleaseCall(address, "4"));
        Assert.True(held.Status == HttpStatusCode.OK, held.Text);
        Assert.Null(held.Body!["result"]);
        Assert.Equal(EthereumRpc.HeldForApprovalCode, held.Body!["error"]!["code"]!.GetValue<int>());
        JsonNode data = held.Body!["error"]!["data"]!;
        Assert.Equal("require-approval", data["policy"]!["decision"]!.GetValue<string>());
        string requestId = data["requestId"]!.GetValue<string>();
        var pending = await SendAsync(bot, HttpMethod.Get, $"/v1/requests/{requestId}");
        Assert.Equal(("pending", "release-collateral"), (pending.Body!["status"]!.GetValue<string>(), pending.Body!["operation"]!.GetValue<string>()));
        ApprovalService approvals = s.App.Services.GetRequiredService<ApprovalService>();
        var alice = new CallerIdentity(new Principal("alice", PrincipalKind.Person, [Role.Approver], PrincipalScope.Nothing), AuthMethod.HttpSignature, "cred-alice");
        JsonObject approved = await approvals.VoteAsync(alice, requestId, true, data["requestHash"]!.GetValue<string>(), data["policy"]!["policyHash"]!.GetValue<string>(),
            "{}"u8.ToArray(), CancellationToken.None);
        Assert.True(approved["status"]!.GetValue<string>() == "executed", approved.ToJsonString());
        Assert.Equal(address, SignedEthereumTransaction.Decode(Convert.FromHexString(approved["result"]!["result"]!.GetValue<string>()[2..])).SenderAddress);

        // A hedge above the halved limit is refused, naming it; one within it is still signed.
        await AssertHedgeRefusedAsync(bot, key, "30", "25");
        Assert.Equal("venue-a/hedge", await TransactionSignedAsync(bot, key, address, OperationKind.Hedge, HedgeArgs("20")));

        // The level does not fall before the cool-down: the spike stays in the one-hour window until minute 59, and
        // the level holds 30 minutes after that.
        clock.Now = T0.AddMinutes(59);
        await PostPricesAsync(s, Calm(T0.AddMinutes(2), clock.Now, 1880m));
        Assert.Equal("elevated", (await s.RiskAsync())["level"]!.GetValue<string>());
        await AssertHedgeRefusedAsync(bot, key, "30", "25");
        clock.Now = T0.AddMinutes(88);
        await PostPricesAsync(s, Calm(T0.AddMinutes(60), clock.Now, 1880m));
        JsonNode cooling = await s.RiskAsync();
        Assert.Equal(("elevated", "normal"), (cooling["level"]!.GetValue<string>(), cooling["inputs"]!["demanded"]!.GetValue<string>()));
        await AssertHedgeRefusedAsync(bot, key, "30", "25");

        clock.Now = T0.AddMinutes(89);
        Assert.Equal("normal", (await PostPricesAsync(s, "{\"samples\":[" + Sample(clock.Now, 1880m) + "]}"))["level"]!.GetValue<string>());
        Assert.Equal("venue-a/hedge", await TransactionSignedAsync(bot, key, address, OperationKind.Hedge, HedgeArgs("30")));

        // Each decision was audited as the agent's, at the level in force: three hedges of 30 denied, none allowed while elevated.
        List<JsonNode> audit = await AuditAsync(s);
        Assert.Equal(3, audit.Count(e => e["action"]!.GetValue<string>() == "policy.decide" && e["actor"]!.GetValue<string>() == "bot"
            && e["decision"]!.GetValue<string>() == "deny" && e["result"]!.GetValue<string>().StartsWith("hedge ", StringComparison.Ordinal)));
        Assert.Contains(audit, e => e["action"]!.GetValue<string>() == "request.held" && e["actor"]!.GetValue<string>() == "bot");
    }

    /// <summary>An agent principal <paramref name="id"/> scoped to the key <paramref name="keyId"/>, and an HTTP client signing every request as it (RFC 9421).</summary>
    private static async Task<HttpClient> RiskAgentAsync(Server s, string id, string keyId)
    {
        var created = await s.SendAsync(HttpMethod.Post, "/v1/principals", $$$"""{"id":"{{{id}}}","kind":"agent","scope":{"keys":["{{{keyId}}}"],"labels":[],"operations":["*"]}}""");
        Assert.True(created.Status == HttpStatusCode.Created, created.Text);
        var signingKey = HttpSigningKey.Ed25519FromSeed(TestSeed.Bytes(32, "risk agent " + id));
        var cred = await s.SendAsync(HttpMethod.Post, $"/v1/principals/{id}/credentials",
            $$"""{"algorithm":"ed25519","publicKey":"{{Convert.ToBase64String([.. signingKey.PublicKey.PublicKey])}}"}""");
        Assert.True(cred.Status == HttpStatusCode.Created, cred.Text);
        var handler = new AgentSigningHandler(signingKey, cred.Body!["keyId"]!.GetValue<string>()) { InnerHandler = new HttpClientHandler() };
        return new HttpClient(handler, disposeHandler: true) { BaseAddress = new Uri(s.BaseUrl) };
    }
}
