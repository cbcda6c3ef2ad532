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

/// <summary>A three-node cluster of its own (its manifest is rewritten by the rotation test).</summary>
public sealed class KeyRotationCluster : IDisposable
{
    public LocalClusterProcesses Cluster { get; } = new(RepoPaths.CliDll, 3, 2);

    public void Dispose() => Cluster.Dispose();
}

/// <summary>
/// Rotating a node's identity and agreement keys without stopping signing (docs/ROTATION.md "Rotating a node's
/// identity"), with real node processes: `conclave node rotate-keys` on the node, `conclave node apply-rotation` on the
/// manifest every host reads, the node restarted on its new identity while the others sign, then `end-overlap`.
/// </summary>
[Collection(FiveNodeCluster.Sequential)]
public sealed class NodeKeyRotationTests(KeyRotationCluster fixture) : IClassFixture<KeyRotationCluster>
{
    private readonly LocalClusterProcesses _c = fixture.Cluster;

    [Fact]
    public async Task RotatingANodesIdentity_KeepsSigning_RefusesTheOldKeyAfterTheOverlap_AndOlderTranscriptsStillVerify()
    {
        var runs = new InMemoryRotationLog();
        var coordinator = new FrostCoordinator(_c.Coordinator) { Runs = runs, PoolBatch = 4 };
        FrostKeyInfo key = await coordinator.CreateKeyAsync("idrot-" + Guid.NewGuid().ToString("N")[..8], FrostCiphersuite.Ed25519Sha512, 2, [1, 2, 3], CancellationToken.None);
        await SignAsync(coordinator, key, "before");
        string nodeConfig = _c.Layout.NodeConfigPath(2);
        NodeConfig config = NodeConfig.Load(nodeConfig);
        string dataDir = config.Resolve(config.DataDir);
        using NodeIdentity old = Unseal(config, "identity.sealed");
        string dir = Directory.CreateTempSubdirectory("conclave-idrot-").FullName;
        try
        {
            // 1. On node 2's host: its next identity, and the statement signed by its current identity key.
            (int exit, string stdout, string stderr) = Cli("node", "rotate-keys", "--config", nodeConfig);
            Assert.True(exit == 0, stderr);
            NodeKeyRotationStatement statement = NodeKeyRotationStatement.FromJson(stdout);
            Assert.Equal(Convert.ToHexStringLower(old.IdentityPublicKey.Span), statement.IdentityKey);
            Assert.True(File.Exists(Path.Combine(dataDir, NodeHost.NextIdentityFile)));
            string statementFile = Path.Combine(dir, "statement.json");
            await File.WriteAllTextAsync(statementFile, stdout);

            // Bad inputs: a statement whose handover signature is not the old key's, an unknown node: exit 2, one line.
            NodeKeyRotationStatement forged = NodeKeyRotationStatement.FromJson(stdout);
            forged.HandoverSignature = new string('0', 128);
            string forgedFile = Path.Combine(dir, "forged.json");
            await File.WriteAllTextAsync(forgedFile, forged.ToJson());
            (exit, _, stderr) = Cli("node", "apply-rotation", forgedFile, "--manifest", _c.Layout.ManifestPath);
            Assert.Equal((2, "conclave: error: node 2: the handover is not signed by the current identity key"), (exit, stderr.Trim()));
            (exit, _, stderr) = Cli("node", "end-overlap", "--manifest", _c.Layout.ManifestPath, "--id", "9");
            Assert.Equal(2, exit);
            Assert.Contains("node 9 is not in the cluster manifest", stderr, StringComparison.Ordinal);

            // 2. The manifest every host reads names the new keys; the old identity key stays accepted for an hour.
            (exit, stdout, stderr) = Cli("node", "apply-rotation", statementFile, "--manifest", _c.Layout.ManifestPath, "--overlap-seconds", "3600");
            Assert.True(exit == 0, stderr);
            Assert.StartsWith("node 2: identity key " + statement.NewIdentityKey, stdout, StringComparison.Ordinal);
            (exit, _, stderr) = Cli("node", "apply-rotation", statementFile, "--manifest", _c.Layout.ManifestPath);
            Assert.Equal((2, "conclave: error: node 2: the manifest already names the new identity key"), (exit, stderr.Trim()));

            // During the overlap a peer still accepts a message signed by node 2's old identity key.
            await RelayFromAsync(old, 1);

            // 3. Node 2 restarts on its new identity while signing goes on.
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
                    catch (Exception e) when (e is QuorumUnavailableException or NodeCallException or CulpritException)
                    {
                        lock (failures)
                        {
                            failures.Add(e.Message);
                        }
                    }
                }
            });
            _c.KillNode(2);
            _c.StartNode(2);
            _c.WaitForAll(TimeSpan.FromSeconds(120));
            await SignAsync(coordinator, key, "after restart");
            await stop.CancelAsync();
            await signer;
            Assert.True(failures.Count == 0, string.Join("; ", failures));
            Assert.True(signed > 0);

            NodeInfo info = await _c.Coordinator.Node(2).GetInfoAsync(TimeSpan.FromSeconds(30), CancellationToken.None);
            Assert.Equal(statement.NewIdentityKey, Convert.ToHexStringLower(info.IdentityPublicKey.Span));
            Assert.Equal(statement.NewAgreementKey, Convert.ToHexStringLower(info.AgreementPublicKey.Span));
            Assert.False(File.Exists(Path.Combine(dataDir, NodeHost.NextIdentityFile)));

            // Node 2's own audit log handed its checkpoint key over from the old identity key to the new one, so it
            // verifies pinned to either (the CLI's --node-key takes the old key, as an auditor who pinned it before would).
            await using (Conclave.Storage.IConclaveStore nodeStore = await Conclave.Storage.ConclaveStore.OpenSqliteAsync(dataDir, new Conclave.Storage.StoreOptions { ReadOnly = true }))
            {
                IReadOnlyList<Conclave.Storage.Audit.AuditEntry> entries = await nodeStore.Audit.ReadAsync(1, 100_000);
                Conclave.Storage.Audit.AuditEntry handover = Assert.Single(entries, e => e.Action == Conclave.Storage.Audit.AuditKeyHandover.Action);
                Assert.True(Conclave.Storage.Audit.AuditKeyHandover.TryParse(handover.Result, out Conclave.Storage.Audit.AuditKeyHandover? h));
                Assert.Equal(Convert.ToHexStringLower(old.IdentityPublicKey.Span), Convert.ToHexStringLower(h!.OldPublicKey));
                Assert.Equal(statement.NewIdentityKey, Convert.ToHexStringLower(h.NewPublicKey));
                foreach (string pin in (string[])[Convert.ToHexStringLower(old.IdentityPublicKey.Span), statement.NewIdentityKey])
                {
                    Conclave.Storage.Audit.AuditVerificationResult r = await nodeStore.Audit.VerifyAsync(new Conclave.Storage.Audit.AuditVerifyOptions { TrustedCheckpointKey = Convert.FromHexString(pin) });
                    Assert.True(r.Ok, r.ToString());
                }
            }

            (exit, stdout, stderr) = Cli("audit", "verify", "--data", dataDir, "--node-key", Convert.ToHexStringLower(old.IdentityPublicKey.Span));
            Assert.True(exit == 0, stdout + stderr);

            // 4. The whole cluster runs with the new keys: a refresh (node 2's messages relayed to its peers, signed by
            // its new key, shares sealed to its new run keys) and a signature with node 2 in the quorum.
            key = await coordinator.RefreshAsync(key.KeyId, CancellationToken.None);
            Assert.Equal(2, key.Version);
            _c.KillNode(1);
            try
            {
                await SignAsync(coordinator, key, "node 2 and 3");
            }
            finally
            {
                _c.StartNode(1);
                _c.WaitForAll(TimeSpan.FromSeconds(120));
            }

            // 5. End of the overlap: the old identity key is refused by the peers and by the coordinator.
            (exit, stdout, stderr) = Cli("node", "end-overlap", "--manifest", _c.Layout.ManifestPath, "--id", "2");
            Assert.True(exit == 0, stderr);
            Assert.StartsWith("node 2: 1 retired identity key(s) no longer accepted", stdout, StringComparison.Ordinal);
            Assert.True(_c.Coordinator.Watch!.Refresh(force: true));
            Assert.DoesNotContain(_c.Coordinator.Manifest.AcceptedIdentityKeys(2, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()),
                k => k.AsSpan().SequenceEqual(old.IdentityPublicKey.Span));
            NodeCallException refused = await RefusedAsync(old, 3);
            Assert.Equal(Grpc.Core.StatusCode.Unauthenticated, refused.Status);
            Assert.Contains("from 2 has no valid signature", refused.Message, StringComparison.Ordinal);
            await SignAsync(coordinator, key, "after the overlap");

            // 6. The key generation's transcript, signed by node 2's old key, still verifies against the new manifest
            // (the retired key, for messages issued before its overlap ended); so does the refresh's, signed by the new.
            ClusterManifest manifest = ClusterManifest.Load(_c.Layout.ManifestPath);
            RotationTranscript generation = RotationTranscript.FromJson((await runs.GetTranscriptAsync(key.KeyId, 1))!);
            RotationTranscript refresh = RotationTranscript.FromJson((await runs.GetTranscriptAsync(key.KeyId, 2))!);
            Assert.Equal(new TranscriptCheck(true, "ok"), TranscriptVerifier.Verify(generation, manifest));
            Assert.Equal(new TranscriptCheck(true, "ok"), TranscriptVerifier.Verify(refresh, manifest));
            string transcriptFile = Path.Combine(dir, "generation.json");
            await File.WriteAllBytesAsync(transcriptFile, generation.ToJsonBytes());
            (exit, _, stderr) = Cli("rotation", "verify", transcriptFile, "--manifest", _c.Layout.ManifestPath);
            Assert.True(exit == 0, stderr);

            // Without the retired key in the manifest, node 2's old signatures no longer verify (it is the history that
            // keeps them valid, not a weaker check).
            foreach (ClusterNode n in manifest.Nodes)
            {
                n.RetiredIdentityKeys.Clear();
            }

            Assert.Equal("node 2's broadcast is not signed by its identity key", TranscriptVerifier.Verify(generation, manifest).Reason);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    private static async Task SignAsync(FrostCoordinator coordinator, FrostKeyInfo key, string label)
    {
        byte[] msg = TestSeed.Bytes(32, label);
        byte[] signature = await coordinator.SignAsync(key.KeyId, msg, CancellationToken.None);
        Assert.True(key.Suite.Verify(key.PublicKeyPackage.VerificationKey, msg, signature));
    }

    private static NodeIdentity Unseal(NodeConfig config, string file)
    {
        using SecretBuffer kek = KekFile.Read(config.Resolve(config.KekFile));
        return NodeIdentity.Unseal(config.NodeId, kek.ReadOnlySpan, File.ReadAllBytes(Path.Combine(config.Resolve(config.DataDir), file)));
    }

    /// <summary>An attestation request to <paramref name="to"/> relaying one message signed by <paramref name="sender"/>: accepted or refused before any handler runs.</summary>
    private Task<IReadOnlyList<Envelope>> RelayFromAsync(NodeIdentity sender, uint to)
    {
        byte[] session = Cluster.NewSessionId();
        Envelope relayed = EnvelopeSigner.Sign(new Envelope
        {
            SessionId = ByteString.CopyFrom(session),
            Kind = "test.relayed",
            Round = 1,
            Sender = sender.NodeId,
            Payload = ByteString.CopyFrom([1]),
            IssuedAtUnixMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
        }, sender);
        return _c.Coordinator.Node(to).StepAsync(_c.Coordinator.Request(session, AttestHandler.RequestKind, 0, [to], TestSeed.Bytes(32, "challenge")), [relayed], TimeSpan.FromSeconds(30), CancellationToken.None);
    }

    /// <summary>Relays an old-key message until the node refuses it (it re-reads the manifest file at most once a second).</summary>
    private async Task<NodeCallException> RefusedAsync(NodeIdentity sender, uint to)
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                await RelayFromAsync(sender, to);
            }
            catch (NodeCallException e)
            {
                return e;
            }

            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(60), $"node {to} still accepts the old identity key");
            await Task.Delay(250);
        }
    }

    private static (int Exit, string Out, string Err) Cli(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(RepoPaths.CliDll);
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using Process p = Process.Start(psi)!;
        Task<string> stdout = p.StandardOutput.ReadToEndAsync();
        Task<string> stderr = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(120_000), "the CLI did not exit");
        return (p.ExitCode, stdout.Result, stderr.Result);
    }
}
