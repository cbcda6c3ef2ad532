using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Conclave.Chains.Ethereum;
using Conclave.Crypto.Secp256k1;
using Conclave.Crypto.Signing;
using Conclave.Threshold.Frost;
using Conclave.Threshold.Frost.Ciphersuites;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Conclave.Server.Tests;

/// <summary>Every route of the API against a real 2-of-3 cluster of signer-node processes, with its error cases.</summary>
[Collection("api")]
public sealed class ApiTests(ApiCluster c)
{
    private const string P = "https://conclave.dev/problems/";

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    private async Task<(HttpStatusCode Status, JsonNode? Body, string? ContentType)> Send(HttpMethod method, string path, string? json = null, HttpClient? client = null)
    {
        using var req = new HttpRequestMessage(method, path) { Content = json is null ? null : Json(json) };
        using HttpResponseMessage r = await (client ?? c.Http).SendAsync(req);
        string text = await r.Content.ReadAsStringAsync();
        return (r.StatusCode, text.Length == 0 ? null : JsonNode.Parse(text), r.Content.Headers.ContentType?.MediaType);
    }

    private async Task<JsonNode> Create(string scheme, string? extra = null)
    {
        string name = scheme + "-" + Guid.NewGuid().ToString("N")[..8];
        var (status, body, _) = await Send(HttpMethod.Post, "/v1/keys", $$"""{"name":"{{name}}","scheme":"{{scheme}}"{{extra}}}""");
        Assert.True(status == HttpStatusCode.Created, body?.ToJsonString());
        return body!;
    }

    private static async Task AssertProblem((HttpStatusCode Status, JsonNode? Body, string? ContentType) r, HttpStatusCode status, string type)
    {
        await Task.CompletedTask;
        Assert.Equal(status, r.Status);
        Assert.Equal("application/problem+json", r.ContentType);
        Assert.Equal(P + type, r.Body!["type"]!.GetValue<string>());
        Assert.Equal((int)status, r.Body!["status"]!.GetValue<int>());
        Assert.False(string.IsNullOrEmpty(r.Body!["detail"]!.GetValue<string>()));
    }

    [Theory]
    [InlineData("ecdsa-secp256k1")]
    [InlineData("schnorr-bip340")]
    [InlineData("ed25519")]
    [InlineData("frost-ed25519")]
    [InlineData("frost-secp256k1")]
    [InlineData("frost-taproot")]
    [InlineData("ml-dsa-65")]
    [InlineData("hybrid-ed25519-ml-dsa-65")]
    [InlineData("slh-dsa-shake-128f")]
    public async Task CreateShowListVersionsSign_EverySchemeVerifies(string scheme)
    {
        JsonNode key = await Create(scheme);
        string name = key["name"]!.GetValue<string>();
        byte[] pub = Convert.FromHexString(key["publicKey"]!.GetValue<string>());
        // Taproot schemes: publicKey is the internal key, signatures verify under the BIP-86 output key.
        byte[] verifying = key["outputKey"] is { } outputKey ? Convert.FromHexString(outputKey.GetValue<string>()) : pub;
        bool frost = scheme.StartsWith("frost-", StringComparison.Ordinal);
        Assert.Equal(frost ? 2 : 1, key["threshold"]!.GetValue<int>());
        Assert.Equal(frost ? 3 : 1, key["participants"]!.GetValue<int>());
        Assert.Equal(1, key["version"]!.GetValue<int>());
        JsonObject addresses = key["addresses"]!.AsObject();
        switch (scheme)
        {
            case "ecdsa-secp256k1":
                Assert.Equal(EthereumAddress.FromPublicKey(pub), addresses["ethereum"]!.GetValue<string>());
                break;
            case "schnorr-bip340":
            case "frost-taproot":
                Assert.Equal(Conclave.Chains.Bitcoin.TaprootAddress.Bip86OutputKey(pub).OutputKey, verifying);
                Assert.Equal(Conclave.Chains.Bitcoin.TaprootAddress.FromOutputKey(verifying), addresses["bitcoin"]!.GetValue<string>());
                Assert.StartsWith("bc1p", addresses["bitcoin"]!.GetValue<string>(), StringComparison.Ordinal);
                break;
            case "ed25519":
            case "frost-ed25519":
                Assert.Equal(pub, Conclave.Wallets.Codecs.Base58.Decode(addresses["solana"]!.GetValue<string>()));
                break;
            default:
                Assert.Empty(addresses);
                break;
        }

        var shown = await Send(HttpMethod.Get, $"/v1/keys/{name}");
        Assert.Equal(HttpStatusCode.OK, shown.Status);
        Assert.Equal(key["id"]!.GetValue<string>(), shown.Body!["id"]!.GetValue<string>());
        var list = await Send(HttpMethod.Get, "/v1/keys");
        Assert.Contains(list.Body!["keys"]!.AsArray(), k => k!["name"]!.GetValue<string>() == name);
        var versions = await Send(HttpMethod.Get, $"/v1/keys/{name}/versions");
        Assert.Single(versions.Body!["versions"]!.AsArray());

        for (int i = 0; i < 5; i++)
        {
            byte[] input = scheme == "ecdsa-secp256k1" ? SHA256.HashData(BitConverter.GetBytes(i)) : TestSeed.Bytes(1 + i * 7, $"{scheme} input {i}");
            string field = scheme == "ecdsa-secp256k1" ? "digest" : "message";
            var signed = await Send(HttpMethod.Post, $"/v1/keys/{name}/sign", $$"""{"{{field}}":"{{Convert.ToHexStringLower(input)}}"}""");
            Assert.True(signed.Status == HttpStatusCode.OK, signed.Body?.ToJsonString());
            byte[] sig = Convert.FromHexString(signed.Body!["signature"]!.GetValue<string>());
            Assert.Equal(1, signed.Body!["keyVersion"]!.GetValue<int>());
            if (frost)
            {
                Assert.True(FrostCiphersuite.TryGet(scheme, out FrostCiphersuite? suite));
                Assert.True(suite.Verify(verifying, input, sig));
            }
            else
            {
                Assert.True(SignatureSchemes.TryGet(scheme, out SoftwareSignatureScheme? s) || Conclave.PostQuantum.PostQuantumSchemes.TryGet(scheme, out s));
                Assert.True(s!.Verify(verifying, input, sig));
            }

            if (scheme == "ecdsa-secp256k1")
            {
                int recid = signed.Body!["recoveryId"]!.GetValue<int>();
                Assert.True(EcdsaSecp256k1.TryRecover(input, sig, recid, out Secp256k1Point recovered));
                Assert.Equal(addresses["ethereum"]!.GetValue<string>(), EthereumAddress.FromPublicKey(recovered.ToCompressed()));
            }
        }
    }

    [Fact]
    public async Task CreateErrors_AreProblems()
    {
        await AssertProblem(await Send(HttpMethod.Post, "/v1/keys", """{"name":"x1","scheme":"rsa-4096"}"""), HttpStatusCode.BadRequest, "unknown-scheme");
        await AssertProblem(await Send(HttpMethod.Post, "/v1/keys", """{"name":"x1","scheme":"""), HttpStatusCode.BadRequest, "malformed-json");
        await AssertProblem(await Send(HttpMethod.Post, "/v1/keys", """{"name":"x1","scheme":"ed25519","threshold":"two"}"""), HttpStatusCode.BadRequest, "malformed-json");
        await AssertProblem(await Send(HttpMethod.Post, "/v1/keys", """[1,2]"""), HttpStatusCode.BadRequest, "malformed-json");
        await AssertProblem(await Send(HttpMethod.Post, "/v1/keys", null), HttpStatusCode.BadRequest, "malformed-json");
        await AssertProblem(await Send(HttpMethod.Post, "/v1/keys", """{"name":"bad name/","scheme":"ed25519"}"""), HttpStatusCode.BadRequest, "invalid-request");
        await AssertProblem(await Send(HttpMethod.Post, "/v1/keys", """{"scheme":"ed25519"}"""), HttpStatusCode.BadRequest, "invalid-request");
        await AssertProblem(await Send(HttpMethod.Post, "/v1/keys", """{"name":"x2"}"""), HttpStatusCode.BadRequest, "invalid-request");
        await AssertProblem(await Send(HttpMethod.Post, "/v1/keys", """{"name":"x3","scheme":"ed25519","threshold":2}"""), HttpStatusCode.BadRequest, "invalid-request");
        await AssertProblem(await Send(HttpMethod.Post, "/v1/keys", """{"name":"x4","scheme":"frost-ed25519","threshold":3,"participants":2}"""), HttpStatusCode.BadRequest, "invalid-request");
        await AssertProblem(await Send(HttpMethod.Post, "/v1/keys", """{"name":"x5","scheme":"frost-ed25519","participants":9}"""), HttpStatusCode.BadRequest, "invalid-request");
        JsonNode k = await Create("ed25519");
        await AssertProblem(await Send(HttpMethod.Post, "/v1/keys", $$"""{"name":"{{k["name"]}}","scheme":"ed25519"}"""), HttpStatusCode.Conflict, "key-exists");
        string big = new('a', 70 * 1024);
        await AssertProblem(await Send(HttpMethod.Post, "/v1/keys", "{\"name\":\"x6\",\"scheme\":\"ed25519\",\"labels\":{\"a\":\"" + big + "\"}}"), HttpStatusCode.RequestEntityTooLarge, "body-too-large");
    }

    [Fact]
    public async Task FrostKey_WithExplicitThresholdAndParticipants()
    {
        JsonNode k = await Create("frost-secp256k1", ""","threshold":2,"participants":2,"labels":{"desk":"perps"}""");
        Assert.Equal(2, k["participants"]!.GetValue<int>());
        Assert.Equal("perps", k["labels"]!["desk"]!.GetValue<string>());
        var s = await Send(HttpMethod.Post, $"/v1/keys/{k["name"]}/sign", """{"message":"00"}""");
        Assert.Equal(HttpStatusCode.OK, s.Status);
    }

    [Fact]
    public async Task UnknownKey_Is404OnEveryKeyRoute()
    {
        foreach ((HttpMethod m, string path, string? body) in new (HttpMethod, string, string?)[]
        {
            (HttpMethod.Get, "/v1/keys/nope", null),
            (HttpMethod.Get, "/v1/keys/nope/versions", null),
            (HttpMethod.Post, "/v1/keys/nope/sign", """{"message":"00"}"""),
            (HttpMethod.Post, "/v1/keys/nope/sign/batch", """{"items":[{"message":"00"}]}"""),
            (HttpMethod.Post, "/v1/keys/nope/derive", """{"path":"0"}"""),
            (HttpMethod.Post, "/v1/keys/nope/refresh", null),
            (HttpMethod.Post, "/v1/keys/nope/reshare", """{"threshold":2,"participants":3}"""),
        })
        {
            await AssertProblem(await Send(m, path, body), HttpStatusCode.NotFound, "unknown-key");
        }

        await AssertProblem(await Send(HttpMethod.Get, "/v1/nothing-here"), HttpStatusCode.NotFound, "not-found");
    }

    [Fact]
    public async Task SignErrors_AreProblems()
    {
        string ecdsa = (await Create("ecdsa-secp256k1"))["name"]!.GetValue<string>();
        string ed = (await Create("ed25519"))["name"]!.GetValue<string>();
        string fr = (await Create("frost-ed25519"))["name"]!.GetValue<string>();
        await AssertProblem(await Send(HttpMethod.Post, $"/v1/keys/{ecdsa}/sign", """{"digest":"zz"}"""), HttpStatusCode.BadRequest, "bad-hex");
        await AssertProblem(await Send(HttpMethod.Post, $"/v1/keys/{ecdsa}/sign", """{"digest":"abc"}"""), HttpStatusCode.BadRequest, "bad-hex");
        await AssertProblem(await Send(HttpMethod.Post, $"/v1/keys/{ecdsa}/sign", """{"digest":"abcd"}"""), HttpStatusCode.BadRequest, "bad-hex");
        await AssertProblem(await Send(HttpMethod.Post, $"/v1/keys/{ecdsa}/sign", """{"message":"abcd"}"""), HttpStatusCode.BadRequest, "wrong-input-kind");
        await AssertProblem(await Send(HttpMethod.Post, $"/v1/keys/{ed}/sign", """{"digest":"abcd"}"""), HttpStatusCode.BadRequest, "wrong-input-kind");
        await AssertProblem(await Send(HttpMethod.Post, $"/v1/keys/{ed}/sign", """{}"""), HttpStatusCode.BadRequest, "wrong-input-kind");
        await AssertProblem(await Send(HttpMethod.Post, $"/v1/keys/{fr}/sign", """{"message":"0x0g"}"""), HttpStatusCode.BadRequest, "bad-hex");
        await AssertProblem(await Send(HttpMethod.Post, $"/v1/keys/{fr}/sign", """{"message":"""), HttpStatusCode.BadRequest, "malformed-json");
        var ok = await Send(HttpMethod.Post, $"/v1/keys/{ed}/sign", """{"message":"0x"}""");
        Assert.Equal(HttpStatusCode.OK, ok.Status);
    }

    [Fact]
    public async Task BatchSign_GivesAResultOrAProblemPerItem()
    {
        JsonNode k = await Create("frost-taproot");
        string name = k["name"]!.GetValue<string>();
        byte[] pub = Convert.FromHexString(k["outputKey"]!.GetValue<string>());
        var r = await Send(HttpMethod.Post, $"/v1/keys/{name}/sign/batch", """{"items":[{"message":"01"},{"message":"xx"},{"digest":"00"},{"message":"0203"}]}""");
        Assert.Equal(HttpStatusCode.OK, r.Status);
        JsonArray results = r.Body!["results"]!.AsArray();
        Assert.Equal(4, results.Count);
        Assert.True(FrostCiphersuite.Secp256k1Taproot.Verify(pub, [1], Convert.FromHexString(results[0]!["result"]!["signature"]!.GetValue<string>())));
        Assert.Equal(P + "bad-hex", results[1]!["error"]!["type"]!.GetValue<string>());
        Assert.Equal(P + "wrong-input-kind", results[2]!["error"]!["type"]!.GetValue<string>());
        Assert.True(FrostCiphersuite.Secp256k1Taproot.Verify(pub, [2, 3], Convert.FromHexString(results[3]!["result"]!["signature"]!.GetValue<string>())));
        await AssertProblem(await Send(HttpMethod.Post, $"/v1/keys/{name}/sign/batch", """{"items":[]}"""), HttpStatusCode.BadRequest, "invalid-request");
    }

    [Fact]
    public async Task Derive_NonHardenedChildren_AndProblems()
    {
        string ecdsa = (await Create("ecdsa-secp256k1"))["name"]!.GetValue<string>();
        var a = await Send(HttpMethod.Post, $"/v1/keys/{ecdsa}/derive", """{"path":"0/1"}""");
        var b = await Send(HttpMethod.Post, $"/v1/keys/{ecdsa}/derive", """{"path":"m/0/1"}""");
        var other = await Send(HttpMethod.Post, $"/v1/keys/{ecdsa}/derive", """{"path":"0/2"}""");
        Assert.Equal(HttpStatusCode.OK, a.Status);
        Assert.Equal(a.Body!["publicKey"]!.GetValue<string>(), b.Body!["publicKey"]!.GetValue<string>());
        Assert.NotEqual(a.Body!["publicKey"]!.GetValue<string>(), other.Body!["publicKey"]!.GetValue<string>());
        Assert.Equal(EthereumAddress.FromPublicKey(Convert.FromHexString(a.Body!["publicKey"]!.GetValue<string>())), a.Body!["addresses"]!["ethereum"]!.GetValue<string>());
        foreach (string scheme in new[] { "ed25519", "frost-ed25519", "schnorr-bip340", "frost-secp256k1" })
        {
            string n = (await Create(scheme))["name"]!.GetValue<string>();
            var d = await Send(HttpMethod.Post, $"/v1/keys/{n}/derive", """{"path":"7"}""");
            Assert.True(d.Status == HttpStatusCode.OK, d.Body?.ToJsonString());
            await AssertProblem(await Send(HttpMethod.Post, $"/v1/keys/{n}/derive", """{"path":"0'/1"}"""), HttpStatusCode.BadRequest, "hardened-path");
        }

        await AssertProblem(await Send(HttpMethod.Post, $"/v1/keys/{ecdsa}/derive", """{"path":"2147483648"}"""), HttpStatusCode.BadRequest, "hardened-path");
        await AssertProblem(await Send(HttpMethod.Post, $"/v1/keys/{ecdsa}/derive", """{"path":"a/b"}"""), HttpStatusCode.BadRequest, "invalid-request");
        await AssertProblem(await Send(HttpMethod.Post, $"/v1/keys/{ecdsa}/derive", """{}"""), HttpStatusCode.BadRequest, "invalid-request");
        // frost-taproot: the child's internal key is the x-only key of BIP-32 CKDpub on the group key; its P2TR address
        // is BIP-86's (the child's output key), like the parent's.
        JsonNode taproot = await Create("frost-taproot");
        var t1 = await Send(HttpMethod.Post, $"/v1/keys/{taproot["name"]!.GetValue<string>()}/derive", """{"path":"1/2"}""");
        Assert.True(t1.Status == HttpStatusCode.OK, t1.Body?.ToJsonString());
        byte[] child = Convert.FromHexString(t1.Body!["publicKey"]!.GetValue<string>());
        Assert.Equal(32, child.Length);
        Assert.NotEqual(taproot["publicKey"]!.GetValue<string>(), t1.Body!["publicKey"]!.GetValue<string>());
        byte[] childOutput = Conclave.Chains.Bitcoin.TaprootAddress.Bip86OutputKey(child).OutputKey;
        Assert.Equal(Convert.ToHexStringLower(childOutput), t1.Body!["outputKey"]!.GetValue<string>());
        Assert.Equal(Conclave.Chains.Bitcoin.TaprootAddress.FromOutputKey(childOutput), t1.Body!["addresses"]!["bitcoin"]!.GetValue<string>());
        string pq = (await Create("ml-dsa-44"))["name"]!.GetValue<string>();
        await AssertProblem(await Send(HttpMethod.Post, $"/v1/keys/{pq}/derive", """{"path":"1"}"""), HttpStatusCode.BadRequest, "unsupported");
    }

    [Theory]
    [InlineData("ecdsa-secp256k1")]
    [InlineData("schnorr-bip340")]
    [InlineData("ed25519")]
    [InlineData("frost-ed25519")]
    [InlineData("frost-secp256k1")]
    [InlineData("frost-taproot")]
    public async Task SignWithPath_SignsAsTheDerivedChild(string scheme)
    {
        JsonNode key = await Create(scheme);
        string name = key["name"]!.GetValue<string>();
        var derived = await Send(HttpMethod.Post, $"/v1/keys/{name}/derive", """{"path":"m/5/9"}""");
        string child = derived.Body!["publicKey"]!.GetValue<string>();
        bool digest = scheme == "ecdsa-secp256k1";
        byte[] input = digest ? SHA256.HashData("derived"u8) : "derived child"u8.ToArray();
        string field = digest ? "digest" : "message";
        var signed = await Send(HttpMethod.Post, $"/v1/keys/{name}/sign", $$"""{"{{field}}":"{{Convert.ToHexStringLower(input)}}","path":"5/9"}""");
        Assert.True(signed.Status == HttpStatusCode.OK, signed.Body?.ToJsonString());
        Assert.Equal(child, signed.Body!["publicKey"]!.GetValue<string>());
        Assert.Equal("5/9", signed.Body!["path"]!.GetValue<string>());
        Assert.Equal(derived.Body!["outputKey"]?.GetValue<string>(), signed.Body!["outputKey"]?.GetValue<string>());
        byte[] sig = Convert.FromHexString(signed.Body!["signature"]!.GetValue<string>());
        // Taproot schemes verify under the child's BIP-86 output key (derive's outputKey), the others under the child key.
        string verifying = derived.Body!["outputKey"]?.GetValue<string>() ?? child;
        byte[] childKey = Convert.FromHexString(verifying);
        if (scheme.StartsWith("frost-", StringComparison.Ordinal))
        {
            FrostCiphersuite suite = FrostCiphersuite.All.Single(s => s.SchemeName == scheme);
            Assert.True(suite.Verify(childKey, input, sig));
            Assert.False(suite.Verify(Convert.FromHexString(key["outputKey"]?.GetValue<string>() ?? key["publicKey"]!.GetValue<string>()), input, sig));

            // And independently (@noble/curves: ed25519, BIP-340, and an RFC 9591 §6.5 check for frost-secp256k1).
            JsonNode r = NodeInterop.Run("frost", [new { scheme, publicKey = verifying, message = Convert.ToHexStringLower(input), signature = Convert.ToHexStringLower(sig) }])[0]!;
            Assert.True(r["ok"]!.GetValue<bool>());
        }
        else
        {
            // Checked independently (@noble/curves; for ECDSA, ethers recovers the child's address too).
            JsonNode r = NodeInterop.Run("signatures", [new { scheme, publicKey = verifying, input = Convert.ToHexStringLower(input), signature = Convert.ToHexStringLower(sig),
                recoveryId = signed.Body!["recoveryId"]?.GetValue<int>() }])[0]!;
            Assert.True(r["ok"]!.GetValue<bool>());
            if (digest)
            {
                Assert.Equal(derived.Body!["addresses"]!["ethereum"]!.GetValue<string>().ToLowerInvariant(), r["address"]!.GetValue<string>());
            }
        }

        await AssertProblem(await Send(HttpMethod.Post, $"/v1/keys/{name}/sign", $$"""{"{{field}}":"{{Convert.ToHexStringLower(input)}}","path":"5'/9"}"""), HttpStatusCode.BadRequest, "hardened-path");
        await AssertProblem(await Send(HttpMethod.Post, $"/v1/keys/{name}/sign", $$"""{"{{field}}":"{{Convert.ToHexStringLower(input)}}","path":"x"}"""), HttpStatusCode.BadRequest, "invalid-request");
    }

    [Fact]
    public async Task SignWithPath_IsRefusedForPostQuantumKeys()
    {
        string name = (await Create("ml-dsa-44"))["name"]!.GetValue<string>();
        await AssertProblem(await Send(HttpMethod.Post, $"/v1/keys/{name}/sign", """{"message":"01","path":"1"}"""), HttpStatusCode.BadRequest, "unsupported");
        var plain = await Send(HttpMethod.Post, $"/v1/keys/{name}/sign", """{"message":"01","path":""}""");
        Assert.Equal(HttpStatusCode.OK, plain.Status);
    }

    /// <summary>Signing keeps going while the key is refreshed or reshared: every answer is a valid signature or a 503/504 problem
    /// (never a 500, never a false culprit, never an invalid signature), and signing works under the new version at
    /// once afterwards.</summary>
    [Theory]
    [InlineData("refresh", "{}")]
    [InlineData("reshare", "{\"threshold\":3,\"participants\":3}")]
    public async Task SigningDuringRefresh_GivesValidSignaturesOrTypedProblems(string operation, string body)
    {
        JsonNode key = await Create("frost-taproot");
        string name = key["name"]!.GetValue<string>();
        byte[] pub = Convert.FromHexString(key["outputKey"]!.GetValue<string>());
        using var stop = new CancellationTokenSource();
        var outcomes = new System.Collections.Concurrent.ConcurrentBag<string>();
        var signedUnderV1 = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var signedUnderV2 = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Task[] signers = [.. Enumerable.Range(0, 4).Select(w => Task.Run(async () =>
        {
            int i = 0;
            while (!stop.IsCancellationRequested)
            {
                byte[] msg = [(byte)w, (byte)i++];
                var r = await Send(HttpMethod.Post, $"/v1/keys/{name}/sign", $$"""{"message":"{{Convert.ToHexStringLower(msg)}}"}""");
                if (r.Status == HttpStatusCode.OK)
                {
                    Assert.True(FrostCiphersuite.Secp256k1Taproot.Verify(pub, msg, Convert.FromHexString(r.Body!["signature"]!.GetValue<string>())));
                    int version = r.Body!["keyVersion"]!.GetValue<int>();
                    outcomes.Add("ok v" + version);
                    (version == 1 ? signedUnderV1 : signedUnderV2).TrySetResult();
                }
                else
                {
                    Assert.Equal("application/problem+json", r.ContentType);
                    // Never 502 node-misbehaved: every node here is honest, so no one may be named a culprit.
                    Assert.True((int)r.Status is 503 or 504, $"{(int)r.Status} {r.Body?.ToJsonString()}");
                    outcomes.Add(r.Body!["type"]!.GetValue<string>() + " " + r.Body!["detail"]!.GetValue<string>());
                }
            }
        }))];
        // No time windows: the operation starts once a signature under version 1 came back, and the signers stop once one
        // under version 2 did (each wait ends early if a signer fails, and gives up after a generous deadline).
        Task allSigners = Task.WhenAll(signers);
        async Task Until(TaskCompletionSource signal, string what)
        {
            Task first = await Task.WhenAny(signal.Task, allSigners, Task.Delay(TimeSpan.FromMinutes(3)));
            if (first != signal.Task)
            {
                stop.Cancel();
                await allSigners; // rethrows a signer's failure
                Assert.Fail($"no signature {what} within 3 minutes: " + string.Join("\n", outcomes.Distinct()));
            }
        }

        await Until(signedUnderV1, "under version 1");
        var refreshed = await Send(HttpMethod.Post, $"/v1/keys/{name}/{operation}", body);
        Assert.True(refreshed.Status == HttpStatusCode.OK, refreshed.Body?.ToJsonString());
        await Until(signedUnderV2, "under version 2");
        stop.Cancel();
        await allSigners;
        Assert.True(outcomes.Contains("ok v1") && outcomes.Contains("ok v2"), string.Join("\n", outcomes.Distinct()));

        // Once the refresh has returned, signing succeeds at once, under the new version.
        var after = await Send(HttpMethod.Post, $"/v1/keys/{name}/sign", """{"message":"ff"}""");
        Assert.True(after.Status == HttpStatusCode.OK, after.Body?.ToJsonString() + "\n" + string.Join("\n", outcomes.Distinct()));
        Assert.Equal(2, after.Body!["keyVersion"]!.GetValue<int>());
    }

    [Fact]
    public async Task RefreshAndReshare_RouteToThresholdKeysOnly()
    {
        string single = (await Create("ed25519"))["name"]!.GetValue<string>();
        string fr = (await Create("frost-ed25519"))["name"]!.GetValue<string>();
        await AssertProblem(await Send(HttpMethod.Post, $"/v1/keys/{single}/refresh"), HttpStatusCode.BadRequest, "not-threshold-key");
        await AssertProblem(await Send(HttpMethod.Post, $"/v1/keys/{single}/reshare", """{"threshold":2,"participants":3}"""), HttpStatusCode.BadRequest, "not-threshold-key");
        await AssertProblem(await Send(HttpMethod.Post, $"/v1/keys/{fr}/reshare", """{"threshold":4,"participants":3}"""), HttpStatusCode.BadRequest, "invalid-request");
        JsonNode before = (await Send(HttpMethod.Get, $"/v1/keys/{fr}")).Body!;

        // Refresh over the cluster: same public key, version 2, still signs.
        var refreshed = await Send(HttpMethod.Post, $"/v1/keys/{fr}/refresh");
        Assert.True(refreshed.Status == HttpStatusCode.OK, refreshed.Body?.ToJsonString());
        Assert.Equal(before["publicKey"]!.GetValue<string>(), refreshed.Body!["publicKey"]!.GetValue<string>());
        Assert.Equal(2, refreshed.Body!["version"]!.GetValue<int>());
        await SignAndVerifyFrost(fr, before["publicKey"]!.GetValue<string>(), expectedVersion: 2);

        // Reshare to 3-of-3: same public key, new threshold, still signs.
        var reshared = await Send(HttpMethod.Post, $"/v1/keys/{fr}/reshare", """{"threshold":3,"participants":3}""");
        Assert.True(reshared.Status == HttpStatusCode.OK, reshared.Body?.ToJsonString());
        Assert.Equal(before["publicKey"]!.GetValue<string>(), reshared.Body!["publicKey"]!.GetValue<string>());
        Assert.Equal(3, reshared.Body!["threshold"]!.GetValue<int>());
        Assert.Equal(3, reshared.Body!["version"]!.GetValue<int>());
        await SignAndVerifyFrost(fr, before["publicKey"]!.GetValue<string>(), expectedVersion: 3);
        Assert.Equal(3, (await Send(HttpMethod.Get, $"/v1/keys/{fr}/versions")).Body!["versions"]!.AsArray().Count);
    }

    private async Task SignAndVerifyFrost(string name, string publicKeyHex, int expectedVersion)
    {
        byte[] msg = TestSeed.Bytes(40, $"{name} v{expectedVersion}");
        var signed = await Send(HttpMethod.Post, $"/v1/keys/{name}/sign", $$"""{"message":"{{Convert.ToHexStringLower(msg)}}"}""");
        Assert.True(signed.Status == HttpStatusCode.OK, signed.Body?.ToJsonString());
        Assert.Equal(expectedVersion, signed.Body!["keyVersion"]!.GetValue<int>());
        Assert.True(FrostCiphersuite.Ed25519Sha512.Verify(Convert.FromHexString(publicKeyHex), msg, Convert.FromHexString(signed.Body!["signature"]!.GetValue<string>())));
    }

    private async Task<long> AuditHead() => (await Send(HttpMethod.Get, "/v1/audit/verify")).Body!["headSeq"]!.GetValue<long>();

    /// <summary>Every audit entry after <paramref name="seq"/>, waiting (up to 60 s) until <paramref name="done"/> holds:
    /// outcome entries are appended once the response has gone out, so they can trail the reply by a moment.</summary>
    private async Task<List<JsonNode>> AuditAfter(long seq, Func<List<JsonNode>, bool>? done = null)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            var all = new List<JsonNode>();
            long after = seq;
            while (true)
            {
                var page = await Send(HttpMethod.Get, $"/v1/audit?after={after}&limit=1000");
                JsonArray entries = page.Body!["entries"]!.AsArray();
                all.AddRange(entries.Select(e => e!));
                if (entries.Count < 1000)
                {
                    break;
                }

                after = entries[^1]!["seq"]!.GetValue<long>();
            }

            if (done is null || done(all) || sw.Elapsed > TimeSpan.FromSeconds(60))
            {
                return all;
            }

            await Task.Delay(50);
        }
    }

    [Fact]
    public async Task Audit_EachCallHasAnIntentAndAnOutcome_WithKeyIdAndResponseHash()
    {
        JsonNode k = await Create("ed25519");
        string name = k["name"]!.GetValue<string>();
        string id = k["id"]!.GetValue<string>();
        JsonNode eth = await Create("ecdsa-secp256k1");
        string ethId = eth["id"]!.GetValue<string>();
        long head = await AuditHead();

        // The server is shared by the collection, so only this test's own requests are counted: each is recognised by its
        // audit requestHash, SHA-256(method ‖ 0 ‖ path ‖ 0 ‖ body), over paths and bodies no other test sends.
        static string RequestHash(string method, string path, string body) =>
            Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(method + "\0" + path + "\0" + body)));
        string missing = "no-such-key-" + Guid.NewGuid().ToString("N")[..8];
        string address = eth["addresses"]!["ethereum"]!.GetValue<string>();
        string rpcBody = $$"""[{"jsonrpc":"2.0","id":1,"method":"personal_sign","params":["0x68656c6c6f","{{address}}"]},{"jsonrpc":"2.0","id":2,"method":"eth_nope"}]""";
        var mine = new HashSet<string>(StringComparer.Ordinal)
        {
            RequestHash("POST", $"/v1/keys/{name}/sign", """{"message":"0102"}"""),
            RequestHash("POST", $"/v1/keys/{missing}/sign", """{"message":"01"}"""),
            RequestHash("POST", $"/v1/keys/{name}/sign", """{"message":"0g"}"""),
            RequestHash("POST", "/rpc", rpcBody),
        };

        using var signReq = new HttpRequestMessage(HttpMethod.Post, $"/v1/keys/{name}/sign") { Content = Json("""{"message":"0102"}""") };
        using HttpResponseMessage signed = await c.Http.SendAsync(signReq);
        Assert.Equal(HttpStatusCode.OK, signed.StatusCode);
        string responseHash = Convert.ToHexStringLower(SHA256.HashData(await signed.Content.ReadAsByteArrayAsync()));
        await AssertProblem(await Send(HttpMethod.Post, $"/v1/keys/{missing}/sign", """{"message":"01"}"""), HttpStatusCode.NotFound, "unknown-key");
        await AssertProblem(await Send(HttpMethod.Post, $"/v1/keys/{name}/sign", """{"message":"0g"}"""), HttpStatusCode.BadRequest, "bad-hex");
        var rpc = await Send(HttpMethod.Post, "/rpc", rpcBody);
        Assert.Equal(HttpStatusCode.OK, rpc.Status);

        const string SignAction = "POST /v1/keys/{name}/sign";
        bool Mine(JsonNode e) => e["requestHash"] is JsonNode h && mine.Contains(h.GetValue<string>());
        List<JsonNode> entries = [.. (await AuditAfter(head, es => es.Count(Mine) >= 8)).Where(Mine)];
        Assert.Equal(8, entries.Count); // an intent and an outcome for each of the four requests
        JsonNode[] sign = [.. entries.Where(e => e["action"]!.GetValue<string>() == SignAction)];
        Assert.Equal(6, sign.Length);

        // The signature released: intent (before) then outcome (after) with the hash of the exact response bytes.
        Assert.Equal(id, sign[0]["keyId"]!.GetValue<string>());
        Assert.Equal("accepted", sign[0]["result"]!.GetValue<string>());
        JsonNode outcome = sign.Single(e => e["result"]!.GetValue<string>().StartsWith("completed", StringComparison.Ordinal));
        Assert.Equal(id, outcome["keyId"]!.GetValue<string>());
        Assert.Equal($"completed 200 response-sha256 {responseHash} (intent seq {sign[0]["seq"]!.GetValue<long>()})", outcome["result"]!.GetValue<string>());
        Assert.Equal(sign[0]["requestHash"]!.GetValue<string>(), outcome["requestHash"]!.GetValue<string>());

        // An unknown key: no key id, and the problem type as the outcome. Bad input: the key id and the problem.
        Assert.Contains(sign, e => e["keyId"] is null && e["result"]!.GetValue<string>().StartsWith("failed 404 unknown-key (intent seq ", StringComparison.Ordinal));
        Assert.Contains(sign, e => e["keyId"]?.GetValue<string>() == id && e["result"]!.GetValue<string>().StartsWith("failed 400 bad-hex (intent seq ", StringComparison.Ordinal));

        // JSON-RPC: the outcome names the key that signed and each call's outcome.
        JsonNode rpcOutcome = entries.Single(e => e["action"]!.GetValue<string>() == "POST /rpc" && e["result"]!.GetValue<string>() != "accepted");
        Assert.Equal(ethId, rpcOutcome["keyId"]!.GetValue<string>());
        Assert.Contains("; rpc personal_sign ok, eth_nope error -32601", rpcOutcome["result"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.True((await Send(HttpMethod.Get, "/v1/audit/verify")).Body!["ok"]!.GetValue<bool>());
    }

    /// <summary>Garbage of many shapes at every route: always a 4xx problem+json, never a 500, never an echo of the input.</summary>
    [Fact]
    public async Task GarbageAtEveryRoute_IsA4xxProblem_NeverA500()
    {
        string ed = (await Create("ed25519"))["name"]!.GetValue<string>();
        string[] routes = ["/v1/keys", $"/v1/keys/{ed}/sign", $"/v1/keys/{ed}/sign/batch", $"/v1/keys/{ed}/derive", $"/v1/keys/{ed}/reshare", "/rpc"];
        string marker = "SECRET-MARKER-7f3a";
        string[] bodies =
        [
            "", "null", "true", "0", "-1", "1e309", "\"\"", "[]", "{}", "[[[[[[[[[[]]]]]]]]]]", "{\"a\":", "\u0000", "{\"message\":null}",
            "{\"message\":123}", "{\"message\":[\"00\"]}", "{\"digest\":{}}", "{\"path\":7}", "{\"path\":\"0/1/" + new string('9', 200) + "\"}",
            "{\"items\":{}}", "{\"items\":[null,1,\"x\"]}", "{\"threshold\":-5,\"participants\":1e3}", "{\"name\":\"" + marker + "\u202e\",\"scheme\":\"ed25519\"}",
            "{\"message\":\"" + marker + "\"}", "{\"jsonrpc\":\"2.0\",\"method\":{}}", "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_sign\",\"params\":[1,2]}]",
            "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_signTransaction\",\"params\":[{\"from\":\"0x00\",\"gas\":\"0xzz\"}]}",
            "\ud800", "{\"name\":\"a\",\"scheme\":\"ed25519\",\"labels\":[1]}",
        ];
        var rng = TestSeed.Random("junk bodies");
        var cases = new List<(string Route, string Body)>();
        foreach (string route in routes)
        {
            cases.AddRange(bodies.Select(b => (route, b)));
            for (int i = 0; i < 10; i++)
            {
                byte[] junk = new byte[rng.Next(1, 300)];
                rng.NextBytes(junk);
                cases.Add((route, System.Text.Encoding.Latin1.GetString(junk)));
            }
        }

        foreach ((string route, string body) in cases)
        {
            using var req = new HttpRequestMessage(HttpMethod.Post, route) { Content = Json(body) };
            using HttpResponseMessage r = await c.Http.SendAsync(req);
            string text = await r.Content.ReadAsStringAsync();
            Assert.True((int)r.StatusCode < 500, $"{route} answered {(int)r.StatusCode} to {body.Length} bytes: {text}");
            Assert.DoesNotContain(marker, text, StringComparison.Ordinal);
            if ((int)r.StatusCode >= 400)
            {
                Assert.Equal("application/problem+json", r.Content.Headers.ContentType?.MediaType);
            }
        }
    }

    [Fact]
    public async Task Auth_RefusesMissingAndWrongTokens_AndAuditsTheRefusal()
    {
        long head = await AuditHead();
        await AssertProblem(await Send(HttpMethod.Get, "/v1/keys", client: c.Anonymous), HttpStatusCode.Unauthorized, "unauthorized");
        using var wrong = new HttpClient { BaseAddress = new Uri(c.BaseUrl) };
        wrong.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", c.Token + "x");
        await AssertProblem(await Send(HttpMethod.Post, "/v1/keys", """{"name":"sneaky","scheme":"ed25519"}""", wrong), HttpStatusCode.Unauthorized, "unauthorized");
        await AssertProblem(await Send(HttpMethod.Post, "/rpc", """{"jsonrpc":"2.0","id":1,"method":"eth_accounts"}""", c.Anonymous), HttpStatusCode.Unauthorized, "unauthorized");
        Assert.Equal(HttpStatusCode.NotFound, (await Send(HttpMethod.Get, "/v1/keys/sneaky")).Status);

        List<JsonNode> entries = await AuditAfter(head);
        Assert.Contains(entries, e => e!["decision"]!.GetValue<string>() == "deny" && e["action"]!.GetValue<string>() == "POST /v1/keys" && e["actor"]!.GetValue<string>() == "anonymous");
        Assert.Contains(entries, e => e!["decision"]!.GetValue<string>() == "allow" && e["action"]!.GetValue<string>() == "GET /v1/audit");
    }

    [Fact]
    public async Task Audit_EveryCallIsAppendedBeforeItsEffect_AndTheChainVerifies()
    {
        long head = await AuditHead();
        JsonNode k = await Create("ed25519");
        List<JsonNode> entries = await AuditAfter(head);
        Assert.Contains(entries, e => e!["action"]!.GetValue<string>() == "POST /v1/keys" && e["decision"]!.GetValue<string>() == "allow" && e["requestHash"] is not null);
        long last = entries[^1]!["seq"]!.GetValue<long>();
        var tail = await Send(HttpMethod.Get, $"/v1/audit?after={last - 1}");
        Assert.Equal(last, tail.Body!["entries"]![0]!["seq"]!.GetValue<long>());
        var verify = await Send(HttpMethod.Get, "/v1/audit/verify");
        Assert.True(verify.Body!["ok"]!.GetValue<bool>(), verify.Body!.ToJsonString());
        Assert.True(verify.Body!["entries"]!.GetValue<long>() >= last);
        Assert.Null(verify.Body!["firstBad"]);
        await AssertProblem(await Send(HttpMethod.Get, "/v1/audit?after=-5"), HttpStatusCode.BadRequest, "invalid-request");
        await AssertProblem(await Send(HttpMethod.Get, "/v1/audit?after=abc"), HttpStatusCode.BadRequest, "invalid-request");
        await AssertProblem(await Send(HttpMethod.Get, "/v1/audit?limit=100000"), HttpStatusCode.BadRequest, "invalid-request");
        Assert.NotNull(k);
    }

    [Fact]
    public async Task HealthReadinessAndMetrics()
    {
        var h = await Send(HttpMethod.Get, "/healthz", client: c.Anonymous);
        Assert.Equal("alive", h.Body!["status"]!.GetValue<string>());
        var r = await Send(HttpMethod.Get, "/readyz", client: c.Anonymous);
        Assert.Equal(HttpStatusCode.OK, r.Status);
        Assert.True(r.Body!["ready"]!.GetValue<bool>());
        Assert.Equal(3, r.Body!["nodesUp"]!.AsArray().Count);
        string fr = (await Create("frost-ed25519"))["name"]!.GetValue<string>();
        Assert.Equal(HttpStatusCode.OK, (await Send(HttpMethod.Post, $"/v1/keys/{fr}/sign", """{"message":"01"}""")).Status);
        // /metrics takes the metrics token (least privilege for a scraper) or the admin token, nothing else; the
        // metrics token opens nothing else.
        await AssertProblem(await Send(HttpMethod.Get, "/metrics", client: c.Anonymous), HttpStatusCode.Unauthorized, "unauthorized");
        string metricsToken = (await File.ReadAllTextAsync(c.App.Services.GetRequiredService<Conclave.Server.Hosting.ServerPaths>().MetricsTokenFile)).Trim();
        Assert.StartsWith("cnm_", metricsToken, StringComparison.Ordinal);
        using var scraper = new HttpClient { BaseAddress = new Uri(c.BaseUrl) };
        scraper.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", metricsToken);
        await AssertProblem(await Send(HttpMethod.Get, "/v1/keys", client: scraper), HttpStatusCode.Unauthorized, "unauthorized");
        Assert.Equal(HttpStatusCode.OK, (await c.Http.GetAsync(new Uri("/metrics", UriKind.Relative))).StatusCode);
        string metrics = await scraper.GetStringAsync(new Uri("/metrics", UriKind.Relative));
        Assert.Contains("conclave_http_requests_total{method=\"POST\",route=\"/v1/keys/{name}/sign\",status=\"200\"}", metrics, StringComparison.Ordinal);
        Assert.Contains("conclave_sign_duration_seconds_count{scheme=\"frost-ed25519\"}", metrics, StringComparison.Ordinal);
        Assert.Matches(@"conclave_policy_seconds_bucket\{le=""1E-05""\} \d+\n", metrics);
        Assert.Matches(@"conclave_policy_seconds_count [1-9]\d*\n", metrics); // every signing request's authorization, timed
        Assert.Contains("conclave_node_up{node=\"3\"} 1", metrics, StringComparison.Ordinal);
        Assert.Contains($"conclave_nonce_pool_depth{{key=\"{fr}\",node=", metrics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task OpenApiDocument_ParsesAndCoversEveryRoute()
    {
        string text = await c.Anonymous.GetStringAsync("/openapi/v1.json");
        using JsonDocument doc = JsonDocument.Parse(text);
        Assert.StartsWith("3.", doc.RootElement.GetProperty("openapi").GetString(), StringComparison.Ordinal);
        JsonElement paths = doc.RootElement.GetProperty("paths");
        var routes = ((IEndpointRouteBuilder)c.App).DataSources.SelectMany(d => d.Endpoints).OfType<RouteEndpoint>()
            .Where(e => e.Metadata.GetMetadata<Microsoft.AspNetCore.Routing.IExcludeFromDescriptionMetadata>() is not { ExcludeFromDescription: true })
            .Where(e => e.RoutePattern.RawText is { } raw && !raw.Contains("openapi", StringComparison.Ordinal))
            .ToList();
        Assert.True(routes.Count >= 15, string.Join(", ", routes.Select(r => r.RoutePattern.RawText)));
        foreach (RouteEndpoint e in routes)
        {
            string path = "/" + e.RoutePattern.RawText!.TrimStart('/');
            Assert.True(paths.TryGetProperty(path, out JsonElement item), $"{path} missing from the OpenAPI document");
            foreach (string method in e.Metadata.GetMetadata<HttpMethodMetadata>()!.HttpMethods)
            {
                Assert.True(item.TryGetProperty(method.ToLowerInvariant(), out _), $"{method} {path} missing from the OpenAPI document");
            }
        }

        Assert.True(paths.GetProperty("/v1/keys/{name}/sign").GetProperty("post").GetProperty("responses").TryGetProperty("404", out _));
        Assert.True(doc.RootElement.GetProperty("components").GetProperty("schemas").TryGetProperty("SignResponse", out _));

        // Valid against the OpenAPI Initiative's JSON Schema for its version, every $ref resolving (checked from
        // Node with @seriousme/openapi-schema-validator, not by the generator that wrote it).
        JsonNode check = NodeInterop.Run("openapi", [new { document = JsonNode.Parse(text) }])[0]!;
        Assert.True(check["valid"]!.GetValue<bool>(), check["errors"]!.ToJsonString());
    }

    [Fact]
    public async Task JsonRpc_EthersV6SignsThroughRpc_AndRecoversTheKeyAddress()
    {
        string address = (await Create("ecdsa-secp256k1"))["addresses"]!["ethereum"]!.GetValue<string>();
        JsonArray results = NodeInterop.Run("rpc", [new { url = c.BaseUrl + "/rpc", token = c.Token, address, chainId = 8453 }]);
        JsonNode r = results[0]!;
        Assert.Contains(r["accounts"]!.AsArray(), a => a!.GetValue<string>() == address);

        // What was signed, field by field, as ethers decodes it from the signed bytes (rpc.mjs asked for exactly these).
        static void Fields(JsonNode t, string from, int type, int nonce, string value, string data, string gasLimit,
            string? gasPrice, string? maxFee, string? maxPriorityFee)
        {
            Assert.Equal(from, t["from"]!.GetValue<string>());
            Assert.Equal("0x3535353535353535353535353535353535353535", t["to"]!.GetValue<string>());
            Assert.Equal(type, t["type"]!.GetValue<int>());
            Assert.Equal("8453", t["chainId"]!.GetValue<string>());
            Assert.Equal(nonce, t["nonce"]!.GetValue<int>());
            Assert.Equal(value, t["value"]!.GetValue<string>());
            Assert.Equal(data, t["data"]!.GetValue<string>());
            Assert.Equal(gasLimit, t["gasLimit"]!.GetValue<string>());
            Assert.Equal(gasPrice, t["gasPrice"]?.GetValue<string>());
            Assert.Equal(maxFee, t["maxFeePerGas"]?.GetValue<string>());
            Assert.Equal(maxPriorityFee, t["maxPriorityFeePerGas"]?.GetValue<string>());
        }

        Fields(r["tx"]!, address, type: 2, nonce: 7, value: "1500000000000000000", data: "0x", gasLimit: "21000",
            gasPrice: null, maxFee: "30000000000", maxPriorityFee: "2000000000");
        Fields(r["legacy"]!, address, type: 0, nonce: 8, value: "1", data: "0xdeadbeef", gasLimit: "50000",
            gasPrice: "20000000000", maxFee: null, maxPriorityFee: null);
        Assert.Equal(address, r["messageSigner"]!.GetValue<string>());
        Assert.Equal(address, r["typedSigner"]!.GetValue<string>());
    }

    [Fact]
    public async Task JsonRpc_Errors()
    {
        string address = (await Create("ecdsa-secp256k1"))["addresses"]!["ethereum"]!.GetValue<string>();
        async Task<int> Code(string body)
        {
            var r = await Send(HttpMethod.Post, "/rpc", body);
            Assert.Equal(HttpStatusCode.OK, r.Status);
            return r.Body!["error"]!["code"]!.GetValue<int>();
        }

        Assert.Equal(-32700, await Code("""{"jsonrpc":"2.0","id":1,"method":"""));
        Assert.Equal(-32600, await Code("""{"jsonrpc":"2.0","id":1}"""));
        // eth_sendTransaction exists now (issue 17; it needs an upstream chain): no parameters is invalid params.
        Assert.Equal(-32602, await Code("""{"jsonrpc":"2.0","id":1,"method":"eth_sendTransaction","params":[]}"""));
        Assert.Equal(-32601, await Code("""{"jsonrpc":"2.0","id":1,"method":"eth_mine","params":[]}"""));
        Assert.Equal(-32602, await Code("""{"jsonrpc":"2.0","id":1,"method":"personal_sign","params":["0x00","0x0000000000000000000000000000000000000001"]}"""));
        Assert.Equal(-32602, await Code("""{"jsonrpc":"2.0","id":1,"method":"personal_sign","params":["0x00","nope"]}"""));
        Assert.Equal(-32602, await Code($$"""{"jsonrpc":"2.0","id":1,"method":"personal_sign","params":["0xzz","{{address}}"]}"""));
        Assert.Equal(-32602, await Code($$"""{"jsonrpc":"2.0","id":1,"method":"eth_signTransaction","params":[{"from":"{{address}}","type":"0x2","gas":"0xnothex"}]}"""));
        Assert.Equal(-32602, await Code($$"""{"jsonrpc":"2.0","id":1,"method":"eth_signTypedData_v4","params":["{{address}}","{not json"]}"""));
        Assert.Equal(-32602, await Code("""{"jsonrpc":"2.0","id":1,"method":"eth_signTransaction","params":[]}"""));

        var sign = await Send(HttpMethod.Post, "/rpc", $$"""[{"jsonrpc":"2.0","id":7,"method":"eth_sign","params":["{{address}}","0x68656c6c6f"]},{"jsonrpc":"2.0","id":8,"method":"eth_accounts"}]""");
        JsonArray batch = sign.Body!.AsArray();
        Assert.Equal(7, batch[0]!["id"]!.GetValue<int>());
        byte[] sig = Convert.FromHexString(batch[0]!["result"]!.GetValue<string>()[2..]);
        Assert.Equal(65, sig.Length);
        Assert.True(EcdsaSecp256k1.TryRecover(PersonalMessage.Hash("hello"u8), sig.AsSpan(0, 64), sig[64] - 27, out Secp256k1Point pk));
        Assert.Equal(address, EthereumAddress.FromPublicKey(pk.ToCompressed()));
        Assert.Contains(batch[1]!["result"]!.AsArray(), a => a!.GetValue<string>() == address);
    }
}
