using System.Net;
using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json.Nodes;
using Conclave.Policy.HttpSignatures;
using Conclave.Server.Api;
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

    /// <summary>An Ed25519 signer whose key derives from the run seed, named by <paramref name="test"/> and <paramref name="keyId"/>.</summary>
    public static TestSigner Ed25519(string keyId, [CallerMemberName] string test = "") =>
        new(HttpSigningKey.Ed25519FromSeed(TestSeed.Bytes(32, "signer " + keyId, test)), keyId);

    /// <summary>A P-256 signer whose key derives from the run seed, named by <paramref name="test"/> and <paramref name="keyId"/>.</summary>
    public static TestSigner P256(string keyId, [CallerMemberName] string test = "") =>
        new(HttpSigningKey.EcdsaP256(TestSeed.P256("signer " + keyId, test)), keyId);

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

    // Not TestSeed: the server remembers each accepted nonce of a key id for its replay window, so a nonce is always fresh.
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

    private async Task<TestSigner> NewAgentAsync(string id, bool p256 = false, string scope = """{"keys":["*"],"operations":["*"]}""", [CallerMemberName] string test = "")
    {
        var (status, _, text, _) = await server.SendAsync(HttpMethod.Post, "/v1/principals", $$"""{"id":"{{id}}","kind":"agent","scope":{{scope}}}""");
        Assert.True(status == HttpStatusCode.Created, text);
        TestSigner s = p256 ? TestSigner.P256(id + "-key", test) : TestSigner.Ed25519(id + "-key", test);
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
        using (var wrong = new TestSigner(HttpSigningKey.Ed25519FromSeed(TestSeed.Bytes(32, "wrong key")), bot.KeyId))
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
        second.Listen = "127.0.0.1:" + LoopbackPorts.Take();
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

    /// <summary>
    /// A client certificate for <paramref name="principal"/> (a SAN URI urn:conclave:principal:ID, none when null) issued by
    /// <paramref name="issuer"/>, its serial number the next one of <paramref name="serials"/>, its P-256 key derived from the
    /// run seed and named by <paramref name="test"/> and <paramref name="keyLabel"/> (one label per certificate).
    /// </summary>
    private static X509Certificate2 ClientCertificate(DeterministicRandomSource serials, string keyLabel, X509Certificate2 issuer, string? principal, bool clientAuth = true,
        [CallerMemberName] string test = "")
    {
        using ECDsa key = TestSeed.P256("client certificate " + keyLabel, test);
        var req = new CertificateRequest("CN=" + (principal ?? "nobody"), key, HashAlgorithmName.SHA256);
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        req.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(clientAuth ? "1.3.6.1.5.5.7.3.2" : "1.3.6.1.5.5.7.3.1")], false));
        if (principal is not null)
        {
            var san = new SubjectAlternativeNameBuilder();
            san.AddUri(new Uri("urn:conclave:principal:" + principal));
            req.CertificateExtensions.Add(san.Build());
        }

        byte[] serial = serials.Bytes(8);
        serial[0] &= 0x7f;
        using X509Certificate2 cert = req.Create(issuer, DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddHours(1), serial);
        using X509Certificate2 withKey = cert.CopyWithPrivateKey(key);
        return X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);
    }

    [Fact]
    public async Task A_client_certificate_from_the_cluster_CA_authenticates_the_agent_it_names_on_a_real_TLS_listener()
    {
        string pki = "";
        (WebApplication app, Conclave.Server.Config.ServerConfig config, string dir, string token) = await NodelessServer.StartAsync(c =>
        {
            string caCrt = c.Resolve(c.Tls.Ca);
            pki = Path.GetDirectoryName(caCrt)!;
            using var ca = Conclave.Node.Pki.DevelopmentCertificateAuthority.Load(caCrt, Path.Combine(pki, "ca.key"));
            using (X509Certificate2 api = ca.Issue("conclave-api", serverAuth: true, clientAuth: false, ["localhost"], [IPAddress.Loopback]))
            {
                Conclave.Node.Pki.PemFiles.Write(api, Path.Combine(pki, "api.crt"), Path.Combine(pki, "api.key"));
            }

            c.ApiTls = new Conclave.Server.Config.ApiTlsFiles { Certificate = Path.Combine(pki, "api.crt"), Key = Path.Combine(pki, "api.key"), ClientCa = caCrt };
        });
        var clients = new List<HttpClient>();
        try
        {
            using X509Certificate2 cluster = X509Certificate2.CreateFromPemFile(Path.Combine(pki, "ca.crt"), Path.Combine(pki, "ca.key"));
            HttpClient Client(X509Certificate2? certificate)
            {
                // The certificate is sent whatever the server's list of acceptable issuers says (so the refusals are the server's).
                var handler = new SocketsHttpHandler
                {
                    SslOptions = new System.Net.Security.SslClientAuthenticationOptions
                    {
                        RemoteCertificateValidationCallback = (_, server, _, _) => server is not null && server.Issuer == cluster.Subject,
                        ClientCertificates = certificate is null ? null : new X509CertificateCollection { certificate },
                        LocalCertificateSelectionCallback = certificate is null ? null : (_, _, _, _, _) => certificate,
                    },
                };

                var http = new HttpClient(handler, disposeHandler: true) { BaseAddress = new Uri("https://" + config.Listen) };
                clients.Add(http);
                return http;
            }

            async Task<(HttpStatusCode Status, JsonNode? Body, string Text)> Send(HttpClient http, HttpMethod method, string path, string? json = null)
            {
                using var req = new HttpRequestMessage(method, path) { Content = json is null ? null : new StringContent(json, Encoding.UTF8, "application/json") };
                using HttpResponseMessage r = await http.SendAsync(req);
                string text = await r.Content.ReadAsStringAsync();
                return (r.StatusCode, text.Length > 0 ? JsonNode.Parse(text) : null, text);
            }

            // The admin token still works on the TLS listener.
            HttpClient admin = Client(null);
            admin.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
            foreach (string body in new[]
            {
                """{"id":"bot","kind":"agent","scope":{"keys":["*"],"operations":["*"]}}""",
                """{"id":"off","kind":"agent","scope":{"keys":["*"],"operations":["*"]}}""",
                """{"id":"pat","kind":"person","roles":["operator"],"scope":{"keys":["*"],"operations":["*"]}}""",
            })
            {
                var made = await Send(admin, HttpMethod.Post, "/v1/principals", body);
                Assert.True(made.Status == HttpStatusCode.Created, made.Text);
            }

            Assert.Equal(HttpStatusCode.OK, (await Send(admin, HttpMethod.Post, "/v1/principals/off/disable")).Status);
            var key = await Send(admin, HttpMethod.Post, "/v1/keys", """{"name":"mtls-ed","scheme":"ed25519"}""");
            Assert.True(key.Status == HttpStatusCode.Created, key.Text);

            // The agent's certificate authenticates it: its role's routes answer, an admin route is forbidden to it, and
            // policy decides its signing request as principal bot (the starter policy allows only the admin: denied).
            DeterministicRandomSource serials = TestSeed.For("certificate serials");
            using X509Certificate2 botCert = ClientCertificate(serials, "bot", cluster, "bot");
            HttpClient bot = Client(botCert);
            var own = await Send(bot, HttpMethod.Get, "/v1/requests");
            Assert.True(own.Status == HttpStatusCode.OK, own.Text);
            var adminRoute = await Send(bot, HttpMethod.Get, "/v1/principals");
            Assert.Equal(HttpStatusCode.Forbidden, adminRoute.Status);
            Assert.Equal(ProblemTypes.Forbidden, adminRoute.Body!["type"]!.GetValue<string>());
            var sign = await Send(bot, HttpMethod.Post, "/v1/keys/mtls-ed/sign", """{"message":"01"}""");
            Assert.Equal(HttpStatusCode.Forbidden, sign.Status);
            Assert.Contains("principal bot", sign.Body!["policy"]!["reasons"]![0]!.GetValue<string>(), StringComparison.Ordinal);
            var audit = await Send(admin, HttpMethod.Get, "/v1/audit?last=50");
            Assert.Contains(audit.Body!["entries"]!.AsArray(), e => e!["action"]!.GetValue<string>() == "policy.decide" && e["actor"]!.GetValue<string>() == "bot");

            // Refused with a readable 401: no certificate, another CA, no clientAuth usage, a person, an unknown or a
            // disabled principal, and a certificate of the cluster CA that names no principal (the coordinator's).
            using var otherCa = Conclave.Node.Pki.DevelopmentCertificateAuthority.Create("Another CA");
            using X509Certificate2 foreign = ClientCertificate(serials, "foreign", otherCa.Certificate, "bot");
            using X509Certificate2 serverOnly = ClientCertificate(serials, "server only", cluster, "bot", clientAuth: false);
            using X509Certificate2 person = ClientCertificate(serials, "person", cluster, "pat");
            using X509Certificate2 ghost = ClientCertificate(serials, "ghost", cluster, "ghost");
            using X509Certificate2 disabled = ClientCertificate(serials, "disabled", cluster, "off");
            using X509Certificate2 coordinator = Conclave.Node.Pki.PemFiles.LoadWithKey(config.Resolve(config.Tls.Certificate), config.Resolve(config.Tls.Key));
            foreach ((X509Certificate2? cert, string why) in new (X509Certificate2?, string)[]
            {
                (null, "send the admin token"),
                (foreign, "not issued by the cluster CA"),
                (serverOnly, "not for client authentication"),
                (person, "agents only"),
                (ghost, "does not exist"),
                (disabled, "is disabled"),
                (coordinator, "names no principal"),
            })
            {
                var refused = await Send(Client(cert), HttpMethod.Get, "/v1/requests");
                Assert.True(refused.Status == HttpStatusCode.Unauthorized, $"{why}: {refused.Text}");
                Assert.Equal(ProblemTypes.Unauthorized, refused.Body!["type"]!.GetValue<string>());
                Assert.Contains(why, refused.Body!["detail"]!.GetValue<string>(), StringComparison.Ordinal);
            }
        }
        finally
        {
            foreach (HttpClient c in clients)
            {
                c.Dispose();
            }

            await NodelessServer.StopAsync(app, dir);
        }
    }
}
