using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Numerics;
using System.Text;
using System.Text.Json.Nodes;
using Conclave.Testing;
using Conclave.Server.Hosting;

namespace Conclave.Server.Tests.Venue;

/// <summary>
/// A fresh local EVM chain for one test class: anvil (npm @foundry-rs/anvil, chain id 31337, a block per transaction) on a
/// free loopback port, stopped with the class. The binary is CONCLAVE_TEST_ANVIL (scripts/test-services/anvil.sh prints it)
/// or the one tests/interop's npm install puts under node_modules; without it the tests fail saying so.
/// </summary>
public sealed class AnvilChain : IDisposable
{
    public const long ChainId = 31337;

    private readonly Process _process;
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(30) };
    private int _id;

    public AnvilChain()
    {
        string bin = Environment.GetEnvironmentVariable("CONCLAVE_TEST_ANVIL") is { Length: > 0 } e ? e
            : Path.Combine(RepoPaths.Interop, "node_modules", "@foundry-rs", "anvil-linux-amd64", "bin", "anvil");
        if (!File.Exists(bin))
        {
            throw new InvalidOperationException($"anvil not found at {bin}: run `npm ci` in tests/interop or eval \"$(bash scripts/test-services/anvil.sh)\"");
        }

        int port = LoopbackPorts.Take();
        Url = new Uri($"http://127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}");
        var psi = new ProcessStartInfo(bin)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        // Mixed mining: a block at once for each transaction (automine) and one every second. With automine alone, a
        // transaction that arrives before its predecessor nonce (concurrent senders) is queued, and when the predecessor
        // is mined nothing seems to mine the promoted one until another transaction comes: the last of a burst could wait
        // for ever (seen under load: every nonce 0..199 known to the node, one never mined). A real chain keeps making blocks.
        foreach (string a in new[] { "--host", "127.0.0.1", "--port", port.ToString(CultureInfo.InvariantCulture), "--chain-id", "31337", "--silent",
            "--mixed-mining", "--block-time", "1" })
        {
            psi.ArgumentList.Add(a);
        }

        _process = Process.Start(psi) ?? throw new InvalidOperationException("anvil did not start");
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        var sw = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                if (Call("eth_chainId").GetAwaiter().GetResult()?.GetValue<string>() == "0x7a69")
                {
                    break;
                }
            }
            catch (HttpRequestException) when (sw.Elapsed < TimeSpan.FromSeconds(30) && !_process.HasExited)
            {
            }

            if (sw.Elapsed > TimeSpan.FromSeconds(30) || _process.HasExited)
            {
                throw new InvalidOperationException("anvil did not answer eth_chainId 31337 within 30 s");
            }

            Thread.Sleep(100);
        }
    }

    public Uri Url { get; }

    public async Task<JsonNode?> Call(string method, params object?[] parameters)
    {
        var body = new JsonObject { ["jsonrpc"] = "2.0", ["id"] = Interlocked.Increment(ref _id), ["method"] = method, ["params"] = System.Text.Json.JsonSerializer.SerializeToNode(parameters) };
        using var content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
        using HttpResponseMessage r = await _http.PostAsync(Url, content);
        JsonNode answer = JsonNode.Parse(await r.Content.ReadAsStringAsync())!;
        if (answer["error"] is { } error)
        {
            throw new InvalidOperationException($"anvil {method}: {error.ToJsonString()}");
        }

        return answer["result"];
    }

    public static BigInteger Q(JsonNode? n) => BigInteger.Parse("0" + n!.GetValue<string>()[2..], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture);

    public async Task FundAsync(string address) => await Call("anvil_setBalance", address, "0x56BC75E2D63100000"); // 100 ether

    public async Task<long> TransactionCountAsync(string address, string block = "latest") => (long)Q(await Call("eth_getTransactionCount", address, block));

    /// <summary>The receipt of a transaction, waiting (anvil mines each transaction at once; a nonce gap keeps it queued).</summary>
    public async Task<JsonNode> ReceiptAsync(string hash)
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            if (await Call("eth_getTransactionReceipt", hash) is { } receipt)
            {
                return receipt;
            }

            if (sw.Elapsed > TimeSpan.FromSeconds(60))
            {
                // Say why: what the node holds for it, the latest block's base fee and the pool's counts.
                JsonNode? tx = await Call("eth_getTransactionByHash", hash);
                JsonNode? block = await Call("eth_getBlockByNumber", "latest", false);
                JsonNode? pool = await Call("txpool_status");
                throw new TimeoutException($"transaction {hash} was not mined: node holds {tx?.ToJsonString() ?? "nothing"}; latest block {block?["number"]} base fee {block?["baseFeePerGas"]}; pool {pool?.ToJsonString()}");
            }

            await Task.Delay(100);
        }
    }

    /// <summary>anvil's unlocked development accounts (eth_accounts), funded with 10,000 ether each.</summary>
    public async Task<string[]> AccountsAsync() => [.. (await Call("eth_accounts"))!.AsArray().Select(a => a!.GetValue<string>())];

    /// <summary>
    /// A transaction from one of anvil's unlocked accounts (eth_sendTransaction on the node itself, not through Conclave);
    /// waits for its receipt and fails unless it succeeded.
    /// </summary>
    public async Task<JsonNode> SendFromAsync(string from, string? to, string data, BigInteger? value = null)
    {
        var tx = new JsonObject { ["from"] = from, ["data"] = data };
        if (to is not null)
        {
            tx["to"] = to;
        }

        if (value is { } v)
        {
            tx["value"] = "0x" + v.ToString("x", CultureInfo.InvariantCulture).TrimStart('0').PadLeft(1, '0');
        }

        // An explicit gas limit with headroom (as Conclave's own transactions get): anvil's estimate is the exact minimum
        // at the pending block, and a call whose cost depends on block.timestamp (setPrice writes priceUpdatedAt: a no-op
        // SSTORE when estimated in the same second, a dirty one when mined a second later) then ran out of gas now and
        // then (KeeperCascadeTests failed so, status 0x0 with all its gas used).
        BigInteger estimate = Q(await Call("eth_estimateGas", tx.DeepClone()));
        tx["gas"] = "0x" + (estimate * 3 / 2 + 30_000).ToString("x", CultureInfo.InvariantCulture).TrimStart('0');
        string hash = (await Call("eth_sendTransaction", tx))!.GetValue<string>();
        JsonNode receipt = await ReceiptAsync(hash);
        if (receipt["status"]?.GetValue<string>() != "0x1")
        {
            throw new InvalidOperationException($"transaction {hash} from {from} failed: {receipt.ToJsonString()}");
        }

        return receipt;
    }

    /// <summary>Deploys creation bytecode (constructor arguments appended) from an unlocked account; the contract's address.</summary>
    public async Task<string> DeployAsync(string from, string creationCode) =>
        (await SendFromAsync(from, null, creationCode))["contractAddress"]!.GetValue<string>();

    /// <summary>eth_call at the latest block; the returned bytes.</summary>
    public async Task<byte[]> EthCallAsync(string to, string data, string? from = null)
    {
        var call = new JsonObject { ["to"] = to, ["data"] = data };
        if (from is not null)
        {
            call["from"] = from;
        }

        return Convert.FromHexString((await Call("eth_call", call, "latest"))!.GetValue<string>()[2..]);
    }

    /// <summary>Moves the chain's clock forward and mines a block (evm_increaseTime, evm_mine).</summary>
    public async Task AdvanceTimeAsync(long seconds)
    {
        await Call("evm_increaseTime", "0x" + seconds.ToString("x", CultureInfo.InvariantCulture));
        await Call("evm_mine");
    }

    /// <summary>The latest block's timestamp (seconds).</summary>
    public async Task<long> LatestTimestampAsync() => (long)Q((await Call("eth_getBlockByNumber", "latest", false))!["timestamp"]);

    public void Dispose()
    {
        _http.Dispose();
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(10_000);
        }

        _process.Dispose();
    }
}
