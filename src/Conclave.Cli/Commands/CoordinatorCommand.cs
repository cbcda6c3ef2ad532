using System.CommandLine;
using Conclave.Node.Config;
using Conclave.Node.Protocol;
using Conclave.Server.Config;
using Conclave.Server.Coordinator;

namespace Conclave.Cli.Commands;

/// <summary>
/// <c>conclave coordinator rotate-tls|rotate-keys|apply-rotation|end-overlap</c>: the coordinator's TLS client
/// certificate and identity key, rotated on the server's host while it runs (docs/OPERATIONS.md "Rotating the
/// coordinator's keys").
/// </summary>
internal static class CoordinatorCommand
{
    public static Command Create()
    {
        var coordinator = new Command("coordinator", "Rotate the coordinator's TLS certificate or identity key (the server picks them up while it runs).");
        coordinator.Subcommands.Add(RotateTls());
        coordinator.Subcommands.Add(RotateKeys());
        coordinator.Subcommands.Add(ApplyRotation());
        coordinator.Subcommands.Add(EndOverlap());
        return coordinator;
    }

    private static Option<string> ConfigOption() => new("--config") { Description = "The server's configuration file (JSON).", Required = true };

    /// <summary><c>conclave coordinator rotate-tls --config server.json [--ca-key FILE] [--overlap-seconds N]</c>.</summary>
    private static Command RotateTls()
    {
        var config = ConfigOption();
        var (caKey, overlap) = NodeCommand.TlsRotationOptions();
        var cmd = new Command("rotate-tls", "Issue a new client certificate for the coordinator from the cluster CA in place of its current one (the running server uses it for new connections) and revoke the old one in the cluster manifest after the overlap.");
        cmd.Options.Add(config);
        cmd.Options.Add(caKey);
        cmd.Options.Add(overlap);
        cmd.SetAction(parse =>
        {
            ServerConfig cfg = ServerConfig.Load(parse.GetValue(config)!);
            return NodeCommand.RunTlsRotation("coordinator", cfg.Resolve(cfg.Tls.Certificate), cfg.Resolve(cfg.Tls.Key), cfg.Resolve(cfg.Tls.Ca), parse.GetValue(caKey),
                cfg.Resolve(cfg.Cluster), parse.GetValue(overlap));
        });
        return cmd;
    }

    /// <summary><c>conclave coordinator rotate-keys --config server.json</c>: the next identity and the statement for <c>apply-rotation</c>.</summary>
    private static Command RotateKeys()
    {
        var config = ConfigOption();
        var cmd = new Command("rotate-keys", "Make the coordinator's next identity key (kept sealed beside the current one) and print the statement for 'conclave coordinator apply-rotation'. The server signs with it once its manifest names it.");
        cmd.Options.Add(config);
        cmd.SetAction(parse =>
        {
            ServerConfig cfg = ServerConfig.Load(parse.GetValue(config)!);
            var files = new CoordinatorIdentityFiles(cfg.Resolve(cfg.DataDir), cfg.Resolve(cfg.KekFile));
            Console.WriteLine(files.PrepareRotation().ToJson());
            return 0;
        });
        return cmd;
    }

    /// <summary><c>conclave coordinator apply-rotation STATEMENT --manifest cluster.json [--overlap-seconds N]</c>.</summary>
    private static Command ApplyRotation()
    {
        var statement = new Argument<string>("statement") { Description = "The statement 'conclave coordinator rotate-keys' printed (a JSON file)." };
        var manifest = new Option<string>("--manifest") { Description = "The cluster manifest to update (install it on every node host first, the server's host last).", Required = true };
        var overlap = new Option<long>("--overlap-seconds") { Description = "How long the nodes keep accepting the old coordinator key (default 600).", DefaultValueFactory = _ => 600 };
        var cmd = new Command("apply-rotation", "Put the coordinator's new identity key into the cluster manifest; the old key stays accepted by the nodes for the overlap.");
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

            CoordinatorKeyRotationStatement s = CoordinatorKeyRotationStatement.FromJson(File.Exists(path) ? File.ReadAllText(path) : throw new CliUsageException($"statement file not found: {path}"));
            string manifestPath = parse.GetValue(manifest)!;
            ClusterManifest m = ClusterManifest.Load(manifestPath);
            DateTimeOffset until = DateTimeOffset.UtcNow.AddSeconds(seconds);
            CoordinatorKeyRotation.Apply(m, s, until);
            m.Validate();
            m.Save(manifestPath);
            Console.WriteLine($"coordinator: identity key {s.NewIdentityKey} replaces {s.IdentityKey}, which the nodes accept until {until:yyyy-MM-dd HH:mm:ss}Z; install {manifestPath} on every node host, then on the server's");
            return 0;
        });
        return cmd;
    }

    /// <summary><c>conclave coordinator end-overlap --manifest cluster.json</c>: the retired coordinator keys are refused from now on.</summary>
    private static Command EndOverlap()
    {
        var manifest = new Option<string>("--manifest") { Description = "The cluster manifest to update (then install it on every host).", Required = true };
        var cmd = new Command("end-overlap", "End the overlap of the coordinator's retired identity keys now: the nodes accept only its current key.");
        cmd.Options.Add(manifest);
        cmd.SetAction(parse =>
        {
            string manifestPath = parse.GetValue(manifest)!;
            ClusterManifest m = ClusterManifest.Load(manifestPath);
            int ended = CoordinatorKeyRotation.EndOverlap(m, DateTimeOffset.UtcNow);
            m.Save(manifestPath);
            Console.WriteLine($"coordinator: {ended} retired identity key(s) no longer accepted");
            return 0;
        });
        return cmd;
    }
}
