using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Conclave.Chains.Ethereum;
using Conclave.Client;
using Conclave.Crypto.Secp256k1;

using static Conclave.Server.Tests.OwnServers;

namespace Conclave.Server.Tests;

/// <summary>
/// An ecdsa-dkls23 key through the typed client (Conclave.Client) and through the CLI run as a process, against the
/// shared API cluster (three real signer-node processes): create 2-of-3, the Ethereum address, a digest, a batch, a
/// derived child and a signature with its path, refresh and reshare to 3-of-3 (the address unchanged, the key signing
/// after each). Every signature is checked under the key (or child key) it claims with libsecp256k1 (verify, low s, the
/// recovery id recovers the key) and again by @noble/curves (tests/interop/checks/dkls23.mjs). Bad inputs are typed
/// problems from the client and one line with exit code 2 from the CLI.
/// </summary>
[Collection("api")]
public sealed class DklsClientAndCliTests(ApiCluster c)
{
    private const string P = "https://conclave.dev/problems/";

    /// <summary>The signatures a test collected: each is checked by libsecp256k1 when made, and all of them by @noble/curves at the end.</summary>
    private sealed class Signatures
    {
        private readonly List<object> _cases = [];

        public int Count => _cases.Count;

        /// <summary>Checks one signature of <paramref name="digest"/> under <paramref name="publicKey"/> and keeps it for noble.</summary>
        public void Check(byte[] publicKey, byte[] digest, string signatureHex, int? recoveryId)
        {
            byte[] sig = Convert.FromHexString(signatureHex);
            Assert.Equal(64, sig.Length);
            Assert.True(recoveryId is >= 0 and <= 3, $"recovery id {recoveryId}");
            Assert.True(EcdsaSecp256k1.Instance.Verify(publicKey, digest, sig), "the signature does not verify under its key (libsecp256k1)");
            Assert.True(sig[32] < 0x80, "the signature is not low-s"); // s < n/2 implies its top bit is clear
            Assert.True(EcdsaSecp256k1.TryRecover(digest, sig, recoveryId!.Value, out Secp256k1Point rec) && rec.ToCompressed().AsSpan().SequenceEqual(publicKey),
                "the recovery id does not recover the key");
            _cases.Add(new { publicKey = Convert.ToHexStringLower(publicKey), digest = Convert.ToHexStringLower(digest), signature = Convert.ToHexStringLower(sig), recoveryId = recoveryId.Value });
        }

        /// <summary>Every kept signature again, independently: @noble/curves verify (low s) and recoverPublicKey.</summary>
        public void CheckWithNoble()
        {
            JsonArray checks = NodeInterop.Run("dkls23", _cases);
            Assert.Equal(_cases.Count, checks.Count);
            Assert.All(checks, r =>
            {
                Assert.True(r!["ok"]!.GetValue<bool>(), r.ToJsonString());
                Assert.True(r["recovered"]!.GetValue<bool>(), r.ToJsonString());
            });
        }
    }

    private static byte[] Digest(string label) => SHA256.HashData(Encoding.UTF8.GetBytes(label));

    private static string Hex(byte[] b) => Convert.ToHexStringLower(b);

    [Fact]
    public async Task Client_CreateSignBatchDeriveRefreshReshare_EverySignatureVerifiesUnderItsKey()
    {
        using var client = new ConclaveClient(new Uri(c.BaseUrl + "/"), c.Token);
        var sigs = new Signatures();
        string name = "dkls-typed-" + Guid.NewGuid().ToString("N")[..8];

        KeyInfo key = await client.CreateKeyAsync(new CreateKeyRequest(name, "ecdsa-dkls23", 2, 3));
        Assert.Equal(("ecdsa-dkls23", 2, 3, 1), (key.Scheme, key.Threshold, key.Participants, key.Version));
        byte[] pk = Convert.FromHexString(key.PublicKey);
        Assert.Equal(33, pk.Length);
        string address = key.Addresses.Ethereum!;
        Assert.Equal(EthereumAddress.FromPublicKey(pk), address);
        Assert.Equal(address, (await client.GetKeyAsync(name)).Addresses.Ethereum);
        Assert.Contains(await client.ListKeysAsync(), k => k.Name == name && k.Addresses.Ethereum == address);

        // A digest.
        byte[] d0 = Digest(name + " one");
        SignResult one = await client.SignAsync(name, new SignRequest(Digest: Hex(d0)));
        Assert.Equal((key.PublicKey, 1), (one.PublicKey, one.KeyVersion));
        sigs.Check(pk, d0, one.Signature, one.RecoveryId);

        // A batch: three digests under the key and one under a child path, each signed on its own.
        byte[][] batchDigests = [.. Enumerable.Range(0, 4).Select(i => Digest($"{name} batch {i}"))];
        SignBatchResult batch = await client.SignBatchAsync(name,
            [new SignRequest(Digest: Hex(batchDigests[0])), new SignRequest(Digest: Hex(batchDigests[1])), new SignRequest(Digest: Hex(batchDigests[2])),
             new SignRequest(Digest: Hex(batchDigests[3]), Path: "0/7")]);
        Assert.Equal(4, batch.Results.Count);
        Assert.All(batch.Results, r => Assert.True(r.Result is not null, r.Error?.Detail));

        // A child: its key and address, and signatures with its path verify under it (not under the parent).
        DeriveResult child = await client.DeriveAsync(name, "0/7");
        byte[] childPk = Convert.FromHexString(child.PublicKey);
        Assert.Equal(EthereumAddress.FromPublicKey(childPk), child.Addresses.Ethereum);
        Assert.NotEqual(address, child.Addresses.Ethereum);
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(key.PublicKey, batch.Results[i].Result!.PublicKey);
            sigs.Check(pk, batchDigests[i], batch.Results[i].Result!.Signature, batch.Results[i].Result!.RecoveryId);
        }

        Assert.Equal((child.PublicKey, "0/7"), (batch.Results[3].Result!.PublicKey, batch.Results[3].Result!.Path));
        sigs.Check(childPk, batchDigests[3], batch.Results[3].Result!.Signature, batch.Results[3].Result!.RecoveryId);
        byte[] dc = Digest(name + " child");
        SignResult childSig = await client.SignAsync(name, new SignRequest(Digest: Hex(dc), Path: "0/7"));
        Assert.Equal((child.PublicKey, "0/7"), (childSig.PublicKey, childSig.Path));
        Assert.False(EcdsaSecp256k1.Instance.Verify(pk, dc, Convert.FromHexString(childSig.Signature)));
        sigs.Check(childPk, dc, childSig.Signature, childSig.RecoveryId);

        // Refresh: version 2, the same key and address; it signs after.
        KeyInfo refreshed = await client.RefreshAsync(name);
        Assert.Equal((2, key.PublicKey, address), (refreshed.Version, refreshed.PublicKey, refreshed.Addresses.Ethereum));
        byte[] d2 = Digest(name + " after refresh");
        SignResult afterRefresh = await client.SignAsync(name, new SignRequest(Digest: Hex(d2)));
        Assert.Equal(2, afterRefresh.KeyVersion);
        sigs.Check(pk, d2, afterRefresh.Signature, afterRefresh.RecoveryId);

        // Reshare to 3-of-3: version 3, the same key and address; it signs after, and so does its child.
        KeyInfo reshared = await client.ReshareAsync(name, 3, 3);
        Assert.Equal((3, 3, 3, key.PublicKey, address), (reshared.Version, reshared.Threshold, reshared.Participants, reshared.PublicKey, reshared.Addresses.Ethereum));
        Assert.Equal(address, (await client.GetKeyAsync(name)).Addresses.Ethereum);
        Assert.Equal([1, 2, 3], (await client.GetKeyVersionsAsync(name)).Versions.Select(v => v.Version));
        byte[] d3 = Digest(name + " after reshare");
        SignResult afterReshare = await client.SignAsync(name, new SignRequest(Digest: Hex(d3)));
        Assert.Equal(3, afterReshare.KeyVersion);
        sigs.Check(pk, d3, afterReshare.Signature, afterReshare.RecoveryId);
        Assert.Equal(child.PublicKey, (await client.DeriveAsync(name, "0/7")).PublicKey);
        SignBatchResult afterBatch = await client.SignBatchAsync(name, [new SignRequest(Digest: Hex(d3), Path: "0/7"), new SignRequest(Digest: Hex(d0))]);
        sigs.Check(childPk, d3, afterBatch.Results[0].Result!.Signature, afterBatch.Results[0].Result!.RecoveryId);
        sigs.Check(pk, d0, afterBatch.Results[1].Result!.Signature, afterBatch.Results[1].Result!.RecoveryId);

        Assert.Equal(10, sigs.Count);
        sigs.CheckWithNoble();

        // Bad inputs are typed problems.
        ConclaveApiException e = await Assert.ThrowsAsync<ConclaveApiException>(() => client.SignAsync(name, new SignRequest(Message: "00ff")));
        Assert.Equal((400, P + "wrong-input-kind"), (e.Status, e.Type));
        e = await Assert.ThrowsAsync<ConclaveApiException>(() => client.SignAsync(name, new SignRequest(Digest: "00ff")));
        Assert.Equal((400, P + "bad-hex"), (e.Status, e.Type));
        e = await Assert.ThrowsAsync<ConclaveApiException>(() => client.SignAsync(name, new SignRequest(Digest: Hex(d0), Path: "0'/7")));
        Assert.Equal((400, P + "hardened-path"), (e.Status, e.Type));
        e = await Assert.ThrowsAsync<ConclaveApiException>(() => client.DeriveAsync(name, "0'/7"));
        Assert.Equal((400, P + "hardened-path"), (e.Status, e.Type));
        e = await Assert.ThrowsAsync<ConclaveApiException>(() => client.SignBatchAsync(name, []));
        Assert.Equal((400, P + "invalid-request"), (e.Status, e.Type));
        e = await Assert.ThrowsAsync<ConclaveApiException>(() => client.SignBatchAsync(name, [.. Enumerable.Repeat(new SignRequest(Digest: Hex(d0)), SignBatchRequest.MaxItems + 1)]));
        Assert.Equal((400, P + "invalid-request"), (e.Status, e.Type));
        e = await Assert.ThrowsAsync<ConclaveApiException>(() => client.ReshareAsync(name, 4, 3));
        Assert.Equal((400, P + "invalid-request"), (e.Status, e.Type));
        e = await Assert.ThrowsAsync<ConclaveApiException>(() => client.CreateKeyAsync(new CreateKeyRequest(name + "-bad", "ecdsa-dkls23", 4, 3)));
        Assert.Equal((400, P + "invalid-request"), (e.Status, e.Type));
        e = await Assert.ThrowsAsync<ConclaveApiException>(() => client.RefreshAsync("no-such-dkls-key"));
        Assert.Equal((404, P + "unknown-key"), (e.Status, e.Type));

        // A batch item that is wrong is refused on its own; the other items are signed.
        SignBatchResult mixed = await client.SignBatchAsync(name, [new SignRequest(Digest: Hex(d0)), new SignRequest(Message: "00ff"), new SignRequest(Digest: Hex(d0), Path: "1'/2")]);
        Assert.NotNull(mixed.Results[0].Result);
        Assert.Equal(P + "wrong-input-kind", mixed.Results[1].Error!.Type);
        Assert.Equal(P + "hardened-path", mixed.Results[2].Error!.Type);
    }

    private (int Exit, string Out, string Err) Cli(params string[] args) => CliWithToken(c.Token, c.BaseUrl, args);

    private static JsonNode Json((int Exit, string Out, string Err) r)
    {
        Assert.True(r.Exit == 0, $"exit {r.Exit}: {r.Err}");
        return JsonNode.Parse(r.Out)!;
    }

    /// <summary>A refusal: exit code 2 and one line on standard error naming what is wrong, no stack trace.</summary>
    private static void AssertOneLineError((int Exit, string Out, string Err) r, string expected)
    {
        Assert.True(r.Exit == 2, $"exit {r.Exit}: {r.Err}");
        string[] lines = r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, r.Err);
        Assert.StartsWith("conclave: error: ", lines[0], StringComparison.Ordinal);
        Assert.Contains(expected, lines[0], StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", r.Err, StringComparison.Ordinal);
    }

    /// <summary>The value of a "field  value" line of the CLI's plain output.</summary>
    private static string Field(string output, string field) =>
        output.Split('\n').Select(l => l.TrimEnd('\r')).Where(l => l.StartsWith(field + "  ", StringComparison.Ordinal))
            .Select(l => l[field.Length..].Trim()).First();

    [Fact]
    public void Cli_CreateSignBatchDeriveRefreshReshare_EverySignatureVerifiesUnderItsKey()
    {
        var sigs = new Signatures();
        string name = "dkls-cli-" + Guid.NewGuid().ToString("N")[..8];

        // keys create with the scheme; the plain output shows the Ethereum address, which is the key's.
        var created = Cli("keys", "create", name, "--scheme", "ecdsa-dkls23", "--threshold", "2", "--participants", "3");
        Assert.True(created.Exit == 0, created.Err);
        Assert.Equal("ecdsa-dkls23", Field(created.Out, "scheme"));
        Assert.Equal("2 of 3", Field(created.Out, "threshold"));
        byte[] pk = Convert.FromHexString(Field(created.Out, "public key"));
        string address = Field(created.Out, "ethereum");
        Assert.Equal(EthereumAddress.FromPublicKey(pk), address);
        var shown = Cli("keys", "show", name);
        Assert.True(shown.Exit == 0, shown.Err);
        Assert.Equal(address, Field(shown.Out, "ethereum"));
        Assert.Equal(address, Json(Cli("keys", "show", name, "--json"))["addresses"]!["ethereum"]!.GetValue<string>());
        var listed = Cli("keys", "list", "--json");
        Assert.Contains(Json(listed).AsArray(), k => k!["name"]!.GetValue<string>() == name && k["addresses"]!["ethereum"]!.GetValue<string>() == address);

        // keys sign --digest, as JSON and as plain fields.
        byte[] d0 = Digest(name + " one");
        JsonNode one = Json(Cli("keys", "sign", name, "--digest", Hex(d0), "--json"));
        sigs.Check(pk, d0, one["signature"]!.GetValue<string>(), one["recoveryId"]!.GetValue<int>());
        byte[] d1 = Digest(name + " plain");
        var plain = Cli("keys", "sign", name, "--digest", Hex(d1));
        Assert.True(plain.Exit == 0, plain.Err);
        Assert.Equal(Hex(pk), Field(plain.Out, "public key"));
        sigs.Check(pk, d1, Field(plain.Out, "signature"), int.Parse(Field(plain.Out, "recovery id"), System.Globalization.CultureInfo.InvariantCulture));

        // keys sign-batch: three digests in one request, in order.
        byte[][] batchDigests = [.. Enumerable.Range(0, 3).Select(i => Digest($"{name} batch {i}"))];
        JsonNode batch = Json(Cli("keys", "sign-batch", name, "--digest", Hex(batchDigests[0]), "--digest", Hex(batchDigests[1]), "--digest", Hex(batchDigests[2]), "--json"));
        JsonArray results = batch["results"]!.AsArray();
        Assert.Equal(3, results.Count);
        for (int i = 0; i < 3; i++)
        {
            JsonNode r = results[i]!["result"]!;
            Assert.Equal(Hex(pk), r["publicKey"]!.GetValue<string>());
            sigs.Check(pk, batchDigests[i], r["signature"]!.GetValue<string>(), r["recoveryId"]!.GetValue<int>());
        }

        // keys derive (plain: the child's Ethereum address), then sign and sign-batch with its path.
        var derived = Cli("keys", "derive", name, "0/7");
        Assert.True(derived.Exit == 0, derived.Err);
        byte[] childPk = Convert.FromHexString(Field(derived.Out, "public key"));
        Assert.Equal(EthereumAddress.FromPublicKey(childPk), Field(derived.Out, "ethereum"));
        Assert.NotEqual(address, Field(derived.Out, "ethereum"));
        byte[] dc = Digest(name + " child");
        JsonNode childSig = Json(Cli("keys", "sign", name, "--digest", Hex(dc), "--path", "0/7", "--json"));
        Assert.Equal(Hex(childPk), childSig["publicKey"]!.GetValue<string>());
        Assert.False(EcdsaSecp256k1.Instance.Verify(pk, dc, Convert.FromHexString(childSig["signature"]!.GetValue<string>())));
        sigs.Check(childPk, dc, childSig["signature"]!.GetValue<string>(), childSig["recoveryId"]!.GetValue<int>());
        var childBatch = Cli("keys", "sign-batch", name, "--digest", Hex(d0), "--digest", Hex(d1), "--path", "0/7");
        Assert.True(childBatch.Exit == 0, childBatch.Err);
        string[] items = childBatch.Out.Split("item  ", StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, items.Length);
        foreach ((string item, byte[] digest) in items.Zip([d0, d1]))
        {
            Assert.Equal(Hex(childPk), Field(item, "public key"));
            Assert.Equal("0/7", Field(item, "path"));
            sigs.Check(childPk, digest, Field(item, "signature"), int.Parse(Field(item, "recovery id"), System.Globalization.CultureInfo.InvariantCulture));
        }

        // keys refresh: version 2, same key and address; it signs after.
        JsonNode refreshed = Json(Cli("keys", "refresh", name, "--json"));
        Assert.Equal(2, refreshed["version"]!.GetValue<int>());
        Assert.Equal((Hex(pk), address), (refreshed["publicKey"]!.GetValue<string>(), refreshed["addresses"]!["ethereum"]!.GetValue<string>()));
        byte[] d2 = Digest(name + " after refresh");
        JsonNode afterRefresh = Json(Cli("keys", "sign", name, "--digest", Hex(d2), "--json"));
        Assert.Equal(2, afterRefresh["keyVersion"]!.GetValue<int>());
        sigs.Check(pk, d2, afterRefresh["signature"]!.GetValue<string>(), afterRefresh["recoveryId"]!.GetValue<int>());

        // keys reshare to 3-of-3 (plain output: the address unchanged); it signs after, a batch and a child too.
        var reshared = Cli("keys", "reshare", name, "--threshold", "3", "--participants", "3");
        Assert.True(reshared.Exit == 0, reshared.Err);
        Assert.Equal(("3 of 3", "3", address), (Field(reshared.Out, "threshold"), Field(reshared.Out, "version"), Field(reshared.Out, "ethereum")));
        Assert.Equal(Hex(pk), Field(reshared.Out, "public key"));
        byte[] d3 = Digest(name + " after reshare");
        JsonNode afterReshare = Json(Cli("keys", "sign-batch", name, "--digest", Hex(d3), "--digest", Hex(d0), "--json"));
        for (int i = 0; i < 2; i++)
        {
            JsonNode r = afterReshare["results"]![i]!["result"]!;
            Assert.Equal(3, r["keyVersion"]!.GetValue<int>());
            sigs.Check(pk, i == 0 ? d3 : d0, r["signature"]!.GetValue<string>(), r["recoveryId"]!.GetValue<int>());
        }

        JsonNode childAfter = Json(Cli("keys", "sign", name, "--digest", Hex(d3), "--path", "0/7", "--json"));
        sigs.Check(childPk, d3, childAfter["signature"]!.GetValue<string>(), childAfter["recoveryId"]!.GetValue<int>());

        Assert.Equal(12, sigs.Count);
        sigs.CheckWithNoble();

        // Bad input: exit code 2 and one readable line.
        AssertOneLineError(Cli("keys", "sign-batch", name), "one or more --digest");
        AssertOneLineError(Cli("keys", "sign-batch", name, "--digest", Hex(d0), "--message", "00ff"), "not both");
        string[] tooMany = ["keys", "sign-batch", name, .. Enumerable.Range(0, SignBatchRequest.MaxItems + 1).SelectMany(_ => new[] { "--digest", Hex(d0) })];
        AssertOneLineError(Cli(tooMany), $"at most {SignBatchRequest.MaxItems} items ({SignBatchRequest.MaxItems + 1} given)");
        AssertOneLineError(Cli("keys", "sign-batch", name, "--digest", Hex(d0), "--digest", Hex(d1), "--path", "0'/7"), "2 of 2 items were not signed; item 1:");
        // A batch with one bad item: the good one is printed, then one line naming the bad one.
        var partly = Cli("keys", "sign-batch", name, "--digest", Hex(d0), "--digest", "00ff");
        AssertOneLineError(partly, "1 of 2 items were not signed; item 2:");
        Assert.Contains("bad-hex", partly.Err, StringComparison.Ordinal);
        sigs.Check(pk, d0, Field(partly.Out, "signature"), int.Parse(Field(partly.Out, "recovery id"), System.Globalization.CultureInfo.InvariantCulture));
        AssertOneLineError(Cli("keys", "sign-batch", name, "--message", "00ff"), "wrong-input-kind");
        AssertOneLineError(Cli("keys", "sign", name, "--digest", Hex(d0), "--path", "0'/7"), "hardened-path");
        AssertOneLineError(Cli("keys", "derive", name, "0'/7"), "hardened-path");
        AssertOneLineError(Cli("keys", "sign", name, "--message", "00ff"), "wrong-input-kind");
        AssertOneLineError(Cli("keys", "reshare", name, "--threshold", "4", "--participants", "3"), "invalid-request");
        AssertOneLineError(Cli("keys", "reshare", name, "--threshold", "two", "--participants", "3"), "--threshold takes a whole number");
        AssertOneLineError(Cli("keys", "refresh", "no-such-dkls-key"), "unknown-key");
        AssertOneLineError(Cli("keys", "create", name + "-bad", "--scheme", "ecdsa-dkls23", "--threshold", "4", "--participants", "3"), "invalid-request");
        AssertOneLineError(Cli("keys", "create", name + "-bad", "--scheme", "ecdsa-dkls24"), "unknown-scheme");
    }
}
