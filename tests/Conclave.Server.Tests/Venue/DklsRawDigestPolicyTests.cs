using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Conclave.Chains.Ethereum;
using Conclave.Client;
using Conclave.Crypto.Secp256k1;
using ProblemTypes = Conclave.Server.Api.ProblemTypes;
using Microsoft.Extensions.DependencyInjection;

namespace Conclave.Server.Tests.Venue;

/// <summary>
/// Raw digests only where policy allows them, for an ecdsa-dkls23 key (issue 15; docs/POLICY.md "Enforcement"), on a
/// cluster of its own (three real signer-node processes, a real chain): under the development starter policy the admin
/// signs raw digests with the key (its rule names the scheme); with that rule taken out, a raw digest is refused on
/// every route that signs one (REST sign, a child path, a batch item, the client, the CLI, an unclassified contract call
/// through /rpc) with a 403 problem+json and a policy.decide deny in the audit log, while a typed Ethereum transaction
/// (Conclave computes its hash from the fields: REST ethereum/transactions, mined on anvil, and /rpc eth_signTransaction)
/// and a personal message are still signed; an explicit rule for the scheme allows raw digests again. Every signature
/// is checked with libsecp256k1 and @noble/curves, and ethers recovers each transaction's sender.
/// </summary>
public sealed class DklsRawDigestPolicyTests(VenueCluster c) : IClassFixture<VenueCluster>
{
    private const string Recipient = "0x000000000000000000000000000000000000bEEF";

    private async Task<(HttpStatusCode Status, JsonNode? Body, string? MediaType)> Send(HttpMethod method, string path, string? json = null)
    {
        using var req = new HttpRequestMessage(method, path) { Content = json is null ? null : new StringContent(json, Encoding.UTF8, "application/json") };
        using HttpResponseMessage r = await c.Http.SendAsync(req);
        string text = await r.Content.ReadAsStringAsync();
        return (r.StatusCode, text.Length == 0 ? null : JsonNode.Parse(text), r.Content.Headers.ContentType?.MediaType);
    }

    private async Task<JsonNode> Rpc(string method, string @params)
    {
        (HttpStatusCode status, JsonNode? body, _) = await Send(HttpMethod.Post, "/rpc", $$"""{"jsonrpc":"2.0","id":1,"method":"{{method}}","params":{{@params}}}""");
        Assert.True(status == HttpStatusCode.OK, body?.ToJsonString());
        return body!;
    }

    private static string[] Rules(JsonNode signed) => [.. signed["policy"]!["rules"]!.AsArray().Select(x => x!.GetValue<string>())];

    /// <summary>The audit entries after <paramref name="after"/> (read through the API).</summary>
    private async Task<JsonArray> AuditAfter(long after)
    {
        (HttpStatusCode status, JsonNode? page, _) = await Send(HttpMethod.Get, $"/v1/audit?after={after}&limit=500");
        Assert.Equal(HttpStatusCode.OK, status);
        return page!["entries"]!.AsArray();
    }

    private async Task<long> AuditHead()
    {
        (_, JsonNode? page, _) = await Send(HttpMethod.Get, "/v1/audit?last=1");
        return page!["entries"]!.AsArray().Select(e => e!["seq"]!.GetValue<long>()).DefaultIfEmpty(0).Max();
    }

    [Fact]
    public async Task ARawDigestIsSignedOnlyWherePolicyAllowsIt_ATypedTransactionIsSignedUnderThePolicyThatRefusesIt()
    {
        string name = "dkls-raw-" + Guid.NewGuid().ToString("N")[..8];
        (HttpStatusCode created, JsonNode? key, _) = await Send(HttpMethod.Post, "/v1/keys", $$"""{"name":"{{name}}","scheme":"ecdsa-dkls23","threshold":2,"participants":3}""");
        Assert.True(created == HttpStatusCode.Created, key?.ToJsonString());
        string keyId = key!["id"]!.GetValue<string>();
        byte[] pk = Convert.FromHexString(key["publicKey"]!.GetValue<string>());
        string address = key["addresses"]!["ethereum"]!.GetValue<string>();
        byte[] childPk = Convert.FromHexString((await Send(HttpMethod.Post, $"/v1/keys/{name}/derive", """{"path":"0/3"}""")).Body!["publicKey"]!.GetValue<string>());
        var cases = new List<object>();

        void Check(byte[] publicKey, byte[] digest, byte[] signature, int recoveryId)
        {
            Assert.True(EcdsaSecp256k1.Instance.Verify(publicKey, digest, signature), "the signature does not verify (libsecp256k1)");
            Assert.True(EcdsaSecp256k1.TryRecover(digest, signature, recoveryId, out Secp256k1Point rec) && rec.ToCompressed().AsSpan().SequenceEqual(publicKey));
            cases.Add(new { publicKey = Convert.ToHexStringLower(publicKey), digest = Convert.ToHexStringLower(digest), signature = Convert.ToHexStringLower(signature), recoveryId });
        }

        async Task<JsonNode> SignDigest(byte[] digest, string? path = null, HttpStatusCode expected = HttpStatusCode.OK)
        {
            string body = path is null ? $$"""{"digest":"{{Convert.ToHexStringLower(digest)}}"}""" : $$"""{"digest":"{{Convert.ToHexStringLower(digest)}}","path":"{{path}}"}""";
            (HttpStatusCode status, JsonNode? r, string? media) = await Send(HttpMethod.Post, $"/v1/keys/{name}/sign", body);
            Assert.True(status == expected, r?.ToJsonString());
            if (status == HttpStatusCode.OK)
            {
                Check(path is null ? pk : childPk, digest, Convert.FromHexString(r!["signature"]!.GetValue<string>()), r["recoveryId"]!.GetValue<int>());
            }
            else
            {
                Assert.Equal("application/problem+json", media);
            }

            return r!;
        }

        // A typed transaction for the key: Conclave builds it and computes its signing hash from the fields.
        async Task<SignedEthereumTransaction> SignTransfer(long nonce)
        {
            JsonNode signed = await Rpc("eth_signTransaction",
                $$"""[{"from":"{{address}}","to":"{{Recipient}}","value":"0x2a","chainId":"0x7a69","nonce":"0x{{nonce:x}}","gas":"0x5208","maxFeePerGas":"0x3b9aca00","maxPriorityFeePerGas":"0x1"}]""");
            Assert.True(signed["result"] is not null, signed.ToJsonString());
            byte[] raw = Convert.FromHexString(signed["result"]!.GetValue<string>()[2..]);
            SignedEthereumTransaction tx = SignedEthereumTransaction.Decode(raw);
            Assert.Equal(address, tx.SenderAddress);
            Assert.Equal((2, new System.Numerics.BigInteger(42)), (tx.Transaction.Type, tx.Transaction.Value));
            Check(pk, tx.Transaction.SigningHash(), tx.Signature.ToArray(), tx.RecoveryId);
            JsonNode read = NodeInterop.Run("evm-tx", [new { raw = signed["result"]!.GetValue<string>() }])[0]!;
            Assert.Equal((address, "42", "31337"), (read["from"]!.GetValue<string>(), read["value"]!.GetValue<string>(), read["chainId"]!.GetValue<string>()));
            return tx;
        }

        string contractCall = $$"""[{"from":"{{address}}","to":"{{Recipient}}","data":"0xa9059cbb","chainId":"0x7a69","nonce":"0x0","gas":"0x5208","maxFeePerGas":"0x3b9aca00","maxPriorityFeePerGas":"0x1"}]""";

        // 1. The development starter policy names ecdsa-dkls23 in its raw-digest rule: the admin signs raw digests.
        JsonNode allowed = await SignDigest(SHA256.HashData("starter allows"u8));
        Assert.Equal(["starter/admin-raw-digests"], Rules(allowed));

        // 2. The raw-digest rule taken out (a tightening: in force on one approver's vote).
        await PolicyEnforcementTests.PutPolicyAsync(c.Http, c.App.Services, """
            {"id":"starter","version":2,"rules":[
              {"id":"admin-signs","effect":"allow","match":{"principals":["admin"],"operations":["message","typed-data","transfer","liquidate","settle","exercise","margin-call","release-collateral","hedge"]}}]}
            """);
        long before = await AuditHead();

        // A raw digest is refused: 403 problem+json policy-denied with the decision, on the key and on a child path.
        byte[] refusedDigest = SHA256.HashData("starter v2 refuses"u8);
        JsonNode denied = await SignDigest(refusedDigest, expected: HttpStatusCode.Forbidden);
        Assert.Equal(ProblemTypes.PolicyDenied, denied["type"]!.GetValue<string>());
        Assert.Equal(403, denied["status"]!.GetValue<int>());
        Assert.Equal("deny", denied["policy"]!["decision"]!.GetValue<string>());
        Assert.NotEmpty(denied["policy"]!["reasons"]!.AsArray());
        Assert.Null(denied["signature"]);
        JsonNode deniedChild = await SignDigest(refusedDigest, "0/3", HttpStatusCode.Forbidden);
        Assert.Equal(ProblemTypes.PolicyDenied, deniedChild["type"]!.GetValue<string>());

        // A batch item, the typed client and the CLI are refused the same way.
        (HttpStatusCode sb, JsonNode? batch, _) = await Send(HttpMethod.Post, $"/v1/keys/{name}/sign/batch", $$"""{"items":[{"digest":"{{Convert.ToHexStringLower(refusedDigest)}}"}]}""");
        Assert.Equal(HttpStatusCode.OK, sb);
        Assert.Equal(ProblemTypes.PolicyDenied, batch!["results"]![0]!["error"]!["type"]!.GetValue<string>());
        Assert.Null(batch["results"]![0]!["result"]);
        string token = c.Http.DefaultRequestHeaders.Authorization!.Parameter!;
        using (var client = new ConclaveClient(c.Http.BaseAddress!, token))
        {
            ConclaveApiException e = await Assert.ThrowsAsync<ConclaveApiException>(() => client.SignAsync(name, new SignRequest(Digest: Convert.ToHexStringLower(refusedDigest))));
            Assert.Equal((403, ProblemTypes.PolicyDenied), (e.Status, e.Type));
        }

        (int exit, _, string err) = OwnServers.CliWithToken(token, c.Http.BaseAddress!.ToString().TrimEnd('/'), "keys", "sign", name, "--digest", Convert.ToHexStringLower(refusedDigest));
        Assert.Equal(2, exit);
        Assert.Single(err.Trim().Split('\n'));
        Assert.Contains("policy-denied", err, StringComparison.Ordinal);

        // A contract call no venue profile classifies is a raw digest too (the signer cannot tell what it does): refused.
        JsonNode call = await Rpc("eth_signTransaction", contractCall);
        Assert.Equal(-32001, call["error"]!["code"]!.GetValue<int>());
        Assert.Equal("deny", call["error"]!["data"]!["decision"]!.GetValue<string>());

        // Each refusal is audited as a policy.decide deny of a raw-digest on this key; no signing round was run (no dkls.sign).
        JsonArray entries = await AuditAfter(before);
        JsonNode[] denies = [.. entries.Where(e => e!["action"]!.GetValue<string>() == "policy.decide" && e["decision"]!.GetValue<string>() == "deny").Select(e => e!)];
        Assert.Equal(6, denies.Length);
        Assert.All(denies, e =>
        {
            Assert.Equal(keyId, e["keyId"]!.GetValue<string>());
            Assert.StartsWith("raw-digest ", e["result"]!.GetValue<string>(), StringComparison.Ordinal);
        });
        Assert.DoesNotContain(entries, e => e!["action"]!.GetValue<string>() == "dkls.sign");

        // Under the same policy, typed Ethereum transactions are signed: a transfer through /rpc, and one built, signed and
        // mined through POST /v1/keys/{name}/ethereum/transactions; a personal message too.
        before = await AuditHead();
        await SignTransfer(0);
        await c.Chain.FundAsync(address);
        (HttpStatusCode st, JsonNode? sent, _) = await Send(HttpMethod.Post, $"/v1/keys/{name}/ethereum/transactions", $$"""{"chainId":31337,"to":"{{Recipient}}","value":"1000","send":true}""");
        Assert.True(st == HttpStatusCode.OK, sent?.ToJsonString());
        Assert.Equal(("allow", address), (sent!["policy"]!["decision"]!.GetValue<string>(), sent["from"]!.GetValue<string>()));
        Assert.Equal(["starter/admin-signs"], Rules(sent));
        Assert.Equal("0x1", (await c.Chain.ReceiptAsync(sent["hash"]!.GetValue<string>()))["status"]!.GetValue<string>());
        SignedEthereumTransaction mined = SignedEthereumTransaction.Decode(Convert.FromHexString(sent["raw"]!.GetValue<string>()[2..]));
        Assert.Equal(address, mined.SenderAddress);
        Check(pk, mined.Transaction.SigningHash(), mined.Signature.ToArray(), mined.RecoveryId);
        Assert.Equal(address, NodeInterop.Run("evm-tx", [new { raw = sent["raw"]!.GetValue<string>() }])[0]!["from"]!.GetValue<string>());
        JsonNode personal = await Rpc("personal_sign", $$"""["0x68656c6c6f","{{address}}"]""");
        byte[] personalSig = Convert.FromHexString(personal["result"]!.GetValue<string>()[2..]);
        Check(pk, PersonalMessage.Hash("hello"u8), personalSig[..64], personalSig[64] - 27);
        JsonArray typedEntries = await AuditAfter(before);
        Assert.Contains(typedEntries, e => e!["action"]!.GetValue<string>() == "policy.decide" && e["decision"]!.GetValue<string>() == "allow"
            && e["result"]!.GetValue<string>().StartsWith("transfer ", StringComparison.Ordinal));
        Assert.DoesNotContain(typedEntries, e => e!["action"]!.GetValue<string>() == "policy.decide" && e["decision"]!.GetValue<string>() == "deny");

        // 3. An explicit rule naming raw-digest, the admin and the scheme (a loosening: a quorum and the time lock) allows
        // raw digests again: on the key, on a child path, in a batch, and the unclassified contract call.
        await PolicyEnforcementTests.PutPolicyAsync(c.Http, c.App.Services, """
            {"id":"dkls-raw","version":1,"rules":[{"id":"admin-raw-dkls","effect":"allow","match":{"principals":["admin"],"operations":["raw-digest"],"labels":["scheme:ecdsa-dkls23"]}}]}
            """);
        Assert.Equal(["dkls-raw/admin-raw-dkls"], Rules(await SignDigest(refusedDigest)));
        Assert.Equal(["dkls-raw/admin-raw-dkls"], Rules(await SignDigest(refusedDigest, "0/3")));
        (sb, batch, _) = await Send(HttpMethod.Post, $"/v1/keys/{name}/sign/batch", $$"""{"items":[{"digest":"{{Convert.ToHexStringLower(refusedDigest)}}"}]}""");
        Assert.Equal(HttpStatusCode.OK, sb);
        JsonNode item = batch!["results"]![0]!["result"]!;
        Check(pk, refusedDigest, Convert.FromHexString(item["signature"]!.GetValue<string>()), item["recoveryId"]!.GetValue<int>());
        JsonNode callOk = await Rpc("eth_signTransaction", contractCall);
        Assert.True(callOk["result"] is not null, callOk.ToJsonString());
        Assert.Equal(address, SignedEthereumTransaction.Decode(Convert.FromHexString(callOk["result"]!.GetValue<string>()[2..])).SenderAddress);
        await SignTransfer(1);

        // Every signature again, independently (@noble/curves: verify with low s, and recover the key).
        Assert.Equal(8, cases.Count);
        JsonArray checks = NodeInterop.Run("dkls23", cases);
        Assert.All(checks, r => Assert.True(r!["ok"]!.GetValue<bool>() && r["recovered"]!.GetValue<bool>(), r.ToJsonString()));
    }
}
