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
        return node;
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
