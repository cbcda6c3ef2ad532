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
    public async Task ATamperedUnsignedOrForeignRunKey_IsRefusedNamingItsNode_AMissingOneNamingNobody()
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

        // A run key that node 2's own envelope carries is evidence against node 2; a run key that was not relayed is not (the
        // coordinator may have dropped it), so nobody is named for it.
        var cases = new (string Name, Func<byte[], Envelope, Envelope?> Forge, string Refusal, uint? Culprit)[]
        {
            ("tampered", (run, genuine) => Forged(two, run, Flip(genuine.Payload.ToByteArray(), genuine.Payload.Length - 4 - 64 - 1)), "node 2's run agreement key is not signed by its identity key", 2u),
            ("unsigned", (run, genuine) => Forged(two, run, ZeroSignature(genuine.Payload.ToByteArray())), "node 2's run agreement key is not signed by its identity key", 2u),
            ("foreign run", (run, _) => Forged(two, run, foreign.Payload.ToByteArray()), "node 2's run agreement key is bound to another run", 2u),
            ("missing", (_, _) => null, "no run agreement key of node 2 was relayed: refused, nobody named", null),
        };
        foreach ((string name, Func<byte[], Envelope, Envelope?> forge, string refusal, uint? culprit) in cases)
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
            Assert.Equal(culprit, refused.Culprit);
        }
    }

    /// <summary>
    /// A repair's agreement step is not recorded durably on the node, so a coordinator that asks a node twice for the same
    /// session (here across a restart of node 2) gets two run keys validly signed by it. Relayed together to another
    /// helper they are refused naming nobody (before: node 2 was named, framed by the coordinator). Likewise a run key of a
    /// node that is not a participant in the helper's view (the coordinator told node 2 another participant list), and a
    /// missing one. The positive control, one run key of each participant, passes the check (and fails later: no such key).
    /// </summary>
    [Fact]
    public async Task Repair_run_keys_the_coordinator_could_have_arranged_are_refused_naming_nobody()
    {
        Cluster cluster = _c.Coordinator;
        TimeSpan timeout = TimeSpan.FromSeconds(30);
        // A node takes part in one repair of a key at a time: each scenario repairs a key of its own name.
        byte[] Agreement(string keyId, params uint[] helpers)
        {
            var w = new PayloadWriter().String(keyId).U32(1).U32((uint)helpers.Length);
            foreach (uint h in helpers)
            {
                w.U32(h);
            }

            return w.ToArray();
        }

        async Task<Envelope> AgreeAsync(byte[] session, uint node, byte[] payload)
            => (await cluster.Node(node).StepAsync(cluster.Request(session, FrostMessages.RepairAgreement, 1, [node], payload), [], timeout, CancellationToken.None))
                .Single(e => e.Kind == FrostMessages.RepairAgreementKey);

        async Task<NodeCallException> StartOnThreeAsync(byte[] session, byte[] agreement, IEnumerable<Envelope> relayed)
            => await Assert.ThrowsAsync<NodeCallException>(() => cluster.Node(3).StepAsync(
                cluster.Request(session, FrostMessages.RepairStart, 2, [3], [.. agreement, 0, 0, 0, 1]), relayed, timeout, CancellationToken.None));

        byte[] helpers23 = Agreement("frame-a-" + Guid.NewGuid().ToString("N")[..8], 2, 3);

        // Positive control: lost node 1, helpers 2 and 3, one run key each: the announcements pass; the repair then stops at
        // the share node 3 does not have.
        byte[] control = Cluster.NewSessionId();
        Envelope[] keys = [await AgreeAsync(control, 1, helpers23), await AgreeAsync(control, 2, helpers23)];
        _ = await AgreeAsync(control, 3, helpers23);
        NodeCallException controlRefusal = await StartOnThreeAsync(control, helpers23, keys);
        Assert.DoesNotContain("run agreement key", controlRefusal.Message, StringComparison.Ordinal);

        // Two run keys of node 2 for one session: asked again after a restart.
        helpers23 = Agreement("frame-b-" + Guid.NewGuid().ToString("N")[..8], 2, 3);
        byte[] session = Cluster.NewSessionId();
        Envelope first = await AgreeAsync(session, 2, helpers23);
        _c.KillNode(2);
        _c.StartNode(2);
        _c.WaitForAll(TimeSpan.FromSeconds(90));
        Envelope second = await AgreeAsync(session, 2, helpers23);
        Assert.False(first.Payload.Equals(second.Payload));
        Envelope lost = await AgreeAsync(session, 1, helpers23);
        _ = await AgreeAsync(session, 3, helpers23);
        NodeCallException twice = await StartOnThreeAsync(session, helpers23, [lost, first, second]);
        Assert.Contains("two run agreement keys were relayed for node 2", twice.Message, StringComparison.Ordinal);
        Assert.Null(twice.Culprit);

        // Node 4 told it is a helper; node 3 told the helpers are 2 and 3: node 4's genuine run key relayed to node 3.
        string strangerKey = "frame-c-" + Guid.NewGuid().ToString("N")[..8];
        helpers23 = Agreement(strangerKey, 2, 3);
        byte[] other = Cluster.NewSessionId();
        byte[] helpers234 = Agreement(strangerKey, 2, 3, 4);
        Envelope four = await AgreeAsync(other, 4, helpers234);
        Envelope[] others = [await AgreeAsync(other, 1, helpers23), await AgreeAsync(other, 2, helpers23)];
        _ = await AgreeAsync(other, 3, helpers23);
        NodeCallException stranger = await StartOnThreeAsync(other, helpers23, [.. others, four]);
        Assert.Contains("a run agreement key of node 4, not a participant of this repair, was relayed", stranger.Message, StringComparison.Ordinal);
        Assert.Null(stranger.Culprit);

        // Node 2's run key withheld.
        helpers23 = Agreement("frame-d-" + Guid.NewGuid().ToString("N")[..8], 2, 3);
        byte[] withheld = Cluster.NewSessionId();
        Envelope lostKey = await AgreeAsync(withheld, 1, helpers23);
        _ = await AgreeAsync(withheld, 2, helpers23);
        _ = await AgreeAsync(withheld, 3, helpers23);
        NodeCallException missing = await StartOnThreeAsync(withheld, helpers23, [lostKey]);
        Assert.Contains("no run agreement key of node 2 was relayed", missing.Message, StringComparison.Ordinal);
        Assert.Null(missing.Culprit);
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
