using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Conclave.Chains.Ethereum;
using Conclave.Crypto.Memory;
using Conclave.Crypto.Signing;
using Conclave.Node.Config;
using Conclave.Node.Hosting;
using Conclave.Node.Pki;
using Conclave.Node.Protocol;
using Conclave.Node.Threshold.Engine;
using Conclave.Server.Api;
using Conclave.Server.Config;
using Conclave.Server.Coordinator;
using Conclave.Server.Hosting;
using Conclave.Storage;
using Conclave.Storage.Audit;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Conclave.Testing;

namespace Conclave.Server.Tests;

/// <summary>
/// Issue 14 items 7 and 8 through the real cluster (node processes, the server's SQLite store): a key row changed in
/// the database is refused by the API without serving its address; every signature share a node gives is recorded in
/// the node's own audit log and matched to the server's log by `conclave audit reconcile`, which names a share given
/// to a coordinator that did not record it.
/// </summary>
[Collection("api")]
public sealed class IntegrityTests(ApiCluster c)
{
    private const string P = "https://conclave.dev/problems/";

    private string ServerDb => Path.Combine(c.DataDir, "server", "data", ConclaveStore.SqliteFileName);

    private async Task<(HttpStatusCode Status, JsonNode? Body, string Text)> Send(HttpMethod method, string path, string? json = null)
    {
        using var req = new HttpRequestMessage(method, path) { Content = json is null ? null : new StringContent(json, Encoding.UTF8, "application/json") };
        using HttpResponseMessage r = await c.Http.SendAsync(req);
        string text = await r.Content.ReadAsStringAsync();
        return (r.StatusCode, text.Length == 0 ? null : JsonNode.Parse(text), text);
    }

    private async Task<JsonNode> Create(string scheme)
    {
        string name = scheme + "-" + Guid.NewGuid().ToString("N")[..8];
        var (status, body, text) = await Send(HttpMethod.Post, "/v1/keys", $$"""{"name":"{{name}}","scheme":"{{scheme}}"}""");
        Assert.True(status == HttpStatusCode.Created, text);
        return body!;
    }

    private async Task<object?> SqlAsync(string sql, params (string Name, object Value)[] ps)
    {
        await using var conn = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = ServerDb, Pooling = false, DefaultTimeout = 30 }.ToString());
        await conn.OpenAsync();
        await using SqliteCommand cmd = conn.CreateCommand();
        cmd.CommandText = sql;
        foreach (var (n, v) in ps)
        {
            cmd.Parameters.AddWithValue(n, v);
        }

        return await cmd.ExecuteScalarAsync();
    }

    private static void AssertIntegrityProblem((HttpStatusCode Status, JsonNode? Body, string Text) r, string keyId)
    {
        Assert.Equal(HttpStatusCode.InternalServerError, r.Status);
        Assert.Equal(P + "key-integrity", r.Body!["type"]!.GetValue<string>());
        string detail = r.Body!["detail"]!.GetValue<string>();
        Assert.Contains("failed its integrity check", detail, StringComparison.Ordinal);
        Assert.Contains(keyId, detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Key_row_with_a_swapped_public_key_is_refused_and_its_address_never_served()
    {
        JsonNode k = await Create("ecdsa-secp256k1");
        string id = k["id"]!.GetValue<string>(), name = k["name"]!.GetValue<string>();
        byte[] original = (byte[])(await SqlAsync("SELECT public_key FROM keys WHERE id=@id", ("@id", id)))!;
        using SoftwareSigningKey attacker = SignatureSchemes.EcdsaSecp256k1.GenerateKey(random: TestSeed.For("key@82"));
        string attackerAddress = EthereumAddress.FromPublicKey(attacker.PublicKey.ToArray())[2..];

        // Someone with write access to the database swaps in their own key (before issue 14 item 7 the API served it).
        await SqlAsync("UPDATE keys SET public_key=@pk WHERE id=@id", ("@pk", attacker.PublicKey.ToArray()), ("@id", id));
        try
        {
            foreach (var r in new[]
            {
                await Send(HttpMethod.Get, $"/v1/keys/{name}"),
                await Send(HttpMethod.Get, "/v1/keys"),
                await Send(HttpMethod.Post, $"/v1/keys/{name}/sign", """{"message":"00"}"""),
            })
            {
                AssertIntegrityProblem(r, id);
                Assert.DoesNotContain(attackerAddress, r.Text, StringComparison.OrdinalIgnoreCase);
            }

            var rpc = await Send(HttpMethod.Post, "/rpc", """{"jsonrpc":"2.0","id":1,"method":"eth_accounts","params":[]}""");
            Assert.DoesNotContain(attackerAddress, rpc.Text, StringComparison.OrdinalIgnoreCase);
        }
        finally
        {
            await SqlAsync("UPDATE keys SET public_key=@pk WHERE id=@id", ("@pk", original), ("@id", id));
        }

        Assert.Equal(HttpStatusCode.OK, (await Send(HttpMethod.Get, $"/v1/keys/{name}")).Status);
    }

    [Fact]
    public async Task Frost_key_whose_stored_package_does_not_match_its_public_key_is_refused()
    {
        JsonNode k = await Create("frost-ed25519");
        string id = k["id"]!.GetValue<string>(), name = k["name"]!.GetValue<string>();
        IConclaveStore store = c.App.Services.GetRequiredService<IConclaveStore>();

        // A version whose row is genuine (MAC'd through the store) but whose sealed package is another key's.
        JsonNode other = await Create("frost-ed25519");
        byte[] package;
        using (SecretBuffer m = await store.Keys.OpenMaterialAsync(other["id"]!.GetValue<string>()))
        {
            package = m.ReadOnlySpan.ToArray();
        }

        using (SecretBuffer m = SecretBuffer.CopyFrom(package))
        {
            await store.Keys.RotateAsync(id, 1, Convert.FromHexString(k["publicKey"]!.GetValue<string>()), m);
        }

        AssertIntegrityProblem(await Send(HttpMethod.Post, $"/v1/keys/{name}/sign", """{"message":"00"}"""), id);
    }

    [Fact]
    public async Task Every_share_is_in_the_nodes_logs_and_reconcile_names_a_share_the_server_did_not_record()
    {
        JsonNode k = await Create("frost-ed25519");
        string id = k["id"]!.GetValue<string>(), name = k["name"]!.GetValue<string>();
        for (int i = 0; i < 3; i++)
        {
            var s = await Send(HttpMethod.Post, $"/v1/keys/{name}/sign", $$"""{"message":"0{{i}}"}""");
            Assert.Equal(HttpStatusCode.OK, s.Status);
        }

        string[] nodeDirs = [.. Enumerable.Range(1, 3).Select(n => Path.Combine(c.DataDir, $"node-{n}", "data"))];
        var first = await ReconcileAsync(nodeDirs);
        // Only this key's shares: a DKLs23 test of this collection leaves a rogue share of its own key unexplained.
        Assert.All(first, r => Assert.True(r.Verification.Ok, r.Verification.ToString()));
        Assert.DoesNotContain(first.SelectMany(r => r.Unexplained), u => u.KeyId == id);
        Assert.All(first, r => Assert.True(r.Verification.HeadSigned));
        Assert.True(first.Sum(r => r.Shares) >= 6, "2-of-3: at least two shares per signature");

        // A second coordinator holding the server's identity and client certificate (stolen, or a rogue replica that does
        // not write the shared log) asks the nodes directly: the nodes record the shares, the server's log does not.
        ServerConfig cfg = c.Config;
        NodeIdentity identity;
        byte[] sealedIdentity = await File.ReadAllBytesAsync(Path.Combine(cfg.Resolve(cfg.DataDir), "identity.sealed"));
        using (SecretBuffer kek = KekFile.Read(cfg.Resolve(cfg.KekFile)))
        {
            identity = NodeIdentity.Unseal(0, kek.ReadOnlySpan, sealedIdentity);
        }

        using (identity)
        using (var cluster = new Cluster(ClusterManifest.Load(cfg.Resolve(cfg.Cluster)), identity,
            PemFiles.LoadWithKey(cfg.Resolve(cfg.Tls.Certificate), cfg.Resolve(cfg.Tls.Key)), PemFiles.LoadCertificate(cfg.Resolve(cfg.Tls.Ca)), TimeSpan.FromSeconds(20)))
        {
            var rogue = new FrostCoordinator(cluster);
            rogue.Register(c.App.Services.GetRequiredService<KeyService>().Frost.Find(id)!);
            await rogue.SignAsync(id, "rogue message"u8.ToArray(), [], CancellationToken.None);
        }

        var second = await ReconcileAsync(nodeDirs);
        Assert.All(second, r => Assert.True(r.Verification.Ok, r.Verification.ToString()));
        UnexplainedShare[] unexplained = [.. second.SelectMany(r => r.Unexplained).Where(u => u.KeyId == id)];
        Assert.Equal(2, unexplained.Length);
        string rogueHash = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData("rogue message"u8));
        Assert.All(unexplained, u => Assert.Equal((id, rogueHash), (u.KeyId, u.MessageHash)));

        // The same through the CLI, as an operator runs it: exit 4 and one line per unexplained share.
        var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in new[] { RepoPaths.CliDll, "audit", "reconcile", "--data", Path.GetDirectoryName(ServerDb)! }.Concat(nodeDirs.SelectMany(d => new[] { "--node-data", d })))
        {
            psi.ArgumentList.Add(a);
        }

        using Process p = Process.Start(psi)!;
        Task<string> o = p.StandardOutput.ReadToEndAsync(), e = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(TimeSpan.FromSeconds(60)));
        string output = await o;
        Assert.True(p.ExitCode == 4, output + await e);
        Assert.Equal(2, output.Split('\n').Count(l => l.Contains("UNEXPLAINED share", StringComparison.Ordinal) && l.Contains(rogueHash, StringComparison.Ordinal)));

        // And the node's own log verifies with the CLI.
        psi.ArgumentList.Clear();
        foreach (string a in new[] { RepoPaths.CliDll, "audit", "verify", "--data", nodeDirs[0] })
        {
            psi.ArgumentList.Add(a);
        }

        using Process v = Process.Start(psi)!;
        Task<string> vo = v.StandardOutput.ReadToEndAsync(), ve = v.StandardError.ReadToEndAsync();
        Assert.True(v.WaitForExit(TimeSpan.FromSeconds(60)));
        Assert.True(v.ExitCode == 0, await vo + await ve);
        Assert.Contains("head signed", await vo, StringComparison.Ordinal);
    }

    /// <summary>
    /// DKLs23 rounds are reconciled as FROST rounds are (docs/DKLS23.md "Sign audit"): the server appends a "dkls.sign"
    /// entry before it hands the nodes the digest, each node a "dkls.sign-share" entry before its share leaves, and every
    /// share of three API signatures is explained; a rogue coordinator with the server's identity signs one digest
    /// directly and reconcile names exactly its two shares (2-of-3), with the digest's hash.
    /// </summary>
    [Fact]
    public async Task Dkls_shares_are_matched_to_the_servers_dkls_sign_rounds_and_reconcile_names_a_rogue_one()
    {
        string name = "dkls-audit-" + Guid.NewGuid().ToString("N")[..8];
        var (status, body, text) = await Send(HttpMethod.Post, "/v1/keys", $$"""{"name":"{{name}}","scheme":"ecdsa-dkls23","threshold":2,"participants":3}""");
        Assert.True(status == HttpStatusCode.Created, text);
        string id = body!["id"]!.GetValue<string>();
        for (int i = 0; i < 3; i++)
        {
            string digest = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData([(byte)i, 0xd1]));
            var s = await Send(HttpMethod.Post, $"/v1/keys/{name}/sign", $$"""{"digest":"{{digest}}"}""");
            Assert.True(s.Status == HttpStatusCode.OK, s.Text);
        }

        string[] nodeDirs = [.. Enumerable.Range(1, 3).Select(n => Path.Combine(c.DataDir, $"node-{n}", "data"))];
        int keyShares = 0;
        foreach (string dir in nodeDirs)
        {
            await using IConclaveStore node = await ConclaveStore.OpenSqliteAsync(dir, new StoreOptions { ReadOnly = true });
            for (long from = 1; ; )
            {
                IReadOnlyList<AuditEntry> page = await node.Audit.ReadAsync(from, 1000, CancellationToken.None);
                keyShares += page.Count(e => e.Action == SignAuditRecords.DklsNodeAction && e.KeyId == id);
                if (page.Count < 1000)
                {
                    break;
                }

                from = page[^1].Seq + 1;
            }
        }

        Assert.True(keyShares >= 6, $"{keyShares} DKLs23 shares recorded for three signatures of a 2-of-3 key");
        var first = await ReconcileAsync(nodeDirs);
        Assert.All(first, r => Assert.True(r.Verification.Ok, r.Verification.ToString()));
        Assert.DoesNotContain(first.SelectMany(r => r.Unexplained), u => u.KeyId == id);

        ServerConfig cfg = c.Config;
        NodeIdentity identity;
        byte[] sealedIdentity = await File.ReadAllBytesAsync(Path.Combine(cfg.Resolve(cfg.DataDir), "identity.sealed"));
        using (SecretBuffer kek = KekFile.Read(cfg.Resolve(cfg.KekFile)))
        {
            identity = NodeIdentity.Unseal(0, kek.ReadOnlySpan, sealedIdentity);
        }

        byte[] rogueDigest = System.Security.Cryptography.SHA256.HashData("rogue dkls digest"u8);
        using (identity)
        using (var cluster = new Cluster(ClusterManifest.Load(cfg.Resolve(cfg.Cluster)), identity,
            PemFiles.LoadWithKey(cfg.Resolve(cfg.Tls.Certificate), cfg.Resolve(cfg.Tls.Key)), PemFiles.LoadCertificate(cfg.Resolve(cfg.Tls.Ca)), TimeSpan.FromSeconds(20)))
        {
            var rogue = new Conclave.Server.Threshold.Dkls23.DklsCoordinator(new Conclave.Server.Threshold.Engine.ThresholdEngine(cluster));
            rogue.Register(c.App.Services.GetRequiredService<KeyService>().Dkls.Find(id)!);
            await rogue.SignDigestAsync(id, rogueDigest, [], CancellationToken.None);
        }

        var second = await ReconcileAsync(nodeDirs);
        UnexplainedShare[] unexplained = [.. second.SelectMany(r => r.Unexplained).Where(u => u.KeyId == id)];
        Assert.Equal(2, unexplained.Length);
        Assert.All(unexplained, u => Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(rogueDigest)), u.MessageHash));
    }

    private async Task<List<NodeReconciliation>> ReconcileAsync(string[] nodeDirs)
    {
        HashSet<string> rounds;
        await using (IConclaveStore server = await ConclaveStore.OpenSqliteAsync(Path.GetDirectoryName(ServerDb)!, new StoreOptions { ReadOnly = true }))
        {
            rounds = await AuditReconciler.ServerRoundsAsync(server, CancellationToken.None);
        }

        var results = new List<NodeReconciliation>();
        foreach (string dir in nodeDirs)
        {
            await using IConclaveStore node = await ConclaveStore.OpenSqliteAsync(dir, new StoreOptions { ReadOnly = true });
            results.Add(await AuditReconciler.ReconcileNodeAsync(dir, node, rounds, new AuditVerifyOptions(), CancellationToken.None));
        }

        return results;
    }
}
