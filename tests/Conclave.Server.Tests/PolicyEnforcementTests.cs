using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Conclave.Crypto.Signing;
using Conclave.Policy.Principals;
using Conclave.Server.Api;
using Conclave.Server.Config;
using Conclave.Server.Hosting;
using Conclave.Server.Policy;
using Conclave.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace Conclave.Server.Tests;

/// <summary>
/// Policy enforcement on the signing routes (issue 16, docs/POLICY.md "Enforcement"): the starter policy of a
/// development server, allowed and denied requests with their explanation on every signing route, raw digests only by
/// an explicit rule, velocity limits reserved atomically (one server, two replicas on one PostgreSQL, a restart), the
/// policy routes, and admin signing turned off. Each test runs a nodeless server of its own (policies are global).
/// </summary>
public sealed class PolicyEnforcementTests
{
    private const string To = "0x3535353535353535353535353535353535353535";

    internal sealed class PolicyServer : IAsyncDisposable
    {
        private readonly string _dir;

        private PolicyServer(WebApplication app, ServerConfig config, string dir, string token)
        {
            App = app;
            Config = config;
            _dir = dir;
            Http = Client(config, token);
        }

        public WebApplication App { get; }

        public ServerConfig Config { get; }

        public HttpClient Http { get; }

        public static HttpClient Client(ServerConfig config, string token)
        {
            var http = new HttpClient { BaseAddress = new Uri("http://" + config.Listen), Timeout = TimeSpan.FromMinutes(3) };
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
            return http;
        }

        public static async Task<PolicyServer> StartAsync(Action<ServerConfig>? configure = null)
        {
            (WebApplication app, ServerConfig config, string dir, string token) = await NodelessServer.StartAsync(configure);
            return new PolicyServer(app, config, dir, token);
        }

        public async ValueTask DisposeAsync()
        {
            Http.Dispose();
            await NodelessServer.StopAsync(App, _dir);
        }
    }

    internal static async Task<(HttpStatusCode Status, JsonNode? Body, string Text)> SendAsync(HttpClient http, HttpMethod method, string path, string? json = null)
    {
        using var req = new HttpRequestMessage(method, path) { Content = json is null ? null : new StringContent(json, Encoding.UTF8, "application/json") };
        using HttpResponseMessage r = await http.SendAsync(req);
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

    internal static async Task<(string Name, string Address)> CreateKeyAsync(HttpClient http, string scheme = "ecdsa-secp256k1")
    {
        string name = "pk-" + Guid.NewGuid().ToString("N")[..8];
        var r = await SendAsync(http, HttpMethod.Post, "/v1/keys", $$"""{"name":"{{name}}","scheme":"{{scheme}}"}""");
        Assert.True(r.Status == HttpStatusCode.Created, r.Text);
        return (name, r.Body!["addresses"]?["ethereum"]?.GetValue<string>() ?? "");
    }

    internal static Task PutPolicyAsync(PolicyServer s, string json, string? mode = null) => PutPolicyAsync(s.Http, s.App.Services, json, mode);

    /// <summary>
    /// Puts a policy and has it approved by the test servers' policy-change approvers (NodelessServer.TestPolicyChanges,
    /// handed to <see cref="ApprovalService"/> as principals); a loosening's time lock is passed on a later clock.
    /// </summary>
    internal static async Task PutPolicyAsync(HttpClient http, IServiceProvider services, string json, string? mode = null)
    {
        string id = JsonNode.Parse(json)!["id"]!.GetValue<string>();
        var r = await SendAsync(http, HttpMethod.Put, $"/v1/policies/{id}" + (mode is null ? "" : "?mode=" + mode), json);
        Assert.True(r.Status == HttpStatusCode.Accepted, r.Text);
        JsonObject done = await ApprovePolicyChangeAsync(services, r.Body!["requestId"]!.GetValue<string>());
        Assert.True(done["status"]!.GetValue<string>() == "executed", done.ToJsonString());
    }

    internal static CallerIdentity PolicyApprover(string id) =>
        new(new Principal(id, PrincipalKind.Person, [Role.Approver], PrincipalScope.Nothing), AuthMethod.HttpSignature, "cred-" + id);

    /// <summary>Votes for a held policy or venue profile change with as many test approvers as it needs, then passes its time lock.</summary>
    internal static async Task<JsonObject> ApprovePolicyChangeAsync(IServiceProvider services, string requestId)
    {
        ApprovalService approvals = services.GetRequiredService<ApprovalService>();
        JsonObject r = (await approvals.GetAsync(requestId, CancellationToken.None))!;
        int k = r["change"]!["approvalsNeeded"]!.GetValue<int>();
        long timeLock = r["change"]!["timeLockSeconds"]!.GetValue<long>();
        foreach (string a in NodelessServer.TestPolicyChanges().Approvers!.Take(k))
        {
            r = await approvals.VoteAsync(PolicyApprover(a), requestId, true, r["requestHash"]!.GetValue<string>(), r["policyHash"]!.GetValue<string>(), "{}"u8.ToArray(),
                CancellationToken.None);
        }

        if (timeLock > 0)
        {
            var later = new ApprovalService(services.GetRequiredService<IConclaveStore>(), services.GetRequiredService<PolicyGate>(), new ShiftedTime(TimeSpan.FromSeconds(timeLock + 1)))
            {
                VenueProfiles = services.GetRequiredService<VenueProfileSource>(),
            };
            r = (await later.GetAsync(requestId, CancellationToken.None))!;
        }

        return r;
    }

    /// <summary>The system clock moved by an offset (a later time without sleeping).</summary>
    internal sealed class ShiftedTime(TimeSpan offset) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => System.GetUtcNow() + offset;
    }

    private static string Digest => new('a', 64);

    private static async Task<JsonNode> RpcAsync(HttpClient http, string method, string @params)
    {
        var r = await SendAsync(http, HttpMethod.Post, "/rpc", $$"""{"jsonrpc":"2.0","id":1,"method":"{{method}}","params":{{@params}}}""");
        Assert.True(r.Status == HttpStatusCode.OK, r.Text);
        return r.Body!;
    }

    [Fact]
    public async Task A_development_server_has_a_visible_starter_policy_that_lets_the_admin_sign()
    {
        await using PolicyServer s = await PolicyServer.StartAsync();
        string file = Path.Combine(Path.GetDirectoryName(s.Config.Resolve(s.Config.DataDir))!, LocalClusterLayout.StarterPolicyFileName);
        Assert.True(File.Exists(file));
        var list = await SendAsync(s.Http, HttpMethod.Get, "/v1/policies");
        Assert.Equal("starter", list.Body!["policies"]![0]!["id"]!.GetValue<string>());
        var got = await SendAsync(s.Http, HttpMethod.Get, "/v1/policies/starter");
        Assert.Equal(Conclave.Policy.Documents.PolicyDocument.Parse(await File.ReadAllTextAsync(file)).Hash, got.Body!["hash"]!.GetValue<string>());
        Assert.Equal("admin-signs", got.Body!["document"]!["rules"]![0]!["id"]!.GetValue<string>());

        (string eth, _) = await CreateKeyAsync(s.Http);
        var signed = await SendAsync(s.Http, HttpMethod.Post, $"/v1/keys/{eth}/sign", $$"""{"digest":"{{Digest}}"}""");
        Assert.True(signed.Status == HttpStatusCode.OK, signed.Text);
        Assert.Equal("allow", signed.Body!["policy"]!["decision"]!.GetValue<string>());
        Assert.Equal(got.Body!["hash"]!.GetValue<string>(), signed.Body!["policy"]!["policyHash"]!.GetValue<string>());
        Assert.Equal(["starter/admin-raw-digests"], signed.Body!["policy"]!["rules"]!.AsArray().Select(x => x!.GetValue<string>()));

        (string ed, _) = await CreateKeyAsync(s.Http, "ed25519");
        var msg = await SendAsync(s.Http, HttpMethod.Post, $"/v1/keys/{ed}/sign", """{"message":"68656c6c6f"}""");
        Assert.True(msg.Status == HttpStatusCode.OK, msg.Text);
        Assert.Equal(["starter/admin-signs"], msg.Body!["policy"]!["rules"]!.AsArray().Select(x => x!.GetValue<string>()));

        // Every decision is in the audit log with its policy hash.
        var audit = await SendAsync(s.Http, HttpMethod.Get, "/v1/audit?last=50");
        Assert.Contains(audit.Body!["entries"]!.AsArray(), e => e!["action"]!.GetValue<string>() == "policy.decide" && e["decision"]!.GetValue<string>() == "allow"
            && e["result"]!.GetValue<string>().Contains(got.Body!["hash"]!.GetValue<string>(), StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_server_without_a_starter_policy_denies_every_signature()
    {
        await using PolicyServer s = await PolicyServer.StartAsync(c => c.StarterPolicy = null);
        var list = await SendAsync(s.Http, HttpMethod.Get, "/v1/policies");
        Assert.Empty(list.Body!["policies"]!.AsArray());
        (string eth, _) = await CreateKeyAsync(s.Http);
        var denied = await SendAsync(s.Http, HttpMethod.Post, $"/v1/keys/{eth}/sign", $$"""{"digest":"{{Digest}}"}""");
        Assert.Equal(HttpStatusCode.Forbidden, denied.Status);
        Assert.Equal(ProblemTypes.PolicyDenied, denied.Body!["type"]!.GetValue<string>());
        Assert.Equal("deny", denied.Body!["policy"]!["decision"]!.GetValue<string>());
        Assert.Contains("no policy is installed", denied.Body!["policy"]!["reasons"]![0]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Every_signing_route_is_decided_allowed_and_denied_with_reasons_and_raw_digests_need_an_explicit_rule()
    {
        await using PolicyServer s = await PolicyServer.StartAsync();
        (string eth, string address) = await CreateKeyAsync(s.Http);
        (string ed, _) = await CreateKeyAsync(s.Http, "ed25519");
        (string pq, _) = await CreateKeyAsync(s.Http, "ml-dsa-44");

        // Messages and typed data for the admin; raw digests by a rule that matches every key and operation: not explicit.
        await PutPolicyAsync(s, """
            {"id":"starter","version":2,"rules":[
              {"id":"messages","effect":"allow","match":{"principals":["admin"],"operations":["message","transfer"]}},
              {"id":"anything","effect":"allow","match":{"principals":["admin"]}},
              {"id":"no-pq","effect":"deny","match":{"labels":["scheme:ml-dsa-44"]}}]}
            """);

        // REST sign: a raw digest is denied (no rule names raw-digest, the principal and the key), with the reason.
        var raw = await SendAsync(s.Http, HttpMethod.Post, $"/v1/keys/{eth}/sign", $$"""{"digest":"{{Digest}}"}""");
        Assert.Equal(HttpStatusCode.Forbidden, raw.Status);
        Assert.Contains("raw-digest explicitly", raw.Body!["policy"]!["reasons"]![0]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Contains("raw-digest explicitly", raw.Body!["detail"]!.GetValue<string>(), StringComparison.Ordinal);

        // A message (ed25519) is allowed; a post-quantum key is denied by the deny rule, which is named.
        var msg = await SendAsync(s.Http, HttpMethod.Post, $"/v1/keys/{ed}/sign", """{"message":"68656c6c6f","operation":"message"}""");
        Assert.True(msg.Status == HttpStatusCode.OK, msg.Text);
        var pqDenied = await SendAsync(s.Http, HttpMethod.Post, $"/v1/keys/{pq}/sign", """{"message":"68656c6c6f"}""");
        Assert.Equal(HttpStatusCode.Forbidden, pqDenied.Status);
        Assert.Equal(["starter/no-pq"], pqDenied.Body!["policy"]!["rules"]!.AsArray().Select(x => x!.GetValue<string>()));
        Assert.Equal(["rule no-pq denies"], pqDenied.Body!["policy"]!["reasons"]!.AsArray().Select(x => x!.GetValue<string>()));

        // Derive+sign (a child of the key) is the same key for policy.
        var child = await SendAsync(s.Http, HttpMethod.Post, $"/v1/keys/{ed}/sign", """{"message":"68656c6c6f","path":"0/1"}""");
        Assert.True(child.Status == HttpStatusCode.OK, child.Text);

        // The operation a request declares must match what it signs; an unknown operation is a 400.
        Assert.Equal(HttpStatusCode.BadRequest, (await SendAsync(s.Http, HttpMethod.Post, $"/v1/keys/{eth}/sign", $$"""{"digest":"{{Digest}}","operation":"message"}""")).Status);
        var bogus = await SendAsync(s.Http, HttpMethod.Post, $"/v1/keys/{eth}/sign", $$"""{"digest":"{{Digest}}","operation":"steal"}""");
        Assert.Equal(HttpStatusCode.BadRequest, bogus.Status);
        Assert.Contains("operation must be", bogus.Body!["detail"]!.GetValue<string>(), StringComparison.Ordinal);

        // Batch: each item decided on its own.
        var batch = await SendAsync(s.Http, HttpMethod.Post, $"/v1/keys/{ed}/sign/batch", """{"items":[{"message":"01"},{"message":"02"}]}""");
        Assert.True(batch.Status == HttpStatusCode.OK, batch.Text);
        Assert.All(batch.Body!["results"]!.AsArray(), i => Assert.Equal("allow", i!["result"]!["policy"]!["decision"]!.GetValue<string>()));
        var rawBatch = await SendAsync(s.Http, HttpMethod.Post, $"/v1/keys/{eth}/sign/batch", $$"""{"items":[{"digest":"{{Digest}}"}]}""");
        Assert.Equal(ProblemTypes.PolicyDenied, rawBatch.Body!["results"]![0]!["error"]!["type"]!.GetValue<string>());

        // JSON-RPC: personal_sign and eth_sign are messages (allowed), typed data is typed-data (allowed by "anything"),
        // a plain value transfer is a transfer (allowed); a contract call no venue profile classifies is a raw digest (denied).
        JsonNode personal = await RpcAsync(s.Http, "personal_sign", $$"""["0x68656c6c6f","{{address}}"]""");
        Assert.NotNull(personal["result"]);
        JsonNode ethSign = await RpcAsync(s.Http, "eth_sign", $$"""["{{address}}","0x68656c6c6f"]""");
        Assert.NotNull(ethSign["result"]);
        string typed = """{"types":{"EIP712Domain":[{"name":"name","type":"string"},{"name":"chainId","type":"uint256"}],"Mail":[{"name":"contents","type":"string"}]},"primaryType":"Mail","domain":{"name":"x","chainId":1},"message":{"contents":"hi"}}""";
        JsonNode typedOk = await RpcAsync(s.Http, "eth_signTypedData_v4", $$"""["{{address}}",{{typed}}]""");
        Assert.True(typedOk["result"] is not null, typedOk.ToJsonString());
        JsonNode transfer = await RpcAsync(s.Http, "eth_signTransaction", $$"""[{"from":"{{address}}","to":"{{To}}","value":"0x1","chainId":"0x1","nonce":"0x0","gas":"0x5208","gasPrice":"0x1"}]""");
        Assert.True(transfer["result"] is not null, transfer.ToJsonString());
        JsonNode call = await RpcAsync(s.Http, "eth_signTransaction", $$"""[{"from":"{{address}}","to":"{{To}}","data":"0xa9059cbb","chainId":"0x1","nonce":"0x0","gas":"0x5208","gasPrice":"0x1"}]""");
        Assert.Equal(-32001, call["error"]!["code"]!.GetValue<int>());
        Assert.Equal("deny", call["error"]!["data"]!["decision"]!.GetValue<string>());
        Assert.Contains("raw-digest explicitly", call["error"]!["data"]!["reasons"]![0]!.GetValue<string>(), StringComparison.Ordinal);

        // An explicit rule for the admin and this key's scheme allows raw digests (REST and the unclassified transaction).
        await PutPolicyAsync(s, """
            {"id":"raw","version":1,"rules":[{"id":"admin-raw","effect":"allow","match":{"principals":["admin"],"operations":["raw-digest"],"labels":["scheme:ecdsa-secp256k1"]}}]}
            """);
        var rawOk = await SendAsync(s.Http, HttpMethod.Post, $"/v1/keys/{eth}/sign", $$"""{"digest":"{{Digest}}"}""");
        Assert.True(rawOk.Status == HttpStatusCode.OK, rawOk.Text);
        Assert.Equal(["raw/admin-raw"], rawOk.Body!["policy"]!["rules"]!.AsArray().Select(x => x!.GetValue<string>()));
        JsonNode callOk = await RpcAsync(s.Http, "eth_signTransaction", $$"""[{"from":"{{address}}","to":"{{To}}","data":"0xa9059cbb","chainId":"0x1","nonce":"0x0","gas":"0x5208","gasPrice":"0x1"}]""");
        Assert.True(callOk["result"] is not null, callOk.ToJsonString());
        // A deny in any document still wins over the other document's allow.
        var pqStill = await SendAsync(s.Http, HttpMethod.Post, $"/v1/keys/{pq}/sign", """{"message":"68656c6c6f"}""");
        Assert.Equal(HttpStatusCode.Forbidden, pqStill.Status);
    }

    /// <summary>
    /// USD limits through the venue's price input: the profile names its price source, prices are posted to
    /// POST /v1/risk/prices, and a request's USD value is its native amount times the source's fresh price. Without a
    /// fresh price (none posted, or the latest older than risk.stalePriceSeconds) a USD limit denies; with one, the
    /// per-transaction and the velocity USD limits hold through a real signing route (/rpc eth_signTypedData_v4), and
    /// POST /v1/policies/evaluate decides the same.
    /// </summary>
    [Fact]
    public async Task Usd_limits_use_the_fresh_price_posted_for_the_venues_price_source()
    {
        string profile = Path.Combine(Path.GetTempPath(), "conclave-usd-profile-" + Guid.NewGuid().ToString("N")[..10] + ".json");
        await File.WriteAllTextAsync(profile, """
            {"venue":"perpx","chainId":1,"contract":"0x00000000000000000000000000000000000000aa","priceSource":"ETH-USD",
             "operations":{"settle":{"typedData":"Settlement(address account,uint256 amount)","amount":"amount","decimals":{"amount":6}}}}
            """);
        try
        {
            await using PolicyServer s = await PolicyServer.StartAsync(c =>
            {
                c.VenueProfiles = [profile];
                c.Risk = new Conclave.Server.Risk.RiskSettings { StalePriceSeconds = 120 };
            });
            (string key, string address) = await CreateKeyAsync(s.Http);
            await PutPolicyAsync(s, """
                {"id":"starter","version":2,"levels":{"elevated":{"limitMultiplier":1}},
                 "rules":[{"id":"settle","effect":"allow","match":{"principals":["admin"],"operations":["settle"],"venues":["perpx"]},
                  "limits":{"perTransaction":{"usd":5000},"velocity":[{"id":"day","windowSeconds":86400,"sumUsd":8000,"scope":"shared"}]}}]}
                """); // the stale price below raises the level to elevated: its limits are kept at their normal size here
            static string Settlement(string amount) => $$"""
                {"types":{"EIP712Domain":[{"name":"name","type":"string"},{"name":"chainId","type":"uint256"},{"name":"verifyingContract","type":"address"}],
                  "Settlement":[{"name":"account","type":"address"},{"name":"amount","type":"uint256"}]},
                 "primaryType":"Settlement","domain":{"name":"PerpX","chainId":1,"verifyingContract":"0x00000000000000000000000000000000000000AA"},
                 "message":{"account":"0x1111111111111111111111111111111111111111","amount":"{{amount}}"} }
                """;
            async Task<JsonNode> Settle(string amount) => await RpcAsync(s.Http, "eth_signTypedData_v4", $$"""["{{address}}",{{Settlement(amount)}}]""");
            static void Denied(JsonNode r, string reason)
            {
                Assert.True(r["error"]?["code"]?.GetValue<int>() == -32001, r.ToJsonString());
                Assert.Contains(reason, r["error"]!["data"]!["reasons"]!.ToJsonString(), StringComparison.Ordinal);
            }

            async Task PostPrice(decimal price, DateTimeOffset at)
            {
                var posted = await SendAsync(s.Http, HttpMethod.Post, "/v1/risk/prices",
                    $$"""{"samples":[{"source":"ETH-USD","price":{{price.ToString(System.Globalization.CultureInfo.InvariantCulture)}},"at":"{{at:yyyy-MM-ddTHH:mm:ssZ}}"}]}""");
                Assert.True(posted.Status == HttpStatusCode.OK, posted.Text);
            }

            // No price yet: 1 ETH has no USD value, and the USD limit denies.
            Denied(await Settle("1000000"), "no fresh price");

            // A price older than the stale threshold is not fresh: still denied.
            await PostPrice(2000m, DateTimeOffset.UtcNow.AddSeconds(-200));
            Denied(await Settle("1000000"), "no fresh price");

            // A fresh price of 2,000 USD: 2 ETH (4,000 USD) is signed; 3 ETH (6,000 USD) is above the per-transaction
            // 5,000 USD; a second 2 ETH brings the day to 8,000 USD, and 0.5 ETH more (1,000 USD) is above the velocity limit.
            await PostPrice(2000m, DateTimeOffset.UtcNow);
            JsonNode two = await Settle("2000000");
            Assert.True(two["result"] is not null, two.ToJsonString());
            Denied(await Settle("3000000"), "per-transaction limit of 5000");
            var ev = await SendAsync(s.Http, HttpMethod.Post, "/v1/policies/evaluate", $$"""{"key":"{{key}}","level":"normal","typedData":{{Settlement("3000000")}}}""");
            Assert.Equal("deny", ev.Body!["levels"]!["normal"]!["decision"]!.GetValue<string>());
            ev = await SendAsync(s.Http, HttpMethod.Post, "/v1/policies/evaluate", $$"""{"key":"{{key}}","level":"normal","typedData":{{Settlement("1000000")}}}""");
            Assert.True(ev.Body!["levels"]!["normal"]!["decision"]!.GetValue<string>() == "allow", ev.Text);
            Assert.NotNull((await Settle("2000000"))["result"]);
            Denied(await Settle("500000"), "velocity limit day (8000 USD");
        }
        finally
        {
            File.Delete(profile);
        }
    }

    [Fact]
    public async Task Typed_data_matching_a_venue_profile_is_signed_through_rpc_as_that_venue_operation_under_its_rules()
    {
        string profile = Path.Combine(Path.GetTempPath(), "conclave-typed-profile-" + Guid.NewGuid().ToString("N")[..10] + ".json");
        await File.WriteAllTextAsync(profile, """
            {"venue":"perpx","chainId":1,"contract":"0x00000000000000000000000000000000000000aa",
             "operations":{"settle":{"typedData":"Settlement(address account,uint256 amount)","amount":"amount","decimals":{"amount":6}}}}
            """);
        try
        {
            await using PolicyServer s = await PolicyServer.StartAsync(c => c.VenueProfiles = [profile]);
            (string key, string address) = await CreateKeyAsync(s.Http);
            await PutPolicyAsync(s, """
                {"id":"starter","version":2,"rules":[{"id":"settle","effect":"allow","match":{"principals":["admin"],"operations":["settle"],"venues":["perpx"]},
                  "limits":{"perTransaction":{"native":3}}}]}
                """);
            static string Settlement(string primaryType, string amount) => $$"""
                {"types":{"EIP712Domain":[{"name":"name","type":"string"},{"name":"chainId","type":"uint256"},{"name":"verifyingContract","type":"address"}],
                  "{{primaryType}}":[{"name":"account","type":"address"},{"name":"amount","type":"uint256"}]},
                 "primaryType":"{{primaryType}}","domain":{"name":"PerpX","chainId":1,"verifyingContract":"0x00000000000000000000000000000000000000AA"},
                 "message":{"account":"0x1111111111111111111111111111111111111111","amount":"{{amount}}"} }
                """;

            // 2.5 settled: allowed by the settle rule (typed-data is allowed by nothing here), and the signature is over the EIP-712 digest.
            string doc = Settlement("Settlement", "2500000");
            JsonNode ok = await RpcAsync(s.Http, "eth_signTypedData_v4", $$"""["{{address}}",{{doc}}]""");
            Assert.True(ok["result"] is not null, ok.ToJsonString());
            byte[] sig = Convert.FromHexString(ok["result"]!.GetValue<string>()[2..]);
            using (var parsed = System.Text.Json.JsonDocument.Parse(doc))
            {
                Assert.True(Conclave.Crypto.Secp256k1.EcdsaSecp256k1.TryRecover(Conclave.Chains.Ethereum.TypedData.Hash(parsed.RootElement), sig.AsSpan(0, 64), sig[64] - 27,
                    out Conclave.Crypto.Secp256k1.Secp256k1Point pk));
                Assert.Equal(address, Conclave.Chains.Ethereum.EthereumAddress.FromPublicKey(pk.ToCompressed()));
            }

            // The same document as a JSON string (as ethers sends it) is classified the same way.
            JsonNode asString = await RpcAsync(s.Http, "eth_signTypedData_v4", System.Text.Json.JsonSerializer.Serialize(new[] { address, doc }));
            Assert.True(asString["result"] is not null, asString.ToJsonString());

            // 5 is above the rule's per-transaction limit of 3: denied, explained.
            JsonNode tooMuch = await RpcAsync(s.Http, "eth_signTypedData_v4", $$"""["{{address}}",{{Settlement("Settlement", "5000000")}}]""");
            Assert.Equal(-32001, tooMuch["error"]!["code"]!.GetValue<int>());
            Assert.Equal("deny", tooMuch["error"]!["data"]!["decision"]!.GetValue<string>());

            // Another struct to the same contract is not a venue operation: typed-data, which no rule allows.
            JsonNode other = await RpcAsync(s.Http, "eth_signTypedData_v4", $$"""["{{address}}",{{Settlement("Withdrawal", "1")}}]""");
            Assert.Equal(-32001, other["error"]!["code"]!.GetValue<int>());

            // POST /v1/policies/evaluate classifies a document the same way, without signing.
            var ev = await SendAsync(s.Http, HttpMethod.Post, "/v1/policies/evaluate", $$"""{"key":"{{key}}","level":"normal","typedData":{{Settlement("Settlement", "1000000")}}}""");
            Assert.True(ev.Status == HttpStatusCode.OK, ev.Text);
            Assert.Equal("settle", ev.Body!["operation"]!.GetValue<string>());
            Assert.Equal("allow", ev.Body!["levels"]!["normal"]!["decision"]!.GetValue<string>());
            var evOther = await SendAsync(s.Http, HttpMethod.Post, "/v1/policies/evaluate", $$"""{"key":"{{key}}","typedData":{{Settlement("Withdrawal", "1")}}}""");
            Assert.Equal("typed-data", evOther.Body!["operation"]!.GetValue<string>());
            Assert.Equal(HttpStatusCode.BadRequest,
                (await SendAsync(s.Http, HttpMethod.Post, "/v1/policies/evaluate", $$"""{"key":"{{key}}","operation":"settle","typedData":{{doc}}}""")).Status);
            Assert.Equal(HttpStatusCode.BadRequest, (await SendAsync(s.Http, HttpMethod.Post, "/v1/policies/evaluate", $$"""{"key":"{{key}}","typedData":"x"}""")).Status);

            var audit = await SendAsync(s.Http, HttpMethod.Get, "/v1/audit?last=100");
            string[] decided = [.. audit.Body!["entries"]!.AsArray().Where(e => e!["action"]!.GetValue<string>() == "policy.decide")
                .Select(e => e!["decision"]!.GetValue<string>() + " " + e["result"]!.GetValue<string>().Split(' ')[0])];
            Assert.Equal(["allow settle", "allow settle", "deny settle", "deny typed-data"], decided);
        }
        finally
        {
            File.Delete(profile);
        }
    }

    [Fact]
    public async Task Shadow_policies_are_evaluated_and_audited_beside_the_live_ones()
    {
        await using PolicyServer s = await PolicyServer.StartAsync();
        (string ed, _) = await CreateKeyAsync(s.Http, "ed25519");
        await PutPolicyAsync(s, """{"id":"tighter","version":1,"rules":[{"id":"no-messages","effect":"deny","match":{"operations":["message"]}}]}""", "shadow");
        var signed = await SendAsync(s.Http, HttpMethod.Post, $"/v1/keys/{ed}/sign", """{"message":"01"}""");
        Assert.True(signed.Status == HttpStatusCode.OK, signed.Text);
        Assert.Equal("allow", signed.Body!["policy"]!["decision"]!.GetValue<string>());
        Assert.Equal("deny", signed.Body!["policy"]!["shadow"]!["decision"]!.GetValue<string>());
        Assert.Equal(["tighter/no-messages"], signed.Body!["policy"]!["shadow"]!["rules"]!.AsArray().Select(x => x!.GetValue<string>()));
        var audit = await SendAsync(s.Http, HttpMethod.Get, "/v1/audit?last=20");
        Assert.Contains(audit.Body!["entries"]!.AsArray(), e => e!["action"]!.GetValue<string>() == "policy.shadow" && e["decision"]!.GetValue<string>() == "deny");
    }

    [Fact]
    public async Task Policy_routes_refuse_bad_documents_old_versions_and_foreign_ids_and_evaluate_at_every_level()
    {
        await using PolicyServer s = await PolicyServer.StartAsync();
        var bad = await SendAsync(s.Http, HttpMethod.Put, "/v1/policies/p1", """{"id":"p1","version":1,"rules":[{"id":"r","effect":"allow","match":{"operation":["message"]}}]}""");
        Assert.Equal(HttpStatusCode.BadRequest, bad.Status);
        Assert.Equal(ProblemTypes.InvalidPolicy, bad.Body!["type"]!.GetValue<string>());
        Assert.Contains("rules[0].match.operation", bad.Body!["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, (await SendAsync(s.Http, HttpMethod.Put, "/v1/policies/p1", "{not json")).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await SendAsync(s.Http, HttpMethod.Put, "/v1/policies/p2", """{"id":"p1","version":1}""")).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await SendAsync(s.Http, HttpMethod.Put, "/v1/policies/p1?mode=loud", """{"id":"p1","version":1}""")).Status);
        var stale = await SendAsync(s.Http, HttpMethod.Put, "/v1/policies/starter", """{"id":"starter","version":1}""");
        Assert.Equal(HttpStatusCode.Conflict, stale.Status);
        Assert.Equal(ProblemTypes.PolicyVersion, stale.Body!["type"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.NotFound, (await SendAsync(s.Http, HttpMethod.Get, "/v1/policies/nope")).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await SendAsync(s.Http, HttpMethod.Get, "/v1/policies/starter?version=7")).Status);

        // Evaluate: what a request would get at every risk level, without signing (lockdown denies a message).
        (string ed, _) = await CreateKeyAsync(s.Http, "ed25519");
        var ev = await SendAsync(s.Http, HttpMethod.Post, "/v1/policies/evaluate", $$"""{"key":"{{ed}}","operation":"message"}""");
        Assert.True(ev.Status == HttpStatusCode.OK, ev.Text);
        Assert.Equal("allow", ev.Body!["levels"]!["normal"]!["decision"]!.GetValue<string>());
        Assert.Equal("deny", ev.Body!["levels"]!["lockdown"]!["decision"]!.GetValue<string>());
        var one = await SendAsync(s.Http, HttpMethod.Post, "/v1/policies/evaluate", $$"""{"key":"{{ed}}","operation":"raw-digest","level":"elevated"}""");
        Assert.Equal("deny", one.Body!["levels"]!["elevated"]!["decision"]!.GetValue<string>());
        Assert.Single(one.Body!["levels"]!.AsObject());
        Assert.Equal(HttpStatusCode.BadRequest, (await SendAsync(s.Http, HttpMethod.Post, "/v1/policies/evaluate", $$"""{"key":"{{ed}}","operation":"steal"}""")).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await SendAsync(s.Http, HttpMethod.Post, "/v1/policies/evaluate", $$"""{"key":"{{ed}}","operation":"message","extra":1}""")).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await SendAsync(s.Http, HttpMethod.Post, "/v1/policies/evaluate", $$"""{"key":"{{ed}}","operation":"message","level":"panic"}""")).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await SendAsync(s.Http, HttpMethod.Post, "/v1/policies/evaluate", """{"key":"nokey","operation":"message"}""")).Status);
        // Nothing was signed by evaluating.
        var audit = await SendAsync(s.Http, HttpMethod.Get, "/v1/audit?last=100");
        Assert.DoesNotContain(audit.Body!["entries"]!.AsArray(), e => e!["action"]!.GetValue<string>() == "policy.decide");
    }

    [Fact]
    public async Task Admin_signing_can_be_turned_off_in_server_json()
    {
        await using PolicyServer s = await PolicyServer.StartAsync(c => c.AdminSigning = false);
        (string ed, _) = await CreateKeyAsync(s.Http, "ed25519");
        var denied = await SendAsync(s.Http, HttpMethod.Post, $"/v1/keys/{ed}/sign", """{"message":"01"}""");
        Assert.Equal(HttpStatusCode.Forbidden, denied.Status);
        Assert.Contains("admin signing is turned off", denied.Body!["detail"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    private const string LimitedPolicy = """
        {"id":"starter","version":2,"rules":[{"id":"ten","effect":"allow","match":{"principals":["admin"],"operations":["message"]},
          "limits":{"velocity":[{"id":"hour","windowSeconds":3600,"count":10,"scope":"shared"}]}}]}
        """;

    private static async Task<int> FiftyConcurrentAsync(HttpClient a, HttpClient b, string key) =>
        (await FiftyConcurrentAnswersAsync(a, b, key)).Count(r => r.Status == HttpStatusCode.OK);

    /// <summary>50 concurrent signatures of message i (one byte, i = 0..49) alternately through <paramref name="a"/> and
    /// <paramref name="b"/>, in order of i; each answer is a signature or a 403 naming the velocity limit.</summary>
    private static async Task<(HttpStatusCode Status, JsonNode? Body, string Text)[]> FiftyConcurrentAnswersAsync(HttpClient a, HttpClient b, string key)
    {
        var answers = await Task.WhenAll(Enumerable.Range(0, 50).Select(i => Task.Run(() => SendAsync(i % 2 == 0 ? a : b, HttpMethod.Post, $"/v1/keys/{key}/sign",
            $$"""{"message":"{{i:x2}}"}"""))));
        Assert.All(answers, r => Assert.True(r.Status is HttpStatusCode.OK or HttpStatusCode.Forbidden, r.Text));
        Assert.All(answers.Where(r => r.Status == HttpStatusCode.Forbidden), r => Assert.Contains("velocity limit", r.Text, StringComparison.Ordinal));
        return answers;
    }

    [Fact]
    public async Task Fifty_concurrent_requests_against_a_limit_of_ten_sign_exactly_ten()
    {
        await using PolicyServer s = await PolicyServer.StartAsync();
        (string ed, _) = await CreateKeyAsync(s.Http, "ed25519");
        await PutPolicyAsync(s, LimitedPolicy);
        Assert.Equal(10, await FiftyConcurrentAsync(s.Http, s.Http, ed));
        var more = await SendAsync(s.Http, HttpMethod.Post, $"/v1/keys/{ed}/sign", """{"message":"ff"}""");
        Assert.Equal(HttpStatusCode.Forbidden, more.Status);
    }

    /// <summary>
    /// A limited request on the sign route is first decided with its counters taken as empty and the reservation checks
    /// the caps (PolicyEngine.DecideAsync, provisional): once a limit is spent, the request is decided again on the
    /// store's totals — a second, unlimited rule still allows it (the explanation and the single audited decision name only
    /// that rule, nothing reserved), and where no other rule applies the deny names the spent limit as the evaluator words it.
    /// </summary>
    [Fact]
    public async Task A_spent_limit_is_decided_again_on_the_stored_totals_so_another_rule_still_allows_and_a_deny_names_the_limit()
    {
        await using PolicyServer s = await PolicyServer.StartAsync();
        (string covered, _) = await CreateKeyAsync(s.Http, "ed25519");
        (string other, _) = await CreateKeyAsync(s.Http, "ed25519");
        string coveredId = (await SendAsync(s.Http, HttpMethod.Get, $"/v1/keys/{covered}")).Body!["id"]!.GetValue<string>();
        string twoRules = $$$"""
            {"id":"starter","version":2,"rules":[
              {"id":"two","effect":"allow","match":{"principals":["admin"],"operations":["message"]},"limits":{"velocity":[{"id":"hour","windowSeconds":3600,"count":2,"scope":"shared"}]}},
              {"id":"backup","effect":"allow","match":{"principals":["admin"],"operations":["message"],"keys":["{{{coveredId}}}"]}}]}
            """;
        await PutPolicyAsync(s, twoRules);
        for (int i = 0; i < 2; i++)
        {
            var ok = await SendAsync(s.Http, HttpMethod.Post, $"/v1/keys/{covered}/sign", $$"""{"message":"0{{i}}"}""");
            Assert.True(ok.Status == HttpStatusCode.OK, ok.Text);
            Assert.Equal(["starter/backup", "starter/two"], ok.Body!["policy"]!["rules"]!.AsArray().Select(x => x!.GetValue<string>()).Order(StringComparer.Ordinal));
        }

        // Spent: the covered key is still allowed by the unlimited rule alone.
        for (int i = 0; i < 2; i++)
        {
            var more = await SendAsync(s.Http, HttpMethod.Post, $"/v1/keys/{covered}/sign", $$"""{"message":"1{{i}}"}""");
            Assert.True(more.Status == HttpStatusCode.OK, more.Text);
            Assert.Equal(["starter/backup"], more.Body!["policy"]!["rules"]!.AsArray().Select(x => x!.GetValue<string>()));
        }

        // The other key has only the limited rule (its counter is shared, so spent too): denied, naming the limit.
        var denied = await SendAsync(s.Http, HttpMethod.Post, $"/v1/keys/{other}/sign", """{"message":"09"}""");
        Assert.Equal(HttpStatusCode.Forbidden, denied.Status);
        Assert.Contains("velocity limit hour (2 requests per 3600 s) would be exceeded", denied.Text, StringComparison.Ordinal);
        Assert.DoesNotContain("concurrent requests", denied.Text, StringComparison.Ordinal);

        // One decision audited per request: two allows by both rules, two by "backup", one deny.
        var audit = await SendAsync(s.Http, HttpMethod.Get, "/v1/audit?last=200");
        string[] decided = [.. audit.Body!["entries"]!.AsArray().Where(e => e!["action"]!.GetValue<string>() == "policy.decide")
            .Select(e => e!["decision"]!.GetValue<string>())];
        Assert.Equal(["allow", "allow", "allow", "allow", "deny"], decided);
    }

    /// <summary>
    /// /rpc holds its audit entries as the sign routes do (AuditOneCommit): a velocity-limited personal_sign commits its
    /// intent, its allow decision and the reservation together — the two entries consecutive, one commit time — and the
    /// reservation counts (the next call is over the limit of one).
    /// </summary>
    [Fact]
    public async Task A_limited_rpc_signature_commits_its_intent_decision_and_reservation_together()
    {
        await using PolicyServer s = await PolicyServer.StartAsync();
        (_, string address) = await CreateKeyAsync(s.Http);
        await PutPolicyAsync(s, LimitedPolicy.Replace("\"count\":10", "\"count\":1", StringComparison.Ordinal));
        string Call(string text) => $$"""{"jsonrpc":"2.0","id":1,"method":"personal_sign","params":["0x{{Convert.ToHexStringLower(Encoding.UTF8.GetBytes(text))}}","{{address}}"]}""";
        string body = Call("one commit");
        var signed = await SendAsync(s.Http, HttpMethod.Post, "/rpc", body);
        Assert.True(signed.Status == HttpStatusCode.OK && signed.Body!["result"] is not null, signed.Text);
        var over = await SendAsync(s.Http, HttpMethod.Post, "/rpc", Call("over the limit"));
        Assert.Contains("velocity limit hour (1 requests per 3600 s) would be exceeded", over.Text, StringComparison.Ordinal);

        JsonArray entries = (await SendAsync(s.Http, HttpMethod.Get, "/v1/audit?last=50")).Body!["entries"]!.AsArray();
        string intentHash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes("POST\0/rpc\0" + body)));
        JsonNode intent = entries.Single(e => e!["requestHash"]?.GetValue<string>() == intentHash && e["result"]!.GetValue<string>() == "accepted")!;
        JsonNode decision = entries.Single(e => e!["seq"]!.GetValue<long>() == intent["seq"]!.GetValue<long>() + 1)!;
        Assert.Equal("policy.decide", decision["action"]!.GetValue<string>());
        Assert.Equal("allow", decision["decision"]!.GetValue<string>());
        Assert.Equal(intent["time"]!.GetValue<DateTimeOffset>(), decision["time"]!.GetValue<DateTimeOffset>());
    }

    [Fact]
    public async Task A_failed_signature_releases_its_reservation()
    {
        await using PolicyServer s = await PolicyServer.StartAsync();
        (string ed, _) = await CreateKeyAsync(s.Http, "ed25519");
        await PutPolicyAsync(s, LimitedPolicy.Replace("\"count\":10", "\"count\":1", StringComparison.Ordinal));
        // A hardened path passes policy (it is the same key) and then fails to sign: the count is released.
        var failed = await SendAsync(s.Http, HttpMethod.Post, $"/v1/keys/{ed}/sign", """{"message":"01","path":"0'"}""");
        Assert.Equal(HttpStatusCode.BadRequest, failed.Status);
        var ok = await SendAsync(s.Http, HttpMethod.Post, $"/v1/keys/{ed}/sign", """{"message":"01"}""");
        Assert.True(ok.Status == HttpStatusCode.OK, ok.Text);
        var limited = await SendAsync(s.Http, HttpMethod.Post, $"/v1/keys/{ed}/sign", """{"message":"02"}""");
        Assert.Equal(HttpStatusCode.Forbidden, limited.Status);

        // The failed request's allow decision is still in the log (its reservation was given back, not its audit).
        string[] decided = [.. (await SendAsync(s.Http, HttpMethod.Get, "/v1/audit?last=100")).Body!["entries"]!.AsArray()
            .Where(e => e!["action"]!.GetValue<string>() == "policy.decide").Select(e => e!["decision"]!.GetValue<string>())];
        Assert.Equal(["allow", "allow", "deny"], decided);
    }

    /// <summary>
    /// A server-held key under a velocity limit answers with a signature only when the reservation holds: of 50
    /// concurrent requests against a count of 3, exactly three answer with a signature (each verifying), every other one a
    /// 403 naming the limit and carrying no signature; the intent and allow decision of each signed request are
    /// consecutive entries of one commit (with the reservation).
    /// </summary>
    [Fact]
    public async Task A_limited_server_held_signature_is_released_only_when_its_reservation_holds()
    {
        await using PolicyServer s = await PolicyServer.StartAsync();
        (string ed, _) = await CreateKeyAsync(s.Http, "ed25519");
        await PutPolicyAsync(s, LimitedPolicy.Replace("\"count\":10", "\"count\":3", StringComparison.Ordinal));
        var answers = await FiftyConcurrentAnswersAsync(s.Http, s.Http, ed);
        Assert.Equal(3, answers.Count(r => r.Status == HttpStatusCode.OK));
        foreach (var (r, i) in answers.Select((r, i) => (r, i)))
        {
            if (r.Status == HttpStatusCode.OK)
            {
                byte[] signature = Convert.FromHexString(r.Body!["signature"]!.GetValue<string>());
                byte[] publicKey = Convert.FromHexString(r.Body!["publicKey"]!.GetValue<string>());
                Assert.True(Conclave.Crypto.Ed25519.Ed25519Signature.Instance.Verify(publicKey, [(byte)i], signature), r.Text);
            }
            else
            {
                Assert.Null(r.Body!["signature"]); // a 403 naming the limit (FiftyConcurrentAnswersAsync)
            }
        }

        JsonArray entries = (await SendAsync(s.Http, HttpMethod.Get, "/v1/audit?last=300")).Body!["entries"]!.AsArray();
        JsonNode[] allowed = [.. entries.Where(e => e!["action"]!.GetValue<string>() == "policy.decide" && e["decision"]!.GetValue<string>() == "allow").Select(e => e!)];
        Assert.Equal(3, allowed.Length);
        foreach (JsonNode decision in allowed)
        {
            JsonNode intent = entries.Single(e => e!["seq"]!.GetValue<long>() == decision["seq"]!.GetValue<long>() - 1)!;
            Assert.Equal("accepted", intent["result"]!.GetValue<string>());
            Assert.Equal(intent["time"]!.GetValue<DateTimeOffset>(), decision["time"]!.GetValue<DateTimeOffset>());
        }
    }

    /// <summary>
    /// A limited server-held signature is made while its reservation commits (docs/POLICY.md "Enforcement"). When that
    /// commit fails after the caps were checked (the audit table refuses the entries written after the reservation, in
    /// the same transaction), the answer is the 503 audit-unavailable problem with no signature, and the limit is not
    /// spent: once the audit log works again the one signature the limit allows is made, and the next is refused.
    /// </summary>
    [Fact]
    public async Task A_limited_signature_whose_reservation_commit_fails_is_not_released_and_spends_nothing()
    {
        await using PolicyServer s = await PolicyServer.StartAsync();
        (string ed, _) = await CreateKeyAsync(s.Http, "ed25519");
        await PutPolicyAsync(s, LimitedPolicy.Replace("\"count\":10", "\"count\":1", StringComparison.Ordinal));
        string db = Path.Combine(s.Config.Resolve(s.Config.DataDir), "conclave.db");
        await NodelessServer.SqlAsync(db, "CREATE TRIGGER audit_down BEFORE INSERT ON audit_entries BEGIN SELECT RAISE(ABORT, 'audit down'); END;");
        try
        {
            for (int i = 0; i < 3; i++)
            {
                var failed = await SendAsync(s.Http, HttpMethod.Post, $"/v1/keys/{ed}/sign", """{"message":"07"}""");
                Assert.True(failed.Status == HttpStatusCode.ServiceUnavailable, failed.Text);
                Assert.Equal("https://conclave.dev/problems/audit-unavailable", failed.Body!["type"]!.GetValue<string>());
                Assert.DoesNotContain("signature", failed.Text, StringComparison.Ordinal);
            }
        }
        finally
        {
            await NodelessServer.SqlAsync(db, "DROP TRIGGER IF EXISTS audit_down;");
        }

        var signed = await SendAsync(s.Http, HttpMethod.Post, $"/v1/keys/{ed}/sign", """{"message":"07"}""");
        Assert.True(signed.Status == HttpStatusCode.OK, signed.Text);
        Assert.True(Conclave.Crypto.Ed25519.Ed25519Signature.Instance.Verify(Convert.FromHexString(signed.Body!["publicKey"]!.GetValue<string>()), [7],
            Convert.FromHexString(signed.Body!["signature"]!.GetValue<string>())), signed.Text);
        var over = await SendAsync(s.Http, HttpMethod.Post, $"/v1/keys/{ed}/sign", """{"message":"07"}""");
        Assert.True(over.Status == HttpStatusCode.Forbidden, over.Text);
        Assert.Null(over.Body!["signature"]);
    }

    /// <summary>
    /// Runs <paramref name="body"/> with a fresh PostgreSQL database and a development cluster folder; the function it is
    /// given makes the server.json of one more replica on that database (its own listen port, the test change approvers,
    /// then <paramref name="configure"/>). Both are removed afterwards.
    /// </summary>
    internal static async Task OnOnePostgresAsync(Func<Func<ServerConfig>, Task> body, Action<ServerConfig>? configure = null)
    {
        string admin = OwnServers.AdminConnectionString();
        string db = "conclave_pol_" + Guid.NewGuid().ToString("N")[..12];
        await OwnServers.ExecAsync(admin, $"CREATE DATABASE {db}");
        string dir = Path.Combine(Path.GetTempPath(), "conclave-pol-" + Guid.NewGuid().ToString("N")[..10]);
        try
        {
            var layout = new LocalClusterLayout(dir);
            layout.EnsureCreated(3, 2, LoopbackPorts.Take(), LoopbackPorts.Take());
            string cs = new NpgsqlConnectionStringBuilder(admin) { Database = db }.ConnectionString;
            await body(() =>
            {
                ServerConfig c = ServerConfig.Load(layout.ServerConfigPath);
                c.PostgresConnectionString = cs;
                c.PolicyChanges = NodelessServer.TestPolicyChanges();
                c.Listen = "127.0.0.1:" + LoopbackPorts.Take().ToString(System.Globalization.CultureInfo.InvariantCulture);
                configure?.Invoke(c);
                return c;
            });
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            await OwnServers.ExecAsync(admin, $"DROP DATABASE IF EXISTS {db} WITH (FORCE)");
            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    [Fact]
    public Task Two_replicas_on_one_PostgreSQL_share_the_limit_and_it_holds_across_a_restart() => OnOnePostgresAsync(async Config =>
    {
        ServerConfig ca = Config(), cb = Config();
        WebApplication a = await ServerHost.BuildAsync(ca);
        await a.StartAsync();
        WebApplication b = await ServerHost.BuildAsync(cb);
        await b.StartAsync();
        string token = (await File.ReadAllTextAsync(a.Services.GetRequiredService<ServerPaths>().AdminTokenFile)).Trim();
        string key;
        using (HttpClient ha = PolicyServer.Client(ca, token), hb = PolicyServer.Client(cb, token))
        {
            (key, _) = await CreateKeyAsync(ha, "ed25519");
            await PutPolicyAsync(hb, b.Services, LimitedPolicy);
            Assert.Equal(10, await FiftyConcurrentAsync(ha, hb, key));
        }

        await b.StopAsync();
        await b.DisposeAsync();
        await a.StopAsync();
        await a.DisposeAsync();

        // Restarted: the counters are in the store, the limit is still spent.
        ServerConfig cr = Config();
        WebApplication r = await ServerHost.BuildAsync(cr);
        await r.StartAsync();
        try
        {
            using HttpClient hr = PolicyServer.Client(cr, token);
            var after = await SendAsync(hr, HttpMethod.Post, $"/v1/keys/{key}/sign", """{"message":"01"}""");
            Assert.Equal(HttpStatusCode.Forbidden, after.Status);
            Assert.Contains("velocity limit", after.Text, StringComparison.Ordinal);
        }
        finally
        {
            await r.StopAsync();
            await r.DisposeAsync();
        }
    });
}
