using System.CommandLine;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Conclave.Node.Config;
using Conclave.Node.Pki;
using Conclave.Server.Config;

namespace Conclave.Cli.Commands;

/// <summary>
/// <c>conclave ca rotate|finish</c>: rotating the cluster CA of a development layout while the cluster signs
/// (docs/ROTATION.md "Rotating the cluster CA", docs/OPERATIONS.md "Rotating the cluster CA").
/// </summary>
internal static class CaCommand
{
    public static Command Create()
    {
        var ca = new Command("ca", "Rotate the cluster CA (development layout): trust both CAs, reissue certificates, then drop the old CA.");
        ca.Subcommands.Add(Rotate());
        ca.Subcommands.Add(Finish());
        return ca;
    }

    private static Option<string> ConfigOption() => new("--config") { Description = "The server's configuration file (JSON); its tls.ca is the CA file.", Required = true };

    private static Option<string?> CaKeyOption() => new("--ca-key") { Description = "The current cluster CA's private key (default: ca.key beside the CA certificate)." };

    /// <summary><c>conclave ca rotate --config server.json [--ca-key FILE]</c>.</summary>
    private static Command Rotate()
    {
        var config = ConfigOption();
        var caKey = CaKeyOption();
        var cmd = new Command("rotate", "Make a new cluster CA beside the current one and write both into the CA file; every process trusts both from then on.");
        cmd.Options.Add(config);
        cmd.Options.Add(caKey);
        cmd.SetAction(parse =>
        {
            ServerConfig cfg = ServerConfig.Load(parse.GetValue(config)!);
            string caPath = cfg.Resolve(cfg.Tls.Ca);
            string keyPath = NodeCommand.CaKeyPath(caPath, parse.GetValue(caKey));
            (string sha, string subject) = CaRotation.Start(caPath, keyPath, DateTimeOffset.UtcNow);
            (_, string nextKey) = CaRotation.NextPaths(caPath, keyPath);
            Console.WriteLine($"new cluster CA {sha} ({subject}); {caPath} now trusts the old and the new CA: copy it to every node host, "
                + $"then reissue every node's and the coordinator's certificate with 'rotate-tls --ca-key {nextKey}', then run 'conclave ca finish'");
            return 0;
        });
        return cmd;
    }

    /// <summary><c>conclave ca finish --config server.json [--force]</c>.</summary>
    private static Command Finish()
    {
        var config = ConfigOption();
        var caKey = CaKeyOption();
        var force = new Option<bool>("--force") { Description = "Finish although a node could not be checked or still serves a certificate from the old CA (it will be refused)." };
        var cmd = new Command("finish", "Drop the old CA from the CA file once the coordinator and every node present a certificate from the new CA; the new CA's key becomes the CA key.");
        cmd.Options.Add(config);
        cmd.Options.Add(caKey);
        cmd.Options.Add(force);
        cmd.SetAction(async (parse, ct) =>
        {
            ServerConfig cfg = ServerConfig.Load(parse.GetValue(config)!);
            string caPath = cfg.Resolve(cfg.Tls.Ca);
            string keyPath = NodeCommand.CaKeyPath(caPath, parse.GetValue(caKey));
            (string nextCert, string nextKey) = CaRotation.NextPaths(caPath, keyPath);
            if (!File.Exists(nextCert) || !File.Exists(nextKey))
            {
                throw new ConfigException($"no CA rotation is under way ({nextKey} does not exist): start one with 'conclave ca rotate'");
            }

            // Dropping the old CA refuses every certificate it issued: check first that nothing still uses one.
            List<string> problems = await CheckEverythingMovedAsync(cfg, nextCert, ct).ConfigureAwait(false);
            if (problems.Count > 0 && !parse.GetValue(force))
            {
                throw new CliUsageException("the old CA is still in use, finishing would cut these off: " + string.Join("; ", problems) + " (reissue them, or pass --force)");
            }

            string sha = CaRotation.Finish(caPath, keyPath);
            Console.WriteLine($"cluster CA {sha} is now the only trusted CA in {caPath}: copy it to every node host"
                + (problems.Count > 0 ? $" (forced past: {string.Join("; ", problems)})" : ""));
            return 0;
        });
        return cmd;
    }

    /// <summary>The coordinator's certificate file, and the certificate every node serves now, must chain to the new CA.</summary>
    private static async Task<List<string>> CheckEverythingMovedAsync(ServerConfig cfg, string newCaPath, CancellationToken ct)
    {
        var problems = new List<string>();
        using X509Certificate2 newCa = PemFiles.LoadCertificate(newCaPath);
        var onlyNew = new ClusterTrust(newCa);
        using X509Certificate2 coordinator = PemFiles.LoadWithKey(cfg.Resolve(cfg.Tls.Certificate), cfg.Resolve(cfg.Tls.Key));
        if (!onlyNew.Validate(coordinator, ClusterTrust.ClientAuthEku))
        {
            problems.Add($"the coordinator's certificate {cfg.Resolve(cfg.Tls.Certificate)} is not from the new CA");
        }

        ClusterManifest manifest = ClusterManifest.Load(cfg.Resolve(cfg.Cluster));
        foreach (ClusterNode node in manifest.Nodes)
        {
            string? problem = await CheckNodeAsync(node, coordinator, onlyNew, ct).ConfigureAwait(false);
            if (problem is not null)
            {
                problems.Add(problem);
            }
        }

        return problems;
    }

    /// <summary>A TLS handshake with the node (as the coordinator): null when the certificate it serves chains to the new CA.</summary>
    private static async Task<string?> CheckNodeAsync(ClusterNode node, X509Certificate2 clientCertificate, ClusterTrust onlyNew, CancellationToken ct)
    {
        ListenEndpoint endpoint = ListenEndpoint.Parse(node.Address);
        X509Certificate2? served = null;
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(10));
            using var tcp = new TcpClient();
            await tcp.ConnectAsync(endpoint.Host, endpoint.Port, timeout.Token).ConfigureAwait(false);
            await using var tls = new SslStream(tcp.GetStream(), leaveInnerStreamOpen: false, (_, certificate, _, _) =>
            {
                served = certificate is null ? null : X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
                return true; // judged below, against the new CA only
            });
            await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = endpoint.Host,
                ClientCertificates = [clientCertificate],
                ApplicationProtocols = [SslApplicationProtocol.Http2],
                AllowTlsResume = false,
            }, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or IOException or AuthenticationException or OperationCanceledException)
        {
            if (served is null)
            {
                return $"node {node.Id} ({node.Address}) could not be reached to check its certificate";
            }
        }

        using (served)
        {
            return served is not null && onlyNew.Validate(served, ClusterTrust.ServerAuthEku)
                ? null
                : $"node {node.Id} ({node.Address}) serves a certificate that is not from the new CA";
        }
    }
}
