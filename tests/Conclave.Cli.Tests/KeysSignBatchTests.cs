using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Conclave.Crypto.Secp256k1;
using Conclave.Crypto.Signing;
using Conclave.Server.Config;
using Conclave.Server.Hosting;
using Microsoft.AspNetCore.Builder;

namespace Conclave.Cli.Tests;

/// <summary>
/// `conclave keys sign-batch` against a server of its own (no signer nodes: server-held keys): digests and messages in
/// one request, in order, with a child path, as JSON and as plain fields; every signature verified under its key. Bad
/// input is one line and exit code 2, before any request when the command line is wrong, after the signed items are
/// printed when the server refuses some items. (ecdsa-dkls23 keys on real nodes: Server.Tests DklsClientAndCliTests.)
/// </summary>
[Collection("Console")]
public sealed class KeysSignBatchTests : IAsyncLifetime
{
    private string _dir = "";
    private WebApplication _app = null!;

    public async Task InitializeAsync()
    {
        _dir = Path.Combine(Path.GetTempPath(), "conclave-cli-batch-" + Guid.NewGuid().ToString("N")[..10]);
        var layout = new LocalClusterLayout(_dir);
        layout.EnsureCreated(3, 2, LoopbackPorts.Take(), LoopbackPorts.Take(3));
        _app = await ServerHost.BuildAsync(ServerConfig.Load(layout.ServerConfigPath));
        await _app.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private Task<CliRunner.Result> Run(params string[] args) => CliRunner.RunAsync(null, [.. args, "--data", _dir]);

    private static void AssertOneLineError(CliRunner.Result r, string fragment)
    {
        Assert.True(r.ExitCode == 2, $"exit {r.ExitCode}: {r.Stderr}");
        string[] lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, r.Stderr);
        Assert.StartsWith("conclave: error: ", lines[0], StringComparison.Ordinal);
        Assert.Contains(fragment, lines[0], StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", r.Stderr, StringComparison.Ordinal);
    }

    private async Task<byte[]> CreateAsync(string name, string scheme)
    {
        CliRunner.Result created = await Run("keys", "create", name, "--scheme", scheme, "--json");
        Assert.True(created.ExitCode == 0, created.Stderr);
        return Convert.FromHexString(JsonNode.Parse(created.Stdout)!["publicKey"]!.GetValue<string>());
    }

    [Fact]
    public async Task SignBatch_SignsEveryItemInOrder_WithAChildPath_AsJsonAndAsFields()
    {
        string ecdsa = "batch-ecdsa-" + Guid.NewGuid().ToString("N")[..6];
        byte[] pk = await CreateAsync(ecdsa, "ecdsa-secp256k1");
        byte[][] digests = [.. Enumerable.Range(0, 3).Select(i => SHA256.HashData([(byte)i]))];
        CliRunner.Result json = await Run("keys", "sign-batch", ecdsa, "--digest", Convert.ToHexStringLower(digests[0]), "--digest", Convert.ToHexStringLower(digests[1]),
            "--digest", Convert.ToHexStringLower(digests[2]), "--json");
        Assert.True(json.ExitCode == 0, json.Stderr);
        JsonArray results = JsonNode.Parse(json.Stdout)!["results"]!.AsArray();
        Assert.Equal(3, results.Count);
        for (int i = 0; i < 3; i++)
        {
            byte[] sig = Convert.FromHexString(results[i]!["result"]!["signature"]!.GetValue<string>());
            Assert.True(EcdsaSecp256k1.Instance.Verify(pk, digests[i], sig), $"item {i}");
            Assert.True(EcdsaSecp256k1.TryRecover(digests[i], sig, results[i]!["result"]!["recoveryId"]!.GetValue<int>(), out Secp256k1Point rec)
                && rec.ToCompressed().AsSpan().SequenceEqual(pk));
        }

        // With --path every item is signed by the child key (the one `keys derive` reports); plain output, one block per item.
        CliRunner.Result derived = await Run("keys", "derive", ecdsa, "1/2", "--json");
        byte[] child = Convert.FromHexString(JsonNode.Parse(derived.Stdout)!["publicKey"]!.GetValue<string>());
        CliRunner.Result plain = await Run("keys", "sign-batch", ecdsa, "--digest", Convert.ToHexStringLower(digests[0]), "--digest", Convert.ToHexStringLower(digests[1]), "--path", "1/2");
        Assert.True(plain.ExitCode == 0, plain.Stderr);
        string[] lines = plain.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["1", "2"], lines.Where(l => l.StartsWith("item ", StringComparison.Ordinal)).Select(l => l[4..].Trim()));
        string[] sigs = [.. lines.Where(l => l.StartsWith("signature ", StringComparison.Ordinal)).Select(l => l[9..].Trim())];
        Assert.Equal(2, sigs.Length);
        Assert.All(lines.Where(l => l.StartsWith("path ", StringComparison.Ordinal)), l => Assert.Equal("1/2", l[4..].Trim()));
        for (int i = 0; i < 2; i++)
        {
            Assert.True(EcdsaSecp256k1.Instance.Verify(child, digests[i], Convert.FromHexString(sigs[i])), $"child item {i}");
            Assert.False(EcdsaSecp256k1.Instance.Verify(pk, digests[i], Convert.FromHexString(sigs[i])));
        }

        // Messages for a message-signing scheme.
        string ed = "batch-ed-" + Guid.NewGuid().ToString("N")[..6];
        byte[] edPk = await CreateAsync(ed, "ed25519");
        CliRunner.Result messages = await Run("keys", "sign-batch", ed, "--message", "cafe", "--message", "00ff", "--json");
        Assert.True(messages.ExitCode == 0, messages.Stderr);
        JsonArray signed = JsonNode.Parse(messages.Stdout)!["results"]!.AsArray();
        Assert.True(SignatureSchemes.Ed25519.Verify(edPk, [0xca, 0xfe], Convert.FromHexString(signed[0]!["result"]!["signature"]!.GetValue<string>())));
        Assert.True(SignatureSchemes.Ed25519.Verify(edPk, [0x00, 0xff], Convert.FromHexString(signed[1]!["result"]!["signature"]!.GetValue<string>())));
    }

    [Fact]
    public async Task SignBatch_BadInput_IsOneLineAndExitTwo()
    {
        string name = "batch-bad-" + Guid.NewGuid().ToString("N")[..6];
        byte[] pk = await CreateAsync(name, "ecdsa-secp256k1");
        string digest = Convert.ToHexStringLower(SHA256.HashData("bad input"u8));

        // Wrong on the command line: refused before any request.
        AssertOneLineError(await Run("keys", "sign-batch", name), "give one or more --digest (or --message) values");
        AssertOneLineError(await Run("keys", "sign-batch", name, "--digest", digest, "--message", "00"), "not both");
        string[] tooMany = ["keys", "sign-batch", name, .. Enumerable.Range(0, 257).SelectMany(_ => new[] { "--digest", digest })];
        AssertOneLineError(await Run(tooMany), "at most 256 items (257 given)");
        AssertOneLineError(await CliRunner.RunAsync(null, "keys", "sign-batch", name, "--data", _dir, "--digest"), "--digest");
        AssertOneLineError(await Run("keys", "sign-batch", "no-such-key", "--digest", digest), "unknown-key");

        // Refused by the server item by item: the signed items are printed, then one line names the first refusal.
        CliRunner.Result partly = await Run("keys", "sign-batch", name, "--digest", digest, "--digest", "zz", "--digest", digest + "00", "--json");
        AssertOneLineError(partly, "2 of 3 items were not signed; item 2:");
        Assert.Contains("bad-hex", partly.Stderr, StringComparison.Ordinal);
        JsonArray results = JsonNode.Parse(partly.Stdout)!["results"]!.AsArray();
        Assert.True(EcdsaSecp256k1.Instance.Verify(pk, Convert.FromHexString(digest), Convert.FromHexString(results[0]!["result"]!["signature"]!.GetValue<string>())));
        Assert.Null(results[1]!["result"]);
        Assert.NotNull(results[2]!["error"]);
        AssertOneLineError(await Run("keys", "sign-batch", name, "--message", "00ff"), "1 of 1 items were not signed; item 1:");
        CliRunner.Result plain = await Run("keys", "sign-batch", name, "--digest", digest, "--path", "0'/1");
        AssertOneLineError(plain, "hardened-path");
        Assert.Contains("error", plain.Stdout, StringComparison.Ordinal);
    }
}
