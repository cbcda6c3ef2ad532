using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Conclave.Chains.Ethereum;
using Conclave.Node.Config;
using Conclave.Server.Config;
using Microsoft.AspNetCore.Builder;

namespace Conclave.Server.Tests;

/// <summary>
/// Issue 20 "HSM keys through the server": hsm-ecdsa-secp256k1 and hsm-ed25519 keys created, listed and used through the
/// API, the CLI and /rpc, with the server holding the SoftHSM2 token session (server.json "hsm"). Every signature is
/// checked by independent libraries (@noble/curves, ethers v6), and the requests are in the audit log like any other.
/// </summary>
public sealed class HsmKeysApiTests : IAsyncLifetime
{
    private WebApplication _app = null!;
    private ServerConfig _config = null!;
    private string _dir = "";
    private string _token = "";
    private HttpClient _http = null!;

    private static string Env(string name) => Environment.GetEnvironmentVariable(name)
        ?? throw new InvalidOperationException($"{name} is not set: run the tests through ./test.sh, or eval \"$(bash scripts/test-services/softhsm.sh)\" first");

    public async Task InitializeAsync()
    {
        (_app, _config, _dir, _token) = await NodelessServer.StartAsync(c => c.Hsm = new HsmSettings
        {
            ModulePath = Env("CONCLAVE_TEST_HSM_MODULE"),
            TokenLabel = Env("CONCLAVE_TEST_HSM_TOKEN"),
            PinFile = Env("CONCLAVE_TEST_HSM_PIN_FILE"),
            SessionPoolSize = 2,
        });
        _http = new HttpClient { BaseAddress = new Uri("http://" + _config.Listen) };
        _http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", _token);
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await NodelessServer.StopAsync(_app, _dir);
    }

    private async Task<(HttpStatusCode Status, JsonNode Body)> Post(string path, string json)
    {
        using HttpResponseMessage r = await _http.PostAsync(new Uri(path, UriKind.Relative), new StringContent(json, Encoding.UTF8, "application/json"));
        string text = await r.Content.ReadAsStringAsync();
        return (r.StatusCode, JsonNode.Parse(text)!);
    }

    [Fact]
    public async Task HsmKeys_AreCreatedAndSignThroughTheApi_VerifiedIndependently_AndAudited()
    {
        string ecName = "hsm-ec-" + Guid.NewGuid().ToString("N")[..8];
        (HttpStatusCode status, JsonNode ec) = await Post("/v1/keys", $$"""{"name":"{{ecName}}","scheme":"hsm-ecdsa-secp256k1"}""");
        Assert.True(status == HttpStatusCode.Created, ec.ToJsonString());
        Assert.Equal("hsm-ecdsa-secp256k1", ec["scheme"]!.GetValue<string>());
        string address = ec["addresses"]!["ethereum"]!.GetValue<string>();
        string ecKey = ec["publicKey"]!.GetValue<string>();
        Assert.Equal(EthereumAddress.FromPublicKey(Convert.FromHexString(ecKey)), address);

        byte[] digest = SHA256.HashData("liquidate 42"u8);
        (status, JsonNode sig) = await Post($"/v1/keys/{ecName}/sign", $$"""{"digest":"{{Convert.ToHexStringLower(digest)}}"}""");
        Assert.True(status == HttpStatusCode.OK, sig.ToJsonString());
        JsonNode check = NodeInterop.Run("signatures", [new { scheme = "ecdsa-secp256k1", publicKey = ecKey, input = Convert.ToHexStringLower(digest),
            signature = sig["signature"]!.GetValue<string>(), recoveryId = sig["recoveryId"]!.GetValue<int>() }])[0]!;
        Assert.True(check["ok"]!.GetValue<bool>());
        Assert.Equal(address.ToLowerInvariant(), check["address"]!.GetValue<string>());

        string edName = "hsm-ed-" + Guid.NewGuid().ToString("N")[..8];
        (status, JsonNode ed) = await Post("/v1/keys", $$"""{"name":"{{edName}}","scheme":"hsm-ed25519"}""");
        Assert.True(status == HttpStatusCode.Created, ed.ToJsonString());
        Assert.NotNull(ed["addresses"]!["solana"]);
        (status, JsonNode edSig) = await Post($"/v1/keys/{edName}/sign", """{"message":"00ff10"}""");
        Assert.True(status == HttpStatusCode.OK, edSig.ToJsonString());
        check = NodeInterop.Run("signatures", [new { scheme = "ed25519", publicKey = ed["publicKey"]!.GetValue<string>(), input = "00ff10",
            signature = edSig["signature"]!.GetValue<string>() }])[0]!;
        Assert.True(check["ok"]!.GetValue<bool>());

        // The wrong input kind, a derivation path and derive are refused with problems, as for every other key.
        (status, JsonNode p) = await Post($"/v1/keys/{ecName}/sign", """{"message":"00"}""");
        Assert.Equal((HttpStatusCode.BadRequest, "https://conclave.dev/problems/wrong-input-kind"), (status, p["type"]!.GetValue<string>()));
        (status, p) = await Post($"/v1/keys/{edName}/sign", """{"message":"00","path":"0/1"}""");
        Assert.Equal((HttpStatusCode.BadRequest, "https://conclave.dev/problems/unsupported"), (status, p["type"]!.GetValue<string>()));
        (status, p) = await Post($"/v1/keys/{edName}/derive", """{"path":"0/1"}""");
        Assert.Equal((HttpStatusCode.BadRequest, "https://conclave.dev/problems/unsupported"), (status, p["type"]!.GetValue<string>()));

        // Audited like every other key: the intent and the outcome of each signature, with the key's id.
        using HttpResponseMessage auditResponse = await _http.GetAsync(new Uri("/v1/audit?last=50", UriKind.Relative));
        JsonArray audit = JsonNode.Parse(await auditResponse.Content.ReadAsStringAsync())!["entries"]!.AsArray();
        Assert.Contains(audit, e => e!["keyId"]?.GetValue<string>() == ec["id"]!.GetValue<string>() && e["action"]!.GetValue<string>().Contains("sign", StringComparison.Ordinal)
            && e["result"]!.GetValue<string>().StartsWith("completed 200 response-sha256", StringComparison.Ordinal));
        Assert.Contains(audit, e => e!["keyId"]?.GetValue<string>() == ed["id"]!.GetValue<string>() && e["action"]!.GetValue<string>().Contains("sign", StringComparison.Ordinal));
    }

    [Fact]
    public async Task HsmEcdsaKey_SignsThroughRpc_EthersRecoversItsAddress()
    {
        string name = "hsm-rpc-" + Guid.NewGuid().ToString("N")[..8];
        (HttpStatusCode status, JsonNode key) = await Post("/v1/keys", $$"""{"name":"{{name}}","scheme":"hsm-ecdsa-secp256k1"}""");
        Assert.True(status == HttpStatusCode.Created, key.ToJsonString());
        string address = key["addresses"]!["ethereum"]!.GetValue<string>();

        // eth_accounts, eth_signTransaction (EIP-1559 and legacy EIP-155), personal_sign and eth_signTypedData_v4 from ethers v6.
        JsonNode r = NodeInterop.Run("rpc", [new { url = $"http://{_config.Listen}/rpc", token = _token, address, chainId = 8453 }])[0]!;
        Assert.Contains(r["accounts"]!.AsArray(), a => a!.GetValue<string>() == address);
        Assert.Equal(address, r["tx"]!["from"]!.GetValue<string>());
        Assert.Equal("8453", r["tx"]!["chainId"]!.GetValue<string>());
        Assert.Equal(address, r["legacy"]!["from"]!.GetValue<string>());
        Assert.Equal(address, r["messageSigner"]!.GetValue<string>());
        Assert.Equal(address, r["typedSigner"]!.GetValue<string>());

        // eth_sign (address first): ethers recovers the address from the EIP-191 hash of the message.
        (status, JsonNode signed) = await Post("/rpc", $$"""{"jsonrpc":"2.0","id":1,"method":"eth_sign","params":["{{address}}","0x48656c6c6f"]}""");
        Assert.True(status == HttpStatusCode.OK, signed.ToJsonString());
        string hex = signed["result"]!.GetValue<string>()[2..];
        JsonNode check = NodeInterop.Run("signatures", [new { scheme = "ecdsa-secp256k1", publicKey = key["publicKey"]!.GetValue<string>(),
            input = Convert.ToHexStringLower(PersonalMessage.Hash("Hello"u8.ToArray())), signature = hex[..128], recoveryId = Convert.ToInt32(hex[128..], 16) - 27 }])[0]!;
        Assert.True(check["ok"]!.GetValue<bool>());
        Assert.Equal(address.ToLowerInvariant(), check["address"]!.GetValue<string>());
    }

    [Fact]
    public void HsmKeys_ThroughTheCli()
    {
        string name = "hsm-cli-" + Guid.NewGuid().ToString("N")[..8];
        (int exit, string output, string error) = Cli("keys", "create", name, "--scheme", "hsm-ed25519", "--json");
        Assert.True(exit == 0, output + error);
        JsonNode created = JsonNode.Parse(output)!;
        Assert.Equal("hsm-ed25519", created["scheme"]!.GetValue<string>());
        (exit, output, error) = Cli("keys", "sign", name, "--message", "0badc0de", "--json");
        Assert.True(exit == 0, output + error);
        JsonNode check = NodeInterop.Run("signatures", [new { scheme = "ed25519", publicKey = created["publicKey"]!.GetValue<string>(), input = "0badc0de",
            signature = JsonNode.Parse(output)!["signature"]!.GetValue<string>() }])[0]!;
        Assert.True(check["ok"]!.GetValue<bool>());
        (exit, output, _) = Cli("keys", "list");
        Assert.Equal(0, exit);
        Assert.Contains("hsm-ed25519", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AServerWithoutAToken_RefusesHsmKeysWithAReason()
    {
        (WebApplication app, ServerConfig config, string dir, string token) = await NodelessServer.StartAsync();
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri("http://" + config.Listen) };
            http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
            using HttpResponseMessage r = await http.PostAsync(new Uri("/v1/keys", UriKind.Relative),
                new StringContent("""{"name":"no-token","scheme":"hsm-ecdsa-secp256k1"}""", Encoding.UTF8, "application/json"));
            JsonNode p = JsonNode.Parse(await r.Content.ReadAsStringAsync())!;
            Assert.Equal(HttpStatusCode.NotImplemented, r.StatusCode);
            Assert.Contains("no HSM token configured", p["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        }
        finally
        {
            await NodelessServer.StopAsync(app, dir);
        }
    }

    private (int Exit, string Out, string Err) Cli(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(RepoPaths.CliDll);
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["CONCLAVE_TOKEN"] = _token;
        psi.Environment["CONCLAVE_SERVER"] = "http://" + _config.Listen;
        using Process p = Process.Start(psi)!;
        Task<string> o = p.StandardOutput.ReadToEndAsync();
        Task<string> e = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(TimeSpan.FromSeconds(60)));
        return (p.ExitCode, o.Result, e.Result);
    }
}
