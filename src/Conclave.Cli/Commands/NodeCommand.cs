using System.CommandLine;
using Conclave.Node.Config;
using Conclave.Node.Hosting;
using Conclave.Node.Protocol;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Conclave.Cli.Commands;

/// <summary><c>conclave node init|run</c>: a signer node on this host.</summary>
internal static class NodeCommand
{
    public static Command Create()
    {
        var node = new Command("node", "Run or prepare a signer node.");

        var id = new Option<uint>("--id") { Description = "Node id (1..255).", Required = true };
        var data = new Option<string>("--data") { Description = "The node's data folder.", Required = true };
        var init = new Command("init", "Create the node's key-encryption key and identity (if absent) and print its public identity as JSON for the cluster manifest.");
        init.Options.Add(id);
        init.Options.Add(data);
        init.SetAction(parse =>
        {
            string dir = Path.GetFullPath(parse.GetValue(data)!);
            uint nodeId = parse.GetValue(id);
            if (nodeId is 0 or > 255)
            {
                throw new CliUsageException("--id must be between 1 and 255");
            }

            using NodeIdentity identity = NodeHost.InitializeIdentity(nodeId, Path.Combine(dir, "data"), Path.Combine(dir, "node.kek"));
            Console.WriteLine(System.Text.Json.JsonSerializer.Serialize(new
            {
                id = nodeId,
                identityKey = Convert.ToHexStringLower(identity.IdentityPublicKey.Span),
                agreementKey = Convert.ToHexStringLower(identity.AgreementPublicKey),
                agreementKeySignature = Convert.ToHexStringLower(identity.AgreementKeySignature),
            }));
            return 0;
        });

        var config = new Option<string>("--config") { Description = "The node's configuration file (JSON).", Required = true };
        var parentPid = new Option<int?>("--parent-pid") { Description = "Exit when this process exits (used by 'conclave up')." };
        var verbose = new Option<bool>("--verbose") { Description = "Log informational messages." };
        var run = new Command("run", "Run a signer node: gRPC over HTTP/2 with mutual TLS.");
        run.Options.Add(config);
        run.Options.Add(parentPid);
        run.Options.Add(verbose);
        run.SetAction(async (parse, ct) =>
        {
            NodeConfig cfg = NodeConfig.Load(parse.GetValue(config)!);
            WebApplication app = await NodeHost.BuildAsync(cfg, parse.GetValue(verbose) ? LogLevel.Information : LogLevel.Warning, ct).ConfigureAwait(false);
            ParentWatch.ExitWithParent(parse.GetValue(parentPid), app.Lifetime);
            await app.StartAsync(ct).ConfigureAwait(false);
            Console.WriteLine($"node {cfg.NodeId} listening on {cfg.Listen}");
            await app.WaitForShutdownAsync(ct).ConfigureAwait(false);
            return 0;
        });

        node.Subcommands.Add(init);
        node.Subcommands.Add(run);
        node.Subcommands.Add(RotateKeys());
        node.Subcommands.Add(ApplyRotation());
        node.Subcommands.Add(EndOverlap());
        node.Subcommands.Add(RotateTls());
        node.Subcommands.Add(PinEviction(pin: true));
        node.Subcommands.Add(PinEviction(pin: false));
        return node;
    }

    /// <summary><c>conclave node rotate-tls --config node.json [--ca-key FILE] [--overlap-seconds N]</c> (docs/OPERATIONS.md "Rotating TLS certificates").</summary>
    private static Command RotateTls()
    {
        var config = new Option<string>("--config") { Description = "The node's configuration file (JSON).", Required = true };
        var (caKey, overlap) = TlsRotationOptions();
        var cmd = new Command("rotate-tls", "Issue a new TLS certificate for the node from the cluster CA in place of its current one (the running node serves it from its next handshake) and revoke the old one in the cluster manifest after the overlap.");
        cmd.Options.Add(config);
        cmd.Options.Add(caKey);
        cmd.Options.Add(overlap);
        cmd.SetAction(parse =>
        {
            NodeConfig cfg = NodeConfig.Load(parse.GetValue(config)!);
            return RunTlsRotation($"node {cfg.NodeId}", cfg.Resolve(cfg.Tls.Certificate), cfg.Resolve(cfg.Tls.Key), cfg.Resolve(cfg.Tls.Ca), parse.GetValue(caKey),
                cfg.Resolve(cfg.Cluster), parse.GetValue(overlap));
        });
        return cmd;
    }

    /// <summary>The <c>--ca-key</c> and <c>--overlap-seconds</c> options of <c>node rotate-tls</c> and <c>coordinator rotate-tls</c>.</summary>
    internal static (Option<string?> CaKey, Option<long> Overlap) TlsRotationOptions() => (
        new Option<string?>("--ca-key") { Description = "The cluster CA's private key (default: ca.key beside the CA certificate the config names)." },
        new Option<long>("--overlap-seconds") { Description = "How long the old certificate stays accepted before the manifest refuses it (default 600).", DefaultValueFactory = _ => 600 });

    /// <summary>The cluster CA's key: <paramref name="caKey"/> (--ca-key), or ca.key beside the CA certificate.</summary>
    internal static string CaKeyPath(string caCertificate, string? caKey) =>
        caKey is null ? Path.Combine(Path.GetDirectoryName(caCertificate) ?? ".", "ca.key") : Path.GetFullPath(caKey);

    /// <summary>Rotates one certificate and prints one line; bad input is a <see cref="CliUsageException"/> or <see cref="ConfigException"/> (exit 2).</summary>
    internal static int RunTlsRotation(string who, string certificate, string key, string caCertificate, string? caKey, string manifestPath, long overlapSeconds)
    {
        if (overlapSeconds is < 0 or > 30L * 24 * 3600)
        {
            throw new CliUsageException("--overlap-seconds must be between 0 and 2592000 (30 days)");
        }

        string caKeyPath = CaKeyPath(caCertificate, caKey);
        Conclave.Node.Pki.TlsRotationResult r = Conclave.Node.Pki.TlsCertificateRotation.Rotate(certificate, key, caCertificate, caKeyPath, manifestPath,
            TimeSpan.FromSeconds(overlapSeconds), DateTimeOffset.UtcNow);
        Console.WriteLine($"{who}: TLS certificate {r.NewSha256} ({r.CommonName}) replaces {r.OldSha256}, which is refused from {r.OldRefusedFrom:yyyy-MM-dd HH:mm:ss}Z; install {manifestPath} on every host");
        return 0;
    }

    /// <summary><c>conclave node rotate-keys --config node.json</c>, on the node's host (docs/OPERATIONS.md "Rotating a node's keys").</summary>
    private static Command RotateKeys()
    {
        var config = new Option<string>("--config") { Description = "The node's configuration file (JSON).", Required = true };
        var cmd = new Command("rotate-keys", "Make the node's next identity and agreement keys (kept sealed beside the current ones) and print the statement for 'conclave node apply-rotation'. The node switches when it starts on a manifest naming the new key.");
        cmd.Options.Add(config);
        cmd.SetAction(parse =>
        {
            NodeConfig cfg = NodeConfig.Load(parse.GetValue(config)!);
            Console.WriteLine(NodeHost.PrepareKeyRotation(cfg).ToJson());
            return 0;
        });
        return cmd;
    }

    /// <summary><c>conclave node apply-rotation STATEMENT --manifest cluster.json [--overlap-seconds N]</c>.</summary>
    private static Command ApplyRotation()
    {
        var statement = new Argument<string>("statement") { Description = "The statement 'conclave node rotate-keys' printed (a JSON file)." };
        var manifest = new Option<string>("--manifest") { Description = "The cluster manifest to update (then install it on every host).", Required = true };
        var overlap = new Option<long>("--overlap-seconds") { Description = "How long the old identity key stays accepted, so sessions in flight finish (default 600).", DefaultValueFactory = _ => 600 };
        var cmd = new Command("apply-rotation", "Put a node's new identity and agreement keys into the cluster manifest; the old identity key stays accepted for the overlap and verifies older transcripts.");
        cmd.Arguments.Add(statement);
        cmd.Options.Add(manifest);
        cmd.Options.Add(overlap);
        cmd.SetAction(parse =>
        {
            string path = parse.GetValue(statement)!;
            long seconds = parse.GetValue(overlap);
            if (seconds is < 0 or > 30L * 24 * 3600)
            {
                throw new CliUsageException("--overlap-seconds must be between 0 and 2592000 (30 days)");
            }

            NodeKeyRotationStatement s = NodeKeyRotationStatement.FromJson(File.Exists(path) ? File.ReadAllText(path) : throw new CliUsageException($"statement file not found: {path}"));
            string manifestPath = parse.GetValue(manifest)!;
            ClusterManifest m = ClusterManifest.Load(manifestPath);
            DateTimeOffset until = DateTimeOffset.UtcNow.AddSeconds(seconds);
            NodeKeyRotation.Apply(m, s, until);
            m.Validate();
            m.Save(manifestPath);
            Console.WriteLine($"node {s.NodeId}: identity key {s.NewIdentityKey} replaces {s.IdentityKey}, which stays accepted until {until:yyyy-MM-dd HH:mm:ss}Z; install {manifestPath} on every host");
            return 0;
        });
        return cmd;
    }

    /// <summary><c>conclave node end-overlap --manifest cluster.json --id N</c>: the retired identity keys of node N are refused from now on.</summary>
    private static Command EndOverlap()
    {
        var manifest = new Option<string>("--manifest") { Description = "The cluster manifest to update (then install it on every host).", Required = true };
        var id = new Option<uint>("--id") { Description = "Node id (1..255).", Required = true };
        var cmd = new Command("end-overlap", "End the overlap of a node's retired identity keys now: only its current key is accepted on live traffic.");
        cmd.Options.Add(manifest);
        cmd.Options.Add(id);
        cmd.SetAction(parse =>
        {
            string manifestPath = parse.GetValue(manifest)!;
            ClusterManifest m = ClusterManifest.Load(manifestPath);
            int ended = NodeKeyRotation.EndOverlap(m, parse.GetValue(id), DateTimeOffset.UtcNow);
            m.Save(manifestPath);
            Console.WriteLine($"node {parse.GetValue(id)}: {ended} retired identity key(s) no longer accepted");
            return 0;
        });
        return cmd;
    }

    /// <summary>
    /// <c>conclave node pin-eviction|unpin-eviction --manifest cluster.json --id N [--reason TEXT]</c>: evicts a node in
    /// the manifest itself, so no coordinator notice can re-admit it (docs/ROTATION.md "A manifest-pinned eviction").
    /// </summary>
    private static Command PinEviction(bool pin)
    {
        var manifest = new Option<string>("--manifest") { Description = "The cluster manifest to update (then install it on every host).", Required = true };
        var id = new Option<uint>("--id") { Description = "Node id (1..255).", Required = true };
        var reason = new Option<string?>("--reason") { Description = "Why (kept in the manifest for its readers)." };
        var cmd = pin
            ? new Command("pin-eviction", "Evict a node in the cluster manifest: every node and the coordinator refuse it, and only unpin-eviction re-admits it.")
            : new Command("unpin-eviction", "Remove a node from the manifest's evicted nodes (the coordinator's own eviction, if any, still stands).");
        cmd.Options.Add(manifest);
        cmd.Options.Add(id);
        if (pin)
        {
            cmd.Options.Add(reason);
        }

        cmd.SetAction(parse =>
        {
            string manifestPath = parse.GetValue(manifest)!;
            uint node = parse.GetValue(id);
            ClusterManifest m = ClusterManifest.Load(manifestPath);
            _ = m.Node(node); // a node of the manifest, or exit 2 naming it
            if (pin == m.IsEvictionPinned(node))
            {
                throw new CliUsageException(pin ? $"node {node} is already evicted by the manifest" : $"node {node} is not evicted by the manifest");
            }

            if (pin)
            {
                if (m.Nodes.Count(n => !m.IsEvictionPinned(n.Id)) <= 1)
                {
                    throw new CliUsageException($"evicting node {node} would leave no node trusted");
                }

                m.EvictedNodes.Add(new PinnedEviction { Id = node, Reason = parse.GetValue(reason) ?? "", SinceUnixMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() });
            }
            else
            {
                m.EvictedNodes.RemoveAll(e => e.Id == node);
            }

            m.Validate();
            m.Save(manifestPath);
            Console.WriteLine(pin
                ? $"node {node} is evicted by {manifestPath}: install it on every host; move its keys away with 'conclave nodes evict {node}'"
                : $"node {node} is no longer evicted by {manifestPath}: install it on every host");
            return 0;
        });
        return cmd;
    }
}

/// <summary>Stops a child process's host when its parent is gone, so a killed `conclave up` leaves no orphans.</summary>
internal static class ParentWatch
{
    public static void ExitWithParent(int? parentPid, Microsoft.Extensions.Hosting.IHostApplicationLifetime lifetime)
    {
        if (parentPid is not int pid)
        {
            return;
        }

        _ = Task.Run(async () =>
        {
            // The parent is identified by its pid and its start time, so a pid reused by another process after the
            // parent died does not keep this one alive.
            DateTime? started = null;
            while (!lifetime.ApplicationStopping.IsCancellationRequested)
            {
                try
                {
                    using var p = System.Diagnostics.Process.GetProcessById(pid);
                    DateTime startTime = p.StartTime;
                    started ??= startTime;
                    if (p.HasExited || startTime != started)
                    {
                        break;
                    }
                }
                catch (Exception e) when (e is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
                {
                    break;
                }

                await Task.Delay(500).ConfigureAwait(false);
            }

            lifetime.StopApplication();
        });
    }
}
