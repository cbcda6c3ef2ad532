using Conclave.Node.Protocol;
using Conclave.Node.Rpc;
using Conclave.Server.Coordinator;
using Conclave.Server.Hosting;
using Conclave.Storage.Rotation;
using Conclave.Threshold.Frost;
using Conclave.Threshold.Frost.Ciphersuites;

namespace Conclave.Node.Tests;

/// <summary>A 4-node cluster of real processes whose nodes the complaint tests restart with DKG fault hooks.</summary>
public sealed class ComplaintCluster : IDisposable
{
    public LocalClusterProcesses Cluster { get; } = new(RepoPaths.CliDll, 4, 2);

    public void Dispose() => Cluster.Dispose();
}

/// <summary>
/// Issue 14 item 4 on the cluster, through real node processes (docs/FROST.md "Complaints on the cluster"): a receiver that
/// gets a bad share sends the dealer's signed message as a complaint, the coordinator checks it with Dkg.VerifyComplaint,
/// and convicts the dealer — or the complainer when the complaint is false. Honest nodes are never named; the run aborts
/// with no node at a new version, and the key still signs. The faulty nodes are the test-only host
/// tests/Conclave.Node.FaultyNode (the fault hooks cannot be set through `conclave node run`).
/// </summary>
[Collection(FiveNodeCluster.Sequential)]
public sealed class DkgComplaintTests(ComplaintCluster fixture) : IClassFixture<ComplaintCluster>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private readonly LocalClusterProcesses _c = fixture.Cluster;

    [Fact]
    public async Task KeyGeneration_DealerSendingABadShare_IsConvictedByTheComplaint_AndNoHonestNodeIsNamed()
    {
        var convictions = new List<(string KeyId, string RunId, IReadOnlyList<CulpritReason> Culprits)>();
        var runs = new InMemoryRotationLog();
        var coordinator = new FrostCoordinator(_c.Coordinator)
        {
            PoolBatch = 4,
            Runs = runs,
            OnCulprits = (key, run, culprits, _) =>
            {
                convictions.Add((key, run, culprits));
                return Task.CompletedTask;
            },
        };
        string keyId = "complaint-bad-dealer-" + Guid.NewGuid().ToString("N")[..8];
        await WithFaultAsync(2, ["--dkg-bad-share-to", "3"], async () =>
        {
            CulpritException e = await Assert.ThrowsAsync<CulpritException>(() => coordinator.CreateKeyAsync(keyId, FrostCiphersuite.Secp256k1Sha256, 2, [1, 2, 3], CancellationToken.None));
            Assert.Equal([2u], e.Culprits);
            Assert.Equal([new CulpritReason(2, CulpritReason.InvalidDkgShare)], e.Reasons);
        });

        // Named in the coordinator's report (the server's audit entry) and marked suspect; nobody else is.
        (string reportedKey, string runId, IReadOnlyList<CulpritReason> reported) = Assert.Single(convictions);
        Assert.Equal(keyId, reportedKey);
        Assert.Equal([new CulpritReason(2, CulpritReason.InvalidDkgShare)], reported);
        Assert.Equal(new Dictionary<uint, string> { [2] = CulpritReason.InvalidDkgShare }, coordinator.Suspects);

        // The run aborted cleanly: no key on any node, none registered, the run recorded aborted.
        Assert.Equal(RotationState.Aborted, (await runs.GetAsync(runId))!.State);
        Assert.Null(coordinator.Find(keyId));
        foreach (uint n in new uint[] { 1, 2, 3 })
        {
            Assert.Equal((0, "Absent", ""), await StatusAsync(n, keyId));
        }

        // The same nodes, all honest now, make the key.
        FrostKeyInfo key = await coordinator.CreateKeyAsync(keyId + "-again", FrostCiphersuite.Secp256k1Sha256, 2, [1, 2, 3], CancellationToken.None);
        await SignAsync(coordinator, key, "after the aborted key generation");
    }

    [Fact]
    public async Task Refresh_DealerSendingABadShare_IsConvicted_NoNodeMovesVersion_AndTheKeyStillSigns()
    {
        var runs = new InMemoryRotationLog();
        var coordinator = new FrostCoordinator(_c.Coordinator) { PoolBatch = 4, Runs = runs };
        FrostKeyInfo key = await coordinator.CreateKeyAsync("complaint-refresh-" + Guid.NewGuid().ToString("N")[..8], FrostCiphersuite.Ed25519Sha512, 2, [2, 3, 4], CancellationToken.None);
        await SignAsync(coordinator, key, "before the refresh");
        await WithFaultAsync(4, ["--dkg-bad-share-to", "2"], async () =>
        {
            CulpritException e = await Assert.ThrowsAsync<CulpritException>(() => coordinator.RefreshAsync(key.KeyId, CancellationToken.None));
            Assert.Equal([new CulpritReason(4, CulpritReason.InvalidDkgShare)], e.Reasons);
            Assert.Equal([4u], e.Culprits);

            // No node moved: every holder is at version 1 with no unfinished run, and the coordinator still has version 1.
            foreach (uint n in key.Nodes)
            {
                Assert.Equal((1, "Active", ""), await StatusAsync(n, key.KeyId));
            }

            Assert.Equal(1, coordinator.Find(key.KeyId)!.Version);
            Assert.Contains(await runs.ListForKeyAsync(key.KeyId, 10), r => r.Kind == RotationKind.Refresh && r.State == RotationState.Aborted);

            // The key signs after the aborted run, the convicted dealer among the signers or not.
            for (int i = 0; i < 4; i++)
            {
                await SignAsync(coordinator, key, $"after the aborted refresh {i}");
            }
        });

        Assert.Equal(new Dictionary<uint, string> { [4] = CulpritReason.InvalidDkgShare }, coordinator.Suspects);
    }

    [Fact]
    public async Task FalseComplaint_ConvictsTheComplainer_NotTheDealerItAccuses()
    {
        var coordinator = new FrostCoordinator(_c.Coordinator) { PoolBatch = 4 };
        FrostKeyInfo key = await coordinator.CreateKeyAsync("complaint-false-" + Guid.NewGuid().ToString("N")[..8], FrostCiphersuite.Secp256k1Taproot, 2, [1, 3, 4], CancellationToken.None);
        await WithFaultAsync(3, ["--dkg-false-complaint"], async () =>
        {
            // Key generation: node 3 accuses dealer 1 with dealer 1's real (good) signed share.
            CulpritException created = await Assert.ThrowsAsync<CulpritException>(() => coordinator.CreateKeyAsync("complaint-false-new-" + Guid.NewGuid().ToString("N")[..8],
                FrostCiphersuite.Ed25519Sha512, 2, [1, 3, 4], CancellationToken.None));
            Assert.Equal([new CulpritReason(3, CulpritReason.FalseComplaint)], created.Reasons);
            Assert.Equal([3u], created.Culprits);

            // Refresh: the same; no node moves, the key still signs.
            CulpritException refreshed = await Assert.ThrowsAsync<CulpritException>(() => coordinator.RefreshAsync(key.KeyId, CancellationToken.None));
            Assert.Equal([new CulpritReason(3, CulpritReason.FalseComplaint)], refreshed.Reasons);
            foreach (uint n in key.Nodes)
            {
                Assert.Equal((1, "Active", ""), await StatusAsync(n, key.KeyId));
            }

            await SignAsync(coordinator, key, "after the false complaint");
        });

        Assert.Equal(new Dictionary<uint, string> { [3] = CulpritReason.FalseComplaint }, coordinator.Suspects);
    }

    private Task WithFaultAsync(uint node, string[] fault, Func<Task> body) => FaultyNodeHost.WithFaultAsync(_c, node, fault, body);

    private static async Task SignAsync(FrostCoordinator coordinator, FrostKeyInfo key, string label)
    {
        byte[] msg = TestSeed.Bytes(32, label);
        byte[] sig = await coordinator.SignAsync(key.KeyId, msg, CancellationToken.None);
        byte[] verifying = key.Suite.SchemeName == "frost-taproot"
            ? Conclave.Chains.Bitcoin.TaprootAddress.Bip86OutputKey(key.PublicKeyPackage.VerificationKey).OutputKey
            : key.PublicKeyPackage.VerificationKey;
        Assert.True(key.Suite.Verify(verifying, msg, sig));
    }

    private async Task<(int Version, string State, string Run)> StatusAsync(uint node, string keyId)
    {
        (int version, string state, string run, _) = await NodeKeyStatus.ReadAsync(_c.Coordinator, node, keyId);
        return (version, state, run);
    }
}
