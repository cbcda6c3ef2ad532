using Conclave.Crypto.Memory;
using Conclave.Node.Config;
using Conclave.Node.Frost;
using Conclave.Node.Hosting;
using Conclave.Node.Protocol;
using Conclave.Node.Rpc;
using Conclave.Server.Coordinator;
using Conclave.Server.Hosting;
using Conclave.Threshold;
using Conclave.Threshold.Frost;
using Conclave.Threshold.Frost.Ciphersuites;
using Google.Protobuf;
using Grpc.Core;

namespace Conclave.Node.Tests;

/// <summary>
/// Evicting a suspect node through real signer node processes (docs/ROTATION.md "Evicting a suspect node"): every key
/// the node holds is reshared away from it; the node keeps its old shares intact (it is never contacted), and they
/// cannot contribute to any signature; every key still signs under its public key; the coordinator never chooses the
/// node again until it is re-admitted.
/// </summary>
[Collection(FiveNodeCluster.Sequential)]
public sealed class EvictionTests(FiveNodeCluster fixture) : IClassFixture<FiveNodeCluster>
{
    private readonly LocalClusterProcesses _c = fixture.Cluster;

    [Fact]
    public async Task EvictedNodesKeptShares_CannotContributeToAnySignature_AndEveryKeyStillSigns()
    {
        var coordinator = new FrostCoordinator(_c.Coordinator) { PoolBatch = 4 };
        DeterministicRandomSource messages = TestSeed.For("messages");
        string tag = Guid.NewGuid().ToString("N")[..8];
        FrostKeyInfo a = await coordinator.CreateKeyAsync("evict-a-" + tag, FrostCiphersuite.Secp256k1Sha256, 2, [1, 2, 3], CancellationToken.None);
        FrostKeyInfo b = await coordinator.CreateKeyAsync("evict-b-" + tag, FrostCiphersuite.Ed25519Sha512, 2, [2, 3, 4], CancellationToken.None);
        FrostKeyInfo c = await coordinator.CreateKeyAsync("evict-c-" + tag, FrostCiphersuite.Ed25519Sha512, 2, [1, 3, 5], CancellationToken.None);
        foreach (FrostKeyInfo k in new[] { a, b, c })
        {
            await SignAsync(coordinator, k, messages); // node 2's pools are filled for a and b
        }

        IReadOnlyList<FrostKeyInfo> moved = await coordinator.EvictAsync(2, null, CancellationToken.None);

        // a and b moved off node 2 (same threshold, the remaining holders); c was not held by it and is untouched.
        Assert.Equal([a.KeyId, b.KeyId], moved.Select(k => k.KeyId).Order(StringComparer.Ordinal));
        FrostKeyInfo a2 = coordinator.Find(a.KeyId)!, b2 = coordinator.Find(b.KeyId)!, c2 = coordinator.Find(c.KeyId)!;
        Assert.Equal((2, 2, "1,3"), (a2.Version, a2.PublicKeyPackage.Threshold, string.Join(",", a2.Nodes)));
        Assert.Equal((2, 2, "3,4"), (b2.Version, b2.PublicKeyPackage.Threshold, string.Join(",", b2.Nodes)));
        Assert.Equal((1, "1,3,5"), (c2.Version, string.Join(",", c2.Nodes)));
        foreach ((FrostKeyInfo before, FrostKeyInfo after) in new[] { (a, a2), (b, b2), (c, c2) })
        {
            Assert.Equal(before.PublicKeyPackage.VerificationKey, after.PublicKeyPackage.VerificationKey);
            await SignAsync(coordinator, after, messages);
        }

        // Node 2 was never contacted: it still holds version 1 of a and b, intact. The other old holders erased theirs.
        Assert.Equal((1, "Active"), await StatusAsync(2, a.KeyId));
        Assert.Equal((1, "Active"), await StatusAsync(2, b.KeyId));
        Assert.Equal((2, "Active"), await StatusAsync(1, a.KeyId));
        Assert.Equal((2, "Active"), await StatusAsync(4, b.KeyId));

        // Forced through node 2's kept share: node 2 still answers with a share of version 1 (it is intact), but the
        // holders of the new version refuse to co-sign any package that names node 2 (not a participant of their key),
        // and node 2's share alone is below the threshold: no signature under the group key can come of it.
        (byte[] id2, SigningCommitments c2v1) = await CommitAsync(2, a.KeyId, 1, a.Suite);
        (byte[] id1, SigningCommitments c1v2) = await CommitAsync(1, a.KeyId, 2, a.Suite);
        var package = new SigningPackage(TestSeed.Bytes(32, "forced package message"), [c1v2, c2v1]);
        SignatureShare old2 = await SignShareAsync(2, a.KeyId, id2, package, 1, a.Suite);
        NodeCallException cosign = await Assert.ThrowsAsync<NodeCallException>(() => SignShareAsync(1, a.KeyId, id1, package, 2, a.Suite));
        Assert.Contains("participants outside the key (culprits: 2)", cosign.Message, StringComparison.Ordinal);
        Assert.Throws<ThresholdProtocolException>(() => FrostAggregator.Aggregate(package, [old2], a.PublicKeyPackage, AggregationMode.VerifySignatureFirst));
        Assert.Throws<ThresholdProtocolException>(() => FrostAggregator.Aggregate(package, [old2], a2.PublicKeyPackage, AggregationMode.VerifySignatureFirst));

        // The other holders no longer have version 1 to pair with node 2's share: they refuse it.
        NodeCallException erased = await Assert.ThrowsAsync<NodeCallException>(() => CommitAsync(3, a.KeyId, 1, a.Suite));
        Assert.Contains("version", erased.Message, StringComparison.Ordinal);

        // A coordinator still holding the old package gets no signature (node 2 alone is below the threshold).
        var stale = new FrostCoordinator(_c.Coordinator) { PoolBatch = 2 };
        stale.Register(a);
        await Assert.ThrowsAnyAsync<Exception>(() => stale.SignAsync(a.KeyId, new byte[32], CancellationToken.None));
    }

    [Fact]
    public async Task AnEvictedNodeIsNeverChosenAgain_UntilReadmitted()
    {
        var coordinator = new FrostCoordinator(_c.Coordinator) { PoolBatch = 4 };
        DeterministicRandomSource messages = TestSeed.For("messages");
        string tag = Guid.NewGuid().ToString("N")[..8];
        FrostKeyInfo k = await coordinator.CreateKeyAsync("evict-r-" + tag, FrostCiphersuite.Secp256k1Sha256, 2, [1, 4, 5], CancellationToken.None);

        // With a replacement: node 4's place goes to node 3 (the threshold and committee size stay).
        IReadOnlyList<FrostKeyInfo> moved = await coordinator.EvictAsync(4, 3, CancellationToken.None);
        Assert.Equal(new uint[] { 1, 3, 5 }, Assert.Single(moved).Nodes);
        Assert.True(coordinator.IsUntrusted(4));
        await SignAsync(coordinator, coordinator.Find(k.KeyId)!, messages);

        // Key generation, reshare to, and a replacement that is evicted: refused, naming the node.
        NodeUntrustedException create = await Assert.ThrowsAsync<NodeUntrustedException>(() =>
            coordinator.CreateKeyAsync("evict-x-" + tag, FrostCiphersuite.Ed25519Sha512, 2, [3, 4], CancellationToken.None));
        Assert.Equal([4u], create.Nodes);
        Assert.Contains("node 4 is evicted", create.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<NodeUntrustedException>(() => coordinator.ReshareAsync(k.KeyId, 2, [1, 4], CancellationToken.None));
        await Assert.ThrowsAsync<NodeUntrustedException>(() => coordinator.EvictAsync(5, 4, CancellationToken.None));

        // A 2-of-2 key whose other holder is evicted without a replacement would be left with one holder: refused.
        FrostKeyInfo pair = await coordinator.CreateKeyAsync("evict-p-" + tag, FrostCiphersuite.Ed25519Sha512, 2, [1, 5], CancellationToken.None);
        EvictionRefusedException refused = await Assert.ThrowsAsync<EvictionRefusedException>(() => coordinator.EvictAsync(5, null, CancellationToken.None));
        Assert.Contains("name a replacement", refused.Message, StringComparison.Ordinal);
        Assert.Contains(pair.KeyId, refused.Message, StringComparison.Ordinal);
        Assert.False(coordinator.IsUntrusted(5)); // refused before anything was marked or moved
        Assert.Equal(1, coordinator.Find(pair.KeyId)!.Version);
        Assert.Equal(new uint[] { 1, 3, 5 }, coordinator.Find(k.KeyId)!.Nodes);

        // Re-admitted: node 4 may take part again (a new key on it is made and signs there); the other nodes are told.
        coordinator.Readmit(4);
        Assert.Empty(await coordinator.TellNodesOfTrustAsync(CancellationToken.None));
        FrostKeyInfo back = await coordinator.CreateKeyAsync("evict-y-" + tag, FrostCiphersuite.Ed25519Sha512, 2, [3, 4], CancellationToken.None);
        await SignAsync(coordinator, back, messages);
    }

    /// <summary>
    /// An ecdsa-dkls23 key is moved away from an evicted node as a FROST key is (EvictionPlanner, the DKLs23 reshare run
    /// with its fresh pairwise setup): with a replacement the committee keeps its size; the evicted node, stopped before
    /// the move, is neither dealer, receiver nor old holder; the key keeps its public key and signs (libsecp256k1). A
    /// 2-of-2 ecdsa-dkls23 key of the node is refused without a replacement.
    /// </summary>
    [Fact]
    public async Task AnEcdsaDkls23Key_MovesToTheReplacement_WithoutTheEvictedNode()
    {
        var frost = new FrostCoordinator(_c.Coordinator);
        var dkls = new Conclave.Server.Threshold.Dkls23.DklsCoordinator(frost.Engine);
        string tag = Guid.NewGuid().ToString("N")[..8];
        Conclave.Server.Threshold.Dkls23.DklsKeyInfo key = await dkls.CreateKeyAsync("evict-dkls-" + tag, 2, [1, 4, 5], CancellationToken.None);
        Conclave.Server.Threshold.Dkls23.DklsKeyInfo pair = await dkls.CreateKeyAsync("evict-dkls-pair-" + tag, 2, [1, 4], CancellationToken.None);
        await DklsSignAsync(dkls, key, "before");

        // Without a replacement, the 2-of-2 key would be left with one holder: refused, naming it.
        EvictionRefusedException refused = Assert.Throws<EvictionRefusedException>(() => frost.CheckEvictable([key, pair], 4, null));
        Assert.Contains(pair.KeyId, refused.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(key.KeyId, refused.Message, StringComparison.Ordinal);
        frost.CheckEvictable([key, pair], 4, 3); // with a replacement both can move

        _c.KillNode(4);
        try
        {
            frost.MarkUntrusted(4);
            Conclave.Server.Coordinator.RotationPlan plan = (await dkls.PlanEvictionAsync(key.KeyId, 4, 3, CancellationToken.None))!;
            Assert.Equal([1u, 3u, 5u], plan.Receivers);
            Assert.Equal(2, plan.Threshold);
            Assert.DoesNotContain(4u, plan.Everyone);
            Assert.Null(await dkls.PlanEvictionAsync(key.KeyId, 2, null, CancellationToken.None)); // node 2 does not hold it
            Conclave.Server.Threshold.Dkls23.DklsKeyInfo moved = await dkls.RotateAsync(plan, CancellationToken.None);
            Assert.Equal((2, 2, "1,3,5"), (moved.Version, moved.Threshold, string.Join(",", moved.Nodes)));
            Assert.Equal(key.PublicKey.GroupPublicKey, moved.PublicKey.GroupPublicKey);
            for (int i = 0; i < 3; i++)
            {
                await DklsSignAsync(dkls, moved, $"after {i}");
            }
        }
        finally
        {
            _c.StartNode(4);
            _c.WaitForAll(TimeSpan.FromSeconds(60));
        }
    }

    private static async Task DklsSignAsync(Conclave.Server.Threshold.Dkls23.DklsCoordinator dkls, Conclave.Server.Threshold.Dkls23.DklsKeyInfo key, string label)
    {
        byte[] digest = System.Security.Cryptography.SHA256.HashData(TestSeed.Bytes(24, "evict dkls " + label));
        Conclave.Server.Threshold.Dkls23.DklsSignatureResult result = await dkls.SignDigestAsync(key.KeyId, digest, [], CancellationToken.None);
        Assert.True(Conclave.Crypto.Secp256k1.EcdsaSecp256k1.Instance.Verify(key.PublicKey.GroupPublicKey, digest, result.Signature));
    }

    [Fact]
    public async Task TheOtherNodesRefuseAnEvictedNodesMessagesByThemselves_AlsoAfterARestart_UntilReadmitted()
    {
        var coordinator = new FrostCoordinator(_c.Coordinator) { PoolBatch = 4 };
        DeterministicRandomSource challenges = TestSeed.For("attestation challenges");
        using NodeIdentity two = UnsealIdentity(2);
        await ReadmitEverywhereAsync(coordinator, 2); // whatever another test of this cluster left
        await RelayFromAsync(two, 1, "test.relayed", challenges); // accepted: node 2 is trusted
        try
        {
            // Evicted: every other node is told, by a notice signed by the coordinator, and answers that it recorded it.
            await coordinator.EvictAsync(2, null, CancellationToken.None);
            Assert.Empty(await coordinator.TellNodesOfTrustAsync(CancellationToken.None));
            Assert.All(new uint[] { 1, 3, 4, 5 }, n => Assert.True(coordinator.TrustNotices.Acknowledged(n, 2)));

            // A round message, a run-key announcement and a signed commit from node 2, relayed by the coordinator: each
            // node refuses them itself, with a typed reason naming node 2 as the culprit.
            foreach ((uint to, string kind) in new[] { (1u, "test.relayed"), (3u, FrostMessages.DkgAgreementKey), (4u, "rotation.committed") })
            {
                NodeCallException refused = await Assert.ThrowsAsync<NodeCallException>(() => RelayFromAsync(two, to, kind, challenges));
                Assert.Equal((to, StatusCode.PermissionDenied, (uint?)2), (refused.NodeId, refused.Status, refused.Culprit));
                Assert.Contains($"relayed message '{kind}' from node 2 is refused: node 2 is evicted (untrusted on node {to})", refused.Message, StringComparison.Ordinal);
            }

            // Node 1 restarts: it reads the eviction from its own store (the coordinator does not tell it again) and still refuses.
            _c.KillNode(1);
            _c.StartNode(1);
            _c.WaitForAll(TimeSpan.FromSeconds(120));
            NodeCallException afterRestart = await Assert.ThrowsAsync<NodeCallException>(() => RelayFromAsync(two, 1, "test.relayed", challenges));
            Assert.Equal((StatusCode.PermissionDenied, (uint?)2), (afterRestart.Status, afterRestart.Culprit));
            Assert.Contains("node 2 is evicted (untrusted on node 1)", afterRestart.Message, StringComparison.Ordinal);

            // A notice about a node outside the manifest, or about the node itself, is refused.
            NodeCallException unknown = await Assert.ThrowsAsync<NodeCallException>(() => Step(1, NodeTrustHandler.EvictKind, NodeTrustHandler.NoticePayload(9)));
            Assert.Contains("node 9 is not in the cluster manifest", unknown.Message, StringComparison.Ordinal);
            NodeCallException self = await Assert.ThrowsAsync<NodeCallException>(() => Step(3, NodeTrustHandler.ReadmitKind, NodeTrustHandler.NoticePayload(3)));
            Assert.Contains("node 3 is never told of its own eviction or re-admission", self.Message, StringComparison.Ordinal);
        }
        finally
        {
            coordinator.Readmit(2);
            Assert.Empty(await coordinator.TellNodesOfTrustAsync(CancellationToken.None));
        }

        // Re-admitted and told: node 1 accepts node 2's messages again.
        await RelayFromAsync(two, 1, "test.relayed", challenges);
    }

    [Fact]
    public async Task AReadmittedNode_RejoinsAKeyItHeldBeforeItsEviction_AndSigns_WhileItsOldShareStaysUnusable()
    {
        var coordinator = new FrostCoordinator(_c.Coordinator) { PoolBatch = 4 };
        DeterministicRandomSource messages = TestSeed.For("messages");
        await ReadmitEverywhereAsync(coordinator, 2);
        FrostKeyInfo k = await coordinator.CreateKeyAsync("rejoin-" + Guid.NewGuid().ToString("N")[..8], FrostCiphersuite.Secp256k1Sha256, 2, [1, 2, 3], CancellationToken.None);
        await SignAsync(coordinator, k, messages);

        // Evicted: the key moves to nodes 1 and 3 at version 2; node 2 keeps version 1 (never contacted).
        await coordinator.EvictAsync(2, null, CancellationToken.None);
        Assert.Equal((2, "1,3"), (coordinator.Find(k.KeyId)!.Version, string.Join(",", coordinator.Find(k.KeyId)!.Nodes)));
        Assert.Equal((1, "Active"), await StatusAsync(2, k.KeyId));
        await Assert.ThrowsAsync<NodeUntrustedException>(() => coordinator.ReshareAsync(k.KeyId, 2, [1, 2, 3], CancellationToken.None));

        // Re-admitted, then a reshare back to it: node 2 is a holder again, at version 3, under the unchanged public key.
        coordinator.Readmit(2);
        Assert.Empty(await coordinator.TellNodesOfTrustAsync(CancellationToken.None));
        FrostKeyInfo back = await coordinator.ReshareAsync(k.KeyId, 2, [1, 2, 3], CancellationToken.None);
        Assert.Equal((3, "1,2,3"), (back.Version, string.Join(",", back.Nodes)));
        Assert.Equal(k.PublicKeyPackage.VerificationKey, back.PublicKeyPackage.VerificationKey);
        Assert.Equal((3, "Active"), await StatusAsync(2, k.KeyId));

        // Node 2 signs: its share and node 3's at version 3 aggregate to a signature under the group key.
        byte[] message = messages.Bytes(32);
        (byte[] id2, SigningCommitments c2) = await CommitAsync(2, k.KeyId, 3, k.Suite);
        (byte[] id3, SigningCommitments c3) = await CommitAsync(3, k.KeyId, 3, k.Suite);
        var package = new SigningPackage(message, [c2, c3]);
        SignatureShare s2 = await SignShareAsync(2, k.KeyId, id2, package, 3, k.Suite);
        SignatureShare s3 = await SignShareAsync(3, k.KeyId, id3, package, 3, k.Suite);
        byte[] signature = FrostAggregator.Aggregate(package, [s2, s3], back.PublicKeyPackage, AggregationMode.VerifyEachShare);
        Assert.True(k.Suite.Verify(k.PublicKeyPackage.VerificationKey, message, signature));
        await SignAsync(coordinator, back, messages);

        // Its pre-eviction share is erased: node 2 refuses version 1.
        NodeCallException stale = await Assert.ThrowsAsync<NodeCallException>(() => CommitAsync(2, k.KeyId, 1, k.Suite));
        Assert.Contains("version", stale.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AManifestPinnedEviction_IsRefusedByEveryNodeWithoutANotice_AndNoCoordinatorNoticeReadmitsIt_UntilUnpinned()
    {
        var coordinator = new FrostCoordinator(_c.Coordinator) { PoolBatch = 4 };
        DeterministicRandomSource challenges = TestSeed.For("attestation challenges");
        using NodeIdentity two = UnsealIdentity(2);
        await ReadmitEverywhereAsync(coordinator, 2); // whatever another test of this cluster left
        await RelayFromAsync(two, 1, "test.relayed", challenges); // positive control: accepted

        // Bad input first: a node outside the manifest, unpinning a node that is not pinned. Exit 2, one line, no change.
        (int exit, string stdout, string stderr) = TlsRotationTests.Cli("node", "pin-eviction", "--manifest", _c.Layout.ManifestPath, "--id", "9");
        Assert.Equal((2, "conclave: error: node 9 is not in the cluster manifest"), (exit, stderr.Trim()));
        (exit, _, stderr) = TlsRotationTests.Cli("node", "unpin-eviction", "--manifest", _c.Layout.ManifestPath, "--id", "2");
        Assert.Equal((2, "conclave: error: node 2 is not evicted by the manifest"), (exit, stderr.Trim()));

        (exit, stdout, stderr) = TlsRotationTests.Cli("node", "pin-eviction", "--manifest", _c.Layout.ManifestPath, "--id", "2", "--reason", "suspected of leaking");
        Assert.True(exit == 0, stderr);
        Assert.StartsWith("node 2 is evicted by ", stdout, StringComparison.Ordinal);
        try
        {
            Assert.Equal("suspected of leaking", Assert.Single(ClusterManifest.Load(_c.Layout.ManifestPath).EvictedNodes).Reason);
            (exit, _, stderr) = TlsRotationTests.Cli("node", "pin-eviction", "--manifest", _c.Layout.ManifestPath, "--id", "2");
            Assert.Equal((2, "conclave: error: node 2 is already evicted by the manifest"), (exit, stderr.Trim()));

            // No notice was sent: every other node refuses node 2's relayed messages from the manifest alone (each looks at
            // the file at most once a second), naming the manifest.
            foreach (uint to in (uint[])[1, 3, 4, 5])
            {
                await TlsRotationTests.UntilAsync(async () =>
                {
                    try
                    {
                        await RelayFromAsync(two, to, "test.relayed", challenges);
                        return false;
                    }
                    catch (NodeCallException refused)
                    {
                        Assert.Equal((to, StatusCode.PermissionDenied, (uint?)2), (refused.NodeId, refused.Status, refused.Culprit));
                        Assert.Contains($"node 2 is evicted (untrusted on node {to}, by the cluster manifest)", refused.Message, StringComparison.Ordinal);
                        return true;
                    }
                }, $"node {to} still accepts node 2's messages");
            }

            // The coordinator treats it as untrusted too (it also looks at the file at most once a second), and a
            // re-admission notice it signs (what a stolen coordinator key could send) is refused by the nodes.
            await TlsRotationTests.UntilAsync(() => Task.FromResult(coordinator.IsUntrusted(2) && coordinator.IsPinned(2)), "the coordinator still trusts node 2");
            NodeCallException notice = await Assert.ThrowsAsync<NodeCallException>(() => Step(1, NodeTrustHandler.ReadmitKind, NodeTrustHandler.NoticePayload(2)));
            Assert.Contains("node 2 is evicted by the cluster manifest", notice.Message, StringComparison.Ordinal);
            await Assert.ThrowsAsync<NodeCallException>(() => RelayFromAsync(two, 1, "test.relayed", challenges));
        }
        finally
        {
            (exit, _, stderr) = TlsRotationTests.Cli("node", "unpin-eviction", "--manifest", _c.Layout.ManifestPath, "--id", "2");
            Assert.True(exit == 0, stderr);
        }

        // Unpinned: accepted again (the coordinator never told the nodes anything, so nothing else needs undoing).
        await TlsRotationTests.UntilAsync(async () =>
        {
            try
            {
                await RelayFromAsync(two, 1, "test.relayed", challenges);
                return true;
            }
            catch (NodeCallException)
            {
                return false;
            }
        }, "node 1 still refuses node 2 after it was unpinned");
        await TlsRotationTests.UntilAsync(() => Task.FromResult(!coordinator.IsUntrusted(2)), "the coordinator still treats node 2 as evicted after it was unpinned");
    }

    /// <summary>Makes every node trust <paramref name="node"/> again (another test of this cluster may have evicted it).</summary>
    private static async Task ReadmitEverywhereAsync(FrostCoordinator coordinator, uint node)
    {
        coordinator.TrustNotices.Saw(node);
        coordinator.Readmit(node);
        Assert.Empty(await coordinator.TellNodesOfTrustAsync(CancellationToken.None));
    }

    private NodeIdentity UnsealIdentity(uint node)
    {
        NodeConfig config = NodeConfig.Load(_c.Layout.NodeConfigPath(node));
        using SecretBuffer kek = KekFile.Read(config.Resolve(config.KekFile));
        return NodeIdentity.Unseal(node, kek.ReadOnlySpan, File.ReadAllBytes(Path.Combine(config.Resolve(config.DataDir), "identity.sealed")));
    }

    /// <summary>
    /// An attestation request to <paramref name="to"/> (its challenge the next one of <paramref name="challenges"/>) relaying
    /// one message of <paramref name="kind"/> signed by <paramref name="sender"/>.
    /// </summary>
    private Task<IReadOnlyList<Envelope>> RelayFromAsync(NodeIdentity sender, uint to, string kind, DeterministicRandomSource challenges)
    {
        byte[] session = Cluster.NewSessionId();
        Envelope relayed = EnvelopeSigner.Sign(new Envelope
        {
            SessionId = ByteString.CopyFrom(session),
            Kind = kind,
            Round = 1,
            Sender = sender.NodeId,
            Payload = ByteString.CopyFrom([1]),
            IssuedAtUnixMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
        }, sender);
        return _c.Coordinator.Node(to).StepAsync(_c.Coordinator.Request(session, AttestHandler.RequestKind, 0, [to], challenges.Bytes(32)), [relayed],
            TimeSpan.FromSeconds(30), CancellationToken.None);
    }

    /// <summary>The key signs the next message of <paramref name="messages"/>, and the signature verifies under its public key.</summary>
    private static async Task SignAsync(FrostCoordinator coordinator, FrostKeyInfo key, DeterministicRandomSource messages)
    {
        byte[] msg = messages.Bytes(32);
        byte[] sig = await coordinator.SignAsync(key.KeyId, msg, CancellationToken.None);
        Assert.True(key.Suite.Verify(key.PublicKeyPackage.VerificationKey, msg, sig));
    }

    private async Task<(int Version, string State)> StatusAsync(uint node, string keyId)
    {
        (int version, string state, _, _) = await NodeKeyStatus.ReadAsync(_c.Coordinator, node, keyId);
        return (version, state);
    }

    private async Task<(byte[] NonceId, SigningCommitments Commitments)> CommitAsync(uint node, string keyId, int version, FrostCiphersuite suite)
    {
        IReadOnlyList<Envelope> reply = await Step(node, FrostMessages.Commit, new PayloadWriter().String(keyId).U32(1).U32((uint)version).ToArray());
        var r = new PayloadReader(Assert.Single(reply).Payload.Span);
        Assert.Equal(1u, r.U32("count"));
        byte[] id = r.Bytes("nonceId", Conclave.Node.Threshold.Engine.NonceEpochs.NonceIdSizeInBytes).ToArray();
        SigningCommitments c = SigningCommitments.FromBytes(suite, r.Bytes("commitments"));
        r.End();
        return (id, c);
    }

    private async Task<SignatureShare> SignShareAsync(uint node, string keyId, byte[] nonceId, SigningPackage package, int version, FrostCiphersuite suite)
    {
        byte[] payload = FrostSignBatch.EncodeRequest([new FrostSignItem(Cluster.NewSessionId(), keyId, nonceId, package.ToBytes(), [], version)]);
        IReadOnlyList<Envelope> reply = await Step(node, FrostMessages.Sign, payload);
        FrostSignOutcome outcome = Assert.Single(FrostSignBatch.DecodeReply(Assert.Single(reply).Payload.Span, 1));
        // A refused item, as the coordinator sees it (FrostCoordinator.SendSignStepAsync).
        return outcome.Share is { } share ? SignatureShare.FromBytes(suite, share)
            : throw new NodeCallException(node, Grpc.Core.StatusCode.FailedPrecondition, outcome.Refusal!, outcome.Culprit, null);
    }

    private Task<IReadOnlyList<Envelope>> Step(uint node, string kind, byte[] payload) =>
        _c.Coordinator.Node(node).StepAsync(_c.Coordinator.Request(Cluster.NewSessionId(), kind, 1, [node], payload), [], TimeSpan.FromSeconds(20), CancellationToken.None);
}
