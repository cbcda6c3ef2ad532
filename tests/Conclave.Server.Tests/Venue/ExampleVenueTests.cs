using System.Net;
using System.Numerics;
using System.Text;
using System.Text.Json.Nodes;
using Conclave.Crypto.Hashing;

namespace Conclave.Server.Tests.Venue;

/// <summary>
/// The example venue (examples/venue: MarginEngine, its venue profile) driven through Conclave on a real chain: a keeper
/// that is an <c>ecdsa-dkls23</c> key of a 2-of-3 cluster liquidates an account below maintenance margin with a typed
/// <c>liquidate</c> operation (calldata built from the committed profile), settles an option series at expiry through
/// /rpc eth_sendTransaction (calldata classified against the profile) and exercises for a holder; a key without the
/// keeper role is reverted by the contract, and a call the profile does not map is denied by policy before the chain.
/// </summary>
public sealed class ExampleVenueTests(ExampleVenue v) : IClassFixture<ExampleVenue>
{
    private const string P = "https://conclave.dev/problems/";

    private async Task<(HttpStatusCode Status, JsonNode? Body)> Post(string path, string json)
    {
        using var content = new StringContent(json, Encoding.UTF8, "application/json");
        using HttpResponseMessage r = await v.Http.PostAsync(path, content);
        string text = await r.Content.ReadAsStringAsync();
        return (r.StatusCode, text.Length == 0 ? null : JsonNode.Parse(text));
    }

    private async Task<JsonNode> Rpc(string method, JsonArray parameters)
    {
        var body = new JsonObject { ["jsonrpc"] = "2.0", ["id"] = 1, ["method"] = method, ["params"] = parameters };
        (HttpStatusCode status, JsonNode? answer) = await Post("/rpc", body.ToJsonString());
        Assert.Equal(HttpStatusCode.OK, status);
        return answer!;
    }

    private Task<byte[]> Read(string signature, params object[] args) => v.Chain.EthCallAsync(v.Engine, Abi.Call(signature, args));

    private static string JsonList(IEnumerable<string> items) => new JsonArray(items.Select(i => (JsonNode?)JsonValue.Create(i)).ToArray()).ToJsonString();

    private static string Operation(string operation, string args) =>
        $$"""{"operation":"{{operation}}","venue":"{{ExampleVenue.VenueName}}","args":{{args}},"send":true}""";

    [Fact]
    public async Task A_keeper_key_liquidates_an_account_below_maintenance_margin_and_a_non_keeper_is_reverted()
    {
        string trader = v.Accounts[1];
        await v.SetPriceAsync("0.5");
        await v.Chain.SendFromAsync(trader, v.Engine, Abi.Call("deposit()"), Abi.Wei("1"));
        await v.Chain.SendFromAsync(trader, v.Engine, Abi.Call("openPosition(int256)", Abi.Wei("10"))); // notional 5 ether, 10 % margin
        string keeperRoute = $"/v1/keys/{v.KeeperName}/ethereum/transactions";
        string liquidate = Operation("liquidate", $$"""{"account":"{{trader}}"}""");

        // Healthy (equity 1 ≥ 5 % of 5): the contract refuses (NotLiquidatable) when Conclave estimates gas: 422, nothing sent.
        long keeperPending = await v.Chain.TransactionCountAsync(v.KeeperAddress, "pending");
        (HttpStatusCode status, JsonNode? body) = await Post(keeperRoute, liquidate);
        Assert.True(status == HttpStatusCode.UnprocessableEntity, body?.ToJsonString());
        Assert.Equal(P + "chain-refused", body!["type"]!.GetValue<string>());
        Assert.Equal(keeperPending, await v.Chain.TransactionCountAsync(v.KeeperAddress, "pending"));

        // Price 0.42: PnL −0.8, equity 0.2 < 5 % of the 4.2 notional (0.21).
        await v.SetPriceAsync("0.42");
        Assert.True(Abi.Bool(await Read("isLiquidatable(address)", trader)));

        // A key of the same cluster without the keeper role: the contract reverts with NotKeeper, so the route is 422 and
        // nothing reaches the chain; the position stays open.
        (string other, string otherAddress, _) = await v.CreateFundedKeyAsync("ecdsa-secp256k1");
        (status, body) = await Post($"/v1/keys/{other}/ethereum/transactions", liquidate);
        Assert.True(status == HttpStatusCode.UnprocessableEntity, body?.ToJsonString());
        Assert.Equal(P + "chain-refused", body!["type"]!.GetValue<string>());
        Assert.Equal(0, await v.Chain.TransactionCountAsync(otherAddress, "pending"));
        var revert = await Assert.ThrowsAsync<InvalidOperationException>(() => v.Chain.EthCallAsync(v.Engine, Abi.Call("liquidate(address)", trader), otherAddress));
        Assert.Contains(Convert.ToHexStringLower(Abi.Selector("NotKeeper()")), revert.Message, StringComparison.Ordinal);
        Assert.Equal(Abi.Wei("10"), Abi.Int(await Read("positions(address)", trader)));

        // A typed operation may name its chain and contract, as the issue's request shape does; a contract other than the
        // profile's is refused before anything is signed (400), and so is a contract on a raw transaction.
        string typedShape = $$"""{"operation":"liquidate","venue":"{{ExampleVenue.VenueName}}","chainId":{{AnvilChain.ChainId}},"contract":"{{v.Engine}}","args":{"account":"{{trader}}"},"send":true}""";
        (status, body) = await Post(keeperRoute, typedShape.Replace(v.Engine, "0x000000000000000000000000000000000000bEEF", StringComparison.Ordinal));
        Assert.True(status == HttpStatusCode.BadRequest && body!["detail"]!.GetValue<string>().Contains("contract differs", StringComparison.Ordinal), body?.ToJsonString());
        (status, body) = await Post(keeperRoute, $$"""{"chainId":{{AnvilChain.ChainId}},"to":"{{v.Engine}}","contract":"{{v.Engine}}","send":true}""");
        Assert.True(status == HttpStatusCode.BadRequest, body?.ToJsonString());
        Assert.Equal(keeperPending, await v.Chain.TransactionCountAsync(v.KeeperAddress, "pending"));

        // The keeper: a typed operation built from the venue profile (chain and contract named), signed by the threshold key, mined.
        BigInteger poolBefore = Abi.Uint(await Read("pool()"));
        (status, body) = await Post(keeperRoute, typedShape);
        Assert.True(status == HttpStatusCode.OK, body?.ToJsonString());
        Assert.Equal(v.KeeperAddress, body!["from"]!.GetValue<string>());
        JsonNode receipt = await v.Chain.ReceiptAsync(body["hash"]!.GetValue<string>());
        Assert.Equal("0x1", receipt["status"]!.GetValue<string>());
        Assert.Equal(v.KeeperAddress.ToLowerInvariant(), receipt["from"]!.GetValue<string>());
        Assert.Equal(v.Engine.ToLowerInvariant(), receipt["to"]!.GetValue<string>());

        // On chain: the Liquidated event names the account and the keeper; the position is closed; the account keeps
        // 1 − 0.8 − 1 % of 4.2 = 0.158 ether and the pool gained the rest.
        string liquidated = "0x" + Convert.ToHexStringLower(Keccak256.HashData(Encoding.ASCII.GetBytes("Liquidated(address,address,int256,uint256,uint256)")));
        JsonNode log = receipt["logs"]!.AsArray().Single(l => l!["topics"]![0]!.GetValue<string>() == liquidated)!;
        Assert.Equal("0x" + Abi.Words(trader), log["topics"]![1]!.GetValue<string>());
        Assert.Equal("0x" + Abi.Words(v.KeeperAddress), log["topics"]![2]!.GetValue<string>());

        // A keeper watching the venue finds the same event through Conclave's /rpc (eth_getLogs is forwarded).
        JsonNode logs = await Rpc("eth_getLogs", new JsonArray(new JsonObject
        {
            ["fromBlock"] = receipt["blockNumber"]!.GetValue<string>(), ["toBlock"] = receipt["blockNumber"]!.GetValue<string>(),
            ["address"] = v.Engine, ["topics"] = new JsonArray(liquidated, "0x" + Abi.Words(trader)),
        }));
        JsonNode viaRpc = Assert.Single(logs["result"]!.AsArray())!;
        Assert.Equal(body["hash"]!.GetValue<string>(), viaRpc["transactionHash"]!.GetValue<string>());
        byte[] position = await Read("positions(address)", trader);
        Assert.Equal(BigInteger.Zero, Abi.Int(position, 0));
        Assert.Equal(BigInteger.Zero, Abi.Uint(position, 1));
        Assert.False(Abi.Bool(await Read("isLiquidatable(address)", trader)));
        Assert.Equal(Abi.Wei("0.158"), Abi.Uint(await Read("collateral(address)", trader)));
        Assert.Equal(poolBefore + Abi.Wei("0.842"), Abi.Uint(await Read("pool()")));
    }

    [Fact]
    public async Task The_keeper_settles_a_series_at_expiry_through_rpc_and_exercises_for_the_holder()
    {
        string trader = v.Accounts[2];
        await v.SetPriceAsync("0.5");
        long expiry = await v.Chain.LatestTimestampAsync() + 600;
        await v.Chain.SendFromAsync(v.Admin, v.Engine, Abi.Call("createSeries(bool,uint256,uint256,uint256)", true, Abi.Wei("0.5"), expiry, Abi.Wei("0.05")));
        BigInteger id = Abi.Uint(await Read("seriesCount()")) - 1;
        await v.Chain.SendFromAsync(trader, v.Engine, Abi.Call("deposit()"), Abi.Wei("1"));
        await v.Chain.SendFromAsync(trader, v.Engine, Abi.Call("buyOption(uint256,uint256)", id, Abi.Wei("2"))); // premium 0.1
        var settle = new JsonArray(new JsonObject { ["from"] = v.KeeperAddress, ["to"] = v.Engine, ["data"] = Abi.Call("settle(uint256)", id) });

        // Before expiry the contract refuses (NotExpired): a JSON-RPC error from the chain, not a policy refusal.
        JsonNode early = await Rpc("eth_sendTransaction", settle.DeepClone().AsArray());
        Assert.Equal(-32000, early["error"]!["code"]!.GetValue<int>());
        Assert.Equal(0, await v.Chain.TransactionCountAsync(v.KeeperAddress, "pending") - await v.Chain.TransactionCountAsync(v.KeeperAddress));

        // After expiry, with a price set since: settle(seriesId) through eth_sendTransaction, classified as `settle` by the profile.
        await v.Chain.AdvanceTimeAsync(601);
        await v.SetPriceAsync("0.6");
        JsonNode sent = await Rpc("eth_sendTransaction", settle);
        Assert.True(sent["result"] is not null, sent.ToJsonString());
        JsonNode receipt = await v.Chain.ReceiptAsync(sent["result"]!.GetValue<string>());
        Assert.Equal("0x1", receipt["status"]!.GetValue<string>());
        Assert.Equal(v.KeeperAddress.ToLowerInvariant(), receipt["from"]!.GetValue<string>());
        byte[] series = await Read("series(uint256)", id);
        Assert.True(Abi.Bool(series, 4)); // settled
        Assert.Equal(Abi.Wei("0.6"), Abi.Uint(series, 5)); // settlement price

        // Exercise for the holder, a typed operation: 2 × (0.6 − 0.5) = 0.2 ether from the pool into the holder's collateral.
        (HttpStatusCode status, JsonNode? body) = await Post($"/v1/keys/{v.KeeperName}/ethereum/transactions",
            Operation("exercise", $$"""{"seriesId":"{{id}}","holder":"{{trader}}"}"""));
        Assert.True(status == HttpStatusCode.OK, body?.ToJsonString());
        Assert.Equal("0x1", (await v.Chain.ReceiptAsync(body!["hash"]!.GetValue<string>()))["status"]!.GetValue<string>());
        Assert.Equal(Abi.Wei("1.1"), Abi.Uint(await Read("collateral(address)", trader)));
        Assert.Equal(BigInteger.Zero, Abi.Uint(await Read("optionBalance(uint256,address)", id, trader)));
    }

    [Fact]
    public async Task A_call_the_profile_does_not_map_is_a_raw_digest_that_a_keeper_policy_denies_before_the_chain()
    {
        // setPrice is a function of the venue's contract but not an operation of its profile: policy sees a raw digest,
        // which a venue's policy denies to its keeper (the starter policy would let the admin sign it). Typed operations
        // of the profile stay allowed.
        string data = Abi.Call("setPrice(uint256)", Abi.Wei("1"));
        string route = $"/v1/keys/{v.KeeperName}/ethereum/transactions";
        long before = await v.Chain.TransactionCountAsync(v.KeeperAddress, "pending");
        await PolicyEnforcementTests.PutPolicyAsync(v.Http, v.Cluster.App.Services,
            $$$"""{"id":"keeper-typed-only","version":1,"rules":[{"id":"no-raw","effect":"deny","match":{"keys":["{{{v.KeeperId}}}"],"operations":["raw-digest"]}}]}""");
        try
        {
            JsonNode viaRpc = await Rpc("eth_sendTransaction", new JsonArray(new JsonObject { ["from"] = v.KeeperAddress, ["to"] = v.Engine, ["data"] = data }));
            Assert.Equal(-32001, viaRpc["error"]!["code"]!.GetValue<int>());
            (HttpStatusCode status, JsonNode? body) = await Post(route, $$"""{"chainId":31337,"to":"{{v.Engine}}","data":"{{data}}","send":true}""");
            Assert.True(status == HttpStatusCode.Forbidden, body?.ToJsonString());
            Assert.Equal(P + "policy-denied", body!["type"]!.GetValue<string>());

            // A mapped operation passes policy and reaches the chain, which refuses a series that does not exist: 422, not 403.
            (status, body) = await Post(route, Operation("settle", """{"seriesId":"999"}"""));
            Assert.True(status == HttpStatusCode.UnprocessableEntity, body?.ToJsonString());
            Assert.Equal(P + "chain-refused", body!["type"]!.GetValue<string>());
        }
        finally
        {
            await PolicyEnforcementTests.PutPolicyAsync(v.Http, v.Cluster.App.Services,
                """{"id":"keeper-typed-only","version":2,"rules":[{"id":"no-raw","effect":"deny","match":{"keys":["none"],"operations":["raw-digest"]}}]}""");
        }

        // Bad typed requests are 400 before anything is signed: an argument out of its type's range, an unknown argument,
        // an operation the profile does not map, a venue without a profile.
        foreach (string bad in new[]
        {
            Operation("settle", """{"seriesId":"-1"}"""),
            Operation("settle", """{"seriesId":"1","extra":"2"}"""),
            Operation("hedge", """{"size":"1"}"""),
            """{"operation":"liquidate","venue":"no-such-venue","args":{},"send":true}""",
        })
        {
            (HttpStatusCode status, JsonNode? body) = await Post(route, bad);
            Assert.True(status == HttpStatusCode.BadRequest, bad + " → " + body?.ToJsonString());
        }

        Assert.Equal(before, await v.Chain.TransactionCountAsync(v.KeeperAddress, "pending"));
    }

    [Fact]
    public async Task The_treasury_Safe_releases_pool_collateral_with_two_of_its_three_owner_keys_and_not_with_one()
    {
        // A Safe 1.4.1 (threshold 2) whose owners are three keys of the server: the keeper's ecdsa-dkls23 key (threshold
        // ECDSA over the nodes), a software ecdsa-secp256k1 key and an hsm-ecdsa-secp256k1 key (SoftHSM). It is the
        // venue's treasury: only it can release collateral from the pool.
        (string soft1, string soft1Address, _) = await v.CreateFundedKeyAsync("ecdsa-secp256k1");
        (string hsm, string hsmAddress, _) = await v.CreateFundedKeyAsync("hsm-ecdsa-secp256k1");
        (string stranger, _, _) = await v.CreateFundedKeyAsync("ecdsa-secp256k1");
        string safe = await SafeDeployment.DeployAsync(v.Chain, v.Admin, [v.KeeperAddress, soft1Address, hsmAddress], 2);
        await v.Chain.SendFromAsync(v.Admin, v.Engine, Abi.Call("setTreasury(address)", safe));
        string name = "treasury";
        string Register(int threshold, params string[] owners) =>
            $$"""{"name":"{{name}}","chainId":31337,"address":"{{safe}}","owners":{{JsonList(owners)}},"threshold":{{threshold}}}""";

        // Registration is checked against the chain: a key that is not an owner, or another threshold, is refused.
        (HttpStatusCode status, JsonNode? body) = await Post("/v1/safes", Register(2, v.KeeperName, soft1, stranger));
        Assert.True(status == HttpStatusCode.Conflict, body?.ToJsonString());
        Assert.Equal(P + "safe-mismatch", body!["type"]!.GetValue<string>());
        (status, body) = await Post("/v1/safes", Register(3, v.KeeperName, soft1, hsm));
        Assert.Equal(P + "safe-mismatch", body!["type"]!.GetValue<string>());
        (status, body) = await Post("/v1/safes", Register(2, v.KeeperName, soft1, hsm));
        Assert.True(status == HttpStatusCode.Created, body?.ToJsonString());
        Assert.Equal(3, body!["owners"]!.AsArray().Count);
        (status, body) = await Post("/v1/safes", Register(2, v.KeeperName, soft1, hsm));
        Assert.Equal(P + "safe-exists", body!["type"]!.GetValue<string>());
        using (HttpResponseMessage got = await v.Http.GetAsync($"/v1/safes/{name}"))
        {
            Assert.Equal(HttpStatusCode.OK, got.StatusCode);
            Assert.Equal(2, JsonNode.Parse(await got.Content.ReadAsStringAsync())!["threshold"]!.GetValue<int>());
        }

        string recipient = v.Accounts[5];
        BigInteger recipientBefore = AnvilChain.Q(await v.Chain.Call("eth_getBalance", recipient, "latest"));
        BigInteger poolBefore = Abi.Uint(await Read("pool()"));
        string release = Abi.Call("releaseCollateral(address,uint256)", recipient, Abi.Wei("3"));
        string Proposal(bool execute, params string[] signers) =>
            $$"""{"to":"{{v.Engine}}","data":"{{release}}","signers":{{JsonList(signers)}},"execute":{{(execute ? "true" : "false")}}}""";
        string Executed(string executor, params string[] signers) =>
            $$"""{"to":"{{v.Engine}}","data":"{{release}}","signers":{{JsonList(signers)}},"execute":true,"executor":"{{executor}}"}""";

        // One owner's signature: the Safe refuses execTransaction when Conclave estimates its gas, so nothing is sent (422).
        long keeperPending = await v.Chain.TransactionCountAsync(v.KeeperAddress, "pending");
        (status, body) = await Post($"/v1/safes/{name}/transactions", Proposal(true, v.KeeperName));
        Assert.True(status == HttpStatusCode.UnprocessableEntity, body?.ToJsonString());
        Assert.Equal(P + "chain-refused", body!["type"]!.GetValue<string>());
        Assert.Equal(keeperPending, await v.Chain.TransactionCountAsync(v.KeeperAddress, "pending"));

        // The same single signature collected without executing, then put to the Safe directly: GS020 (signatures too short).
        (status, body) = await Post($"/v1/safes/{name}/transactions", Proposal(false, soft1));
        Assert.True(status == HttpStatusCode.OK, body?.ToJsonString());
        byte[] one = Convert.FromHexString(body!["packed"]!.GetValue<string>()[2..]);
        Assert.Equal(65, one.Length);
        Assert.Null(body["execution"]);
        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            v.Chain.EthCallAsync(safe, SafeDeployment.ExecTransaction(v.Engine, 0, Convert.FromHexString(release[2..]), one), v.Admin));
        Assert.True(refused.Message.Contains("GS020", StringComparison.Ordinal) || refused.Message.Contains(Convert.ToHexStringLower("GS020"u8), StringComparison.Ordinal),
            refused.Message);
        Assert.Equal(BigInteger.Zero, Abi.Uint(await v.Chain.EthCallAsync(safe, Abi.Call("nonce()"))));
        Assert.Equal(poolBefore, Abi.Uint(await Read("pool()")));

        // Two owners (the threshold key and the HSM key), executed by the HSM key (an hsm-ecdsa-secp256k1 transaction on
        // the chain): mined, 3 ether leave the pool.
        (status, body) = await Post($"/v1/safes/{name}/transactions", Executed(hsm, v.KeeperName, hsm));
        Assert.True(status == HttpStatusCode.OK, body?.ToJsonString());
        Assert.Equal("0", body!["nonce"]!.GetValue<string>());
        JsonNode receipt = await v.Chain.ReceiptAsync(body["execution"]!["hash"]!.GetValue<string>());
        Assert.Equal("0x1", receipt["status"]!.GetValue<string>());
        Assert.Equal(hsmAddress.ToLowerInvariant(), receipt["from"]!.GetValue<string>());
        string success = "0x" + Convert.ToHexStringLower(Keccak256.HashData(Encoding.ASCII.GetBytes("ExecutionSuccess(bytes32,uint256)")));
        Assert.Contains(receipt["logs"]!.AsArray(), l => l!["address"]!.GetValue<string>() == safe && l["topics"]![0]!.GetValue<string>() == success);
        Assert.Equal(poolBefore - Abi.Wei("3"), Abi.Uint(await Read("pool()")));
        Assert.Equal(recipientBefore + Abi.Wei("3"), AnvilChain.Q(await v.Chain.Call("eth_getBalance", recipient, "latest")));
        Assert.Equal(BigInteger.One, Abi.Uint(await v.Chain.EthCallAsync(safe, Abi.Call("nonce()"))));

        // What Conclave sent is execTransaction as encoded independently here with the packed signatures it returned.
        byte[] sentData = Conclave.Chains.Ethereum.SignedEthereumTransaction.Decode(Convert.FromHexString(body["execution"]!["raw"]!.GetValue<string>()[2..])).Transaction.Data.ToArray();
        Assert.Equal(SafeDeployment.ExecTransaction(v.Engine, 0, Convert.FromHexString(release[2..]), Convert.FromHexString(body["packed"]!.GetValue<string>()[2..])),
            "0x" + Convert.ToHexStringLower(sentData));

        // ethers computes the same SafeTx hash (EIP-712) and recovers the two owners from the packed signatures, in
        // ascending address order as checkNSignatures requires.
        JsonNode check = NodeInterop.Run("safe", [new
        {
            chainId = AnvilChain.ChainId,
            safe,
            tx = new { to = v.Engine, value = "0", data = release, operation = 0, safeTxGas = "0", baseGas = "0", gasPrice = "0", gasToken = SafeDeployment.ZeroAddress, refundReceiver = SafeDeployment.ZeroAddress, nonce = "0" },
            packed = body["packed"]!.GetValue<string>(),
        }])[0]!;
        Assert.Equal(body["safeTxHash"]!.GetValue<string>(), check["hash"]!.GetValue<string>());
        Assert.Equal(new[] { v.KeeperAddress, hsmAddress }.Select(a => a.ToLowerInvariant()).Order(StringComparer.Ordinal),
            check["owners"]!.AsArray().Select(o => o!.GetValue<string>()));

        // The same signatures exported in the Safe Transaction Service's format: ethers, given only the proposal's fields,
        // computes its contractTransactionHash, and recovers the sender from its signature and each confirming owner from
        // theirs.
        JsonNode proposal = body["transactionService"]!["proposal"]!;
        JsonArray confirmations = body["transactionService"]!["confirmations"]!.AsArray();
        Assert.Equal(body["safeTxHash"]!.GetValue<string>(), proposal["contractTransactionHash"]!.GetValue<string>());
        Assert.Equal(Conclave.Chains.Ethereum.EthereumAddress.ToChecksum(Convert.FromHexString(safe[2..])), proposal["safe"]!.GetValue<string>());
        Assert.Single(confirmations);
        string G(string field) => proposal[field]!.GetValue<string>();
        JsonNode exported = NodeInterop.Run("safe", [new
        {
            chainId = AnvilChain.ChainId,
            safe = G("safe"),
            tx = new
            {
                to = G("to"), value = G("value"), data = G("data"), operation = proposal["operation"]!.GetValue<int>(), safeTxGas = G("safeTxGas"), baseGas = G("baseGas"),
                gasPrice = G("gasPrice"), gasToken = G("gasToken"), refundReceiver = G("refundReceiver"), nonce = G("nonce"),
            },
            packed = G("signature") + confirmations[0]!["signature"]!.GetValue<string>()[2..],
        }])[0]!;
        Assert.Equal(G("contractTransactionHash"), exported["hash"]!.GetValue<string>());
        Assert.Equal([G("sender").ToLowerInvariant(), confirmations[0]!["owner"]!.GetValue<string>().ToLowerInvariant()],
            exported["owners"]!.AsArray().Select(o => o!.GetValue<string>()));
        Assert.Equal(new[] { v.KeeperAddress, hsmAddress }.Select(a => a.ToLowerInvariant()).Order(StringComparer.Ordinal),
            exported["owners"]!.AsArray().Select(o => o!.GetValue<string>()).Order(StringComparer.Ordinal));

        // A signer that is not an owner key of the Safe, and an unknown Safe, are refused before anything is signed.
        (status, body) = await Post($"/v1/safes/{name}/transactions", Proposal(false, stranger));
        Assert.True(status == HttpStatusCode.BadRequest, body?.ToJsonString());
        (status, body) = await Post("/v1/safes/no-such-safe/transactions", Proposal(false, soft1));
        Assert.True(status == HttpStatusCode.NotFound, body?.ToJsonString());
        Assert.Equal(P + "unknown-safe", body!["type"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_stuck_transaction_is_replaced_by_a_fee_bump_on_request()
    {
        (string name, string address, _) = await v.CreateFundedKeyAsync("ecdsa-secp256k1");
        string route = $"/v1/keys/{name}/ethereum/transactions";
        const string Chain = """{"chainId":31337}""";
        string recipient = v.Accounts[6];
        JsonNode first;
        JsonNode bumped;

        // The chain stops mining, so the transaction stays pending (as an underpriced one does on a busy chain).
        await v.Chain.Call("evm_setAutomine", false);
        await v.Chain.Call("evm_setIntervalMining", 0);
        try
        {
            (HttpStatusCode status, JsonNode? body) = await Post(route, $$"""{"chainId":31337,"to":"{{recipient}}","value":"7","send":true}""");
            Assert.True(status == HttpStatusCode.OK, body?.ToJsonString());
            first = body!;
            string stuck = first["hash"]!.GetValue<string>();
            Assert.Null(await v.Chain.Call("eth_getTransactionReceipt", stuck));

            // The fee bump: the same nonce, recipient, value and data, each fee at least 12.5 % higher, signed and sent.
            (status, body) = await Post($"{route}/{stuck}/replace", Chain);
            Assert.True(status == HttpStatusCode.OK, body?.ToJsonString());
            bumped = body!;
            Assert.NotEqual(stuck, bumped["hash"]!.GetValue<string>());
            Assert.Equal(first["nonce"]!.GetValue<string>(), bumped["nonce"]!.GetValue<string>());
            foreach (string fee in new[] { "maxFeePerGas", "maxPriorityFeePerGas" })
            {
                BigInteger before = BigInteger.Parse(first[fee]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture);
                Assert.True(BigInteger.Parse(bumped[fee]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture) >= before + (before / 8) + 1, fee);
            }

            JsonArray read = NodeInterop.Run("evm-tx", [new { raw = bumped["raw"]!.GetValue<string>() }]);
            Assert.Equal(address, read[0]!["from"]!.GetValue<string>());
            Assert.Equal("7", read[0]!["value"]!.GetValue<string>());
            Assert.Equal(recipient.ToLowerInvariant(), read[0]!["to"]!.GetValue<string>().ToLowerInvariant());

            // Another key cannot replace it; a hash that is not one is 400.
            (status, body) = await Post($"/v1/keys/{v.KeeperName}/ethereum/transactions/{bumped["hash"]!.GetValue<string>()}/replace", Chain);
            Assert.True(status == HttpStatusCode.BadRequest, body?.ToJsonString());
            (status, body) = await Post($"{route}/0x1234/replace", Chain);
            Assert.True(status == HttpStatusCode.BadRequest, body?.ToJsonString());
        }
        finally
        {
            await v.Chain.Call("evm_setAutomine", true);
            await v.Chain.Call("evm_mine");
        }

        // Mined: the replacement, not the original; a second bump is refused as not pending.
        JsonNode receipt = await v.Chain.ReceiptAsync(bumped["hash"]!.GetValue<string>());
        Assert.Equal("0x1", receipt["status"]!.GetValue<string>());
        Assert.Null(await v.Chain.Call("eth_getTransactionReceipt", first["hash"]!.GetValue<string>()));
        Assert.Equal(1, await v.Chain.TransactionCountAsync(address));
        (HttpStatusCode again, JsonNode? refused) = await Post($"{route}/{bumped["hash"]!.GetValue<string>()}/replace", Chain);
        Assert.True(again == HttpStatusCode.Conflict, refused?.ToJsonString());
        Assert.Equal(P + "transaction-not-pending", refused!["type"]!.GetValue<string>());
    }
}
