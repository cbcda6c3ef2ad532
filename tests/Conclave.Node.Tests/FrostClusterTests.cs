using Conclave.Server.Hosting;
using Conclave.Chains.Bitcoin;
using System.Text.Json.Nodes;
using Conclave.Server.Coordinator;
using Conclave.Threshold.Frost;
using Conclave.Threshold.Frost.Ciphersuites;

namespace Conclave.Node.Tests;

/// <summary>FROST through real signer-node processes over mutual TLS: import, pools, signing, failures.</summary>
public sealed class FrostClusterTests(ThreeNodeCluster fixture) : IClassFixture<ThreeNodeCluster>
{
    private readonly LocalClusterProcesses _c = fixture.Cluster;

    private static int Signatures => Environment.GetEnvironmentVariable("CONCLAVE_LONG_TESTS") == "1" ? 10_000 : 1_000;

    /// <summary>
    /// The key a signature of <paramref name="key"/> verifies under, computed independently of the FROST library: for
    /// frost-taproot the BIP-86 output key of the x-only internal key (Conclave.Chains, checked against the BIP-341
    /// wallet vectors), else the key itself.
    /// </summary>
    private static byte[] Verifying(string scheme, byte[] key) => scheme == "frost-taproot" ? TaprootAddress.Bip86OutputKey(key).OutputKey : key;

    /// <summary>Issue 18: step messages are sized for the byte counters only while counting is switched on (conclave bench).</summary>
    [Fact]
    public async Task StepBytes_AreCountedOnlyWhileCountingIsOn()
    {
        var coordinator = new FrostCoordinator(_c.Coordinator) { PoolBatch = 4 };
        FrostKeyInfo key = await coordinator.CreateKeyAsync("bytes-" + Guid.NewGuid().ToString("N"), FrostCiphersuite.Ed25519Sha512, 2, [1, 2, 3], CancellationToken.None);
        long Total() => _c.Coordinator.NodeIds.Sum(n => _c.Coordinator.Node(n).BytesSent + _c.Coordinator.Node(n).BytesReceived);
        Assert.False(_c.Coordinator.CountBytes);
        long before = Total();
        _ = await coordinator.SignAsync(key.KeyId, TestSeed.Bytes(32, "uncounted"), CancellationToken.None);
        Assert.Equal(before, Total());
        _c.Coordinator.CountBytes = true;
        try
        {
            _ = await coordinator.SignAsync(key.KeyId, TestSeed.Bytes(32, "counted"), CancellationToken.None);
            Assert.True(Total() > before, "no bytes counted while counting was on");
        }
        finally
        {
            _c.Coordinator.CountBytes = false;
        }
    }

    /// <summary>
    /// Issue 18, coalescing: signatures asked at once, of two keys and children of one of them, share sign steps (one
    /// step carries many shares), and every signature verifies under its own (child) key; the shares never cross
    /// between items. With one step in flight per node almost everything waits and coalesces.
    /// </summary>
    [Theory]
    [InlineData("frost-secp256k1")]
    [InlineData("frost-taproot")]
    [InlineData("frost-ed25519")]
    public async Task ConcurrentSignatures_ShareSignSteps_AndEachVerifiesUnderItsOwnKey(string scheme)
    {
        Assert.True(FrostCiphersuite.TryGet(scheme, out FrostCiphersuite? suite));
        var coordinator = new FrostCoordinator(_c.Coordinator) { PoolBatch = 256, SignStepsInFlight = 1 };
        FrostKeyInfo a = await coordinator.CreateKeyAsync($"coalesce-a-{Guid.NewGuid():N}", suite, 2, [1, 2, 3], CancellationToken.None);
        FrostKeyInfo b = await coordinator.CreateKeyAsync($"coalesce-b-{Guid.NewGuid():N}", suite, 2, [1, 2, 3], CancellationToken.None);
        (long itemsBefore, long stepsBefore) = coordinator.SignSteps;
        Random random = TestSeed.Random("coalesced signatures " + scheme);
        var work = Enumerable.Range(0, 96).Select(i =>
        {
            FrostKeyInfo key = i % 2 == 0 ? a : b;
            IReadOnlyList<uint> path = i % 3 == 0 ? [(uint)random.Next(0, int.MaxValue)] : [];
            byte[] message = TestSeed.Bytes(32, $"coalesced message {i} {scheme}");
            return (key, path, message, Task: coordinator.SignAsync(key.KeyId, message, path, CancellationToken.None));
        }).ToList();
        await Task.WhenAll(work.Select(w => w.Task));

        foreach ((FrostKeyInfo key, IReadOnlyList<uint> path, byte[] message, Task<FrostSignature> task) in work)
        {
            FrostSignature sig = await task;
            Assert.Equal(key.SigningKeyFor(path).VerificationKey, sig.VerificationKey);
            Assert.True(suite.Verify(sig.VerificationKey, message, sig.Signature), $"a coalesced {scheme} signature does not verify under its key");
        }

        (long items, long steps) = coordinator.SignSteps;
        Assert.Equal(96 * 2, items - itemsBefore);
        Assert.True(steps - stepsBefore < items - itemsBefore, $"{items - itemsBefore} shares went in {steps - stepsBefore} steps: nothing coalesced");
    }

    [Theory]
    [InlineData("frost-ed25519")]
    [InlineData("frost-secp256k1")]
    [InlineData("frost-taproot")]
    public async Task DkgKey_SignsManyMessages_AllVerifyIndependently(string scheme)
    {
        Assert.True(FrostCiphersuite.TryGet(scheme, out FrostCiphersuite? suite));
        var coordinator = new FrostCoordinator(_c.Coordinator) { PoolBatch = 256 };
        string keyId = $"k-{scheme}-{Guid.NewGuid():N}";
        FrostKeyInfo key = await coordinator.CreateKeyAsync(keyId, suite, 2, [1, 2, 3], CancellationToken.None);
        byte[] pub = Verifying(scheme, key.PublicKeyPackage.VerificationKey);

        var cases = new List<object>();
        const int parallel = 8;
        int n = Signatures;
        var signatures = new byte[n][];
        var messages = new byte[n][];
        await Parallel.ForAsync(0, n, new ParallelOptions { MaxDegreeOfParallelism = parallel }, async (i, ct) =>
        {
            messages[i] = TestSeed.Bytes(1 + (i % 64), $"message {i}");
            signatures[i] = await coordinator.SignAsync(keyId, messages[i], ct);
        });

        for (int i = 0; i < n; i++)
        {
            Assert.True(suite.Verify(pub, messages[i], signatures[i]), $"signature {i} does not verify");
            cases.Add(new { scheme, publicKey = Hex.Encode(pub), message = Hex.Encode(messages[i]), signature = Hex.Encode(signatures[i]) });
        }

        // Independent verification with @noble/curves: ed25519.verify, BIP-340 schnorr.verify, and for
        // frost-secp256k1 the RFC 9591 section 6.5 check written on noble's curve (tests/interop/checks/frost.mjs).
        JsonArray results = NodeInterop.Run("frost", cases);
        Assert.Equal(n, results.Count);
        Assert.All(results, r => Assert.True(r!["ok"]!.GetValue<bool>()));
    }

    [Fact]
    public async Task ImportedDealerKey_IsSealedToEachNode_AndSigns()
    {
        var coordinator = new FrostCoordinator(_c.Coordinator) { PoolBatch = 8 };
        using DealerOutput dealt = TrustedDealer.Generate(FrostCiphersuite.Secp256k1Taproot, 2, 3, TestSeed.For("dealt key"));
        FrostKeyInfo key = await coordinator.ImportAsync("imported-" + Guid.NewGuid().ToString("N"), dealt, CancellationToken.None);
        byte[] msg = TestSeed.Bytes(32, "message");
        byte[] sig = await coordinator.SignAsync(key.KeyId, msg, CancellationToken.None);
        // A dealer-split frost-taproot key is an internal key too: the nodes sign under its BIP-86 output key.
        Assert.True(key.Suite.Verify(Verifying("frost-taproot", dealt.PublicKeyPackage.VerificationKey), msg, sig));
        Assert.False(key.Suite.Verify(dealt.PublicKeyPackage.VerificationKey, msg, sig));
    }

    [Theory]
    [InlineData("frost-ed25519")]
    [InlineData("frost-secp256k1")]
    [InlineData("frost-taproot")]
    public async Task SignsWithDerivedChildKeys_VerifiedUnderTheChildKey(string scheme)
    {
        var coordinator = new FrostCoordinator(_c.Coordinator);
        FrostCiphersuite suite = FrostCiphersuite.All.Single(s => s.SchemeName == scheme);
        FrostKeyInfo key = await coordinator.CreateKeyAsync("k-hd-" + Guid.NewGuid().ToString("N")[..8], suite, 2, [1, 2, 3], CancellationToken.None);
        byte[] msg = System.Text.Encoding.UTF8.GetBytes("derived " + scheme);
        foreach (uint[] path in new[] { new uint[] { 0 }, [44, 0, 7], [2_147_483_647] })
        {
            // frost-taproot: the child of the internal key, then its BIP-86 tweak (as BIP-86 wallets derive addresses).
            byte[] child = Verifying(scheme, HdDerivation.DerivePath(key.PublicKeyPackage, path).VerificationKey);
            byte[] sig = (await coordinator.SignAsync(key.KeyId, msg, path, CancellationToken.None)).Signature;
            Assert.True(suite.Verify(child, msg, sig), $"{scheme} {string.Join('/', path)}");
            Assert.False(suite.Verify(Verifying(scheme, key.PublicKeyPackage.VerificationKey), msg, sig));
        }

        // The parent still signs as itself, from the same pools.
        byte[] parentSig = await coordinator.SignAsync(key.KeyId, msg, CancellationToken.None);
        Assert.True(suite.Verify(Verifying(scheme, key.PublicKeyPackage.VerificationKey), msg, parentSig));
    }

    [Fact]
    public async Task TamperedSigningRequestIsRefused_AndNoSignatureIsProduced()
    {
        var coordinator = new FrostCoordinator(_c.Coordinator);
        using DealerOutput dealt = TrustedDealer.Generate(FrostCiphersuite.Ed25519Sha512, 2, 3, TestSeed.For("dealt key"));
        string keyId = "k-tamper-" + Guid.NewGuid().ToString("N");
        await coordinator.ImportAsync(keyId, dealt, CancellationToken.None);
        // A sign step that does not parse is refused whole.
        byte[] payload = new Conclave.Node.Protocol.PayloadWriter().String(keyId).Bytes(new byte[16]).Bytes([1, 2, 3]).U32(0).ToArray();
        var req = _c.Coordinator.Request(Cluster.NewSessionId(), Conclave.Node.Frost.FrostMessages.Sign, 1, [1], payload);
        NodeCallException e = await Assert.ThrowsAsync<NodeCallException>(() => _c.Coordinator.Node(1).StepAsync(req, [], TimeSpan.FromSeconds(5), CancellationToken.None));
        Assert.Equal(Grpc.Core.StatusCode.FailedPrecondition, e.Status);

        // In a well-formed step, an item naming a nonce id the node never issued is refused in its slot, and the item
        // beside it (an unknown key) in its own: no share leaves for either.
        byte[] unknownNonce = [.. BitConverter.GetBytes(ulong.MaxValue), .. TestSeed.Bytes(8, "unknown nonce")];
        var items = new[]
        {
            new Conclave.Node.Frost.FrostSignItem(Cluster.NewSessionId(), keyId, unknownNonce, [1, 2, 3], [], 1),
            new Conclave.Node.Frost.FrostSignItem(Cluster.NewSessionId(), keyId + "-none", unknownNonce, [1, 2, 3], [], 1),
        };
        req = _c.Coordinator.Request(Cluster.NewSessionId(), Conclave.Node.Frost.FrostMessages.Sign, 1, [1], Conclave.Node.Frost.FrostSignBatch.EncodeRequest(items));
        IReadOnlyList<Conclave.Node.Rpc.Envelope> reply = await _c.Coordinator.Node(1).StepAsync(req, [], TimeSpan.FromSeconds(5), CancellationToken.None);
        IReadOnlyList<Conclave.Node.Frost.FrostSignOutcome> outcomes = Conclave.Node.Frost.FrostSignBatch.DecodeReply(Assert.Single(reply).Payload.Span, 2);
        Assert.All(outcomes, o => Assert.Null(o.Share));
        Assert.Contains("unknown or already used", outcomes[0].Refusal, StringComparison.Ordinal);
        Assert.NotNull(outcomes[1].Refusal);
    }
}
