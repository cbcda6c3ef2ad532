using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Conclave.Policy.Operations;
using Conclave.Policy.Venues;
using Conclave.Server.Api;
using Conclave.Server.Config;
using Conclave.Server.Hosting;
using Conclave.Server.Policy;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

using static Conclave.Server.Tests.PolicyEnforcementTests;

namespace Conclave.Server.Tests;

/// <summary>
/// Venue profiles in the store, changed through the API (docs/POLICY.md "Venue profiles in the store"): a put is held
/// like a loosening policy change and, once approved, classifies the next request without a restart, on this server and
/// on a replica sharing its PostgreSQL database; bad profiles are 400 problems, non-admins 403.
/// </summary>
public sealed class VenueProfileApiTests
{
    private const string Perp = "0x00000000000000000000000000000000000000aa";

    private const string Profile = """
        {"venue":"perpx","chainId":1,"contract":"0x00000000000000000000000000000000000000AA","priceSource":"ETH-USD",
         "operations":{"liquidate":{"function":"liquidate(address account, uint256 amount)","amount":"amount","decimals":{"amount":18}}}}
        """;

    /// <summary>Allows the admin to liquidate on perpx up to 100 per transaction; nothing else (no raw digests).</summary>
    private const string LiquidatePolicy = """
        {"id":"starter","version":2,"rules":[{"id":"liq","effect":"allow","match":{"principals":["admin"],"operations":["liquidate"],"venues":["perpx"]},
          "limits":{"perTransaction":{"native":100}}}]}
        """;

    /// <summary>An eth_signTransaction call of liquidate(account, amount) on the perpx contract, its calldata built from <see cref="Profile"/>.</summary>
    private static string LiquidateCall(string from, string amount)
    {
        using JsonDocument args = JsonDocument.Parse($$"""{"account":"0x1111111111111111111111111111111111111111","amount":"{{amount}}"}""");
        byte[] data = new VenueRegistry([VenueProfile.Parse(Profile)]).Build(OperationKind.Liquidate, "perpx", args.RootElement).Calldata;
        return $$"""[{"from":"{{from}}","to":"{{Perp}}","data":"0x{{Convert.ToHexStringLower(data)}}","chainId":"0x1","nonce":"0x0","gas":"0x30000","gasPrice":"0x1"}]""";
    }

    private static async Task<JsonNode> RpcAsync(HttpClient http, string method, string @params)
    {
        var r = await SendAsync(http, HttpMethod.Post, "/rpc", $$"""{"jsonrpc":"2.0","id":1,"method":"{{method}}","params":{{@params}}}""");
        Assert.True(r.Status == HttpStatusCode.OK, r.Text);
        return r.Body!;
    }

    private static async Task<(HttpStatusCode Status, JsonNode? Body, string Text)> PutProfileAsync(HttpClient http, string venue, string profile) =>
        await SendAsync(http, HttpMethod.Put, $"/v1/venue-profiles/{venue}", profile);

    [Fact]
    public async Task A_profile_put_through_the_api_is_held_then_classifies_the_next_request_without_a_restart()
    {
        await using PolicyServer s = await PolicyServer.StartAsync();
        (string key, string address) = await CreateKeyAsync(s.Http);
        await PutPolicyAsync(s, LiquidatePolicy);

        // No profile: the liquidation is a raw digest the policy does not allow, and a typed liquidation cannot be built.
        JsonNode before = await RpcAsync(s.Http, "eth_signTransaction", LiquidateCall(address, "5"));
        Assert.True(before["error"]?["code"]?.GetValue<int>() == -32001, before.ToJsonString());
        Assert.Equal(HttpStatusCode.NotFound, (await SendAsync(s.Http, HttpMethod.Get, "/v1/venue-profiles/perpx")).Status);

        // Put: held for the change approvers as a loosening (quorum, time lock), not in force yet.
        var held = await PutProfileAsync(s.Http, "perpx", Profile);
        Assert.True(held.Status == HttpStatusCode.Accepted, held.Text);
        Assert.Equal("pending", held.Body!["status"]!.GetValue<string>());
        Assert.Equal(ApprovalService.VenueProfileChangeRoute, held.Body!["operation"]!.GetValue<string>());
        Assert.Equal("loosening", held.Body!["change"]!["kind"]!.GetValue<string>());
        Assert.Equal(2, held.Body!["change"]!["approvalsNeeded"]!.GetValue<int>());
        Assert.Equal(VenueProfile.Parse(Profile).Hash, held.Body!["policyHash"]!.GetValue<string>());
        JsonNode stillRaw = await RpcAsync(s.Http, "eth_signTransaction", LiquidateCall(address, "5"));
        Assert.Equal(-32001, stillRaw["error"]!["code"]!.GetValue<int>());

        // Approved by two approvers and past the time lock: stored as version 1, and the very next request is a liquidation.
        JsonObject done = await ApprovePolicyChangeAsync(s.App.Services, held.Body!["requestId"]!.GetValue<string>());
        Assert.True(done["status"]!.GetValue<string>() == "executed", done.ToJsonString());
        JsonNode signed = await RpcAsync(s.Http, "eth_signTransaction", LiquidateCall(address, "5"));
        Assert.True(signed["result"] is not null, signed.ToJsonString());
        // Its amount is read through the profile's decimals: 150 is above the rule's limit of 100.
        JsonNode tooMuch = await RpcAsync(s.Http, "eth_signTransaction", LiquidateCall(address, "150"));
        Assert.Equal(-32001, tooMuch["error"]!["code"]!.GetValue<int>());
        Assert.Contains("per-transaction limit of 100", tooMuch["error"]!["message"]!.GetValue<string>(), StringComparison.Ordinal);
        var evaluated = await SendAsync(s.Http, HttpMethod.Post, "/v1/policies/evaluate",
            $$$"""{"key":"{{{key}}}","level":"normal","operation":"liquidate","venue":"perpx","args":{"account":"0x1111111111111111111111111111111111111111","amount":"5"}}""");
        Assert.True(evaluated.Status == HttpStatusCode.OK, evaluated.Text);
        Assert.Equal("allow", evaluated.Body!["levels"]!["normal"]!["decision"]!.GetValue<string>());

        var got = await SendAsync(s.Http, HttpMethod.Get, "/v1/venue-profiles/perpx");
        Assert.True(got.Status == HttpStatusCode.OK, got.Text);
        Assert.Equal((1L, VenueProfile.Parse(Profile).Hash), (got.Body!["version"]!.GetValue<long>(), got.Body!["hash"]!.GetValue<string>()));
        Assert.Equal("perpx", got.Body!["profile"]!["venue"]!.GetValue<string>());
        var list = await SendAsync(s.Http, HttpMethod.Get, "/v1/venue-profiles");
        Assert.Equal(["perpx"], list.Body!["venueProfiles"]!.AsArray().Select(p => p!["venue"]!.GetValue<string>()));
        var audit = await SendAsync(s.Http, HttpMethod.Get, "/v1/audit?last=200");
        string[] actions = [.. audit.Body!["entries"]!.AsArray().Select(e => e!["action"]!.GetValue<string>())];
        Assert.Contains("venue.change.held", actions);
        Assert.Contains("venue.put", actions);

        // The profile in force put again: 409; the same profile written differently has the same hash, so 409 too.
        var again = await PutProfileAsync(s.Http, "perpx", Profile.Replace("uint256 amount", "uint amount", StringComparison.Ordinal));
        Assert.True(again.Status == HttpStatusCode.Conflict, again.Text);
        Assert.Equal(ProblemTypes.VenueProfileUnchanged, again.Body!["type"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("perpx", """{"venue":"perpx","chainId":1,"contract":"0x00000000000000000000000000000000000000aa","operations":{},"extra":1}""", "extra")]
    [InlineData("perpx", """{"venue":"perpx","chainId":1,"contract":"0xnothex","operations":{}}""", "contract")]
    [InlineData("perpx", """{"venue":"perpx","chainId":1,"contract":"0x00000000000000000000000000000000000000aa","operations":{"liquidate":{"function":"liquidate(string s)"}}}""", "function")]
    [InlineData("optx", """{"venue":"perpx","chainId":1,"contract":"0x00000000000000000000000000000000000000aa","operations":{}}""", "path")]
    [InlineData("perpx", "{not json", "JSON")]
    public async Task A_bad_profile_is_a_400_problem_naming_the_field_and_nothing_is_held(string venue, string profile, string named)
    {
        await using PolicyServer s = await PolicyServer.StartAsync();
        var r = await PutProfileAsync(s.Http, venue, profile);
        Assert.True(r.Status == HttpStatusCode.BadRequest, r.Text);
        Assert.Equal(ProblemTypes.InvalidVenueProfile, r.Body!["type"]!.GetValue<string>());
        Assert.Contains(named, r.Body!["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Empty((await SendAsync(s.Http, HttpMethod.Get, "/v1/requests?status=pending")).Body!["requests"]!.AsArray());
    }

    [Fact]
    public async Task Only_an_admin_changes_profiles_and_a_contract_is_described_by_one_venue()
    {
        await using PolicyServer s = await PolicyServer.StartAsync();
        using HttpClient operatorClient = await PolicyApprovalTests.PrincipalClientAsync(s, "olga", "person", """["operator","approver"]""", TestSeed.Bytes(32, "olga key"));
        using HttpClient agent = await PolicyApprovalTests.AgentAsync(s, "bot", """["liquidate"]""");
        foreach (HttpClient caller in new[] { operatorClient, agent })
        {
            var refused = await PutProfileAsync(caller, "perpx", Profile);
            Assert.True(refused.Status == HttpStatusCode.Forbidden, refused.Text);
            Assert.Equal(ProblemTypes.Forbidden, refused.Body!["type"]!.GetValue<string>());
        }

        // The operator reads profiles; the agent does not.
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(operatorClient, HttpMethod.Get, "/v1/venue-profiles")).Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await SendAsync(agent, HttpMethod.Get, "/v1/venue-profiles")).Status);

        // Once perpx describes the contract, another venue naming the same contract on the same chain is refused.
        var held = await PutProfileAsync(s.Http, "perpx", Profile);
        Assert.True((await ApprovePolicyChangeAsync(s.App.Services, held.Body!["requestId"]!.GetValue<string>()))["status"]!.GetValue<string>() == "executed");
        var clash = await PutProfileAsync(s.Http, "optx", Profile.Replace("\"perpx\"", "\"optx\"", StringComparison.Ordinal));
        Assert.True(clash.Status == HttpStatusCode.BadRequest, clash.Text);
        Assert.Contains("perpx", clash.Body!["detail"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public Task A_replica_on_the_same_PostgreSQL_classifies_with_a_profile_another_replica_stored() => OnOnePostgresAsync(async Config =>
    {
        ServerConfig ca = Config(), cb = Config();
        await using WebApplication a = await ServerHost.BuildAsync(ca);
        await a.StartAsync();
        await using WebApplication b = await ServerHost.BuildAsync(cb);
        await b.StartAsync();
        string token = (await File.ReadAllTextAsync(a.Services.GetRequiredService<ServerPaths>().AdminTokenFile)).Trim();
        using HttpClient ha = PolicyServer.Client(ca, token), hb = PolicyServer.Client(cb, token);
        (string _, string address) = await CreateKeyAsync(ha);
        await PutPolicyAsync(ha, a.Services, LiquidatePolicy);
        // Replica b reads the (empty) set of profiles before the change.
        Assert.Equal(-32001, (await RpcAsync(hb, "eth_signTransaction", LiquidateCall(address, "5")))["error"]!["code"]!.GetValue<int>());

        var held = await PutProfileAsync(ha, "perpx", Profile);
        Assert.True(held.Status == HttpStatusCode.Accepted, held.Text);
        Assert.True((await ApprovePolicyChangeAsync(a.Services, held.Body!["requestId"]!.GetValue<string>()))["status"]!.GetValue<string>() == "executed");

        // Stored through a: b's next request (b re-reads at every request here, policyRefreshMilliseconds 0) is a liquidation.
        JsonNode onB = await RpcAsync(hb, "eth_signTransaction", LiquidateCall(address, "5"));
        Assert.True(onB["result"] is not null, onB.ToJsonString());
        Assert.Equal(1L, (await SendAsync(hb, HttpMethod.Get, "/v1/venue-profiles/perpx")).Body!["version"]!.GetValue<long>());
        await b.StopAsync();
        await a.StopAsync();
    }, c => c.PolicyRefreshMilliseconds = 0);
}
