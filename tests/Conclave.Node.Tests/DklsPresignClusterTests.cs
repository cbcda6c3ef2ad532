using System.Security.Cryptography;
using Conclave.Crypto.Secp256k1;
using Conclave.Node.Config;
using Conclave.Node.Threshold.Dkls23;
using Conclave.Node.Threshold.Engine;
using Conclave.Server.Coordinator;
using Conclave.Server.Hosting;
using Conclave.Server.Threshold.Dkls23;
using Conclave.Server.Threshold.Engine;
using Conclave.Storage;
using Conclave.Storage.Audit;
using Conclave.Threshold.Dkls23;

namespace Conclave.Node.Tests;

/// <summary>The DKLs23 presignature pool through three real signer-node processes (2-of-3).</summary>
public sealed class DklsPresignClusterTests(ThreeNodeCluster fixture) : IClassFixture<ThreeNodeCluster>
{
    private readonly LocalClusterProcesses _c = fixture.Cluster;

    private DklsCoordinator Coordinator(int poolSize) =>
        new(new ThresholdEngine(_c.Coordinator)) { PresignPoolSize = poolSize, PresignParallelism = 2 };

    private static void AssertVerifies(DklsKeyInfo key, IReadOnlyList<uint> path, byte[] digest, DklsSignatureResult sig)
    {
        byte[] pk = DklsHd.DerivePublic(key.PublicKey, path).PublicKey;
        Assert.Equal(pk, sig.PublicKey);
        Assert.True(EcdsaSecp256k1.Instance.Verify(pk, digest, sig.Signature));
        Assert.True(EcdsaSecp256k1.TryRecover(digest, sig.Signature, sig.RecoveryId, out Secp256k1Point rec) && rec.ToCompressed().AsSpan().SequenceEqual(pk));
    }

    [Fact]
    public async Task PresignedSignatures_VerifyWithLibsecp256k1AndNoble_AndNoRRepeatsAcrossPresignedAndFull()
    {
        DklsCoordinator coordinator = Coordinator(4);
        DklsKeyInfo key = await coordinator.CreateKeyAsync("dkls-pre-" + Guid.NewGuid().ToString("N")[..8], 2, [1, 2, 3], CancellationToken.None);
        await coordinator.PresignAsync(key.KeyId, [], CancellationToken.None);
        Assert.True(coordinator.PresignDepth(key.KeyId, []) >= 4);

        // A pooled presignature signs in one round, under the R it was presigned with.
        DklsPooledPresignature p = coordinator.TakePresignature(key, [])!;
        Assert.NotNull(p);
        byte[] digest = SHA256.HashData("presigned"u8);
        DklsSignatureResult one = await coordinator.SignPresignedAsync(key, p, digest, [], CancellationToken.None);
        AssertVerifies(key, [], digest, one);
        Assert.Equal(p.R.AsSpan(1).ToArray(), one.Signature.AsSpan(0, 32).ToArray());

        // Many through SignDigestAsync: pooled ones and (while the pool refills) three-round ones, all distinct R,
        // every one checked with libsecp256k1 and @noble/curves.
        await DklsClusterChecks.SignManyAndVerify(coordinator, key, DklsClusterChecks.Count(16), [], "presign");
        Assert.True(coordinator.PresignedSignatures > 0, "no signature used a pooled presignature");
    }

    [Fact]
    public async Task ChildPresignatures_SignUnderTheChildKey_AndAPathChangedAfterPresigningIsRefused()
    {
        DklsCoordinator coordinator = Coordinator(2);
        DklsKeyInfo key = await coordinator.CreateKeyAsync("dkls-prepath-" + Guid.NewGuid().ToString("N")[..8], 2, [1, 2, 3], CancellationToken.None);
        await coordinator.PresignAsync(key.KeyId, [7], CancellationToken.None);

        // A path-less request uses root presignatures only; another child's pool is not touched.
        Assert.Null(coordinator.TakePresignature(key, []));
        Assert.Null(coordinator.TakePresignature(key, [8]));

        DklsPooledPresignature p = coordinator.TakePresignature(key, [7])!;
        Assert.NotNull(p);
        NodeCallException refused = await Assert.ThrowsAsync<NodeCallException>(() =>
            coordinator.SignPresignedAsync(key, p, SHA256.HashData("retarget"u8), [8], CancellationToken.None));
        Assert.Null(refused.Culprit);
        Assert.Contains("derivation path", refused.Message, StringComparison.Ordinal);

        DklsPooledPresignature q = coordinator.TakePresignature(key, [7])!;
        Assert.NotNull(q);
        byte[] digest = SHA256.HashData("child"u8);
        DklsSignatureResult sig = await coordinator.SignPresignedAsync(key, q, digest, [7], CancellationToken.None);
        AssertVerifies(key, [7], digest, sig);
    }

    [Fact]
    public async Task ReusedPresignature_IsRefused_AlsoAfterANodeRestart()
    {
        DklsCoordinator coordinator = Coordinator(2);
        DklsKeyInfo key = await coordinator.CreateKeyAsync("dkls-reuse-" + Guid.NewGuid().ToString("N")[..8], 2, [1, 2, 3], CancellationToken.None);
        await coordinator.PresignAsync(key.KeyId, [], CancellationToken.None);
        DklsPooledPresignature p = coordinator.TakePresignature(key, [])!;
        DklsPooledPresignature q = coordinator.TakePresignature(key, [])!;
        Assert.NotNull(p);
        Assert.NotNull(q);

        byte[] digest = SHA256.HashData("once"u8);
        AssertVerifies(key, [], digest, await coordinator.SignPresignedAsync(key, p, digest, [], CancellationToken.None));
        NodeCallException again = await Assert.ThrowsAsync<NodeCallException>(() =>
            coordinator.SignPresignedAsync(key, p, SHA256.HashData("twice"u8), [], CancellationToken.None));
        Assert.Null(again.Culprit);
        Assert.Contains("already used", again.Message, StringComparison.Ordinal);

        // After a restart the node's in-memory pool is gone and its ledger shows the id consumed: refused.
        uint restarted = q.Signers[0];
        _c.KillNode(restarted);
        _c.StartNode(restarted);
        _c.WaitForAll(TimeSpan.FromSeconds(60));
        NodeCallException afterRestart = await Assert.ThrowsAsync<NodeCallException>(() =>
            coordinator.SignPresignedAsync(key, q, SHA256.HashData("restart"u8), [], CancellationToken.None));
        Assert.Equal(restarted, afterRestart.NodeId);
        Assert.Null(afterRestart.Culprit);
        Assert.Contains("restart discards", afterRestart.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// A refresh makes the pooled presignatures useless: the pool is filled, the key is refreshed, and then (1) every old
    /// presignature (taken out of the coordinator's version-1 pool) is refused by its nodes at the new version (unknown
    /// there: the nodes dropped the key's pool when its version changed) and one at the old version (erased), with no
    /// culprit; (2) signatures after the refresh, three-round ones and ones from presignatures made after it, verify
    /// under the same key and Ethereum address (libsecp256k1 and @noble/curves), and none has the R of an old presignature.
    /// </summary>
    [Fact]
    public async Task Refresh_MakesPooledPresignaturesUseless_AndSignaturesAfterItVerifyUnderTheSameAddress()
    {
        DklsCoordinator coordinator = Coordinator(4);
        DklsKeyInfo key = await coordinator.CreateKeyAsync("dkls-prefresh-" + Guid.NewGuid().ToString("N")[..8], 2, [1, 2, 3], CancellationToken.None);
        await coordinator.PresignAsync(key.KeyId, [], CancellationToken.None); // nothing is taken: no refill runs in the background
        Assert.True(coordinator.PresignDepth(key.KeyId, []) >= 4);

        DklsKeyInfo refreshed = await coordinator.RefreshAsync(key.KeyId, CancellationToken.None);
        Assert.Equal(key.Version + 1, refreshed.Version);
        Assert.Equal(key.PublicKey.GroupPublicKey, refreshed.PublicKey.GroupPublicKey);
        Assert.Equal(Conclave.Chains.Ethereum.EthereumAddress.FromPublicKey(key.PublicKey.GroupPublicKey),
            Conclave.Chains.Ethereum.EthereumAddress.FromPublicKey(refreshed.PublicKey.GroupPublicKey));
        Assert.Equal(0, coordinator.PresignDepth(key.KeyId, [])); // none for the current version

        // The version-1 pool is still in the coordinator: take every presignature out of it (a refill of it makes none,
        // the key being at version 2 now), to try them and to know their R.
        var old = new List<DklsPooledPresignature>();
        while (coordinator.TakePresignature(key, []) is { } p)
        {
            old.Add(p);
        }

        Assert.True(old.Count >= 4, $"{old.Count} presignatures of version 1 pooled");
        var oldRs = old.Select(p => Convert.ToHexString(p.R, 1, 32)).ToHashSet(StringComparer.Ordinal);

        // (1) The nodes refuse an old presignature, at the new version and at the old one.
        foreach (DklsPooledPresignature p in old.Skip(1))
        {
            NodeCallException atNew = await Assert.ThrowsAsync<NodeCallException>(() =>
                coordinator.SignPresignedAsync(refreshed, p, SHA256.HashData("old presignature, new version"u8), [], CancellationToken.None));
            Assert.Null(atNew.Culprit);
            Assert.Contains("another key version", atNew.Message, StringComparison.Ordinal);
        }

        NodeCallException atOld = await Assert.ThrowsAsync<NodeCallException>(() =>
            coordinator.SignPresignedAsync(key, old[0], SHA256.HashData("old presignature, old version"u8), [], CancellationToken.None));
        Assert.Null(atOld.Culprit);

        // (2) After the refresh: the first signature runs three rounds (the old pool is dropped, a refill for the new
        // version starts), then presignatures of the new version sign; no R is an old presignature's.
        var digests = new List<byte[]>();
        var results = new List<DklsSignatureResult>();
        async Task SignAsync(string label)
        {
            byte[] digest = SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(label));
            DklsSignatureResult sig = await coordinator.SignDigestAsync(key.KeyId, digest, [], CancellationToken.None);
            Assert.Equal(refreshed.Version, sig.KeyVersion);
            AssertVerifies(refreshed, [], digest, sig);
            digests.Add(digest);
            results.Add(sig);
        }

        long presignedBefore = coordinator.PresignedSignatures;
        await SignAsync("after refresh 0");
        Assert.Equal(presignedBefore, coordinator.PresignedSignatures);
        await coordinator.PresignAsync(key.KeyId, [], CancellationToken.None);
        for (int i = 1; i <= 4; i++)
        {
            await SignAsync($"after refresh {i}");
        }

        Assert.True(coordinator.PresignedSignatures > presignedBefore, "no signature after the refresh used a presignature of the new version");
        Assert.All(results, sig => Assert.DoesNotContain(Convert.ToHexString(sig.Signature, 0, 32), oldRs));
        await DklsClusterChecks.SignManyAndVerify(coordinator, refreshed, 4, [], "after refresh, noble");
    }

    /// <summary>
    /// Sign audit of DKLs23 rounds (docs/DKLS23.md "Sign audit"): a coordinator whose BeforeSignRound appends
    /// "dkls.sign" entries to a store of its own (as the server does) makes one presigned and one three-round signature;
    /// the nodes' "dkls.sign-share" entries name those rounds' sessions (the presigned one also its presignature) and
    /// reconcile explains every share of the key. A coordinator that records nothing then signs with a presignature of
    /// its own: reconcile names exactly its two shares, with the digest's hash.
    /// </summary>
    [Fact]
    public async Task PresignedAndThreeRoundShares_AreMatchedByReconcile_AndAShareNobodyRecordedIsNamed()
    {
        DirectoryInfo dir = Directory.CreateTempSubdirectory("conclave-dkls-audit-");
        try
        {
            await using IConclaveStore server = await ConclaveStore.OpenSqliteAsync(dir.FullName);
            var coordinator = new DklsCoordinator(new ThresholdEngine(_c.Coordinator))
            {
                PresignPoolSize = 2,
                PresignParallelism = 1,
                BeforeSignRound = (keyId, version, digest, session, ct) => server.Audit.AppendAsync(SignAuditRecords.DklsCoordinatorEntry(keyId, version, digest.Span, session), ct),
            };
            DklsKeyInfo key = await coordinator.CreateKeyAsync("dkls-audit-" + Guid.NewGuid().ToString("N")[..8], 2, [1, 2, 3], CancellationToken.None);
            await coordinator.PresignAsync(key.KeyId, [], CancellationToken.None);
            byte[] presignedDigest = SHA256.HashData("audit presigned"u8);
            AssertVerifies(key, [], presignedDigest, await coordinator.SignDigestAsync(key.KeyId, presignedDigest, [], CancellationToken.None));
            Assert.Equal(1, coordinator.PresignedSignatures);
            byte[] fullDigest = SHA256.HashData("audit three rounds"u8);
            AssertVerifies(key, [3], fullDigest, await coordinator.SignDigestAsync(key.KeyId, fullDigest, [3], CancellationToken.None)); // no pool for m/3
            Assert.Equal(1, coordinator.PresignedSignatures);

            List<AuditEntry> shares = await NodeSharesAsync(key.KeyId);
            Assert.Equal(4, shares.Count);
            Assert.Equal(2, shares.Count(e => e.Result.Contains(" presignature ", StringComparison.Ordinal)));
            Assert.All(shares, e => Assert.StartsWith("v1 session ", e.Result, StringComparison.Ordinal));
            HashSet<string> rounds = await AuditReconciler.ServerRoundsAsync(server, CancellationToken.None);
            Assert.Empty(await UnexplainedAsync(rounds, key.KeyId));

            var rogue = new DklsCoordinator(new ThresholdEngine(_c.Coordinator)) { PresignPoolSize = 1, PresignParallelism = 1 };
            rogue.Register(key);
            await rogue.PresignAsync(key.KeyId, [], CancellationToken.None);
            byte[] rogueDigest = SHA256.HashData("audit rogue"u8);
            await rogue.SignDigestAsync(key.KeyId, rogueDigest, [], CancellationToken.None);
            Assert.Equal(1, rogue.PresignedSignatures);
            List<UnexplainedShare> unexplained = await UnexplainedAsync(rounds, key.KeyId);
            Assert.Equal(2, unexplained.Count);
            Assert.All(unexplained, u => Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(rogueDigest)), u.MessageHash));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    /// <summary>
    /// The digest named in round two (docs/DKLS23.md "Sign audit"): each signer records its share for that digest once,
    /// before round three; a round three naming another digest is refused naming nobody and no share leaves (nothing
    /// is recorded for the other digest); a round three naming the same digest answers the share; a coordinator's
    /// three-round signature (which names the digest in round two) verifies and adds one record per signer.
    /// </summary>
    [Fact]
    public async Task ADigestNamedInRoundTwo_IsRecordedOnce_AndARoundThreeNamingAnotherDigestIsRefusedWithNoShare()
    {
        DklsCoordinator coordinator = Coordinator(0);
        DklsKeyInfo key = await coordinator.CreateKeyAsync("dkls-r2d-" + Guid.NewGuid().ToString("N")[..8], 2, [1, 2, 3], CancellationToken.None);
        byte[] start = new Conclave.Node.Protocol.PayloadWriter().String(key.KeyId).U32(1).U32(2).U32(1).U32(2).U32(0).ToArray();
        byte[] named = SHA256.HashData("named in round two"u8), other = SHA256.HashData("another digest"u8);
        byte[] namedPayload = new Conclave.Node.Protocol.PayloadWriter().Bytes(named).ToArray();
        byte[] otherPayload = new Conclave.Node.Protocol.PayloadWriter().Bytes(other).ToArray();
        var timeout = TimeSpan.FromSeconds(30);
        uint[] signers = [1, 2];
        byte[] session = Cluster.NewSessionId();
        List<Rpc.Envelope> m1 = [];
        foreach (uint n in signers)
        {
            m1.AddRange(await _c.Coordinator.Node(n).StepAsync(_c.Coordinator.Request(session, DklsMessages.SignRound1, 1, [n], start), [], timeout, CancellationToken.None));
        }

        foreach (uint n in signers)
        {
            m1.AddRange(await _c.Coordinator.Node(n).StepAsync(_c.Coordinator.Request(session, DklsMessages.SignDeliver, 1, [n], []),
                m1.Where(m => m.Recipients.Contains(n) && m.Kind == DklsMessages.SignAgreementKey), timeout, CancellationToken.None));
        }

        // A round two naming something other than a 32-byte digest is refused (under another session: a refused step
        // ends its session on the node).
        NodeCallException shortDigest = await Assert.ThrowsAsync<NodeCallException>(() => _c.Coordinator.Node(1).StepAsync(
            _c.Coordinator.Request(Cluster.NewSessionId(), DklsMessages.SignRound2, 2, [1], new Conclave.Node.Protocol.PayloadWriter().Bytes(named.AsSpan(0, 31)).ToArray()),
            [], timeout, CancellationToken.None));
        Assert.Null(shortDigest.Culprit);
        Assert.Contains("not 32 bytes", shortDigest.Message, StringComparison.Ordinal);

        List<Rpc.Envelope> m2 = [];
        foreach (uint n in signers)
        {
            m2.AddRange(await _c.Coordinator.Node(n).StepAsync(_c.Coordinator.Request(session, DklsMessages.SignRound2, 2, [n], namedPayload),
                m1.Where(m => m.Recipients.Contains(n) && m.Kind != DklsMessages.SignAgreementKey), timeout, CancellationToken.None));
        }

        NodeCallException refused = await Assert.ThrowsAsync<NodeCallException>(() => _c.Coordinator.Node(1).StepAsync(
            _c.Coordinator.Request(session, DklsMessages.SignRound3, 3, [1], otherPayload), m2.Where(m => m.Recipients.Contains(1u)), timeout, CancellationToken.None));
        Assert.Null(refused.Culprit);
        Assert.Contains("another digest", refused.Message, StringComparison.Ordinal);

        Rpc.Envelope share = Assert.Single(await _c.Coordinator.Node(2).StepAsync(
            _c.Coordinator.Request(session, DklsMessages.SignRound3, 3, [2], namedPayload), m2.Where(m => m.Recipients.Contains(2u)), timeout, CancellationToken.None));
        Assert.Equal(DklsMessages.Share, share.Kind);

        List<AuditEntry> records = await NodeSharesAsync(key.KeyId);
        Assert.Equal(2, records.Count);
        Assert.Equal(["node-1", "node-2"], records.Select(e => e.Actor).Order(StringComparer.Ordinal));
        Assert.All(records, e => Assert.Equal(SHA256.HashData(named), e.RequestHash));
        Assert.All(records, e => Assert.Equal("v1 session " + Convert.ToHexStringLower(session), e.Result));

        byte[] digest = SHA256.HashData("three rounds after"u8);
        AssertVerifies(key, [], digest, await coordinator.SignDigestAsync(key.KeyId, digest, [], CancellationToken.None));
        List<AuditEntry> after = await NodeSharesAsync(key.KeyId);
        Assert.Equal(2, after.Count(e => e.RequestHash is { } h && h.AsSpan().SequenceEqual(SHA256.HashData(digest))));
        Assert.Equal(4, after.Count);
    }

    private async Task<List<UnexplainedShare>> UnexplainedAsync(HashSet<string> rounds, string keyId)
    {
        var unexplained = new List<UnexplainedShare>();
        foreach (uint n in new uint[] { 1, 2, 3 })
        {
            await using IConclaveStore node = await OpenNodeStoreAsync(n);
            NodeReconciliation r = await AuditReconciler.ReconcileNodeAsync($"node-{n}", node, rounds, new AuditVerifyOptions(), CancellationToken.None);
            unexplained.AddRange(r.Unexplained.Where(u => u.KeyId == keyId));
        }

        return unexplained;
    }

    /// <summary>Every "dkls.sign-share" entry of <paramref name="keyId"/> in the three nodes' own audit logs.</summary>
    private async Task<List<AuditEntry>> NodeSharesAsync(string keyId)
    {
        var shares = new List<AuditEntry>();
        foreach (uint n in new uint[] { 1, 2, 3 })
        {
            await using IConclaveStore node = await OpenNodeStoreAsync(n);
            for (long from = 1; ;)
            {
                IReadOnlyList<AuditEntry> page = await node.Audit.ReadAsync(from, 1000, CancellationToken.None);
                shares.AddRange(page.Where(e => e.Action == SignAuditRecords.DklsNodeAction && e.KeyId == keyId));
                if (page.Count < 1000)
                {
                    break;
                }

                from = page[^1].Seq + 1;
            }
        }

        return shares;
    }

    private Task<IConclaveStore> OpenNodeStoreAsync(uint node)
    {
        NodeConfig config = NodeConfig.Load(_c.Layout.NodeConfigPath(node));
        return ConclaveStore.OpenSqliteAsync(config.Resolve(config.DataDir), new StoreOptions { ReadOnly = true });
    }

    [Fact]
    public async Task EmptyPool_FallsBackToThreeRounds()
    {
        DklsCoordinator coordinator = Coordinator(2);
        DklsKeyInfo key = await coordinator.CreateKeyAsync("dkls-empty-" + Guid.NewGuid().ToString("N")[..8], 2, [1, 2, 3], CancellationToken.None);
        Assert.Equal(0, coordinator.PresignDepth(key.KeyId, []));
        byte[] digest = SHA256.HashData("empty"u8);
        AssertVerifies(key, [], digest, await coordinator.SignDigestAsync(key.KeyId, digest, [], CancellationToken.None));
        Assert.Equal(0, coordinator.PresignedSignatures);
    }

    [Fact]
    public async Task NodeKilledDuringPresignedSigning_SignaturesContinueWithAnotherQuorum_AndNoRIsRepeated()
    {
        DklsCoordinator coordinator = Coordinator(6);
        DklsKeyInfo key = await coordinator.CreateKeyAsync("dkls-prekill-" + Guid.NewGuid().ToString("N")[..8], 2, [1, 2, 3], CancellationToken.None);
        await coordinator.PresignAsync(key.KeyId, [], CancellationToken.None);
        const int total = 14;
        int signed = 0;
        var threeSigned = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var rs = new System.Collections.Concurrent.ConcurrentDictionary<string, byte>();
        Task loop = Task.Run(async () =>
        {
            await Parallel.ForAsync(0, total, new ParallelOptions { MaxDegreeOfParallelism = 2 }, async (i, ct) =>
            {
                byte[] digest = SHA256.HashData(TestSeed.Bytes(16, $"prekill {i}"));
                DklsSignatureResult sig = await coordinator.SignDigestAsync(key.KeyId, digest, [], ct);
                Assert.True(EcdsaSecp256k1.Instance.Verify(key.PublicKey.GroupPublicKey, digest, sig.Signature));
                Assert.True(rs.TryAdd(Convert.ToHexString(sig.Signature, 0, 32), 0), "two signatures share an R");
                if (Interlocked.Increment(ref signed) == 3)
                {
                    threeSigned.TrySetResult();
                }
            });
        });

        Task first = await Task.WhenAny(threeSigned.Task, loop, Task.Delay(TimeSpan.FromMinutes(3)));
        if (first != threeSigned.Task)
        {
            await (first == loop ? loop : Task.CompletedTask);
            Assert.Fail($"only {Volatile.Read(ref signed)} signatures within 3 minutes before the kill");
        }

        _c.KillNode(2); // a member of the first pool's signer set {1, 2}
        try
        {
            await loop;
            Assert.Equal(total, signed);
            Assert.True(coordinator.PresignedSignatures > 0);
        }
        finally
        {
            _c.StartNode(2);
            _c.WaitForAll(TimeSpan.FromSeconds(60));
        }
    }

    /// <summary>
    /// One online step carrying three items straight to each signer (<see cref="DklsPresignBatch"/>): a fresh
    /// presignature, one already used, another fresh one. Each node signs the two fresh ones and refuses the used one in
    /// its own slot ("already used", no culprit); the two signatures combine from the nodes' replies and verify with
    /// libsecp256k1 under the key (DklsCombiner, which also recovers the key).
    /// </summary>
    [Fact]
    public async Task AnOnlineStepOfThreeItems_SignsEachFreshOne_AndRefusesTheUsedOneInItsOwnSlot()
    {
        DklsCoordinator coordinator = Coordinator(4);
        DklsKeyInfo key = await coordinator.CreateKeyAsync("dkls-prebatch-" + Guid.NewGuid().ToString("N")[..8], 2, [1, 2, 3], CancellationToken.None);
        await coordinator.PresignAsync(key.KeyId, [], CancellationToken.None);
        DklsPooledPresignature used = coordinator.TakePresignature(key, [])!;
        DklsPooledPresignature a = coordinator.TakePresignature(key, [])!;
        DklsPooledPresignature b = coordinator.TakePresignature(key, [])!;
        Assert.NotNull(used);
        Assert.NotNull(a);
        Assert.NotNull(b);
        Assert.Equal(used.Signers, a.Signers);
        Assert.Equal(used.Signers, b.Signers);
        byte[] first = SHA256.HashData("batch used"u8);
        AssertVerifies(key, [], first, await coordinator.SignPresignedAsync(key, used, first, [], CancellationToken.None));

        byte[] digestA = SHA256.HashData("batch a"u8), digestB = SHA256.HashData("batch b"u8);
        var sharesA = new List<DklsSignatureShare>();
        var sharesB = new List<DklsSignatureShare>();
        foreach (uint node in used.Signers)
        {
            DklsPresignItem Item(DklsPooledPresignature p, byte[] digest) =>
                new(Conclave.Server.Coordinator.Cluster.NewSessionId(), key.KeyId, key.Version, p.Signers, [], p.Ids[node], digest);
            byte[] payload = DklsPresignBatch.EncodeRequest([Item(a, digestA), Item(used, SHA256.HashData("batch again"u8)), Item(b, digestB)]);
            IReadOnlyList<Conclave.Node.Rpc.Envelope> reply = await _c.Coordinator.Node(node).StepAsync(
                _c.Coordinator.Request(Conclave.Server.Coordinator.Cluster.NewSessionId(), DklsPresignHandlers.PresignSign, 1, [node], payload), [],
                TimeSpan.FromSeconds(30), CancellationToken.None);
            Conclave.Node.Rpc.Envelope answer = Assert.Single(reply);
            Assert.Equal(DklsPresignHandlers.Shares, answer.Kind);
            IReadOnlyList<DklsPresignOutcome> outcomes = DklsPresignBatch.DecodeReply(answer.Payload.Span, 3);
            Assert.Equal(a.R, outcomes[0].NoncePoint);
            Assert.Null(outcomes[1].Share);
            Assert.Null(outcomes[1].Culprit);
            Assert.Contains("already used", outcomes[1].Refusal, StringComparison.Ordinal);
            Assert.Equal(b.R, outcomes[2].NoncePoint);
            sharesA.Add(DklsSignatureShare.FromBytes(outcomes[0].Share));
            sharesB.Add(DklsSignatureShare.FromBytes(outcomes[2].Share));
        }

        Conclave.Threshold.Frost.Identifier[] signers = [.. used.Signers.Select(n => Conclave.Threshold.Frost.Identifier.FromInt(Conclave.Threshold.Frost.FrostCiphersuite.Secp256k1Sha256, (int)n))];
        DklsSignature sigA = DklsCombiner.Combine(key.PublicKey, a.Session, signers, [], a.R, digestA, sharesA);
        DklsSignature sigB = DklsCombiner.Combine(key.PublicKey, b.Session, signers, [], b.R, digestB, sharesB);
        Assert.True(EcdsaSecp256k1.Instance.Verify(key.PublicKey.GroupPublicKey, digestA, sigA.Signature));
        Assert.True(EcdsaSecp256k1.Instance.Verify(key.PublicKey.GroupPublicKey, digestB, sigB.Signature));
    }

    /// <summary>
    /// Coalescing of the online round (docs/ARCHITECTURE.md "Coalescing"): with one online step in flight per node, 24
    /// presigned signatures asked at once, one of them with a presignature already used, leave in fewer steps than
    /// halves; the used one fails alone (a refusal naming nobody), and the other 23 verify under the key with
    /// libsecp256k1 and @noble/curves, each under the R it was presigned with.
    /// </summary>
    [Fact]
    public async Task ConcurrentPresignedSignatures_ShareOnlineSteps_AndARefusedItemFailsOnlyItsOwnSignature()
    {
        var coordinator = new DklsCoordinator(new ThresholdEngine(_c.Coordinator)) { PresignPoolSize = 24, PresignParallelism = 2, PresignStepsInFlight = 1 };
        DklsKeyInfo key = await coordinator.CreateKeyAsync("dkls-precoal-" + Guid.NewGuid().ToString("N")[..8], 2, [1, 2, 3], CancellationToken.None);
        await coordinator.PresignAsync(key.KeyId, [], CancellationToken.None);
        var taken = new List<DklsPooledPresignature>();
        while (taken.Count < 24 && coordinator.TakePresignature(key, []) is { } p)
        {
            taken.Add(p);
        }

        Assert.Equal(24, taken.Count);
        DklsPooledPresignature used = taken[0];
        AssertVerifies(key, [], SHA256.HashData("coalesce first"u8), await coordinator.SignPresignedAsync(key, used, SHA256.HashData("coalesce first"u8), [], CancellationToken.None));

        (long items0, long steps0) = coordinator.PresignSteps;
        var presignatures = new List<DklsPooledPresignature>(taken.Skip(1));
        presignatures.Insert(5, used);
        byte[][] digests = [.. presignatures.Select((_, i) => SHA256.HashData(TestSeed.Bytes(16, $"coalesce {i}")))];
        Task<DklsSignatureResult>[] calls = [.. presignatures.Select((p, i) => coordinator.SignPresignedAsync(key, p, digests[i], [], CancellationToken.None))];
        try
        {
            await Task.WhenAll(calls);
        }
        catch (NodeCallException)
        {
            // Looked at below, call by call.
        }

        (long items1, long steps1) = coordinator.PresignSteps;
        Assert.Equal(2 * 24, items1 - items0);
        Assert.True(steps1 - steps0 < items1 - items0, $"{items1 - items0} halves in {steps1 - steps0} steps");

        NodeCallException refused = Assert.IsType<NodeCallException>(calls[5].Exception?.InnerException);
        Assert.Null(refused.Culprit);
        Assert.Contains("already used", refused.Message, StringComparison.Ordinal);

        var cases = new List<object>();
        for (int i = 0; i < calls.Length; i++)
        {
            if (i == 5)
            {
                continue;
            }

            DklsSignatureResult sig = await calls[i];
            AssertVerifies(key, [], digests[i], sig);
            Assert.Equal(presignatures[i].R.AsSpan(1).ToArray(), sig.Signature.AsSpan(0, 32).ToArray());
            cases.Add(new { publicKey = Convert.ToHexStringLower(sig.PublicKey), digest = Convert.ToHexStringLower(digests[i]), signature = Convert.ToHexStringLower(sig.Signature), recoveryId = sig.RecoveryId });
        }

        System.Text.Json.Nodes.JsonArray checks = NodeInterop.Run("dkls23", cases);
        Assert.Equal(23, checks.Count);
        Assert.All(checks, r => Assert.True(r!["ok"]!.GetValue<bool>() && r["recovered"]!.GetValue<bool>(), r.ToJsonString()));
    }
}
