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
/// Crash-safe rotation through real signer nodes (docs/ROTATION.md). A coordinator is stopped dead at a step boundary
/// of a refresh or reshare (as a killed server would be: nothing after the boundary runs, not even an abort), a new
/// coordinator with the same run log resumes, and then: the key signs, its public key is unchanged, every holder
/// agrees on the version with no unfinished run, and no retired version signs anywhere.
/// </summary>
[Collection(FiveNodeCluster.Sequential)]
public sealed class RotationCrashTests(FiveNodeCluster fixture, ITestOutputHelper output) : IClassFixture<FiveNodeCluster>
{
    private static readonly string[] Boundaries = ["started", "round1", "reveal", "round2", "finish", "prepared", "nodes-committed", "committed", "nodes-retired"];
    private readonly LocalClusterProcesses _c = fixture.Cluster;

    public static TheoryData<string, string> Cases()
    {
        var d = new TheoryData<string, string>();
        foreach (string kind in new[] { "refresh", "reshare" })
        {
            foreach (string b in Boundaries)
            {
                d.Add(kind, b);
            }
        }

        return d;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task CoordinatorCrashAtABoundary_ThenResume_KeepsTheKeySigning(string kind, string boundary)
    {
        var runs = new InMemoryRotationLog(); // the server store's run log, which outlives the crashed process
        await CrashAndResumeAsync(runs, kind, boundary, FrostCiphersuite.Secp256k1Sha256, 2, [1, 2, 3], kind == "reshare" ? (3, [2, 3, 4]) : null,
            TestSeed.For($"messages after a {kind} crashed at {boundary}"));
    }

    /// <summary>
    /// Many crash points in a row over the same key (refresh and reshare back and forth, random boundaries, random
    /// suites): after each recovery the key signs under the same public key. 200 points in CI, 1,000 with --long.
    /// </summary>
    [Fact]
    public async Task ManyRandomCrashPoints_NeverLoseTheKey()
    {
        int points = Environment.GetEnvironmentVariable("CONCLAVE_LONG_TESTS") == "1" ? 1000 : 200;
        int seed = RotationSeed.Choose("crash points", output);
        var rng = new Random(seed);
        DeterministicRandomSource messages = TestSeed.For("messages");
        var runs = new InMemoryRotationLog();
        var first = new FrostCoordinator(_c.Coordinator) { Runs = runs, PoolBatch = 4 };
        FrostKeyInfo key = await first.CreateKeyAsync("chaos-" + Guid.NewGuid().ToString("N")[..10], FrostCiphersuite.Ed25519Sha512, 2, [1, 2, 3], CancellationToken.None);
        byte[] groupKey = key.PublicKeyPackage.VerificationKey;
        FrostCoordinator current = first;
        for (int i = 0; i < points; i++)
        {
            string boundary = Boundaries[rng.Next(Boundaries.Length)];
            bool reshare = rng.Next(2) == 0;
            FrostKeyInfo before = current.Find(key.KeyId)!;
            output.WriteLine($"point {i}: {(reshare ? "reshare" : "refresh")} of v{before.Version} on [{string.Join(",", before.Nodes)}], crash at {boundary}");
            current.FaultInjection = (_, b) => b == boundary ? throw new RotationCrashException(boundary) : Task.CompletedTask;
            try
            {
                if (reshare)
                {
                    uint[] committee = before.Nodes.SequenceEqual(new uint[] { 1, 2, 3 }) ? [3, 4, 5] : [1, 2, 3];
                    await current.ReshareAsync(key.KeyId, 2, committee, CancellationToken.None);
                }
                else
                {
                    await current.RefreshAsync(key.KeyId, CancellationToken.None);
                }
            }
            catch (RotationCrashException)
            {
            }

            // The process is gone; a new one starts from what the store says.
            var next = new FrostCoordinator(_c.Coordinator) { Runs = runs, PoolBatch = 4 };
            next.Register(before);
            foreach (RotationRun run in await runs.ListUnfinishedAsync())
            {
                await next.ResumeAsync(run.RunId, CancellationToken.None);
            }

            FrostKeyInfo after = next.Find(key.KeyId)!;
            Assert.Equal(groupKey, after.PublicKeyPackage.VerificationKey);
            byte[] msg = messages.Bytes(32);
            byte[] sig = await next.SignAsync(key.KeyId, msg, CancellationToken.None);
            Assert.True(after.Suite.Verify(groupKey, msg, sig), $"point {i} ({(reshare ? "reshare" : "refresh")} at {boundary}), seed {seed}");
            current = next;
        }
    }

    [Fact]
    public async Task TwoConcurrentRefreshesOfOneKey_ExactlyOneRuns()
    {
        var runs = new InMemoryRotationLog();
        var a = new FrostCoordinator(_c.Coordinator) { Runs = runs, PoolBatch = 4 };
        var b = new FrostCoordinator(_c.Coordinator) { Runs = runs, PoolBatch = 4 };
        FrostKeyInfo key = await a.CreateKeyAsync("twice-" + Guid.NewGuid().ToString("N")[..10], FrostCiphersuite.Secp256k1Sha256, 2, [1, 2, 3], CancellationToken.None);
        b.Register(key);
        (FrostKeyInfo? Key, Exception? Error)[] both = await Task.WhenAll(Outcome(a.RefreshAsync(key.KeyId, CancellationToken.None)), Outcome(b.RefreshAsync(key.KeyId, CancellationToken.None)));
        Assert.Single(both, o => o.Key is not null);
        Exception refused = Assert.Single(both, o => o.Error is not null).Error!;
        Assert.Contains("unfinished rotation run", refused.Message, StringComparison.Ordinal);
        FrostKeyInfo refreshed = both.Single(o => o.Key is not null).Key!;
        Assert.Equal(2, refreshed.Version);
        await AssertConvergedAsync(refreshed, []);
    }

    [Fact]
    public async Task NodesRefuseRetireWithoutEveryReceiversCommit_AndNeverAbortACommittedRun()
    {
        var runs = new InMemoryRotationLog();
        var coordinator = new FrostCoordinator(_c.Coordinator) { Runs = runs, PoolBatch = 4 };
        FrostKeyInfo key = await coordinator.CreateKeyAsync("retire-" + Guid.NewGuid().ToString("N")[..10], FrostCiphersuite.Secp256k1Sha256, 2, [1, 2, 3], CancellationToken.None);
        coordinator.FaultInjection = (_, b) => b == "nodes-committed" ? throw new RotationCrashException(b) : Task.CompletedTask;
        await Assert.ThrowsAsync<RotationCrashException>(() => coordinator.RefreshAsync(key.KeyId, CancellationToken.None));
        RotationRun run = Assert.Single(await runs.ListUnfinishedAsync());
        byte[] session = Convert.FromHexString(run.RunId);
        byte[] payload = new PayloadWriter().String(key.KeyId).ToArray();

        // A retire relayed with only one receiver's commit (the coordinator lies, or a commit was lost): refused.
        IReadOnlyList<Envelope> commit2 = await Step(2, session, FrostMessages.RotationCommit, payload, []);
        NodeCallException refused = await Assert.ThrowsAsync<NodeCallException>(() => Step(1, session, FrostMessages.RotationRetire, payload, commit2));
        Assert.Contains("lacks the commit of node(s) 3", refused.Message, StringComparison.Ordinal);

        // A committed run cannot be aborted, and a retire for another key id is refused.
        NodeCallException noAbort = await Assert.ThrowsAsync<NodeCallException>(() => Step(2, session, FrostMessages.RotationAbort, payload, []));
        Assert.Contains("never aborted", noAbort.Message, StringComparison.Ordinal);
        NodeCallException otherKey = await Assert.ThrowsAsync<NodeCallException>(() =>
            Step(1, session, FrostMessages.RotationRetire, new PayloadWriter().String("some-other-key").ToArray(), []));
        Assert.Contains("another key", otherKey.Message, StringComparison.Ordinal);

        // Resuming finishes it: every node committed and retired, the old version is gone everywhere.
        var next = new FrostCoordinator(_c.Coordinator) { Runs = runs, PoolBatch = 4 };
        next.Register(key);
        FrostKeyInfo? done = await next.ResumeAsync(run.RunId, CancellationToken.None);
        Assert.NotNull(done);
        await AssertConvergedAsync(done, []);
        await AssertOldVersionDoesNotSignAsync(key);
    }

    /// <summary>
    /// Between the nodes' commit of a refresh and the coordinator registering the new version, the coordinator still
    /// signs with the previous version and the commitments it pooled for it. The previous version signs until it is
    /// retired, so its nonces must too: nodes used to drop them at commit, the signature's first attempt was refused
    /// ("nonce … is unknown or already used"), and with refreshes back to back a signature could use up every attempt
    /// (503 quorum-unavailable with every node up, seen by `conclave bench --cluster`'s sign-during-refresh row).
    /// One attempt only here, so a refused nonce fails the test.
    /// </summary>
    [Fact]
    public async Task BetweenTheNodesCommitAndTheCoordinatorsRegistration_ThePreviousVersionsPooledNoncesStillSign()
    {
        var runs = new InMemoryRotationLog();
        var coordinator = new FrostCoordinator(_c.Coordinator) { Runs = runs, PoolBatch = 4, MaxAttempts = 1 };
        FrostKeyInfo key = await coordinator.CreateKeyAsync("window-" + Guid.NewGuid().ToString("N")[..10], FrostCiphersuite.Secp256k1Sha256, 2, [1, 2, 3], CancellationToken.None);
        DeterministicRandomSource messages = TestSeed.For("messages");
        byte[] first = messages.Bytes(32);
        byte[] firstSig = await coordinator.SignAsync(key.KeyId, first, CancellationToken.None);
        Assert.True(key.Suite.Verify(key.PublicKeyPackage.VerificationKey, first, firstSig));
        foreach (uint n in key.Nodes)
        {
            await coordinator.RefillAsync(key, n, CancellationToken.None); // every pool holds version-1 commitments issued before the refresh
        }

        coordinator.FaultInjection = (_, b) => b == "nodes-committed" ? throw new RotationCrashException(b) : Task.CompletedTask;
        await Assert.ThrowsAsync<RotationCrashException>(() => coordinator.RefreshAsync(key.KeyId, CancellationToken.None));
        Assert.Equal(1, coordinator.Find(key.KeyId)!.Version);
        foreach (uint n in key.Nodes)
        {
            Assert.Equal(2, (await StatusAsync(n, key.KeyId)).Version);
        }

        for (int i = 0; i < 3; i++)
        {
            byte[] msg = messages.Bytes(32);
            byte[] sig = await coordinator.SignAsync(key.KeyId, msg, CancellationToken.None);
            Assert.True(key.Suite.Verify(key.PublicKeyPackage.VerificationKey, msg, sig));
        }

        // Resuming finishes the run; then only version 2 signs.
        RotationRun run = Assert.Single(await runs.ListUnfinishedAsync());
        var next = new FrostCoordinator(_c.Coordinator) { Runs = runs, PoolBatch = 4 };
        next.Register(key);
        FrostKeyInfo? done = await next.ResumeAsync(run.RunId, CancellationToken.None);
        Assert.Equal(2, done!.Version);
        byte[] last = messages.Bytes(32);
        byte[] lastSig = await next.SignAsync(key.KeyId, last, CancellationToken.None);
        Assert.True(key.Suite.Verify(key.PublicKeyPackage.VerificationKey, last, lastSig));
        await AssertConvergedAsync(done, []);
        await AssertOldVersionDoesNotSignAsync(key);
    }

    private static async Task<(FrostKeyInfo? Key, Exception? Error)> Outcome(Task<FrostKeyInfo> run)
    {
        try
        {
            return (await run, null);
        }
        catch (Exception e) when (e is Conclave.Storage.StorageException)
        {
            return (null, e);
        }
    }

    private async Task CrashAndResumeAsync(InMemoryRotationLog runs, string kind, string boundary, FrostCiphersuite suite, int t, uint[] nodes, (int T, uint[] Nodes)? reshare,
        DeterministicRandomSource messages)
    {
        var coordinator = new FrostCoordinator(_c.Coordinator) { Runs = runs, PoolBatch = 4 };
        FrostKeyInfo key = await coordinator.CreateKeyAsync($"crash-{kind}-{boundary}-" + Guid.NewGuid().ToString("N")[..8], suite, t, nodes, CancellationToken.None);
        coordinator.FaultInjection = (_, b) => b == boundary ? throw new RotationCrashException(b) : Task.CompletedTask;
        await Assert.ThrowsAsync<RotationCrashException>(() => reshare is { } r
            ? coordinator.ReshareAsync(key.KeyId, r.T, r.Nodes, CancellationToken.None)
            : coordinator.RefreshAsync(key.KeyId, CancellationToken.None));

        // While the run is unfinished, no other run of the key may start.
        var next = new FrostCoordinator(_c.Coordinator) { Runs = runs, PoolBatch = 4 };
        next.Register(key);
        if (boundary != "nodes-retired" || (await runs.ListUnfinishedAsync()).Count > 0)
        {
            Conclave.Storage.StorageException locked = await Assert.ThrowsAsync<Conclave.Storage.StorageException>(() => next.RefreshAsync(key.KeyId, CancellationToken.None));
            Assert.Contains("unfinished rotation run", locked.Message, StringComparison.Ordinal);
        }

        RotationRun run = Assert.Single(await runs.ListForKeyAsync(key.KeyId, 10), r => r.Kind != RotationKind.KeyGeneration);
        if (!run.IsFinished)
        {
            await next.ResumeAsync(run.RunId, CancellationToken.None);
        }

        run = (await runs.GetAsync(run.RunId))!;
        bool rolledForward = boundary is "prepared" or "nodes-committed" or "committed" or "nodes-retired";
        Assert.Equal(rolledForward ? RotationState.Retired : RotationState.Aborted, run.State);
        FrostKeyInfo after = next.Find(key.KeyId)!;
        Assert.Equal(key.PublicKeyPackage.VerificationKey, after.PublicKeyPackage.VerificationKey);
        Assert.Equal(rolledForward ? 2 : 1, after.Version);
        if (rolledForward && reshare is { } shape)
        {
            Assert.Equal(shape.T, after.PublicKeyPackage.Threshold);
            Assert.Equal(shape.Nodes, after.Nodes);
        }

        for (int i = 0; i < 3; i++)
        {
            byte[] msg = messages.Bytes(32);
            byte[] sig = await next.SignAsync(key.KeyId, msg, CancellationToken.None);
            Assert.True(suite.Verify(key.PublicKeyPackage.VerificationKey, msg, sig));
        }

        await AssertConvergedAsync(after, rolledForward ? key.Nodes.Except(after.Nodes).ToArray() : []);
        if (rolledForward)
        {
            await AssertOldVersionDoesNotSignAsync(key);
        }
    }

    /// <summary>Every holder reports the key at the coordinator's version with no unfinished run; those it left report it destroyed.</summary>
    private async Task AssertConvergedAsync(FrostKeyInfo key, uint[] left)
    {
        foreach (uint n in key.Nodes)
        {
            (int version, string state, string activeRun) = await StatusAsync(n, key.KeyId);
            Assert.Equal((key.Version, "Active", ""), (version, state, activeRun));
        }

        foreach (uint n in left)
        {
            (_, string state, string activeRun) = await StatusAsync(n, key.KeyId);
            Assert.Equal(("Destroyed", ""), (state, activeRun));
        }
    }

    /// <summary>A coordinator that still holds the retired version's package gets no signature from anyone.</summary>
    private async Task AssertOldVersionDoesNotSignAsync(FrostKeyInfo old)
    {
        var stale = new FrostCoordinator(_c.Coordinator) { PoolBatch = 2 };
        stale.Register(old);
        await Assert.ThrowsAnyAsync<Exception>(() => stale.SignAsync(old.KeyId, new byte[32], CancellationToken.None));
    }

    private async Task<(int Version, string State, string ActiveRun)> StatusAsync(uint node, string keyId)
    {
        (int version, string state, string run, _) = await NodeKeyStatus.ReadAsync(_c.Coordinator, node, keyId);
        return (version, state, run);
    }

    private Task<IReadOnlyList<Envelope>> Step(uint node, byte[] session, string kind, byte[] payload, IEnumerable<Envelope> relayed) =>
        _c.Coordinator.Node(node).StepAsync(_c.Coordinator.Request(session, kind, 6, [node], payload), relayed, TimeSpan.FromSeconds(20), CancellationToken.None);
}
