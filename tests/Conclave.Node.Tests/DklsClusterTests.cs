using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Conclave.Crypto.Secp256k1;
using Conclave.Node.Config;
using Conclave.Node.Rpc;
using Conclave.Node.Threshold.Dkls23;
using Conclave.Server.Coordinator;
using Conclave.Server.Hosting;
using Conclave.Server.Threshold.Dkls23;
using Conclave.Server.Threshold.Engine;
using Conclave.Threshold.Dkls23;

namespace Conclave.Node.Tests;

/// <summary>What the DKLs23 cluster tests share: signing N digests and checking each with libsecp256k1 and @noble/curves.</summary>
internal static class DklsClusterChecks
{
    /// <summary>Signatures per key shape: a few in CI, 1,000 with CONCLAVE_LONG_TESTS=1 (./test.sh --long).</summary>
    public static int Count(int ci) => Environment.GetEnvironmentVariable("CONCLAVE_LONG_TESTS") == "1" ? 1_000 : ci;

    public static DklsCoordinator Coordinator(LocalClusterProcesses c) => new(new ThresholdEngine(c.Coordinator));

    /// <summary>
    /// Signs <paramref name="count"/> digests (some in parallel), checks every signature with libsecp256k1 (verify, strict
    /// low s, and the recovery id recovers the key), that no two share an R, and all of them again with @noble/curves
    /// (tests/interop/checks/dkls23.mjs).
    /// </summary>
    public static async Task SignManyAndVerify(DklsCoordinator coordinator, DklsKeyInfo key, int count, IReadOnlyList<uint> path, string label)
    {
        byte[] pk = DklsHd.DerivePublic(key.PublicKey, path).PublicKey;
        var digests = new byte[count][];
        var results = new DklsSignatureResult[count];
        await Parallel.ForAsync(0, count, new ParallelOptions { MaxDegreeOfParallelism = 4 }, async (i, ct) =>
        {
            digests[i] = SHA256.HashData(TestSeed.Bytes(24, $"{label} {i}"));
            results[i] = await coordinator.SignDigestAsync(key.KeyId, digests[i], path, ct);
        });

        var cases = new List<object>(count);
        var seenR = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < count; i++)
        {
            byte[] sig = results[i].Signature;
            Assert.Equal(pk, results[i].PublicKey);
            Assert.True(EcdsaSecp256k1.Instance.Verify(pk, digests[i], sig), $"signature {i} does not verify");
            Assert.True(EcdsaSecp256k1.TryRecover(digests[i], sig, results[i].RecoveryId, out Secp256k1Point rec) && rec.ToCompressed().AsSpan().SequenceEqual(pk), $"signature {i} does not recover the key");
            Assert.True(sig[32] < 0x80, $"signature {i} is not low-S"); // s < n/2 implies its top bit is clear
            Assert.True(seenR.Add(Convert.ToHexString(sig, 0, 32)), $"signature {i} repeats an R");
            cases.Add(new { publicKey = Convert.ToHexStringLower(pk), digest = Convert.ToHexStringLower(digests[i]), signature = Convert.ToHexStringLower(sig), recoveryId = results[i].RecoveryId });
        }

        JsonArray checks = NodeInterop.Run("dkls23", cases);
        Assert.Equal(count, checks.Count);
        Assert.All(checks, r =>
        {
            Assert.True(r!["ok"]!.GetValue<bool>(), r.ToJsonString());
            Assert.True(r["recovered"]!.GetValue<bool>(), r.ToJsonString());
        });
    }
}

/// <summary>DKLs23 threshold ECDSA (ecdsa-dkls23) through three real signer-node processes: 2-of-3.</summary>
public sealed class DklsClusterTests(ThreeNodeCluster fixture) : IClassFixture<ThreeNodeCluster>
{
    private readonly LocalClusterProcesses _c = fixture.Cluster;

    [Fact]
    public async Task KeyGeneration2Of3_SignaturesVerifyWithLibsecp256k1AndNoble()
    {
        DklsCoordinator coordinator = DklsClusterChecks.Coordinator(_c);
        DklsKeyInfo key = await coordinator.CreateKeyAsync("dkls-" + Guid.NewGuid().ToString("N")[..12], 2, [1, 2, 3], CancellationToken.None);
        Assert.Equal(2, key.Threshold);
        Assert.Equal([1u, 2u, 3u], key.Nodes);
        Assert.Equal(1, key.Version);
        await DklsClusterChecks.SignManyAndVerify(coordinator, key, DklsClusterChecks.Count(24), [], "2of3");
    }

    [Fact]
    public async Task ChildSignaturesVerifyUnderTheCkdPubChildKey()
    {
        DklsCoordinator coordinator = DklsClusterChecks.Coordinator(_c);
        DklsKeyInfo key = await coordinator.CreateKeyAsync("dkls-hd-" + Guid.NewGuid().ToString("N")[..8], 2, [1, 2, 3], CancellationToken.None);
        byte[] digest = SHA256.HashData("child"u8);
        DklsSignatureResult child = await coordinator.SignDigestAsync(key.KeyId, digest, [44, 60, 0], CancellationToken.None);
        Assert.Equal(DklsHd.DerivePublic(key.PublicKey, [44, 60, 0]).PublicKey, child.PublicKey);
        Assert.True(EcdsaSecp256k1.Instance.Verify(child.PublicKey, digest, child.Signature));
        Assert.False(EcdsaSecp256k1.Instance.Verify(key.PublicKey.GroupPublicKey, digest, child.Signature));
        await Assert.ThrowsAsync<ArgumentException>(() => coordinator.SignDigestAsync(key.KeyId, digest, [DklsHd.HardenedOffset], CancellationToken.None));
    }

    [Fact]
    public async Task NodeKilledMidSigning_SignaturesCompleteWithAnotherQuorum_AndNoRIsRepeated()
    {
        DklsCoordinator coordinator = DklsClusterChecks.Coordinator(_c);
        DklsKeyInfo key = await coordinator.CreateKeyAsync("dkls-kill-" + Guid.NewGuid().ToString("N")[..8], 2, [1, 2, 3], CancellationToken.None);
        const int total = 16;
        int signed = 0;
        var fourSigned = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var rs = new System.Collections.Concurrent.ConcurrentDictionary<string, byte>();
        Task loop = Task.Run(async () =>
        {
            await Parallel.ForAsync(0, total, new ParallelOptions { MaxDegreeOfParallelism = 2 }, async (i, ct) =>
            {
                byte[] digest = SHA256.HashData(TestSeed.Bytes(16, $"kill {i}"));
                DklsSignatureResult sig = await coordinator.SignDigestAsync(key.KeyId, digest, [], ct);
                Assert.True(EcdsaSecp256k1.Instance.Verify(key.PublicKey.GroupPublicKey, digest, sig.Signature));
                Assert.True(rs.TryAdd(Convert.ToHexString(sig.Signature, 0, 32), 0), "two signatures share an R");
                if (Interlocked.Increment(ref signed) == 4)
                {
                    fourSigned.TrySetResult();
                }
            });
        });

        Task first = await Task.WhenAny(fourSigned.Task, loop, Task.Delay(TimeSpan.FromMinutes(3)));
        if (first != fourSigned.Task)
        {
            await (first == loop ? loop : Task.CompletedTask);
            Assert.Fail($"only {Volatile.Read(ref signed)} signatures within 3 minutes before the kill");
        }

        _c.KillNode(2);
        try
        {
            await loop; // every signature completes: 2-of-3 keeps signing with node 2 down
            Assert.Equal(total, signed);
        }
        finally
        {
            _c.StartNode(2);
            _c.WaitForAll(TimeSpan.FromSeconds(60));
        }
    }

    /// <summary>
    /// The test acts as the coordinator: node 1 takes 16 signing sessions with node 3 (round one only) and refuses the
    /// 17th; a session that ends (here refused at round two, which drops it) gives its slot back. Pair (1, 3) because a
    /// session abandoned when its peer died (the kill test kills node 2) keeps its slot until it is swept (two minutes).
    /// </summary>
    [Fact]
    public async Task PerPeerSessionLimit_RefusesTheSeventeenthSession_AndSessionsThatEndFreeTheirSlot()
    {
        DklsCoordinator coordinator = DklsClusterChecks.Coordinator(_c);
        DklsKeyInfo key = await coordinator.CreateKeyAsync("dkls-limit-" + Guid.NewGuid().ToString("N")[..8], 2, [1, 2, 3], CancellationToken.None);
        byte[] payload = new Conclave.Node.Protocol.PayloadWriter().String(key.KeyId).U32(1).U32(2).U32(1).U32(3).U32(0).ToArray();
        var open = new List<byte[]>();
        async Task<byte[]> Round1()
        {
            byte[] session = Cluster.NewSessionId();
            await _c.Coordinator.Node(1).StepAsync(_c.Coordinator.Request(session, Conclave.Node.Threshold.Dkls23.DklsMessages.SignRound1, 1, [1], payload), [], TimeSpan.FromSeconds(30), CancellationToken.None);
            return session;
        }

        async Task End(byte[] session)
        {
            // Round two without node 3's message is refused, and the refusal drops the session on node 1.
            NodeCallException e = await Assert.ThrowsAsync<NodeCallException>(() => _c.Coordinator.Node(1).StepAsync(
                _c.Coordinator.Request(session, Conclave.Node.Threshold.Dkls23.DklsMessages.SignRound2, 2, [1], []), [], TimeSpan.FromSeconds(30), CancellationToken.None));
            Assert.Null(e.Culprit);
        }

        try
        {
            for (int i = 0; i < 16; i++)
            {
                open.Add(await Round1());
            }

            NodeCallException refused = await Assert.ThrowsAsync<NodeCallException>(Round1);
            Assert.Equal(Grpc.Core.StatusCode.FailedPrecondition, refused.Status);
            Assert.Contains("signing sessions with node 3", refused.Message, StringComparison.Ordinal);
            Assert.Null(refused.Culprit);

            await End(open[0]);
            open.RemoveAt(0);
            open.Add(await Round1()); // the freed slot serves a new session
        }
        finally
        {
            foreach (byte[] session in open)
            {
                await End(session);
            }
        }

        // With every slot back, the key signs.
        DklsSignatureResult ok = await coordinator.SignDigestAsync(key.KeyId, SHA256.HashData("limit"u8), [], CancellationToken.None);
        Assert.True(EcdsaSecp256k1.Instance.Verify(key.PublicKey.GroupPublicKey, SHA256.HashData("limit"u8), ok.Signature));
    }

    [Fact]
    public async Task SigningRefusesAWrongVersionOrUnknownKey_WithoutACulprit()
    {
        DklsCoordinator coordinator = DklsClusterChecks.Coordinator(_c);
        DklsKeyInfo key = await coordinator.CreateKeyAsync("dkls-v-" + Guid.NewGuid().ToString("N")[..8], 2, [1, 2, 3], CancellationToken.None);
        // A coordinator that believes in version 2 of the key: every node refuses (it holds version 1), nobody is blamed.
        var stale = new DklsCoordinator(new ThresholdEngine(_c.Coordinator));
        stale.Register(key with { Version = 2 });
        QuorumUnavailableException e = await Assert.ThrowsAsync<QuorumUnavailableException>(() => stale.SignDigestAsync(key.KeyId, new byte[32], [], CancellationToken.None));
        Assert.Contains("version", e.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<ArgumentException>(() => coordinator.SignDigestAsync("no-such-key", new byte[32], [], CancellationToken.None));
        await Assert.ThrowsAsync<ArgumentException>(() => coordinator.SignDigestAsync(key.KeyId, new byte[31], [], CancellationToken.None));
    }
}

/// <summary>DKLs23 through five real signer-node processes: 3-of-5, and a misbehaving node named as the culprit.</summary>
[Collection(FiveNodeCluster.Sequential)]
public sealed class DklsFiveNodeClusterTests(FiveNodeCluster fixture) : IClassFixture<FiveNodeCluster>
{
    private readonly LocalClusterProcesses _c = fixture.Cluster;

    [Fact]
    public async Task KeyGeneration3Of5_SignaturesVerifyWithLibsecp256k1AndNoble()
    {
        DklsCoordinator coordinator = DklsClusterChecks.Coordinator(_c);
        DklsKeyInfo key = await coordinator.CreateKeyAsync("dkls5-" + Guid.NewGuid().ToString("N")[..12], 3, [1, 2, 3, 4, 5], CancellationToken.None);
        Assert.Equal([1u, 2u, 3u, 4u, 5u], key.Nodes);
        await DklsClusterChecks.SignManyAndVerify(coordinator, key, DklsClusterChecks.Count(12), [], "3of5");
    }

    /// <summary>
    /// 3-of-5 with the presignature pool on: a pooled presignature of three signers signs in one round under its R, and a
    /// run of signatures through SignDigestAsync (pooled and three-round) verifies with libsecp256k1 and @noble/curves, no
    /// R repeated, at least one of them from the pool.
    /// </summary>
    [Fact]
    public async Task Presigned3Of5_SignaturesVerifyWithLibsecp256k1AndNoble()
    {
        var coordinator = new DklsCoordinator(new ThresholdEngine(_c.Coordinator)) { PresignPoolSize = 3, PresignParallelism = 1 };
        DklsKeyInfo key = await coordinator.CreateKeyAsync("dkls5-pre-" + Guid.NewGuid().ToString("N")[..8], 3, [1, 2, 3, 4, 5], CancellationToken.None);
        await coordinator.PresignAsync(key.KeyId, [], CancellationToken.None);
        Assert.True(coordinator.PresignDepth(key.KeyId, []) >= 3);

        DklsPooledPresignature p = coordinator.TakePresignature(key, [])!;
        Assert.NotNull(p);
        Assert.Equal(3, p.Signers.Length);
        byte[] digest = SHA256.HashData("presigned 3-of-5"u8);
        DklsSignatureResult one = await coordinator.SignPresignedAsync(key, p, digest, [], CancellationToken.None);
        Assert.True(EcdsaSecp256k1.Instance.Verify(key.PublicKey.GroupPublicKey, digest, one.Signature));
        Assert.Equal(p.R.AsSpan(1).ToArray(), one.Signature.AsSpan(0, 32).ToArray());

        await coordinator.PresignAsync(key.KeyId, [], CancellationToken.None); // the take above started a refill: wait for it
        long before = coordinator.PresignedSignatures;
        await DklsClusterChecks.SignManyAndVerify(coordinator, key, DklsClusterChecks.Count(6), [], "3of5 presign");
        Assert.True(coordinator.PresignedSignatures > before, "no 3-of-5 signature used a pooled presignature");
    }

    /// <summary>
    /// Node 4 flips a bit of every round-two message it seals to its peer (fault injection "bad-dkls-round2": a message
    /// validly signed and sealed by node 4, so the transport accepts it): the peer's round-three checks refuse it and name
    /// node 4, the coordinator's call ends with node 4 as the culprit and no signature.
    /// </summary>
    [Fact]
    public async Task TamperedRoundTwoMessage_IsRefused_NamingItsSender_AndNoSignatureIsReturned()
    {
        DklsCoordinator coordinator = DklsClusterChecks.Coordinator(_c);
        DklsKeyInfo key = await coordinator.CreateKeyAsync("dkls-culprit-" + Guid.NewGuid().ToString("N")[..8], 2, [1, 4], CancellationToken.None);
        SetFault(4, "bad-dkls-round2");
        try
        {
            CulpritException e = await Assert.ThrowsAsync<CulpritException>(() => coordinator.SignDigestAsync(key.KeyId, SHA256.HashData("culprit"u8), [], CancellationToken.None));
            Assert.Equal([4u], e.Culprits);
        }
        finally
        {
            SetFault(4, null);
        }

        DklsSignatureResult ok = await coordinator.SignDigestAsync(key.KeyId, SHA256.HashData("after"u8), [], CancellationToken.None);
        Assert.True(EcdsaSecp256k1.Instance.Verify(key.PublicKey.GroupPublicKey, SHA256.HashData("after"u8), ok.Signature));
    }

    /// <summary>
    /// Bans recorded durably (docs/DKLS23.md "Bans"): node 4 flips the OT-extension check value of every signing round-one
    /// message it seals (fault injection "bad-dkls-round1", a message validly signed and sealed by it); node 1's check
    /// fails, the call ends with node 4 named, and node 1 bans it and records the ban in its store and audit log. Node 4
    /// is healed and node 1 restarted: node 1 still refuses a signing session with node 4 (a typed refusal naming
    /// nobody). A refresh of the key (a fresh pairwise setup, a new version) lifts the ban: nodes 1 and 4 sign again.
    /// </summary>
    [Fact]
    public async Task BanAfterAFailedOtExtensionCheck_SurvivesANodeRestart_AndARefreshLiftsIt()
    {
        DklsCoordinator coordinator = DklsClusterChecks.Coordinator(_c);
        DklsKeyInfo key = await coordinator.CreateKeyAsync("dkls-ban-" + Guid.NewGuid().ToString("N")[..8], 2, [1, 4], CancellationToken.None);
        SetFault(4, "bad-dkls-round1");
        try
        {
            CulpritException e = await Assert.ThrowsAsync<CulpritException>(() => coordinator.SignDigestAsync(key.KeyId, SHA256.HashData("ban"u8), [], CancellationToken.None));
            Assert.Equal([4u], e.Culprits);
            Assert.Contains("OtExtensionConsistency", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            SetFault(4, null);
        }

        _c.KillNode(1);
        _c.StartNode(1);
        _c.WaitForAll(TimeSpan.FromSeconds(60));

        byte[] payload = new Conclave.Node.Protocol.PayloadWriter().String(key.KeyId).U32(1).U32(2).U32(1).U32(4).U32(0).ToArray();
        NodeCallException refused = await Assert.ThrowsAsync<NodeCallException>(() => _c.Coordinator.Node(1).StepAsync(
            _c.Coordinator.Request(Cluster.NewSessionId(), Conclave.Node.Threshold.Dkls23.DklsMessages.SignRound1, 1, [1], payload), [], TimeSpan.FromSeconds(30), CancellationToken.None));
        Assert.Null(refused.Culprit);
        Assert.Contains("banned", refused.Message, StringComparison.Ordinal);

        NodeConfig config = NodeConfig.Load(_c.Layout.NodeConfigPath(1));
        await using (Conclave.Storage.IConclaveStore store = await Conclave.Storage.ConclaveStore.OpenSqliteAsync(config.Resolve(config.DataDir), new Conclave.Storage.StoreOptions { ReadOnly = true }))
        {
            IReadOnlyList<Conclave.Storage.Audit.AuditEntry> audit = await store.Audit.ReadAsync(1, 100_000);
            Assert.Contains(audit, a => a.Action == "dkls.peer-banned" && a.KeyId == key.KeyId && a.Result.Contains("node 4", StringComparison.Ordinal));
        }

        DklsKeyInfo refreshed = await coordinator.RefreshAsync(key.KeyId, CancellationToken.None);
        Assert.Equal(2, refreshed.Version);
        byte[] digest = SHA256.HashData("after the ban was lifted"u8);
        DklsSignatureResult ok = await coordinator.SignDigestAsync(key.KeyId, digest, [], CancellationToken.None);
        Assert.Equal(2, ok.KeyVersion);
        Assert.True(EcdsaSecp256k1.Instance.Verify(key.PublicKey.GroupPublicKey, digest, ok.Signature));
    }

    /// <summary>
    /// The echo of round-one data through the real transport (docs/DKLS23.md "Echo of round-one data"): node 4 sends node 1
    /// its real round-one broadcast commitment and node 2 another one, each validly signed by it (fault injection
    /// "dkls-equivocate"). The coordinator names node 4 before round two, with the two envelopes as evidence that verifies
    /// under node 4's identity key and under no other; nodes 1 and 2 are not named. Relayed by a coordinator that does not
    /// compare them (this test driving the steps), nodes 1 and 2 both refuse round three on the echo, naming nobody.
    /// Healed, the key signs.
    /// </summary>
    [Fact]
    public async Task EquivocatedRoundOneBroadcast_NamesItsSenderWithSignedEvidence_AndTheEchoStopsTheHonestSigners()
    {
        DklsCoordinator coordinator = DklsClusterChecks.Coordinator(_c);
        DklsKeyInfo key = await coordinator.CreateKeyAsync("dkls-echo-" + Guid.NewGuid().ToString("N")[..8], 3, [1, 2, 4], CancellationToken.None);
        byte[] start = new Conclave.Node.Protocol.PayloadWriter().String(key.KeyId).U32(1).U32(3).U32(1).U32(2).U32(4).U32(0).ToArray();
        var timeout = TimeSpan.FromSeconds(30);
        Envelope beforeRestart = _c.Coordinator.Request(Cluster.NewSessionId(), DklsMessages.SignRound1, 1, [4], start);
        SetFault(4, "dkls-equivocate");
        try
        {
            // A round-one request issued before node 4 restarted is refused (its replay guard did not survive the restart,
            // so it could otherwise answer one request twice: two signed broadcasts under one request hash).
            NodeCallException stale = await Assert.ThrowsAsync<NodeCallException>(() => _c.Coordinator.Node(4).StepAsync(beforeRestart, [], timeout, CancellationToken.None));
            Assert.Null(stale.Culprit);
            Assert.Contains("issued before node 4 started", stale.Message, StringComparison.Ordinal);

            CulpritException e = await Assert.ThrowsAsync<CulpritException>(() => coordinator.SignDigestAsync(key.KeyId, SHA256.HashData("equivocate"u8), [], CancellationToken.None));
            Assert.Equal([4u], e.Culprits);
            Assert.Equal(CulpritReason.RoundOneEquivocation, Assert.Single(e.Reasons).Reason);
            Assert.Equal(2, e.Evidence.Count);
            Envelope a = Envelope.Parser.ParseFrom(e.Evidence[0]), b = Envelope.Parser.ParseFrom(e.Evidence[1]);
            Assert.Equal([1u, 2u], new[] { a.Recipients[0], b.Recipients[0] }.Order());
            byte[] node4 = Convert.FromHexString(_c.Manifest.Node(4).IdentityKey);
            Assert.True(DklsEquivocation.Proves(a, b, 4, node4));
            Assert.False(DklsEquivocation.Proves(a, b, 4, Convert.FromHexString(_c.Manifest.Node(1).IdentityKey)));
            Assert.False(DklsEquivocation.Proves(a, a, 4, node4)); // one copy twice proves nothing
            Envelope forged = a.Clone();
            forged.Payload = b.Payload; // the coordinator cannot make a second copy: the signature no longer holds
            Assert.False(DklsEquivocation.Proves(a, forged, 4, node4));

            // Relayed without the coordinator's comparison: the honest signers' echoes disagree, and round three stops
            // on both before any opening is used, naming nobody.
            uint[] signers = [1, 2, 4];
            byte[] session = Cluster.NewSessionId();
            List<Envelope> m1 = [];
            foreach (uint n in signers)
            {
                m1.AddRange(await _c.Coordinator.Node(n).StepAsync(_c.Coordinator.Request(session, DklsMessages.SignRound1, 1, [n], start), [], timeout, CancellationToken.None));
            }

            foreach (uint n in signers)
            {
                m1.AddRange(await _c.Coordinator.Node(n).StepAsync(_c.Coordinator.Request(session, DklsMessages.SignDeliver, 1, [n], []),
                    m1.Where(m => m.Recipients.Contains(n) && m.Kind == DklsMessages.SignAgreementKey), timeout, CancellationToken.None));
            }

            List<Envelope> m2 = [];
            foreach (uint n in signers)
            {
                m2.AddRange(await _c.Coordinator.Node(n).StepAsync(_c.Coordinator.Request(session, DklsMessages.SignRound2, 2, [n], []),
                    m1.Where(m => m.Recipients.Contains(n) && m.Kind != DklsMessages.SignAgreementKey), timeout, CancellationToken.None));
            }

            byte[] digest = new Conclave.Node.Protocol.PayloadWriter().Bytes(SHA256.HashData("hidden"u8)).ToArray();
            foreach (uint n in new uint[] { 1, 2 })
            {
                NodeCallException refused = await Assert.ThrowsAsync<NodeCallException>(() => _c.Coordinator.Node(n).StepAsync(
                    _c.Coordinator.Request(session, DklsMessages.SignRound3, 3, [n], digest), m2.Where(m => m.Recipients.Contains(n)), timeout, CancellationToken.None));
                Assert.Null(refused.Culprit);
                Assert.Contains("Equivocation", refused.Message, StringComparison.Ordinal);
            }

            await _c.Coordinator.Node(4).StepAsync(_c.Coordinator.Request(session, DklsMessages.SignAbort, 4, [4], []), [], timeout, CancellationToken.None);
        }
        finally
        {
            SetFault(4, null);
        }

        byte[] after = SHA256.HashData("after the equivocation"u8);
        DklsSignatureResult ok = await coordinator.SignDigestAsync(key.KeyId, after, [], CancellationToken.None);
        Assert.True(EcdsaSecp256k1.Instance.Verify(key.PublicKey.GroupPublicKey, after, ok.Signature));
    }

    private void SetFault(uint node, string? fault) => _c.RestartNode(node, fault);
}
