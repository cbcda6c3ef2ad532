using System.Globalization;
using System.Numerics;
using System.Text;
using System.Text.Json.Nodes;
using Conclave.Client;

namespace Conclave.Keeper;

/// <summary>The chain answered a JSON-RPC error (a revert in eth_call, for example); the message is the error object.</summary>
internal sealed class ChainRpcException(string message) : Exception(message);

/// <summary>
/// Reads the chain over JSON-RPC (eth_blockNumber, eth_call, eth_getLogs, eth_getBlockByNumber,
/// eth_getTransactionReceipt): through Conclave's <c>/rpc</c>, which forwards these methods to the chain's upstream
/// (each call signed as the agent, like its transactions), or, with <c>--chain-url</c>, from the chain's node directly.
/// It never sends a transaction: those go through Conclave's transaction route.
/// </summary>
internal sealed class ChainReader(Uri? url, ConclaveClient conclave) : IDisposable
{
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(30) };
    private long _id;

    /// <summary>Where the reads go, for the start line.</summary>
    public string Source => url is null ? "conclave-rpc" : "chain-url";

    public async Task<JsonNode?> CallAsync(string method, JsonArray parameters, CancellationToken ct)
    {
        var body = new JsonObject { ["jsonrpc"] = "2.0", ["id"] = Interlocked.Increment(ref _id), ["method"] = method, ["params"] = parameters };
        JsonNode? answer;
        if (url is null)
        {
            try
            {
                answer = await conclave.SendJsonAsync(HttpMethod.Post, "rpc", body.ToJsonString(), ct).ConfigureAwait(false);
            }
            catch (ConclaveApiException e)
            {
                throw new ChainRpcException($"{method} through Conclave /rpc: {e.Message}");
            }
        }
        else
        {
            using var content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
            using HttpResponseMessage r = await _http.PostAsync(url, content, ct).ConfigureAwait(false);
            string text = await r.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
            try
            {
                answer = JsonNode.Parse(text);
            }
            catch (System.Text.Json.JsonException)
            {
                throw new ChainRpcException($"{method}: HTTP {(int)r.StatusCode}, not JSON");
            }
        }

        if (answer?["error"] is { } error)
        {
            throw new ChainRpcException($"{method}: {error.ToJsonString()}");
        }

        return answer?["result"];
    }

    public async Task<long> BlockNumberAsync(CancellationToken ct) => (long)Quantity(await CallAsync("eth_blockNumber", [], ct).ConfigureAwait(false));

    /// <summary>eth_call at the latest block: the returned bytes.</summary>
    public async Task<byte[]> EthCallAsync(string to, string data, CancellationToken ct)
    {
        JsonNode? result = await CallAsync("eth_call", [new JsonObject { ["to"] = to, ["data"] = data }, "latest"], ct).ConfigureAwait(false);
        string hex = result?.GetValue<string>() ?? throw new ChainRpcException("eth_call: no result");
        return Convert.FromHexString(hex.AsSpan(2));
    }

    /// <summary>The latest block's timestamp in seconds.</summary>
    public async Task<long> LatestTimestampAsync(CancellationToken ct)
    {
        JsonNode? block = await CallAsync("eth_getBlockByNumber", ["latest", false], ct).ConfigureAwait(false);
        return (long)Quantity(block?["timestamp"]);
    }

    /// <summary>The receipt's status (true: success), or null while the transaction is not mined.</summary>
    public async Task<bool?> ReceiptStatusAsync(string hash, CancellationToken ct)
    {
        JsonNode? receipt = await CallAsync("eth_getTransactionReceipt", [hash], ct).ConfigureAwait(false);
        return receipt is null ? null : Quantity(receipt["status"]) == BigInteger.One;
    }

    /// <summary>The logs of <paramref name="address"/> with first topic <paramref name="topic0"/> in [from, to].</summary>
    public async Task<JsonArray> LogsAsync(string address, string topic0, long from, long to, CancellationToken ct)
    {
        var filter = new JsonObject { ["address"] = address, ["fromBlock"] = Hex(from), ["toBlock"] = Hex(to), ["topics"] = new JsonArray(topic0) };
        return (await CallAsync("eth_getLogs", [filter], ct).ConfigureAwait(false))?.AsArray() ?? [];
    }

    public static string Hex(long n) => "0x" + n.ToString("x", CultureInfo.InvariantCulture);

    public static BigInteger Quantity(JsonNode? node)
    {
        string text = node?.GetValue<string>() ?? throw new ChainRpcException("a quantity is missing");
        return BigInteger.Parse("0" + text[2..], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture);
    }

    public void Dispose() => _http.Dispose();
}
