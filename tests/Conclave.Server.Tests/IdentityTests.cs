using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Conclave.Policy.HttpSignatures;
using Conclave.Server.Hosting;
using Conclave.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace Conclave.Server.Tests;

/// <summary>Signs requests as a principal (RFC 9421 + RFC 9530), with knobs to break each part for the refusal tests.</summary>
internal sealed class TestSigner(HttpSigningKey key, string keyId) : IDisposable
{
    public string KeyId => keyId;

    public HttpSigningKey Key => key;

    public static TestSigner Ed25519(string keyId) => new(HttpSigningKey.Ed25519FromSeed(RandomNumberGenerator.GetBytes(32)), keyId);

    public static TestSigner P256(string keyId) => new(HttpSigningKey.EcdsaP256(ECDsa.Create(ECCurve.NamedCurves.nistP256)), keyId);

    public string PublicKeyBase64 => Convert.ToBase64String([.. key.PublicKey.PublicKey]);

    public string Algorithm => HttpSignatureAlgorithms.Name(key.Algorithm);

    /// <summary>A signed request; <paramref name="sendJson"/> replaces the body after signing (a tampered body).</summary>
    public HttpRequestMessage Request(HttpMethod method, string url, string? json = null, DateTimeOffset? now = null, string? nonce = null, string? sendJson = null,
        TimeSpan? lifetime = null)
    {
        byte[] body = json is null ? [] : Encoding.UTF8.GetBytes(json);
        SignedRequestHeaders h = HttpMessageSigner.SignAgentRequest(method.Method, url, body, key, keyId, nonce ?? NewNonce(), now ?? DateTimeOffset.UtcNow,
            lifetime ?? TimeSpan.FromSeconds(30));
        var req = new HttpRequestMessage(method, url);
        string? content = sendJson ?? json;
        if (content is not null)
        {
            req.Content = new StringContent(content, Encoding.UTF8, "application/json");
        }

        req.Headers.TryAddWithoutValidation("Content-Digest", h.ContentDigest);
        req.Headers.TryAddWithoutValidation("Signature-Input", h.SignatureInput);
        req.Headers.TryAddWithoutValidation("Signature", h.Signature);
        return req;
    }

    public static string NewNonce() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));

    public void Dispose() => key.Dispose();
}

/// <summary>
/// Issue 16 identities: principals and credentials through the API, RFC 9421 authentication of every /v1 and /rpc
/// request, and each refusal (replayed, expired, wrong key, tampered body, unknown, revoked, lapsed, disabled) as a
/// 401 problem that the audit log records.
/// </summary>
public sealed class IdentityTests(NodelessServer server) : IClassFixture<NodelessServer>
{
    private static readonly HttpClient Anonymous = new();

    private static string Rpc(string method) => $$"""{"jsonrpc":"2.0","id":1,"method":"{{method}}","params":[]}""";

    private async Task<TestSigner> NewAgentAsync(string id, bool p256 = false, string scope = """{"keys":["*"],"operations":["*"]}""")
    {
        var (status, _, text, _) = await server.SendAsync(HttpMethod.Post, "/v1/principals", $$"""{"id":"{{id}}","kind":"agent","scope":{{scope}}}""");
        Assert.True(status == HttpStatusCode.Created, text);
        TestSigner s = p256 ? TestSigner.P256(id + "-key") : TestSigner.Ed25519(id + "-key");
        (status, _, text, _) = await server.SendAsync(HttpMethod.Post, $"/v1/principals/{id}/credentials",
            $$"""{"keyId":"{{s.KeyId}}","algorithm":"{{s.Algorithm}}","publicKey":"{{s.PublicKeyBase64}}","leaseSeconds":3600}""");
        Assert.True(status == HttpStatusCode.Created, text);
        return s;
    }

    private static async Task<(HttpStatusCode Status, JsonNode? Body, string Text)> SendAsync(HttpRequestMessage req, HttpClient? client = null)
    {
        using (req)
        {
            using HttpResponseMessage r = await (client ?? Anonymous).SendAsync(req);
            string text = await r.Content.ReadAsStringAsync();
            JsonNode? body = text.Length > 0 && text[0] == '{' ? JsonNode.Parse(text) : null;
            return (r.StatusCode, body, text);
        }
    }

    private async Task<JsonArray> AuditAsync()
    {
        await server.App.Services.GetRequiredService<Conclave.Server.Api.DenialAudit>().FlushAsync();
        var (_, body, _, _) = await server.SendAsync(HttpMethod.Get, "/v1/audit?last=1000");
        return body!["entries"]!.AsArray();
    }

    [Fact]
    public async Task Agents_with_ed25519_and_p256_credentials_authenticate_and_are_the_audit_actor()
    {
        using TestSigner ed = await NewAgentAsync("bot-ed");
        using TestSigner p = await NewAgentAsync("bot-p256", p256: true);
        foreach (TestSigner s in new[] { ed, p })
        {
            var (status, body, text) = await SendAsync(s.Request(HttpMethod.Post, server.BaseUrl + "/rpc", Rpc("eth_chainId")));
            Assert.True(status == HttpStatusCode.OK, text);
            Assert.Equal("0x1", body!["result"]!.GetValue<string>());
        }

        JsonArray entries = await AuditAsync();
        Assert.Contains(entries, e => e!["actor"]!.GetValue<string>() == "bot-ed" && e["action"]!.GetValue<string>() == "POST /rpc" && e["decision"]!.GetValue<string>() == "allow");
        Assert.Contains(entries, e => e!["actor"]!.GetValue<string>() == "bot-p256" && e["action"]!.GetValue<string>() == "POST /rpc");

        // The admin token keeps working, as the principal "admin".
        var (s2, _, _, _) = await server.SendAsync(HttpMethod.Get, "/v1/principals/bot-ed");
        Assert.Equal(HttpStatusCode.OK, s2);
    }

    [Fact]
    public async Task Replayed_expired_wrong_key_tampered_and_unknown_requests_are_refused_401_and_audited()
    {
        using TestSigner bot = await NewAgentAsync("bot-refusals");
        string url = server.BaseUrl + "/rpc";

        // Replayed: the same signed request twice.
        string nonce = TestSigner.NewNonce();
        DateTimeOffset now = DateTimeOffset.UtcNow;
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(bot.Request(HttpMethod.Post, url, Rpc("eth_chainId"), now, nonce))).Status);
        var replay = await SendAsync(bot.Request(HttpMethod.Post, url, Rpc("eth_chainId"), now, nonce));
        AssertRefused(replay, "already used");

        // Expired: created two minutes ago with a 30 s lifetime.
        AssertRefused(await SendAsync(bot.Request(HttpMethod.Post, url, Rpc("eth_chainId"), now.AddMinutes(-2))), "expired");

        // Signed by the wrong key under the agent's key id.
        using (var wrong = new TestSigner(HttpSigningKey.Ed25519FromSeed(RandomNumberGenerator.GetBytes(32)), bot.KeyId))
        {
            AssertRefused(await SendAsync(wrong.Request(HttpMethod.Post, url, Rpc("eth_chainId"))), "does not verify");
        }

        // A tampered body: signed over one body, another sent.
        AssertRefused(await SendAsync(bot.Request(HttpMethod.Post, url, Rpc("eth_chainId"), sendJson: Rpc("eth_accounts"))), "Content-Digest");

        // An unknown key id.
        using (var stranger = TestSigner.Ed25519("nobody-key"))
        {
            AssertRefused(await SendAsync(stranger.Request(HttpMethod.Post, url, Rpc("eth_chainId"))), "no active credential");
        }

        // Signed for another URL (the target URI is covered).
        AssertRefused(await SendAsync(Retarget(bot.Request(HttpMethod.Post, server.BaseUrl + "/rpc?x=1", Rpc("eth_chainId")), url)), "does not verify");

        JsonArray entries = await AuditAsync();
        foreach (string reason in new[] { "replayed", "expired", "bad-signature", "digest-mismatch", "unknown-credential" })
        {
            Assert.Contains(entries, e => e!["decision"]!.GetValue<string>() == "deny" && e["action"]!.GetValue<string>() == "POST /rpc"
                && e["result"]!.GetValue<string>().StartsWith($"unauthorized ({reason}) from ", StringComparison.Ordinal));
        }
    }

    private static HttpRequestMessage Retarget(HttpRequestMessage req, string url)
    {
        req.RequestUri = new Uri(url);
        return req;
    }

    private static void AssertRefused((HttpStatusCode Status, JsonNode? Body, string Text) r, string detail)
    {
        Assert.True(r.Status == HttpStatusCode.Unauthorized, r.Text);
        Assert.Equal("https://conclave.dev/problems/unauthorized", r.Body!["type"]!.GetValue<string>());
        Assert.Contains(detail, r.Body["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.DoesNotContain('\n', r.Body["detail"]!.GetValue<string>());
    }

    [Fact]
    public async Task Revoked_lapsed_and_disabled_are_refused_and_an_agent_renews_and_revokes_only_its_own_credential()
    {
        using TestSigner bot = await NewAgentAsync("bot-lease");
        using TestSigner other = await NewAgentAsync("bot-other");
        string url = server.BaseUrl + "/rpc";

        // An agent renews its own credential (empty body: the default lease; or a given one)...
        var renewed = await SendAsync(bot.Request(HttpMethod.Post, $"{server.BaseUrl}/v1/principals/bot-lease/credentials/{bot.KeyId}/renew", """{"leaseSeconds":7200}"""));
        Assert.True(renewed.Status == HttpStatusCode.OK, renewed.Text);
        Assert.Equal("active", renewed.Body!["state"]!.GetValue<string>());
        Assert.True(renewed.Body["leaseExpiresAt"]!.GetValue<DateTimeOffset>() > DateTimeOffset.UtcNow.AddSeconds(7000));
        // ...but not another's: 403, and the other credential is untouched.
        var foreign = await SendAsync(bot.Request(HttpMethod.Post, $"{server.BaseUrl}/v1/principals/bot-other/credentials/{other.KeyId}/revoke"));
        Assert.True(foreign.Status == HttpStatusCode.Forbidden, foreign.Text);
        Assert.Equal("https://conclave.dev/problems/forbidden", foreign.Body!["type"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(other.Request(HttpMethod.Post, url, Rpc("eth_chainId")))).Status);

        // Lapsed: the lease ended (set in the store, as time passing would).
        IConclaveStore store = server.App.Services.GetRequiredService<IConclaveStore>();
        await store.Principals.RenewCredentialAsync(bot.KeyId, DateTimeOffset.UtcNow.AddSeconds(-1));
        AssertRefused(await SendAsync(bot.Request(HttpMethod.Post, url, Rpc("eth_chainId"))), "lease");
        var (s, _, _, _) = await server.SendAsync(HttpMethod.Post, $"/v1/principals/bot-lease/credentials/{bot.KeyId}/renew", "{}"); // an admin renews it
        Assert.Equal(HttpStatusCode.OK, s);
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(bot.Request(HttpMethod.Post, url, Rpc("eth_chainId")))).Status);

        // Disabled principal: refused until enabled again.
        Assert.Equal(HttpStatusCode.OK, (await server.SendAsync(HttpMethod.Post, "/v1/principals/bot-lease/disable")).Status);
        AssertRefused(await SendAsync(bot.Request(HttpMethod.Post, url, Rpc("eth_chainId"))), "disabled");
        Assert.Equal(HttpStatusCode.OK, (await server.SendAsync(HttpMethod.Post, "/v1/principals/bot-lease/enable")).Status);

        // The agent revokes its own credential; from then on it is refused, and revocation is final.
        var revoked = await SendAsync(bot.Request(HttpMethod.Post, $"{server.BaseUrl}/v1/principals/bot-lease/credentials/{bot.KeyId}/revoke"));
        Assert.True(revoked.Status == HttpStatusCode.OK, revoked.Text);
        Assert.Equal("revoked", revoked.Body!["state"]!.GetValue<string>());
        AssertRefused(await SendAsync(bot.Request(HttpMethod.Post, url, Rpc("eth_chainId"))), "revoked");
        var (again, body, _, _) = await server.SendAsync(HttpMethod.Post, $"/v1/principals/bot-lease/credentials/{bot.KeyId}/renew", "{}");
        Assert.Equal(HttpStatusCode.Conflict, again);
        Assert.Equal("https://conclave.dev/problems/credential-revoked", body!["type"]!.GetValue<string>());

        JsonArray entries = await AuditAsync();
        foreach (string reason in new[] { "lapsed", "disabled", "revoked" })
        {
            Assert.Contains(entries, e => e!["decision"]!.GetValue<string>() == "deny" && e["result"]!.GetValue<string>().StartsWith($"unauthorized ({reason}) from ", StringComparison.Ordinal));
        }

        // The refused attempt on another's credential is in the log under the agent's name.
        Assert.Contains(entries, e => e!["actor"]!.GetValue<string>() == "bot-lease" && e["action"]!.GetValue<string>() == "POST /v1/principals/{id}/credentials/{keyId}/revoke"
            && e["result"]!.GetValue<string>().StartsWith("failed 403 forbidden", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("""{"kind":"agent"}""", "id must be")]
    [InlineData("""{"id":"bad id!","kind":"agent"}""", "id must be")]
    [InlineData("""{"id":"admin","kind":"person","roles":["admin"]}""", "reserved")]
    [InlineData("""{"id":"x1","kind":"robot"}""", "kind must be")]
    [InlineData("""{"id":"x1","kind":"person"}""", "roles is required")]
    [InlineData("""{"id":"x1","kind":"person","roles":["agent"]}""", "roles:")]
    [InlineData("""{"id":"x1","kind":"agent","roles":["admin"]}""", "exactly the role agent")]
    [InlineData("""{"id":"x1","kind":"person","roles":["root"]}""", "roles[0] must be")]
    [InlineData("""{"id":"x1","kind":"agent","scope":{"operations":["steal"]}}""", "scope.operations[0]")]
    [InlineData("""{"id":"x1","kind":"agent","scope":{"keys":[""]}}""", "scope.keys[0]")]
    [InlineData("""{"id":"x1","kind":"agent","extra":1}""", "unknown field")]
    public async Task Bad_principals_are_refused_with_one_readable_line(string json, string expected)
    {
        var (status, body, text, _) = await server.SendAsync(HttpMethod.Post, "/v1/principals", json);
        Assert.True(status == HttpStatusCode.BadRequest, text);
        Assert.Contains(expected, body!["detail"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"algorithm":"rsa","publicKey":"AAAA"}""", "algorithm must be")]
    [InlineData("""{"publicKey":"AAAA"}""", "algorithm is required")]
    [InlineData("""{"algorithm":"ed25519"}""", "publicKey is required")]
    [InlineData("""{"algorithm":"ed25519","publicKey":"not base64!"}""", "base64")]
    [InlineData("""{"algorithm":"ed25519","publicKey":"AAAA"}""", "32 bytes")]
    [InlineData("""{"algorithm":"ecdsa-p256-sha256","publicKey":"BAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}""", "P-256")]
    [InlineData("""{"algorithm":"ed25519","publicKey":"11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=","leaseSeconds":5}""", "leaseSeconds must be")]
    [InlineData("""{"algorithm":"ed25519","publicKey":"11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=","keyId":"a b"}""", "keyId must be")]
    public async Task Bad_credentials_are_refused_with_one_readable_line(string json, string expected)
    {
        await server.SendAsync(HttpMethod.Post, "/v1/principals", """{"id":"cred-target","kind":"agent"}""");
        var (status, body, text, _) = await server.SendAsync(HttpMethod.Post, "/v1/principals/cred-target/credentials", json);
        Assert.True(status == HttpStatusCode.BadRequest, text);
        Assert.Contains(expected, body!["detail"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Principals_are_listed_got_and_duplicates_and_unknowns_are_typed_errors()
    {
        using TestSigner bot = await NewAgentAsync("bot-list");
        var (status, body, _, _) = await server.SendAsync(HttpMethod.Get, "/v1/principals/bot-list");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("agent", body!["kind"]!.GetValue<string>());
        Assert.Equal(["agent"], body["roles"]!.AsArray().Select(r => r!.GetValue<string>()));
        Assert.Equal(bot.KeyId, body["credentials"]![0]!["keyId"]!.GetValue<string>());
        Assert.Equal(bot.PublicKeyBase64, body["credentials"]![0]!["publicKey"]!.GetValue<string>());
        (status, body, _, _) = await server.SendAsync(HttpMethod.Get, "/v1/principals");
        Assert.Contains(body!["principals"]!.AsArray(), p => p!["id"]!.GetValue<string>() == "bot-list");

        (status, body, _, _) = await server.SendAsync(HttpMethod.Post, "/v1/principals", """{"id":"bot-list","kind":"agent"}""");
        Assert.Equal((HttpStatusCode.Conflict, "https://conclave.dev/problems/principal-exists"), (status, body!["type"]!.GetValue<string>()));
        (status, body, _, _) = await server.SendAsync(HttpMethod.Post, "/v1/principals/bot-list/credentials", $$"""{"keyId":"{{bot.KeyId}}","algorithm":"ed25519","publicKey":"{{bot.PublicKeyBase64}}"}""");
        Assert.Equal((HttpStatusCode.Conflict, "https://conclave.dev/problems/credential-exists"), (status, body!["type"]!.GetValue<string>()));
        (status, body, _, _) = await server.SendAsync(HttpMethod.Get, "/v1/principals/nobody");
        Assert.Equal((HttpStatusCode.NotFound, "https://conclave.dev/problems/unknown-principal"), (status, body!["type"]!.GetValue<string>()));
        (status, body, _, _) = await server.SendAsync(HttpMethod.Post, "/v1/principals/bot-list/credentials/nope/revoke");
        Assert.Equal(HttpStatusCode.NotFound, status);
    }

    [Fact]
    public async Task A_replay_sent_to_another_replica_on_the_same_store_is_refused()
    {
        using TestSigner bot = await NewAgentAsync("bot-replicas");

        // A second replica on the same data folder and store, with its own listen address.
        string dataRoot = Path.GetDirectoryName(Path.GetDirectoryName(server.Config.Resolve(server.Config.DataDir)))!;
        Conclave.Server.Config.ServerConfig second = Conclave.Server.Config.ServerConfig.Load(new LocalClusterLayout(dataRoot).ServerConfigPath);
        second.Listen = "127.0.0.1:" + NodelessServer.FreePort();
        WebApplication replica = await ServerHost.BuildAsync(second);
        await replica.StartAsync();
        try
        {
            // Both replicas sit behind one address (a load balancer): the signed URL is the same for both.
            string url = server.BaseUrl + "/rpc";
            string nonce = TestSigner.NewNonce();
            DateTimeOffset now = DateTimeOffset.UtcNow;
            Assert.Equal(HttpStatusCode.OK, (await SendAsync(bot.Request(HttpMethod.Post, url, Rpc("eth_chainId"), now, nonce))).Status);

            HttpRequestMessage replay = bot.Request(HttpMethod.Post, url, Rpc("eth_chainId"), now, nonce);
            replay.RequestUri = new Uri("http://" + second.Listen + "/rpc");
            replay.Headers.Host = new Uri(server.BaseUrl).Authority;
            AssertRefused(await SendAsync(replay), "already used");

            // A fresh nonce through the other replica is accepted (the refusal was the replay, not the replica).
            HttpRequestMessage fresh = bot.Request(HttpMethod.Post, url, Rpc("eth_chainId"));
            fresh.RequestUri = new Uri("http://" + second.Listen + "/rpc");
            fresh.Headers.Host = new Uri(server.BaseUrl).Authority;
            Assert.Equal(HttpStatusCode.OK, (await SendAsync(fresh)).Status);
        }
        finally
        {
            await replica.StopAsync();
            await replica.DisposeAsync();
        }
    }
}
