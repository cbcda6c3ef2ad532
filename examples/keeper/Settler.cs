using System.Numerics;
using System.Text.Json.Nodes;

namespace Conclave.Keeper;

/// <summary>
/// The settlement agent: settles every option series whose expiry has passed once the oracle price has been set at or
/// after the expiry (what MarginEngine's <c>settle</c> requires), through Conclave's typed <c>settle</c>.
/// </summary>
internal sealed class Settler(KeeperOptions options, ChainReader chain, OperationDispatcher dispatcher, KeeperLog log)
{
    private long _firstOpen;

    public async Task RunAsync(CancellationToken stop, CancellationToken work)
    {
        long lastBlock = -1;
        bool chainDown = false;
        while (!stop.IsCancellationRequested)
        {
            try
            {
                long block = await chain.BlockNumberAsync(stop).ConfigureAwait(false);
                if (block != lastBlock)
                {
                    await ScanAsync(stop, work).ConfigureAwait(false);
                    lastBlock = block;
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

    private async Task ScanAsync(CancellationToken stop, CancellationToken work)
    {
        long count = (long)EngineAbi.Uint(await chain.EthCallAsync(options.Engine, EngineAbi.SeriesCount(), stop).ConfigureAwait(false));
        long now = await chain.LatestTimestampAsync(stop).ConfigureAwait(false);
        BigInteger priceSetAt = EngineAbi.Uint(await chain.EthCallAsync(options.Engine, EngineAbi.PriceUpdatedAt(), stop).ConfigureAwait(false));
        bool allSettledSoFar = true;
        for (long id = _firstOpen; id < count; id++)
        {
            // series(id): (isCall, strike, expiry, premium, settled, settlementPrice), six static words.
            byte[] s = await chain.EthCallAsync(options.Engine, EngineAbi.Series(id), stop).ConfigureAwait(false);
            bool settled = EngineAbi.Bool(s, 4);
            if (settled && allSettledSoFar)
            {
                _firstOpen = id + 1;
                continue;
            }

            allSettledSoFar = false;
            BigInteger expiry = EngineAbi.Uint(s, 2);
            string target = "series-" + id.ToString(System.Globalization.CultureInfo.InvariantCulture);
            if (!settled && expiry <= now && priceSetAt >= expiry && await dispatcher.IsFreeAsync(target, stop).ConfigureAwait(false))
            {
                dispatcher.Dispatch(target, "settled", "settle", new JsonObject { ["seriesId"] = id }, work);
            }
        }
    }
}
