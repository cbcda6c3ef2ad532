using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Conclave.Crypto.Memory;
using Conclave.Node.Hosting;
using Conclave.Node.Protocol;
using Conclave.Server.Config;
using Conclave.Server.Hosting;
using Conclave.Storage;
using Conclave.Storage.Audit;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace Conclave.Server.Tests;

/// <summary>
/// Rotating the server audit log's checkpoint key (docs/ROTATION.md "Rotating the audit log's checkpoint key"):
/// POST /v1/admin/audit/rotate-key hands over to a fresh key, twice in a row; the log verifies on the server and
/// offline pinned to each of the three keys; a restart signs on with the last key; a rotation a stopped server left
/// between writing the next key and the handover is finished at the next start, once.
/// </summary>
public sealed class AuditKeyRotationTests
{
    [Fact]
    public async Task The_checkpoint_key_rotates_twice_survives_restarts_and_the_log_verifies_pinned_to_every_key()
    {
        (WebApplication app, ServerConfig config, string dir, string token) = await NodelessServer.StartAsync(c => c.AuditCheckpointInterval = 3);
        string dataDir = config.Resolve(config.DataDir);
        try
        {
            using HttpClient http = Client(config, token);
            await ActivityAsync(http, "a");
            Assert.True(await VerifiesOnServerAsync(http));

            // Positive control of the role check: the route exists and needs the admin token.
            using (var anonymous = new HttpClient { BaseAddress = new Uri("http://" + config.Listen) })
            {
                using HttpResponseMessage refused = await anonymous.PostAsync(new Uri("/v1/admin/audit/rotate-key", UriKind.Relative), null);
                Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
            }

            string first = Convert.ToHexStringLower(app.Services.GetRequiredService<Api.ServerIdentityKey>().PublicKey);
            JsonNode one = await RotateAsync(http);
            Assert.Equal(first, (string)one["oldPublicKey"]!);
            string second = (string)one["newPublicKey"]!;
            Assert.NotEqual(first, second);
            Assert.Equal("ed25519", (string)one["scheme"]!);
            Assert.True(File.Exists(Path.Combine(dataDir, AuditKeys.CurrentFile)));
            Assert.False(File.Exists(Path.Combine(dataDir, AuditKeys.NextFile)));
            await ActivityAsync(http, "b");

            // The second rotation through the CLI.
            (int exit, string stdout, string stderr) = OwnServers.CliWithToken(token, "http://" + config.Listen, "audit", "rotate-key", "--json");
            Assert.True(exit == 0, stderr);
            JsonNode two = JsonNode.Parse(stdout)!;
            Assert.Equal(second, (string)two["oldPublicKey"]!);
            string third = (string)two["newPublicKey"]!;
            (exit, _, stderr) = OwnServers.CliWithToken("not-the-token", "http://" + config.Listen, "audit", "rotate-key");
            Assert.NotEqual(0, exit);
            Assert.Single(stderr.Trim().Split('\n'));
            await ActivityAsync(http, "c");
            Assert.True(await VerifiesOnServerAsync(http));

            // A restart loads the last key and signs on with it.
            await app.StopAsync();
            await app.DisposeAsync();
            app = await ServerHost.BuildAsync(config);
            await app.StartAsync();
            using HttpClient again = Client(config, token);
            await ActivityAsync(again, "d");
            Assert.True(await VerifiesOnServerAsync(again));
            await AssertOfflineAsync(dataDir, [first, second, third], handovers: 2, lastKey: third);

            // A rotation a stopped server left half done: the next key written, no handover yet. The next start finishes it.
            await app.StopAsync();
            await app.DisposeAsync();
            string fourth;
            using (SecretBuffer kek = KekFile.Read(config.Resolve(config.KekFile)))
            using (NodeIdentity next = NodeIdentity.Generate(0))
            {
                Conclave.Storage.OwnerOnly.WriteAllBytes(Path.Combine(dataDir, AuditKeys.NextFile), next.Seal(kek.ReadOnlySpan));
                fourth = Convert.ToHexStringLower(next.IdentityPublicKey.Span);
            }

            app = await ServerHost.BuildAsync(config);
            await app.StartAsync();
            Assert.False(File.Exists(Path.Combine(dataDir, AuditKeys.NextFile)));
            using HttpClient third2 = Client(config, token);
            await ActivityAsync(third2, "e");
            Assert.True(await VerifiesOnServerAsync(third2));
            await app.StopAsync();
            await app.DisposeAsync();
            await AssertOfflineAsync(dataDir, [first, second, third, fourth], handovers: 3, lastKey: fourth);

            // And once only: a further restart writes no handover.
            app = await ServerHost.BuildAsync(config);
            await app.StartAsync();
            await app.StopAsync();
            await app.DisposeAsync();
            await AssertOfflineAsync(dataDir, [first, fourth], handovers: 3, lastKey: fourth);
            app = await ServerHost.BuildAsync(config);
            await app.StartAsync();
        }
        finally
        {
            await NodelessServer.StopAsync(app, dir);
        }
    }

    private static HttpClient Client(ServerConfig config, string token)
    {
        var http = new HttpClient { BaseAddress = new Uri("http://" + config.Listen) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return http;
    }

    /// <summary>A few audited requests: server-held keys created and read.</summary>
    private static async Task ActivityAsync(HttpClient http, string tag)
    {
        for (int i = 0; i < 3; i++)
        {
            using var body = new StringContent($$"""{"name":"audit-rot-{{tag}}{{i}}","scheme":"ecdsa-secp256k1"}""", Encoding.UTF8, "application/json");
            using HttpResponseMessage r = await http.PostAsync(new Uri("/v1/keys", UriKind.Relative), body);
            Assert.Equal(HttpStatusCode.Created, r.StatusCode);
        }
    }

    private static async Task<JsonNode> RotateAsync(HttpClient http)
    {
        using HttpResponseMessage r = await http.PostAsync(new Uri("/v1/admin/audit/rotate-key", UriKind.Relative), null);
        string text = await r.Content.ReadAsStringAsync();
        Assert.True(r.StatusCode == HttpStatusCode.OK, text);
        return JsonNode.Parse(text)!;
    }

    private static async Task<bool> VerifiesOnServerAsync(HttpClient http)
    {
        using HttpResponseMessage r = await http.GetAsync(new Uri("/v1/audit/verify", UriKind.Relative));
        string text = await r.Content.ReadAsStringAsync();
        Assert.True(r.StatusCode == HttpStatusCode.OK, text);
        JsonNode body = JsonNode.Parse(text)!;
        Assert.True((bool)body["ok"]!, text);
        Assert.True((long)body["checkpoints"]! > 0, text);
        return true;
    }

    /// <summary>Offline, with the server stopped or running: the log verifies pinned to each key; its handovers and head key.</summary>
    private static async Task AssertOfflineAsync(string dataDir, string[] pins, int handovers, string lastKey)
    {
        await using IConclaveStore store = await ConclaveStore.OpenSqliteAsync(dataDir, new StoreOptions { ReadOnly = true });
        foreach (string pin in pins)
        {
            AuditVerificationResult r = await store.Audit.VerifyAsync(new AuditVerifyOptions { TrustedCheckpointKey = Convert.FromHexString(pin) });
            Assert.True(r.Ok, pin[..8] + ": " + r);
        }

        IReadOnlyList<AuditEntry> entries = await store.Audit.ReadAsync(1, 100_000);
        Assert.Equal(handovers, entries.Count(e => e.Action == AuditKeyHandover.Action));
        AuditAnchor head = await store.Audit.GetAnchorAsync();
        Assert.Equal(lastKey, Convert.ToHexStringLower(head.PublicKey));
    }
}
