using Conclave.Node.Config;
using Conclave.Server.Config;

namespace Conclave.Server.Tests.Venue;

/// <summary>server.json <c>upstreams</c>: chain id → URL, checked at start (docs/VENUE.md "Upstreams").</summary>
public sealed class UpstreamConfigTests
{
    [Theory]
    [InlineData("0", "http://127.0.0.1:8545")]
    [InlineData("031337", "http://127.0.0.1:8545")]
    [InlineData("mainnet", "http://127.0.0.1:8545")]
    [InlineData("281474976710656", "http://127.0.0.1:8545")]
    [InlineData("1", "ftp://127.0.0.1/")]
    [InlineData("1", "127.0.0.1:8545")]
    [InlineData("1", "https://user:secret@node.example/")]
    public void A_bad_upstream_is_a_config_error_naming_upstreams_and_never_the_url(string chain, string url)
    {
        var config = new ServerConfig { Upstreams = new() { [chain] = url } };
        var e = Assert.Throws<ConfigException>(() => config.UpstreamUrls());
        Assert.StartsWith("upstreams:", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("secret", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Good_upstreams_parse()
    {
        var config = new ServerConfig { Upstreams = new() { ["31337"] = "http://127.0.0.1:8545", ["1"] = "https://node.example/rpc" } };
        IReadOnlyDictionary<long, Uri> urls = config.UpstreamUrls();
        Assert.Equal(new Uri("http://127.0.0.1:8545"), urls[31337]);
        Assert.Equal(new Uri("https://node.example/rpc"), urls[1]);
        Assert.Empty(new ServerConfig().UpstreamUrls());
    }

    [Theory]
    [InlineData("0", "0x1111111111111111111111111111111111111111", "0x2222222222222222222222222222222222222222", null, "safeContracts: each key")]
    [InlineData("31337", null, "0x2222222222222222222222222222222222222222", null, "safeContracts.31337.singleton")]
    [InlineData("31337", "0x1111111111111111111111111111111111111111", "0x1234", null, "safeContracts.31337.proxyFactory")]
    [InlineData("31337", "0x1111111111111111111111111111111111111111", "0x2222222222222222222222222222222222222222", "nothing", "safeContracts.31337.fallbackHandler")]
    public void A_bad_safe_contracts_entry_is_a_config_error_naming_the_member(string chain, string? singleton, string? factory, string? fallback, string named)
    {
        var config = new ServerConfig { SafeContracts = new() { [chain] = new SafeContracts { Singleton = singleton, ProxyFactory = factory, FallbackHandler = fallback } } };
        var e = Assert.Throws<ConfigException>(() => config.SafeContractAddresses());
        Assert.StartsWith(named, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Good_safe_contracts_parse_and_the_fallback_handler_defaults_to_zero()
    {
        var config = new ServerConfig
        {
            SafeContracts = new() { ["31337"] = new SafeContracts { Singleton = "0x1111111111111111111111111111111111111111", ProxyFactory = "0x2222222222222222222222222222222222222222" } },
        };
        var c = config.SafeContractAddresses()[31337];
        Assert.Equal(Enumerable.Repeat((byte)0x11, 20), c.Singleton);
        Assert.Equal(Enumerable.Repeat((byte)0x22, 20), c.ProxyFactory);
        Assert.Equal(new byte[20], c.FallbackHandler);
        Assert.Empty(new ServerConfig().SafeContractAddresses());
    }
}
