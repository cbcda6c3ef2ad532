using System.Diagnostics;
using Conclave.Node.Protocol;
using Conclave.Node.Rpc;
using Conclave.Server.Coordinator;
using Conclave.Server.Hosting;
using Conclave.Storage.Rotation;
using Conclave.Threshold.Frost;
using Conclave.Threshold.Frost.Ciphersuites;
using Microsoft.Data.Sqlite;
using Xunit.Abstractions;

namespace Conclave.Node.Tests;

/// <summary>
/// Chaos with real node processes (docs/ROTATION.md "Tested"). A node process is killed with SIGKILL (Process.Kill:
/// kill -9) while many rotation runs are in flight, each stopped at its own random step boundary of a refresh, a reshare
/// or a repair (every run involves the killed node): one kill -9 is a kill point for every run in flight, so a node restart
/// (the expensive part) serves a whole batch of points. For about half the runs the server dies at the same moment (the
/// coordinator is stopped dead at that boundary, as a killed server process would be); the others go on against the dead
/// node as far as they can. The node is then started again on its store and every unfinished run is recovered by a new
/// coordinator with the same run log (what the server does at start). After each batch: no run is unfinished, every key
/// signs under its unchanged public key, every holder reports the coordinator's version, Active (an aborted repair leaves
/// the lost node holding nothing, and a clean repair then succeeds), and the sealed share of every version a run retired
/// or moved away is found in none of the nodes' database files (conclave.db, -wal, -shm), byte for byte.
/// CI: 4 batches of 50 points (200 kill points, 4 node restarts); CONCLAVE_LONG_TESTS=1: 20 batches (1,000). The seed
/// derives from the run seed (CONCLAVE_TEST_SEED) and is printed; CONCLAVE_ROTATION_SEED replays it under any run seed;
/// the last line of the output gives the measured cost.
/// </summary>
[Collection(FiveNodeCluster.Sequential)]
public sealed class NodeChaosTests(FiveNodeCluster fixture, ITestOutputHelper output) : IClassFixture<FiveNodeCluster>
{
    private const int PointsPerBatch = 50;
    private static readonly string[] DkgBoundaries = ["started", "round1", "reveal", "round2", "finish", "prepared", "nodes-committed", "committed", "nodes-retired"];
    private static readonly string[] RepairBoundaries = ["started", "deltas", "sigmas", "finish", "prepared", "nodes-committed", "committed", "nodes-retired"];
    private static readonly uint[] AllNodes = [1, 2, 3, 4, 5];
    private readonly LocalClusterProcesses _c = fixture.Cluster;

    [Fact]
    public async Task NodeKilledWithManyRunsInFlight_WithAndWithoutAServerCrash_EveryKeySignsNodesAgreeAndNoRetiredShareRemains()
    {
        int batches = Environment.GetEnvironmentVariable("CONCLAVE_LONG_TESTS") == "1" ? 20 : 4;
        int seed = RotationSeed.Choose("kill points", output);
        var rng = new Random(seed);
        DeterministicRandomSource messages = TestSeed.For("messages"), dealer = TestSeed.For("dealer of the repaired keys");
        var runs = new InMemoryRotationLog(); // the server store's run log, which outlives a crashed server
        string tag = Guid.NewGuid().ToString("N")[..6];

        // Keys that are refreshed and reshared again and again (2-of-3 committees that move around the five nodes).
        var setup = new FrostCoordinator(_c.Coordinator) { Runs = runs, PoolBatch = 2 };
        var rotating = new List<FrostKeyInfo>();
        for (int i = 0; i < PointsPerBatch; i += 10)
        {
            rotating.AddRange(await Task.WhenAll(Enumerable.Range(i, 10).Select(j => setup.CreateKeyAsync($"chaos-{tag}-{j}",
                j % 2 == 0 ? FrostCiphersuite.Secp256k1Sha256 : FrostCiphersuite.Ed25519Sha512, 2, [1, 2, 3], CancellationToken.None))));
        }

        var groupKeys = rotating.ToDictionary(k => k.KeyId, k => k.PublicKeyPackage.VerificationKey);
        var clock = Stopwatch.StartNew();
        int points = 0, serverCrashes = 0, repairs = 0;
        TimeSpan restarts = TimeSpan.Zero;
        for (int batch = 0; batch < batches; batch++)
        {
            uint victim = (uint)rng.Next(1, 6);
            var plans = new List<Point>();
            var usedKeys = new HashSet<string>();
            for (int p = 0; p < PointsPerBatch; p++)
            {
                int kind = rng.Next(3);
                bool serverCrash = rng.Next(2) == 0;
                if (kind == 2)
                {
                    // Repair: a 2-of-5 key whose share on one node is lost; the victim is the lost node or a helper.
                    uint lost = rng.Next(2) == 0 ? victim : (uint)rng.Next(1, 6);
                    uint[] helpers = [.. AllNodes.Where(n => n != lost).Take(2)];
                    if (lost != victim && !helpers.Contains(victim))
                    {
                        lost = victim;
                    }

                    var owner = new FrostCoordinator(_c.Coordinator) { Runs = runs, PoolBatch = 2 };
                    FrostCiphersuite suite = p % 2 == 0 ? FrostCiphersuite.Ed25519Sha512 : FrostCiphersuite.Secp256k1Sha256;
                    FrostKeyInfo key = await LostShareKeys.ImportWithoutAsync(_c, owner, $"chaos-repair-{tag}-{batch}-{p}", suite, lost, AllNodes, 2, dealer);
                    groupKeys[key.KeyId] = key.PublicKeyPackage.VerificationKey;
                    plans.Add(new Point(owner, key, "repair", RepairBoundaries[rng.Next(RepairBoundaries.Length)], serverCrash, lost, null));
                    repairs++;
                    continue;
                }

                // Refresh (if the key's committee holds the victim) or reshare to a committee that holds it.
                FrostKeyInfo k = rotating.First(r => !usedKeys.Contains(r.KeyId));
                usedKeys.Add(k.KeyId);
                var coordinator = new FrostCoordinator(_c.Coordinator) { Runs = runs, PoolBatch = 2 };
                coordinator.Register(k);
                uint[]? committee = null;
                if (kind == 1 || !k.Nodes.Contains(victim))
                {
                    committee = [.. AllNodes.Where(n => n != victim).OrderBy(_ => rng.Next()).Take(2).Append(victim).Order()];
                }

                plans.Add(new Point(coordinator, k, committee is null ? "refresh" : "reshare", DkgBoundaries[rng.Next(DkgBoundaries.Length)], serverCrash, 0, committee));
            }

            // What each holder stores of each key's current version, before the batch: the sealed share to look for later.
            var sealedBefore = new List<(uint Node, string KeyId, int Version, byte[] Ciphertext)>();
            foreach (Point pt in plans.Where(pt => pt.Kind != "repair"))
            {
                foreach (uint n in pt.Key.Nodes)
                {
                    sealedBefore.Add((n, pt.Key.KeyId, pt.Key.Version, SealedShare(n, pt.Key.KeyId, pt.Key.Version)));
                }
            }

            // Every run goes until its boundary and waits there; then the victim is killed and the runs go on (or their
            // server dies with the node).
            var killed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var arrivals = new List<Task>();
            var running = new List<Task<string>>();
            foreach (Point pt in plans)
            {
                var arrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                arrivals.Add(arrived.Task);
                pt.Coordinator.FaultInjection = async (_, b) =>
                {
                    if (b != pt.Boundary)
                    {
                        return;
                    }

                    arrived.TrySetResult();
                    await killed.Task;
                    if (pt.ServerCrash)
                    {
                        throw new RotationCrashException(b);
                    }
                };
                running.Add(RunAsync(pt, arrived));
            }

            await Task.WhenAll(arrivals).WaitAsync(TimeSpan.FromMinutes(5));
            _c.KillNode(victim);
            killed.SetResult();
            string[] outcomes = await Task.WhenAll(running).WaitAsync(TimeSpan.FromMinutes(5));
            points += plans.Count;
            serverCrashes += plans.Count(pt => pt.ServerCrash);
            output.WriteLine($"batch {batch}: kill -9 node {victim}; " + string.Join("; ", plans.Zip(outcomes, (pt, o) => $"{pt.Kind} {pt.Key.KeyId[^4..]} at {pt.Boundary}{(pt.ServerCrash ? " +server" : "")}: {o}")));

            // The node comes back on its store; a new server (new coordinators, the same run log) recovers every run.
            var restart = Stopwatch.StartNew();
            _c.StartNode(victim);
            _c.WaitForAll(TimeSpan.FromSeconds(90));
            restarts += restart.Elapsed;
            var next = new Dictionary<string, FrostCoordinator>();
            foreach (Point pt in plans)
            {
                var c = new FrostCoordinator(_c.Coordinator) { Runs = runs, PoolBatch = 2 };
                c.Register(pt.Coordinator.Find(pt.Key.KeyId)!);
                next[pt.Key.KeyId] = c;
            }

            await Task.WhenAll((await runs.ListUnfinishedAsync()).Select(r => next[r.KeyId].ResumeAsync(r.RunId, CancellationToken.None)));
            Assert.Empty(await runs.ListUnfinishedAsync());

            byte[][] toSign = [.. plans.Select(_ => messages.Bytes(32))]; // drawn in plan order, not in the order the checks run
            await Task.WhenAll(plans.Select(async (pt, i) =>
            {
                FrostCoordinator c = next[pt.Key.KeyId];
                if (pt.Kind == "repair" && (await StatusAsync(pt.Lost, pt.Key.KeyId)).State != "Active")
                {
                    // Aborted: the lost node holds nothing (no pending share left behind); a clean repair now succeeds.
                    Assert.Equal("Absent", (await StatusAsync(pt.Lost, pt.Key.KeyId)).State);
                    await c.RepairAsync(pt.Key.KeyId, pt.Lost, CancellationToken.None);
                }

                FrostKeyInfo after = c.Find(pt.Key.KeyId)!;
                byte[] groupKey = groupKeys[pt.Key.KeyId];
                Assert.Equal(groupKey, after.PublicKeyPackage.VerificationKey);
                byte[] msg = toSign[i];
                byte[] sig = await c.SignAsync(pt.Key.KeyId, msg, CancellationToken.None);
                Assert.True(after.Suite.Verify(groupKey, msg, sig), $"{pt.Key.KeyId}, seed {seed}");
                foreach (uint n in after.Nodes)
                {
                    // (A node that was down when its run was aborted keeps its record of the run until the key's next
                    // run starts; it holds nothing that signs.)
                    (int version, string state, _) = await StatusAsync(n, pt.Key.KeyId);
                    Assert.True((version, state) == (after.Version, "Active"), $"node {n} holds {pt.Key.KeyId} at {version} {state}, not {after.Version}; seed {seed}");
                }

                if (pt.Kind != "repair")
                {
                    rotating[rotating.FindIndex(r => r.KeyId == pt.Key.KeyId)] = after;
                }
            }));

            // No version that a run retired (or moved away from a node) is readable in that node's database files.
            var files = AllNodes.ToDictionary(n => n, DatabaseFiles);
            foreach ((uint node, string keyId, int version, byte[] ciphertext) in sealedBefore)
            {
                FrostKeyInfo now = rotating.Single(r => r.KeyId == keyId);
                if (now.Version == version && now.Nodes.Contains(node))
                {
                    // Aborted: still the current version, and the scan finds it (the check below can see a share).
                    Assert.NotNull(FileHolding(files[node], ciphertext));
                    continue;
                }

                string? holding = FileHolding(files[node], ciphertext);
                Assert.True(holding is null, $"node {node} still stores the sealed share of {keyId} v{version} in {holding}; seed {seed}");
            }
        }

        output.WriteLine($"{points} kill points ({serverCrashes} with a server crash, {repairs} repairs) in {batches} node restarts; " +
            $"{clock.Elapsed.TotalSeconds:F1} s in all, {restarts.TotalSeconds:F1} s restarting the node ({restarts.TotalSeconds / batches:F1} s each), " +
            $"{(clock.Elapsed - restarts).TotalMilliseconds / points:F0} ms per point otherwise");
    }

    private static async Task<string> RunAsync(Point pt, TaskCompletionSource arrived)
    {
        try
        {
            _ = pt.Kind switch
            {
                "refresh" => await pt.Coordinator.RefreshAsync(pt.Key.KeyId, CancellationToken.None),
                "reshare" => await pt.Coordinator.ReshareAsync(pt.Key.KeyId, 2, pt.Committee!, CancellationToken.None),
                _ => await pt.Coordinator.RepairAsync(pt.Key.KeyId, pt.Lost, CancellationToken.None),
            };
            return "finished";
        }
        catch (RotationCrashException)
        {
            return "server died";
        }
        catch (Exception e) when (e is NodeCallException or CulpritException or QuorumUnavailableException)
        {
            return "stopped: " + e.GetType().Name;
        }
        finally
        {
            arrived.TrySetResult(); // a run that ended before its boundary releases the batch too
        }
    }

    /// <summary>The sealed share (ciphertext column) a node stores for a key version, read from its SQLite file.</summary>
    private byte[] SealedShare(uint node, string keyId, int version)
    {
        using var db = new SqliteConnection($"Data Source={Path.Combine(DataDir(node), "conclave.db")};Mode=ReadOnly;Pooling=False");
        db.Open();
        using SqliteCommand cmd = db.CreateCommand();
        cmd.CommandText = "SELECT ciphertext FROM key_secrets WHERE key_id=$k AND version=$v";
        cmd.Parameters.AddWithValue("$k", keyId);
        cmd.Parameters.AddWithValue("$v", version);
        return cmd.ExecuteScalar() as byte[] ?? throw new InvalidOperationException($"node {node} stores no share of {keyId} v{version}");
    }

    /// <summary>The node's database files (main, -wal, -shm, journal), read whole as they are on disk now.</summary>
    private Dictionary<string, byte[]> DatabaseFiles(uint node)
    {
        var files = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (string f in Directory.GetFiles(DataDir(node), "conclave.db*"))
        {
            // SQLite deletes -wal and -shm when its last connection closes: a file listed a moment ago may be gone (and
            // then holds nothing).
            try
            {
                using var s = new FileStream(f, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                using var m = new MemoryStream();
                s.CopyTo(m);
                files[Path.GetFileName(f)] = m.ToArray();
            }
            catch (FileNotFoundException)
            {
            }
        }

        return files;
    }

    /// <summary>The file that holds <paramref name="ciphertext"/>, if any: any 32-byte window of it (AEAD output, never found by chance).</summary>
    private static string? FileHolding(Dictionary<string, byte[]> files, byte[] ciphertext)
    {
        foreach ((string name, byte[] bytes) in files)
        {
            for (int at = 0; at + 32 <= ciphertext.Length; at += 32)
            {
                if (bytes.AsSpan().IndexOf(ciphertext.AsSpan(at, 32)) >= 0)
                {
                    return name;
                }
            }
        }

        return null;
    }

    private string DataDir(uint node) => Path.Combine(_c.DataDir, $"node-{node}", "data");

    private async Task<(int Version, string State, string ActiveRun)> StatusAsync(uint node, string keyId)
    {
        (int version, string state, string run, _) = await NodeKeyStatus.ReadAsync(_c.Coordinator, node, keyId);
        return (version, state, run);
    }

    private sealed record Point(FrostCoordinator Coordinator, FrostKeyInfo Key, string Kind, string Boundary, bool ServerCrash, uint Lost, uint[]? Committee);
}
