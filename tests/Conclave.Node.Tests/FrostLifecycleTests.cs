using Conclave.Node.Config;
using Conclave.Node.Frost;
using Conclave.Node.Threshold.Engine;
using Conclave.Server.Hosting;
using Conclave.Server.Coordinator;
using Conclave.Threshold.Frost;
using Conclave.Threshold.Frost.Ciphersuites;

namespace Conclave.Node.Tests;

/// <summary>A 5-node cluster of real processes for DKG, refresh, reshare and failure tests.</summary>
public sealed class FiveNodeCluster : IDisposable
{
    /// <summary>Classes that start a five-node cluster run one after another (ten node processes at once overload two cores).</summary>
    public const string Sequential = "five-node clusters, one at a time";

    public LocalClusterProcesses Cluster { get; } = new(RepoPaths.CliDll, 5, 3);

    public void Dispose() => Cluster.Dispose();
}

/// <summary>Key lifecycle through real signer nodes: DKG, refresh (two-phase), reshare, node failures.</summary>
[Collection(FiveNodeCluster.Sequential)]
public sealed class FrostLifecycleTests(FiveNodeCluster fixture) : IClassFixture<FiveNodeCluster>
{
    private readonly LocalClusterProcesses _c = fixture.Cluster;

    private static async Task SignAndVerify(FrostCoordinator coordinator, FrostKeyInfo key, int count)
    {
        for (int i = 0; i < count; i++)
        {
            byte[] msg = TestSeed.Bytes(32, $"sign {count} {i}");
            byte[] sig = await coordinator.SignAsync(key.KeyId, msg, CancellationToken.None);
            // frost-taproot signs under the BIP-86 output key of its internal key (docs/FROST.md "Taproot").
            byte[] verifying = key.Suite.SchemeName == "frost-taproot"
                ? Conclave.Chains.Bitcoin.TaprootAddress.Bip86OutputKey(key.PublicKeyPackage.VerificationKey).OutputKey
                : key.PublicKeyPackage.VerificationKey;
            Assert.True(key.Suite.Verify(verifying, msg, sig));
        }
    }

    [Theory]
    [InlineData("frost-ed25519", 2, new uint[] { 1, 2, 3 })]
    [InlineData("frost-secp256k1", 3, new uint[] { 1, 2, 3, 4, 5 })]
    [InlineData("frost-taproot", 2, new uint[] { 2, 4, 5 })]
    public async Task Dkg_CreatesAKeyEveryParticipantAgreesOn_AndItSigns(string scheme, int t, uint[] nodes)
    {
        Assert.True(FrostCiphersuite.TryGet(scheme, out FrostCiphersuite? suite));
        var coordinator = new FrostCoordinator(_c.Coordinator) { PoolBatch = 16 };
        FrostKeyInfo key = await coordinator.CreateKeyAsync("dkg-" + Guid.NewGuid().ToString("N"), suite, t, nodes, CancellationToken.None);
        Assert.Equal(t, key.PublicKeyPackage.Threshold);
        Assert.Equal(nodes, key.Nodes);
        await SignAndVerify(coordinator, key, 20);
    }

    [Fact]
    public async Task Refresh_KeepsThePublicKey_AndANodeRestartedWithItsPreRefreshStoreIsRefused()
    {
        var coordinator = new FrostCoordinator(_c.Coordinator) { PoolBatch = 16 };
        FrostKeyInfo key = await coordinator.CreateKeyAsync("refresh-" + Guid.NewGuid().ToString("N"), FrostCiphersuite.Ed25519Sha512, 2, [1, 2, 3], CancellationToken.None);
        await SignAndVerify(coordinator, key, 5);

        // Keep a copy of node 2's store as it is before the refresh (a backup, say).
        string data = Path.Combine(_c.DataDir, "node-2", "data");
        string backup = Path.Combine(_c.DataDir, "node-2-backup");
        _c.KillNode(2);
        Directory.CreateDirectory(backup);
        foreach (string f in Directory.GetFiles(data, "*.db*"))
        {
            File.Copy(f, Path.Combine(backup, Path.GetFileName(f)), overwrite: true);
        }

        _c.StartNode(2);
        _c.WaitForAll(TimeSpan.FromSeconds(60));

        FrostKeyInfo refreshed = await coordinator.RefreshAsync(key.KeyId, CancellationToken.None);
        Assert.Equal(key.PublicKeyPackage.VerificationKey, refreshed.PublicKeyPackage.VerificationKey);
        Assert.Equal(2, refreshed.Version);
        Assert.NotEqual(key.PublicKeyPackage.GetVerifyingShare(key.PublicKeyPackage.Participants[0]),
            refreshed.PublicKeyPackage.GetVerifyingShare(refreshed.PublicKeyPackage.Participants[0]));
        await SignAndVerify(coordinator, refreshed, 10);

        // Node 2 comes back with its pre-refresh store: it is refused, and signing goes on with nodes 1 and 3.
        _c.KillNode(2);
        foreach (string f in Directory.GetFiles(data, "*.db*"))
        {
            File.Delete(f);
        }

        foreach (string f in Directory.GetFiles(backup))
        {
            File.Copy(f, Path.Combine(data, Path.GetFileName(f)));
        }

        _c.StartNode(2);
        _c.WaitForAll(TimeSpan.FromSeconds(60));
        byte[] commit = new Conclave.Node.Protocol.PayloadWriter().String(key.KeyId).U32(4).U32(2).ToArray();
        NodeCallException refused = await Assert.ThrowsAsync<NodeCallException>(() => _c.Coordinator.Node(2).StepAsync(
            _c.Coordinator.Request(Cluster.NewSessionId(), Conclave.Node.Frost.FrostMessages.Commit, 0, [2], commit), [], TimeSpan.FromSeconds(10), CancellationToken.None));
        Assert.Contains("version 1, not 2", refused.Message, StringComparison.Ordinal);
        await SignAndVerify(coordinator, refreshed, 10);

        // And a coordinator still holding the pre-refresh public package gets nothing signed by anyone.
        var stale = new FrostCoordinator(_c.Coordinator) { PoolBatch = 4 };
        stale.Register(key);
        await Assert.ThrowsAsync<QuorumUnavailableException>(() => stale.SignAsync(key.KeyId, new byte[32], CancellationToken.None));
    }

    [Fact]
    public async Task Reshare_TwoOfThreeToThreeOfFive_SameKey_OldCommitteeUseless()
    {
        var coordinator = new FrostCoordinator(_c.Coordinator) { PoolBatch = 16 };
        FrostKeyInfo key = await coordinator.CreateKeyAsync("reshare-" + Guid.NewGuid().ToString("N"), FrostCiphersuite.Secp256k1Taproot, 2, [1, 2, 3], CancellationToken.None);
        await SignAndVerify(coordinator, key, 5);

        FrostKeyInfo moved = await coordinator.ReshareAsync(key.KeyId, 3, [1, 2, 3, 4, 5], CancellationToken.None);
        Assert.Equal(key.PublicKeyPackage.VerificationKey, moved.PublicKeyPackage.VerificationKey);
        Assert.Equal(3, moved.PublicKeyPackage.Threshold);
        Assert.Equal([1u, 2u, 3u, 4u, 5u], moved.Nodes);
        await SignAndVerify(coordinator, moved, 10);

        // The old 2-of-3 sharing is gone: a coordinator holding the old public package cannot get a signature.
        var old = new FrostCoordinator(_c.Coordinator) { PoolBatch = 4 };
        old.Register(key);
        await Assert.ThrowsAsync<QuorumUnavailableException>(() => old.SignAsync(key.KeyId, new byte[32], CancellationToken.None));
    }

    [Fact]
    public async Task Repair_RebuildsTheShareOfANodeWhoseStoreWasDeleted()
    {
        var coordinator = new FrostCoordinator(_c.Coordinator) { PoolBatch = 8 };
        FrostKeyInfo key = await coordinator.CreateKeyAsync("repair-" + Guid.NewGuid().ToString("N"), FrostCiphersuite.Secp256k1Sha256, 2, [1, 2, 3], CancellationToken.None);

        // Node 1 loses its store: stop it, delete the SQLite files, start it again with an empty store.
        _c.KillNode(1);
        string data = Path.Combine(_c.DataDir, "node-1", "data");
        foreach (string f in Directory.GetFiles(data, "*.db*"))
        {
            File.Delete(f);
        }

        _c.StartNode(1);
        _c.WaitForAll(TimeSpan.FromSeconds(60));

        await coordinator.RepairAsync(key.KeyId, 1, CancellationToken.None);

        // Node 1 signs again: force quorums that include it by taking node 3 out.
        _c.KillNode(3);
        try
        {
            await SignAndVerify(coordinator, key, 10);
        }
        finally
        {
            _c.StartNode(3);
            _c.WaitForAll(TimeSpan.FromSeconds(60));
        }
    }

    [Fact]
    public async Task NodeSendingABadShare_IsNamedAsTheCulprit_AndNoSignatureIsReturned()
    {
        var coordinator = new FrostCoordinator(_c.Coordinator) { PoolBatch = 8 };
        FrostKeyInfo key = await coordinator.CreateKeyAsync("culprit-" + Guid.NewGuid().ToString("N"), FrostCiphersuite.Secp256k1Sha256, 2, [1, 4], CancellationToken.None);
        SetFault(4, "bad-share");
        try
        {
            CulpritException e = await Assert.ThrowsAsync<CulpritException>(() => coordinator.SignAsync(key.KeyId, TestSeed.Bytes(32, "culprit message"), CancellationToken.None));
            Assert.Equal([4u], e.Culprits);
        }
        finally
        {
            SetFault(4, null);
        }

        await SignAndVerify(coordinator, key, 3);
    }

    /// <summary>
    /// Issue 14 item 2 through real nodes, with the test as a malicious coordinator: the start step reveals nothing but a
    /// commitment; a node refuses round two before the reveal step, refuses a reveal step that lacks another dealer's
    /// commitment (naming that dealer), and refuses a relayed commitment whose bytes the coordinator altered or a
    /// dealer's round-one package relayed in place of its commitment (naming the dealer).
    /// </summary>
    [Fact]
    public async Task DkgReveal_NeedsEveryOtherDealersCommitment_AndRefusesAlteredOnes()
    {
        FrostCiphersuite suite = FrostCiphersuite.Secp256k1Sha256;
        uint[] nodes = [1, 2, 3];
        TimeSpan timeout = TimeSpan.FromSeconds(30);
        Task<IReadOnlyList<Conclave.Node.Rpc.Envelope>> Step(byte[] session, uint node, string kind, uint round, IEnumerable<Conclave.Node.Rpc.Envelope> relayed)
            => _c.Coordinator.Node(node).StepAsync(_c.Coordinator.Request(session, kind, round, [node], []), relayed, timeout, CancellationToken.None);

        async Task<(byte[] Session, string KeyId, Dictionary<uint, Conclave.Node.Rpc.Envelope> Commitments, Dictionary<uint, Conclave.Node.Rpc.Envelope> RunKeys)> StartAsync()
        {
            byte[] session = Cluster.NewSessionId();
            string keyId = "reveal-" + Guid.NewGuid().ToString("N");
            var w = new Conclave.Node.Protocol.PayloadWriter().U32((uint)DkgRunKind.KeyGeneration).String(keyId).String(suite.SchemeName).U32(2).U32(3).U32(1).U32(2).U32(3)
                .U32(3).U32(1).U32(2).U32(3).U32(0).Bytes([]).U32(0);
            byte[] start = w.ToArray();
            var commitments = new Dictionary<uint, Conclave.Node.Rpc.Envelope>();
            var runKeys = new Dictionary<uint, Conclave.Node.Rpc.Envelope>();
            foreach (uint n in nodes)
            {
                IReadOnlyList<Conclave.Node.Rpc.Envelope> reply = await _c.Coordinator.Node(n).StepAsync(
                    _c.Coordinator.Request(session, FrostMessages.DkgStart, 1, [n], start), [], timeout, CancellationToken.None);
                // Nothing but the commitment (and the node's run agreement key) leaves a dealer at the start: no round-one package.
                Assert.Equal([FrostMessages.DkgCommitment, FrostMessages.DkgAgreementKey], reply.Select(m => m.Kind));
                Conclave.Node.Rpc.Envelope e = reply[0];
                Assert.Equal(Identifier.FromInt(suite, (int)n), DkgCommitment.FromBytes(suite, e.Payload.Span).Sender);
                commitments[n] = e;
                runKeys[n] = reply[1];
            }

            return (session, keyId, commitments, runKeys);
        }

        (byte[] s1, string k1, Dictionary<uint, Conclave.Node.Rpc.Envelope> c1, Dictionary<uint, Conclave.Node.Rpc.Envelope> r1) = await StartAsync();

        // Node 1: round two (relaying nothing) before any reveal is refused: it holds no revealed round-one state.
        NodeCallException early = await Assert.ThrowsAsync<NodeCallException>(() => Step(s1, 1, FrostMessages.DkgRound2, 3, []));
        Assert.Equal(Grpc.Core.StatusCode.FailedPrecondition, early.Status);

        // Node 2: a reveal step without dealer 3's commitment is refused, naming dealer 3.
        NodeCallException missing = await Assert.ThrowsAsync<NodeCallException>(() => Step(s1, 2, FrostMessages.DkgReveal, 2, [c1[1], r1[1], r1[3]]));
        Assert.Equal(Grpc.Core.StatusCode.FailedPrecondition, missing.Status);
        Assert.Equal(3u, missing.Culprit);

        // Node 3: dealer 2's commitment with one byte of its package hash altered by the coordinator is refused, naming
        // dealer 2 (the commitment is signed by its dealer; the coordinator cannot change it).
        Conclave.Node.Rpc.Envelope altered = c1[2].Clone();
        byte[] bytes = altered.Payload.ToByteArray();
        bytes[^(suite.ElementSizeInBytes + 40)] ^= 1;
        altered.Payload = Google.Protobuf.ByteString.CopyFrom(bytes);
        NodeCallException tampered = await Assert.ThrowsAsync<NodeCallException>(() => Step(s1, 3, FrostMessages.DkgReveal, 2, [c1[1], altered, r1[1], r1[2]]));
        Assert.Equal(Grpc.Core.StatusCode.Unauthenticated, tampered.Status);
        Assert.Contains("from 2 has no valid signature", tampered.Message, StringComparison.Ordinal);

        // A second run: node 1 reveals once it has both other commitments; node 2 is then shown dealer 1's round-one
        // package in place of its commitment and refuses, naming dealer 1.
        (byte[] s2, string k2, Dictionary<uint, Conclave.Node.Rpc.Envelope> c2, Dictionary<uint, Conclave.Node.Rpc.Envelope> r2) = await StartAsync();
        Conclave.Node.Rpc.Envelope revealed = Assert.Single(await Step(s2, 1, FrostMessages.DkgReveal, 2, [c2[2], c2[3], r2[2], r2[3]]));
        Assert.Equal(FrostMessages.DkgRound1, revealed.Kind);
        Assert.Equal(Identifier.FromInt(suite, 1), DkgRound1Package.FromBytes(suite, revealed.Payload.Span).Sender);
        NodeCallException swapped = await Assert.ThrowsAsync<NodeCallException>(() => Step(s2, 2, FrostMessages.DkgReveal, 2, [revealed, c2[3], r2[1], r2[3]]));
        Assert.Equal(1u, swapped.Culprit);

        // Clean up both runs on every node.
        foreach ((byte[] session, string keyId) in new[] { (s1, k1), (s2, k2) })
        {
            byte[] abort = new Conclave.Node.Protocol.PayloadWriter().String(keyId).ToArray();
            foreach (uint n in nodes)
            {
                await _c.Coordinator.Node(n).StepAsync(_c.Coordinator.Request(session, FrostMessages.RotationAbort, 8, [n], abort), [], timeout, CancellationToken.None);
            }
        }
    }

    [Fact]
    public void FaultInjection_IsRefusedOnANodeReachableBeyondLoopback()
    {
        NodeConfig config = NodeConfig.Load(_c.Layout.NodeConfigPath(1));
        config.FaultInjection = "bad-share";
        config.Validate(); // positive control: the test cluster listens on loopback
        config.Listen = "[::1]:7999";
        config.Validate();
        foreach (string listen in new[] { "0.0.0.0:7999", "10.1.2.3:7999", "node1.example:7999" })
        {
            config.Listen = listen;
            ConfigException e = Assert.Throws<ConfigException>(config.Validate);
            Assert.Contains("loopback only", e.Message, StringComparison.Ordinal);
        }

        config.FaultInjection = null;
        config.Validate(); // an ordinary node may listen anywhere
    }

    private void SetFault(uint node, string? fault) => _c.RestartNode(node, fault);

    [Fact]
    public async Task NodeKilledMidSigning_SigningContinuesWithAnotherQuorum()
    {
        var coordinator = new FrostCoordinator(_c.Coordinator) { PoolBatch = 32 };
        FrostKeyInfo key = await coordinator.CreateKeyAsync("kill-" + Guid.NewGuid().ToString("N"), FrostCiphersuite.Ed25519Sha512, 2, [3, 4, 5], CancellationToken.None);
        await SignAndVerify(coordinator, key, 3);
        int signed = 0;
        var tenSigned = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Task loop = Task.Run(async () =>
        {
            for (int i = 0; i < 60; i++)
            {
                byte[] msg = TestSeed.Bytes(16, $"message {i}");
                byte[] sig = await coordinator.SignAsync(key.KeyId, msg, CancellationToken.None);
                Assert.True(key.Suite.Verify(key.PublicKeyPackage.VerificationKey, msg, sig));
                if (Interlocked.Increment(ref signed) == 10)
                {
                    tenSigned.TrySetResult();
                }
            }
        });

        // Kill node 4 once ten signatures are done (an event, not a spin); a failing loop or a stuck one ends the wait.
        Task first = await Task.WhenAny(tenSigned.Task, loop, Task.Delay(TimeSpan.FromMinutes(3)));
        if (first != tenSigned.Task)
        {
            await (first == loop ? loop : Task.CompletedTask);
            Assert.Fail($"only {Volatile.Read(ref signed)} signatures within 3 minutes before the kill");
        }

        _c.KillNode(4);
        try
        {
            await loop; // every one of the 60 signatures succeeds: 2-of-3 keeps working with one node down
            Assert.Equal(60, signed);
        }
        finally
        {
            _c.StartNode(4);
            _c.WaitForAll(TimeSpan.FromSeconds(60));
        }

        // After its restart node 4 has lost its nonces; its pooled commitments are refused and replaced.
        await SignAndVerify(coordinator, key, 10);
    }
}
