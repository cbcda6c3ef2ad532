using System.Diagnostics;
using System.Security.Cryptography.X509Certificates;
using Conclave.Node.Config;
using Conclave.Node.Pki;
using Conclave.Server.Coordinator;
using Conclave.Server.Hosting;
using Conclave.Server.Rotation;
using Conclave.Threshold.Frost;
using Conclave.Threshold.Frost.Ciphersuites;

namespace Conclave.Node.Tests;

/// <summary>A three-node cluster of its own (its certificates and manifest are rewritten by the rotation test).</summary>
public sealed class TlsRotationCluster : IDisposable
{
    public LocalClusterProcesses Cluster { get; } = new(RepoPaths.CliDll, 3, 2);

    public void Dispose() => Cluster.Dispose();
}

/// <summary>
/// Replacing a node's TLS certificate and the coordinator's client certificate while the cluster signs
/// (docs/ROTATION.md "Rotating TLS certificates"), with real node processes: `conclave node rotate-tls` and
/// `conclave coordinator rotate-tls` write new certificates from the cluster CA, the running node and coordinator take
/// them up without a restart, and the manifest refuses the old ones after the overlap.
/// </summary>
[Collection(FiveNodeCluster.Sequential)]
public sealed class TlsRotationTests(TlsRotationCluster fixture) : IClassFixture<TlsRotationCluster>
{
    private readonly LocalClusterProcesses _c = fixture.Cluster;

    [Fact]
    public async Task ReplacingTheNodesAndTheCoordinatorsCertificates_KeepsSigning_PresentsTheNewOnes_AndRefusesTheOldAfterTheOverlap()
    {
        // A coordinator like the server's (certificate from its files, manifest watched) whose connections take new
        // calls for a second only, so new handshakes happen all through the test.
        using Cluster cluster = LocalClusterProcesses.CreateCoordinator(_c.ServerConfig, ClusterManifest.Load(_c.Layout.ManifestPath),
            manifestPath: _c.Layout.ManifestPath, connectionLifetime: TimeSpan.FromSeconds(1));
        var coordinator = new FrostCoordinator(cluster) { Runs = new InMemoryRotationLog(), PoolBatch = 4 };
        FrostKeyInfo key = await coordinator.CreateKeyAsync("tlsrot-" + Guid.NewGuid().ToString("N")[..8], FrostCiphersuite.Ed25519Sha512, 2, [1, 2, 3], CancellationToken.None);
        await SignAsync(coordinator, key, "before");

        NodeConfig node2 = NodeConfig.Load(_c.Layout.NodeConfigPath(2));
        var server = _c.ServerConfig;
        using X509Certificate2 oldNodeCert = PemFiles.LoadWithKey(node2.Resolve(node2.Tls.Certificate), node2.Resolve(node2.Tls.Key));
        using X509Certificate2 oldCoordinatorCert = PemFiles.LoadWithKey(server.Resolve(server.Tls.Certificate), server.Resolve(server.Tls.Key));
        using X509Certificate2 ca = PemFiles.LoadCertificate(server.Resolve(server.Tls.Ca));
        string oldNodeSha = Sha(oldNodeCert);
        string oldCoordinatorSha = Sha(oldCoordinatorCert);
        Assert.Equal(oldNodeSha, await PresentedByAsync(_c, 2, oldCoordinatorCert, ca));
        Assert.Equal(oldCoordinatorSha, cluster.ClientCertificate.Sha256Hex);

        // Bad input: no CA key where it is looked for, a negative overlap: exit 2 with one line, nothing changed.
        (int exit, string stdout, string stderr) = Cli("node", "rotate-tls", "--config", _c.Layout.NodeConfigPath(2), "--ca-key", Path.Combine(_c.DataDir, "no-such-ca.key"));
        Assert.Equal(2, exit);
        Assert.StartsWith("conclave: error: the cluster CA's private key is not at ", stderr.Trim(), StringComparison.Ordinal);
        Assert.Single(stderr.Trim().Split('\n'));
        (exit, _, stderr) = Cli("coordinator", "rotate-tls", "--config", _c.Layout.ServerConfigPath, "--overlap-seconds", "-1");
        Assert.Equal((2, "conclave: error: --overlap-seconds must be between 0 and 2592000 (30 days)"), (exit, stderr.Trim()));
        Assert.Equal(oldNodeSha, Sha(PemFiles.LoadCertificate(node2.Resolve(node2.Tls.Certificate))));

        // Signing runs all through the change.
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
                catch (Exception e) when (e is not OperationCanceledException || !stop.IsCancellationRequested)
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
            // Both certificates replaced on disk; the old ones refused 5 s later.
            (exit, stdout, stderr) = Cli("node", "rotate-tls", "--config", _c.Layout.NodeConfigPath(2), "--overlap-seconds", "5");
            Assert.True(exit == 0, stderr);
            Assert.StartsWith($"node 2: TLS certificate ", stdout, StringComparison.Ordinal);
            Assert.Contains($"(conclave-node-2) replaces {oldNodeSha}", stdout, StringComparison.Ordinal);
            (exit, stdout, stderr) = Cli("coordinator", "rotate-tls", "--config", _c.Layout.ServerConfigPath, "--overlap-seconds", "5");
            Assert.True(exit == 0, stderr);
            Assert.Contains($"(conclave-coordinator) replaces {oldCoordinatorSha}", stdout, StringComparison.Ordinal);
            string newNodeSha = Sha(PemFiles.LoadCertificate(node2.Resolve(node2.Tls.Certificate)));
            using X509Certificate2 newCoordinatorCert = PemFiles.LoadWithKey(server.Resolve(server.Tls.Certificate), server.Resolve(server.Tls.Key));
            string newCoordinatorSha = Sha(newCoordinatorCert);
            Assert.NotEqual(oldNodeSha, newNodeSha);
            Assert.NotEqual(oldCoordinatorSha, newCoordinatorSha);

            // The running coordinator takes its new certificate up, and its handshakes with node 2 see node 2's new one.
            await UntilAsync(() => Task.FromResult(cluster.ClientCertificate.Sha256Hex == newCoordinatorSha), "the coordinator still uses its old certificate");
            await UntilAsync(async () =>
            {
                await cluster.Node(2).GetInfoAsync(TimeSpan.FromSeconds(10), CancellationToken.None);
                return cluster.Node(2).ServerCertificateSha256 == newNodeSha;
            }, "the coordinator's connections to node 2 still see its old certificate");

            // A fresh TLS handshake with node 2 presents the new certificate.
            Assert.Equal(newNodeSha, await PresentedByAsync(_c, 2, newCoordinatorCert, ca));

            // After the overlap: a node refuses a handshake with the coordinator's old certificate, and the coordinator
            // refuses node 2's old certificate, although both chain to the cluster CA.
            await UntilAsync(async () => await PresentedByAsync(_c, 1, oldCoordinatorCert, ca) is null, "node 1 still accepts the coordinator's old certificate");
            await UntilAsync(() => Task.FromResult(!cluster.Trust.Validate(oldNodeCert, ClusterTrust.ServerAuthEku)), "the coordinator still accepts node 2's old certificate");
            Assert.True(cluster.Trust.Validate(PemFiles.LoadCertificate(node2.Resolve(node2.Tls.Certificate)), ClusterTrust.ServerAuthEku));
            Assert.Equal(newNodeSha, await PresentedByAsync(_c, 2, newCoordinatorCert, ca));

            // Signing went on through all of it, and goes on after the old certificates are refused.
            int afterOverlap = Volatile.Read(ref signed);
            await UntilAsync(() => Task.FromResult(Volatile.Read(ref signed) >= afterOverlap + 5), "no signature after the old certificates were refused");
        }
        finally
        {
            await stop.CancelAsync();
            await signer;
        }

        Assert.True(failures.Count == 0, string.Join("; ", failures));
        Assert.True(signed >= 5);
        await SignAsync(coordinator, key, "after");
    }

    private static string Sha(X509Certificate2 c) => Convert.ToHexStringLower(ClusterTrust.Sha256Of(c));

    /// <summary>
    /// A new connection (its own TLS handshake) to node <paramref name="id"/> with <paramref name="clientCertificate"/>:
    /// the SHA-256 of the certificate the node presented, or null when the handshake or the call was refused.
    /// </summary>
    internal static async Task<string?> PresentedByAsync(LocalClusterProcesses c, uint id, X509Certificate2 clientCertificate, X509Certificate2 ca)
    {
        using var client = new NodeClient(c.Manifest.Node(id), clientCertificate, new ClusterTrust(ca));
        try
        {
            await client.GetInfoAsync(TimeSpan.FromSeconds(10), CancellationToken.None);
            return client.ServerCertificateSha256;
        }
        catch (Grpc.Core.RpcException)
        {
            return null;
        }
    }

    internal static async Task UntilAsync(Func<Task<bool>> condition, string failure)
    {
        var sw = Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(90), failure);
            await Task.Delay(200);
        }
    }

    internal static async Task SignAsync(FrostCoordinator coordinator, FrostKeyInfo key, string label)
    {
        byte[] msg = TestSeed.Bytes(32, label);
        byte[] signature = await coordinator.SignAsync(key.KeyId, msg, CancellationToken.None);
        Assert.True(key.Suite.Verify(key.PublicKeyPackage.VerificationKey, msg, signature));
    }

    internal static (int Exit, string Out, string Err) Cli(params string[] args)
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
