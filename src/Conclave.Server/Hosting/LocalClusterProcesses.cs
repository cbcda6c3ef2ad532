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
    /// <summary>How many lines of a node's output are kept to explain a start-up failure.</summary>
    private const int OutputLines = 40;

    private const int StartAttempts = 3;

    private readonly List<Process?> _nodes = [];

    private readonly Dictionary<uint, Queue<string>> _output = [];

    private readonly string _cliDll;

    /// <summary>
    /// Creates the files and starts the nodes. A node that exits during start-up (a port taken by another program
    /// between the check and its bind) starts the whole cluster again on fresh ports, up to three times; a failure
    /// names the nodes that did not answer, their exit codes and the last lines they wrote.
    /// </summary>
    public LocalClusterProcesses(string cliDll, int nodes, int threshold, HsmSettings? hsm = null, TimeSpan? startTimeout = null)
    {
        _cliDll = cliDll;
        for (int attempt = 1; ; attempt++)
        {
            DataDir = Path.Combine(Path.GetTempPath(), "conclave-test-" + Guid.NewGuid().ToString("N")[..12]);
            Layout = new LocalClusterLayout(DataDir);
            int firstPort = LoopbackPorts.Take(nodes);
            Layout.EnsureCreated(nodes, threshold, LoopbackPorts.Take(1), firstPort, hsm);
            Manifest = ClusterManifest.Load(Layout.ManifestPath);
            ServerConfig = ServerConfig.Load(Layout.ServerConfigPath);
            for (uint id = 1; id <= nodes; id++)
            {
                StartNode(id);
            }

            Coordinator = CreateCoordinator(ServerConfig, Manifest, manifestPath: Layout.ManifestPath);
            try
            {
                WaitForAll(startTimeout ?? TimeSpan.FromSeconds(90));
                return;
            }
            catch (NodesNotUpException e) when (e.SomeExited && attempt < StartAttempts)
            {
                Dispose();
                _nodes.Clear();
                lock (_output)
                {
                    _output.Clear();
                }
            }
        }
    }

    public string DataDir { get; private set; }

    public LocalClusterLayout Layout { get; private set; }

    public ClusterManifest Manifest { get; private set; }

    public ServerConfig ServerConfig { get; private set; }

    public Cluster Coordinator { get; private set; }

    /// <summary>
    /// A coordinator like the server's: its client certificate follows its files and its identity the manifest
    /// (docs/ROTATION.md "Rotating TLS certificates", "Rotating the coordinator's identity").
    /// </summary>
    public static Cluster CreateCoordinator(ServerConfig config, ClusterManifest manifest, string? certificate = null, string? key = null, string? ca = null, TimeProvider? clock = null,
        string? manifestPath = null, TimeSpan? connectionLifetime = null)
    {
        var identityFiles = new CoordinatorIdentityFiles(config.Resolve(config.DataDir), config.Resolve(config.KekFile));
        NodeIdentity identity = identityFiles.Load(manifest);
        // The CA file is followed, as the server does (docs/ROTATION.md "Rotating the cluster CA"); kept for the process.
        var caRoots = TrustRoots.FromFile(ca ?? config.Resolve(config.Tls.Ca), clock);
        return new Cluster(manifest, identity,
            ReloadingCertificate.FromFiles(certificate ?? config.Resolve(config.Tls.Certificate), key ?? config.Resolve(config.Tls.Key), new ClusterTrust(caRoots, clock: clock), ClusterTrust.ClientAuthEku, clock),
            caRoots, TimeSpan.FromSeconds(5), clock, manifestPath, identityFiles, connectionLifetime);
    }

    public Process StartNode(uint id) => StartProcess(id, [_cliDll, "node", "run"]);

    /// <summary>
    /// Stops node <paramref name="id"/>, sets its node.json <c>faultInjection</c> (tests only: "bad-share",
    /// "bad-dkls-round1", "bad-dkls-round2", "dkls-equivocate"; null heals it), starts it again and waits until every
    /// node answers.
    /// </summary>
    public void RestartNode(uint id, string? faultInjection)
    {
        KillNode(id);
        string path = Layout.NodeConfigPath(id);
        NodeConfig config = NodeConfig.Load(path);
        config.FaultInjection = faultInjection;
        config.Save(path);
        StartNode(id);
        WaitForAll(TimeSpan.FromSeconds(60));
    }

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
        var lines = new Queue<string>();
        lock (_output)
        {
            _output[id] = lines;
        }

        void Keep(string? line)
        {
            if (line is null)
            {
                return;
            }

            lock (lines)
            {
                lines.Enqueue(line);
                if (lines.Count > OutputLines)
                {
                    lines.Dequeue();
                }
            }
        }

        p.OutputDataReceived += (_, e) => Keep(e.Data);
        p.ErrorDataReceived += (_, e) => Keep(e.Data);
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

    /// <summary>
    /// Waits until every node of the manifest answers an attestation. Fails at once when a node's process has exited,
    /// and at the deadline otherwise, naming the nodes that did not answer (<see cref="NodesNotUpException"/>).
    /// </summary>
    public void WaitForAll(TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        IReadOnlyList<uint> up = [];
        while (true)
        {
            up = Coordinator.AttestAsync(CancellationToken.None).GetAwaiter().GetResult();
            if (up.Count == Manifest.Nodes.Count)
            {
                return;
            }

            var missing = Manifest.Nodes.Select(n => n.Id).Except(up).Order().ToList();
            bool exited = missing.Any(id => NodeProcess(id) is { HasExited: true });
            if (exited || sw.Elapsed >= timeout)
            {
                throw new NodesNotUpException(Describe(missing, sw.Elapsed), exited);
            }

            Thread.Sleep(200);
        }
    }

    /// <summary>What is known of nodes that did not answer: process state and exit code, and their last output lines.</summary>
    private string Describe(IReadOnlyList<uint> missing, TimeSpan waited)
    {
        var text = new System.Text.StringBuilder();
        text.Append(System.Globalization.CultureInfo.InvariantCulture, $"signer nodes {string.Join(", ", missing)} did not answer after {waited.TotalSeconds:F0} s");
        foreach (uint id in missing)
        {
            Process? p = NodeProcess(id);
            string state = p is null ? "not started" : p.HasExited ? $"exited with code {p.ExitCode}" : "running";
            string port = Manifest.Nodes.FirstOrDefault(n => n.Id == id)?.Address ?? "?";
            text.Append(System.Globalization.CultureInfo.InvariantCulture, $"\n  node {id} ({port}): {state}");
            Queue<string>? lines;
            lock (_output)
            {
                _output.TryGetValue(id, out lines);
            }

            if (lines is not null)
            {
                lock (lines)
                {
                    foreach (string line in lines)
                    {
                        text.Append("\n    | ").Append(line);
                    }
                }
            }
        }

        return text.ToString();
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

/// <summary>Signer nodes of a <see cref="LocalClusterProcesses"/> did not come up; the message names them and what they wrote.</summary>
public sealed class NodesNotUpException(string message, bool someExited) : TimeoutException(message)
{
    /// <summary>At least one of the missing nodes' processes had exited (for example: its port was taken).</summary>
    public bool SomeExited { get; } = someExited;
}
