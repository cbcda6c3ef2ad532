using System.Diagnostics;
using System.Security.Cryptography.X509Certificates;
using System.Net.Sockets;
using Conclave.Node.Config;
using Conclave.Node.Protocol;
using Conclave.Server.Config;
using Conclave.Server.Coordinator;
using Conclave.Crypto.Memory;
using Conclave.Node.Hosting;
using Conclave.Node.Pki;

namespace Conclave.Server.Hosting;

/// <summary>
/// A real local cluster for tests and benchmarks: the files `conclave up` makes (in a fresh temporary folder), n
/// signer-node processes started from conclave.dll on free loopback ports, and a coordinator (<see cref="Cluster"/>)
/// in the calling process. Disposing stops the nodes and deletes the folder.
/// </summary>
public sealed class LocalClusterProcesses : IDisposable
{
    private readonly List<Process?> _nodes = [];

    private readonly string _cliDll;

    public LocalClusterProcesses(string cliDll, int nodes, int threshold, HsmSettings? hsm = null)
    {
        _cliDll = cliDll;
        DataDir = Path.Combine(Path.GetTempPath(), "conclave-test-" + Guid.NewGuid().ToString("N")[..12]);
        Layout = new LocalClusterLayout(DataDir);
        int firstPort = FreePortRange(nodes);
        Layout.EnsureCreated(nodes, threshold, FreePortRange(1), firstPort, hsm);
        Manifest = ClusterManifest.Load(Layout.ManifestPath);
        ServerConfig = ServerConfig.Load(Layout.ServerConfigPath);
        for (uint id = 1; id <= nodes; id++)
        {
            StartNode(id);
        }

        Coordinator = CreateCoordinator(ServerConfig, Manifest, manifestPath: Layout.ManifestPath);
        WaitForAll(TimeSpan.FromSeconds(60));
    }

    public string DataDir { get; }

    public LocalClusterLayout Layout { get; }

    public ClusterManifest Manifest { get; }

    public ServerConfig ServerConfig { get; }

    public Cluster Coordinator { get; }

    /// <summary>
    /// A coordinator like the server's: its client certificate follows its files and its identity the manifest
    /// (docs/ROTATION.md "Rotating TLS certificates", "Rotating the coordinator's identity").
    /// </summary>
    public static Cluster CreateCoordinator(ServerConfig config, ClusterManifest manifest, string? certificate = null, string? key = null, string? ca = null, TimeProvider? clock = null,
        string? manifestPath = null, TimeSpan? connectionLifetime = null)
    {
        var identityFiles = new CoordinatorIdentityFiles(config.Resolve(config.DataDir), config.Resolve(config.KekFile));
        NodeIdentity identity = identityFiles.Load(manifest);
        X509Certificate2 caCertificate = PemFiles.LoadCertificate(ca ?? config.Resolve(config.Tls.Ca));
        return new Cluster(manifest, identity,
            ReloadingCertificate.FromFiles(certificate ?? config.Resolve(config.Tls.Certificate), key ?? config.Resolve(config.Tls.Key), new ClusterTrust(caCertificate, clock: clock), ClusterTrust.ClientAuthEku, clock),
            caCertificate, TimeSpan.FromSeconds(5), clock, manifestPath, identityFiles, connectionLifetime);
    }

    public Process StartNode(uint id) => StartProcess(id, [_cliDll, "node", "run"]);

    /// <summary>
    /// Starts node <paramref name="id"/> from another host program (tests: a node host with fault hooks), given as
    /// <paramref name="dll"/> and its own arguments; the config and parent-pid arguments are added as for conclave.dll.
    /// </summary>
    public Process StartNodeWith(uint id, string dll, IEnumerable<string> arguments) => StartProcess(id, [dll, .. arguments]);

    private Process StartProcess(uint id, IEnumerable<string> program)
    {
        var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in program.Concat(["--config", Layout.NodeConfigPath(id), "--parent-pid", Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            psi.ArgumentList.Add(a);
        }

        Process p = Process.Start(psi)!;
        p.OutputDataReceived += (_, _) => { };
        p.ErrorDataReceived += (_, _) => { };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        while (_nodes.Count < id)
        {
            _nodes.Add(null);
        }

        _nodes[(int)id - 1] = p;
        return p;
    }

    /// <summary>The process of node <paramref name="id"/> (null before it was started).</summary>
    public Process? NodeProcess(uint id) => id >= 1 && id <= _nodes.Count ? _nodes[(int)id - 1] : null;

    public void KillNode(uint id)
    {
        Process? p = _nodes[(int)id - 1];
        if (p is { HasExited: false })
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
        }
    }

    public void WaitForAll(TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < timeout)
        {
            if (Coordinator.AttestAsync(CancellationToken.None).GetAwaiter().GetResult().Count == Manifest.Nodes.Count)
            {
                return;
            }

            Thread.Sleep(200);
        }

        throw new TimeoutException("signer nodes did not come up");
    }

    private static int FreePortRange(int count)
    {
        for (int attempt = 0; attempt < 50; attempt++)
        {
            int start = Random.Shared.Next(20000, 60000);
            bool free = true;
            for (int i = 0; i < count && free; i++)
            {
                try
                {
                    using var l = new TcpListener(System.Net.IPAddress.Loopback, start + i);
                    l.Start();
                }
                catch (SocketException)
                {
                    free = false;
                }
            }

            if (free)
            {
                return start;
            }
        }

        throw new InvalidOperationException("no free port range");
    }

    public void Dispose()
    {
        Coordinator.Dispose();
        foreach (Process? p in _nodes)
        {
            if (p is { HasExited: false })
            {
                p.Kill(entireProcessTree: true);
                p.WaitForExit();
            }

            p?.Dispose();
        }

        try
        {
            Directory.Delete(DataDir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
