using System.Numerics;
using System.Text.Json.Nodes;

namespace Conclave.Keeper;

/// <summary>
/// The keeper: learns the venue's accounts from MarginEngine's <c>PositionOpened</c> events, and whenever the oracle
/// price moves or accounts open positions (and every few seconds besides, to retry) asks the engine which are
/// liquidatable (<c>isLiquidatable</c>, eth_call) and liquidates each of them through Conclave's typed <c>liquidate</c>.
/// </summary>
internal sealed class Liquidator(KeeperOptions options, ChainReader chain, OperationDispatcher dispatcher, KeeperLog log)
{
    private static readonly TimeSpan Rescan = TimeSpan.FromSeconds(2);
    private readonly List<string> _accounts = [];
    private readonly HashSet<string> _known = new(StringComparer.Ordinal);
    private long _nextLogBlock = options.FromBlock;

    /// <summary>Watches until <paramref name="stop"/>; operations run under <paramref name="work"/>, which outlives it.</summary>
    public async Task RunAsync(CancellationToken stop, CancellationToken work)
    {
        long lastBlock = -1;
        BigInteger lastPrice = BigInteger.MinusOne;
        DateTimeOffset lastScan = DateTimeOffset.MinValue;
        bool chainDown = false;
        while (!stop.IsCancellationRequested)
        {
            try
            {
                long block = await chain.BlockNumberAsync(stop).ConfigureAwait(false);
                if (block != lastBlock)
                {
                    int added = await DiscoverAsync(block, stop).ConfigureAwait(false);
                    BigInteger price = EngineAbi.Uint(await chain.EthCallAsync(options.Engine, EngineAbi.Price(), stop).ConfigureAwait(false));
                    if (price != lastPrice)
                    {
                        log.Line($"price {price} wei block={block} accounts={_accounts.Count}");
                    }

                    if (price != lastPrice || added > 0 || DateTimeOffset.UtcNow - lastScan >= Rescan)
                    {
                        lastScan = DateTimeOffset.UtcNow;
                        await ScanAsync(stop, work).ConfigureAwait(false);
                    }

                    lastBlock = block;
                    lastPrice = price;
                }

                chainDown = false;
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e) when (e is HttpRequestException or ChainRpcException or OperationCanceledException or FormatException)
            {
                if (!chainDown)
                {
                    log.Line($"chain-error {e.GetType().Name}: {e.Message}");
                }

                chainDown = true;
            }

            try
            {
                await Task.Delay(options.Poll, stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }

    /// <summary>Reads PositionOpened events up to <paramref name="block"/>; how many accounts were new.</summary>
    private async Task<int> DiscoverAsync(long block, CancellationToken ct)
    {
        int added = 0;
        while (_nextLogBlock <= block)
        {
            long to = Math.Min(block, _nextLogBlock + 9_999);
            foreach (JsonNode? entry in await chain.LogsAsync(options.Engine, EngineAbi.PositionOpenedTopic, _nextLogBlock, to, ct).ConfigureAwait(false))
            {
                if (entry?["topics"]?.AsArray() is { Count: >= 2 } topics && topics[1]?.GetValue<string>() is { Length: 66 } topic
                    && _known.Add(EngineAbi.TopicAddress(topic)))
                {
                    _accounts.Add(EngineAbi.TopicAddress(topic));
                    added++;
                }
            }

            _nextLogBlock = to + 1;
        }

        return added;
    }

    private async Task ScanAsync(CancellationToken stop, CancellationToken work)
    {
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = stop };
        await Parallel.ForEachAsync(_accounts.ToArray(), parallel, async (account, ct) =>
        {
            if (!await dispatcher.IsFreeAsync(account, ct).ConfigureAwait(false))
            {
                return;
            }

            if (EngineAbi.Bool(await chain.EthCallAsync(options.Engine, EngineAbi.IsLiquidatable(account), ct).ConfigureAwait(false)))
            {
                dispatcher.Dispatch(account, "liquidated", "liquidate", new JsonObject { ["account"] = account }, work);
            }
        }).ConfigureAwait(false);
    }
}
