using System.Security.Cryptography;
using Conclave.Node.Frost;
using Conclave.Node.Protocol;
using Conclave.Node.Rpc;
using Conclave.Server.Coordinator;
using Conclave.Server.Hosting;
using Conclave.Storage.Rotation;
using Conclave.Threshold.Frost;
using Conclave.Threshold.Frost.Ciphersuites;
using Xunit.Abstractions;

namespace Conclave.Node.Tests;

/// <summary>
/// Chaos with real node processes (docs/ROTATION.md "Tested"): a node taking part in a refresh or reshare is killed
/// with SIGKILL (Process.Kill: kill -9) at a random step boundary of the run; the coordinator goes on as far as it can,
/// the node is started again on its store, and the run is recovered the way the server does it (ResumeAsync). After
/// each point: the run is finished, the key signs under its unchanged public key, and every holder reports the
/// version the coordinator holds. 6 points in CI, 40 with CONCLAVE_LONG_TESTS=1; the seed is printed and
/// CONCLAVE_ROTATION_SEED replays it.
/// </summary>
[Collection(FiveNodeCluster.Sequential)]
public sealed class NodeChaosTests(FiveNodeCluster fixture, ITestOutputHelper output) : IClassFixture<FiveNodeCluster>
{
    private static readonly string[] Boundaries = ["started", "round1", "reveal", "round2", "finish", "prepared", "nodes-committed", "committed"];
    private readonly LocalClusterProcesses _c = fixture.Cluster;

    [Fact]
    public async Task NodeKilledAtRandomBoundaries_ThenRecovered_EveryKeySignsAndNodesAgree()
    {
        int points = Environment.GetEnvironmentVariable("CONCLAVE_LONG_TESTS") == "1" ? 40 : 6;
        int seed = int.TryParse(Environment.GetEnvironmentVariable("CONCLAVE_ROTATION_SEED"), out int replay) ? replay : RandomNumberGenerator.GetInt32(int.MaxValue);
        output.WriteLine($"seed {seed} (set CONCLAVE_ROTATION_SEED to replay)");
        var rng = new Random(seed);
        var runs = new InMemoryRotationLog(); // the server store's run log
        var first = new FrostCoordinator(_c.Coordinator) { Runs = runs, PoolBatch = 4 };
        FrostKeyInfo key = await first.CreateKeyAsync("node-chaos-" + Guid.NewGuid().ToString("N")[..8], FrostCiphersuite.Secp256k1Sha256, 2, [1, 2, 3], CancellationToken.None);
        byte[] groupKey = key.PublicKeyPackage.VerificationKey;
        FrostCoordinator current = first;
        for (int i = 0; i < points; i++)
        {
            FrostKeyInfo before = current.Find(key.KeyId)!;
            bool reshare = rng.Next(2) == 0;
            uint[] committee = before.Nodes.SequenceEqual(new uint[] { 1, 2, 3 }) ? [3, 4, 5] : [1, 2, 3];
            uint[] involved = reshare ? [.. before.Nodes.Union(committee).Order()] : [.. before.Nodes];
            uint victim = involved[rng.Next(involved.Length)];
            string boundary = Boundaries[rng.Next(Boundaries.Length)];
            output.WriteLine($"point {i}: {(reshare ? "reshare" : "refresh")} of v{before.Version} on [{string.Join(",", before.Nodes)}], kill -9 node {victim} at {boundary}");
            current.FaultInjection = (_, b) =>
            {
                if (b == boundary)
                {
                    _c.KillNode(victim);
                }

                return Task.CompletedTask;
            };
            try
            {
                if (reshare)
                {
                    await current.ReshareAsync(key.KeyId, 2, committee, CancellationToken.None);
                }
                else
                {
                    await current.RefreshAsync(key.KeyId, CancellationToken.None);
                }
            }
            catch (Exception e) when (e is NodeCallException or CulpritException or QuorumUnavailableException)
            {
                output.WriteLine($"  the run stopped: {e.GetType().Name}");
            }
            finally
            {
                current.FaultInjection = null;
            }

            // The node comes back on its store; the server's recovery finishes or aborts the run.
            _c.StartNode(victim);
            _c.WaitForAll(TimeSpan.FromSeconds(60));
            var next = new FrostCoordinator(_c.Coordinator) { Runs = runs, PoolBatch = 4 };
            next.Register(current.Find(key.KeyId)!);
            foreach (RotationRun run in await runs.ListUnfinishedAsync())
            {
                await next.ResumeAsync(run.RunId, CancellationToken.None);
            }

            Assert.Empty(await runs.ListUnfinishedAsync());
            FrostKeyInfo after = next.Find(key.KeyId)!;
            Assert.Equal(groupKey, after.PublicKeyPackage.VerificationKey);
            for (int s = 0; s < 2; s++)
            {
                byte[] msg = RandomNumberGenerator.GetBytes(32);
                byte[] sig = await next.SignAsync(key.KeyId, msg, CancellationToken.None);
                Assert.True(after.Suite.Verify(groupKey, msg, sig), $"point {i}, seed {seed}");
            }

            foreach (uint n in after.Nodes)
            {
                Assert.Equal((after.Version, "Active"), await StatusAsync(n, key.KeyId));
            }

            current = next;
        }

        // A last refresh clears what a node that missed an abort still held pending; then every holder agrees exactly.
        FrostKeyInfo last = await current.RefreshAsync(key.KeyId, CancellationToken.None);
        Assert.Equal(groupKey, last.PublicKeyPackage.VerificationKey);
        foreach (uint n in last.Nodes)
        {
            Assert.Equal((last.Version, "Active"), await StatusAsync(n, key.KeyId));
        }
    }

    private async Task<(int Version, string State)> StatusAsync(uint node, string keyId)
    {
        IReadOnlyList<Envelope> reply = await _c.Coordinator.Node(node).StepAsync(
            _c.Coordinator.Request(Cluster.NewSessionId(), FrostMessages.RotationStatus, 9, [node], new PayloadWriter().String(keyId).ToArray()), [],
            TimeSpan.FromSeconds(20), CancellationToken.None);
        var r = new PayloadReader(Assert.Single(reply).Payload.Span);
        int version = (int)r.U32("version");
        string state = r.String("state");
        _ = r.String("run");
        _ = r.String("runState");
        r.End();
        return (version, state);
    }
}
