using System.Globalization;
using System.Net;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Conclave.Crypto.Hashing;
using Conclave.Policy.HttpSignatures;
using Xunit.Abstractions;

namespace Conclave.Server.Tests.Venue;

/// <summary>The example venue whose starter policy lets agent principals liquidate and settle (<see cref="ExampleVenue.AgentRule"/>).</summary>
public sealed class KeeperVenue : IAsyncLifetime
{
    public ExampleVenue Venue { get; } = new(allowAgents: true);

    public Task InitializeAsync() => Venue.InitializeAsync();

    public Task DisposeAsync() => Venue.DisposeAsync();
}

/// <summary>
/// The keeper of examples/keeper run as a separate process against anvil and a real 2-of-3 cluster, authenticated as its
/// own agent principal (an Ed25519 credential, RFC 9421 signed requests; never the admin token), liquidating through the
/// typed <c>liquidate</c> operation signed by the venue's <c>ecdsa-dkls23</c> keeper key.
/// </summary>
public sealed class KeeperCascadeTests(KeeperVenue fixture, ITestOutputHelper output) : IClassFixture<KeeperVenue>
{
    private const int Accounts = 100;
    private static readonly string LiquidatedTopic = "0x" + Convert.ToHexStringLower(Keccak256.HashData(Encoding.ASCII.GetBytes("Liquidated(address,address,int256,uint256,uint256)")));

    private ExampleVenue V => fixture.Venue;

    [Fact]
    public async Task The_keeper_liquidates_a_hundred_accounts_after_one_price_move_and_again_with_a_signer_node_killed_mid_cascade()
    {
        string credential = await RegisterAgentAsync();
        await V.Chain.Call("anvil_autoImpersonateAccount", true);
        await V.SetPriceAsync("1");

        // Phase 1: 100 accounts at 10 units long with exactly the 10 % initial margin (1 ether at price 1); one block
        // moves the price to 0.94, where each one's equity (0.4) is below 5 % of its notional (0.47).
        string[] first = await OpenAccountsAsync(Accounts, "first cascade");
        using (KeeperProcess keeper = StartKeeper(credential))
        {
            await keeper.WaitForAsync(k => SeenAccounts(k) >= Accounts, "the keeper has read the accounts", TimeSpan.FromSeconds(60));
            DateTimeOffset moved = await MovePriceAsync("0.94");
            await keeper.WaitForAsync(k => k.Events("liquidated").Count >= Accounts, "every account is liquidated", TimeSpan.FromSeconds(120));
            await AssertAllLiquidatedAsync(keeper, first, moved, "three signer nodes up");
            Assert.Equal(0, await keeper.TerminateAsync(TimeSpan.FromSeconds(40)));
            Assert.Contains(keeper.Lines, l => l.Contains($" stopped mode=liquidate sent={Accounts} ", StringComparison.Ordinal));
        }

        // Phase 2: the same with 100 new accounts, and signer node 2 killed (SIGKILL) once the cascade is under way: the
        // 2-of-3 key still signs with nodes 1 and 3; a request that failed with the node is retried by the keeper.
        await V.SetPriceAsync("1");
        string[] second = await OpenAccountsAsync(Accounts, "second cascade");
        using (KeeperProcess keeper = StartKeeper(credential))
        {
            await keeper.WaitForAsync(k => SeenAccounts(k) >= 2 * Accounts, "the keeper has read the accounts", TimeSpan.FromSeconds(60));
            DateTimeOffset moved = await MovePriceAsync("0.94");
            await keeper.WaitForAsync(k => k.Events("liquidated").Count >= 10, "the cascade is under way", TimeSpan.FromSeconds(60));
            V.Cluster.Nodes.KillNode(2);
            Assert.True(V.Cluster.Nodes.NodeProcess(2)!.HasExited);
            output.WriteLine($"signer node 2 killed after {keeper.Events("liquidated").Count} liquidations");
            await keeper.WaitForAsync(k => k.Events("liquidated").Count >= Accounts, "every account is liquidated", TimeSpan.FromSeconds(120));
            await AssertAllLiquidatedAsync(keeper, second, moved, "signer node 2 killed during the cascade");
            Assert.Equal(0, await keeper.TerminateAsync(TimeSpan.FromSeconds(40)));
        }
    }

    [Fact]
    public async Task The_settlement_agent_settles_an_expired_series_once_a_price_is_set_after_its_expiry()
    {
        string credential = await RegisterAgentAsync();
        await V.SetPriceAsync("1");
        long expiry = await V.Chain.LatestTimestampAsync() + 60;
        await V.Chain.SendFromAsync(V.Admin, V.Engine, Abi.Call("createSeries(bool,uint256,uint256,uint256)", true, Abi.Wei("0.9"), expiry, Abi.Wei("0.05")));
        long id = (long)Abi.Uint(await V.Chain.EthCallAsync(V.Engine, Abi.Call("seriesCount()"))) - 1;
        string target = "series-" + id.ToString(CultureInfo.InvariantCulture);
        using KeeperProcess settler = KeeperProcess.Start(KeeperArguments(credential, "settle"));
        await settler.WaitForAsync(k => k.Lines.Any(l => l.Contains(" started mode=settle ", StringComparison.Ordinal)), "the agent has started", TimeSpan.FromSeconds(60));

        // Past the expiry but no price since: settle would revert (NoPriceSinceExpiry), so the agent waits.
        await V.Chain.AdvanceTimeAsync(120);
        await Task.Delay(1500);
        Assert.Empty(settler.Events("settled"));
        Assert.False(Abi.Bool(await V.Chain.EthCallAsync(V.Engine, Abi.Call("series(uint256)", id)), 4));

        await V.SetPriceAsync("1.1");
        await settler.WaitForAsync(k => k.Events("settled").Any(f => f[2] == target), "the series is settled", TimeSpan.FromSeconds(60));
        string[] line = settler.Events("settled").Single(f => f[2] == target);
        JsonNode receipt = await V.Chain.ReceiptAsync(Field(line, "tx"));
        Assert.Equal("0x1", receipt["status"]!.GetValue<string>());
        Assert.Equal(V.KeeperAddress.ToLowerInvariant(), receipt["from"]!.GetValue<string>().ToLowerInvariant());
        byte[] series = await V.Chain.EthCallAsync(V.Engine, Abi.Call("series(uint256)", id));
        Assert.True(Abi.Bool(series, 4));
        Assert.Equal(Abi.Wei("1.1"), Abi.Uint(series, 5));
        Assert.Equal(0, await settler.TerminateAsync(TimeSpan.FromSeconds(40)));
        Assert.Contains(settler.Lines, l => l.Contains(" stopped mode=settle sent=1 reverted=0 failed=0", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_refused_liquidation_is_one_failed_line_per_attempt_and_the_keeper_keeps_running()
    {
        // An agent whose scope has settle only: policy refuses its liquidate (403 policy-denied) before any signing.
        string credential = await RegisterAgentAsync(["settle"]);
        await V.Chain.Call("anvil_autoImpersonateAccount", true);
        await V.SetPriceAsync("1");
        string account = (await OpenAccountsAsync(1, "refused"))[0];
        long pending = await V.Chain.TransactionCountAsync(V.KeeperAddress, "pending");
        using (KeeperProcess keeper = StartKeeper(credential))
        {
            await keeper.WaitForAsync(k => k.Lines.Any(l => l.Contains(" price 1000000000000000000 wei", StringComparison.Ordinal)), "the keeper watches", TimeSpan.FromSeconds(60));
            await V.SetPriceAsync("0.94");
            // Retried at the 2 s rescans, one line each time, and the process stays up.
            await keeper.WaitForAsync(k => k.Events("failed").Count(f => f[3] == account + ":") >= 2, "two refused attempts", TimeSpan.FromSeconds(60));
            Assert.All(keeper.Events("failed"), f => Assert.Contains("policy-denied", string.Join(' ', f), StringComparison.Ordinal));
            Assert.Empty(keeper.Events("liquidated"));
            Assert.Equal(0, await keeper.TerminateAsync(TimeSpan.FromSeconds(40)));
            Assert.Contains(keeper.Lines, l => l.Contains(" stopped mode=liquidate sent=0 reverted=0 failed=", StringComparison.Ordinal));
        }

        Assert.Equal(pending, await V.Chain.TransactionCountAsync(V.KeeperAddress, "pending"));
        Assert.Equal(Abi.Wei("10"), Abi.Int(await V.Chain.EthCallAsync(V.Engine, Abi.Call("positions(address)", account))));

        // Leave no liquidatable account behind for the other tests of the class: the admin liquidates it.
        JsonNode sent = await OwnServers.PostAsync(V.Http, $"/v1/keys/{V.KeeperName}/ethereum/transactions",
            $$"""{"operation":"liquidate","venue":"{{ExampleVenue.VenueName}}","args":{"account":"{{account}}"},"send":true}""");
        Assert.Equal("0x1", (await V.Chain.ReceiptAsync(sent["hash"]!.GetValue<string>()))["status"]!.GetValue<string>());
    }

    [Fact]
    public async Task Bad_options_are_one_line_the_usage_and_exit_code_2()
    {
        using KeeperProcess keeper = KeeperProcess.Start(["--server", "http://127.0.0.1:1", "--key", "k"]);
        Assert.Equal(2, await keeper.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        Assert.StartsWith("conclave-keeper: --credential is required\nusage: conclave-keeper --server URL", keeper.Errors, StringComparison.Ordinal);
        Assert.Empty(keeper.Lines);
    }

    /// <summary>How many accounts the keeper's latest <c>price</c> line says it watches.</summary>
    private static int SeenAccounts(KeeperProcess keeper) => keeper.Events("price").Select(f => f.FirstOrDefault(x => x.StartsWith("accounts=", StringComparison.Ordinal)))
        .Select(x => x is null ? 0 : int.Parse(x["accounts=".Length..], CultureInfo.InvariantCulture)).DefaultIfEmpty(0).Max();

    /// <summary>
    /// An agent principal scoped to the keeper key and liquidate/settle, its Ed25519 credential file (as `conclave agents
    /// add` writes it); the key derives from the run seed and <paramref name="test"/>.
    /// </summary>
    private async Task<string> RegisterAgentAsync(string[]? operations = null, [CallerMemberName] string test = "")
    {
        string ops = string.Join(',', (operations ?? ["liquidate", "settle"]).Select(o => $"\"{o}\""));
        string id = "keeper-" + Guid.NewGuid().ToString("N")[..8];
        await OwnServers.PostAsync(V.Http, "/v1/principals",
            $$$"""{"id":"{{{id}}}","kind":"agent","roles":["agent"],"scope":{"keys":["{{{V.KeeperId}}}"],"operations":[{{{ops}}}]}}""", HttpStatusCode.Created);
        byte[] seed = TestSeed.Bytes(32, "agent key", test);
        try
        {
            using HttpSigningKey key = HttpSigningKey.Ed25519FromSeed(seed);
            JsonNode credential = await OwnServers.PostAsync(V.Http, $"/v1/principals/{id}/credentials",
                $$"""{"algorithm":"ed25519","publicKey":"{{Convert.ToBase64String([.. key.PublicKey.PublicKey])}}"}""", HttpStatusCode.Created);
            string file = Path.Combine(Path.GetTempPath(), "conclave-keeper-" + Guid.NewGuid().ToString("N") + ".json");
            var doc = new JsonObject
            {
                ["principal"] = id,
                ["keyId"] = credential["keyId"]!.GetValue<string>(),
                ["algorithm"] = "ed25519",
                ["privateKey"] = Convert.ToBase64String(seed),
            };
            Conclave.Storage.OwnerOnly.WriteAllText(file, doc.ToJsonString());
            return file;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(seed);
        }
    }

    private KeeperProcess StartKeeper(string credential) => KeeperProcess.Start(KeeperArguments(credential, "liquidate"));

    private string[] KeeperArguments(string credential, string mode) =>
    [
        "--server", "http://" + V.Cluster.Config.Listen,
        "--credential", credential,
        "--key", V.KeeperName,
        "--engine", V.Engine,
        "--chain-url", V.Chain.Url.ToString(),
        "--mode", mode,
        "--concurrency", "16",
        "--poll-ms", "100",
    ];

    /// <summary>
    /// New accounts (impersonated on anvil), each depositing 1 ether and opening a 10-unit long at the current price; their
    /// addresses derive from the run seed, <paramref name="test"/> and <paramref name="label"/> (one label per call of a test:
    /// the class's chain is shared by its tests).
    /// </summary>
    private async Task<string[]> OpenAccountsAsync(int count, string label, [CallerMemberName] string test = "")
    {
        DeterministicRandomSource draw = TestSeed.For("accounts " + label, test);
        string[] accounts = [.. Enumerable.Range(0, count).Select(_ => "0x" + Convert.ToHexStringLower(draw.Bytes(20)))];
        await Parallel.ForEachAsync(accounts, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (a, _) =>
        {
            await V.Chain.FundAsync(a);
            await V.Chain.SendFromAsync(a, V.Engine, Abi.Call("deposit()"), Abi.Wei("1"));
            await V.Chain.SendFromAsync(a, V.Engine, Abi.Call("openPosition(int256)", Abi.Wei("10")));
        });
        return accounts;
    }

    /// <summary>Sets the oracle price in one block; the time its receipt was read.</summary>
    private async Task<DateTimeOffset> MovePriceAsync(string ether)
    {
        await V.SetPriceAsync(ether);
        return DateTimeOffset.UtcNow;
    }

    private async Task AssertAllLiquidatedAsync(KeeperProcess keeper, string[] accounts, DateTimeOffset moved, string phase)
    {
        // One liquidated line per account: "TIME liquidated ACCOUNT tx=HASH nonce=N from=ADDRESS".
        var lines = keeper.Events("liquidated").Where(f => accounts.Contains(f[2], StringComparer.Ordinal)).ToArray();
        Assert.True(lines.Length == accounts.Length, $"{lines.Length} liquidations of {accounts.Length} accounts:\n{keeper.Output}");
        Assert.Equal(accounts.Order(StringComparer.Ordinal), lines.Select(f => f[2]).Order(StringComparer.Ordinal));
        string keeper0x = V.KeeperAddress.ToLowerInvariant();
        var nonces = new HashSet<string>(StringComparer.Ordinal);
        foreach (string[] f in lines)
        {
            string hash = Field(f, "tx");
            Assert.True(nonces.Add(Field(f, "nonce")), $"nonce {Field(f, "nonce")} used twice:\n{keeper.Output}");
            JsonNode receipt = await V.Chain.ReceiptAsync(hash);
            Assert.Equal("0x1", receipt["status"]!.GetValue<string>());
            Assert.Equal(keeper0x, receipt["from"]!.GetValue<string>().ToLowerInvariant());
            Assert.Contains(receipt["logs"]!.AsArray(), l => l!["topics"]![0]!.GetValue<string>() == LiquidatedTopic
                && l["topics"]![1]!.GetValue<string>().EndsWith(f[2][2..], StringComparison.Ordinal)
                && l["topics"]![2]!.GetValue<string>().EndsWith(keeper0x[2..], StringComparison.Ordinal));
        }

        foreach (string a in accounts)
        {
            Assert.Equal(BigInteger.Zero, Abi.Int(await V.Chain.EthCallAsync(V.Engine, Abi.Call("positions(address)", a))));
        }

        // Latency from the price block to each liquidation accepted by the node (the keeper's line is written when Conclave
        // answers with the node's acceptance); no assertion on it.
        double[] ms = [.. lines.Select(f => (KeeperProcess.Time(f) - moved).TotalMilliseconds).Order()];
        double seconds = ms[^1] / 1000;
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"cascade ({phase}): {ms.Length} liquidations, latency p50 {Percentile(ms, 0.50):F0} ms, p99 {Percentile(ms, 0.99):F0} ms, max {ms[^1]:F0} ms; {ms.Length / seconds:F1} liquidations/s; "
            + $"keeper lines: {keeper.Events("revert").Count} revert, {keeper.Events("failed").Count} failed; load {File.ReadAllText("/proc/loadavg").Trim()}"));
        foreach (string[] f in keeper.Events("failed").Concat(keeper.Events("revert")).Take(5))
        {
            output.WriteLine("  " + string.Join(' ', f));
        }
    }

    private static string Field(string[] fields, string name) =>
        fields.FirstOrDefault(x => x.StartsWith(name + "=", StringComparison.Ordinal))?[(name.Length + 1)..] ?? throw new InvalidOperationException("no " + name + " in " + string.Join(' ', fields));

    /// <summary>Nearest-rank percentile of sorted values.</summary>
    private static double Percentile(double[] sorted, double p) => sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)];
}
