using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using Conclave.Node.Config;
using Conclave.Server.Config;
using Conclave.Server.Hosting;
using Conclave.Server.Risk;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace Conclave.Server.Tests.Venue;

/// <summary>
/// Price sources read from a contract through the chain's upstream (server.json <c>risk.priceFeeds</c>, issue 16 "Risk
/// levels": "read from a price feed contract through an upstream node"): the example venue's MarginEngine oracle on a
/// real anvil chain, read with its <c>price()</c> and <c>priceUpdatedAt()</c> getters; a jump of the on-chain price raises
/// the level by itself, and a feed that cannot be read adds nothing and stops nothing.
/// </summary>
public sealed class PriceFeedTests
{
    [Fact]
    public async Task The_oracle_price_on_chain_is_sampled_at_its_update_time_and_a_jump_raises_the_level_by_itself()
    {
        using var chain = new AnvilChain();
        string[] accounts = await chain.AccountsAsync();
        string admin = accounts[0];
        string engine = await chain.DeployAsync(admin, ExampleVenue.Artifact("MarginEngine")["bytecode"]!.GetValue<string>());
        await chain.SendFromAsync(admin, engine, Abi.Call("setPriceFeeder(address,bool)", admin, true));
        await chain.SendFromAsync(admin, engine, Abi.Call("setPrice(uint256)", Abi.Wei("2000")));

        string dir = Path.Combine(Path.GetTempPath(), "conclave-feed-" + Guid.NewGuid().ToString("N")[..10]);
        var layout = new LocalClusterLayout(dir);
        layout.EnsureCreated(3, 2, LoopbackPorts.Take(), LoopbackPorts.Take());
        ServerConfig config = ServerConfig.Load(layout.ServerConfigPath);
        config.Upstreams = new() { [AnvilChain.ChainId.ToString(System.Globalization.CultureInfo.InvariantCulture)] = chain.Url.ToString() };
        config.Risk = new RiskSettings
        {
            PollMilliseconds = 200,
            PriceFeeds =
            [
                new() { Source = "ETH-USD", ChainId = AnvilChain.ChainId, Contract = engine, Kind = "getter", Price = "price()", UpdatedAt = "priceUpdatedAt()", Decimals = 18, PollSeconds = 1 },
                // No such function on the contract: the call reverts (or answers nothing); the feed adds nothing, the other goes on.
                new() { Source = "BTC-USD", ChainId = AnvilChain.ChainId, Contract = engine, Kind = "getter", Price = "btcPrice()", Decimals = 8, PollSeconds = 1 },
            ],
        };
        config.Validate();
        WebApplication app = await ServerHost.BuildAsync(config);
        await app.StartAsync();
        try
        {
            string token = (await File.ReadAllTextAsync(app.Services.GetRequiredService<ServerPaths>().AdminTokenFile)).Trim();
            using var http = new HttpClient { BaseAddress = new Uri("http://" + config.Listen) };
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
            async Task<JsonNode> Risk() => JsonNode.Parse(await http.GetStringAsync(new Uri("/v1/risk", UriKind.Relative)))!;
            JsonNode? Source(JsonNode risk, string source) => risk["inputs"]!["prices"]!.AsArray().FirstOrDefault(p => p!["source"]!.GetValue<string>() == source);
            async Task<JsonNode> WaitForSamples(int samples)
            {
                for (int i = 0; i < 150; i++)
                {
                    JsonNode risk = await Risk();
                    if (Source(risk, "ETH-USD") is { } eth && eth["samples"]!.GetValue<int>() >= samples)
                    {
                        return risk;
                    }

                    await Task.Delay(200);
                }

                throw new TimeoutException($"the feed did not add {samples} sample(s) within 30 s: {(await Risk()).ToJsonString()}");
            }

            // The first sample: at the block time the oracle recorded, not the time it was read.
            JsonNode first = await WaitForSamples(1);
            long updatedAt = (long)Abi.Uint(await chain.EthCallAsync(engine, Abi.Call("priceUpdatedAt()")));
            Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(updatedAt), Source(first, "ETH-USD")!["latestAt"]!.GetValue<DateTimeOffset>());
            Assert.Equal("normal", first["level"]!.GetValue<string>());

            // Re-reading an unchanged oracle adds nothing.
            await Task.Delay(2500);
            Assert.Equal(1, Source(await Risk(), "ETH-USD")!["samples"]!.GetValue<int>());

            // A calm move, then a 15 % jump a second later (ln 1.15 ≈ 0.14 ≥ the 0.10 stressed threshold).
            await Task.Delay(1100); // a later block time than the first sample's
            await chain.SendFromAsync(admin, engine, Abi.Call("setPrice(uint256)", Abi.Wei("2001")));
            Assert.Equal("normal", (await WaitForSamples(2))["level"]!.GetValue<string>());
            await Task.Delay(1100);
            await chain.SendFromAsync(admin, engine, Abi.Call("setPrice(uint256)", Abi.Wei("2301.15")));
            JsonNode jumped = await WaitForSamples(3);
            Assert.Equal("stressed", jumped["level"]!.GetValue<string>());
            Assert.Contains(jumped["reasons"]!.AsArray(), r => r!.GetValue<string>().StartsWith("realised volatility of ETH-USD", StringComparison.Ordinal));

            // The unreadable feed added nothing and the server still answers.
            Assert.Null(Source(jumped, "BTC-USD"));
        }
        finally
        {
            await app.StopAsync();
            await app.DisposeAsync();
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void A_bad_price_feed_is_a_config_error_naming_the_field()
    {
        const string Contract = "0x1111111111111111111111111111111111111111";
        PriceFeedSettings Good() => new() { Source = "ETH-USD", ChainId = 31337, Contract = Contract, Kind = "chainlink" };
        var upstreams = new ServerConfig { Upstreams = new() { ["31337"] = "http://127.0.0.1:8545" } }.UpstreamUrls();
        Assert.Single(PriceFeed.FromSettings([Good()], upstreams));
        foreach ((PriceFeedSettings feed, string expected) in new (PriceFeedSettings, string)[]
        {
            (new() { Source = "ETH USD", ChainId = 31337, Contract = Contract, Kind = "chainlink" }, "risk.priceFeeds[0].source"),
            (new() { Source = "ETH-USD", ChainId = 1, Contract = Contract, Kind = "chainlink" }, "risk.priceFeeds[0].chainId must name a chain of upstreams"),
            (new() { Source = "ETH-USD", ChainId = 31337, Contract = "0x11", Kind = "chainlink" }, "risk.priceFeeds[0].contract must be an address"),
            (new() { Source = "ETH-USD", ChainId = 31337, Contract = Contract, Kind = "oracle" }, "risk.priceFeeds[0].kind must be chainlink or getter"),
            (new() { Source = "ETH-USD", ChainId = 31337, Contract = Contract, Kind = "getter", Price = "price()" }, "risk.priceFeeds[0].decimals is required"),
            (new() { Source = "ETH-USD", ChainId = 31337, Contract = Contract, Kind = "getter", Price = "price(uint256)", Decimals = 8 }, "risk.priceFeeds[0].price must be a function without arguments"),
            (new() { Source = "ETH-USD", ChainId = 31337, Contract = Contract, Kind = "chainlink", Price = "price()" }, "a chainlink feed takes no price"),
            (new() { Source = "ETH-USD", ChainId = 31337, Contract = Contract, Kind = "chainlink", PollSeconds = 0 }, "risk.priceFeeds[0].pollSeconds must be between 1 and 3600"),
            (new() { Source = "ETH-USD", ChainId = 31337, Contract = Contract, Kind = "chainlink", Decimals = 40 }, "risk.priceFeeds[0].decimals must be between 0 and 36"),
        })
        {
            var e = Assert.Throws<ConfigException>(() => PriceFeed.FromSettings([feed], upstreams));
            Assert.Contains(expected, e.Message, StringComparison.Ordinal);
        }

        Assert.Contains("risk.priceFeeds[1].source: ETH-USD is read by another feed already",
            Assert.Throws<ConfigException>(() => PriceFeed.FromSettings([Good(), Good()], upstreams)).Message, StringComparison.Ordinal);

        // Through server.json validation too (what the server checks at start).
        string dir = Path.Combine(Path.GetTempPath(), "conclave-feed-" + Guid.NewGuid().ToString("N")[..10]);
        try
        {
            var layout = new LocalClusterLayout(dir);
            layout.EnsureCreated(3, 2, LoopbackPorts.Take(), LoopbackPorts.Take());
            ServerConfig config = ServerConfig.Load(layout.ServerConfigPath);
            config.Upstreams = new() { ["31337"] = "http://127.0.0.1:8545" };
            config.Validate();
            config.Risk = new RiskSettings { PriceFeeds = [Good()] };
            config.Risk.PriceFeeds[0].Kind = "oracle";
            Assert.Contains("risk.priceFeeds[0].kind", Assert.Throws<ConfigException>(config.Validate).Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>A JSON-RPC node answering eth_chainId and eth_call by selector (an AggregatorV3 feed), counting calls.</summary>
    private sealed class FakeFeedNode(Func<string, string> answer) : HttpMessageHandler
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            JsonNode call = JsonNode.Parse(await request.Content!.ReadAsStringAsync(cancellationToken))!;
            string method = call["method"]!.GetValue<string>();
            string result = method == "eth_chainId" ? "0x7a69" : answer(call["params"]![0]!["data"]!.GetValue<string>()[2..10]);
            var body = new JsonObject { ["jsonrpc"] = "2.0", ["id"] = call["id"]!.DeepClone(), ["result"] = result };
            return new HttpResponseMessage(System.Net.HttpStatusCode.OK) { Content = new StringContent(body.ToJsonString(), System.Text.Encoding.UTF8, "application/json") };
        }
    }

    private static string Word(System.Numerics.BigInteger v) =>
        Convert.ToHexStringLower(v.ToByteArray(isUnsigned: false, isBigEndian: true)).PadLeft(64, v.Sign < 0 ? 'f' : '0');

    /// <summary>
    /// A Chainlink AggregatorV3 feed (latestRoundData(), decimals()) through an upstream that answers like one: the answer
    /// scaled by the feed's own decimals, sampled at its updatedAt, a round that did not move adds nothing, and a
    /// negative answer or a malformed reply adds nothing.
    /// </summary>
    [Fact]
    public async Task A_chainlink_feed_is_read_at_its_own_scale_and_update_time()
    {
        DateTimeOffset updated = DateTimeOffset.UtcNow.AddSeconds(-30);
        System.Numerics.BigInteger answer = 3_012_345_000_000; // 30,123.45 at 8 decimals
        string? malformed = null;
        int decimalsCalls = 0;
        var node = new FakeFeedNode(selector =>
        {
            if (selector == Convert.ToHexStringLower(Abi.Selector("decimals()")))
            {
                decimalsCalls++;
                return "0x" + Word(8);
            }

            Assert.Equal(Convert.ToHexStringLower(Abi.Selector("latestRoundData()")), selector);
            return malformed ?? "0x" + Word(7) + Word(answer) + Word(updated.ToUnixTimeSeconds() - 5) + Word(updated.ToUnixTimeSeconds()) + Word(7);
        });
        string dir = Path.Combine(Path.GetTempPath(), "conclave-feed-" + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(dir);
        try
        {
            await using Conclave.Storage.IConclaveStore store = await Conclave.Storage.ConclaveStore.OpenSqliteAsync(dir);
            var risk = new RiskService(store, new RiskSettings().ToConfig());
            using var upstreams = new Conclave.Server.Chains.ChainUpstreams(new Dictionary<long, Uri> { [31337] = new("http://feed.invalid/") }, TimeSpan.FromSeconds(5), node);
            var feeds = PriceFeed.FromSettings([new() { Source = "BTC-USD", ChainId = 31337, Contract = "0x" + new string('a', 40), Kind = "chainlink", PollSeconds = 1 }], new Dictionary<long, Uri> { [31337] = new("http://feed.invalid/") });
            var reader = new PriceFeedReader(feeds, upstreams, risk, TimeProvider.System, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);

            Conclave.Storage.Risk.StoredPriceSample sample = Assert.Single(await reader.PollDueAsync(CancellationToken.None));
            Assert.Equal(("BTC-USD", 30_123.45m, DateTimeOffset.FromUnixTimeSeconds(updated.ToUnixTimeSeconds())), (sample.Source, sample.Price, sample.At));
            await Task.Delay(1100);
            Assert.Empty(await reader.PollDueAsync(CancellationToken.None)); // the same round again
            Assert.Equal(1, decimalsCalls); // read once

            foreach (string? bad in new[] { "0x" + Word(8) + Word(-1) + Word(1) + Word(updated.ToUnixTimeSeconds() + 1) + Word(8), "0x1234", "not hex" })
            {
                malformed = bad;
                await Task.Delay(1100);
                Assert.Empty(await reader.PollDueAsync(CancellationToken.None));
            }

            malformed = null;
            answer = 3_100_000_000_000;
            updated = updated.AddSeconds(10);
            await Task.Delay(1100);
            Assert.Equal(31_000m, Assert.Single(await reader.PollDueAsync(CancellationToken.None)).Price);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
