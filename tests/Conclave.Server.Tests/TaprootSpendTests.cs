using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Conclave.Chains.Bitcoin;
using Conclave.Crypto.Signing;

namespace Conclave.Server.Tests;

/// <summary>
/// The P2TR address the API shows for schnorr-bip340 and frost-taproot keys can be spent from through the API
/// (issue 20 bug 1, issue 14 item 1): bitcoinjs-lib derives the address from the key's internal key itself
/// (BIP-86), builds a transaction spending an output at that address, computes its BIP-341 signature hash, Conclave
/// signs that hash through REST (the key and a child path; frost-taproot by the real signer-node processes), and
/// bitcoinjs validates the key-path spend (tests/interop/checks/taproot.mjs).
/// </summary>
[Collection("api")]
public sealed class TaprootSpendTests(ApiCluster c)
{
    private async Task<(HttpStatusCode Status, JsonNode? Body)> Post(string path, string json)
    {
        using var content = new StringContent(json, Encoding.UTF8, "application/json");
        using HttpResponseMessage r = await c.Http.PostAsync(new Uri(path, UriKind.Relative), content);
        string text = await r.Content.ReadAsStringAsync();
        return (r.StatusCode, text.Length == 0 ? null : JsonNode.Parse(text));
    }

    private async Task<JsonNode> Create(string scheme)
    {
        string name = "tr-" + scheme + "-" + Guid.NewGuid().ToString("N")[..8];
        var (status, body) = await Post("/v1/keys", $$"""{"name":"{{name}}","scheme":"{{scheme}}"}""");
        Assert.True(status == HttpStatusCode.Created, body?.ToJsonString());
        return body!;
    }

    private static JsonNode Prepare(string internalKey) => NodeInterop.Run("taproot", [new { op = "prepare", internalKey }])[0]!;

    private static JsonNode Spend(string internalKey, string signature) => NodeInterop.Run("taproot", [new { op = "spend", internalKey, signature }])[0]!;

    [Theory]
    [InlineData("schnorr-bip340")]
    [InlineData("frost-taproot")]
    public async Task ShownAddress_IsBip86_AndAKeyPathSpendSignedThroughTheApiValidatesInBitcoinjs(string scheme)
    {
        JsonNode key = await Create(scheme);
        string name = key["name"]!.GetValue<string>();
        string internalKey = key["publicKey"]!.GetValue<string>();

        // bitcoinjs-lib: payments.p2tr({internalPubkey}) gives the address the API shows.
        JsonNode prepared = Prepare(internalKey);
        Assert.Equal(prepared["address"]!.GetValue<string>(), key["addresses"]!["bitcoin"]!.GetValue<string>());

        string sighash = prepared["sighash"]!.GetValue<string>();
        var (status, signed) = await Post($"/v1/keys/{name}/sign", $$"""{"message":"{{sighash}}"}""");
        Assert.True(status == HttpStatusCode.OK, signed?.ToJsonString());
        JsonNode spent = Spend(internalKey, signed!["signature"]!.GetValue<string>());
        Assert.True(spent["ok"]!.GetValue<bool>(), spent.ToJsonString());
        Assert.Equal(internalKey, signed["publicKey"]!.GetValue<string>());
        Assert.Equal(prepared["outputKey"]!.GetValue<string>(), key["outputKey"]?.GetValue<string>());
        Assert.Equal(prepared["outputKey"]!.GetValue<string>(), signed["outputKey"]?.GetValue<string>());

        // A child (BIP-86 wallets: the child of the internal key, then the tweak): derive shows the child's internal
        // key, its output key and its address; a spend from that address signed with "path" validates.
        var (dstatus, derived) = await Post($"/v1/keys/{name}/derive", """{"path":"0/5"}""");
        Assert.True(dstatus == HttpStatusCode.OK, derived?.ToJsonString());
        string childInternal = derived!["publicKey"]!.GetValue<string>();
        JsonNode childPrepared = Prepare(childInternal);
        Assert.Equal(childPrepared["address"]!.GetValue<string>(), derived["addresses"]!["bitcoin"]!.GetValue<string>());
        Assert.NotEqual(prepared["address"]!.GetValue<string>(), childPrepared["address"]!.GetValue<string>());
        string childSighash = childPrepared["sighash"]!.GetValue<string>();
        var (cstatus, childSigned) = await Post($"/v1/keys/{name}/sign", $$"""{"message":"{{childSighash}}","path":"0/5"}""");
        Assert.True(cstatus == HttpStatusCode.OK, childSigned?.ToJsonString());
        JsonNode childSpent = Spend(childInternal, childSigned!["signature"]!.GetValue<string>());
        Assert.True(childSpent["ok"]!.GetValue<bool>(), childSpent.ToJsonString());
        Assert.Equal(childInternal, childSigned["publicKey"]!.GetValue<string>());
        Assert.Equal(childPrepared["outputKey"]!.GetValue<string>(), derived["outputKey"]?.GetValue<string>());
        Assert.Equal(childPrepared["outputKey"]!.GetValue<string>(), childSigned["outputKey"]?.GetValue<string>());

        // The parent's signature does not spend the child's output, nor the child's the parent's.
        Assert.False(Spend(childInternal, signed["signature"]!.GetValue<string>())["ok"]!.GetValue<bool>());
        Assert.False(Spend(internalKey, childSigned["signature"]!.GetValue<string>())["ok"]!.GetValue<bool>());

        // The batch route signs the same way.
        var (bstatus, batch) = await Post($"/v1/keys/{name}/sign/batch", $$"""{"items":[{"message":"{{sighash}}"},{"message":"{{childSighash}}","path":"0/5"}]}""");
        Assert.True(bstatus == HttpStatusCode.OK, batch?.ToJsonString());
        JsonArray results = batch!["results"]!.AsArray();
        Assert.True(Spend(internalKey, results[0]!["result"]!["signature"]!.GetValue<string>())["ok"]!.GetValue<bool>());
        Assert.True(Spend(childInternal, results[1]!["result"]!["signature"]!.GetValue<string>())["ok"]!.GetValue<bool>());
    }

    [Fact]
    public async Task Schnorr_UntweakedIsAnExplicitOption_AndIsNotASpend()
    {
        JsonNode key = await Create("schnorr-bip340");
        string name = key["name"]!.GetValue<string>();
        byte[] internalKey = Convert.FromHexString(key["publicKey"]!.GetValue<string>());
        byte[] message = "plain bip-340"u8.ToArray();
        string hex = Convert.ToHexStringLower(message);

        // Default: the taproot key path; verifies under the output key only.
        var (_, tweaked) = await Post($"/v1/keys/{name}/sign", $$"""{"message":"{{hex}}"}""");
        byte[] outputKey = Convert.FromHexString(tweaked!["outputKey"]!.GetValue<string>());
        Assert.Equal(TaprootAddress.Bip86OutputKey(internalKey).OutputKey, outputKey);
        byte[] sig = Convert.FromHexString(tweaked["signature"]!.GetValue<string>());
        Assert.True(SignatureSchemes.SchnorrBip340.Verify(outputKey, message, sig));
        Assert.False(SignatureSchemes.SchnorrBip340.Verify(internalKey, message, sig));

        // "untweaked": plain BIP-340 under publicKey; the response has no outputKey.
        foreach (string path in new[] { "", ",\"path\":\"3\"" })
        {
            var (status, raw) = await Post($"/v1/keys/{name}/sign", $$"""{"message":"{{hex}}","untweaked":true{{path}}}""");
            Assert.True(status == HttpStatusCode.OK, raw?.ToJsonString());
            Assert.Null(raw!["outputKey"]);
            byte[] verifying = Convert.FromHexString(raw["publicKey"]!.GetValue<string>());
            byte[] rawSig = Convert.FromHexString(raw["signature"]!.GetValue<string>());
            Assert.True(SignatureSchemes.SchnorrBip340.Verify(verifying, message, rawSig));
            Assert.False(SignatureSchemes.SchnorrBip340.Verify(TaprootAddress.Bip86OutputKey(verifying).OutputKey, message, rawSig));
        }

        // An untweaked signature over a sighash is no key-path spend of the shown address.
        string sighash = Prepare(key["publicKey"]!.GetValue<string>())["sighash"]!.GetValue<string>();
        var (_, rawSpend) = await Post($"/v1/keys/{name}/sign", $$"""{"message":"{{sighash}}","untweaked":true}""");
        JsonNode spent = Spend(key["publicKey"]!.GetValue<string>(), rawSpend!["signature"]!.GetValue<string>());
        Assert.False(spent["ok"]!.GetValue<bool>());
        Assert.False(spent["psbtValid"]!.GetValue<bool>());
    }

    [Theory]
    [InlineData("frost-taproot")]
    [InlineData("ed25519")]
    [InlineData("frost-secp256k1")]
    public async Task Untweaked_IsRefusedForEveryOtherScheme(string scheme)
    {
        string name = (await Create(scheme))["name"]!.GetValue<string>();
        var (status, body) = await Post($"/v1/keys/{name}/sign", """{"message":"01","untweaked":true}""");
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("https://conclave.dev/problems/unsupported", body!["type"]!.GetValue<string>());
        var (ok, _) = await Post($"/v1/keys/{name}/sign", """{"message":"01","untweaked":false}""");
        Assert.Equal(HttpStatusCode.OK, ok);
    }
}
