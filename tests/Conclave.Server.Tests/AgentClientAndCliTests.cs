using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Conclave.Client;
using Conclave.Policy.HttpSignatures;
using Microsoft.Extensions.DependencyInjection;

namespace Conclave.Server.Tests;

/// <summary>Conclave.Client signing as an agent (<see cref="AgentSigningHandler"/>) and `conclave agents`, against a real server.</summary>
public sealed class AgentClientAndCliTests(NodelessServer server) : IClassFixture<NodelessServer>
{
    private ConclaveClient Admin() => new(new Uri(server.BaseUrl + "/"), server.Token);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task The_client_signs_every_request_as_an_agent(bool p256)
    {
        string id = p256 ? "client-agent-p256" : "client-agent-ed";
        using HttpSigningKey key = p256 ? HttpSigningKey.EcdsaP256(TestSeed.P256("p256 agent key")) : HttpSigningKey.Ed25519FromSeed(TestSeed.Bytes(32, "agent key"));
        using ConclaveClient admin = Admin();
        await admin.CreatePrincipalAsync(new CreatePrincipalRequest(id, "agent", null, new ScopeInfo(["*"], [], ["liquidate"])));
        await admin.CreatePrincipalAsync(new CreatePrincipalRequest(id + "-other", "agent"));
        CredentialInfo cred = await admin.AddCredentialAsync(id, new AddCredentialRequest(HttpSignatureAlgorithms.Name(key.Algorithm), Convert.ToBase64String([.. key.PublicKey.PublicKey])));
        CredentialInfo other = await admin.AddCredentialAsync(id + "-other", new AddCredentialRequest("ed25519", "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="));
        Assert.Equal("active", cred.State);

        using ConclaveClient agent = ConclaveClient.ForAgent(new Uri(server.BaseUrl + "/"), key, cred.KeyId);
        // Its own credential: renewed, with a body (the Content-Digest covers it).
        CredentialInfo renewed = await agent.RenewCredentialAsync(id, cred.KeyId, 3600);
        Assert.True(renewed.LeaseExpiresAt < DateTimeOffset.UtcNow.AddSeconds(3700));
        // Past authentication onto a signing route (the key does not exist: 404, not 401/403).
        ConclaveApiException e = await Assert.ThrowsAsync<ConclaveApiException>(() => agent.SignAsync("no-such-key", new SignRequest(Message: "cafe")));
        Assert.Equal("https://conclave.dev/problems/unknown-key", e.Type);
        // Roles: an agent may not list keys or touch another's credential.
        e = await Assert.ThrowsAsync<ConclaveApiException>(() => agent.ListKeysAsync());
        Assert.Equal((403, "https://conclave.dev/problems/forbidden"), (e.Status, e.Type));
        e = await Assert.ThrowsAsync<ConclaveApiException>(() => agent.RevokeCredentialAsync(id + "-other", other.KeyId));
        Assert.Equal(403, e.Status);

        // It revokes its own credential; then it is refused.
        Assert.Equal("revoked", (await agent.RevokeCredentialAsync(id, cred.KeyId)).State);
        e = await Assert.ThrowsAsync<ConclaveApiException>(() => agent.RenewCredentialAsync(id, cred.KeyId));
        Assert.Equal(401, e.Status);
        Assert.Contains("revoked", e.Detail, StringComparison.Ordinal);
    }

    /// <summary>The ethers v6 agent example of docs/POLICY.md, run with Node: it authenticates through /rpc, and a wrong key is refused.</summary>
    [Fact]
    public async Task The_ethers_agent_example_in_policy_md_authenticates_through_rpc_and_a_wrong_key_is_refused()
    {
        var created = await server.SendAsync(HttpMethod.Post, "/v1/keys", """{"name":"ethers-agent-key","scheme":"ecdsa-secp256k1"}""");
        Assert.True(created.Status == System.Net.HttpStatusCode.Created, created.Text);
        string address = created.Body!["addresses"]!["ethereum"]!.GetValue<string>();
        byte[] seed = TestSeed.Bytes(32, "agent key");
        using HttpSigningKey key = HttpSigningKey.Ed25519FromSeed(seed);
        using ConclaveClient admin = Admin();
        await admin.CreatePrincipalAsync(new CreatePrincipalRequest("ethers-bot", "agent", null, new ScopeInfo(["*"], [], ["*"])));
        CredentialInfo cred = await admin.AddCredentialAsync("ethers-bot", new AddCredentialRequest("ed25519", Convert.ToBase64String([.. key.PublicKey.PublicKey])));

        string doc = File.ReadAllText(Path.Combine(RepoPaths.Root, "docs", "POLICY.md"));
        System.Text.RegularExpressions.Match m = System.Text.RegularExpressions.Regex.Match(doc, @"<!-- example: ethers-agent -->\s*```js\n(.*?)```", System.Text.RegularExpressions.RegexOptions.Singleline);
        Assert.True(m.Success, "docs/POLICY.md has no ethers-agent example");
        string code = m.Groups[1].Value;
        Assert.Contains("preflightFunc", code, StringComparison.Ordinal);
        Assert.DoesNotContain("Authorization", code, StringComparison.Ordinal);

        static string Pem(byte[] seed32) =>
            "-----BEGIN PRIVATE KEY-----\n" + Convert.ToBase64String([.. Convert.FromHexString("302e020100300506032b657004220420"), .. seed32]) + "\n-----END PRIVATE KEY-----\n";
        var env = new Dictionary<string, string> { ["CONCLAVE_URL"] = server.BaseUrl, ["AGENT_KEY_ID"] = cred.KeyId, ["AGENT_KEY_PEM"] = Pem(seed) };
        var wrongEnv = new Dictionary<string, string>(env) { ["AGENT_KEY_PEM"] = Pem(TestSeed.Bytes(32, "wrong key")) };
        JsonArray results = Conclave.Testing.NodeInterop.Run("agentsnippet", [new { code, env }, new { code, env = wrongEnv }]);

        JsonNode ok = results[0]!;
        Assert.True(ok["error"] is null, ok["error"]?.ToString());
        string[] printed = [.. ok["lines"]!.AsArray().Select(l => l!.GetValue<string>())];
        string[] words = Assert.Single(printed).Split(' ');
        Assert.Equal("0x1", words[1]);
        Assert.Contains(address, words[0].Split(','), StringComparer.OrdinalIgnoreCase);

        JsonNode refused = results[1]!;
        Assert.Empty(refused["lines"]!.AsArray());
        Assert.Contains("401", refused["error"]!.GetValue<string>(), StringComparison.Ordinal);

        // The server saw the agent, and refused the wrong key as a bad signature.
        await server.App.Services.GetRequiredService<Conclave.Server.Api.DenialAudit>().FlushAsync();
        var (_, audit, _, _) = await server.SendAsync(HttpMethod.Get, "/v1/audit?last=200");
        Assert.Contains(audit!["entries"]!.AsArray(), e => e!["actor"]!.GetValue<string>() == "ethers-bot" && e["action"]!.GetValue<string>() == "POST /rpc");
        Assert.Contains(audit["entries"]!.AsArray(), e => e!["result"]!.GetValue<string>().StartsWith("unauthorized (bad-signature)", StringComparison.Ordinal));
    }

    private (int Exit, string Out, string Err) Cli(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(RepoPaths.CliDll);
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["CONCLAVE_TOKEN"] = server.Token;
        psi.Environment["CONCLAVE_SERVER"] = server.BaseUrl;
        using Process p = Process.Start(psi)!;
        Task<string> o = p.StandardOutput.ReadToEndAsync();
        Task<string> e = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(TimeSpan.FromSeconds(60)));
        return (p.ExitCode, o.Result, e.Result);
    }

    [Fact]
    public async Task Cli_agents_add_list_renew_revoke_and_the_credential_file_signs_requests()
    {
        string dir = Path.Combine(Path.GetTempPath(), "conclave-agents-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        try
        {
            string file = Path.Combine(dir, "keeper.json");
            var add = Cli("agents", "add", "keeper-1", "--key", "*", "--operation", "liquidate", "--operation", "margin-call", "--key-out", file);
            Assert.True(add.Exit == 0, add.Err);
            Assert.Contains("keeper-1", add.Out, StringComparison.Ordinal);
            if (!OperatingSystem.IsWindows())
            {
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
            }

            JsonNode doc = JsonNode.Parse(await File.ReadAllTextAsync(file))!;
            string keyId = doc["keyId"]!.GetValue<string>();

            // The credential file signs requests as the agent.
            using (HttpSigningKey key = HttpSigningKey.Ed25519FromSeed(Convert.FromBase64String(doc["privateKey"]!.GetValue<string>())))
            using (ConclaveClient agent = ConclaveClient.ForAgent(new Uri(server.BaseUrl + "/"), key, keyId))
            {
                Assert.Equal("active", (await agent.RenewCredentialAsync("keeper-1", keyId)).State);
            }

            // P-256 too (the file holds PKCS#8).
            string p256File = Path.Combine(dir, "hedger.json");
            Assert.Equal(0, Cli("agents", "add", "hedger-1", "--algorithm", "ecdsa-p256-sha256", "--key-out", p256File, "--lease-seconds", "600").Exit);
            JsonNode p256 = JsonNode.Parse(await File.ReadAllTextAsync(p256File))!;
            var ecdsa = ECDsa.Create();
            ecdsa.ImportPkcs8PrivateKey(Convert.FromBase64String(p256["privateKey"]!.GetValue<string>()), out _);
            using (HttpSigningKey key = HttpSigningKey.EcdsaP256(ecdsa))
            using (ConclaveClient agent = ConclaveClient.ForAgent(new Uri(server.BaseUrl + "/"), key, p256["keyId"]!.GetValue<string>()))
            {
                Assert.Equal("active", (await agent.RenewCredentialAsync("hedger-1", p256["keyId"]!.GetValue<string>(), 600)).State);
            }

            var list = Cli("agents", "list", "--json");
            Assert.True(list.Exit == 0, list.Err);
            JsonNode keeper = JsonNode.Parse(list.Out)!.AsArray().Single(a => a!["id"]!.GetValue<string>() == "keeper-1")!;
            Assert.Equal(["liquidate", "margin-call"], keeper["scope"]!["operations"]!.AsArray().Select(o => o!.GetValue<string>()));
            Assert.Equal(0, Cli("agents", "list").Exit);

            var renew = Cli("agents", "renew", "keeper-1", keyId, "--lease-seconds", "86400");
            Assert.True(renew.Exit == 0, renew.Err);
            Assert.Contains($"keeper-1 {keyId}: active", renew.Out, StringComparison.Ordinal);
            var revoke = Cli("agents", "revoke", "keeper-1", keyId);
            Assert.True(revoke.Exit == 0, revoke.Err);
            Assert.Contains("revoked", revoke.Out, StringComparison.Ordinal);

            // Bad input: a non-zero exit and one readable line.
            foreach (var (args, expected) in new (string[] Args, string Expected)[]
            {
                (["agents", "renew", "keeper-1", keyId], "revoked"),
                (["agents", "revoke", "keeper-1", "no-such-key"], "has no credential"),
                (["agents", "add", "bad id!", "--key-out", Path.Combine(dir, "x.json")], "id must be"),
                (["agents", "add", "keeper-1", "--key-out", Path.Combine(dir, "y.json")], "already exists"),
                (["agents", "add", "keeper-2", "--key-out", file], "never overwritten"),
                (["agents", "add", "keeper-3", "--algorithm", "rsa", "--key-out", Path.Combine(dir, "z.json")], "--algorithm"),
                (["agents", "add", "keeper-4", "--operation", "steal", "--key-out", Path.Combine(dir, "w.json")], "scope.operations[0]"),
                (["agents", "add", "keeper-5"], "--key-out"),
                (["agents", "renew", "keeper-1", keyId, "--lease-seconds", "5"], "leaseSeconds"),
            })
            {
                var r = Cli(args);
                Assert.True(r.Exit != 0, $"{string.Join(' ', args)} exited 0");
                Assert.Contains(expected, r.Err, StringComparison.Ordinal);
                Assert.Single(r.Err.Trim().Split('\n'));
            }

            Assert.False(File.Exists(Path.Combine(dir, "x.json")));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
