using System.Security.Cryptography.X509Certificates;
using Conclave.Node.Config;
using Conclave.Node.Pki;
using Conclave.Server.Coordinator;
using Conclave.Server.Hosting;
using Conclave.Server.Rotation;
using Conclave.Threshold.Frost;
using Conclave.Threshold.Frost.Ciphersuites;

using static Conclave.Node.Tests.TlsRotationTests;

namespace Conclave.Node.Tests;

/// <summary>A three-node cluster of its own (its CA, certificates and manifest are rewritten by the test).</summary>
public sealed class CaRotationCluster : IDisposable
{
    public LocalClusterProcesses Cluster { get; } = new(RepoPaths.CliDll, 3, 2);

    public void Dispose() => Cluster.Dispose();
}

/// <summary>
/// Rotating the cluster CA while the cluster signs (docs/ROTATION.md "Rotating the cluster CA"), with real node
/// processes: `conclave ca rotate` makes the CA file a bundle of the old and the new CA, which the running nodes and
/// coordinator take up; every certificate is reissued from the new CA; `conclave ca finish` refuses while a node still
/// serves a certificate from the old CA, then drops the old CA, after which a certificate it issued is refused.
/// </summary>
[Collection(FiveNodeCluster.Sequential)]
public sealed class CaRotationTests(CaRotationCluster fixture) : IClassFixture<CaRotationCluster>
{
    private readonly LocalClusterProcesses _c = fixture.Cluster;

    [Fact]
    public async Task RotatingTheClusterCa_KeepsSigning_RefusesToFinishWhileANodeUsesTheOldCa_AndThenRefusesTheOldCa()
    {
        using Cluster cluster = LocalClusterProcesses.CreateCoordinator(_c.ServerConfig, ClusterManifest.Load(_c.Layout.ManifestPath),
            manifestPath: _c.Layout.ManifestPath, connectionLifetime: TimeSpan.FromSeconds(1));
        var coordinator = new FrostCoordinator(cluster) { Runs = new InMemoryRotationLog(), PoolBatch = 4 };
        FrostKeyInfo key = await coordinator.CreateKeyAsync("carot-" + Guid.NewGuid().ToString("N")[..8], FrostCiphersuite.Ed25519Sha512, 2, [1, 2, 3], CancellationToken.None);
        await SignAsync(coordinator, key, "before");

        string caPath = _c.ServerConfig.Resolve(_c.ServerConfig.Tls.Ca);
        string caKeyPath = Path.Combine(Path.GetDirectoryName(caPath)!, "ca.key");
        string nextKeyPath = Path.Combine(Path.GetDirectoryName(caPath)!, "ca.next.key");
        using X509Certificate2 oldCa = PemFiles.LoadCertificate(caPath);
        // A coordinator certificate from the old CA that no manifest revokes: only dropping the old CA refuses it.
        // And a node certificate from the old CA, likewise.
        X509Certificate2 fromOldCa, nodeFromOldCa;
        using (DevelopmentCertificateAuthority old = DevelopmentCertificateAuthority.Load(caPath, caKeyPath))
        {
            fromOldCa = old.Issue("conclave-coordinator", serverAuth: false, clientAuth: true);
            nodeFromOldCa = old.Issue("conclave-node-2", serverAuth: true, clientAuth: true);
        }

        using (fromOldCa)
        using (nodeFromOldCa)
        {
            // Positive controls: both accepted before.
            Assert.NotNull(await PresentedByAsync(_c, 1, fromOldCa, oldCa));
            Assert.True(cluster.Trust.Validate(nodeFromOldCa, ClusterTrust.ServerAuthEku));

            // Bad input: nothing to finish; a CA key that is not there. Exit 2 with one line, nothing changed.
            (int exit, string stdout, string stderr) = Cli("ca", "finish", "--config", _c.Layout.ServerConfigPath);
            Assert.Equal(2, exit);
            Assert.StartsWith("conclave: error: no CA rotation is under way", stderr.Trim(), StringComparison.Ordinal);
            (exit, _, stderr) = Cli("ca", "rotate", "--config", _c.Layout.ServerConfigPath, "--ca-key", Path.Combine(_c.DataDir, "no-such.key"));
            Assert.Equal(2, exit);
            Assert.Single(stderr.Trim().Split('\n'));
            Assert.Single(TrustRoots.LoadBundle(caPath));

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
                // 1. Both CAs trusted.
                (exit, stdout, stderr) = Cli("ca", "rotate", "--config", _c.Layout.ServerConfigPath);
                Assert.True(exit == 0, stderr);
                Assert.StartsWith("new cluster CA ", stdout, StringComparison.Ordinal);
                IReadOnlyList<X509Certificate2> bundle = TrustRoots.LoadBundle(caPath);
                Assert.Equal(2, bundle.Count);
                Assert.Equal(oldCa.RawData, bundle[0].RawData);
                using X509Certificate2 newCa = bundle[1];
                Assert.True(File.Exists(nextKeyPath));
                (exit, _, stderr) = Cli("ca", "rotate", "--config", _c.Layout.ServerConfigPath);
                Assert.Equal(2, exit);
                Assert.Contains("a CA rotation is already under way", stderr, StringComparison.Ordinal);

                // 2. Nodes 1 and 2 and the coordinator get certificates from the new CA; node 3 not yet. Their processes
                // take them up only once they trust the new CA (they look at the CA file at most once a second).
                foreach (uint id in (uint[])[1, 2])
                {
                    (exit, _, stderr) = Cli("node", "rotate-tls", "--config", _c.Layout.NodeConfigPath(id), "--ca-key", nextKeyPath, "--overlap-seconds", "600");
                    Assert.True(exit == 0, stderr);
                }

                (exit, _, stderr) = Cli("coordinator", "rotate-tls", "--config", _c.Layout.ServerConfigPath, "--ca-key", nextKeyPath, "--overlap-seconds", "600");
                Assert.True(exit == 0, stderr);
                await UntilAsync(() => Task.FromResult(IssuedBy(cluster.ClientCertificate.Current, newCa)), "the coordinator did not take up its certificate from the new CA");

                // 3. Finishing now would cut node 3 off: refused, naming it, nothing changed.
                (exit, _, stderr) = Cli("ca", "finish", "--config", _c.Layout.ServerConfigPath);
                Assert.Equal(2, exit);
                Assert.Contains("node 3 (", stderr, StringComparison.Ordinal);
                Assert.Contains("not from the new CA", stderr, StringComparison.Ordinal);
                Assert.Single(stderr.Trim().Split('\n'));
                Assert.Equal(2, TrustRoots.LoadBundle(caPath).Count);

                // 4. Node 3 too; then finishing succeeds (once every node serves its new certificate).
                (exit, _, stderr) = Cli("node", "rotate-tls", "--config", _c.Layout.NodeConfigPath(3), "--ca-key", nextKeyPath, "--overlap-seconds", "600");
                Assert.True(exit == 0, stderr);
                string last = "";
                await UntilAsync(() =>
                {
                    (int e, string o, string err) = Cli("ca", "finish", "--config", _c.Layout.ServerConfigPath);
                    last = err;
                    return Task.FromResult(e == 0 && o.StartsWith("cluster CA ", StringComparison.Ordinal));
                }, "ca finish kept refusing: " + last);
                X509Certificate2 only = Assert.Single(TrustRoots.LoadBundle(caPath));
                Assert.Equal(newCa.RawData, only.RawData);
                Assert.False(File.Exists(nextKeyPath));
                using (DevelopmentCertificateAuthority current = DevelopmentCertificateAuthority.Load(caPath, caKeyPath))
                {
                    Assert.Equal(newCa.RawData, current.Certificate.RawData); // the new CA's key is the CA key now
                }

                // 5. The old CA is refused everywhere: node 1 refuses a client certificate it issued, the coordinator a
                // node certificate it issued.
                await UntilAsync(async () => await PresentedByAsync(_c, 1, fromOldCa, newCa) is null, "node 1 still accepts a certificate from the old CA");
                await UntilAsync(() => Task.FromResult(!cluster.Trust.Validate(nodeFromOldCa, ClusterTrust.ServerAuthEku)), "the coordinator still accepts a node certificate from the old CA");

                int afterFinish = Volatile.Read(ref signed);
                await UntilAsync(() => Task.FromResult(Volatile.Read(ref signed) >= afterFinish + 5), "no signature after the old CA was dropped");
            }
            finally
            {
                await stop.CancelAsync();
                await signer;
            }

            Assert.True(failures.Count == 0, string.Join("; ", failures));
            await SignAsync(coordinator, key, "after");
        }
    }

    private static bool IssuedBy(X509Certificate2 certificate, X509Certificate2 ca) =>
        new ClusterTrust(ca).Validate(certificate, ClusterTrust.ClientAuthEku);
}
