using System.Collections.Concurrent;
using System.Collections.Frozen;
using System.Globalization;
using System.Net.Http.Headers;
using System.Numerics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Conclave.Server.Chains;

/// <summary>
/// The JSON-RPC nodes of the chains a server builds and sends transactions on (server.json <c>upstreams</c>: chain id →
/// URL). A chain's upstream is checked once, on first use, to answer <c>eth_chainId</c> with that chain id, so a
/// misconfigured URL never receives a transaction signed for another chain. JSON-RPC 2.0 over HTTP POST.
/// </summary>
public sealed class ChainUpstreams : IDisposable
{
    /// <summary>The read methods /rpc forwards to the upstream as they are (plus eth_sendRawTransaction, which only relays bytes).</summary>
    public static readonly FrozenSet<string> ForwardedMethods = FrozenSet.Create(StringComparer.Ordinal,
        "eth_chainId", "eth_blockNumber", "eth_getBalance", "eth_getTransactionCount", "eth_call", "eth_estimateGas", "eth_gasPrice",
        "eth_maxPriorityFeePerGas", "eth_feeHistory", "eth_getTransactionReceipt", "eth_getTransactionByHash", "eth_getBlockByNumber",
        "eth_getCode", "eth_getLogs", "eth_getBlockByHash", "eth_getStorageAt", "net_version", "eth_sendRawTransaction");

    private readonly FrozenDictionary<long, Uri> _urls;
    private readonly HttpClient _http;
    private readonly ConcurrentDictionary<long, bool> _verified = new();
    private long _id;

    public ChainUpstreams(IReadOnlyDictionary<long, Uri> urls, TimeSpan timeout, HttpMessageHandler? handler = null)
    {
        ArgumentNullException.ThrowIfNull(urls);
        _urls = urls.ToFrozenDictionary();
        _http = handler is null ? new HttpClient() : new HttpClient(handler, disposeHandler: false);
        _http.Timeout = timeout;
    }

    public bool Has(long chainId) => _urls.ContainsKey(chainId);

    /// <summary>
    /// Calls <paramref name="method"/> on the chain's upstream and returns its <c>result</c>. A JSON-RPC error answer is
    /// <see cref="UpstreamException"/> with <see cref="UpstreamException.Answered"/> true (the node saw and refused the
    /// call); no answer (connection, timeout, not JSON-RPC) has it false.
    /// </summary>
    public async Task<JsonNode?> CallAsync(long chainId, string method, JsonArray parameters, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (!_urls.TryGetValue(chainId, out Uri? url))
        {
            throw new UnknownChainException(chainId);
        }

        if (!_verified.ContainsKey(chainId))
        {
            JsonNode? reported = await RawCallAsync(chainId, url, "eth_chainId", [], ct).ConfigureAwait(false);
            if (ParseQuantity(reported, "eth_chainId") != chainId)
            {
                throw new UpstreamException(-32000, $"the upstream for chain {chainId.ToString(CultureInfo.InvariantCulture)} reports another chain id; fix upstreams in server.json", answered: false);
            }

            _verified[chainId] = true;
        }

        return await RawCallAsync(chainId, url, method, parameters, ct).ConfigureAwait(false);
    }

    /// <summary>The 4-byte selector of a Solidity function signature such as <c>price()</c>.</summary>
    public static byte[] Selector(string signature) => Conclave.Crypto.Hashing.Keccak256.HashData(System.Text.Encoding.ASCII.GetBytes(signature))[..4];

    /// <summary>
    /// <c>eth_call</c> of <paramref name="data"/> on <paramref name="to"/> at the latest block: the returned bytes, or null
    /// when the upstream answered something that is not 0x-prefixed hex (the caller says what that means for it).
    /// </summary>
    public async Task<byte[]?> EthCallAsync(long chainId, string to, ReadOnlyMemory<byte> data, CancellationToken ct)
    {
        JsonNode? result = await CallAsync(chainId, "eth_call", [new JsonObject { ["to"] = to, ["data"] = "0x" + Convert.ToHexStringLower(data.Span) }, "latest"], ct)
            .ConfigureAwait(false);
        string? hex = result is JsonValue v && v.TryGetValue(out string? s) ? s : null;
        return hex is not null && hex.StartsWith("0x", StringComparison.Ordinal) && hex.Length % 2 == 0 && hex.Skip(2).All(char.IsAsciiHexDigit)
            ? Convert.FromHexString(hex.AsSpan(2))
            : null;
    }

    private async Task<JsonNode?> RawCallAsync(long chainId, Uri url, string method, JsonArray parameters, CancellationToken ct)
    {
        var body = new JsonObject
        {
            ["jsonrpc"] = "2.0",
            ["id"] = Interlocked.Increment(ref _id),
            ["method"] = method,
            ["params"] = parameters.DeepClone(),
        };
        string chain = chainId.ToString(CultureInfo.InvariantCulture);
        HttpResponseMessage response;
        try
        {
            using var content = new StringContent(body.ToJsonString(), Encoding.UTF8);
            content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            response = await _http.PostAsync(url, content, ct).ConfigureAwait(false);
        }
        catch (HttpRequestException)
        {
            throw new UpstreamException(-32000, $"the upstream for chain {chain} did not answer {method}", answered: false);
        }
        catch (TaskCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new UpstreamException(-32000, $"the upstream for chain {chain} timed out on {method}", answered: false);
        }

        using (response)
        {
            JsonNode? answer;
            try
            {
                string text = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
                answer = JsonNode.Parse(text);
            }
            catch (JsonException)
            {
                throw new UpstreamException(-32000, $"the upstream for chain {chain} answered {method} with HTTP {(int)response.StatusCode} and no JSON-RPC body", answered: false);
            }

            if (answer is not JsonObject o)
            {
                throw new UpstreamException(-32000, $"the upstream for chain {chain} answered {method} with no JSON-RPC object", answered: false);
            }

            if (o["error"] is JsonObject error)
            {
                int code = error["code"] is JsonValue cv && cv.TryGetValue(out int c) ? c : -32000;
                string message = error["message"] is JsonValue mv && mv.TryGetValue(out string? m) && m is not null ? Truncate(m) : "error";
                throw new UpstreamException(code, message, answered: true);
            }

            return o.TryGetPropertyValue("result", out JsonNode? result)
                ? result?.DeepClone()
                : throw new UpstreamException(-32000, $"the upstream for chain {chain} answered {method} without a result", answered: false);
        }
    }

    private static string Truncate(string s) => s.Length <= 300 ? s : s[..300];

    /// <summary>A JSON-RPC QUANTITY ("0x…" hex, no leading zeros required) as a non-negative integer.</summary>
    public static BigInteger ParseQuantity(JsonNode? node, string what)
    {
        if (node is JsonValue v && v.TryGetValue(out string? s) && s is { Length: > 2 and <= 66 } && s.StartsWith("0x", StringComparison.Ordinal)
            && BigInteger.TryParse("0" + s[2..], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out BigInteger q))
        {
            return q;
        }

        throw new UpstreamException(-32000, $"the upstream answered {what} with a value that is not a quantity", answered: false);
    }

    public static string Quantity(BigInteger q) => "0x" + (q.IsZero ? "0" : q.ToString("x", CultureInfo.InvariantCulture).TrimStart('0'));

    public void Dispose() => _http.Dispose();
}

/// <summary>An upstream call that failed: a JSON-RPC error from the node (<see cref="Answered"/>) or no usable answer.</summary>
public sealed class UpstreamException(int code, string message, bool answered) : Exception(message)
{
    public int Code { get; } = code;

    public bool Answered { get; } = answered;
}

/// <summary>A chain id with no upstream in server.json.</summary>
public sealed class UnknownChainException(long chainId)
    : Exception($"chain {chainId.ToString(CultureInfo.InvariantCulture)} has no upstream in server.json (upstreams)")
{
    public long ChainId { get; } = chainId;
}
