using System.Collections.Concurrent;
using Conclave.Crypto.Aead;
using Conclave.Crypto.Memory;
using Conclave.Node.Config;
using Conclave.Node.Frost;
using Conclave.Node.Hosting;
using Conclave.Node.Protocol;
using Conclave.Node.Rpc;
using Conclave.Server.Coordinator;
using Conclave.Server.Hosting;
using Conclave.Threshold.Frost;
using Conclave.Threshold.Frost.Ciphersuites;
using AeadEnvelope = Conclave.Crypto.Aead.Envelope;
using Envelope = Conclave.Node.Rpc.Envelope;

namespace Conclave.Node.Tests;

/// <summary>
/// Forward secrecy of relayed DKG, refresh, reshare and repair messages (docs/ROTATION.md "Forward secrecy of relayed
/// shares"): an eavesdropper who recorded every relayed message of a run and later takes a node's long-term identity,
/// agreement key and KEK cannot open that node's shares of the earlier run.
/// </summary>
[Collection(FiveNodeCluster.Sequential)]
public sealed class ForwardSecrecyTests(FiveNodeCluster fixture) : IClassFixture<FiveNodeCluster>
{
    private readonly LocalClusterProcesses _c = fixture.Cluster;

    [Fact]
    public async Task RecordedSharesOfEarlierRuns_DoNotOpenWithTheNodesLongTermKeysAndKekTakenLater()
    {
        var recorded = new ConcurrentQueue<Envelope>();
        var coordinator = new FrostCoordinator(_c.Coordinator) { PoolBatch = 4 };
        FrostKeyInfo key;
        _c.Coordinator.ObserveReplies(recorded.Enqueue);
        try
        {
            key = await coordinator.CreateKeyAsync("fs-" + Guid.NewGuid().ToString("N")[..8], FrostCiphersuite.Ed25519Sha512, 2, [1, 2, 3], CancellationToken.None);
            await coordinator.RefreshAsync(key.KeyId, CancellationToken.None);
        }
        finally
        {
            _c.Coordinator.ObserveReplies(null);
        }

        // A later epoch: another refresh, and the key still signs.
        key = await coordinator.RefreshAsync(key.KeyId, CancellationToken.None);
        Assert.Equal(3, key.Version);
        byte[] msg = TestSeed.Bytes(32, "forward secrecy");
        byte[] signature = await coordinator.SignAsync(key.KeyId, msg, CancellationToken.None);
        Assert.True(key.Suite.Verify(key.PublicKeyPackage.VerificationKey, msg, signature));

        // The attacker now takes node 2's KEK and sealed identity (the long-term identity and agreement keys).
        ClusterManifest manifest = _c.Manifest;
        NodeConfig config = NodeConfig.Load(_c.Layout.NodeConfigPath(2));
        using SecretBuffer kek = KekFile.Read(config.Resolve(config.KekFile));
        using NodeIdentity stolen = NodeIdentity.Unseal(2, kek.ReadOnlySpan, File.ReadAllBytes(Path.Combine(config.Resolve(config.DataDir), "identity.sealed")));
        Assert.Equal(manifest.Node(2).AgreementKey, Convert.ToHexStringLower(stolen.AgreementPublicKey));

        // The recorded shares dealt to node 2 in the key generation and the first refresh: two other dealers, two runs,
        // and every participant's announced run key of both runs.
        List<Envelope> shares = [.. recorded.Where(e => e.Kind == FrostMessages.DkgShare && e.Recipients.SequenceEqual([2u]))];
        Assert.Equal(4, shares.Count);
        Assert.Equal(2, shares.Select(s => s.SessionId).Distinct().Count());
        List<Envelope> runKeys = [.. recorded.Where(e => e.Kind == FrostMessages.DkgAgreementKey)];
        Assert.Equal(6, runKeys.Count);
        foreach (Envelope share in shares)
        {
            byte[] session = share.SessionId.ToByteArray();
            byte[] dealerRunKey = RunAgreementKey.VerifyAnnouncement(runKeys.Single(k => k.Sender == share.Sender && k.SessionId == share.SessionId).Payload.Span, manifest, share.Sender, session, key.KeyId);
            byte[] ownRunKey = RunAgreementKey.VerifyAnnouncement(runKeys.Single(k => k.Sender == 2 && k.SessionId == share.SessionId).Payload.Span, manifest, 2, session, key.KeyId);
            byte[] dealerStatic = Convert.FromHexString(manifest.Node(share.Sender).AgreementKey);

            // The static-static derivation the nodes used before run keys (this opened every share before the fix).
            Assert.False(Opens(stolen, dealerStatic, StaticShareContext(session, share.Sender, 2), share), $"node 2's share from node {share.Sender} opened static-static");

            // Node 2's long-term agreement key against the dealer's announced run key or its long-term key, under the
            // context the share was really sealed with: the long-term key is not the key it was sealed to.
            byte[] sealedContext = RunAgreementKey.SealingContext(FrostMessages.DkgShareContext(session, share.Sender, 2), dealerRunKey, ownRunKey);
            Assert.False(Opens(stolen, dealerRunKey, sealedContext, share), $"node 2's share from node {share.Sender} opened with its long-term key");
            Assert.False(Opens(stolen, dealerStatic, sealedContext, share), $"node 2's share from node {share.Sender} opened with both long-term keys");
        }

        // Nothing of the run keys is left on node 2's disk: its data folder holds no announced run public key either
        // (the private half is never written; the public half would be the first thing persisted with it).
        foreach (string file in Directory.GetFiles(config.Resolve(config.DataDir), "*", SearchOption.AllDirectories))
        {
            byte[] bytes = await File.ReadAllBytesAsync(file);
            foreach (Envelope k in runKeys.Where(k => k.Sender == 2))
            {
                byte[] pk = RunAgreementKey.VerifyAnnouncement(k.Payload.Span, manifest, 2, k.SessionId.ToByteArray(), key.KeyId);
                Assert.True(bytes.AsSpan().IndexOf(pk) < 0, $"node 2's run key appears in {file}");
            }
        }
    }

    [Fact]
    public async Task ATamperedUnsignedForeignRunOrMissingRunKey_IsRefusedNamingItsNode()
    {
        Cluster cluster = _c.Coordinator;
        NodeConfig config = NodeConfig.Load(_c.Layout.NodeConfigPath(2));
        using SecretBuffer kek = KekFile.Read(config.Resolve(config.KekFile));
        // The test plays a coordinator that also holds node 2's identity key, so its forgeries pass the envelope check
        // and reach the run-key check itself.
        using NodeIdentity two = NodeIdentity.Unseal(2, kek.ReadOnlySpan, File.ReadAllBytes(Path.Combine(config.Resolve(config.DataDir), "identity.sealed")));

        (byte[] otherRun, Dictionary<uint, Envelope[]> other) = await StartAsync(cluster, "fs-other-" + Guid.NewGuid().ToString("N")[..8]);
        Envelope foreign = other[2].Single(e => e.Kind == FrostMessages.DkgAgreementKey);
        Assert.Equal(otherRun, foreign.SessionId.ToByteArray());

        var cases = new (string Name, Func<byte[], Envelope, Envelope?> Forge, string Refusal)[]
        {
            ("tampered", (run, genuine) => Forged(two, run, Flip(genuine.Payload.ToByteArray(), genuine.Payload.Length - 4 - 64 - 1)), "node 2's run agreement key is not signed by its identity key"),
            ("unsigned", (run, genuine) => Forged(two, run, ZeroSignature(genuine.Payload.ToByteArray())), "node 2's run agreement key is not signed by its identity key"),
            ("foreign run", (run, _) => Forged(two, run, foreign.Payload.ToByteArray()), "node 2's run agreement key is bound to another run"),
            ("missing", (_, _) => null, "node 2 announced no run agreement key"),
        };
        foreach ((string name, Func<byte[], Envelope, Envelope?> forge, string refusal) in cases)
        {
            (byte[] run, Dictionary<uint, Envelope[]> started) = await StartAsync(cluster, "fs-" + name.Replace(' ', '-') + "-" + Guid.NewGuid().ToString("N")[..8]);
            Envelope? forged = forge(run, started[2].Single(e => e.Kind == FrostMessages.DkgAgreementKey));
            List<Envelope> relayed = [.. started[2].Where(e => e.Kind == FrostMessages.DkgCommitment), .. started[3]];
            if (forged is not null)
            {
                relayed.Add(forged);
            }

            NodeCallException refused = await Assert.ThrowsAsync<NodeCallException>(() =>
                cluster.Node(1).StepAsync(cluster.Request(run, FrostMessages.DkgReveal, 2, [1], []), relayed, TimeSpan.FromSeconds(30), CancellationToken.None));
            Assert.True(refused.Message.Contains(refusal, StringComparison.Ordinal), $"{name}: {refused.Message}");
            Assert.Equal(2u, refused.Culprit);
        }
    }

    /// <summary>Starts a 2-of-3 key generation on nodes 1..3 (the commit step); returns the run id and each node's messages.</summary>
    private static async Task<(byte[] Run, Dictionary<uint, Envelope[]> Started)> StartAsync(Cluster cluster, string keyId)
    {
        byte[] run = Cluster.NewSessionId();
        byte[] payload = new PayloadWriter().U32(0).String(keyId).String("frost-ed25519").U32(2)
            .U32(3).U32(1).U32(2).U32(3).U32(3).U32(1).U32(2).U32(3).U32(0).Bytes([]).U32(0).ToArray();
        var started = new Dictionary<uint, Envelope[]>();
        foreach (uint n in new uint[] { 1, 2, 3 })
        {
            started[n] = [.. await cluster.Node(n).StepAsync(cluster.Request(run, FrostMessages.DkgStart, 1, [n], payload), [], TimeSpan.FromSeconds(30), CancellationToken.None)];
            Assert.Single(started[n], e => e.Kind == FrostMessages.DkgAgreementKey);
        }

        return (run, started);
    }

    private static Envelope Forged(NodeIdentity sender, byte[] run, byte[] payload) => EnvelopeSigner.Sign(new Envelope
    {
        SessionId = Google.Protobuf.ByteString.CopyFrom(run),
        Kind = FrostMessages.DkgAgreementKey,
        Round = 1,
        Sender = sender.NodeId,
        Payload = Google.Protobuf.ByteString.CopyFrom(payload),
        IssuedAtUnixMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
    }, sender);

    private static byte[] Flip(byte[] b, int index)
    {
        b[index] ^= 1;
        return b;
    }

    private static byte[] ZeroSignature(byte[] b)
    {
        Array.Clear(b, b.Length - 64, 64);
        return b;
    }

    /// <summary>The attacker's try: node 2's long-term agreement key against <paramref name="peerKey"/> under <paramref name="context"/>.</summary>
    private static bool Opens(NodeIdentity stolen, byte[] peerKey, byte[] context, Envelope share)
    {
        using SecretBuffer k = stolen.DeriveSharedKey(peerKey, context);
        try
        {
            using SecretBuffer plain = AeadEnvelope.Open(k.ReadOnlySpan, share.Payload.ToByteArray(), context);
            return true;
        }
        catch (EnvelopeException)
        {
            return false;
        }
    }

    /// <summary>The HKDF info and AEAD context of a DKG share as the nodes sealed it static-static: domain, session, sender, recipient.</summary>
    private static byte[] StaticShareContext(byte[] session, uint sender, uint recipient)
    {
        byte[] label = "conclave/dkg-share/v1"u8.ToArray();
        byte[] r = new byte[label.Length + 4 + session.Length + 8];
        label.CopyTo(r, 0);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(r.AsSpan(label.Length), (uint)session.Length);
        session.CopyTo(r, label.Length + 4);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(r.AsSpan(label.Length + 4 + session.Length), sender);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(r.AsSpan(label.Length + 8 + session.Length), recipient);
        return r;
    }
}
