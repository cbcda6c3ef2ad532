using System.Globalization;
using System.Numerics;
using Conclave.Crypto.Hashing;
using Conclave.Node.Config;
using Conclave.Server.Chains;
using Conclave.Storage.Risk;
using Microsoft.Extensions.Logging;

namespace Conclave.Server.Risk;

/// <summary>
/// One entry of server.json <c>risk.priceFeeds</c> (docs/OPERATIONS.md "Risk levels"): a price source read from a
/// contract through the chain's upstream node. <c>kind</c> is <c>chainlink</c> (an AggregatorV3 feed:
/// <c>latestRoundData()</c> gives the answer and its <c>updatedAt</c>, <c>decimals()</c> the scale unless
/// <c>decimals</c> is given) or <c>getter</c> (<c>price</c> names a function without arguments returning a uint256,
/// <c>updatedAt</c> optionally one returning the unix time of that price, <c>decimals</c> its scale).
/// </summary>
public sealed class PriceFeedSettings
{
    public string? Source { get; set; }

    public long? ChainId { get; set; }

    public string? Contract { get; set; }

    public string? Kind { get; set; }

    public string? Price { get; set; }

    public string? UpdatedAt { get; set; }

    public int? Decimals { get; set; }

    public int? PollSeconds { get; set; }
}

/// <summary>A validated price feed.</summary>
public sealed record PriceFeed(string Source, long ChainId, string Contract, bool Chainlink, byte[] PriceCall, byte[]? UpdatedAtCall, int? Decimals, TimeSpan Poll)
{
    /// <summary>Validates server.json <c>risk.priceFeeds</c>; a <see cref="ConfigException"/> naming the field otherwise.</summary>
    public static IReadOnlyList<PriceFeed> FromSettings(IReadOnlyList<PriceFeedSettings>? feeds, IReadOnlyDictionary<long, Uri> upstreams)
    {
        ArgumentNullException.ThrowIfNull(upstreams);
        if (feeds is null)
        {
            return [];
        }

        if (feeds.Count > 64)
        {
            throw new ConfigException("risk.priceFeeds: at most 64 feeds");
        }

        var list = new List<PriceFeed>(feeds.Count);
        for (int i = 0; i < feeds.Count; i++)
        {
            string at = $"risk.priceFeeds[{i.ToString(CultureInfo.InvariantCulture)}]";
            PriceFeedSettings f = feeds[i] ?? throw new ConfigException($"{at} must be an object");
            if (f.Source is not { Length: > 0 and <= 64 } source || !source.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or '/' or ':'))
            {
                throw new ConfigException($"{at}.source must be 1 to 64 characters from A-Z a-z 0-9 - _ . / :");
            }

            if (list.Any(p => p.Source == source))
            {
                throw new ConfigException($"{at}.source: {source} is read by another feed already");
            }

            if (f.ChainId is not { } chain || !upstreams.ContainsKey(chain))
            {
                throw new ConfigException($"{at}.chainId must name a chain of upstreams in server.json");
            }

            if (f.Contract is not { Length: 42 } contract || !contract.StartsWith("0x", StringComparison.Ordinal) || !contract[2..].All(char.IsAsciiHexDigit))
            {
                throw new ConfigException($"{at}.contract must be an address: 0x and 40 hex digits");
            }

            if (f.Decimals is { } d && d is < 0 or > 36)
            {
                throw new ConfigException($"{at}.decimals must be between 0 and 36");
            }

            int poll = f.PollSeconds ?? 5;
            if (poll is < 1 or > 3600)
            {
                throw new ConfigException($"{at}.pollSeconds must be between 1 and 3600");
            }

            PriceFeed feed = f.Kind switch
            {
                "chainlink" when f.Price is null && f.UpdatedAt is null =>
                    new(source, chain, contract.ToLowerInvariant(), true, Selector("latestRoundData()"), null, f.Decimals, TimeSpan.FromSeconds(poll)),
                "chainlink" => throw new ConfigException($"{at}: a chainlink feed takes no price or updatedAt function (it reads latestRoundData())"),
                "getter" => new(source, chain, contract.ToLowerInvariant(), false, Function(f.Price, $"{at}.price"),
                    f.UpdatedAt is null ? null : Function(f.UpdatedAt, $"{at}.updatedAt"),
                    f.Decimals ?? throw new ConfigException($"{at}.decimals is required for a getter feed"), TimeSpan.FromSeconds(poll)),
                _ => throw new ConfigException($"{at}.kind must be chainlink or getter"),
            };
            list.Add(feed);
        }

        return list;
    }

    /// <summary>A function signature without arguments, as Solidity writes it (<c>price()</c>): its 4-byte selector.</summary>
    private static byte[] Function(string? signature, string field)
    {
        if (signature is not { Length: > 2 and <= 64 } s || !s.EndsWith("()", StringComparison.Ordinal)
            || !(char.IsAsciiLetter(s[0]) || s[0] == '_') || !s[..^2].All(c => char.IsAsciiLetterOrDigit(c) || c == '_'))
        {
            throw new ConfigException($"{field} must be a function without arguments, such as price()");
        }

        return Selector(s);
    }

    private static byte[] Selector(string signature) => ChainUpstreams.Selector(signature);
}

/// <summary>
/// Reads every configured price feed through the chain's upstream (<c>eth_call</c> at the latest block) every
/// <see cref="PriceFeed.Poll"/> and adds a sample to the risk inputs when the feed's price time has moved (a feed without
/// an <c>updatedAt</c> is sampled at the time it was read). A feed that cannot be read adds nothing: its source turns
/// stale after <c>risk.stalePriceSeconds</c>, which raises the level (docs/POLICY.md "Risk levels"). Never throws.
/// </summary>
public sealed class PriceFeedReader(IReadOnlyList<PriceFeed> feeds, ChainUpstreams upstreams, RiskService risk, TimeProvider clock, ILogger log)
{
    private readonly Dictionary<string, DateTimeOffset> _lastAt = new(StringComparer.Ordinal);
    private readonly Dictionary<string, DateTimeOffset> _due = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _decimals = new(StringComparer.Ordinal);

    public IReadOnlyList<PriceFeed> Feeds { get; } = feeds;

    public async Task RunAsync(CancellationToken stopping)
    {
        if (Feeds.Count == 0)
        {
            return;
        }

        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(250));
        try
        {
            do
            {
                try
                {
                    await PollDueAsync(stopping).ConfigureAwait(false);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // Whatever a feed or the store did, the reader goes on at the next tick (a stopped reader would only
                    // show as a stale source after risk.stalePriceSeconds).
                    log.LogError("price feeds: a poll failed: {Reason}", e.Message);
                }
            }
            while (await timer.WaitForNextTickAsync(stopping).ConfigureAwait(false));
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Reads the feeds that are due now; returns the samples added.</summary>
    public async Task<IReadOnlyList<StoredPriceSample>> PollDueAsync(CancellationToken ct)
    {
        var added = new List<StoredPriceSample>();
        foreach (PriceFeed feed in Feeds)
        {
            DateTimeOffset now = clock.GetUtcNow();
            if (_due.TryGetValue(feed.Source, out DateTimeOffset due) && now < due)
            {
                continue;
            }

            _due[feed.Source] = now + feed.Poll;
            try
            {
                StoredPriceSample sample = await ReadAsync(feed, now, ct).ConfigureAwait(false);
                if (_lastAt.TryGetValue(feed.Source, out DateTimeOffset last) && sample.At <= last)
                {
                    continue; // the feed has not moved since the last sample
                }

                await risk.AddPricesAsync([sample], ct).ConfigureAwait(false);
                _lastAt[feed.Source] = sample.At;
                added.Add(sample);
            }
            catch (Exception e) when (e is UpstreamException or UnknownChainException or PriceFeedException or HttpRequestException or Conclave.Storage.StorageException
                or TaskCanceledException && !ct.IsCancellationRequested)
            {
                log.LogWarning("price feed {Source} on chain {Chain} could not be read: {Reason}", feed.Source, feed.ChainId, e.Message);
            }
        }

        return added;
    }

    private async Task<StoredPriceSample> ReadAsync(PriceFeed feed, DateTimeOffset now, CancellationToken ct)
    {
        byte[] answer = await CallAsync(feed, feed.PriceCall, ct).ConfigureAwait(false);
        BigInteger raw;
        DateTimeOffset at;
        if (feed.Chainlink)
        {
            // latestRoundData() → (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
            if (answer.Length != 5 * 32)
            {
                throw new PriceFeedException($"latestRoundData() answered {answer.Length} bytes, not 160");
            }

            raw = new BigInteger(answer.AsSpan(32, 32), isUnsigned: false, isBigEndian: true);
            at = UnixTime(new BigInteger(answer.AsSpan(96, 32), isUnsigned: true, isBigEndian: true));
        }
        else
        {
            raw = Word(answer, "price");
            at = feed.UpdatedAtCall is { } call ? UnixTime(Word(await CallAsync(feed, call, ct).ConfigureAwait(false), "updatedAt")) : now;
        }

        if (raw.Sign <= 0)
        {
            throw new PriceFeedException("the feed answered a price that is not positive");
        }

        if (at > now)
        {
            at = now; // a chain clock a little ahead of this server's: the sample counts as read now
        }

        int decimals = feed.Decimals ?? await ChainlinkDecimalsAsync(feed, ct).ConfigureAwait(false);
        decimal price;
        try
        {
            price = (decimal)raw / (decimal)BigInteger.Pow(10, decimals);
        }
        catch (OverflowException)
        {
            throw new PriceFeedException("the feed's price does not fit a decimal at its scale");
        }

        if (price <= 0)
        {
            throw new PriceFeedException("the feed's price is below the smallest decimal at its scale");
        }

        return new StoredPriceSample(feed.Source, at, price);
    }

    private async Task<int> ChainlinkDecimalsAsync(PriceFeed feed, CancellationToken ct)
    {
        if (_decimals.TryGetValue(feed.Source, out int known))
        {
            return known;
        }

        BigInteger d = Word(await CallAsync(feed, ChainUpstreams.Selector("decimals()"), ct).ConfigureAwait(false), "decimals");
        if (d > 36)
        {
            throw new PriceFeedException("decimals() answered more than 36");
        }

        _decimals[feed.Source] = (int)d;
        return (int)d;
    }

    private async Task<byte[]> CallAsync(PriceFeed feed, byte[] selector, CancellationToken ct) =>
        await upstreams.EthCallAsync(feed.ChainId, feed.Contract, selector, ct).ConfigureAwait(false)
            ?? throw new PriceFeedException("eth_call answered something that is not hex data");

    private static BigInteger Word(byte[] answer, string what) => answer.Length == 32
        ? new BigInteger(answer, isUnsigned: true, isBigEndian: true)
        : throw new PriceFeedException($"{what} answered {answer.Length} bytes, not one 32-byte word (a function without a uint256 result, or no contract at that address)");

    private static DateTimeOffset UnixTime(BigInteger seconds) => seconds > 0 && seconds < 253402300799
        ? DateTimeOffset.FromUnixTimeSeconds((long)seconds)
        : throw new PriceFeedException("the feed's update time is not a unix time in seconds");
}

/// <summary>A price feed answered something Conclave does not take as a price.</summary>
public sealed class PriceFeedException(string message) : Exception(message);
