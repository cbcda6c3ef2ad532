using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Conclave.Crypto.Signing;
using Conclave.Server.Api;
using Conclave.Storage;
using Conclave.Storage.Keys;
using Microsoft.Extensions.DependencyInjection;
using Conclave.Testing;

namespace Conclave.Server.Tests;

/// <summary>
/// JSON-RPC defaults (issue 14 items 10 and 12, issue 20: eth_chainId and notifications) and unauthenticated load
/// (issue 14 item 9), on servers whose nodes never start (single keys sign without them).
/// </summary>
public sealed class RpcAndLoadTests(NodelessServer s) : IClassFixture<NodelessServer>
{
    private const string To = "0x3535353535353535353535353535353535353535";

    private async Task<(string Name, string Address)> CreateEcdsa(NodelessServer? server = null)
    {
        server ??= s;
        string name = "eth-" + Guid.NewGuid().ToString("N")[..8];
        var r = await server.SendAsync(HttpMethod.Post, "/v1/keys", $$"""{"name":"{{name}}","scheme":"ecdsa-secp256k1"}""");
        Assert.True(r.Status == HttpStatusCode.Created, r.Text);
        return (name, r.Body!["addresses"]!["ethereum"]!.GetValue<string>());
    }

    private async Task<JsonNode> Rpc(string method, string @params, HttpClient? client = null)
    {
        var r = await s.SendAsync(HttpMethod.Post, "/rpc", $$"""{"jsonrpc":"2.0","id":1,"method":"{{method}}","params":{{@params}}}""", client);
        Assert.True(r.Status == HttpStatusCode.OK, r.Text);
        return r.Body!;
    }

    private static int Code(JsonNode r) => r["error"]?["code"]?.GetValue<int>() ?? 0;

    private static string Message(JsonNode r) => r["error"]?["message"]?.GetValue<string>() ?? "";

    [Fact]
    public async Task ChainId_IsServed_DefaultOne()
    {
        JsonNode r = await Rpc("eth_chainId", "[]");
        Assert.Equal("0x1", r["result"]!.GetValue<string>());
        Assert.Equal(1, s.Config.ChainId);
    }

    [Fact]
    public async Task Notifications_AreNotAnswered()
    {
        var single = await s.SendAsync(HttpMethod.Post, "/rpc", """{"jsonrpc":"2.0","method":"eth_accounts","params":[]}""");
        Assert.Equal(HttpStatusCode.NoContent, single.Status);
        Assert.Equal("", single.Text);

        var batch = await s.SendAsync(HttpMethod.Post, "/rpc", """[{"jsonrpc":"2.0","method":"eth_chainId"},{"jsonrpc":"2.0","id":2,"method":"eth_chainId"}]""");
        Assert.Equal(HttpStatusCode.OK, batch.Status);
        JsonArray results = batch.Body!.AsArray();
        Assert.Single(results);
        Assert.Equal(2, results[0]!["id"]!.GetValue<int>());

        var onlyNotifications = await s.SendAsync(HttpMethod.Post, "/rpc", """[{"jsonrpc":"2.0","method":"eth_chainId"},{"jsonrpc":"2.0","method":"eth_accounts"}]""");
        Assert.Equal(HttpStatusCode.NoContent, onlyNotifications.Status);

        // "id": null is a request (answered), not a notification.
        var nullId = await s.SendAsync(HttpMethod.Post, "/rpc", """{"jsonrpc":"2.0","id":null,"method":"eth_chainId"}""");
        Assert.Equal(HttpStatusCode.OK, nullId.Status);
        Assert.Equal("0x1", nullId.Body!["result"]!.GetValue<string>());
    }

    [Fact]
    public async Task SignTransaction_RefusesLegacyWithoutChainId_AndMissingNonceGasOrFees()
    {
        (_, string from) = await CreateEcdsa();
        string Tx(string fields) => $$"""[{"from":"{{from}}","to":"{{To}}","value":"0x1"{{fields}}}]""";

        JsonNode unprotected = await Rpc("eth_signTransaction", Tx(""","nonce":"0x0","gas":"0x5208","gasPrice":"0x3b9aca00" """));
        Assert.Equal(-32602, Code(unprotected));
        Assert.Contains("chainId", Message(unprotected), StringComparison.Ordinal);
        JsonNode zeroChain = await Rpc("eth_signTransaction", Tx(""","chainId":"0x0","nonce":"0x0","gas":"0x5208","gasPrice":"0x3b9aca00" """));
        Assert.Equal(-32602, Code(zeroChain));

        JsonNode noNonce = await Rpc("eth_signTransaction", Tx(""","chainId":"0x1","gas":"0x5208","gasPrice":"0x3b9aca00" """));
        Assert.Equal(-32602, Code(noNonce));
        Assert.Contains("nonce", Message(noNonce), StringComparison.Ordinal);
        JsonNode noGas = await Rpc("eth_signTransaction", Tx(""","chainId":"0x1","nonce":"0x0","gasPrice":"0x3b9aca00" """));
        Assert.Contains("gas", Message(noGas), StringComparison.Ordinal);
        Assert.Equal(-32602, Code(noGas));
        JsonNode noFees = await Rpc("eth_signTransaction", Tx(""","type":"0x2","chainId":"0x1","nonce":"0x0","gas":"0x5208" """));
        Assert.Equal(-32602, Code(noFees));
        Assert.Contains("maxFeePerGas", Message(noFees), StringComparison.Ordinal);

        JsonNode ok = await Rpc("eth_signTransaction", Tx(""","chainId":"0x1","nonce":"0x0","gas":"0x5208","gasPrice":"0x3b9aca00" """));
        Assert.StartsWith("0x", ok["result"]!.GetValue<string>(), StringComparison.Ordinal);
        JsonNode ok1559 = await Rpc("eth_signTransaction", Tx(""","type":"0x2","chainId":"0x1","nonce":"0x0","gasLimit":"0x5208","maxFeePerGas":"0x2","maxPriorityFeePerGas":"0x1" """));
        Assert.StartsWith("0x02", ok1559["result"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task SignTransaction_UnprotectedLegacy_OnlyWhenServerJsonAllowsIt()
    {
        (var app, var config, string dir, string token) = await NodelessServer.StartAsync(c => c.AllowUnprotectedTransactions = true);
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri("http://" + config.Listen) };
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
            using HttpResponseMessage created = await http.PostAsync(new Uri("/v1/keys", UriKind.Relative), new StringContent("""{"name":"legacy","scheme":"ecdsa-secp256k1"}""", Encoding.UTF8, "application/json"));
            string from = JsonNode.Parse(await created.Content.ReadAsStringAsync())!["addresses"]!["ethereum"]!.GetValue<string>();
            using HttpResponseMessage r = await http.PostAsync(new Uri("/rpc", UriKind.Relative), new StringContent(
                $$"""{"jsonrpc":"2.0","id":1,"method":"eth_signTransaction","params":[{"from":"{{from}}","to":"{{To}}","nonce":"0x0","gas":"0x5208","gasPrice":"0x1"}]}""", Encoding.UTF8, "application/json"));
            JsonNode body = JsonNode.Parse(await r.Content.ReadAsStringAsync())!;
            Assert.True(body["result"] is not null, body.ToJsonString());
        }
        finally
        {
            await NodelessServer.StopAsync(app, dir);
        }
    }

    /// <summary>Another replica sharing the store disables a key: the JSON-RPC signer must see it at once.</summary>
    [Fact]
    public async Task JsonRpc_SeesKeyStateChangedInTheStore()
    {
        (string name, string address) = await CreateEcdsa();
        JsonNode first = await Rpc("personal_sign", $$"""["0x68656c6c6f","{{address}}"]""");
        Assert.True(first["result"] is not null, first.ToJsonString());
        Assert.Contains((await Rpc("eth_accounts", "[]"))["result"]!.AsArray(), a => a!.GetValue<string>() == address);

        IConclaveStore store = s.App.Services.GetRequiredService<IConclaveStore>();
        KeyRecord key = (await store.Keys.GetByNameAsync(name))!;
        await store.Keys.SetStateAsync(key.Id, KeyState.Disabled);

        JsonNode after = await Rpc("personal_sign", $$"""["0x68656c6c6f","{{address}}"]""");
        Assert.True(after["error"] is not null, after.ToJsonString());
        Assert.Contains("not active", Message(after), StringComparison.Ordinal);
        Assert.DoesNotContain((await Rpc("eth_accounts", "[]"))["result"]!.AsArray(), a => a!.GetValue<string>() == address);
    }

    /// <summary>
    /// A flood of requests with a random bad token per request from one address: they are rate-limited by address
    /// (429s appear: a random header is no longer a fresh bucket), their refusals are counted into a few audit
    /// entries instead of one each, and a valid client at another address signs every one of its requests.
    /// </summary>
    [Fact]
    public async Task BadTokenFlood_IsLimitedByAddress_CountedInTheAudit_AndDoesNotStopAValidClient()
    {
        (var app, var config, string dir, string token) = await NodelessServer.StartAsync(c =>
        {
            c.RateLimitBurst = 40;
            c.RateLimitPerSecond = 20;
            c.DenialAuditWindowSeconds = 1;
        });
        try
        {
            var baseUri = new Uri("http://" + config.Listen);
            using var valid = new HttpClient { BaseAddress = baseUri };
            valid.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
            using HttpResponseMessage created = await valid.PostAsync(new Uri("/v1/keys", UriKind.Relative), new StringContent("""{"name":"bot","scheme":"ed25519"}""", Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            byte[] publicKey = Convert.FromHexString(JsonNode.Parse(await created.Content.ReadAsStringAsync())!["publicKey"]!.GetValue<string>());
            long head = JsonNode.Parse(await valid.GetStringAsync(new Uri("/v1/audit?last=1", UriKind.Relative)))!["next"]!.GetValue<long>();

            // The attacker connects from 127.0.0.2 (any 127/8 address is loopback on Linux).
            using var attacker = new HttpClient(new SocketsHttpHandler
            {
                ConnectCallback = async (ctx, ct) =>
                {
                    var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
                    socket.Bind(new IPEndPoint(IPAddress.Parse("127.0.0.2"), 0));
                    await socket.ConnectAsync(ctx.DnsEndPoint, ct);
                    return new NetworkStream(socket, ownsSocket: true);
                },
            }) { BaseAddress = baseUri };
            var floodStatuses = new System.Collections.Concurrent.ConcurrentBag<HttpStatusCode>();
            Task flood = Parallel.ForAsync(0, 600, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (i, ct) =>
            {
                using var req = new HttpRequestMessage(HttpMethod.Post, "/v1/keys/bot/sign") { Content = new StringContent("""{"message":"00"}""", Encoding.UTF8, "application/json") };
                req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Convert.ToHexString(TestSeed.Bytes(16, $"token@180/{i}")));
                using HttpResponseMessage r = await attacker.SendAsync(req, ct);
                floodStatuses.Add(r.StatusCode);
            });

            var signed = new List<HttpStatusCode>();
            for (int i = 0; i < 10; i++)
            {
                byte[] msg = TestSeed.Bytes(16, $"message@188/{i}");
                using HttpResponseMessage r = await valid.PostAsync(new Uri("/v1/keys/bot/sign", UriKind.Relative), new StringContent($$"""{"message":"{{Convert.ToHexStringLower(msg)}}"}""", Encoding.UTF8, "application/json"));
                signed.Add(r.StatusCode);
                if (r.IsSuccessStatusCode)
                {
                    byte[] sig = Convert.FromHexString(JsonNode.Parse(await r.Content.ReadAsStringAsync())!["signature"]!.GetValue<string>());
                    Assert.True(SignatureSchemes.Ed25519.Verify(publicKey, msg, sig));
                }
            }

            await flood;
            Assert.All(signed, st => Assert.Equal(HttpStatusCode.OK, st));
            Assert.All(floodStatuses, st => Assert.Contains(st, new[] { HttpStatusCode.Unauthorized, HttpStatusCode.TooManyRequests }));
            Assert.Contains(HttpStatusCode.TooManyRequests, floodStatuses);
            int refused = floodStatuses.Count(st => st == HttpStatusCode.Unauthorized);
            Assert.True(refused > 3, $"{refused} refusals");

            // Every refusal is accounted for, in far fewer entries than refusals (the repeats' entry is written when
            // its one-second window closes).
            List<JsonNode> denials = [];
            for (int attempt = 0; attempt < 40; attempt++)
            {
                JsonArray entries = JsonNode.Parse(await valid.GetStringAsync(new Uri($"/v1/audit?after={head}&limit=1000", UriKind.Relative)))!["entries"]!.AsArray();
                denials = [.. entries.Where(e => e!["decision"]!.GetValue<string>() == "deny").Select(e => e!)];
                if (Accounted(denials) >= refused)
                {
                    break;
                }

                await Task.Delay(250);
            }

            Assert.Equal(refused, Accounted(denials));
            Assert.True(denials.Count < refused / 2, $"{denials.Count} audit entries for {refused} refusals");
            Assert.All(denials, d => Assert.Contains("127.0.0.2", d["result"]!.GetValue<string>(), StringComparison.Ordinal));
        }
        finally
        {
            await NodelessServer.StopAsync(app, dir);
        }
    }

    /// <summary>Refusals the entries account for: one per individual entry, N per "N more" entry.</summary>
    private static int Accounted(List<JsonNode> denials) => denials.Sum(d => Repeats(d) is int n && n > 0 ? n : 1);

    private static int Repeats(JsonNode entry)
    {
        string result = entry["result"]!.GetValue<string>();
        int colon = result.IndexOf(": ", StringComparison.Ordinal);
        return colon < 0 ? 0 : int.Parse(result[(colon + 2)..result.IndexOf(" more", StringComparison.Ordinal)], System.Globalization.CultureInfo.InvariantCulture);
    }

    [Fact]
    public async Task Readiness_IsComputedOncePerSecond_AndSharedByConcurrentCallers()
    {
        int checks = 0;
        var clock = new ManualClock();
        using var cache = new ReadinessCache(async ct =>
        {
            Interlocked.Increment(ref checks);
            await Task.Yield();
            return new ReadyResponse(true, true, [1, 2, 3], 2);
        }, TimeSpan.FromSeconds(1), clock);

        await Task.WhenAll(Enumerable.Range(0, 50).Select(_ => cache.GetAsync(CancellationToken.None)));
        Assert.Equal(1, checks);
        clock.Advance(TimeSpan.FromMilliseconds(900));
        _ = await cache.GetAsync(CancellationToken.None);
        Assert.Equal(1, checks);
        clock.Advance(TimeSpan.FromMilliseconds(200));
        _ = await cache.GetAsync(CancellationToken.None);
        Assert.Equal(2, checks);
    }

    private sealed class ManualClock : TimeProvider
    {
        private long _ticks;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => Interlocked.Read(ref _ticks);

        public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);
    }
}
