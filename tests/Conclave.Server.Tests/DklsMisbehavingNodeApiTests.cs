using System.Net;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Conclave.Crypto.Secp256k1;
using Conclave.Server.Config;
using Conclave.Server.Hosting;
using Conclave.Storage;
using Conclave.Storage.Audit;
using Conclave.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

using static Conclave.Server.Tests.OwnServers;

namespace Conclave.Server.Tests;

/// <summary>
/// A misbehaving signer node under an ecdsa-dkls23 key, through the REST API (issue 15): node 2 of a real 2-of-3
/// cluster seals a corrupted round-two message to its peer (fault injection "bad-dkls-round2", validly signed and
/// sealed, so only the protocol's round-three checks catch it). A signature whose quorum holds node 2 is the 502
/// node-misbehaved problem naming node 2, with no signature; the audit log names it; the risk service counts it (it did
/// not for DKLs23 keys before, only for FROST keys); a quorum without node 2 signs; healed, every signature verifies.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class DklsMisbehavingNodeApiTests
{
    [Fact]
    public async Task A_node_sending_a_bad_round_two_message_is_named_in_the_problem_the_audit_log_and_the_risk_inputs()
    {
        using var nodes = new LocalClusterProcesses(RepoPaths.CliDll, 3, 2);
        nodes.RestartNode(2, "bad-dkls-round2");
        ServerConfig config = ServerConfig.Load(nodes.Layout.ServerConfigPath);
        (WebApplication app, HttpClient http) = await StartAsync(config);
        try
        {
            string name = "dkls-bad-" + Guid.NewGuid().ToString("N")[..6];
            JsonNode key = await PostAsync(http, "/v1/keys", $$"""{"name":"{{name}}","scheme":"ecdsa-dkls23"}""", HttpStatusCode.Created);
            byte[] publicKey = Convert.FromHexString(key["publicKey"]!.GetValue<string>());

            // The quorum is drawn at random among healthy holders: sign until one holds node 2 (2 of 3 quorums do).
            JsonNode? problem = null;
            for (int i = 0; i < 20 && problem is null; i++)
            {
                byte[] digest = SHA256.HashData(TestSeed.Bytes(32, "dkls-bad@" + i));
                using HttpResponseMessage r = await http.PostAsync(new Uri($"/v1/keys/{name}/sign", UriKind.Relative), Json($$"""{"digest":"{{Convert.ToHexStringLower(digest)}}"}"""));
                JsonNode body = JsonNode.Parse(await r.Content.ReadAsStringAsync())!;
                if (r.StatusCode == HttpStatusCode.BadGateway)
                {
                    problem = body;
                }
                else
                {
                    Assert.Equal(HttpStatusCode.OK, r.StatusCode); // a quorum of nodes 1 and 3
                    Assert.True(EcdsaSecp256k1.Instance.Verify(publicKey, digest, Convert.FromHexString(body["signature"]!.GetValue<string>())));
                }
            }

            Assert.NotNull(problem);
            Assert.EndsWith("node-misbehaved", problem!["type"]!.GetValue<string>(), StringComparison.Ordinal);
            Assert.Equal([2u], problem["culprits"]!.AsArray().Select(c => c!.GetValue<uint>()));
            Assert.Null(problem["signature"]);

            IConclaveStore store = app.Services.GetRequiredService<IConclaveStore>();
            long head = (await store.Audit.GetHeadAsync()).Seq;
            IReadOnlyList<AuditEntry> entries = await store.Audit.ReadAsync(1, (int)head + 10);
            Assert.Contains(entries, a => a.Action == "sign.culprit" && a.Result is { } result && result.StartsWith("culprit node 2", StringComparison.Ordinal));

            JsonNode risk = await GetAsync(http, "/v1/risk");
            Assert.True(risk["inputs"]!["culpritNodes"]!.GetValue<int>() >= 1, risk.ToJsonString());

            // Healed: every signature verifies, whichever quorum is drawn.
            nodes.RestartNode(2, null);
            for (int i = 0; i < 4; i++)
            {
                byte[] digest = SHA256.HashData(TestSeed.Bytes(32, "dkls-healed@" + i));
                JsonNode sig = await PostAsync(http, $"/v1/keys/{name}/sign", $$"""{"digest":"{{Convert.ToHexStringLower(digest)}}"}""");
                Assert.True(EcdsaSecp256k1.Instance.Verify(publicKey, digest, Convert.FromHexString(sig["signature"]!.GetValue<string>())));
            }
        }
        finally
        {
            await StopAsync(app, http);
        }
    }
}
