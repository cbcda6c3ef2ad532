using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Threading.RateLimiting;
using Conclave.Crypto.Memory;
using Conclave.Node.Config;
using Conclave.Node.Hosting;
using Conclave.Node.Pki;
using Conclave.Node.Protocol;
using Conclave.Server.Api;
using Conclave.Server.Config;
using Conclave.Server.Coordinator;
using Conclave.Storage;
using Conclave.Storage.Encryption;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Timeouts;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Conclave.Server.Hosting;

/// <summary>
/// Builds the server process: the coordinator of the nodes, the server's own store (SQLite in its data folder or
/// PostgreSQL; sealed under the server KEK file; audit checkpoints signed by the coordinator identity), and the HTTP
/// API (REST v1, Ethereum JSON-RPC, OpenAPI at /openapi/v1.json, health, readiness, metrics).
/// </summary>
public static class ServerHost
{
    public static async Task<WebApplication> BuildAsync(ServerConfig config, LogLevel minimumLevel = LogLevel.Warning, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(config);
        string dataDir = config.Resolve(config.DataDir);
        if (Conclave.Storage.OwnerOnly.WritableByOthers(dataDir) is { } refused)
        {
            throw new ConfigException(refused);
        }

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

        var storeOptions = new StoreOptions { Kek = KeyFileKek.Source(config.Resolve(config.KekFile)), CheckpointSigner = identity.SigningKey };
        IConclaveStore store = string.IsNullOrEmpty(config.PostgresConnectionString)
            ? await ConclaveStore.OpenSqliteAsync(dataDir, storeOptions, cancellationToken).ConfigureAwait(false)
            : await ConclaveStore.OpenPostgresAsync(config.PostgresConnectionString, storeOptions, cancellationToken).ConfigureAwait(false);

        X509Certificate2 ca = PemFiles.LoadCertificate(config.Resolve(config.Tls.Ca));
        X509Certificate2 clientCert = PemFiles.LoadWithKey(config.Resolve(config.Tls.Certificate), config.Resolve(config.Tls.Key));
        var cluster = new Cluster(manifest, identity, clientCert, ca, TimeSpan.FromMilliseconds(config.RoundTimeoutMilliseconds));
        var frost = new FrostCoordinator(cluster)
        {
            BeforeSignRound = (keyId, version, message, session, ct) =>
                store.Audit.AppendAsync(Conclave.Node.Frost.SignAuditRecords.CoordinatorEntry(keyId, version, message.Span, session), ct),
        };
        var keys = new KeyService(store, frost, cluster, config);
        await keys.LoadAsync(cancellationToken).ConfigureAwait(false);
        AdminToken token = AdminToken.LoadOrCreate(dataDir, out string tokenPath);
        var metricsToken = new MetricsToken(AdminToken.LoadOrCreate(dataDir, "metrics-token", "cnm_", out string metricsTokenPath));
        ListenEndpoint listen = ListenEndpoint.Parse(config.Listen);

        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
        builder.Logging.SetMinimumLevel(minimumLevel);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = config.MaxRequestBodyBytes;
            k.Limits.MaxRequestHeadersTotalSize = 32 * 1024;
            k.Listen(IPAddress.Parse(listen.Host == "localhost" ? "127.0.0.1" : listen.Host), listen.Port);
        });
        builder.Services.ConfigureHttpJsonOptions(o => o.SerializerOptions.TypeInfoResolverChain.Insert(0, ApiJsonContext.Default));
        builder.Services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        builder.Services.AddOpenApi("v1");
        builder.Services.AddRateLimiter(o =>
        {
            o.GlobalLimiter = PartitionedRateLimiter.Create<HttpContext, string>(ctx => RateLimitPartition.GetTokenBucketLimiter(ClientKey(ctx), _ => new TokenBucketRateLimiterOptions
            {
                TokenLimit = config.RateLimitBurst,
                TokensPerPeriod = config.RateLimitPerSecond,
                ReplenishmentPeriod = TimeSpan.FromSeconds(1),
                QueueLimit = 0,
                AutoReplenishment = true,
            }));
            o.OnRejected = async (c, ct) =>
            {
                c.HttpContext.Response.Headers.RetryAfter = "1";
                await ProblemTypes.WriteAsync(c.HttpContext, ProblemTypes.Make(ProblemTypes.RateLimited, "this client sent too many requests; retry after a second")).ConfigureAwait(false);
            };
        });
        builder.Services.AddRequestTimeouts(o => o.DefaultPolicy = new RequestTimeoutPolicy
        {
            Timeout = TimeSpan.FromSeconds(config.RequestTimeoutSeconds),
            WriteTimeoutResponse = ctx => ProblemTypes.WriteAsync(ctx, ProblemTypes.Make(ProblemTypes.Timeout, $"the request did not finish within {config.RequestTimeoutSeconds} s")),
        });
        builder.Services.AddSingleton(config);
        builder.Services.AddSingleton(cluster);
        builder.Services.AddSingleton(frost);
        builder.Services.AddSingleton(store);
        builder.Services.AddSingleton(keys);
        builder.Services.AddSingleton(token);
        builder.Services.AddSingleton(metricsToken);
        builder.Services.AddSingleton(new ServerMetrics());
        builder.Services.AddSingleton(new ServerIdentityKey(identity.IdentityPublicKey.ToArray()));
        builder.Services.AddSingleton(new ServerPaths(dataDir, tokenPath, metricsTokenPath));
        WebApplication app = builder.Build();

        ApiMiddleware.UseMetrics(app);
        ApiMiddleware.UseErrors(app);
        app.UseRouting();
        app.UseRateLimiter();
        app.UseRequestTimeouts();
        ApiMiddleware.UseAuthAndAudit(app);
        ApiMiddleware.UseMetricsAuth(app);
        ApiRoutes.Map(app);
        EthereumRpc.Map(app);
        app.MapOpenApi("/openapi/{documentName}.json");
        app.MapFallback(async (HttpContext ctx) => await ProblemTypes.WriteAsync(ctx,
                HttpMethods.IsPost(ctx.Request.Method) && !(ctx.Request.ContentType ?? "").StartsWith("application/json", StringComparison.OrdinalIgnoreCase)
                    ? ProblemTypes.Make(ProblemTypes.MalformedJson, "send a JSON body with Content-Type: application/json")
                    : ProblemTypes.Make(ProblemTypes.NotFound, "no such route")).ConfigureAwait(false))
            .ExcludeFromDescription();
        app.Lifetime.ApplicationStopped.Register(() =>
        {
            keys.Dispose();
            store.DisposeAsync().AsTask().GetAwaiter().GetResult();
            cluster.Dispose();
            identity.Dispose();
        });
        return app;
    }

    /// <summary>The rate-limit partition: a hash of the bearer token when one is sent, else the remote address.</summary>
    private static string ClientKey(HttpContext ctx)
    {
        string auth = ctx.Request.Headers.Authorization.ToString();
        return auth.Length > 0
            ? "t:" + Convert.ToHexString(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(auth)).AsSpan(0, 12))
            : "ip:" + (ctx.Connection.RemoteIpAddress?.ToString() ?? "unknown");
    }
}

/// <summary>Where the server keeps its files.</summary>
public sealed record ServerPaths(string DataDir, string AdminTokenFile, string MetricsTokenFile);
