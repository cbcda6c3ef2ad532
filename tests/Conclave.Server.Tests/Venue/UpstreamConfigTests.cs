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
}
