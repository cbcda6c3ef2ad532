using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using Conclave.Client;
using Conclave.Server.Config;
using Conclave.Server.Coordinator;
using Conclave.Server.Hosting;
using Conclave.Threshold.Frost;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

using static Conclave.Server.Tests.OwnServers;

namespace Conclave.Server.Tests;

/// <summary>
/// Evicting a suspect node through the API, the client and the CLI (docs/API.md "Signer nodes", docs/ROTATION.md):
/// every key the node holds moves away from it and keeps signing under its public key; the node is untrusted in the
/// store (also after a restart), audited, never chosen for a new key until re-admitted; bad requests are 4xx problems.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class EvictionApiTests(VariantNodes fixture) : IClassFixture<VariantNodes>
{
    [Fact]
    public async Task EvictANode_MovesItsKeys_StaysUntrustedAcrossARestart_AndIsAudited()
    {
        ServerConfig config = ServerConfig.Load(fixture.Nodes.Layout.ServerConfigPath);
        (WebApplication app, HttpClient http) = await StartAsync(config);
        string tag = Guid.NewGuid().ToString("N")[..8];
        string wide = "evict-wide-" + tag, pair = "evict-pair-" + tag;
        DeterministicRandomSource challenges = TestSeed.For("attestation challenges");
        try
        {
            // wide: 2-of-3 on nodes 1..3; pair: 2-of-2 on nodes 1 and 2.
            JsonNode w = await PostAsync(http, "/v1/keys", $$"""{"name":"{{wide}}","scheme":"frost-secp256k1"}""", HttpStatusCode.Created);
            JsonNode p = await PostAsync(http, "/v1/keys", $$"""{"name":"{{pair}}","scheme":"frost-ed25519","threshold":2,"participants":2}""", HttpStatusCode.Created);
            byte[] wideKey = Convert.FromHexString(w["publicKey"]!.GetValue<string>());
            byte[] pairKey = Convert.FromHexString(p["publicKey"]!.GetValue<string>());
            await SignAsync(http, wide, wideKey, 1);

            // Bad requests: typed problems, nothing changes.
            await ProblemAsync(http, "/v1/admin/nodes/abc/evict", "{}", 400, "invalid-request");
            await ProblemAsync(http, "/v1/admin/nodes/9/evict", "{}", 404, "not-found");
            await ProblemAsync(http, "/v1/admin/nodes/3/evict", """{"replacement":3}""", 400, "invalid-request");
            await ProblemAsync(http, "/v1/admin/nodes/3/evict", """{"replacement":7}""", 404, "not-found");
            await ProblemAsync(http, "/v1/admin/nodes/3/evict", """{"because":"x"}""", 400, "invalid-request");
            // Node 1 holds the 2-of-2 key: without a replacement it would be left with one holder.
            JsonNode refused = await ProblemAsync(http, "/v1/admin/nodes/1/evict", "{}", 409, "eviction-refused");
            Assert.Contains(p["id"]!.GetValue<string>(), refused["detail"]!.GetValue<string>(), StringComparison.Ordinal);
            Assert.All((await GetAsync(http, "/v1/admin/nodes"))["nodes"]!.AsArray(), n => Assert.Equal("trusted", n!["trust"]!.GetValue<string>()));

            // Evict node 3 through the client: wide moves to 2-of-2 on nodes 1 and 2, pair is untouched.
            using var client = new ConclaveClient(http.BaseAddress!, http.DefaultRequestHeaders.Authorization!.Parameter!);
            Eviction e = await client.EvictNodeAsync(3, reason: "suspected compromise");
            Assert.True(e.Finished);
            Assert.Equal(("untrusted", "suspected compromise", 0), (e.Node.Trust, e.Node.Reason, e.Node.Keys.Count));
            KeyInfo moved = Assert.Single(e.Moved);
            Assert.Equal((wide, 2, 2, 2), (moved.Name, moved.Version, moved.Threshold, moved.Participants));
            Assert.Equal(w["publicKey"]!.GetValue<string>(), moved.PublicKey);
            await SignAsync(http, wide, wideKey, 2);
            await SignAsync(http, pair, pairKey, 1);
            Assert.Equal(1, (await client.GetKeyAsync(pair)).Version);

            // The other nodes were told: node 1 refuses, by itself, a message signed by node 3 (docs/ROTATION.md "What the other nodes do").
            Conclave.Server.Coordinator.NodeCallException refusedByNode = await Assert.ThrowsAsync<Conclave.Server.Coordinator.NodeCallException>(() => RelayFromNodeAsync(3, 1, challenges));
            Assert.Equal((Grpc.Core.StatusCode.PermissionDenied, (uint?)3), (refusedByNode.Status, refusedByNode.Culprit));
            Assert.Contains("node 3 is evicted (untrusted on node 1)", refusedByNode.Message, StringComparison.Ordinal);

            // Evicting again changes nothing; a new key never lands on node 3, and asking for it is refused.
            Assert.Empty((await client.EvictNodeAsync(3)).Moved);
            await ProblemAsync(http, "/v1/keys", $$"""{"name":"evict-three-{{tag}}","scheme":"frost-ed25519","participants":3}""", 409, "node-untrusted");
            JsonNode fresh = await PostAsync(http, "/v1/keys", $$"""{"name":"evict-new-{{tag}}","scheme":"frost-ed25519"}""", HttpStatusCode.Created);
            Assert.Equal(2, fresh["participants"]!.GetValue<int>());
            await ProblemAsync(http, $"/v1/keys/{wide}/reshare", """{"threshold":2,"participants":3}""", 409, "node-untrusted");
            NodeInfo three = (await client.ListNodesAsync()).Single(n => n.Id == 3);
            Assert.Equal(("untrusted", 0), (three.Trust, three.Keys.Count));
            Assert.Contains(pair, (await client.GetNodeAsync(1)).Keys);

            // Audited: the eviction and the key it moved.
            AuditPage audit = await client.ReadAuditTailAsync(200);
            Assert.Contains(audit.Entries, a => a.Action == "node.evict" && a.Result.Contains("node 3 untrusted: suspected compromise", StringComparison.Ordinal));
            Assert.Contains(audit.Entries, a => a.Action == "node.evict.key" && a.KeyId == moved.Id && a.Result.Contains("version 1 -> 2 on nodes 1,2", StringComparison.Ordinal));
        }
        finally
        {
            await StopAsync(app, http);
        }

        // A restarted server on the same store still treats node 3 as untrusted; the moved key signs.
        (app, http) = await StartAsync(config);
        try
        {
            using var client = new ConclaveClient(http.BaseAddress!, http.DefaultRequestHeaders.Authorization!.Parameter!);
            Assert.Equal("untrusted", (await client.GetNodeAsync(3)).Trust);
            await ProblemAsync(http, $"/v1/keys/{wide}/reshare", """{"threshold":2,"participants":3}""", 409, "node-untrusted");
            KeyInfo k = await client.GetKeyAsync(wide);
            await SignAsync(http, wide, Convert.FromHexString(k.PublicKey), 2);

            // The CLI: exit 0 and the node's line; bad input a non-zero exit and one readable line on standard error.
            string token = http.DefaultRequestHeaders.Authorization!.Parameter!;
            (int exit, string stdout, _) = Cli(token, "http://" + config.Listen, "nodes", "list");
            Assert.Equal(0, exit);
            Assert.Contains("untrusted", stdout, StringComparison.Ordinal);
            (exit, _, string stderr) = Cli(token, "http://" + config.Listen, "nodes", "evict", "9");
            Assert.Equal(2, exit);
            Assert.Single(stderr.Trim().Split('\n'));
            Assert.StartsWith("conclave: error: server: there is no signer node 9", stderr, StringComparison.Ordinal);
            (exit, _, stderr) = Cli(token, "http://" + config.Listen, "nodes", "evict", "two");
            Assert.Equal(2, exit);
            Assert.StartsWith("conclave: error:", stderr, StringComparison.Ordinal);
            (exit, stdout, _) = Cli(token, "http://" + config.Listen, "nodes", "evict", "3", "--json");
            Assert.Equal(0, exit);
            Assert.Equal("untrusted", JsonNode.Parse(stdout)!["node"]!["trust"]!.GetValue<string>());

            // Re-admitted: trusted again, audited, and a new key may use it.
            (exit, stdout, _) = Cli(token, "http://" + config.Listen, "nodes", "readmit", "3");
            Assert.Equal(0, exit);
            Assert.Contains("node 3: trusted", stdout, StringComparison.Ordinal);
            Assert.Contains((await client.ReadAuditTailAsync(50)).Entries, a => a.Action == "node.readmit");
            JsonNode all = await PostAsync(http, "/v1/keys", $$"""{"name":"evict-back-{{tag}}","scheme":"frost-ed25519","participants":3}""", HttpStatusCode.Created);
            Assert.Equal(3, all["participants"]!.GetValue<int>());
            await RelayFromNodeAsync(3, 1, challenges); // the other nodes were told of the re-admission: accepted again
        }
        finally
        {
            await StopAsync(app, http);
        }
    }

    /// <summary>
    /// Issue 18: a threshold key is registered with the coordinator on first use, not at start. After a restart with no
    /// signature made, nothing is registered, yet the node list, the eviction check, the eviction itself and the
    /// below-quorum view see every stored key, by the holders the store records for it.
    /// </summary>
    [Fact]
    public async Task KeysNotUsedSinceARestart_AreListedCheckedAndMovedByEviction_AndCountedBelowQuorum()
    {
        ServerConfig config = ServerConfig.Load(fixture.Nodes.Layout.ServerConfigPath);
        string tag = Guid.NewGuid().ToString("N")[..8];
        string wide = "lazy-wide-" + tag, pair = "lazy-pair-" + tag;
        string wideId, pairId, ecdsaId, ecdsa = "lazy-ecdsa-" + tag;
        byte[] wideKey;
        (WebApplication app, HttpClient http) = await StartAsync(config);
        try
        {
            // wide: 2-of-3 on nodes 1..3; pair: 2-of-2 on nodes 1 and 2.
            JsonNode w = await PostAsync(http, "/v1/keys", $$"""{"name":"{{wide}}","scheme":"frost-secp256k1","participants":3}""", HttpStatusCode.Created);
            JsonNode p = await PostAsync(http, "/v1/keys", $$"""{"name":"{{pair}}","scheme":"frost-ed25519","threshold":2,"participants":2}""", HttpStatusCode.Created);
            (wideId, pairId, wideKey) = (w["id"]!.GetValue<string>(), p["id"]!.GetValue<string>(), Convert.FromHexString(w["publicKey"]!.GetValue<string>()));
            ecdsaId = (await PostAsync(http, "/v1/keys", $$"""{"name":"{{ecdsa}}","scheme":"ecdsa-dkls23","threshold":2,"participants":3}""", HttpStatusCode.Created))["id"]!.GetValue<string>();
        }
        finally
        {
            await StopAsync(app, http);
        }

        // pair's row is made as a row written before the store recorded holders: no holders, its MAC recomputed over the
        // other fields by the store's MAC backfill at the next open (the migration path of StoreSuite's MAC test).
        await SqliteExecAsync(config, $"UPDATE keys SET holders=NULL, mac=NULL WHERE id='{pairId}'");
        await SqliteExecAsync(config, "INSERT INTO store_meta (name, value) VALUES ('key_mac_backfill', 'pending')");

        (app, http) = await StartAsync(config);
        try
        {
            var frost = app.Services.GetRequiredService<Conclave.Server.Coordinator.FrostCoordinator>();
            var keys = app.Services.GetRequiredService<Conclave.Server.Api.KeyService>();
            Assert.Null(frost.Find(wideId)); // start-up registered nothing
            Assert.Null(frost.Find(pairId));
            Assert.Null(keys.Dkls.Find(ecdsaId));
            Assert.Equal([1u, 2u, 3u], (await keys.Store.Keys.GetAsync(wideId))!.Holders);
            Assert.Equal([1u, 2u, 3u], (await keys.Store.Keys.GetAsync(ecdsaId))!.Holders);

            // The background pass after start records the old row's holders from its checked package, without registering it.
            await WaitForAsync(async () => (await keys.Store.Keys.GetAsync(pairId))!.Holders is not null, "the old row's holders recorded");
            Assert.Equal([1u, 2u], (await keys.Store.Keys.GetAsync(pairId))!.Holders);
            Assert.Null(frost.Find(pairId));

            // Below quorum: with node 2 down the 2-of-2 key cannot sign, the 2-of-3 key can.
            IReadOnlyList<string> below = await keys.KeysBelowQuorumAsync([1, 3], CancellationToken.None);
            Assert.Contains(pairId, below);
            Assert.DoesNotContain(wideId, below);
            Assert.DoesNotContain(pairId, await keys.KeysBelowQuorumAsync([1, 2, 3], CancellationToken.None));
            Assert.Contains(ecdsaId, await keys.KeysBelowQuorumAsync([1], CancellationToken.None)); // the ecdsa-dkls23 key too

            // An ecdsa-dkls23 key is registered on its first use after the restart, and signs.
            JsonNode sig = await PostAsync(http, $"/v1/keys/{ecdsa}/sign", $$"""{"digest":"{{string.Concat(Enumerable.Repeat("ab", 32))}}"}""");
            Assert.Equal(1, sig["keyVersion"]!.GetValue<int>());
            Assert.NotNull(keys.Dkls.Find(ecdsaId));

            // The node list and the eviction check see both keys without registering them.
            using var client = new ConclaveClient(http.BaseAddress!, http.DefaultRequestHeaders.Authorization!.Parameter!);
            Assert.Contains(pair, (await client.GetNodeAsync(2)).Keys);
            Assert.Contains(wide, (await client.GetNodeAsync(3)).Keys);
            Assert.DoesNotContain(pair, (await client.GetNodeAsync(3)).Keys);
            JsonNode refused = await ProblemAsync(http, "/v1/admin/nodes/2/evict", "{}", 409, "eviction-refused");
            Assert.Contains(pairId, refused["detail"]!.GetValue<string>(), StringComparison.Ordinal);
            Assert.Equal("trusted", (await client.GetNodeAsync(2)).Trust);
            Assert.Null(frost.Find(pairId));
            Assert.Null(frost.Find(wideId));

            // Evicting node 3 moves the key nobody used since the restart; the store records its new holders.
            Eviction e = await client.EvictNodeAsync(3, reason: "issue 18");
            Assert.True(e.Finished);
            Assert.Contains(e.Moved, m => (m.Name, m.Version, m.Threshold, m.Participants) == (wide, 2, 2, 2));
            Assert.DoesNotContain(e.Moved, m => m.Name == pair);
            Assert.Equal([1u, 2u], (await keys.Store.Keys.GetAsync(wideId))!.Holders);
            Assert.Contains(e.Moved, m => (m.Name, m.Version, m.Threshold, m.Participants) == (ecdsa, 2, 2, 2)); // the ecdsa-dkls23 key too
            Assert.Equal([1u, 2u], (await keys.Store.Keys.GetAsync(ecdsaId))!.Holders);
            await SignAsync(http, wide, wideKey, 2);
            Assert.Null(frost.Find(pairId)); // a key the node did not hold is still not registered
        }
        finally
        {
            try
            {
                using var client = new ConclaveClient(http.BaseAddress!, http.DefaultRequestHeaders.Authorization!.Parameter!);
                await client.ReadmitNodeAsync(3); // the other test of this class starts with every node trusted
            }
            finally
            {
                await StopAsync(app, http);
            }
        }
    }

    /// <summary>
    /// ecdsa-dkls23 keys are evicted as FROST keys are: a node that is one of the two holders of a 2-of-2 key is not
    /// evicted without a replacement (refused before it is marked; the key still signs), and a 2-of-3 key is reshared
    /// away from the evicted node, which is down the whole time (so never asked), to the remaining holders: same public
    /// key and Ethereum address, the store's holders without the node, signatures afterwards verify under the key.
    /// </summary>
    [Fact]
    public async Task EvictANode_HoldingEcdsaDkls23Keys_RefusesALoneHolder_AndMovesTheOthersWithoutAskingIt()
    {
        ServerConfig config = ServerConfig.Load(fixture.Nodes.Layout.ServerConfigPath);
        string tag = Guid.NewGuid().ToString("N")[..8];
        // Named to sort first: a refusal names at most 8 keys, in name order, and the other tests of this class look for theirs.
        string wide = "a-dkls-wide-" + tag, pair = "a-dkls-pair-" + tag;
        (WebApplication app, HttpClient http) = await StartAsync(config);
        bool killed = false;
        try
        {
            var keys = app.Services.GetRequiredService<Conclave.Server.Api.KeyService>();
            JsonNode w = await PostAsync(http, "/v1/keys", $$"""{"name":"{{wide}}","scheme":"ecdsa-dkls23","threshold":2,"participants":3}""", HttpStatusCode.Created);
            JsonNode p = await PostAsync(http, "/v1/keys", $$"""{"name":"{{pair}}","scheme":"ecdsa-dkls23","threshold":2,"participants":2}""", HttpStatusCode.Created);
            string wideId = w["id"]!.GetValue<string>(), pairId = p["id"]!.GetValue<string>();
            byte[] wideKey = Convert.FromHexString(w["publicKey"]!.GetValue<string>()), pairKey = Convert.FromHexString(p["publicKey"]!.GetValue<string>());
            string wideAddress = w["addresses"]!["ethereum"]!.GetValue<string>();
            Assert.Equal([1u, 2u, 3u], (await keys.Store.Keys.GetAsync(wideId))!.Holders);
            Assert.Equal([1u, 2u], (await keys.Store.Keys.GetAsync(pairId))!.Holders);
            await EcdsaSignAsync(http, wide, wideKey, 1, "before");

            // The node list names the DKLs23 keys a node holds.
            using var client = new ConclaveClient(http.BaseAddress!, http.DefaultRequestHeaders.Authorization!.Parameter!);
            Assert.Contains(wide, (await client.GetNodeAsync(3)).Keys);
            Assert.Contains(pair, (await client.GetNodeAsync(2)).Keys);
            Assert.DoesNotContain(pair, (await client.GetNodeAsync(3)).Keys);

            // Node 2 holds the 2-of-2 key: refused without a replacement, naming it; nothing marked or moved; it still signs.
            JsonNode refused = await ProblemAsync(http, "/v1/admin/nodes/2/evict", "{}", 409, "eviction-refused");
            Assert.Contains(pairId, refused["detail"]!.GetValue<string>(), StringComparison.Ordinal);
            Assert.Equal("trusted", (await client.GetNodeAsync(2)).Trust);
            Conclave.Storage.Keys.KeyRecord pairRow = (await keys.Store.Keys.GetAsync(pairId))!;
            Assert.Equal(1, pairRow.Version);
            Assert.Equal([1u, 2u], pairRow.Holders);
            await EcdsaSignAsync(http, pair, pairKey, 1, "pair after the refusal");

            // Node 3 is down throughout its eviction and the signatures after it: the run never needs it.
            fixture.Nodes.KillNode(3);
            killed = true;
            Eviction e = await client.EvictNodeAsync(3, reason: "dkls23 suspect");
            Assert.True(e.Finished);
            Assert.Equal(("untrusted", 0), (e.Node.Trust, e.Node.Keys.Count));
            KeyInfo moved = Assert.Single(e.Moved, m => m.Name == wide);
            Assert.Equal((2, 2, 2), (moved.Version, moved.Threshold, moved.Participants));
            Assert.Equal(w["publicKey"]!.GetValue<string>(), moved.PublicKey);
            Assert.DoesNotContain(e.Moved, m => m.Name == pair);
            Conclave.Storage.Keys.KeyRecord row = (await keys.Store.Keys.GetAsync(wideId))!;
            Assert.Equal(2, row.Version);
            Assert.Equal([1u, 2u], row.Holders);
            JsonNode after = await GetAsync(http, $"/v1/keys/{wide}");
            Assert.Equal(w["publicKey"]!.GetValue<string>(), after["publicKey"]!.GetValue<string>());
            Assert.Equal(wideAddress, after["addresses"]!["ethereum"]!.GetValue<string>());
            for (int i = 0; i < 3; i++)
            {
                await EcdsaSignAsync(http, wide, wideKey, 2, $"after {i}");
            }

            await EcdsaSignAsync(http, pair, pairKey, 1, "pair after the eviction");
            Assert.Contains((await client.ReadAuditTailAsync(100)).Entries, a => a.Action == "node.evict.key" && a.KeyId == wideId
                && a.Result.Contains("version 1 -> 2 on nodes 1,2", StringComparison.Ordinal));
        }
        finally
        {
            try
            {
                if (killed)
                {
                    fixture.Nodes.StartNode(3);
                    fixture.Nodes.WaitForAll(TimeSpan.FromSeconds(60));
                }

                using var client = new ConclaveClient(http.BaseAddress!, http.DefaultRequestHeaders.Authorization!.Parameter!);
                await client.ReadmitNodeAsync(3); // the other tests of this class start with every node trusted
            }
            finally
            {
                await StopAsync(app, http);
            }
        }
    }

    /// <summary>
    /// An ecdsa-dkls23 key that cannot move when its node is evicted (too few of its other holders up) is moved by the
    /// background pass once they are back: the node stays untrusted meanwhile and the key keeps its public key.
    /// </summary>
    [Fact]
    public async Task AnEcdsaDkls23KeyThatCouldNotMove_IsMovedByTheBackgroundPass()
    {
        ServerConfig config = ServerConfig.Load(fixture.Nodes.Layout.ServerConfigPath);
        string name = "z-dkls-later-" + Guid.NewGuid().ToString("N")[..8]; // sorted last: never among the keys another test's refusal names
        (WebApplication app, HttpClient http) = await StartAsync(config);
        bool killed = false;
        try
        {
            var keys = app.Services.GetRequiredService<Conclave.Server.Api.KeyService>();
            JsonNode k = await PostAsync(http, "/v1/keys", $$"""{"name":"{{name}}","scheme":"ecdsa-dkls23","threshold":2,"participants":3}""", HttpStatusCode.Created);
            string id = k["id"]!.GetValue<string>();
            byte[] publicKey = Convert.FromHexString(k["publicKey"]!.GetValue<string>());

            // Node 1 down: of the key's other holders only node 2 is up, below its threshold: node 3 is marked, the key stays.
            fixture.Nodes.KillNode(1);
            killed = true;
            await ProblemAsync(http, "/v1/admin/nodes/3/evict", "{}", 503, "quorum-unavailable");
            using var client = new ConclaveClient(http.BaseAddress!, http.DefaultRequestHeaders.Authorization!.Parameter!);
            Assert.Equal("untrusted", (await client.GetNodeAsync(3)).Trust);
            Assert.Contains(name, (await client.GetNodeAsync(3)).Keys);
            Assert.Equal([1u, 2u, 3u], (await keys.Store.Keys.GetAsync(id))!.Holders);

            fixture.Nodes.StartNode(1);
            fixture.Nodes.WaitForAll(TimeSpan.FromSeconds(60));
            killed = false;
            await WaitForAsync(async () =>
            {
                _ = await keys.ContinueEvictionsAsync(CancellationToken.None);
                return (await keys.Store.Keys.GetAsync(id))!.Holders!.SequenceEqual([1u, 2u]);
            }, "the background pass moved the key");
            Conclave.Storage.Keys.KeyRecord row = (await keys.Store.Keys.GetAsync(id))!;
            Assert.Equal((2, 2), (row.Version, row.Threshold));
            Assert.DoesNotContain(name, (await client.GetNodeAsync(3)).Keys);
            Assert.Equal(k["publicKey"]!.GetValue<string>(), (await GetAsync(http, $"/v1/keys/{name}"))["publicKey"]!.GetValue<string>());
            await EcdsaSignAsync(http, name, publicKey, 2, "moved by the background pass");
        }
        finally
        {
            try
            {
                if (killed)
                {
                    fixture.Nodes.StartNode(1);
                    fixture.Nodes.WaitForAll(TimeSpan.FromSeconds(60));
                }

                using var client = new ConclaveClient(http.BaseAddress!, http.DefaultRequestHeaders.Authorization!.Parameter!);
                await client.ReadmitNodeAsync(3); // the other tests of this class start with every node trusted
            }
            finally
            {
                await StopAsync(app, http);
            }
        }
    }

    /// <summary>
    /// Every step boundary of the reshare run that moves a key off an evicted node, in the order the run reaches them:
    /// the engine's (started, prepared, nodes-committed, committed, nodes-retired), the DKG's (round1, reveal, round2,
    /// finish) and, for an ecdsa-dkls23 key, its pairwise setup's (dkg, setup1, setup2, setup3).
    /// </summary>
    public static TheoryData<string, string> MoveBoundaries()
    {
        string[] dkg = ["started", "round1", "reveal", "round2", "finish"];
        string[] decided = ["prepared", "nodes-committed", "committed", "nodes-retired"];
        var cases = new TheoryData<string, string>();
        foreach (string b in dkg.Concat(["dkg", "setup1", "setup2", "setup3"]).Concat(decided))
        {
            cases.Add("ecdsa-dkls23", b);
        }

        foreach (string b in dkg.Concat(decided))
        {
            cases.Add("frost-secp256k1", b);
        }

        return cases;
    }

    /// <summary>
    /// Issue 15: the server stops dead (nothing after the boundary runs, not even an abort) at a boundary of the reshare
    /// run that moves a 2-of-3 key off evicted node 3, which stays up the whole time. When it starts again on the same
    /// store, start-up recovery aborts the run (before its decision) or finishes it (after), and the key is moved in
    /// any case: an aborted move is redone by the background eviction pass. The key ends at version 2, 2-of-2 on nodes 1
    /// and 2 (the store row's holders), with the same public key (and Ethereum address), signs (verified under the public
    /// key), and the move is audited exactly once. Node 3 is never asked: no run of the key names it, it answered
    /// nothing in any run's session, and it still holds version 1, with no run, while nodes 1 and 2 hold version 2 only
    /// (version 1 erased), so its share pairs with nothing. Each case has a store of its own (a PostgreSQL database), so the only key node 3
    /// holds there is the one whose move is cut.
    /// </summary>
    [Theory]
    [MemberData(nameof(MoveBoundaries))]
    public async Task ServerStoppedMidEvictionMove_FinishesOrRedoesTheMoveAfterARestart_AndTheEvictedNodeIsNeverAsked(string scheme, string boundary)
    {
        string admin = AdminConnectionString();
        string db = "conclave_evict_" + Guid.NewGuid().ToString("N")[..12];
        await ExecAsync(admin, $"CREATE DATABASE {db}");
        ServerConfig config = ServerConfig.Load(fixture.Nodes.Layout.ServerConfigPath);
        config.PostgresConnectionString = new Npgsql.NpgsqlConnectionStringBuilder(admin) { Database = db }.ConnectionString;
        bool dkls = scheme == "ecdsa-dkls23";
        bool decided = boundary is "prepared" or "nodes-committed" or "committed" or "nodes-retired";
        string name = "evict-crash-" + Guid.NewGuid().ToString("N")[..8];
        var answeredBy3 = new System.Collections.Concurrent.ConcurrentQueue<string>(); // session ids of node 3's replies
        void Observe(WebApplication a) => a.Services.GetRequiredService<Conclave.Server.Coordinator.Cluster>().ObserveReplies(e =>
        {
            if (e.Sender == 3)
            {
                answeredBy3.Enqueue(Convert.ToHexStringLower(e.SessionId.Span));
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
                Assert.Equal(dkls, address is not null);
                await SignWithAsync(http, name, Convert.FromHexString(publicKeyHex), 1, dkls, "before the eviction");

                // The server dies at the boundary of the move's run.
                await EvictDyingAtAsync(app, http, dkls, boundary, """{"reason":"crash mid-move"}""", Observe);
            }
            finally
            {
                await StopAsync(app, http);
            }

            (app, http) = await StartAsync(config, Observe); // observed from the start: recovery and the eviction pass run at once
            try
            {
                var keys = app.Services.GetRequiredService<Conclave.Server.Api.KeyService>();
                Conclave.Storage.Rotation.IRotationLog log = keys.Store.Rotations;
                await WaitForAsync(async () => (await keys.Store.Keys.GetAsync(keyId))!.Holders!.SequenceEqual([1u, 2u])
                    && (await log.ListForKeyAsync(keyId, 10)).All(r => r.IsFinished), "the key moved off node 3 and every run of it finished");

                // The cut run was aborted (before its decision) or finished (after) by the restarted server; an aborted move
                // was redone by a run of its own. No run of the key names node 3.
                Conclave.Storage.Rotation.RotationRun[] moves = [.. (await log.ListForKeyAsync(keyId, 10))
                    .Where(r => r.Kind == Conclave.Storage.Rotation.RotationKind.Reshare).OrderBy(r => r.CreatedAt)];
                Assert.Equal(decided ? 1 : 2, moves.Length);
                Assert.Equal(decided ? Conclave.Storage.Rotation.RotationState.Retired : Conclave.Storage.Rotation.RotationState.Aborted, moves[0].State);
                Assert.Equal(Conclave.Storage.Rotation.RotationState.Retired, moves[^1].State);
                Assert.All(moves, r => Assert.DoesNotContain(3u, Conclave.Server.Coordinator.RotationPlan.FromBytes(r.Parameters).Everyone));
                Assert.All(moves, r => Assert.Equal((1, 2), (r.FromVersion, r.ToVersion)));

                Conclave.Storage.Keys.KeyRecord row = (await keys.Store.Keys.GetAsync(keyId))!;
                Assert.Equal((2, 2), (row.Version, row.Threshold));
                JsonNode shown = await GetAsync(http, $"/v1/keys/{name}");
                Assert.Equal(publicKeyHex, shown["publicKey"]!.GetValue<string>());
                Assert.Equal(address, shown["addresses"]?["ethereum"]?.GetValue<string>());
                for (int i = 0; i < 2; i++)
                {
                    await SignWithAsync(http, name, Convert.FromHexString(publicKeyHex), 2, dkls, $"after the restart {i}");
                }

                using var client = new ConclaveClient(http.BaseAddress!, http.DefaultRequestHeaders.Authorization!.Parameter!);
                NodeInfo three = await client.GetNodeAsync(3);
                Assert.Equal(("untrusted", "crash mid-move", 0), (three.Trust, three.Reason, three.Keys.Count));
                Assert.Single((await client.ReadAuditTailAsync(100)).Entries, a => a.Action == "node.evict.key" && a.KeyId == keyId
                    && a.Result.Contains("version 1 -> 2 on nodes 1,2", StringComparison.Ordinal));

                // Node 3 answered nothing in any run of the key, holds its version 1 share with no run, and nobody else holds version 1.
                Assert.DoesNotContain(answeredBy3, s => moves.Any(r => r.RunId == s));
                Assert.Equal((1, ""), await NodeKeyAsync(3, keyId));
                Assert.Equal((2, ""), await NodeKeyAsync(1, keyId));
                Assert.Equal((2, ""), await NodeKeyAsync(2, keyId));
            }
            finally
            {
                try
                {
                    using var client = new ConclaveClient(http.BaseAddress!, http.DefaultRequestHeaders.Authorization!.Parameter!);
                    await client.ReadmitNodeAsync(3); // the other tests of this class start with every node trusted
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

    /// <summary>
    /// Issue 15: the <c>node.evict.key</c> entry of a move finished by run recovery cannot be lost to a failed audit write.
    /// The server stops dead after the nodes retired the move's run (nodes-retired: only the store's retire is left), and
    /// the store is made to refuse that entry (a trigger on audit_entries, the write failing as a busy or broken store
    /// would). Started again, recovery cannot retire the run without its entry, so the run stays Committed and keeps
    /// the key locked (before the fix recovery retired the run and the failed entry was never written again); once the
    /// store takes the entry, the next background pass retires the run with it, exactly once, and a restart after that
    /// writes no second one. The key signs at version 2 after. (Nothing is signed while the entry is refused: an entry the
    /// store refuses fails the whole group commit it rides in, so a signature's entries could fail with it.)
    /// </summary>
    [Fact]
    public async Task AMoveFinishedByRecovery_WhoseAuditWriteFails_IsAuditedExactlyOnceWhenTheStoreTakesIt()
    {
        string admin = AdminConnectionString();
        string db = "conclave_evaud_" + Guid.NewGuid().ToString("N")[..12];
        await ExecAsync(admin, $"CREATE DATABASE {db}");
        ServerConfig config = ServerConfig.Load(fixture.Nodes.Layout.ServerConfigPath);
        config.PostgresConnectionString = new Npgsql.NpgsqlConnectionStringBuilder(admin) { Database = db }.ConnectionString;
        string name = "evict-audit-" + Guid.NewGuid().ToString("N")[..8];
        bool readmitted = false;
        try
        {
            (WebApplication app, HttpClient http) = await StartAsync(config);
            string keyId;
            byte[] publicKey;
            try
            {
                JsonNode k = await PostAsync(http, "/v1/keys", $$"""{"name":"{{name}}","scheme":"frost-secp256k1","threshold":2,"participants":3}""", HttpStatusCode.Created);
                (keyId, publicKey) = (k["id"]!.GetValue<string>(), Convert.FromHexString(k["publicKey"]!.GetValue<string>()));
                bool reached = false;
                app.Services.GetRequiredService<FrostCoordinator>().FaultInjection = async (kind, b) =>
                {
                    if (b == "nodes-retired" && kind == Conclave.Storage.Rotation.RotationKind.Reshare && !reached)
                    {
                        reached = true;
                        await StopDeadAsync(app);
                        throw new RotationCrashException(b);
                    }
                };
                try
                {
                    using HttpResponseMessage _ = await http.PostAsync(new Uri("/v1/admin/nodes/3/evict", UriKind.Relative), Json("""{"reason":"audit owed"}"""));
                }
                catch (HttpRequestException)
                {
                    // the server went away mid-request, as it would
                }

                Assert.True(reached, "the move's run reached nodes-retired");
            }
            finally
            {
                await StopAsync(app, http);
            }

            // The store refuses the move's entry from now on (every other entry is written).
            await ExecAsync(config.PostgresConnectionString,
                "CREATE FUNCTION evict_audit_down() RETURNS trigger AS $$ BEGIN IF NEW.action = 'node.evict.key' THEN RAISE EXCEPTION 'audit down'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql; "
                + "CREATE TRIGGER evict_audit_down BEFORE INSERT ON audit_entries FOR EACH ROW EXECUTE FUNCTION evict_audit_down();");
            (app, http) = await StartAsync(config);
            try
            {
                var keys = app.Services.GetRequiredService<Conclave.Server.Api.KeyService>();
                Conclave.Storage.Rotation.IRotationLog log = keys.Store.Rotations;
                Conclave.Storage.Rotation.RotationRun move = Assert.Single(await log.ListForKeyAsync(keyId, 10), r => r.Kind == Conclave.Storage.Rotation.RotationKind.Reshare);
                using var client = new ConclaveClient(http.BaseAddress!, http.DefaultRequestHeaders.Authorization!.Parameter!);
                async Task<int> MoveEntriesAsync() => (await client.ReadAuditTailAsync(500)).Entries.Count(a => a.Action == "node.evict.key" && a.KeyId == keyId);

                // Recovery at start and in two background passes, and once more here: the run is not retired without its entry.
                await Task.Delay(TimeSpan.FromSeconds(7));
                _ = await keys.RecoverRunsAsync(CancellationToken.None);
                Assert.Equal(Conclave.Storage.Rotation.RotationState.Committed, (await log.GetAsync(move.RunId))!.State);
                Assert.Equal(move.RunId, (await log.GetActiveAsync(keyId))?.RunId);
                Assert.Equal("committed", (await GetAsync(http, $"/v1/operations/{move.RunId}"))["state"]!.GetValue<string>());
                Assert.Equal(0, await MoveEntriesAsync());
                Assert.Equal([1u, 2u], (await keys.Store.Keys.GetAsync(keyId))!.Holders); // committed: the row moved

                // The store takes the entry again: the next background pass retires the run with it, once.
                await ExecAsync(config.PostgresConnectionString, "DROP TRIGGER evict_audit_down ON audit_entries; DROP FUNCTION evict_audit_down();");
                await WaitForAsync(async () => (await log.GetAsync(move.RunId))!.State == Conclave.Storage.Rotation.RotationState.Retired, "the background pass retired the move");
                Assert.Equal(1, await MoveEntriesAsync());
                Assert.Contains((await client.ReadAuditTailAsync(500)).Entries, a => a.Action == "node.evict.key" && a.KeyId == keyId
                    && a.Result == "key moved away from node 3: version 1 -> 2 on nodes 1,2");
            }
            finally
            {
                await StopAsync(app, http);
            }

            // A restart (recovery, eviction pass) writes no second entry.
            (app, http) = await StartAsync(config);
            try
            {
                using var client = new ConclaveClient(http.BaseAddress!, http.DefaultRequestHeaders.Authorization!.Parameter!);
                var keys = app.Services.GetRequiredService<Conclave.Server.Api.KeyService>();
                _ = await keys.RecoverRunsAsync(CancellationToken.None);
                _ = await keys.ContinueEvictionsAsync(CancellationToken.None);
                await Task.Delay(TimeSpan.FromSeconds(4));
                Assert.Single((await client.ReadAuditTailAsync(500)).Entries, a => a.Action == "node.evict.key" && a.KeyId == keyId);
                Assert.True((await client.VerifyAuditAsync()).Ok);
                await SignAsync(http, name, publicKey, 2);
                Assert.Equal((1, ""), await NodeKeyAsync(3, keyId));
                await client.ReadmitNodeAsync(3); // the other tests of this class start with every node trusted
                readmitted = true;
            }
            finally
            {
                await StopAsync(app, http);
            }
        }
        finally
        {
            // Failed before the restarted server re-admitted node 3: a server on the same store re-admits it.
            await ReadmitAndDropAsync(config, 3, readmitted, admin, db, repairSql: "DROP TRIGGER IF EXISTS evict_audit_down ON audit_entries; DROP FUNCTION IF EXISTS evict_audit_down();");
        }
    }

    /// <summary>The key's version on <paramref name="node"/> and the id of its unfinished run there (empty: none), from the node's rotation-status step.</summary>
    private Task<(int Version, string Run)> NodeKeyAsync(uint node, string keyId) => NodeKeyAsync(fixture.Nodes, node, keyId);

    /// <summary>
    /// Posts the eviction <paramref name="body"/> of node 3 to a server that dies (<see cref="OwnServers.StopDeadAsync"/>)
    /// when the move's reshare run reaches <paramref name="boundary"/> (the DKLs23 or FROST coordinator's fault hook);
    /// <paramref name="observe"/> runs before the request. Asserts the boundary was reached.
    /// </summary>
    internal static async Task EvictDyingAtAsync(WebApplication app, HttpClient http, bool dkls, string boundary, string body, Action<WebApplication> observe)
    {
        bool reached = false;
        Func<Conclave.Storage.Rotation.RotationKind, string, Task> crash = async (kind, b) =>
        {
            if (b == boundary && kind == Conclave.Storage.Rotation.RotationKind.Reshare && !reached)
            {
                reached = true;
                await StopDeadAsync(app);
                throw new RotationCrashException(b);
            }
        };
        if (dkls)
        {
            app.Services.GetRequiredService<Conclave.Server.Api.KeyService>().Dkls.FaultInjection = crash;
        }
        else
        {
            app.Services.GetRequiredService<Conclave.Server.Coordinator.FrostCoordinator>().FaultInjection = crash;
        }

        observe(app);
        try
        {
            using HttpResponseMessage _ = await http.PostAsync(new Uri("/v1/admin/nodes/3/evict", UriKind.Relative), Json(body));
        }
        catch (HttpRequestException)
        {
            // the server went away mid-request, as it would
        }

        Assert.True(reached, $"the move's run reached {boundary}");
    }

    /// <summary>The key's version on <paramref name="node"/> of <paramref name="nodes"/> and the id of its unfinished run there (empty: none).</summary>
    internal static async Task<(int Version, string Run)> NodeKeyAsync(LocalClusterProcesses nodes, uint node, string keyId)
    {
        Conclave.Server.Coordinator.Cluster c = nodes.Coordinator;
        IReadOnlyList<Conclave.Node.Rpc.Envelope> reply = await c.Node(node).StepAsync(c.Request(Conclave.Server.Coordinator.Cluster.NewSessionId(),
            Conclave.Node.Threshold.Engine.RotationMessages.Status, 9, [node], new Conclave.Node.Protocol.PayloadWriter().String(keyId).ToArray()), [],
            TimeSpan.FromSeconds(20), CancellationToken.None);
        var r = new Conclave.Node.Protocol.PayloadReader(Assert.Single(reply).Payload.Span);
        int version = (int)r.U32("version");
        _ = r.String("state");
        string run = r.String("run");
        _ = r.String("runState");
        r.End();
        return (version, run);
    }

    internal static Task SignWithAsync(HttpClient http, string name, byte[] publicKey, int version, bool dkls, string what) =>
        dkls ? EcdsaSignAsync(http, name, publicKey, version, what) : SignAsync(http, name, publicKey, version);

    /// <summary>
    /// A re-admitted node rejoins an ecdsa-dkls23 key it held before its eviction (docs/ROTATION.md "Re-admitting"): the
    /// key moved to nodes 1 and 2 at the eviction (node 3 up, told it is untrusted, still holding its version-1 share);
    /// after the re-admission a reshare to 2-of-3 makes node 3 a holder again at version 3 (fresh pairwise setup with both
    /// peers), same public key and address, and a signature that needs node 3 (node 1 down) verifies under the key.
    /// </summary>
    [Fact]
    public async Task AReadmittedNode_RejoinsAnEcdsaDkls23KeyItHeldBeforeItsEviction_AndSignsWithIt()
    {
        ServerConfig config = ServerConfig.Load(fixture.Nodes.Layout.ServerConfigPath);
        string name = "z-dkls-back-" + Guid.NewGuid().ToString("N")[..8]; // sorted last: never among the keys another test's refusal names
        (WebApplication app, HttpClient http) = await StartAsync(config);
        bool killed = false, evicted = false;
        try
        {
            var keys = app.Services.GetRequiredService<Conclave.Server.Api.KeyService>();
            using var client = new ConclaveClient(http.BaseAddress!, http.DefaultRequestHeaders.Authorization!.Parameter!);
            JsonNode k = await PostAsync(http, "/v1/keys", $$"""{"name":"{{name}}","scheme":"ecdsa-dkls23","threshold":2,"participants":3}""", HttpStatusCode.Created);
            string id = k["id"]!.GetValue<string>();
            byte[] publicKey = Convert.FromHexString(k["publicKey"]!.GetValue<string>());
            string address = k["addresses"]!["ethereum"]!.GetValue<string>();
            await EcdsaSignAsync(http, name, publicKey, 1, "before the eviction");

            Eviction e = await client.EvictNodeAsync(3, reason: "dkls23 rejoin");
            evicted = true;
            Assert.True(e.Finished);
            Assert.Contains(e.Moved, m => m.Name == name && m.Version == 2 && m.Participants == 2);
            await ProblemAsync(http, $"/v1/keys/{name}/reshare", """{"threshold":2,"participants":3}""", 409, "node-untrusted");

            NodeInfo back = await client.ReadmitNodeAsync(3);
            evicted = false;
            Assert.Equal("trusted", back.Trust);
            JsonNode reshared = await PostAsync(http, $"/v1/keys/{name}/reshare", """{"threshold":2,"participants":3}""");
            Assert.Equal((3, 2, 3), (reshared["version"]!.GetValue<int>(), reshared["threshold"]!.GetValue<int>(), reshared["participants"]!.GetValue<int>()));
            Assert.Equal(k["publicKey"]!.GetValue<string>(), reshared["publicKey"]!.GetValue<string>());
            Assert.Equal(address, reshared["addresses"]!["ethereum"]!.GetValue<string>());
            Assert.Equal([1u, 2u, 3u], (await keys.Store.Keys.GetAsync(id))!.Holders);
            Assert.Contains(name, (await client.GetNodeAsync(3)).Keys);

            // Node 1 down: every signature now needs node 3's version-3 share.
            fixture.Nodes.KillNode(1);
            killed = true;
            for (int i = 0; i < 3; i++)
            {
                await EcdsaSignAsync(http, name, publicKey, 3, $"with the re-admitted node {i}");
            }

            fixture.Nodes.StartNode(1);
            fixture.Nodes.WaitForAll(TimeSpan.FromSeconds(60));
            killed = false;
            await EcdsaSignAsync(http, name, publicKey, 3, "every node up again");
            Assert.Contains((await client.ReadAuditTailAsync(200)).Entries, a => a.Action == "node.readmit");
        }
        finally
        {
            try
            {
                if (killed)
                {
                    fixture.Nodes.StartNode(1);
                    fixture.Nodes.WaitForAll(TimeSpan.FromSeconds(60));
                }

                if (evicted)
                {
                    using var client = new ConclaveClient(http.BaseAddress!, http.DefaultRequestHeaders.Authorization!.Parameter!);
                    await client.ReadmitNodeAsync(3); // the other tests of this class start with every node trusted
                }
            }
            finally
            {
                await StopAsync(app, http);
            }
        }
    }

    /// <summary>Signs a digest with an ecdsa-dkls23 key and checks the signature with libsecp256k1 under <paramref name="publicKey"/>.</summary>
    internal static async Task EcdsaSignAsync(HttpClient http, string name, byte[] publicKey, int version, string what)
    {
        byte[] digest = System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(what));
        JsonNode sig = await PostAsync(http, $"/v1/keys/{name}/sign", $$"""{"digest":"{{Convert.ToHexStringLower(digest)}}"}""");
        Assert.Equal(version, sig["keyVersion"]!.GetValue<int>());
        Assert.Equal(Convert.ToHexStringLower(publicKey), sig["publicKey"]!.GetValue<string>());
        Assert.True(Conclave.Crypto.Secp256k1.EcdsaSecp256k1.Instance.Verify(publicKey, digest, Convert.FromHexString(sig["signature"]!.GetValue<string>())));
    }

    /// <summary>
    /// An attestation request to node <paramref name="to"/> (its challenge the next one of <paramref name="challenges"/>)
    /// relaying a message signed by node <paramref name="sender"/>'s identity key.
    /// </summary>
    private Task<IReadOnlyList<Conclave.Node.Rpc.Envelope>> RelayFromNodeAsync(uint sender, uint to, DeterministicRandomSource challenges)
    {
        var nodeConfig = Conclave.Node.Config.NodeConfig.Load(fixture.Nodes.Layout.NodeConfigPath(sender));
        using Conclave.Crypto.Memory.SecretBuffer kek = Conclave.Node.Hosting.KekFile.Read(nodeConfig.Resolve(nodeConfig.KekFile));
        using Conclave.Node.Protocol.NodeIdentity identity = Conclave.Node.Protocol.NodeIdentity.Unseal(sender, kek.ReadOnlySpan,
            File.ReadAllBytes(Path.Combine(nodeConfig.Resolve(nodeConfig.DataDir), "identity.sealed")));
        byte[] session = Conclave.Server.Coordinator.Cluster.NewSessionId();
        Conclave.Node.Rpc.Envelope relayed = Conclave.Node.Protocol.EnvelopeSigner.Sign(new Conclave.Node.Rpc.Envelope
        {
            SessionId = Google.Protobuf.ByteString.CopyFrom(session),
            Kind = "test.relayed",
            Round = 1,
            Sender = sender,
            Payload = Google.Protobuf.ByteString.CopyFrom([1]),
            IssuedAtUnixMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
        }, identity);
        Conclave.Server.Coordinator.Cluster c = fixture.Nodes.Coordinator;
        return c.Node(to).StepAsync(c.Request(session, Conclave.Node.Protocol.AttestHandler.RequestKind, 0, [to], challenges.Bytes(32)),
            [relayed], TimeSpan.FromSeconds(30), CancellationToken.None);
    }

    private static async Task SqliteExecAsync(ServerConfig config, string sql)
    {
        string db = Path.Combine(config.Resolve(config.DataDir), Conclave.Storage.ConclaveStore.SqliteFileName);
        await using var conn = new Microsoft.Data.Sqlite.SqliteConnection(new Microsoft.Data.Sqlite.SqliteConnectionStringBuilder { DataSource = db, Pooling = false, DefaultTimeout = 30 }.ToString());
        await conn.OpenAsync();
        await using Microsoft.Data.Sqlite.SqliteCommand cmd = conn.CreateCommand();
        cmd.CommandText = sql;
        await cmd.ExecuteNonQueryAsync();
    }

    private static async Task<JsonNode> ProblemAsync(HttpClient http, string path, string json, int status, string type)
    {
        using HttpResponseMessage r = await http.PostAsync(new Uri(path, UriKind.Relative), Json(json));
        string text = await r.Content.ReadAsStringAsync();
        Assert.True((int)r.StatusCode == status, $"{path}: {(int)r.StatusCode} {text}");
        Assert.Equal("application/problem+json", r.Content.Headers.ContentType?.MediaType);
        JsonNode problem = JsonNode.Parse(text)!;
        Assert.Equal("https://conclave.dev/problems/" + type, problem["type"]!.GetValue<string>());
        return problem;
    }

    internal static async Task SignAsync(HttpClient http, string name, byte[] groupKey, int version)
    {
        JsonNode sig = await PostAsync(http, $"/v1/keys/{name}/sign", """{"message":"0102"}""");
        Assert.Equal(version, sig["keyVersion"]!.GetValue<int>());
        Assert.True(FrostCiphersuite.TryGet((await GetAsync(http, $"/v1/keys/{name}"))["scheme"]!.GetValue<string>(), out FrostCiphersuite? suite));
        Assert.True(suite.Verify(groupKey, [1, 2], Convert.FromHexString(sig["signature"]!.GetValue<string>())));
    }

    private static (int Exit, string Out, string Err) Cli(string token, string server, params string[] args) => OwnServers.CliWithToken(token, server, args);
}
