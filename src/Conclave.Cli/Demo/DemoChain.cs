using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Numerics;
using System.Text;
using System.Text.Json.Nodes;
using Conclave.Cli.Commands;
using Conclave.Crypto.Hashing;
using Conclave.Server.Hosting;

namespace Conclave.Cli.Demo;

/// <summary>
/// The demo's local chain: an anvil process (npm @foundry-rs/anvil) on a free loopback port, chain id 31337, a block for
/// each transaction and one every second, and the few JSON-RPC calls the demo makes to it (deploying, funding,
/// sending from anvil's unlocked or impersonated accounts, reading). Stopped on dispose.
/// </summary>
internal sealed class DemoChain : IDisposable
{
    public const long ChainId = 31337;

    private readonly Process _process;
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(30) };
    private long _id;

    private DemoChain(Process process, Uri url)
    {
        _process = process;
        Url = url;
    }

    public Uri Url { get; }

    public static async Task<DemoChain> StartAsync(string anvil, CancellationToken ct)
    {
        if (!File.Exists(anvil))
        {
            throw new CliUsageException($"anvil not found at {anvil}: run `npm ci` in tests/interop, or pass --anvil PATH");
        }

        int port = LoopbackPorts.Take();
        var psi = new ProcessStartInfo(anvil) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in new[] { "--host", "127.0.0.1", "--port", port.ToString(CultureInfo.InvariantCulture), "--chain-id", "31337", "--silent", "--mixed-mining", "--block-time", "1" })
        {
            psi.ArgumentList.Add(a);
        }

        Process process = Process.Start(psi) ?? throw new CliUsageException($"could not start anvil ({anvil})");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var chain = new DemoChain(process, new Uri($"http://127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}"));
        var sw = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                if ((await chain.CallAsync("eth_chainId", [], ct).ConfigureAwait(false))?.GetValue<string>() == "0x7a69")
                {
                    return chain;
                }
            }
            catch (HttpRequestException) when (sw.Elapsed < TimeSpan.FromSeconds(30) && !process.HasExited)
            {
            }
            catch
            {
                chain.Dispose();
                throw;
            }

            if (sw.Elapsed > TimeSpan.FromSeconds(30) || process.HasExited)
            {
                chain.Dispose();
                throw new CliUsageException("anvil did not answer eth_chainId 31337 within 30 s");
            }

            await Task.Delay(100, ct).ConfigureAwait(false);
        }
    }

    public async Task<JsonNode?> CallAsync(string method, JsonArray parameters, CancellationToken ct)
    {
        var body = new JsonObject { ["jsonrpc"] = "2.0", ["id"] = Interlocked.Increment(ref _id), ["method"] = method, ["params"] = parameters };
        using var content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
        using HttpResponseMessage r = await _http.PostAsync(Url, content, ct).ConfigureAwait(false);
        JsonNode answer = JsonNode.Parse(await r.Content.ReadAsStringAsync(ct).ConfigureAwait(false)) ?? throw new CliUsageException($"anvil {method}: empty answer");
        return answer["error"] is { } error ? throw new CliUsageException($"anvil {method}: {error.ToJsonString()}") : answer["result"];
    }

    public async Task<string[]> AccountsAsync(CancellationToken ct) =>
        [.. (await CallAsync("eth_accounts", [], ct).ConfigureAwait(false))!.AsArray().Select(a => a!.GetValue<string>())];

    public Task FundAsync(string address, CancellationToken ct) => CallAsync("anvil_setBalance", [address, "0x56BC75E2D63100000"], ct); // 100 ether

    /// <summary>A transaction from an unlocked (or impersonated) account; waits for its receipt and fails unless it succeeded.</summary>
    public async Task<JsonNode> SendFromAsync(string from, string? to, string data, BigInteger? value, CancellationToken ct)
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

        string hash = (await CallAsync("eth_sendTransaction", [tx], ct).ConfigureAwait(false))!.GetValue<string>();
        var sw = Stopwatch.StartNew();
        while (true)
        {
            if (await CallAsync("eth_getTransactionReceipt", [hash], ct).ConfigureAwait(false) is { } receipt)
            {
                return receipt["status"]?.GetValue<string>() == "0x1" ? receipt : throw new CliUsageException($"transaction {hash} from {from} failed");
            }

            if (sw.Elapsed > TimeSpan.FromSeconds(60))
            {
                throw new CliUsageException($"transaction {hash} was not mined within 60 s");
            }

            await Task.Delay(50, ct).ConfigureAwait(false);
        }
    }

    public async Task<byte[]> EthCallAsync(string to, string data, CancellationToken ct)
    {
        string hex = (await CallAsync("eth_call", [new JsonObject { ["to"] = to, ["data"] = data }, "latest"], ct).ConfigureAwait(false))!.GetValue<string>();
        return Convert.FromHexString(hex.AsSpan(2));
    }

    /// <summary>Calldata: the selector of a canonical signature and static arguments (an address as 0x text, a <see cref="BigInteger"/>, a bool).</summary>
    public static string Calldata(string signature, params object[] args)
    {
        var sb = new StringBuilder("0x").Append(Convert.ToHexStringLower(Keccak256.HashData(Encoding.ASCII.GetBytes(signature)).AsSpan(0, 4)));
        foreach (object a in args)
        {
            byte[] word = new byte[32];
            switch (a)
            {
                case string address:
                    Convert.FromHexString(address.AsSpan(2)).CopyTo(word, 12);
                    break;
                case bool b:
                    word[31] = b ? (byte)1 : (byte)0;
                    break;
                case BigInteger n:
                    byte[] bytes = n.ToByteArray(isUnsigned: true, isBigEndian: true);
                    bytes.CopyTo(word, 32 - bytes.Length);
                    break;
                default:
                    throw new ArgumentException("unsupported ABI argument", nameof(args));
            }

            sb.Append(Convert.ToHexStringLower(word));
        }

        return sb.ToString();
    }

    /// <summary>A decimal amount of ether ("0.94") in wei.</summary>
    public static BigInteger Wei(string ether)
    {
        string[] parts = ether.Split('.');
        return BigInteger.Parse(parts[0] + (parts.Length > 1 ? parts[1] : "").PadRight(18, '0'), NumberStyles.None, CultureInfo.InvariantCulture);
    }


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
