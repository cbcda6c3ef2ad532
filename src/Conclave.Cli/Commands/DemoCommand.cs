using System.Collections.Concurrent;
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Numerics;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Conclave.Cli.Demo;
using Conclave.Client;
using Conclave.Policy.HttpSignatures;
using Conclave.Server.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace Conclave.Cli.Commands;

/// <summary>
/// <c>conclave demo venue</c>: the whole path on one machine in one command (docs/VENUE.md "Walkthrough"): anvil, a
/// 2-of-3 cluster as <c>conclave up</c> makes it, the example venue (examples/venue) deployed, an <c>ecdsa-dkls23</c>
/// keeper key granted the keeper role, an agent principal for the keeper (examples/keeper) started as its own process,
/// accounts opened, the price moved below their maintenance margin in one block, and what happens printed. Exit 0
/// when every account was liquidated by the threshold key.
/// </summary>
internal static class DemoCommand
{
    private const string AgentRule = """{"id":"keeper-agents","effect":"allow","match":{"roles":["agent"],"operations":["liquidate","settle"],"venues":["example-venue"]}}""";

    public static Command Create()
    {
        var demo = new Command("demo", "Demonstrations on a local chain.");
        var accounts = new Option<int>("--accounts") { Description = "How many trader accounts to open and liquidate (1-200).", DefaultValueFactory = _ => 20 };
        var anvil = new Option<string?>("--anvil") { Description = "The anvil binary (default: the one `npm ci` in tests/interop installs)." };
        var venue = new Command("venue", "Start anvil and a local cluster, deploy the example venue, run the keeper agent, move the price and show the liquidations.");
        venue.Options.Add(accounts);
        venue.Options.Add(anvil);
        venue.SetAction((parse, ct) => RunVenueAsync(parse.GetValue(accounts), parse.GetValue(anvil), ct));
        demo.Subcommands.Add(venue);
        return demo;
    }

    private static void Say(string text) => Console.WriteLine("demo: " + text);

    private static async Task<int> RunVenueAsync(int count, string? anvilOption, CancellationToken ct)
    {
        if (count is < 1 or > 200)
        {
            throw new CliUsageException("--accounts must be from 1 to 200");
        }

        string root = RepoRoot();
        string venueDir = Path.Combine(root, "examples", "venue");
        string keeperDll = Path.Combine(root, "examples", "keeper", "bin", Configuration(), "net10.0", "conclave-keeper.dll");
        if (!File.Exists(keeperDll))
        {
            throw new CliUsageException($"the keeper is not built ({keeperDll}): run `dotnet build` at the repository root");
        }

        string anvilPath = anvilOption ?? Path.Combine(root, "tests", "interop", "node_modules", "@foundry-rs", "anvil-linux-amd64", "bin", "anvil");
        using DemoChain chain = await DemoChain.StartAsync(anvilPath, ct).ConfigureAwait(false);
        Say($"anvil up at {chain.Url} (chain id {DemoChain.ChainId})");

        // The venue: MarginEngine from its committed artifact, deployed by anvil's first account (admin and price feeder)
        // at the address examples/venue/profile.json names; the pool funded; the price at 1.
        string[] anvilAccounts = await chain.AccountsAsync(ct).ConfigureAwait(false);
        string admin = anvilAccounts[0];
        string bytecode = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(venueDir, "artifacts", "MarginEngine.json"), ct).ConfigureAwait(false))!["bytecode"]!.GetValue<string>();
        string engine = (await chain.SendFromAsync(admin, null, bytecode, null, ct).ConfigureAwait(false))["contractAddress"]!.GetValue<string>();
        string profile = Path.Combine(venueDir, "profile.json");
        string profiled = JsonNode.Parse(await File.ReadAllTextAsync(profile, ct).ConfigureAwait(false))!["contract"]!.GetValue<string>();
        if (!string.Equals(engine, profiled, StringComparison.OrdinalIgnoreCase))
        {
            throw new CliUsageException($"MarginEngine was deployed at {engine}, but {profile} names {profiled}");
        }

        // The Safe 1.4.1 singleton and proxy factory (npm @safe-global/safe-contracts' compiled artifacts), deployed by
        // another account so that MarginEngine stays where the profile says; the server is told where they are.
        string safeArtifacts = Path.Combine(root, "tests", "interop", "node_modules", "@safe-global", "safe-contracts", "build", "artifacts", "contracts");
        string singleton = await DeployArtifactAsync(chain, anvilAccounts[9], Path.Combine(safeArtifacts, "Safe.sol", "Safe.json"), ct).ConfigureAwait(false);
        string factory = await DeployArtifactAsync(chain, anvilAccounts[9], Path.Combine(safeArtifacts, "proxies", "SafeProxyFactory.sol", "SafeProxyFactory.json"), ct)
            .ConfigureAwait(false);
        await chain.SendFromAsync(admin, engine, DemoChain.Calldata("setPriceFeeder(address,bool)", admin, true), null, ct).ConfigureAwait(false);
        await chain.SendFromAsync(admin, engine, DemoChain.Calldata("fundPool()"), DemoChain.Wei("50"), ct).ConfigureAwait(false);
        await chain.SendFromAsync(admin, engine, DemoChain.Calldata("setPrice(uint256)", DemoChain.Wei("1")), null, ct).ConfigureAwait(false);
        Say($"MarginEngine deployed at {engine}, pool 50 ether, price 1 ether");

        // The cluster, as `conclave up` makes it (in a temporary folder), with anvil as the chain's upstream, the venue
        // profile, and a starter policy that also lets agents liquidate and settle on the example venue.
        using var cluster = new LocalClusterProcesses(typeof(DemoCommand).Assembly.Location, 3, 2);
        Conclave.Server.Config.ServerConfig config = cluster.ServerConfig;
        config.ChainId = DemoChain.ChainId;
        config.Upstreams = new() { ["31337"] = chain.Url.ToString() };
        config.VenueProfiles = [profile];
        config.SafeContracts = new() { ["31337"] = new Conclave.Server.Config.SafeContracts { Singleton = singleton, ProxyFactory = factory } };
        config.RequestTimeoutSeconds = 120;
        string starter = config.Resolve(config.StarterPolicy ?? LocalClusterLayout.StarterPolicyFileName);
        JsonNode policy = JsonNode.Parse(await File.ReadAllTextAsync(starter, ct).ConfigureAwait(false))!;
        policy["rules"]!.AsArray().Add(JsonNode.Parse(AgentRule));
        Conclave.Storage.OwnerOnly.WriteAllText(starter, policy.ToJsonString());
        config.Validate();
        WebApplication server = await ServerHost.BuildAsync(config, cancellationToken: ct).ConfigureAwait(false);
        KeeperRun? keeper = null;
        try
        {
            await UpCommand.StartServerAsync(server, config, ct).ConfigureAwait(false);
            string token = (await File.ReadAllTextAsync(server.Services.GetRequiredService<ServerPaths>().AdminTokenFile, ct).ConfigureAwait(false)).Trim();
            var api = new Uri("http://" + config.Listen);
            Say($"3 signer nodes and the server up (2-of-3), API {api}, data in {cluster.DataDir} (removed at exit)");
            using var admins = new ConclaveClient(api, token, TimeSpan.FromSeconds(180));

            var sw = Stopwatch.StartNew();
            KeyInfo key = await admins.CreateKeyAsync(new CreateKeyRequest("keeper", "ecdsa-dkls23"), ct).ConfigureAwait(false);
            string keeperAddress = key.Addresses?.Ethereum ?? throw new CliUsageException("the keeper key has no Ethereum address");
            await chain.FundAsync(keeperAddress, ct).ConfigureAwait(false);
            await chain.SendFromAsync(admin, engine, DemoChain.Calldata("setKeeper(address,bool)", keeperAddress, true), null, ct).ConfigureAwait(false);
            Say($"threshold key 'keeper' (ecdsa-dkls23, made by the three nodes in {sw.Elapsed.TotalSeconds:F1} s), address {keeperAddress}, granted the keeper role");

            // The treasury: a Safe deployed by Conclave whose owners are the threshold key and two software keys, 2 of 3;
            // the venue's pool releases collateral only to it.
            string safe = await DeployTreasuryAsync(admins, chain, ct).ConfigureAwait(false);
            await chain.SendFromAsync(admin, engine, DemoChain.Calldata("setTreasury(address)", safe), null, ct).ConfigureAwait(false);
            Say($"treasury Safe deployed at {safe} through POST /v1/safes (owners keeper, treasury-1, treasury-2; threshold 2), named the venue's treasury");

            string credential = await RegisterAgentAsync(admins, key.Id, cluster.DataDir, ct).ConfigureAwait(false);
            Say("agent 'keeper-bot' registered (Ed25519 credential, scope: the keeper key, liquidate and settle)");

            await chain.CallAsync("anvil_autoImpersonateAccount", [true], ct).ConfigureAwait(false);
            string[] traders = [.. Enumerable.Range(0, count).Select(_ => "0x" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(20)))];
            await Parallel.ForEachAsync(traders, new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = ct }, async (t, c) =>
            {
                await chain.FundAsync(t, c).ConfigureAwait(false);
                await chain.SendFromAsync(t, engine, DemoChain.Calldata("deposit()"), DemoChain.Wei("1"), c).ConfigureAwait(false);
                await chain.SendFromAsync(t, engine, DemoChain.Calldata("openPosition(int256)", DemoChain.Wei("10")), null, c).ConfigureAwait(false);
            }).ConfigureAwait(false);
            Say($"{count} traders each deposited 1 ether and opened a 10-unit long at 1 (exactly the 10 % initial margin)");

            keeper = KeeperRun.Start(keeperDll, [
                "--server", api.ToString().TrimEnd('/'), "--credential", credential, "--key", "keeper", "--engine", engine,
                "--concurrency", "16", "--poll-ms", "100"]); // no --chain-url: the keeper reads the chain through Conclave's /rpc
            await keeper.WaitForAsync(k => k.Events("price").Any(f => f.Contains("accounts=" + count.ToString(CultureInfo.InvariantCulture))), TimeSpan.FromSeconds(60), ct).ConfigureAwait(false);

            await chain.SendFromAsync(admin, engine, DemoChain.Calldata("setPrice(uint256)", DemoChain.Wei("0.94")), null, ct).ConfigureAwait(false);
            DateTimeOffset moved = DateTimeOffset.UtcNow;
            Say("price moved to 0.94 in one block: every trader's equity (0.4) is now below 5 % of the notional (0.47)");
            bool all = await keeper.WaitForAsync(k => k.Events("liquidated").Count >= count, TimeSpan.FromSeconds(180), ct).ConfigureAwait(false);

            // What the chain says, once each accepted liquidation is mined: sent by the threshold key, every position closed.
            int fromKey = 0;
            var latencies = new List<double>();
            foreach (string[] f in keeper.Events("liquidated"))
            {
                string hash = f.First(x => x.StartsWith("tx=", StringComparison.Ordinal))[3..];
                JsonNode? receipt = await ReceiptAsync(chain, hash, ct).ConfigureAwait(false);
                if (receipt?["status"]?.GetValue<string>() == "0x1" && string.Equals(receipt["from"]?.GetValue<string>(), keeperAddress, StringComparison.OrdinalIgnoreCase))
                {
                    fromKey++;
                }

                latencies.Add((DateTimeOffset.Parse(f[0], CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal) - moved).TotalMilliseconds);
            }

            int closed = 0;
            foreach (string t in traders)
            {
                if (DemoChainWord(await chain.EthCallAsync(engine, DemoChain.Calldata("positions(address)", t), ct).ConfigureAwait(false)).IsZero)
                {
                    closed++;
                }
            }

            double[] ms = [.. latencies.Order()];
            int code = await keeper.StopAsync().ConfigureAwait(false);
            bool released = await ReleaseThroughTreasuryAsync(admins, chain, engine, anvilAccounts[8], ct).ConfigureAwait(false);
            string rate = ms.Length == 0 ? "0" : (ms.Length / (ms[^1] / 1000)).ToString("F1", CultureInfo.InvariantCulture);
            Say($"keeper stopped (exit {code})");
            Say(string.Create(CultureInfo.InvariantCulture,
                $"summary: {closed} of {count} positions closed; {fromKey} liquidations mined from {keeperAddress} (the threshold key); latency from the price block to the node accepting each liquidation p50 {Pct(ms, 0.5):F0} ms, p99 {Pct(ms, 0.99):F0} ms; {rate} liquidations/s"));
            return all && closed == count && fromKey == count && code == 0 && released ? 0 : 1;
        }
        finally
        {
            keeper?.Dispose();
            await server.StopAsync(CancellationToken.None).ConfigureAwait(false);
            await server.DisposeAsync().ConfigureAwait(false);
        }
    }

    private static async Task<string> DeployArtifactAsync(DemoChain chain, string from, string artifact, CancellationToken ct)
    {
        if (!File.Exists(artifact))
        {
            throw new CliUsageException($"the Safe contracts are not installed ({artifact}): run `npm ci` in tests/interop");
        }

        string bytecode = JsonNode.Parse(await File.ReadAllTextAsync(artifact, ct).ConfigureAwait(false))!["bytecode"]!.GetValue<string>();
        return (await chain.SendFromAsync(from, null, bytecode, null, ct).ConfigureAwait(false))["contractAddress"]!.GetValue<string>();
    }

    /// <summary>Two software owner keys, then the Safe deployed and registered by Conclave (treasury-1 sends the deployment).</summary>
    private static async Task<string> DeployTreasuryAsync(ConclaveClient admins, DemoChain chain, CancellationToken ct)
    {
        foreach (string name in new[] { "treasury-1", "treasury-2" })
        {
            KeyInfo owner = await admins.CreateKeyAsync(new CreateKeyRequest(name, "ecdsa-secp256k1"), ct).ConfigureAwait(false);
            await chain.FundAsync(owner.Addresses?.Ethereum ?? throw new CliUsageException($"{name} has no Ethereum address"), ct).ConfigureAwait(false);
        }

        var request = new JsonObject
        {
            ["name"] = "treasury",
            ["chainId"] = DemoChain.ChainId,
            ["owners"] = new JsonArray("keeper", "treasury-1", "treasury-2"),
            ["threshold"] = 2,
            ["deploy"] = new JsonObject { ["deployer"] = "treasury-1" },
        };
        JsonNode answer = await admins.SendJsonAsync(HttpMethod.Post, "v1/safes", request.ToJsonString(), ct).ConfigureAwait(false)
            ?? throw new CliUsageException("the server answered no Safe");
        return answer["address"]!.GetValue<string>();
    }

    /// <summary>
    /// Releases 1 ether of the pool to <paramref name="recipient"/> through the treasury Safe: one owner's signature is
    /// refused by the Safe (nothing sent), two owners' signatures are executed. True when the release was mined.
    /// </summary>
    private static async Task<bool> ReleaseThroughTreasuryAsync(ConclaveClient admins, DemoChain chain, string engine, string recipient, CancellationToken ct)
    {
        string release = DemoChain.Calldata("releaseCollateral(address,uint256)", recipient, DemoChain.Wei("1"));
        BigInteger pool = DemoChainWord(await chain.EthCallAsync(engine, DemoChain.Calldata("pool()"), ct).ConfigureAwait(false));
        JsonObject Request(params string[] signers) => new()
        {
            ["to"] = engine,
            ["data"] = release,
            ["signers"] = new JsonArray([.. signers.Select(s => (JsonNode)JsonValue.Create(s))]),
            ["execute"] = true,
            ["executor"] = "treasury-1",
        };
        try
        {
            await admins.SendJsonAsync(HttpMethod.Post, "v1/safes/treasury/transactions", Request("treasury-1").ToJsonString(), ct).ConfigureAwait(false);
            Say("treasury: a release signed by one owner was executed — it should not have been");
            return false;
        }
        catch (ConclaveApiException e) when (e.Type == "https://conclave.dev/problems/chain-refused")
        {
            Say("treasury: releasing 1 ether with one owner's signature is refused by the Safe (below its threshold of 2); nothing was sent");
        }

        JsonNode answer = await admins.SendJsonAsync(HttpMethod.Post, "v1/safes/treasury/transactions", Request("treasury-1", "treasury-2").ToJsonString(), ct)
            .ConfigureAwait(false) ?? throw new CliUsageException("the server answered no Safe transaction");
        string hash = answer["execution"]!["hash"]!.GetValue<string>();
        JsonNode? receipt = await ReceiptAsync(chain, hash, ct).ConfigureAwait(false);
        BigInteger after = DemoChainWord(await chain.EthCallAsync(engine, DemoChain.Calldata("pool()"), ct).ConfigureAwait(false));
        bool mined = receipt?["status"]?.GetValue<string>() == "0x1" && pool - after == DemoChain.Wei("1");
        Say(mined
            ? $"treasury: 1 ether released from the pool to {recipient} with the signatures of treasury-1 and treasury-2, execTransaction {hash} mined"
            : $"treasury: the release {hash} was not mined as expected");
        return mined;
    }

    /// <summary>A transaction's receipt, waiting up to 60 s for it to be mined; null if it was not.</summary>
    private static async Task<JsonNode?> ReceiptAsync(DemoChain chain, string hash, CancellationToken ct)
    {
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < TimeSpan.FromSeconds(60))
        {
            if (await chain.CallAsync("eth_getTransactionReceipt", [hash], ct).ConfigureAwait(false) is { } receipt)
            {
                return receipt;
            }

            await Task.Delay(100, ct).ConfigureAwait(false);
        }

        return null;
    }

    private static BigInteger DemoChainWord(byte[] data) => new(data.AsSpan(0, 32), isUnsigned: false, isBigEndian: true);

    private static double Pct(double[] sorted, double p) => sorted.Length == 0 ? double.NaN : sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)];

    /// <summary>The agent principal and its credential file (the format `conclave agents add` writes).</summary>
    private static async Task<string> RegisterAgentAsync(ConclaveClient admins, string keyId, string dir, CancellationToken ct)
    {
        await admins.CreatePrincipalAsync(new CreatePrincipalRequest("keeper-bot", "agent", ["agent"], new ScopeInfo([keyId], [], ["liquidate", "settle"])), ct).ConfigureAwait(false);
        (byte[] seed, byte[] publicKey) = CredentialFile.NewKeyPair("ed25519");
        try
        {
            CredentialInfo c = await admins.AddCredentialAsync("keeper-bot", new AddCredentialRequest("ed25519", Convert.ToBase64String(publicKey)), ct).ConfigureAwait(false);
            string file = Path.Combine(dir, "keeper-bot.json");
            PrincipalCredential.Write(file, "keeper-bot", c.KeyId, "ed25519", seed, publicKey);
            return file;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(seed);
        }
    }

    private static string RepoRoot()
    {
        foreach (string? start in new[] { Path.GetDirectoryName(typeof(DemoCommand).Assembly.Location), Environment.CurrentDirectory })
        {
            for (string? dir = start; dir is not null; dir = Path.GetDirectoryName(dir))
            {
                if (File.Exists(Path.Combine(dir, "Conclave.slnx")) && Directory.Exists(Path.Combine(dir, "examples", "venue")))
                {
                    return dir;
                }
            }
        }

        throw new CliUsageException("the demo runs from a checkout of the repository (it needs examples/venue and examples/keeper)");
    }

    private static string Configuration() =>
        typeof(DemoCommand).Assembly.Location.Contains($"{Path.DirectorySeparatorChar}Debug{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Debug" : "Release";

    /// <summary>The keeper process: its lines are echoed with a prefix and kept for the summary.</summary>
    private sealed class KeeperRun : IDisposable
    {
        private readonly Process _process;
        private readonly ConcurrentQueue<string> _lines = new();

        private KeeperRun(Process process)
        {
            _process = process;
            _process.OutputDataReceived += (_, e) =>
            {
                if (e.Data is { } line)
                {
                    _lines.Enqueue(line);
                    Console.WriteLine("keeper | " + line);
                }
            };
            _process.ErrorDataReceived += (_, e) =>
            {
                if (e.Data is { } line)
                {
                    Console.Error.WriteLine("keeper | " + line);
                }
            };
            _process.BeginOutputReadLine();
            _process.BeginErrorReadLine();
        }

        public static KeeperRun Start(string dll, IEnumerable<string> arguments)
        {
            var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            psi.ArgumentList.Add(dll);
            foreach (string a in arguments)
            {
                psi.ArgumentList.Add(a);
            }

            return new KeeperRun(Process.Start(psi) ?? throw new CliUsageException("could not start the keeper"));
        }

        public IReadOnlyList<string[]> Events(string word) => [.. _lines.Select(l => l.Split(' ')).Where(p => p.Length > 1 && p[1] == word)];

        /// <summary>Waits for a condition on the keeper's lines; false when the time is up, an error when the keeper exits.</summary>
        public async Task<bool> WaitForAsync(Func<KeeperRun, bool> condition, TimeSpan timeout, CancellationToken ct)
        {
            var sw = Stopwatch.StartNew();
            while (!condition(this))
            {
                if (_process.HasExited)
                {
                    throw new CliUsageException($"the keeper exited with code {_process.ExitCode}");
                }

                if (sw.Elapsed > timeout)
                {
                    return false;
                }

                await Task.Delay(100, ct).ConfigureAwait(false);
            }

            return true;
        }

        /// <summary>SIGTERM, then waits for the exit; the exit code.</summary>
        public async Task<int> StopAsync()
        {
            using (Process kill = Process.Start("kill", ["-TERM", _process.Id.ToString(CultureInfo.InvariantCulture)]))
            {
                await kill.WaitForExitAsync().ConfigureAwait(false);
            }

            if (!_process.WaitForExit(TimeSpan.FromSeconds(40)))
            {
                _process.Kill(entireProcessTree: true);
            }

            _process.WaitForExit();
            return _process.ExitCode;
        }

        public void Dispose()
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(10_000);
            }

            _process.Dispose();
        }
    }
}
