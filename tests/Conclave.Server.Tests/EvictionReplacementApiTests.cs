using System.Collections.Concurrent;
using System.Net;
using System.Text.Json.Nodes;
using Conclave.Client;
using Conclave.Server.Config;
using Conclave.Server.Coordinator;
using Conclave.Server.Hosting;
using Conclave.Storage;
using Conclave.Storage.Keys;
using Conclave.Storage.Rotation;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

using static Conclave.Server.Tests.OwnServers;

namespace Conclave.Server.Tests;

/// <summary>Four signer-node processes: a 2-of-3 key on nodes 1–3 and node 4 free to replace an evicted holder.</summary>
public sealed class FourVariantNodes : IDisposable
{
    public LocalClusterProcesses Nodes { get; } = new(RepoPaths.CliDll, 4, 2);

    public void Dispose() => Nodes.Dispose();
}

/// <summary>
/// Evicting a node with a replacement named, with the server stopped in the middle of the move (issue 15,
/// docs/ROTATION.md "Evicting a suspect node"): the key keeps its size, the replacement joins it, and the evicted node is
/// never asked.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class EvictionReplacementApiTests(FourVariantNodes fixture) : IClassFixture<FourVariantNodes>
{
    /// <summary>
    /// The boundaries of the move's run at which a replacement changes what a restart finds; the others are the same as
    /// without one and are covered by <c>EvictionApiTests.ServerStoppedMidEvictionMove_…</c> (every boundary, both
    /// protocols). For ecdsa-dkls23: <c>round1</c> (node 4 has joined the DKG: run agreement key announced, nothing
    /// stored; <c>reveal</c>, <c>round2</c>, <c>finish</c>, <c>dkg</c>, <c>setup1</c> and <c>setup2</c> leave node 4
    /// likewise nothing durable, only more state in memory, and are left out), <c>setup3</c> (node 4 holds its new share durably as a pending key, the only boundary before the decision where
    /// it does: the aborted run must leave it nothing, and the redo must give it one share), and the decided ones
    /// <c>prepared</c> (node 4 pending, run decided), <c>nodes-committed</c> (node 4's share current, the store's row
    /// not yet moved), <c>nodes-retired</c> (the old holders erased version 1, the run not yet retired in the store).
    /// For frost-secp256k1, whose pending share is stored only by the step that leads to Prepared (so no boundary
    /// before the decision leaves node 4 a pending key): <c>finish</c> (node 4 confirmed its DKG share, the run is
    /// aborted and redone) and <c>committed</c> (the store's row names node 4; the retire is left to recovery). The
    /// engine's commit and retire steps are protocol-neutral, so one protocol each covers them. Seven cases instead of
    /// the 22 of the theory without a replacement. Measured on the shared 2-core machine (2026-12-02, load average
    /// 21–24): the seven took 1 min 33 s for <c>dotnet test</c> with this filter, starting the four node processes
    /// included (5–17 s a case, the first with the nodes' start); eight cases (with <c>dkg</c>) had taken 2 min 5 s.
    /// </summary>
    public static TheoryData<string, string> ReplacementBoundaries() => new()
    {
        { "ecdsa-dkls23", "round1" },
        { "ecdsa-dkls23", "setup3" },
        { "ecdsa-dkls23", "prepared" },
        { "ecdsa-dkls23", "nodes-committed" },
        { "ecdsa-dkls23", "nodes-retired" },
        { "frost-secp256k1", "finish" },
        { "frost-secp256k1", "committed" },
    };

    /// <summary>
    /// The server stops dead at a boundary of the reshare run that moves a 2-of-3 key on nodes 1–3 off evicted node 3
    /// to replacement node 4 (every node up the whole time). Started again on the same store, it aborts the run (before
    /// its decision, and the background eviction pass redoes the move) or finishes it (after). The key ends 2-of-3 on
    /// nodes 1, 2 and 4 at version 2 (the store row's holders), with the same public key (and Ethereum address), and
    /// signs with node 1 left out of the quorum (resting), so by nodes 2 and 4, node 4 answering in the signing session;
    /// the move is audited <c>node.evict.key</c> exactly once. Node 3 answered nothing in any run of the key and still
    /// holds version 1 with no run; nodes 1, 2 and 4 hold version 2 with no run; node 4's own store holds exactly one
    /// version of the key (2, with its share, Active) and no unfinished run of it, whether or not a run was aborted
    /// and redone. Each case has a store of its own (a PostgreSQL database).
    /// </summary>
    [Theory]
    [MemberData(nameof(ReplacementBoundaries))]
    public async Task ServerStoppedMidEvictionMoveWithAReplacement_FinishesOrRedoesTheMove_TheReplacementHoldsOneCurrentShare(string scheme, string boundary)
    {
        string admin = AdminConnectionString();
        string db = "conclave_evrep_" + Guid.NewGuid().ToString("N")[..12];
        await ExecAsync(admin, $"CREATE DATABASE {db}");
        ServerConfig config = ServerConfig.Load(fixture.Nodes.Layout.ServerConfigPath);
        config.PostgresConnectionString = new Npgsql.NpgsqlConnectionStringBuilder(admin) { Database = db }.ConnectionString;
        bool dkls = scheme == "ecdsa-dkls23";
        bool decided = boundary is "prepared" or "nodes-committed" or "committed" or "nodes-retired";
        string name = "evict-rep-" + Guid.NewGuid().ToString("N")[..8];
        var answered = new ConcurrentQueue<(uint Node, string Session)>();
        void Observe(WebApplication a) => a.Services.GetRequiredService<Cluster>().ObserveReplies(e =>
        {
            if (e.Sender is 3 or 4)
            {
                answered.Enqueue((e.Sender, Convert.ToHexStringLower(e.SessionId.Span)));
            }
        });

        bool readmitted = false;
        try
        {
            (WebApplication app, HttpClient http) = await StartAsync(config);
            string keyId, publicKeyHex;
            string? address;
            try
            {
                JsonNode k = await PostAsync(http, "/v1/keys", $$"""{"name":"{{name}}","scheme":"{{scheme}}","threshold":2,"participants":3}""", HttpStatusCode.Created);
                (keyId, publicKeyHex, address) = (k["id"]!.GetValue<string>(), k["publicKey"]!.GetValue<string>(), k["addresses"]?["ethereum"]?.GetValue<string>());
                Assert.Equal([1u, 2u, 3u], (await app.Services.GetRequiredService<Api.KeyService>().Store.Keys.GetAsync(keyId))!.Holders);
                await EvictionApiTests.SignWithAsync(http, name, Convert.FromHexString(publicKeyHex), 1, dkls, "before the eviction");

                // The server dies at the boundary of the move's run.
                await EvictionApiTests.EvictDyingAtAsync(app, http, dkls, boundary, """{"reason":"crash mid-move","replacement":4}""", Observe);
            }
            finally
            {
                await StopAsync(app, http);
            }

            (app, http) = await StartAsync(config, Observe); // observed from the start: recovery and the eviction pass run at once
            try
            {
                var keys = app.Services.GetRequiredService<Api.KeyService>();
                IRotationLog log = keys.Store.Rotations;
                await WaitForAsync(async () => (await keys.Store.Keys.GetAsync(keyId))!.Holders!.SequenceEqual([1u, 2u, 4u])
                    && (await log.ListForKeyAsync(keyId, 10)).All(r => r.IsFinished), "the key moved to node 4 and every run of it finished");

                // The cut run was aborted (before its decision) or finished (after); an aborted move was redone by a run of
                // its own, with the same committee. No run of the key names node 3; every one names node 4 as a receiver.
                RotationRun[] moves = [.. (await log.ListForKeyAsync(keyId, 10)).Where(r => r.Kind == RotationKind.Reshare).OrderBy(r => r.CreatedAt)];
                Assert.Equal(decided ? 1 : 2, moves.Length);
                Assert.Equal(decided ? RotationState.Retired : RotationState.Aborted, moves[0].State);
                Assert.Equal(RotationState.Retired, moves[^1].State);
                Assert.All(moves, r =>
                {
                    RotationPlan plan = RotationPlan.FromBytes(r.Parameters);
                    Assert.DoesNotContain(3u, plan.Everyone);
                    Assert.Equal([1u, 2u, 4u], plan.Receivers);
                    Assert.Equal((3u, 1, 2), (plan.Evicting, r.FromVersion, r.ToVersion));
                });

                KeyRecord row = (await keys.Store.Keys.GetAsync(keyId))!;
                Assert.Equal((2, 2, 3), (row.Version, row.Threshold, row.Participants));
                JsonNode shown = await GetAsync(http, $"/v1/keys/{name}");
                Assert.Equal(publicKeyHex, shown["publicKey"]!.GetValue<string>());
                Assert.Equal(address, shown["addresses"]?["ethereum"]?.GetValue<string>());

                // Signed by nodes 2 and 4: node 1 rests (left out of every quorum while the others can make one).
                FrostCoordinator frost = app.Services.GetRequiredService<FrostCoordinator>();
                frost.Health.DownTime = TimeSpan.FromMinutes(5);
                frost.Health.MarkDown(1);
                for (int i = 0; i < 2; i++)
                {
                    int before = answered.Count(a => a.Node == 4);
                    await EvictionApiTests.SignWithAsync(http, name, Convert.FromHexString(publicKeyHex), 2, dkls, $"by nodes 2 and 4 after the restart {i}");
                    Assert.True(answered.Count(a => a.Node == 4) > before, "node 4 answered in the signature");
                }

                using var client = new ConclaveClient(http.BaseAddress!, http.DefaultRequestHeaders.Authorization!.Parameter!);
                NodeInfo three = await client.GetNodeAsync(3);
                Assert.Equal(("untrusted", "crash mid-move", 0, (uint?)4), (three.Trust, three.Reason, three.Keys.Count, three.Replacement));
                Assert.Contains(name, (await client.GetNodeAsync(4)).Keys);
                Assert.Single((await client.ReadAuditTailAsync(200)).Entries, a => a.Action == "node.evict.key" && a.KeyId == keyId
                    && a.Result.Contains("version 1 -> 2 on nodes 1,2,4", StringComparison.Ordinal));

                // Node 3 answered nothing in any run of the key and keeps only its version 1; the others hold version 2.
                Assert.DoesNotContain(answered, a => a.Node == 3 && moves.Any(r => r.RunId == a.Session));
                Assert.Contains(answered, a => a.Node == 4 && a.Session == moves[^1].RunId);
                Assert.Equal((1, ""), await EvictionApiTests.NodeKeyAsync(fixture.Nodes, 3, keyId));
                foreach (uint n in new uint[] { 1, 2, 4 })
                {
                    Assert.Equal((2, ""), await EvictionApiTests.NodeKeyAsync(fixture.Nodes, n, keyId));
                }

                // Node 4's own store: one version of the key, current, with its share; every run of the key there finished.
                var nodeConfig = Conclave.Node.Config.NodeConfig.Load(fixture.Nodes.Layout.NodeConfigPath(4));
                await using IConclaveStore four = await ConclaveStore.OpenSqliteAsync(nodeConfig.Resolve(nodeConfig.DataDir), new StoreOptions { ReadOnly = true });
                KeyRecord held = (await four.Keys.GetAsync(keyId))!;
                Assert.Equal((2, KeyState.Active), (held.Version, held.State));
                KeyVersionRecord only = Assert.Single(await four.Keys.GetVersionsAsync(keyId));
                Assert.Equal((2, true), (only.Version, only.HasMaterial));
                Assert.All(await four.Rotations.ListForKeyAsync(keyId, 10), r => Assert.True(r.IsFinished, $"node 4's run {r.RunId} is {r.State}"));
                Assert.Null(await four.Rotations.GetActiveAsync(keyId));
            }
            finally
            {
                try
                {
                    using var client = new ConclaveClient(http.BaseAddress!, http.DefaultRequestHeaders.Authorization!.Parameter!);
                    await client.ReadmitNodeAsync(3); // the next case starts with every node trusted
                    readmitted = true;
                }
                finally
                {
                    await StopAsync(app, http);
                }
            }
        }
        finally
        {
            // Failed before the restarted server re-admitted node 3: a server on the same store re-admits it.
            await ReadmitAndDropAsync(config, 3, readmitted, admin, db);
        }
    }
}
