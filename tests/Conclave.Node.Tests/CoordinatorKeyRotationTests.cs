using System.Diagnostics;
using Conclave.Crypto.Memory;
using Conclave.Node.Config;
using Conclave.Node.Hosting;
using Conclave.Node.Protocol;
using Conclave.Node.Rpc;
using Conclave.Server.Coordinator;
using Conclave.Server.Hosting;
using Conclave.Server.Rotation;
using Conclave.Threshold.Frost;
using Conclave.Threshold.Frost.Ciphersuites;
using Google.Protobuf;

namespace Conclave.Node.Tests;

/// <summary>A three-node cluster of its own (its manifest's coordinator key is rotated by the test).</summary>
public sealed class CoordinatorRotationCluster : IDisposable
{
    public LocalClusterProcesses Cluster { get; } = new(RepoPaths.CliDll, 3, 2);

    public void Dispose() => Cluster.Dispose();
}

/// <summary>
/// Rotating the coordinator's identity key while the cluster signs (docs/ROTATION.md "Rotating the coordinator's
/// identity"), with real node processes: `conclave coordinator rotate-keys` on the server's host, `conclave coordinator
/// apply-rotation` on the manifest every host reads; the running coordinator switches to the new key once its manifest
/// names it, the nodes accept it from their manifest, and refuse the old key after `end-overlap`.
/// </summary>
[Collection(FiveNodeCluster.Sequential)]
public sealed class CoordinatorKeyRotationTests(CoordinatorRotationCluster fixture) : IClassFixture<CoordinatorRotationCluster>
{
    private readonly LocalClusterProcesses _c = fixture.Cluster;

    [Fact]
    public async Task RotatingTheCoordinatorsKey_KeepsSigning_RefusesABadStatement_AndNodesRefuseTheOldKeyAfterTheOverlap()
    {
        using Cluster cluster = LocalClusterProcesses.CreateCoordinator(_c.ServerConfig, ClusterManifest.Load(_c.Layout.ManifestPath), manifestPath: _c.Layout.ManifestPath);
        var coordinator = new FrostCoordinator(cluster) { Runs = new InMemoryRotationLog(), PoolBatch = 4 };
        DeterministicRandomSource challenges = TestSeed.For("attestation challenges");
        FrostKeyInfo key = await coordinator.CreateKeyAsync("coordrot-" + Guid.NewGuid().ToString("N")[..8], FrostCiphersuite.Ed25519Sha512, 2, [1, 2, 3], CancellationToken.None);
        await SignAsync(coordinator, key, "before");
        string serverData = _c.ServerConfig.Resolve(_c.ServerConfig.DataDir);
        using NodeIdentity old = UnsealCoordinator(CoordinatorIdentityFiles.FirstIdentityFile);
        string oldHex = Convert.ToHexStringLower(old.IdentityPublicKey.Span);
        Assert.Equal(oldHex, cluster.IdentityKeyHex);
        string dir = Directory.CreateTempSubdirectory("conclave-coordrot-").FullName;

        using var stop = new CancellationTokenSource();
        int signed = 0;
        var failures = new List<string>();
        Task signer = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    await SignAsync(coordinator, key, "during " + signed);
                    Interlocked.Increment(ref signed);
                }
                catch (Exception e)
                {
                    lock (failures)
                    {
                        failures.Add(e.GetType().Name + ": " + e.Message);
                    }
                }
            }
        });

        try
        {
            // 1. On the server's host: the next coordinator identity, and the statement signed by the current key.
            (int exit, string stdout, string stderr) = TlsRotationTests.Cli("coordinator", "rotate-keys", "--config", _c.Layout.ServerConfigPath);
            Assert.True(exit == 0, stderr);
            CoordinatorKeyRotationStatement statement = CoordinatorKeyRotationStatement.FromJson(stdout);
            Assert.Equal(oldHex, statement.IdentityKey);
            Assert.True(File.Exists(Path.Combine(serverData, CoordinatorIdentityFiles.NextFile)));
            string statementFile = Path.Combine(dir, "statement.json");
            await File.WriteAllTextAsync(statementFile, stdout);

            // Statements the current key did not sign are refused, the manifest unchanged: a forged handover signature,
            // and a handover made by another key (a statement from an identity the manifest does not name).
            CoordinatorKeyRotationStatement forged = CoordinatorKeyRotationStatement.FromJson(stdout);
            using (NodeIdentity stranger = NodeIdentity.Generate(0))
            {
                forged.HandoverSignature = Convert.ToHexStringLower(stranger.Sign(CoordinatorKeyRotation.HandoverTranscript(old.IdentityPublicKey.Span, Convert.FromHexString(statement.NewIdentityKey))));
                CoordinatorKeyRotationStatement foreign = CoordinatorKeyRotation.CreateStatement(stranger, stranger);
                await File.WriteAllTextAsync(Path.Combine(dir, "foreign.json"), foreign.ToJson());
            }

            await File.WriteAllTextAsync(Path.Combine(dir, "forged.json"), forged.ToJson());
            (exit, _, stderr) = TlsRotationTests.Cli("coordinator", "apply-rotation", Path.Combine(dir, "forged.json"), "--manifest", _c.Layout.ManifestPath);
            Assert.Equal((2, "conclave: error: coordinator: the handover is not signed by the current identity key"), (exit, stderr.Trim()));
            (exit, _, stderr) = TlsRotationTests.Cli("coordinator", "apply-rotation", Path.Combine(dir, "foreign.json"), "--manifest", _c.Layout.ManifestPath);
            Assert.Equal((2, "conclave: error: coordinator: the statement rotates from an identity key the manifest does not name"), (exit, stderr.Trim()));
            ConfigException refused = Assert.Throws<ConfigException>(() => CoordinatorKeyRotation.Apply(ClusterManifest.Load(_c.Layout.ManifestPath), forged, DateTimeOffset.UtcNow.AddHours(1)));
            Assert.Equal("coordinator: the handover is not signed by the current identity key", refused.Message);
            Assert.Equal(oldHex, ClusterManifest.Load(_c.Layout.ManifestPath).CoordinatorIdentityKey);

            // 2. The manifest names the new key; the old one stays accepted for an hour.
            (exit, stdout, stderr) = TlsRotationTests.Cli("coordinator", "apply-rotation", statementFile, "--manifest", _c.Layout.ManifestPath, "--overlap-seconds", "3600");
            Assert.True(exit == 0, stderr);
            Assert.StartsWith("coordinator: identity key " + statement.NewIdentityKey, stdout, StringComparison.Ordinal);
            (exit, _, stderr) = TlsRotationTests.Cli("coordinator", "apply-rotation", statementFile, "--manifest", _c.Layout.ManifestPath);
            Assert.Equal((2, "conclave: error: coordinator: the manifest already names the new identity key"), (exit, stderr.Trim()));

            // 3. The running coordinator switches to the new key (its next identity file becomes its identity), and the
            // nodes take its requests; a request signed by the old key is still accepted during the overlap.
            await UntilAsync(() => cluster.IdentityKeyHex == statement.NewIdentityKey, "the coordinator did not switch to its new key");
            Assert.False(File.Exists(Path.Combine(serverData, CoordinatorIdentityFiles.NextFile)));
            Assert.True(File.Exists(Path.Combine(serverData, CoordinatorIdentityFiles.CurrentFile)));
            int atSwitch = Volatile.Read(ref signed);
            await UntilAsync(() => Volatile.Read(ref signed) >= atSwitch + 5, "no signature after the coordinator switched keys");
            Assert.Single(await AttestSignedByAsync(old, 1, challenges));

            // 4. End of the overlap: every node refuses a request signed by the old coordinator key; signing goes on.
            (exit, stdout, stderr) = TlsRotationTests.Cli("coordinator", "end-overlap", "--manifest", _c.Layout.ManifestPath);
            Assert.True(exit == 0, stderr);
            Assert.StartsWith("coordinator: 1 retired identity key(s) no longer accepted", stdout, StringComparison.Ordinal);
            foreach (uint node in new uint[] { 1, 2, 3 })
            {
                NodeCallException e = await RefusedAsync(old, node, challenges);
                Assert.Equal(Grpc.Core.StatusCode.Unauthenticated, e.Status);
                Assert.Contains("message 'node.attest' from 0 has no valid signature", e.Message, StringComparison.Ordinal);
            }

            int afterOverlap = Volatile.Read(ref signed);
            await UntilAsync(() => Volatile.Read(ref signed) >= afterOverlap + 5, "no signature after the old coordinator key was refused");
        }
        finally
        {
            await stop.CancelAsync();
            await signer;
            Directory.Delete(dir, true);
        }

        Assert.True(failures.Count == 0, string.Join("; ", failures));

        // 5. A coordinator started afresh (a server restart) loads the rotated identity, and the key signs through it.
        using Cluster restarted = LocalClusterProcesses.CreateCoordinator(_c.ServerConfig, ClusterManifest.Load(_c.Layout.ManifestPath), manifestPath: _c.Layout.ManifestPath);
        Assert.Equal(ClusterManifest.Load(_c.Layout.ManifestPath).CoordinatorIdentityKey, restarted.IdentityKeyHex);
        var again = new FrostCoordinator(restarted) { Runs = new InMemoryRotationLog() };
        again.Register(key);
        await SignAsync(again, key, "after a restart");
    }

    private NodeIdentity UnsealCoordinator(string file)
    {
        using SecretBuffer kek = KekFile.Read(_c.ServerConfig.Resolve(_c.ServerConfig.KekFile));
        return NodeIdentity.Unseal(0, kek.ReadOnlySpan, File.ReadAllBytes(Path.Combine(_c.ServerConfig.Resolve(_c.ServerConfig.DataDir), file)));
    }

    /// <summary>
    /// An attestation request to node <paramref name="to"/> signed by <paramref name="coordinator"/> (not by the cluster's current
    /// identity), its challenge the next one of <paramref name="challenges"/>.
    /// </summary>
    private Task<IReadOnlyList<Envelope>> AttestSignedByAsync(NodeIdentity coordinator, uint to, DeterministicRandomSource challenges)
    {
        var e = new Envelope
        {
            SessionId = ByteString.CopyFrom(Cluster.NewSessionId()),
            Kind = AttestHandler.RequestKind,
            Round = 0,
            Sender = 0,
            Payload = ByteString.CopyFrom(challenges.Bytes(32)),
            IssuedAtUnixMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
        };
        e.Recipients.Add(to);
        return _c.Coordinator.Node(to).StepAsync(EnvelopeSigner.Sign(e, coordinator), [], TimeSpan.FromSeconds(30), CancellationToken.None);
    }

    /// <summary>Sends old-key requests until the node refuses one (it re-reads the manifest file at most once a second).</summary>
    private async Task<NodeCallException> RefusedAsync(NodeIdentity coordinator, uint to, DeterministicRandomSource challenges)
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                await AttestSignedByAsync(coordinator, to, challenges);
            }
            catch (NodeCallException e)
            {
                return e;
            }

            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(60), $"node {to} still accepts the old coordinator key");
            await Task.Delay(250);
        }
    }

    private static async Task UntilAsync(Func<bool> condition, string failure)
    {
        var sw = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(90), failure);
            await Task.Delay(200);
        }
    }

    private static async Task SignAsync(FrostCoordinator coordinator, FrostKeyInfo key, string label)
    {
        byte[] msg = TestSeed.Bytes(32, label);
        byte[] signature = await coordinator.SignAsync(key.KeyId, msg, CancellationToken.None);
        Assert.True(key.Suite.Verify(key.PublicKeyPackage.VerificationKey, msg, signature));
    }
}

/// <summary>The coordinator key handover in the manifest, without processes (docs/ROTATION.md "Rotating the coordinator's identity").</summary>
public sealed class CoordinatorKeyHandoverTests
{
    [Fact]
    public void Apply_AcceptsOnlyTheCurrentKeysHandover_AndTheManifestAcceptsTheOldKeyUntilItsOverlapEnds()
    {
        using NodeIdentity first = NodeIdentity.Generate(0);
        using NodeIdentity second = NodeIdentity.Generate(0);
        using NodeIdentity third = NodeIdentity.Generate(0);
        ClusterManifest m = Manifest(first);
        DateTimeOffset now = DateTimeOffset.UtcNow;

        // Signed by another key than the one the manifest names: refused, nothing changed.
        CoordinatorKeyRotationStatement wrong = CoordinatorKeyRotation.CreateStatement(second, third);
        Assert.Equal("coordinator: the statement rotates from an identity key the manifest does not name",
            Assert.Throws<ConfigException>(() => CoordinatorKeyRotation.Apply(m, wrong, now.AddHours(1))).Message);
        wrong.IdentityKey = Hex(first);
        Assert.Equal("coordinator: the handover is not signed by the current identity key",
            Assert.Throws<ConfigException>(() => CoordinatorKeyRotation.Apply(m, wrong, now.AddHours(1))).Message);
        wrong.HandoverSignature = "zz";
        Assert.Equal("coordinator: the handover is not signed by the current identity key",
            Assert.Throws<ConfigException>(() => CoordinatorKeyRotation.Apply(m, wrong, now.AddHours(1))).Message);
        Assert.Equal(Hex(first), m.CoordinatorIdentityKey);
        Assert.Empty(m.RetiredCoordinatorKeys);

        // The current key's handover: the new key is current, the old one accepted until the end of its overlap.
        CoordinatorKeyRotationStatement good = CoordinatorKeyRotation.CreateStatement(first, second);
        CoordinatorKeyRotation.Apply(m, good, now.AddHours(1));
        m.Validate();
        Assert.Equal(Hex(second), m.CoordinatorIdentityKey);
        Assert.Equal([Hex(second), Hex(first)], m.AcceptedCoordinatorKeys(now.ToUnixTimeMilliseconds()).Select(k => Convert.ToHexStringLower(k)));
        Assert.Equal([Hex(second)], m.AcceptedCoordinatorKeys(now.AddHours(1).ToUnixTimeMilliseconds()).Select(k => Convert.ToHexStringLower(k)));
        Assert.Equal("coordinator: the manifest already names the new identity key",
            Assert.Throws<ConfigException>(() => CoordinatorKeyRotation.Apply(m, good, now.AddHours(1))).Message);

        // A second rotation chains on; ending the overlap refuses both old keys at once.
        CoordinatorKeyRotation.Apply(m, CoordinatorKeyRotation.CreateStatement(second, third), now.AddHours(1));
        m.Validate();
        Assert.Equal(3, m.AcceptedCoordinatorKeys(now.ToUnixTimeMilliseconds()).Count);
        Assert.Equal(2, CoordinatorKeyRotation.EndOverlap(m, now));
        Assert.Equal([Hex(third)], m.AcceptedCoordinatorKeys(now.ToUnixTimeMilliseconds()).Select(k => Convert.ToHexStringLower(k)));

        // A manifest whose chain of handovers was tampered with does not load.
        m.RetiredCoordinatorKeys[0].HandoverSignature = m.RetiredCoordinatorKeys[1].HandoverSignature;
        Assert.Equal("cluster manifest: retired coordinator key 0 did not sign the handover to its successor", Assert.Throws<ConfigException>(m.Validate).Message);
    }

    private static string Hex(NodeIdentity i) => Convert.ToHexStringLower(i.IdentityPublicKey.Span);

    private static ClusterManifest Manifest(NodeIdentity coordinator)
    {
        using NodeIdentity node = NodeIdentity.Generate(1);
        var m = new ClusterManifest { CoordinatorIdentityKey = Hex(coordinator) };
        m.Nodes.Add(new ClusterNode
        {
            Id = 1,
            Address = "127.0.0.1:1",
            IdentityKey = Hex(node),
            AgreementKey = Convert.ToHexStringLower(node.AgreementPublicKey),
            AgreementKeySignature = Convert.ToHexStringLower(node.AgreementKeySignature),
        });
        return m;
    }
}
