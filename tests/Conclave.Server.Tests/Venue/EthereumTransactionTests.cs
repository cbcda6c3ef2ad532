using System.Net;
using System.Numerics;
using System.Text;
using System.Text.Json.Nodes;

namespace Conclave.Server.Tests.Venue;

/// <summary>
/// Transactions built, signed over the cluster and sent to a real chain (anvil): POST /v1/keys/{name}/ethereum/transactions,
/// /rpc forwarding and eth_sendTransaction, the durable nonce manager under concurrency and a server restart, resync with
/// nonces used outside Conclave, refusals that never reach the chain, and ethers reading what was signed.
/// </summary>
public sealed class EthereumTransactionTests(VenueCluster c) : IClassFixture<VenueCluster>
{
    private const string P = "https://conclave.dev/problems/";
    private const string Recipient = "0x000000000000000000000000000000000000bEEF";

    private async Task<(HttpStatusCode Status, JsonNode? Body)> Send(HttpMethod method, string path, string? json = null)
    {
        using var req = new HttpRequestMessage(method, path) { Content = json is null ? null : new StringContent(json, Encoding.UTF8, "application/json") };
        using HttpResponseMessage r = await c.Http.SendAsync(req);
        string text = await r.Content.ReadAsStringAsync();
        return (r.StatusCode, text.Length == 0 ? null : JsonNode.Parse(text));
    }

    private async Task<(string Name, string Address)> FundedKey(string scheme = "ecdsa-dkls23")
    {
        string name = "venue-" + Guid.NewGuid().ToString("N")[..8];
        (HttpStatusCode status, JsonNode? body) = await Send(HttpMethod.Post, "/v1/keys", $$"""{"name":"{{name}}","scheme":"{{scheme}}"}""");
        Assert.True(status == HttpStatusCode.Created, body?.ToJsonString());
        string address = body!["addresses"]!["ethereum"]!.GetValue<string>();
        await c.Chain.FundAsync(address);
        return (name, address);
    }

    private static string Transfer(long value, long chainId = AnvilChain.ChainId, string to = Recipient) =>
        $$"""{"chainId":{{chainId}},"to":"{{to}}","value":"{{value}}","send":true}""";

    private async Task<JsonNode> SendOk(string name, string json)
    {
        (HttpStatusCode status, JsonNode? body) = await Send(HttpMethod.Post, $"/v1/keys/{name}/ethereum/transactions", json);
        Assert.True(status == HttpStatusCode.OK, body?.ToJsonString());
        return body!;
    }

    [Fact]
    public async Task A_dkls23_transaction_is_mined_with_the_keys_address_as_sender_and_ethers_reads_it()
    {
        (string name, string address) = await FundedKey();
        JsonNode tx = await SendOk(name, Transfer(12345));
        Assert.Equal(address, tx["from"]!.GetValue<string>());
        Assert.Equal("0", tx["nonce"]!.GetValue<string>());
        JsonNode receipt = await c.Chain.ReceiptAsync(tx["hash"]!.GetValue<string>());
        Assert.Equal("0x1", receipt["status"]!.GetValue<string>());
        Assert.Equal(address.ToLowerInvariant(), receipt["from"]!.GetValue<string>());
        Assert.Equal(Recipient.ToLowerInvariant(), receipt["to"]!.GetValue<string>());

        // Built without sending: a raw transaction with the next nonce; ethers recovers the sender and reads every field.
        JsonNode unsent = await SendOk(name, $$"""{"chainId":31337,"to":"{{Recipient}}","value":"0x2a","data":"0x1234"}""");
        Assert.False(unsent["sent"]!.GetValue<bool>());
        Assert.Equal("1", unsent["nonce"]!.GetValue<string>());
        JsonArray parsed = NodeInterop.Run("evm-tx", [new { raw = tx["raw"]!.GetValue<string>() }, new { raw = unsent["raw"]!.GetValue<string>() }]);
        Assert.Equal(address, parsed[0]!["from"]!.GetValue<string>());
        Assert.Equal(Recipient, parsed[0]!["to"]!.GetValue<string>());
        Assert.Equal("12345", parsed[0]!["value"]!.GetValue<string>());
        Assert.Equal("0", parsed[0]!["nonce"]!.GetValue<string>());
        Assert.Equal("31337", parsed[0]!["chainId"]!.GetValue<string>());
        Assert.Equal(tx["hash"]!.GetValue<string>(), parsed[0]!["hash"]!.GetValue<string>());
        Assert.Equal(address, parsed[1]!["from"]!.GetValue<string>());
        Assert.Equal("42", parsed[1]!["value"]!.GetValue<string>());
        Assert.Equal("1", parsed[1]!["nonce"]!.GetValue<string>());
        Assert.Equal(2, parsed[1]!["type"]!.GetValue<int>());
    }

    [Fact]
    public async Task Two_hundred_transactions_from_four_concurrent_clients_are_all_mined_with_contiguous_nonces()
    {
        (string name, string address) = await FundedKey();
        string[] hashes = await RunClients(name, 4, 50);
        await AssertMinedContiguous(address, hashes, 200);
    }

    [Fact]
    public async Task Nonces_stay_contiguous_across_a_server_restart_in_the_middle()
    {
        (string name, string address) = await FundedKey();
        string[] first = await RunClients(name, 4, 25);
        await c.RestartServerAsync();
        string[] second = await RunClients(name, 4, 25);
        await AssertMinedContiguous(address, [.. first, .. second], 200);
    }

    [Fact]
    public async Task A_nonce_used_outside_Conclave_is_picked_up_from_the_chain()
    {
        (string name, string address) = await FundedKey();
        JsonNode first = await SendOk(name, Transfer(1));
        Assert.Equal("0", first["nonce"]!.GetValue<string>());
        await c.Chain.ReceiptAsync(first["hash"]!.GetValue<string>());

        // The same key signs nonce 1 through eth_signTransaction and the raw bytes go to the chain directly.
        JsonNode call = await Rpc("eth_signTransaction", new JsonArray(new JsonObject
        {
            ["from"] = address, ["to"] = Recipient, ["value"] = "0x1", ["nonce"] = "0x1", ["gas"] = "0x5208",
            ["maxFeePerGas"] = "0x77359400", ["maxPriorityFeePerGas"] = "0x3b9aca00", ["chainId"] = "0x7a69", ["type"] = "0x2",
        }));
        string raw = call["result"]!.GetValue<string>();
        string outside = (await c.Chain.Call("eth_sendRawTransaction", raw))!.GetValue<string>();
        await c.Chain.ReceiptAsync(outside);

        JsonNode next = await SendOk(name, Transfer(1));
        Assert.Equal("2", next["nonce"]!.GetValue<string>());
        Assert.Equal("0x1", (await c.Chain.ReceiptAsync(next["hash"]!.GetValue<string>()))["status"]!.GetValue<string>());
        Assert.Equal(3, await c.Chain.TransactionCountAsync(address));
    }

    [Fact]
    public async Task Rpc_forwards_read_methods_and_eth_sendTransaction_signs_fills_and_sends()
    {
        (_, string address) = await FundedKey();
        JsonNode block = await Rpc("eth_blockNumber", []);
        Assert.StartsWith("0x", block["result"]!.GetValue<string>(), StringComparison.Ordinal);
        JsonNode balance = await Rpc("eth_getBalance", new JsonArray(address, "latest"));
        Assert.Equal(BigInteger.Parse("100000000000000000000", System.Globalization.CultureInfo.InvariantCulture), AnvilChain.Q(balance["result"]));
        Assert.Equal(-32601, (await Rpc("eth_mining", []))["error"]!["code"]!.GetValue<int>()); // not forwarded: unknown as before

        JsonNode sent = await Rpc("eth_sendTransaction", new JsonArray(new JsonObject { ["from"] = address, ["to"] = Recipient, ["value"] = "0x10" }));
        string hash = sent["result"]!.GetValue<string>();
        JsonNode receipt = await c.Chain.ReceiptAsync(hash);
        Assert.Equal("0x1", receipt["status"]!.GetValue<string>());
        Assert.Equal(address.ToLowerInvariant(), receipt["from"]!.GetValue<string>());
        Assert.Equal(-32602, (await Rpc("eth_sendTransaction", new JsonArray(new JsonObject { ["from"] = address, ["to"] = "0x12" })))["error"]!["code"]!.GetValue<int>());
    }

    [Fact]
    public async Task Bad_requests_and_a_policy_refusal_are_4xx_and_never_reach_the_chain()
    {
        (string name, string address) = await FundedKey("ecdsa-secp256k1");
        string path = $"/v1/keys/{name}/ethereum/transactions";
        async Task Refused(string json, HttpStatusCode status, string type)
        {
            (HttpStatusCode s, JsonNode? body) = await Send(HttpMethod.Post, path, json);
            Assert.True(s == status, body?.ToJsonString());
            Assert.Equal(P + type, body!["type"]!.GetValue<string>());
        }

        await Refused(Transfer(1, chainId: 0), HttpStatusCode.BadRequest, "invalid-request");
        await Refused(Transfer(1, chainId: 5), HttpStatusCode.BadRequest, "unknown-chain");
        await Refused(Transfer(1, to: "0x1234"), HttpStatusCode.BadRequest, "invalid-request");
        await Refused(Transfer(1, to: "0x000000000000000000000000000000000000BeEF"), HttpStatusCode.BadRequest, "invalid-request"); // mixed case, wrong EIP-55 checksum
        await Refused($$"""{"chainId":31337,"to":"{{Recipient}}","data":"0x{{new string('a', 2 * (128 * 1024 + 1))}}","send":true}""", HttpStatusCode.BadRequest, "invalid-request");
        await Refused($$"""{"chainId":31337,"to":"{{Recipient}}","colour":"red"}""", HttpStatusCode.BadRequest, "invalid-request");
        await Refused("""{"chainId":31337,"to":""", HttpStatusCode.BadRequest, "malformed-json");

        // A policy that denies software keys: 403, and the chain never sees a transaction nor the nonce store a reservation.
        // (Policy changes are held for approvers: the test approvers pass them, PolicyEnforcementTests.PutPolicyAsync.)
        await PolicyEnforcementTests.PutPolicyAsync(c.Http, c.App.Services,
            """{"id":"venue-deny","version":1,"rules":[{"id":"no-soft","effect":"deny","match":{"labels":["scheme:ecdsa-secp256k1"]}}]}""");
        try
        {
            await Refused(Transfer(1), HttpStatusCode.Forbidden, "policy-denied");
            JsonNode viaRpc = await Rpc("eth_sendTransaction", new JsonArray(new JsonObject { ["from"] = address, ["to"] = Recipient, ["value"] = "0x1" }));
            Assert.Equal(-32001, viaRpc["error"]!["code"]!.GetValue<int>());
            Assert.Equal(0, await c.Chain.TransactionCountAsync(address, "pending"));
            var store = c.App.Services.GetService(typeof(Conclave.Server.Api.KeyService)) as Conclave.Server.Api.KeyService;
            Assert.Equal(0, (await store!.Store.EthereumNonces.ReadAsync(AnvilChain.ChainId, address)).Next);
        }
        finally
        {
            await PolicyEnforcementTests.PutPolicyAsync(c.Http, c.App.Services,
                """{"id":"venue-deny","version":2,"rules":[{"id":"no-soft","effect":"deny","match":{"labels":["scheme:none"]}}]}""");
        }

        // The same key, allowed again, sends with nonce 0.
        JsonNode ok = await SendOk(name, Transfer(1));
        Assert.Equal("0", ok["nonce"]!.GetValue<string>());
    }

    private async Task<JsonNode> Rpc(string method, JsonArray parameters)
    {
        var body = new JsonObject { ["jsonrpc"] = "2.0", ["id"] = 1, ["method"] = method, ["params"] = parameters };
        (HttpStatusCode status, JsonNode? answer) = await Send(HttpMethod.Post, "/rpc", body.ToJsonString());
        Assert.Equal(HttpStatusCode.OK, status);
        return answer!;
    }

    private async Task<string[]> RunClients(string name, int clients, int each)
    {
        var tasks = Enumerable.Range(0, clients).Select(client => Task.Run(async () =>
        {
            var hashes = new List<string>();
            for (int i = 0; i < each; i++)
            {
                hashes.Add((await SendOk(name, Transfer(1 + client)))["hash"]!.GetValue<string>());
            }

            return hashes;
        }));
        return [.. (await Task.WhenAll(tasks)).SelectMany(h => h)];
    }

    private async Task AssertMinedContiguous(string address, string[] hashes, int count)
    {
        Assert.Equal(count, hashes.Distinct(StringComparer.Ordinal).Count());

        // First what the node holds (mined or pending): every transaction known, one per nonce 0..count-1, so a failure
        // says which nonce is missing or doubled rather than only that a receipt never came.
        var known = new List<(string Hash, long Nonce)>();
        foreach (string h in hashes)
        {
            JsonNode? tx = await c.Chain.Call("eth_getTransactionByHash", h);
            Assert.True(tx is not null, $"the node does not know transaction {h}");
            known.Add((h, (long)AnvilChain.Q(tx!["nonce"])));
        }

        long[] doubled = [.. known.GroupBy(k => k.Nonce).Where(g => g.Count() > 1).Select(g => g.Key)];
        long[] missing = [.. Enumerable.Range(0, count).Select(i => (long)i).Except(known.Select(k => k.Nonce))];
        Assert.True(doubled.Length == 0 && missing.Length == 0, $"nonces doubled: [{string.Join(",", doubled)}], missing: [{string.Join(",", missing)}]");

        var nonces = new List<long>();
        foreach (string h in hashes)
        {
            JsonNode receipt = await c.Chain.ReceiptAsync(h);
            Assert.Equal("0x1", receipt["status"]!.GetValue<string>());
            Assert.Equal(address.ToLowerInvariant(), receipt["from"]!.GetValue<string>());
            nonces.Add((long)AnvilChain.Q((await c.Chain.Call("eth_getTransactionByHash", h))!["nonce"]));
        }

        Assert.Equal(Enumerable.Range(0, count).Select(i => (long)i), nonces.Order());
        Assert.Equal(count, await c.Chain.TransactionCountAsync(address));
    }
}
