using System.Diagnostics;
using System.Text.Json.Nodes;
using Conclave.Client;
using Conclave.Crypto.Signing;

namespace Conclave.Server.Tests;

/// <summary>The typed .NET client and the `conclave keys|audit` commands against the same real cluster.</summary>
[Collection("api")]
public sealed class ClientAndCliTests(ApiCluster c)
{
    [Fact]
    public async Task Client_CoversTheApi_AndThrowsTypedProblems()
    {
        using var client = new ConclaveClient(new Uri(c.BaseUrl + "/"), c.Token);
        string name = "client-" + Guid.NewGuid().ToString("N")[..8];
        KeyInfo k = await client.CreateKeyAsync(new CreateKeyRequest(name, "ed25519", Labels: new Dictionary<string, string> { ["team"] = "risk" }));
        Assert.Equal("risk", k.Labels["team"]);
        Assert.NotNull(k.Addresses.Solana);
        Assert.Contains(await client.ListKeysAsync(), x => x.Name == name);
        Assert.Equal(k.Id, (await client.GetKeyAsync(name)).Id);
        Assert.Single((await client.GetKeyVersionsAsync(name)).Versions);
        SignResult s = await client.SignAsync(name, new SignRequest(Message: "cafe"));
        Assert.True(SignatureSchemes.Ed25519.Verify(Convert.FromHexString(k.PublicKey), [0xca, 0xfe], Convert.FromHexString(s.Signature)));
        SignBatchResult b = await client.SignBatchAsync(name, [new SignRequest(Message: "01"), new SignRequest(Digest: "02")]);
        Assert.NotNull(b.Results[0].Result);
        Assert.Equal("https://conclave.dev/problems/wrong-input-kind", b.Results[1].Error!.Type);
        DeriveResult d = await client.DeriveAsync(name, "3/4");
        Assert.NotNull(d.Addresses.Solana);
        SignResult child = await client.SignAsync(name, new SignRequest(Message: "cafe", Path: "3/4"));
        Assert.Equal(d.PublicKey, child.PublicKey);
        Assert.True(SignatureSchemes.Ed25519.Verify(Convert.FromHexString(d.PublicKey), [0xca, 0xfe], Convert.FromHexString(child.Signature)));
        Assert.True((await client.ReadAuditAsync(0, 10)).Entries.Count > 0);
        Assert.True((await client.VerifyAuditAsync()).Ok);
        Assert.True((await client.ReadyAsync()).Ready);

        ConclaveApiException e = await Assert.ThrowsAsync<ConclaveApiException>(() => client.GetKeyAsync("missing-key"));
        Assert.Equal("https://conclave.dev/problems/unknown-key", e.Type);
        Assert.Equal(404, e.Status);
        e = await Assert.ThrowsAsync<ConclaveApiException>(() => client.RefreshAsync(name));
        Assert.Equal("https://conclave.dev/problems/not-threshold-key", e.Type);
        e = await Assert.ThrowsAsync<ConclaveApiException>(() => client.ReshareAsync(name, 2, 3));
        Assert.Equal(400, e.Status);
        using var bad = new ConclaveClient(new Uri(c.BaseUrl + "/"), "wrong");
        e = await Assert.ThrowsAsync<ConclaveApiException>(() => bad.ListKeysAsync());
        Assert.Equal(401, e.Status);
    }

    private (int Exit, string Out, string Err) Cli(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(RepoPaths.CliDll);
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["CONCLAVE_TOKEN"] = c.Token;
        psi.Environment["CONCLAVE_SERVER"] = c.BaseUrl;
        using Process p = Process.Start(psi)!;
        Task<string> o = p.StandardOutput.ReadToEndAsync();
        Task<string> e = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(TimeSpan.FromSeconds(60)));
        return (p.ExitCode, o.Result, e.Result);
    }

    [Fact]
    public void Cli_KeysAndAudit_AgainstTheServer()
    {
        string name = "cli-" + Guid.NewGuid().ToString("N")[..8];
        var created = Cli("keys", "create", name, "--scheme", "frost-ed25519", "--label", "desk=options", "--json");
        Assert.True(created.Exit == 0, created.Err);
        JsonNode key = JsonNode.Parse(created.Out)!;
        Assert.Equal("frost-ed25519", key["scheme"]!.GetValue<string>());
        Assert.Equal("options", key["labels"]!["desk"]!.GetValue<string>());

        var list = Cli("keys", "list", "--json");
        Assert.Contains(JsonNode.Parse(list.Out)!.AsArray(), k => k!["name"]!.GetValue<string>() == name);
        var table = Cli("keys", "list");
        Assert.Equal(0, table.Exit);
        Assert.Contains(name, table.Out, StringComparison.Ordinal);
        var show = Cli("keys", "show", name, "--json");
        Assert.Equal(key["id"]!.GetValue<string>(), JsonNode.Parse(show.Out)!["id"]!.GetValue<string>());
        var sign = Cli("keys", "sign", name, "--message", "00ff", "--json");
        Assert.True(sign.Exit == 0, sign.Err);
        Assert.Equal(128, JsonNode.Parse(sign.Out)!["signature"]!.GetValue<string>().Length);
        var derive = Cli("keys", "derive", name, "0/5", "--json");
        Assert.Equal("0/5", JsonNode.Parse(derive.Out)!["path"]!.GetValue<string>());
        var childSign = Cli("keys", "sign", name, "--message", "00ff", "--path", "0/5", "--json");
        Assert.True(childSign.Exit == 0, childSign.Err);
        Assert.Equal("0/5", JsonNode.Parse(childSign.Out)!["path"]!.GetValue<string>());
        Assert.Equal(JsonNode.Parse(derive.Out)!["publicKey"]!.GetValue<string>(), JsonNode.Parse(childSign.Out)!["publicKey"]!.GetValue<string>());

        // The signatures are checked, not just measured: a frost-ed25519 signature is a plain Ed25519 signature, the parent's
        // under the key, the child's under the derived key only; and @noble/curves agrees on both.
        byte[] parentKey = Convert.FromHexString(key["publicKey"]!.GetValue<string>());
        byte[] childKey = Convert.FromHexString(JsonNode.Parse(derive.Out)!["publicKey"]!.GetValue<string>());
        byte[] parentSig = Convert.FromHexString(JsonNode.Parse(sign.Out)!["signature"]!.GetValue<string>());
        byte[] childSig = Convert.FromHexString(JsonNode.Parse(childSign.Out)!["signature"]!.GetValue<string>());
        byte[] signed = [0x00, 0xff];
        Assert.True(SignatureSchemes.Ed25519.Verify(parentKey, signed, parentSig));
        Assert.True(SignatureSchemes.Ed25519.Verify(childKey, signed, childSig));
        Assert.False(SignatureSchemes.Ed25519.Verify(parentKey, signed, childSig));
        Assert.False(SignatureSchemes.Ed25519.Verify(childKey, signed, parentSig));
        JsonArray independent = NodeInterop.Run("frost", [
            new { scheme = "frost-ed25519", publicKey = Convert.ToHexStringLower(parentKey), message = "00ff", signature = Convert.ToHexStringLower(parentSig) },
            new { scheme = "frost-ed25519", publicKey = Convert.ToHexStringLower(childKey), message = "00ff", signature = Convert.ToHexStringLower(childSig) },
        ]);
        Assert.Equal(2, independent.Count(r => r!["ok"]!.GetValue<bool>()));
        var refresh = Cli("keys", "refresh", name, "--json");
        Assert.True(refresh.Exit == 0, refresh.Err);
        Assert.Equal(2, JsonNode.Parse(refresh.Out)!["version"]!.GetValue<int>());
        var reshare = Cli("keys", "reshare", name, "--threshold", "3", "--participants", "3", "--json");
        Assert.True(reshare.Exit == 0, reshare.Err);
        Assert.Equal(3, JsonNode.Parse(reshare.Out)!["threshold"]!.GetValue<int>());
        var badReshare = Cli("keys", "reshare", name, "--threshold", "4", "--participants", "3");
        Assert.Equal(2, badReshare.Exit);
        var missing = Cli("keys", "show", "no-such-key");
        Assert.Equal(2, missing.Exit);
        Assert.Contains("unknown-key", missing.Err, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", missing.Err, StringComparison.Ordinal);
        var badSign = Cli("keys", "sign", name);
        Assert.Equal(2, badSign.Exit);

        var verify = Cli("audit", "verify");
        Assert.True(verify.Exit == 0, verify.Err);
        Assert.Contains("audit log ok", verify.Out, StringComparison.Ordinal);
        var tail = Cli("audit", "tail", "--after", "0", "--limit", "5", "--json");
        Assert.Equal(5, JsonNode.Parse(tail.Out)!["entries"]!.AsArray().Count);
        Assert.Equal(0, Cli("audit", "tail", "--limit", "3").Exit);
    }
}
