using System.Net;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Conclave.Crypto.Secp256k1;
using Conclave.Server.Config;
using Conclave.Server.Hosting;
using Conclave.Storage;
using Conclave.Storage.Audit;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

using static Conclave.Server.Tests.OwnServers;

namespace Conclave.Server.Tests;

/// <summary>
/// Attack cases of the DKLs23 catalogue through the REST API (docs/DKLS23.md "Attacks through node processes"), beyond the
/// round-two flip of DklsMisbehavingNodeApiTests: a 2-of-2 ecdsa-dkls23 key on two real node processes; node 2 runs
/// as the test node host (tests/Conclave.Node.FaultyNode) with one catalogue fault at a time, so every tampered message
/// is validly signed and sealed by node 2 and node 1's check refuses it. Each signature request is a 502 problem+json
/// node-misbehaved naming node 2, with no signature, and the server's audit log gets a sign.culprit entry naming it;
/// healed, the key signs (node 1 banned nobody).
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class DklsAttackApiTests
{
    /// <summary>Fault (DklsFaultCatalogue) and the check of node 1 that fails.</summary>
    private static readonly (string Fault, string Check)[] Cases =
    [
        ("gamma-u", "GammaUCheck"),           // Γ^u shifted (DKLs23 Protocol 3.6, round three, first consistency check)
        ("pk-shifted", "GammaVCheck"),        // pk_i + G committed to and opened: Σ pk ≠ PK, caught by the second Γ check
        ("opening", "CommitmentMismatch"),    // R_i + G opened without committing to it
        ("rvole-tau", "RvoleCheck"),          // a τ value of the random VOLE (Protocol 5.2)
        ("round1-short", "MalformedMessage"), // a round-one body one byte short
        ("header-from-zero", "InvalidParticipant"), // a round-one header naming party 0 as its sender
    ];

    [Fact]
    public async Task Each_attack_is_a_502_naming_the_node_with_a_sign_culprit_audit_entry_and_the_healed_key_signs()
    {
        using var nodes = new LocalClusterProcesses(RepoPaths.CliDll, 2, 2);
        ServerConfig config = ServerConfig.Load(nodes.Layout.ServerConfigPath);
        (WebApplication app, HttpClient http) = await StartAsync(config);
        try
        {
            string name = "dkls-attacks-" + Guid.NewGuid().ToString("N")[..6];
            JsonNode key = await PostAsync(http, "/v1/keys", $$"""{"name":"{{name}}","scheme":"ecdsa-dkls23","threshold":2,"participants":2}""", HttpStatusCode.Created);
            byte[] publicKey = Convert.FromHexString(key["publicKey"]!.GetValue<string>());
            IConclaveStore store = app.Services.GetRequiredService<IConclaveStore>();

            // Node 2 runs as the test node host for the whole test, its fault chosen through a file (NodeFaultFile), not
            // restarted per fault.
            var faults = new NodeFaultFile(Path.Combine(nodes.DataDir, "node-2-fault"));
            nodes.KillNode(2);
            nodes.StartNodeWith(2, RepoPaths.FaultyNodeDll, faults.HostArguments);
            nodes.WaitForAll(TimeSpan.FromSeconds(60));
            foreach ((string fault, string check) in Cases)
            {
                long before = (await store.Audit.GetHeadAsync()).Seq;
                faults.Choose("--dkls-fault", fault);

                byte[] digest = SHA256.HashData(TestSeed.Bytes(32, "dkls-attack-api@" + fault));
                using HttpResponseMessage r = await http.PostAsync(new Uri($"/v1/keys/{name}/sign", UriKind.Relative), Json($$"""{"digest":"{{Convert.ToHexStringLower(digest)}}"}"""));
                string text = await r.Content.ReadAsStringAsync();
                Assert.True(r.StatusCode == HttpStatusCode.BadGateway, $"{fault}: {(int)r.StatusCode} {text}");
                Assert.Equal("application/problem+json", r.Content.Headers.ContentType?.MediaType);
                JsonNode problem = JsonNode.Parse(text)!;
                Assert.EndsWith("node-misbehaved", problem["type"]!.GetValue<string>(), StringComparison.Ordinal);
                Assert.Equal([2u], problem["culprits"]!.AsArray().Select(c => c!.GetValue<uint>()));
                Assert.Null(problem["signature"]);
                Assert.Contains(check, text, StringComparison.Ordinal);

                IReadOnlyList<AuditEntry> entries = await store.Audit.ReadAsync(before + 1, 1000);
                Assert.Contains(entries, a => a.Action == "sign.culprit" && a.Result is { } result && result.StartsWith("culprit node 2", StringComparison.Ordinal));

                faults.Clear();
                byte[] healed = SHA256.HashData(TestSeed.Bytes(32, "dkls-attack-api-healed@" + fault));
                JsonNode sig = await PostAsync(http, $"/v1/keys/{name}/sign", $$"""{"digest":"{{Convert.ToHexStringLower(healed)}}"}""");
                Assert.True(EcdsaSecp256k1.Instance.Verify(publicKey, healed, Convert.FromHexString(sig["signature"]!.GetValue<string>())), fault);
            }
        }
        finally
        {
            await StopAsync(app, http);
        }
    }
}
