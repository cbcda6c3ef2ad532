using System.Security.Cryptography;
using Conclave.Chains.Ethereum;
using Conclave.Crypto.Secp256k1;
using Conclave.Node.Frost;
using Conclave.Node.Protocol;
using Conclave.Node.Rpc;
using Conclave.Node.Threshold.Engine;
using Conclave.Server.Coordinator;
using Conclave.Server.Hosting;
using Conclave.Server.Rotation;
using Conclave.Server.Threshold.Dkls23;
using Conclave.Server.Threshold.Engine;
using Conclave.Storage.Rotation;

namespace Conclave.Node.Tests;

/// <summary>
/// Refresh and reshare of ecdsa-dkls23 keys over five real signer-node processes, as rotation runs of the threshold
/// engine (docs/DKLS23.md "Rotation on the cluster"): the address stays, the new shares sign (libsecp256k1 and
/// @noble/curves), the old version is erased on every node that held it, and a coordinator stopped dead mid-run is
/// finished or aborted by a new one with the same run log.
/// </summary>
[Collection(FiveNodeCluster.Sequential)]
public sealed class DklsRotationTests(FiveNodeCluster fixture) : IClassFixture<FiveNodeCluster>
{
    private readonly LocalClusterProcesses _c = fixture.Cluster;

    [Fact]
    public async Task Refresh_KeepsTheAddress_NewSharesSign_AndTheOldVersionIsErasedOnEveryNode()
    {
        DklsCoordinator coordinator = DklsClusterChecks.Coordinator(_c);
        DklsKeyInfo key = await coordinator.CreateKeyAsync("dkls-refresh-" + Guid.NewGuid().ToString("N")[..8], 2, [1, 2, 3], CancellationToken.None);
        await DklsClusterChecks.SignManyAndVerify(coordinator, key, 2, [], "before refresh");

        DklsKeyInfo refreshed = await coordinator.RefreshAsync(key.KeyId, CancellationToken.None);
        Assert.Equal(2, refreshed.Version);
        Assert.Equal(key.PublicKey.GroupPublicKey, refreshed.PublicKey.GroupPublicKey);
        Assert.Equal(EthereumAddress.FromPublicKey(key.PublicKey.GroupPublicKey), EthereumAddress.FromPublicKey(refreshed.PublicKey.GroupPublicKey));
        Assert.Equal(key.PublicKey.Epoch + 1, refreshed.PublicKey.Epoch);
        Assert.Equal(key.PublicKey.DkgSessionId, refreshed.PublicKey.DkgSessionId);
        Assert.True(key.PublicKey.ChainCode.SequenceEqual(refreshed.PublicKey.ChainCode));
        Assert.Equal([1u, 2u, 3u], refreshed.Nodes);
        // Every verifying share changed (zero-constant-term re-sharing), the group key did not.
        foreach (var id in key.PublicKey.Participants)
        {
            Assert.NotEqual(key.PublicKey.GetVerifyingShare(id), refreshed.PublicKey.GetVerifyingShare(id));
        }

        await DklsClusterChecks.SignManyAndVerify(coordinator, refreshed, 6, [], "after refresh");
        await DklsClusterChecks.SignManyAndVerify(coordinator, refreshed, 2, [0, 7], "child after refresh");
        await AssertConvergedAsync(refreshed, []);
        await AssertOldVersionDoesNotSignAsync(key);

        // A second refresh runs from version 2 (the run machinery's one-run-per-key lock was released).
        DklsKeyInfo again = await coordinator.RefreshAsync(key.KeyId, CancellationToken.None);
        Assert.Equal(3, again.Version);
        Assert.Equal(key.PublicKey.Epoch + 2, again.PublicKey.Epoch);
        await DklsClusterChecks.SignManyAndVerify(coordinator, again, 2, [], "second refresh");
    }

    /// <summary>
    /// A coordinator stopped dead (nothing after the boundary runs, not even an abort) in the pairwise setup of a refresh,
    /// after the run was prepared, and after the nodes committed: a new coordinator with the same run log aborts the first
    /// (the nodes discard their pending version) and finishes the others; the key signs under the same address every time.
    /// </summary>
    [Theory]
    [InlineData("setup2")]
    [InlineData("prepared")]
    [InlineData("nodes-committed")]
    public async Task CoordinatorStoppedMidRefresh_ANewCoordinatorFinishesOrAbortsIt_AndTheKeySigns(string boundary)
    {
        var runs = new InMemoryRotationLog();
        var coordinator = new DklsCoordinator(new ThresholdEngine(_c.Coordinator)) { Runs = runs };
        DklsKeyInfo key = await coordinator.CreateKeyAsync($"dkls-crash-{boundary}-" + Guid.NewGuid().ToString("N")[..8], 2, [1, 2, 3], CancellationToken.None);
        coordinator.FaultInjection = (_, b) => b == boundary ? throw new RotationCrashException(b) : Task.CompletedTask;
        await Assert.ThrowsAsync<RotationCrashException>(() => coordinator.RefreshAsync(key.KeyId, CancellationToken.None));

        var next = new DklsCoordinator(new ThresholdEngine(_c.Coordinator)) { Runs = runs };
        next.Register(key);
        Conclave.Storage.StorageException locked = await Assert.ThrowsAsync<Conclave.Storage.StorageException>(() => next.RefreshAsync(key.KeyId, CancellationToken.None));
        Assert.Contains("unfinished rotation run", locked.Message, StringComparison.Ordinal);

        RotationRun run = Assert.Single(await runs.ListForKeyAsync(key.KeyId, 10), r => r.Kind == RotationKind.Refresh);
        Assert.False(run.IsFinished);
        await next.ResumeAsync(run.RunId, CancellationToken.None);
        run = (await runs.GetAsync(run.RunId))!;
        bool rolledForward = boundary != "setup2";
        Assert.Equal(rolledForward ? RotationState.Retired : RotationState.Aborted, run.State);

        DklsKeyInfo after = next.Find(key.KeyId)!;
        Assert.Equal(rolledForward ? 2 : 1, after.Version);
        Assert.Equal(key.PublicKey.GroupPublicKey, after.PublicKey.GroupPublicKey);
        await DklsClusterChecks.SignManyAndVerify(next, after, 3, [], "after crash " + boundary);
        await AssertConvergedAsync(after, []);
        if (rolledForward)
        {
            await AssertOldVersionDoesNotSignAsync(key);
        }

        // The key rotates again afterwards.
        DklsKeyInfo again = await next.RefreshAsync(key.KeyId, CancellationToken.None);
        Assert.Equal(after.Version + 1, again.Version);
        await DklsClusterChecks.SignManyAndVerify(next, again, 2, [], "after crash, refreshed " + boundary);
    }

    /// <summary>
    /// A coordinator stopped dead at a step boundary of a DKLs23 key generation (the DKG's, the pairwise setup's and the
    /// engine's; nothing after the boundary runs): while the run is unfinished a second generation of the key id is
    /// refused; a new coordinator with the same run log aborts it before the decision (no node holds anything of the key,
    /// and the same key id is then generated and signs) and finishes it after (every node holds version 1, Active, and
    /// the key signs, verified by libsecp256k1 and @noble/curves).
    /// </summary>
    [Theory]
    [InlineData("started")]
    [InlineData("reveal")]
    [InlineData("finish")]
    [InlineData("dkg")]
    [InlineData("setup1")]
    [InlineData("setup2")]
    [InlineData("setup3")]
    [InlineData("prepared")]
    [InlineData("nodes-committed")]
    [InlineData("committed")]
    public async Task CoordinatorStoppedMidKeyGeneration_ANewCoordinatorFinishesOrAbortsIt(string boundary)
    {
        var runs = new InMemoryRotationLog();
        string keyId = $"dkls-gen-crash-{boundary}-" + Guid.NewGuid().ToString("N")[..8];
        var coordinator = new DklsCoordinator(new ThresholdEngine(_c.Coordinator)) { Runs = runs };
        coordinator.FaultInjection = (_, b) => b == boundary ? throw new RotationCrashException(b) : Task.CompletedTask;
        await Assert.ThrowsAsync<RotationCrashException>(() => coordinator.CreateKeyAsync(keyId, 2, [1, 2, 3], CancellationToken.None));

        var next = new DklsCoordinator(new ThresholdEngine(_c.Coordinator)) { Runs = runs };
        Conclave.Storage.StorageException locked = await Assert.ThrowsAsync<Conclave.Storage.StorageException>(() => next.CreateKeyAsync(keyId, 2, [1, 2, 3], CancellationToken.None));
        Assert.Contains("unfinished rotation run", locked.Message, StringComparison.Ordinal);

        RotationRun run = Assert.Single(await runs.ListForKeyAsync(keyId, 10));
        Assert.False(run.IsFinished);
        DklsKeyInfo? resumed = await next.ResumeAsync(run.RunId, CancellationToken.None);
        run = (await runs.GetAsync(run.RunId))!;
        bool rolledForward = boundary is "prepared" or "nodes-committed" or "committed";
        Assert.Equal(rolledForward ? RotationState.Retired : RotationState.Aborted, run.State);
        if (rolledForward)
        {
            DklsKeyInfo key = Assert.IsType<DklsKeyInfo>(resumed);
            Assert.Equal(1, key.Version);
            await DklsClusterChecks.SignManyAndVerify(next, key, 3, [], "after key generation crash " + boundary);
            await AssertConvergedAsync(key, []);
            return;
        }

        Assert.Null(resumed);
        foreach (uint n in new uint[] { 1, 2, 3 })
        {
            Assert.Equal((0, "Absent", ""), await StatusAsync(n, keyId));
        }

        DklsKeyInfo again = await next.CreateKeyAsync(keyId, 2, [1, 2, 3], CancellationToken.None);
        await DklsClusterChecks.SignManyAndVerify(next, again, 2, [], "generated again after crash " + boundary);
        await AssertConvergedAsync(again, []);
    }

    /// <summary>
    /// Every DKLs23 key generation, refresh and reshare leaves a public transcript (docs/DKLS23.md "Rotation transcripts"):
    /// the FROST DKG's signed broadcasts and confirmations, the old and new DKLs23 public keys and every receiver's signed
    /// report of the key its pairwise setup stored. Each verifies offline against the manifest (TranscriptVerifier and
    /// `conclave rotation verify`); a missing, altered or foreign setup report, a new key at another epoch, a transcript
    /// without setup reports, a new key the commitments do not give and a missing broadcast are refused with their reasons.
    /// </summary>
    [Fact]
    public async Task Transcripts_OfKeyGenerationRefreshAndReshare_VerifyOffline_AndTamperingIsRefused()
    {
        var runs = new InMemoryRotationLog();
        var coordinator = new DklsCoordinator(new ThresholdEngine(_c.Coordinator)) { Runs = runs };
        DklsKeyInfo key = await coordinator.CreateKeyAsync("dkls-transcript-" + Guid.NewGuid().ToString("N")[..8], 2, [1, 2, 3], CancellationToken.None);
        DklsKeyInfo refreshed = await coordinator.RefreshAsync(key.KeyId, CancellationToken.None);
        DklsKeyInfo reshared = await coordinator.ReshareAsync(key.KeyId, 3, [2, 3, 4, 5], CancellationToken.None);
        await DklsClusterChecks.SignManyAndVerify(coordinator, reshared, 2, [], "after the transcribed runs");
        Conclave.Node.Config.ClusterManifest manifest = _c.Coordinator.Manifest;

        RotationTranscript gen = await TranscriptAsync(runs, key.KeyId, 1);
        RotationTranscript refresh = await TranscriptAsync(runs, key.KeyId, 2);
        RotationTranscript reshare = await TranscriptAsync(runs, key.KeyId, 3);
        Assert.Equal(("key-generation", "refresh", "reshare"), (gen.Kind, refresh.Kind, reshare.Kind));
        IReadOnlyList<string> genReports = gen.SetupReports ?? throw new InvalidOperationException("no setup reports in the key generation's transcript");
        IReadOnlyList<string> reports = refresh.SetupReports ?? throw new InvalidOperationException("no setup reports in the refresh's transcript");
        Assert.Equal((3, 3), (genReports.Count, reports.Count));
        Assert.Equal(4, reshare.SetupReports?.Count);
        Assert.Equal((3, 3, 2, 4), (refresh.Broadcasts.Count, refresh.Confirmations.Count, reshare.Broadcasts.Count, reshare.Confirmations.Count));
        Assert.Null(gen.OldPublicKeyPackage);
        Assert.Equal(Convert.ToHexStringLower(key.PublicKey.ToBytes()), gen.NewPublicKeyPackage);
        Assert.Equal((gen.NewPublicKeyPackage, Convert.ToHexStringLower(refreshed.PublicKey.ToBytes())), (refresh.OldPublicKeyPackage, refresh.NewPublicKeyPackage));
        Assert.Equal((refresh.NewPublicKeyPackage, Convert.ToHexStringLower(reshared.PublicKey.ToBytes())), (reshare.OldPublicKeyPackage, reshare.NewPublicKeyPackage));
        foreach (RotationTranscript t in new[] { gen, refresh, reshare })
        {
            Assert.Equal(Conclave.Threshold.Dkls23.DklsScheme.Name, t.Scheme);
            Assert.Equal(new TranscriptCheck(true, "ok"), TranscriptVerifier.Verify(t, manifest));
        }

        // Tampering, each refused with its reason.
        Assert.Equal("node 3 did not report the key of the pairwise setup",
            RotationTranscriptTests.Refused(refresh with { SetupReports = [.. reports.Take(2)] }, manifest));
        Assert.Equal("node 1's setup report is not signed by its identity key",
            RotationTranscriptTests.Refused(refresh with { SetupReports = [RotationTranscriptTests.Altered(reports[0]), .. reports.Skip(1)] }, manifest));
        Assert.Equal("node 1's setup report belongs to another run",
            RotationTranscriptTests.Refused(refresh with { SetupReports = [genReports[0], .. reports.Skip(1)] }, manifest));
        Assert.Equal("two setup reports from node 2",
            RotationTranscriptTests.Refused(refresh with { SetupReports = [reports[1], .. reports.Skip(1)] }, manifest));
        Assert.Equal("the new key's epoch is 7, not 1", RotationTranscriptTests.Refused(refresh with { NewPublicKeyPackage = WithEpoch(refresh.NewPublicKeyPackage, 7) }, manifest));
        Assert.Equal("the new key's epoch is 0, not 2", RotationTranscriptTests.Refused(reshare with { NewPublicKeyPackage = WithEpoch(reshare.NewPublicKeyPackage, 0) }, manifest));
        Assert.Equal("an ecdsa-dkls23 transcript needs every receiver's pairwise-setup report", RotationTranscriptTests.Refused(refresh with { SetupReports = null }, manifest));
        Assert.Contains("verifying share of participant",
            RotationTranscriptTests.Refused(refresh with { NewPublicKeyPackage = refresh.OldPublicKeyPackage! }, manifest), StringComparison.Ordinal);
        Assert.StartsWith("no broadcast from dealer", RotationTranscriptTests.Refused(refresh with { Broadcasts = [.. refresh.Broadcasts.Skip(1)] }, manifest), StringComparison.Ordinal);
        Assert.Equal("node 2 did not confirm the new key", RotationTranscriptTests.Refused(reshare with { Confirmations = [.. reshare.Confirmations.Skip(1)] }, manifest));

        // `conclave rotation verify`, offline: ok (0) and refused with its reason (1).
        string dir = Directory.CreateTempSubdirectory("conclave-dkls-transcript-").FullName;
        try
        {
            string good = Path.Combine(dir, "good.json"), bad = Path.Combine(dir, "bad.json");
            await File.WriteAllBytesAsync(good, refresh.ToJsonBytes());
            await File.WriteAllBytesAsync(bad, (refresh with { SetupReports = [.. reports.Take(2)] }).ToJsonBytes());
            (int exit, string stdout, string stderr) = RotationTranscriptTests.Cli("rotation", "verify", good, "--manifest", _c.Layout.ManifestPath);
            Assert.True(exit == 0, stderr);
            Assert.StartsWith("ok: refresh of key " + key.KeyId + " to version 2", stdout, StringComparison.Ordinal);
            Assert.Contains("every receiver reported the DKLs23 key of its pairwise setup", stdout, StringComparison.Ordinal);
            (exit, _, stderr) = RotationTranscriptTests.Cli("rotation", "verify", bad, "--manifest", _c.Layout.ManifestPath);
            Assert.Equal((1, "conclave: refused: node 3 did not report the key of the pairwise setup"), (exit, stderr.Trim()));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    private static async Task<RotationTranscript> TranscriptAsync(InMemoryRotationLog runs, string keyId, int version) =>
        RotationTranscript.FromJson(await runs.GetTranscriptAsync(keyId, version) ?? throw new InvalidOperationException($"no transcript for version {version}"));

    /// <summary>The DKLs23 public key (hex) with another epoch (the last four bytes of its encoding, big-endian).</summary>
    private static string WithEpoch(string hex, uint epoch)
    {
        byte[] bytes = Convert.FromHexString(hex);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(bytes.Length - 4), epoch);
        return Convert.ToHexStringLower(bytes);
    }

    /// <summary>
    /// Repair of an ecdsa-dkls23 key (docs/DKLS23.md "Repair"): node 3's store is deleted. A repair of node 2, which still
    /// holds its share, is refused. A repair whose coordinator is stopped dead once every holder stored its new pairwise
    /// state (setup3, before the decision) is aborted by a new coordinator: node 3 holds nothing, nodes 1 and 2 keep their
    /// old state and sign. Then the repair runs: same version and public key (so the same address); with node 1 down the
    /// key signs with nodes 2 and 3, with node 2 down with nodes 1 and 3 (libsecp256k1 and @noble/curves); every holder
    /// is at version 1 with no unfinished run; the repair's transcript verifies against the manifest and one without node
    /// 1's setup report is refused; and a refresh afterwards (node 3 deals from its repaired share) signs.
    /// </summary>
    [Fact]
    public async Task Repair_RebuildsALostShareAndItsPairwiseState_TheRepairedNodeSigns_AndAnAbortedRepairLeavesTheOldState()
    {
        var runs = new InMemoryRotationLog();
        var coordinator = new DklsCoordinator(new ThresholdEngine(_c.Coordinator)) { Runs = runs };
        DklsKeyInfo key = await coordinator.CreateKeyAsync("dkls-repair-" + Guid.NewGuid().ToString("N")[..8], 2, [1, 2, 3], CancellationToken.None);
        await DklsClusterChecks.SignManyAndVerify(coordinator, key, 2, [], "before the loss");

        await Assert.ThrowsAnyAsync<Exception>(() => coordinator.RepairAsync(key.KeyId, 2, CancellationToken.None));
        await AssertConvergedAsync(key, []);

        // Node 3 loses its store.
        _c.KillNode(3);
        foreach (string f in Directory.GetFiles(Path.Combine(_c.DataDir, "node-3", "data"), "*.db*"))
        {
            File.Delete(f);
        }

        _c.StartNode(3);
        _c.WaitForAll(TimeSpan.FromSeconds(120));
        Assert.Equal((0, "Absent", ""), await StatusAsync(3, key.KeyId));

        // Stopped dead after every holder stored its new state, before the run was prepared: the run is aborted.
        coordinator.FaultInjection = (kind, b) => kind == RotationKind.Repair && b == "setup3" ? throw new RotationCrashException(b) : Task.CompletedTask;
        await Assert.ThrowsAsync<RotationCrashException>(() => coordinator.RepairAsync(key.KeyId, 3, CancellationToken.None));
        var next = new DklsCoordinator(new ThresholdEngine(_c.Coordinator)) { Runs = runs };
        next.Register(key);
        RotationRun aborted = Assert.Single(await runs.ListForKeyAsync(key.KeyId, 10), r => r.Kind == RotationKind.Repair && !r.IsFinished);
        await next.ResumeAsync(aborted.RunId, CancellationToken.None);
        Assert.Equal(RotationState.Aborted, (await runs.GetAsync(aborted.RunId))!.State);
        Assert.Equal((0, "Absent", ""), await StatusAsync(3, key.KeyId));
        foreach (uint n in new uint[] { 1, 2 })
        {
            Assert.Equal((1, "Active", ""), await StatusAsync(n, key.KeyId));
        }

        await DklsClusterChecks.SignManyAndVerify(next, key, 2, [], "old state after the aborted repair");

        // The repair.
        DklsKeyInfo repaired = await next.RepairAsync(key.KeyId, 3, CancellationToken.None);
        Assert.Equal(1, repaired.Version);
        Assert.Equal(key.PublicKey.ToBytes(), repaired.PublicKey.ToBytes());
        Assert.Equal(EthereumAddress.FromPublicKey(key.PublicKey.GroupPublicKey), EthereumAddress.FromPublicKey(repaired.PublicKey.GroupPublicKey));
        await AssertConvergedAsync(repaired, []);
        RotationRun run = Assert.Single(await runs.ListForKeyAsync(key.KeyId, 10), r => r.Kind == RotationKind.Repair && r.State == RotationState.Retired);

        foreach (uint down in new uint[] { 1, 2 })
        {
            _c.KillNode(down);
            try
            {
                DklsCoordinator fresh = DklsClusterChecks.Coordinator(_c);
                fresh.Register(repaired);
                await DklsClusterChecks.SignManyAndVerify(fresh, repaired, 3, [], $"repaired node 3 with node {down} down");
            }
            finally
            {
                _c.StartNode(down);
                _c.WaitForAll(TimeSpan.FromSeconds(120));
            }
        }

        RotationTranscript transcript = RotationTranscript.FromJson(await runs.GetRunTranscriptAsync(run.RunId) ?? throw new InvalidOperationException("no repair transcript"));
        Assert.Equal(("repair", Conclave.Threshold.Dkls23.DklsScheme.Name, 1, 1), (transcript.Kind, transcript.Scheme, transcript.FromVersion, transcript.ToVersion));
        IReadOnlyList<string> repairReports = transcript.SetupReports ?? throw new InvalidOperationException("no setup reports in the repair's transcript");
        Assert.Equal([1u, 2u], transcript.Dealers);
        Assert.Equal([3u], transcript.Receivers);
        Assert.Equal(3, repairReports.Count);
        Assert.Equal(new TranscriptCheck(true, "ok"), TranscriptVerifier.Verify(transcript, _c.Coordinator.Manifest));
        Assert.Equal("node 1 did not report the key of the pairwise setup",
            RotationTranscriptTests.Refused(transcript with { SetupReports = [.. repairReports.Skip(1)] }, _c.Coordinator.Manifest));

        DklsKeyInfo refreshed = await next.RefreshAsync(key.KeyId, CancellationToken.None);
        Assert.Equal(2, refreshed.Version);
        await DklsClusterChecks.SignManyAndVerify(next, refreshed, 2, [], "refreshed after the repair");
    }

    [Fact]
    public async Task Reshare2Of3To3Of5_SignsWithThreeOfTheFive_UnderTheSameAddress()
    {
        DklsCoordinator coordinator = DklsClusterChecks.Coordinator(_c);
        DklsKeyInfo key = await coordinator.CreateKeyAsync("dkls-reshare-" + Guid.NewGuid().ToString("N")[..8], 2, [1, 2, 3], CancellationToken.None);
        DklsKeyInfo reshared = await coordinator.ReshareAsync(key.KeyId, 3, [1, 2, 3, 4, 5], CancellationToken.None);
        Assert.Equal(2, reshared.Version);
        Assert.Equal(3, reshared.Threshold);
        Assert.Equal([1u, 2u, 3u, 4u, 5u], reshared.Nodes);
        Assert.Equal(EthereumAddress.FromPublicKey(key.PublicKey.GroupPublicKey), EthereumAddress.FromPublicKey(reshared.PublicKey.GroupPublicKey));
        Assert.Equal(key.PublicKey.Epoch + 1, reshared.PublicKey.Epoch);
        await DklsClusterChecks.SignManyAndVerify(coordinator, reshared, 6, [], "reshared 3of5");
        await AssertConvergedAsync(reshared, []);
        await AssertOldVersionDoesNotSignAsync(key);

        // Three of the five sign with nodes 1 and 2 down: the new members 4 and 5 hold working shares.
        _c.KillNode(1);
        _c.KillNode(2);
        try
        {
            var fresh = DklsClusterChecks.Coordinator(_c);
            fresh.Register(reshared);
            byte[] digest = SHA256.HashData("three of five"u8);
            DklsSignatureResult sig = await fresh.SignDigestAsync(key.KeyId, digest, [], CancellationToken.None);
            Assert.True(EcdsaSecp256k1.Instance.Verify(key.PublicKey.GroupPublicKey, digest, sig.Signature));
            Assert.Equal(2, sig.KeyVersion);
        }
        finally
        {
            _c.StartNode(1);
            _c.StartNode(2);
            _c.WaitForAll(TimeSpan.FromSeconds(60));
        }
    }

    [Fact]
    public async Task ReshareToAnotherNodeSet_TheNodesLeftHoldNothing_AndTheNewSetSigns()
    {
        DklsCoordinator coordinator = DklsClusterChecks.Coordinator(_c);
        DklsKeyInfo key = await coordinator.CreateKeyAsync("dkls-move-" + Guid.NewGuid().ToString("N")[..8], 2, [1, 2, 3], CancellationToken.None);
        DklsKeyInfo moved = await coordinator.ReshareAsync(key.KeyId, 2, [3, 4, 5], CancellationToken.None);
        Assert.Equal([3u, 4u, 5u], moved.Nodes);
        Assert.Equal(key.PublicKey.GroupPublicKey, moved.PublicKey.GroupPublicKey);
        await DklsClusterChecks.SignManyAndVerify(coordinator, moved, 4, [], "moved");
        await AssertConvergedAsync(moved, [1, 2]);
        await AssertOldVersionDoesNotSignAsync(key);

        // And back to a committee that includes the nodes that left (their destroyed record gets a new version).
        DklsKeyInfo back = await coordinator.ReshareAsync(key.KeyId, 2, [1, 2, 3], CancellationToken.None);
        Assert.Equal(3, back.Version);
        await DklsClusterChecks.SignManyAndVerify(coordinator, back, 2, [], "moved back");
        await AssertConvergedAsync(back, [4, 5]);
    }

    /// <summary>
    /// Forward secrecy of the pairwise setup (docs/ROTATION.md "Forward secrecy of relayed shares"): an observer records
    /// the coordinator's traffic through a key generation and a refresh, later takes node 2's identity file and KEK, and
    /// still cannot open any setup message addressed to node 2: not static-static (how they were sealed before), nor with
    /// node 2's long-term key against the sender's announced run key or long-term key under the context they were really
    /// sealed with.
    /// </summary>
    [Fact]
    public async Task RecordedSetupMessages_DoNotOpenWithTheNodesLongTermKeysTakenLater()
    {
        var recorded = new System.Collections.Concurrent.ConcurrentQueue<Envelope>();
        DklsCoordinator coordinator = DklsClusterChecks.Coordinator(_c);
        DklsKeyInfo key;
        _c.Coordinator.ObserveReplies(recorded.Enqueue);
        try
        {
            key = await coordinator.CreateKeyAsync("dkls-fs-" + Guid.NewGuid().ToString("N")[..8], 2, [1, 2, 3], CancellationToken.None);
            key = await coordinator.RefreshAsync(key.KeyId, CancellationToken.None);
        }
        finally
        {
            _c.Coordinator.ObserveReplies(null);
        }

        await DklsClusterChecks.SignManyAndVerify(coordinator, key, 2, [], "forward secrecy");

        Conclave.Node.Config.ClusterManifest manifest = _c.Manifest;
        var config = Conclave.Node.Config.NodeConfig.Load(_c.Layout.NodeConfigPath(2));
        using Conclave.Crypto.Memory.SecretBuffer kek = Conclave.Node.Hosting.KekFile.Read(config.Resolve(config.KekFile));
        using NodeIdentity stolen = NodeIdentity.Unseal(2, kek.ReadOnlySpan, File.ReadAllBytes(Path.Combine(config.Resolve(config.DataDir), "identity.sealed")));
        Assert.Equal(manifest.Node(2).AgreementKey, Convert.ToHexStringLower(stolen.AgreementPublicKey));

        List<Envelope> setup = [.. recorded.Where(e => e.Kind == Conclave.Node.Threshold.Dkls23.DklsMessages.SetupMessage && e.Recipients.SequenceEqual([2u]))];
        Assert.Equal(8, setup.Count); // two runs × two rounds × two peers
        Assert.Equal(2, setup.Select(e => e.SessionId).Distinct().Count());
        List<Envelope> runKeys = [.. recorded.Where(e => e.Kind == FrostMessages.DkgAgreementKey)];
        foreach (Envelope m in setup)
        {
            byte[] session = m.SessionId.ToByteArray();
            byte[] senderRunKey = RunAgreementKey.VerifyAnnouncement(runKeys.Single(k => k.Sender == m.Sender && k.SessionId == m.SessionId).Payload.Span, manifest, m.Sender, session, key.KeyId);
            byte[] ownRunKey = RunAgreementKey.VerifyAnnouncement(runKeys.Single(k => k.Sender == 2 && k.SessionId == m.SessionId).Payload.Span, manifest, 2, session, key.KeyId);
            byte[] senderStatic = Convert.FromHexString(manifest.Node(m.Sender).AgreementKey);

            // Static-static, as HandlerSupport.SealToLongTermKey sealed every setup message before this change.
            Assert.False(Opens(stolen, senderStatic, Conclave.Node.Threshold.Dkls23.DklsMessages.SealContext(session, m.Round, m.Sender, 2), m), $"setup message {m.Round} from node {m.Sender} opened static-static");

            byte[] sealedContext = RunAgreementKey.SealingContext(Conclave.Node.Threshold.Dkls23.DklsMessages.RunSealContext(session, m.Round, m.Sender, 2), senderRunKey, ownRunKey);
            Assert.False(Opens(stolen, senderRunKey, sealedContext, m), $"setup message {m.Round} from node {m.Sender} opened with node 2's long-term key");
            Assert.False(Opens(stolen, senderStatic, sealedContext, m), $"setup message {m.Round} from node {m.Sender} opened with both long-term keys");
        }
    }

    /// <summary>
    /// Forward secrecy of the signing rounds (docs/DKLS23.md "Session agreement keys"): an observer records two three-round
    /// signatures and a presigning session of a 3-of-3 key (so node 2 takes part in each with two peers), later takes node
    /// 2's identity file and KEK. No signing message to or from node 2 opens with what was taken, round one (the
    /// commitments to R_j and the OT-extension receiver messages) as well as round two (the VOLE answers, openings, ψ, Γ):
    /// not static-static (how every signing message was sealed at first), not from the sender's session key to the
    /// recipient's long-term key (how round one was sealed before the delivery step), and not with node 2's long-term key
    /// in place of either session key under the context the message was really sealed with. Positive control: a message
    /// sealed the way round one to node 2 was sealed before (a session key to node 2's long-term key, same context) does
    /// open with the stolen key through the same check, so the check would see a round one that is not forward secret.
    /// The signatures verify.
    /// </summary>
    [Fact]
    public async Task RecordedSigningSessions_RoundsOneAndTwoDoNotOpenWithTheNodesLongTermKeysTakenLater()
    {
        var recorded = new System.Collections.Concurrent.ConcurrentQueue<Envelope>();
        DklsCoordinator coordinator = DklsClusterChecks.Coordinator(_c);
        DklsKeyInfo key = await coordinator.CreateKeyAsync("dkls-sfs-" + Guid.NewGuid().ToString("N")[..8], 3, [1, 2, 3], CancellationToken.None);
        var presigner = new DklsCoordinator(new ThresholdEngine(_c.Coordinator)) { PresignPoolSize = 1, PresignParallelism = 1 };
        presigner.Register(key);
        byte[] digest = SHA256.HashData("presigned under session keys"u8);
        _c.Coordinator.ObserveReplies(recorded.Enqueue);
        try
        {
            await DklsClusterChecks.SignManyAndVerify(coordinator, key, 2, [], "session keys");
            await presigner.PresignAsync(key.KeyId, [], CancellationToken.None);
        }
        finally
        {
            _c.Coordinator.ObserveReplies(null); // before the online round, whose take starts a background refill
        }

        DklsSignatureResult presigned = await presigner.SignDigestAsync(key.KeyId, digest, [], CancellationToken.None);
        Assert.Equal(1, presigner.PresignedSignatures);
        Assert.True(EcdsaSecp256k1.Instance.Verify(key.PublicKey.GroupPublicKey, digest, presigned.Signature));

        Conclave.Node.Config.ClusterManifest manifest = _c.Manifest;
        var config = Conclave.Node.Config.NodeConfig.Load(_c.Layout.NodeConfigPath(2));
        using Conclave.Crypto.Memory.SecretBuffer kek = Conclave.Node.Hosting.KekFile.Read(config.Resolve(config.KekFile));
        using NodeIdentity stolen = NodeIdentity.Unseal(2, kek.ReadOnlySpan, File.ReadAllBytes(Path.Combine(config.Resolve(config.DataDir), "identity.sealed")));
        byte[] ownStatic = Convert.FromHexString(manifest.Node(2).AgreementKey);
        Assert.Equal(ownStatic, stolen.AgreementPublicKey);

        const string Sign = Conclave.Node.Threshold.Dkls23.DklsMessages.SignMessage;
        List<Envelope> announcements = [.. recorded.Where(e => e.Kind == Conclave.Node.Threshold.Dkls23.DklsMessages.SignAgreementKey)];
        List<Envelope> messages = [.. recorded.Where(e => e.Kind == Sign)];
        Assert.Equal(3, messages.Select(e => e.SessionId).Distinct().Count()); // two signatures and one presignature
        Assert.Equal(9, announcements.Count); // one per signer and session, to both its peers
        Assert.All(announcements, a => Assert.Equal(2, a.Recipients.Count));
        byte[] SessionKey(uint node, Envelope m) => RunAgreementKey.VerifyAnnouncement(
            announcements.Single(a => a.Sender == node && a.SessionId == m.SessionId).Payload.Span, manifest, node, m.SessionId.ToByteArray(), key.KeyId);

        List<Envelope> round2To2 = [.. messages.Where(m => m.Round == 2 && m.Recipients.SequenceEqual([2u]))];
        Assert.Equal(6, round2To2.Count);
        List<Envelope> round1From2 = [.. messages.Where(m => m.Round == 1 && m.Sender == 2)];
        Assert.Equal(6, round1From2.Count);
        List<Envelope> round1To2 = [.. messages.Where(m => m.Round == 1 && m.Recipients.SequenceEqual([2u]))];
        Assert.Equal(6, round1To2.Count);
        List<Envelope> round2From2 = [.. messages.Where(m => m.Round == 2 && m.Sender == 2)];
        Assert.Equal(6, round2From2.Count);
        foreach (Envelope m in round2To2.Concat(round1From2).Concat(round1To2).Concat(round2From2))
        {
            uint to = Assert.Single(m.Recipients);
            uint peer = m.Sender == 2 ? to : m.Sender;
            byte[] session = m.SessionId.ToByteArray();
            byte[] peerStatic = Convert.FromHexString(manifest.Node(peer).AgreementKey);
            byte[] peerSession = SessionKey(peer, m);
            string what = $"round-{(m.Round == 1 ? "one" : "two")} message from node {m.Sender} to node {to}";
            Assert.False(Opens(stolen, peerStatic, Conclave.Node.Threshold.Dkls23.DklsMessages.SealContext(session, m.Round, m.Sender, to), m), $"{what} opened static-static");
            byte[] context = Conclave.Node.Threshold.Dkls23.DklsMessages.SignSealContext(session, m.Round, m.Sender, to);
            byte[] sealing = RunAgreementKey.SealingContext(context, SessionKey(m.Sender, m), SessionKey(to, m));
            Assert.False(Opens(stolen, peerSession, sealing, m), $"{what} opened with node 2's long-term key against node {peer}'s session key");
            Assert.False(Opens(stolen, peerStatic, sealing, m), $"{what} opened with both long-term keys");
            byte[] toStatic = Convert.FromHexString(manifest.Node(to).AgreementKey);
            byte[] ephemeralStatic = RunAgreementKey.SealingContext(context, SessionKey(m.Sender, m), toStatic);
            Assert.False(Opens(stolen, m.Sender == 2 ? toStatic : peerSession, ephemeralStatic, m), $"{what} opened as sealed from a session key to a long-term key");
        }

        // Positive control: sealed as round one to node 2 was before the delivery step (the sender's session key to node 2's
        // long-term key, the same context), the same check opens it with the stolen key.
        Envelope recordedToTwo = round1To2[0];
        byte[] controlContext = Conclave.Node.Threshold.Dkls23.DklsMessages.SignSealContext(recordedToTwo.SessionId.ToByteArray(), 1, recordedToTwo.Sender, 2);
        using (RunAgreementKey standIn = RunAgreementKey.Generate(stolen, recordedToTwo.SessionId.ToByteArray(), key.KeyId))
        {
            Envelope control = recordedToTwo.Clone();
            control.Payload = Google.Protobuf.ByteString.CopyFrom(standIn.SealTo(ownStatic, controlContext, TestSeed.Bytes(64, "round-one control")));
            Assert.True(Opens(stolen, standIn.PublicKey, RunAgreementKey.SealingContext(controlContext, standIn.PublicKey, ownStatic), control));
        }
    }

    /// <summary>
    /// A signing attempt that fails (node 5 of a 2-of-2 key on nodes 1 and 5 is down, so node 1 ran round one alone) is
    /// aborted on the other signer: node 1 drops the session and frees its slot with node 5 at once, so right afterwards
    /// all 16 of its sessions with node 5 are free (the 17th is refused: the limit is what is measured). Before
    /// dkls.sign.abort the abandoned sessions kept their slots until the two-minute sweep and the 16th was refused. The
    /// 16 sessions the test opened are then ended by dkls.sign.abort too, and the key signs.
    /// </summary>
    [Fact]
    public async Task AFailedSigningAttempt_IsAbortedOnTheOtherSigner_WhichFreesItsSessionSlotsAtOnce()
    {
        DklsCoordinator coordinator = DklsClusterChecks.Coordinator(_c);
        DklsKeyInfo key = await coordinator.CreateKeyAsync("dkls-abort-" + Guid.NewGuid().ToString("N")[..8], 2, [1, 5], CancellationToken.None);
        _c.KillNode(5);
        try
        {
            await Assert.ThrowsAnyAsync<Exception>(() => coordinator.SignDigestAsync(key.KeyId, SHA256.HashData("abort"u8), [], CancellationToken.None));
        }
        finally
        {
            _c.StartNode(5);
            _c.WaitForAll(TimeSpan.FromSeconds(60));
        }

        byte[] payload = new PayloadWriter().String(key.KeyId).U32(1).U32(2).U32(1).U32(5).U32(0).ToArray();
        var open = new List<byte[]>();
        async Task<byte[]> Round1()
        {
            byte[] session = Cluster.NewSessionId();
            await _c.Coordinator.Node(1).StepAsync(_c.Coordinator.Request(session, Conclave.Node.Threshold.Dkls23.DklsMessages.SignRound1, 1, [1], payload), [], TimeSpan.FromSeconds(30), CancellationToken.None);
            return session;
        }

        try
        {
            for (int i = 0; i < 16; i++)
            {
                open.Add(await Round1());
            }

            NodeCallException refused = await Assert.ThrowsAsync<NodeCallException>(Round1);
            Assert.Contains("signing sessions with node 5", refused.Message, StringComparison.Ordinal);
        }
        finally
        {
            foreach (byte[] session in open)
            {
                await _c.Coordinator.Node(1).StepAsync(_c.Coordinator.Request(session, Conclave.Node.Threshold.Dkls23.DklsMessages.SignAbort, 4, [1], []), [], TimeSpan.FromSeconds(30), CancellationToken.None);
            }
        }

        DklsSignatureResult ok = await coordinator.SignDigestAsync(key.KeyId, SHA256.HashData("after abort"u8), [], CancellationToken.None);
        Assert.True(EcdsaSecp256k1.Instance.Verify(key.PublicKey.GroupPublicKey, SHA256.HashData("after abort"u8), ok.Signature));
    }

    /// <summary>
    /// A coordinator that aborts a session on node 1 and runs its round one again under the same session id is refused,
    /// naming nobody (the node remembers the ids it used: UsedSessionIds). A node restarted meanwhile has forgotten them
    /// and signs a second session agreement key for the session; relaying both to node 5 (with the delivery of round one,
    /// where the peers' session keys are checked) must not make node 5 name node 1 (an honest node would be framed). Node
    /// 5 refuses the session naming nobody; the key then signs.
    /// </summary>
    [Fact]
    public async Task TwoSessionKeysFromOneSigner_AreRefusedNamingNobody_SoACoordinatorCannotFrameAnHonestNode()
    {
        DklsCoordinator coordinator = DklsClusterChecks.Coordinator(_c);
        DklsKeyInfo key = await coordinator.CreateKeyAsync("dkls-twice-" + Guid.NewGuid().ToString("N")[..8], 2, [1, 5], CancellationToken.None);
        byte[] payload = new PayloadWriter().String(key.KeyId).U32((uint)key.Version).U32(2).U32(1).U32(5).U32(0).ToArray();
        byte[] session = Cluster.NewSessionId();
        const string Round1 = Conclave.Node.Threshold.Dkls23.DklsMessages.SignRound1;
        Task<IReadOnlyList<Envelope>> Step(uint node, string kind, uint round, byte[] body, IEnumerable<Envelope> relayed) =>
            _c.Coordinator.Node(node).StepAsync(_c.Coordinator.Request(session, kind, round, [node], body), relayed, TimeSpan.FromSeconds(30), CancellationToken.None);

        IReadOnlyList<Envelope> first = await Step(1, Round1, 1, payload, []);
        await Step(1, Conclave.Node.Threshold.Dkls23.DklsMessages.SignAbort, 4, [], []);
        NodeCallException reused = await Assert.ThrowsAsync<NodeCallException>(() => Step(1, Round1, 1, payload, []));
        Assert.Null(reused.Culprit);
        Assert.Contains("node 1 ran a session under this session id already", reused.Message, StringComparison.Ordinal);
        _c.KillNode(1);
        _c.StartNode(1);
        _c.WaitForAll(TimeSpan.FromSeconds(120));
        IReadOnlyList<Envelope> second = await Step(1, Round1, 1, payload, []);
        await Step(5, Round1, 1, payload, []);
        Envelope[] keys = [.. first.Concat(second).Where(e => e.Kind == Conclave.Node.Threshold.Dkls23.DklsMessages.SignAgreementKey)];
        Assert.Equal(2, keys.Length);
        Assert.NotEqual(keys[0].Payload, keys[1].Payload); // two different, both validly signed by node 1 for this session

        NodeCallException refused = await Assert.ThrowsAsync<NodeCallException>(() => Step(5, Conclave.Node.Threshold.Dkls23.DklsMessages.SignDeliver, 1, [], keys));
        Assert.Contains("two session agreement keys from node 1", refused.Message, StringComparison.Ordinal);
        Assert.Null(refused.Culprit);

        await Step(1, Conclave.Node.Threshold.Dkls23.DklsMessages.SignAbort, 4, [], []);
        await Step(5, Conclave.Node.Threshold.Dkls23.DklsMessages.SignAbort, 4, [], []);
        DklsSignatureResult ok = await coordinator.SignDigestAsync(key.KeyId, SHA256.HashData("after a double round one"u8), [], CancellationToken.None);
        Assert.True(EcdsaSecp256k1.Instance.Verify(key.PublicKey.GroupPublicKey, SHA256.HashData("after a double round one"u8), ok.Signature));
    }

    private static bool Opens(NodeIdentity stolen, byte[] peerKey, byte[] context, Envelope sealedMessage)
    {
        using Conclave.Crypto.Memory.SecretBuffer k = stolen.DeriveSharedKey(peerKey, context);
        try
        {
            using Conclave.Crypto.Memory.SecretBuffer plain = Conclave.Crypto.Aead.Envelope.Open(k.ReadOnlySpan, sealedMessage.Payload.ToByteArray(), context);
            return true;
        }
        catch (Conclave.Crypto.Aead.EnvelopeException)
        {
            return false;
        }
    }

    /// <summary>Every holder reports the key at the coordinator's version with no unfinished run; those it left report it destroyed.</summary>
    private async Task AssertConvergedAsync(DklsKeyInfo key, uint[] left)
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

    /// <summary>A coordinator that still holds the replaced version gets no signature: every node erased that version's share.</summary>
    private async Task AssertOldVersionDoesNotSignAsync(DklsKeyInfo old)
    {
        var stale = DklsClusterChecks.Coordinator(_c);
        stale.Register(old);
        QuorumUnavailableException e = await Assert.ThrowsAsync<QuorumUnavailableException>(() => stale.SignDigestAsync(old.KeyId, new byte[32], [], CancellationToken.None));
        Assert.True(e.Message.Contains("erased", StringComparison.Ordinal) || e.Message.Contains("destroyed", StringComparison.Ordinal), e.Message);
    }

    private async Task<(int Version, string State, string ActiveRun)> StatusAsync(uint node, string keyId)
    {
        (int version, string state, string run, _) = await NodeKeyStatus.ReadAsync(_c.Coordinator, node, keyId);
        return (version, state, run);
    }
}
