using System.Net;
using System.Security.Cryptography.X509Certificates;
using Conclave.Crypto.Memory;
using Conclave.Node.Config;
using Conclave.Node.Hosting;
using Conclave.Node.Pki;
using Conclave.Node.Protocol;
using Conclave.Server.Config;
using Conclave.Server.Coordinator;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Conclave.Server.Hosting;

/// <summary>Builds the server process: the coordinator of the nodes plus the HTTP API.</summary>
public static class ServerHost
{
    public static WebApplication Build(ServerConfig config, LogLevel minimumLevel = LogLevel.Warning)
    {
        ArgumentNullException.ThrowIfNull(config);
        string dataDir = config.Resolve(config.DataDir);
        ClusterManifest manifest = ClusterManifest.Load(config.Resolve(config.Cluster));
        NodeIdentity identity;
        using (SecretBuffer kek = KekFile.Read(config.Resolve(config.KekFile)))
        {
            string path = Path.Combine(dataDir, "identity.sealed");
            if (!File.Exists(path))
            {
                throw new ConfigException($"the coordinator has no identity at {path}");
            }

            identity = NodeIdentity.Unseal(0, kek.ReadOnlySpan, File.ReadAllBytes(path));
        }

        X509Certificate2 ca = PemFiles.LoadCertificate(config.Resolve(config.Tls.Ca));
        X509Certificate2 clientCert = PemFiles.LoadWithKey(config.Resolve(config.Tls.Certificate), config.Resolve(config.Tls.Key));
        var cluster = new Cluster(manifest, identity, clientCert, ca, TimeSpan.FromMilliseconds(config.RoundTimeoutMilliseconds));
        AdminToken token = AdminToken.LoadOrCreate(dataDir, out string tokenPath);
        ListenEndpoint listen = ListenEndpoint.Parse(config.Listen);

        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
        builder.Logging.SetMinimumLevel(minimumLevel);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = 1024 * 1024;
            k.Listen(IPAddress.Parse(listen.Host == "localhost" ? "127.0.0.1" : listen.Host), listen.Port);
        });
        builder.Services.AddSingleton(config);
        builder.Services.AddSingleton(cluster);
        builder.Services.AddSingleton(token);
        builder.Services.AddSingleton(new ServerPaths(dataDir, tokenPath));
        WebApplication app = builder.Build();

        app.MapGet("/healthz", () => Results.Ok(new { status = "alive" }));
        app.MapGet("/readyz", async (Cluster c, CancellationToken ct) =>
        {
            IReadOnlyList<uint> up = await c.AttestAsync(ct).ConfigureAwait(false);
            bool ready = up.Count >= config.Threshold;
            return Results.Json(new { ready, nodesUp = up, threshold = config.Threshold }, statusCode: ready ? 200 : 503);
        });
        app.Lifetime.ApplicationStopped.Register(() =>
        {
            cluster.Dispose();
            identity.Dispose();
        });
        return app;
    }
}

/// <summary>Where the server keeps its files.</summary>
public sealed record ServerPaths(string DataDir, string AdminTokenFile);
