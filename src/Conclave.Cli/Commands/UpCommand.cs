using System.CommandLine;
using System.Diagnostics;
using System.Runtime.InteropServices;
using Conclave.Node.Config;
using Conclave.Server.Config;
using Conclave.Server.Coordinator;
using Conclave.Server.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Conclave.Cli.Commands;

/// <summary>
/// <c>conclave up</c>: the embedded default. Starts N signer-node processes and the server on loopback,
/// creating a development CA, certificates, keys and configs in the data folder on first start, and stops
/// everything cleanly on Ctrl-C or SIGTERM.
/// </summary>
internal static partial class UpCommand
{
    public static Command Create()
    {
        var nodes = new Option<int>("--nodes") { Description = "Number of signer nodes.", DefaultValueFactory = _ => 3 };
        var threshold = new Option<int>("--threshold") { Description = "Signing threshold t (t of n nodes must cooperate).", DefaultValueFactory = _ => 2 };
        var data = new Option<string>("--data") { Description = "Data folder (created on first start).", DefaultValueFactory = _ => ".data" };
        var port = new Option<int>("--port") { Description = "API port; nodes listen on the ports after 7100.", DefaultValueFactory = _ => 8080 };
        var nodePort = new Option<int>("--node-port") { Description = "First node port.", DefaultValueFactory = _ => 7101 };
        var verbose = new Option<bool>("--verbose") { Description = "Log informational messages." };
        var tls = new Option<bool>("--tls") { Description = "Serve the API over HTTPS with a certificate from the development CA (DIR/pki/ca.crt; the CLI trusts it)." };
        var command = new Command("up", "Start a local cluster: N signer nodes and the server on loopback (SQLite stores, development CA).");
        var hsm = new HsmCliOptions();
        hsm.AddTo(command);
        command.Options.Add(nodes);
        command.Options.Add(threshold);
        command.Options.Add(data);
        command.Options.Add(port);
        command.Options.Add(nodePort);
        command.Options.Add(verbose);
        command.Options.Add(tls);
        command.SetAction((parse, ct) => RunAsync(parse.GetValue(nodes), parse.GetValue(threshold), parse.GetValue(data)!, parse.GetValue(port),
            parse.GetValue(nodePort), parse.GetValue(verbose), hsm.IsPresent(parse) ? ToSettings(hsm.Build(parse)) : null,
            parse.GetResult(port) is { Implicit: false }, parse.GetResult(nodePort) is { Implicit: false }, parse.GetValue(tls), ct));
        return command;
    }

    private static Conclave.Node.Config.HsmSettings ToSettings(Conclave.Hsm.HsmOptions o)
    {
        // Check the token now (module, token, PIN) so a mistake is one clear line before anything starts.
        using (Conclave.Hsm.HsmToken.Open(o))
        {
        }

        return new Conclave.Node.Config.HsmSettings
        {
            ModulePath = o.ModulePath,
            TokenLabel = o.TokenLabel,
            PinFile = o.PinFile is null ? null : Path.GetFullPath(o.PinFile),
            PinEnvironmentVariable = o.PinEnvironmentVariable,
            SessionPoolSize = o.SessionPoolSize,
        };
    }

    private static async Task<int> RunAsync(int nodes, int threshold, string data, int port, int nodePort, bool verbose,
        Conclave.Node.Config.HsmSettings? hsm, bool portGiven, bool nodePortGiven, bool tls, CancellationToken ct)
    {
        if (port is < 1 or > 65535 || nodePort < 1 || nodePort + nodes - 1 > 65535)
        {
            throw new CliUsageException("--port and --node-port must leave room for valid TCP ports");
        }

        var layout = new LocalClusterLayout(data);
        bool created = !layout.Exists;
        layout.EnsureCreated(nodes, threshold, port, nodePort, hsm);
        Console.WriteLine(created ? $"created a {threshold}-of-{nodes} development cluster in {layout.DataDir}" : $"using the cluster in {layout.DataDir}");

        string? caFile = tls ? layout.EnsureApiTls() : null;
        layout.EnsureDevelopmentPolicyApprover();
        ServerConfig serverConfig = ServerConfig.Load(layout.ServerConfigPath);
        string scheme = serverConfig.ApiTls is null ? "http" : "https";
        caFile ??= serverConfig.ApiTls is null ? null : Path.Combine(layout.PkiDir, "ca.crt");
        if (!created)
        {
            ApplyPortsToExisting(layout, serverConfig, port, portGiven, nodePort, nodePortGiven);
        }

        // The API port is checked before any node starts: a busy port is one line naming it, not a stack trace.
        ListenEndpoint listen = ListenEndpoint.Parse(serverConfig.Listen);
        RequireFreePort(listen, "--port");
        var children = new List<Process>();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        using PosixSignalRegistration sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c =>
        {
            c.Cancel = true;
            stop.Cancel();
        });
        using PosixSignalRegistration sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c =>
        {
            c.Cancel = true;
            stop.Cancel();
        });

        try
        {
            Conclave.Storage.OwnerOnly.CreateDirectory(layout.LogDir);
            for (uint id = 1; id <= nodes; id++)
            {
                children.Add(StartNode(layout, id, verbose));
            }

            WebApplication server = await ServerHost.BuildAsync(serverConfig, verbose ? LogLevel.Information : LogLevel.Warning, stop.Token).ConfigureAwait(false);
            await StartServerAsync(server, serverConfig, stop.Token).ConfigureAwait(false);
            Cluster cluster = server.Services.GetRequiredService<Cluster>();
            ServerPaths paths = server.Services.GetRequiredService<ServerPaths>();

            // Wait for every node to prove its identity over mutual TLS.
            var deadline = Stopwatch.StartNew();
            IReadOnlyList<uint> up = [];
            while (deadline.Elapsed < TimeSpan.FromSeconds(60) && !stop.IsCancellationRequested)
            {
                up = await cluster.AttestAsync(stop.Token).ConfigureAwait(false);
                if (up.Count == nodes)
                {
                    break;
                }

                foreach (Process p in children.Where(p => p.HasExited))
                {
                    throw new CliUsageException($"a signer node exited at start (exit {p.ExitCode}); see {layout.LogDir}");
                }

                await Task.Delay(200, stop.Token).ConfigureAwait(false);
            }

            if (up.Count < nodes)
            {
                throw new CliUsageException($"only nodes [{string.Join(", ", up)}] of {nodes} answered within 60 s; see {layout.LogDir}");
            }

            Console.WriteLine($"{nodes} signer nodes up (threshold {serverConfig.Threshold}), mutual TLS verified");
            Console.WriteLine($"API: {scheme}://{serverConfig.Listen}" + (caFile is null ? "" : $" (certificate from the development CA {caFile})"));
            Console.WriteLine($"admin token file: {paths.AdminTokenFile}");
            Console.WriteLine($"metrics token file: {paths.MetricsTokenFile}");
            if (serverConfig.PolicyChanges?.Approvers?.Contains(LocalClusterLayout.DevelopmentApprover) == true)
            {
                string approver = await DevelopmentApprover.EnsureAsync(new Uri($"{scheme}://{serverConfig.Listen}"), paths.AdminTokenFile, caFile,
                    layout.DevelopmentApproverCredentialPath, stop.Token).ConfigureAwait(false);
                Console.WriteLine($"policy-change approver credential: {approver} (approve a held change: {Launcher()} approvals approve ID --credential {approver})");
            }

            UpRecord.Write(new UpRecord($"{scheme}://{serverConfig.Listen}", paths.AdminTokenFile, layout.DataDir, caFile));
            Console.WriteLine($"CLI: {Launcher()} keys list (finds this server and its token from any folder)");
            Console.WriteLine("press Ctrl-C to stop");
            try
            {
                await Task.Delay(Timeout.Infinite, stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }

            Console.WriteLine("stopping");
            await server.StopAsync(CancellationToken.None).ConfigureAwait(false);
            await server.DisposeAsync().ConfigureAwait(false);
            return 0;
        }
        finally
        {
            StopChildren(children);
        }
    }

    /// <summary>
    /// An existing data folder keeps its cluster, but an explicit <c>--port</c> is honoured (the API listens there this
    /// time; server.json is not changed), and an explicit <c>--node-port</c> that differs from the ports in
    /// cluster.json is refused with the reason: the nodes' addresses are part of the cluster's identity records.
    /// </summary>
    private static void ApplyPortsToExisting(LocalClusterLayout layout, ServerConfig config, int port, bool portGiven, int nodePort, bool nodePortGiven)
    {
        ListenEndpoint current = ListenEndpoint.Parse(config.Listen);
        if (portGiven && current.Port != port)
        {
            config.Listen = $"{current.Host}:{port.ToString(System.Globalization.CultureInfo.InvariantCulture)}";
            Console.WriteLine($"serving the API on port {port} (server.json says {current.Port}; --port wins for this run)");
        }

        if (nodePortGiven)
        {
            ClusterManifest manifest = ClusterManifest.Load(layout.ManifestPath);
            int first = ListenEndpoint.Parse(manifest.Nodes.OrderBy(n => n.Id).First().Address).Port;
            if (first != nodePort)
            {
                throw new CliUsageException($"--node-port {nodePort}: the nodes of the cluster in {layout.DataDir} listen from port {first} (fixed in cluster.json when it was created); omit --node-port or use a new --data folder");
            }
        }
    }

    private static void RequireFreePort(ListenEndpoint listen, string option)
    {
        try
        {
            using var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Parse(listen.Host == "localhost" ? "127.0.0.1" : listen.Host), listen.Port);
            probe.Start();
            probe.Stop();
        }
        catch (System.Net.Sockets.SocketException e) when (e.SocketErrorCode is System.Net.Sockets.SocketError.AddressAlreadyInUse or System.Net.Sockets.SocketError.AccessDenied)
        {
            throw PortBusy(listen, option);
        }
    }

    private static CliUsageException PortBusy(ListenEndpoint listen, string option) =>
        new($"port {listen.Port} on {listen.Host} is already in use (or not allowed); stop what holds it or choose another with {option}");

    /// <summary>Starts the API; a port taken in the meantime is the same one line.</summary>
    internal static async Task StartServerAsync(WebApplication server, ServerConfig config, CancellationToken ct)
    {
        try
        {
            await server.StartAsync(ct).ConfigureAwait(false);
        }
        catch (IOException e) when (e.InnerException is Microsoft.AspNetCore.Connections.AddressInUseException || e.InnerException is System.Net.Sockets.SocketException)
        {
            throw PortBusy(ListenEndpoint.Parse(config.Listen), "--port (or server.json listen)");
        }
    }

    /// <summary>How to run the CLI again: ./conclave at the repository root when this build came from there, else dotnet and this dll.</summary>
    internal static string Launcher()
    {
        string entry = typeof(UpCommand).Assembly.Location;
        for (string? dir = Path.GetDirectoryName(entry); dir is not null; dir = Path.GetDirectoryName(dir))
        {
            string script = Path.Combine(dir, "conclave");
            if (File.Exists(script) && File.Exists(Path.Combine(dir, "Conclave.slnx")))
            {
                return script;
            }
        }

        return $"dotnet {entry}";
    }

    private static Process StartNode(LocalClusterLayout layout, uint id, bool verbose)
    {
        (string file, string prefix) = SelfInvocation();
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (prefix.Length > 0)
        {
            psi.ArgumentList.Add(prefix);
        }

        foreach (string a in new[] { "node", "run", "--config", layout.NodeConfigPath(id), "--parent-pid", Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture) })
        {
            psi.ArgumentList.Add(a);
        }

        if (verbose)
        {
            psi.ArgumentList.Add("--verbose");
        }

        Process p = Process.Start(psi) ?? throw new CliUsageException($"could not start signer node {id}");
        string log = Path.Combine(layout.LogDir, $"node-{id}.log");
        var logOptions = new FileStreamOptions { Mode = FileMode.Append, Access = FileAccess.Write, Share = FileShare.Read };
        if (!OperatingSystem.IsWindows())
        {
            logOptions.UnixCreateMode = Conclave.Storage.OwnerOnly.FileMode;
        }

        var writer = new StreamWriter(new FileStream(log, logOptions)) { AutoFlush = true };
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (writer) { writer.WriteLine(e.Data); } } };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (writer) { writer.WriteLine(e.Data); } } };
        p.EnableRaisingEvents = true;
        p.Exited += (_, _) => { lock (writer) { writer.Dispose(); } };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }

    /// <summary>How to start this same program again: the apphost, or `dotnet conclave.dll`.</summary>
    internal static (string File, string Prefix) SelfInvocation()
    {
        string process = Environment.ProcessPath ?? "dotnet";
        string entry = typeof(UpCommand).Assembly.Location;
        return Path.GetFileNameWithoutExtension(process).Equals("dotnet", StringComparison.OrdinalIgnoreCase) ? (process, entry) : (process, "");
    }

    private static void StopChildren(List<Process> children)
    {
        foreach (Process p in children.Where(p => !p.HasExited))
        {
            _ = Kill(p.Id, 15); // SIGTERM: let the node finish in-flight work
        }

        foreach (Process p in children)
        {
            if (!p.WaitForExit(TimeSpan.FromSeconds(5)))
            {
                p.Kill(entireProcessTree: true);
            }

            p.Dispose();
        }
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
