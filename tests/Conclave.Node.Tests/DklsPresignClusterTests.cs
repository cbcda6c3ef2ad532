using System.Security.Cryptography;
using Conclave.Crypto.Secp256k1;
using Conclave.Server.Coordinator;
using Conclave.Server.Hosting;
using Conclave.Server.Threshold.Dkls23;
using Conclave.Threshold.Dkls23;

namespace Conclave.Node.Tests;

/// <summary>The DKLs23 presignature pool through three real signer-node processes (2-of-3).</summary>
public sealed class DklsPresignClusterTests(ThreeNodeCluster fixture) : IClassFixture<ThreeNodeCluster>
{
    private readonly LocalClusterProcesses _c = fixture.Cluster;

    private DklsCoordinator Coordinator(int poolSize) =>
        new(_c.Coordinator, new FrostCoordinator(_c.Coordinator)) { PresignPoolSize = poolSize, PresignParallelism = 2 };

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
}
