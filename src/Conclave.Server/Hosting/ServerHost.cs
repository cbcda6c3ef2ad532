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
using Conclave.Server.Threshold.Engine;
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
    public static async Task<WebApplication> BuildAsync(ServerConfig config, LogLevel minimumLevel = LogLevel.Warning, CancellationToken cancellationToken = default, TimeProvider? clock = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        clock ??= TimeProvider.System;
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

        // The audit log's checkpoint key: the first identity until `conclave audit rotate-key` (AuditKeys); a rotation a
        // stopped server left half done is finished before anything else is appended.
        AuditKeys auditKeys = AuditKeys.Load(dataDir, config.Resolve(config.KekFile), identity);
        var storeOptions = new StoreOptions { Kek = KeyFileKek.Source(config.Resolve(config.KekFile)), CheckpointSigner = auditKeys.Current.SigningKey, CheckpointInterval = config.AuditCheckpointInterval };
        IConclaveStore store = string.IsNullOrEmpty(config.PostgresConnectionString)
            ? await ConclaveStore.OpenSqliteAsync(dataDir, storeOptions, cancellationToken).ConfigureAwait(false)
            : await ConclaveStore.OpenPostgresAsync(config.PostgresConnectionString, storeOptions, cancellationToken).ConfigureAwait(false);
        await auditKeys.FinishAsync(store, cancellationToken).ConfigureAwait(false);

        // The coordinator's client certificate follows its files (`conclave coordinator rotate-tls`), its identity the
        // manifest (`conclave coordinator rotate-keys`) and its trust the CA file (`conclave ca rotate`): all change
        // without a restart (docs/ROTATION.md).
        var caRoots = TrustRoots.FromFile(config.Resolve(config.Tls.Ca));
        ReloadingCertificate clientCert = ReloadingCertificate.FromFiles(config.Resolve(config.Tls.Certificate), config.Resolve(config.Tls.Key), new ClusterTrust(caRoots), ClusterTrust.ClientAuthEku);
        var identityFiles = new CoordinatorIdentityFiles(dataDir, config.Resolve(config.KekFile));
        NodeIdentity coordinatorIdentity = identityFiles.Load(manifest);
        // The manifest file is watched: a node identity rotated in it is accepted without a restart (docs/OPERATIONS.md).
        var cluster = new Cluster(manifest, coordinatorIdentity, clientCert, caRoots, TimeSpan.FromMilliseconds(config.RoundTimeoutMilliseconds),
            manifestPath: config.Resolve(config.Cluster), identityFiles: identityFiles)
        {
            Transport = config.NodeTransport == "grpc" ? NodeTransport.Grpc : NodeTransport.Frames,
        };
        // Rotation runs are recorded in the store under this replica's name, kept in its data folder so that a
        // restarted replica finishes its own interrupted runs at once (another replica's only after their lease).
        // One threshold engine for every protocol (node health, eviction, the DKG and repair rounds): FROST's coordinator
        // runs on it, and KeyService puts the ecdsa-dkls23 coordinator on the same one.
        var engine = new ThresholdEngine(cluster)
        {
            // Nodes a coordinator convicted in a rotation run (a DKG complaint judged): named in the audit log before the run aborts.
            OnCulprits = (keyId, runId, culprits, ct) => store.Audit.AppendAsync(new Conclave.Storage.Audit.AuditEntryInput("coordinator", "rotation.culprit", keyId, null, "deny",
                $"run {runId}: " + string.Join("; ", culprits.Select(c => $"culprit node {c.Node} ({c.Reason})"))), ct),
        };
        var frost = new FrostCoordinator(engine)
        {
            Runs = store.Rotations,
            // Replicas may share a data folder (each with its own listen address): the address keeps their names apart.
            Owner = InstanceId(dataDir) + "@" + config.Listen,
            SignStepsInFlight = config.SignStepsInFlight,
            // Committed with what the request holds (its intent and policy decision: Api.RequestAudit), in one fsync.
            BeforeSignRound = (keyId, version, message, session, ct) =>
                AppendRoundAsync(store, Conclave.Node.Threshold.Engine.SignAuditRecords.CoordinatorEntry(keyId, version, message.Span, session), ct),
        };
        // The server's own token session (HSM keys through the API); opened before anything listens, so a wrong module,
        // token or PIN stops the start with the HSM's one-line error.
        Conclave.Hsm.HsmToken? hsm = config.Hsm is null ? null : Conclave.Hsm.HsmToken.Open(config.Hsm.ToOptions(config.Resolve));
        var keys = new KeyService(store, frost, cluster, config) { Hsm = new HsmKeys(hsm) };
        // DKLs23 signing rounds get their "dkls.sign" entry as FROST rounds get theirs (conclave audit reconcile).
        keys.Dkls.BeforeSignRound = (keyId, version, digest, session, ct) =>
            AppendRoundAsync(store, Conclave.Node.Threshold.Engine.SignAuditRecords.DklsCoordinatorEntry(keyId, version, digest.Span, session), ct);
        // No threshold key is registered here (issue 18): each is registered with its coordinator when first used, and
        // eviction, the node list and readiness read every key's holders from the store (KeyService.Holdings).
        await keys.LoadNodeTrustAsync(cancellationToken).ConfigureAwait(false); // evicted nodes are never chosen, from the first request on
        var consistency = new KeyConsistency(store, cluster);
        keys.Consistency = consistency;
        AdminToken token = AdminToken.LoadOrCreate(dataDir, out string tokenPath);
        var metricsToken = new MetricsToken(AdminToken.LoadOrCreate(dataDir, "metrics-token", "cnm_", out string metricsTokenPath));
        ListenEndpoint listen = ListenEndpoint.Parse(config.Listen);
        IPAddress listenAddress = ApiListenPolicy.Check(config, listen);
        // The API's HTTPS certificate follows its files like the cluster certificates: a pair written over them (a renewal
        // from a public CA, a new one from the development CA) is served from the next handshake on, without a restart
        // (docs/ROTATION.md "Rotating TLS certificates"). No chain check: it may come from any CA the clients trust.
        ReloadingCertificate? apiCertificate = config.ApiTls is null ? null
            : ReloadingCertificate.FromFiles(config.Resolve(config.ApiTls.Certificate), config.Resolve(config.ApiTls.Key), trust: null, ClusterTrust.ServerAuthEku);
        X509Certificate2? clientCa = null;
        if (config.ApiTls?.ClientCa is { Length: > 0 } caFile)
        {
            try
            {
                clientCa = PemFiles.LoadCertificate(config.Resolve(caFile));
            }
            catch (Exception e) when (e is IOException or CryptographicException or UnauthorizedAccessException or ArgumentException)
            {
                throw new ConfigException($"apiTls.clientCa {config.Resolve(caFile)} cannot be read as a PEM certificate: {e.Message}");
            }
        }

        WebApplicationBuilder builder = HostBuilders.CreateSlim();
        if (apiCertificate is not null)
        {
            builder.WebHost.UseKestrelHttpsConfiguration();
        }

        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
        builder.Logging.SetMinimumLevel(minimumLevel);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = config.MaxRequestBodyBytes;
            // Kestrel's own limit is a backstop well above the API's (ApiMiddleware.UseHeaderLimit), which answers 431 with a
            // problem+json body; beyond this one Kestrel answers 431 itself, without a body.
            k.Limits.MaxRequestHeadersTotalSize = 4 * ApiMiddleware.MaxRequestHeadersTotalBytes;
            k.Listen(listenAddress, listen.Port, o =>
            {
                if (apiCertificate is not null)
                {
                    o.UseHttps(new Microsoft.AspNetCore.Server.Kestrel.Https.HttpsConnectionAdapterOptions
                    {
                        ServerCertificateSelector = (_, _) => apiCertificate.Current,
                        // apiTls.clientCa: a client certificate is requested, never required; it is checked against that CA
                        // by Identity.ClientCertificateAuthenticator, which answers a readable 401 rather than a failed handshake.
                        ClientCertificateMode = clientCa is null ? Microsoft.AspNetCore.Server.Kestrel.Https.ClientCertificateMode.NoCertificate
                            : Microsoft.AspNetCore.Server.Kestrel.Https.ClientCertificateMode.AllowCertificate,
                        ClientCertificateValidation = (_, _, _) => true,
                        CheckCertificateRevocation = false,
                    });
                }
            });
        });
        builder.Services.ConfigureHttpJsonOptions(o => ApiJson.Configure(o.SerializerOptions));
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
        builder.Services.AddSingleton(auditKeys);
        builder.Services.AddSingleton(keys);
        var rotator = new Conclave.Server.Rotation.ContinuousRotator(keys);
        builder.Services.AddSingleton(rotator);
        builder.Services.AddSingleton(consistency);
        builder.Services.AddSingleton(token);
        // The risk level (docs/POLICY.md "Risk levels"): shared through the store, read by policy enforcement for every decision.
        Conclave.Server.Risk.RiskSettings riskSettings = config.Risk ?? new Conclave.Server.Risk.RiskSettings();
        var risk = new Conclave.Server.Risk.RiskService(store, riskSettings.ToConfig(), clock)
        {
            Rotator = rotator,
            RotateAtLevel = riskSettings.RotationLevel(),
            PollInterval = riskSettings.PollInterval(),
        };
        await risk.RefreshAsync(cancellationToken).ConfigureAwait(false); // the stored level is in force from the first request
        keys.CulpritObserved = risk.RecordCulprits;
        builder.Services.AddSingleton(risk);
        builder.Services.AddSingleton<IRiskLevelSource>(risk);
        // Policy enforcement (issue 16, docs/POLICY.md "Enforcement"): documents and venue profiles from the store (the
        // profiles server.json names installed for venues that have none), the starter policy a development cluster
        // names in server.json installed once.
        var venues = new Conclave.Server.Policy.VenueProfileSource(store) { Refresh = TimeSpan.FromMilliseconds(config.PolicyRefreshMilliseconds) };
        await venues.InstallConfiguredAsync(config, cancellationToken).ConfigureAwait(false);
        await PolicySetup.InstallStarterPolicyAsync(config, store, cancellationToken).ConfigureAwait(false);
        builder.Services.AddSingleton(venues);
        // Upstream JSON-RPC nodes per chain and the transaction builder (issue 17, docs/VENUE.md).
        var upstreams = new Conclave.Server.Chains.ChainUpstreams(config.UpstreamUrls(), TimeSpan.FromSeconds(config.UpstreamTimeoutSeconds));
        builder.Services.AddSingleton(upstreams);
        // Price sources read from contracts through those upstreams (risk.priceFeeds, docs/OPERATIONS.md "Risk levels").
        builder.Services.AddSingleton(sp => new Conclave.Server.Risk.PriceFeedReader(Conclave.Server.Risk.PriceFeed.FromSettings(riskSettings.PriceFeeds, config.UpstreamUrls()),
            upstreams, risk, clock, sp.GetRequiredService<ILoggerFactory>().CreateLogger("Conclave.Server.Risk")));
        builder.Services.AddSingleton(sp => new Conclave.Server.Chains.EthereumTransactions(keys, sp.GetRequiredService<Conclave.Server.Policy.PolicyGate>(), venues, upstreams));
        var safeContracts = config.SafeContractAddresses();
        builder.Services.AddSingleton(sp => new Conclave.Server.Chains.SafeTreasury(keys, sp.GetRequiredService<Conclave.Server.Policy.PolicyGate>(),
            sp.GetRequiredService<Conclave.Server.Chains.EthereumTransactions>(), sp.GetRequiredService<Conclave.Server.Policy.ApprovalService>(), safeContracts));
        builder.Services.AddSingleton(clock);
        builder.Services.AddSingleton(new Conclave.Server.Policy.PolicyEngine(store) { Refresh = TimeSpan.FromMilliseconds(config.PolicyRefreshMilliseconds) });
        var serverMetrics = new ServerMetrics { Risk = risk };
        builder.Services.AddSingleton(sp => new Conclave.Server.Policy.PolicyGate(sp.GetRequiredService<Conclave.Server.Policy.PolicyEngine>(),
            sp.GetRequiredService<IRiskLevelSource>(), config, sp.GetRequiredService<TimeProvider>())
        {
            DeniedRequest = risk.RecordThreat, // a policy denial is a threat event, as a refused or badly signed request
            Decided = serverMetrics.ObservePolicy,
        });
        builder.Services.AddSingleton(sp =>
        {
            var approvals = new Conclave.Server.Policy.ApprovalService(store, sp.GetRequiredService<Conclave.Server.Policy.PolicyGate>(), sp.GetRequiredService<TimeProvider>())
            {
                VenueProfiles = venues,
            };
            approvals.Register(Conclave.Server.Policy.ApprovalService.SignRoute, PolicySetup.SignExecutor(keys));
            return approvals;
        });
        builder.Services.AddSingleton(metricsToken);
        builder.Services.AddSingleton(new Conclave.Server.Api.Identity.AgentAuthenticator(store, TimeProvider.System));
        if (clientCa is not null)
        {
            builder.Services.AddSingleton(new Conclave.Server.Api.Identity.ClientCertificateAuthenticator(store, clientCa, TimeProvider.System));
        }
        builder.Services.AddSingleton(serverMetrics);
        builder.Services.AddSingleton(new AuditGate(store, config.AuditMaxInFlight));
        builder.Services.AddSingleton(sp => new DenialAudit(store, sp.GetRequiredService<ILoggerFactory>().CreateLogger("Conclave.Server.Audit"),
            TimeSpan.FromSeconds(config.DenialAuditWindowSeconds)) { Refused = risk.RecordThreat });
        builder.Services.AddSingleton(new ReadinessCache(ct => ApiRoutes.CheckReadinessAsync(store, cluster, config, serverMetrics, ct, keys, consistency), TimeSpan.FromSeconds(1)));
        builder.Services.AddSingleton(new ServerIdentityKey(identity.IdentityPublicKey.ToArray()));
        builder.Services.AddSingleton(new ServerPaths(dataDir, tokenPath, metricsTokenPath));
        WebApplication app = builder.Build();

        ApiMiddleware.UseMetrics(app);
        ApiMiddleware.UseErrors(app);
        ApiMiddleware.UseHeaderLimit(app);
        app.UseRouting();
        app.UseRateLimiter();
        app.UseRequestTimeouts();
        ApiMiddleware.UseAuthAndAudit(app);
        ApiMiddleware.UseMetricsAuth(app);
        ApiRoutes.Map(app);
        NodeRoutes.Map(app);
        RotationRoutes.Map(app);
        Conclave.Server.Risk.RiskRoutes.Map(app);
        EthereumRpc.Map(app);
        EthereumTransactionRoutes.Map(app);
        SafeRoutes.Map(app);
        Conclave.Server.Api.Identity.PrincipalRoutes.Map(app);
        PolicyRoutes.Map(app);
        VenueProfileRoutes.Map(app);
        app.MapOpenApi("/openapi/{documentName}.json");
        var routeMethods = new RouteMethods(app);
        app.MapFallback(async (HttpContext ctx) =>
            {
                IReadOnlyList<string> allowed = routeMethods.AllowedFor(ctx.Request.Path);
                if (allowed.Count > 0 && !allowed.Contains(ctx.Request.Method, StringComparer.OrdinalIgnoreCase))
                {
                    ctx.Response.Headers.Allow = string.Join(", ", allowed);
                    await ProblemTypes.WriteAsync(ctx, ProblemTypes.Make(ProblemTypes.MethodNotAllowed,
                        $"{ctx.Request.Method.ToUpperInvariant()} is not served on this route; it serves {string.Join(", ", allowed)}")).ConfigureAwait(false);
                    return;
                }

                await ProblemTypes.WriteAsync(ctx,
                    HttpMethods.IsPost(ctx.Request.Method) && !(ctx.Request.ContentType ?? "").StartsWith("application/json", StringComparison.OrdinalIgnoreCase)
                        ? ProblemTypes.Make(ProblemTypes.MalformedJson, "send a JSON body with Content-Type: application/json")
                        : ProblemTypes.Make(ProblemTypes.NotFound, "no such route")).ConfigureAwait(false);
            })
            .ExcludeFromDescription();
        keys.Lifetime = app.Lifetime.ApplicationStopping;
        ILogger background = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Conclave.Server.Background");
        keys.Log = background;
        app.Lifetime.ApplicationStarted.Register(() => _ = RecoverRunsForeverAsync(keys, background, app.Lifetime.ApplicationStopping));
        app.Lifetime.ApplicationStarted.Register(() => _ = rotator.RunAsync(app.Lifetime.ApplicationStopping, background));
        app.Lifetime.ApplicationStarted.Register(() => _ = risk.RunAsync(app.Lifetime.ApplicationStopping, background));
        app.Lifetime.ApplicationStarted.Register(() => _ = app.Services.GetRequiredService<Conclave.Server.Risk.PriceFeedReader>().RunAsync(app.Lifetime.ApplicationStopping));
        // Approved policy changes take effect when their time lock is over, whether or not anyone reads the request.
        app.Lifetime.ApplicationStarted.Register(() => _ = app.Services.GetRequiredService<Conclave.Server.Policy.ApprovalService>()
            .RunAsync(TimeSpan.FromSeconds(1), app.Lifetime.ApplicationStopping, background));
        app.Lifetime.ApplicationStarted.Register(() => _ = CheckKeysAtStartAsync(consistency, background, app.Lifetime.ApplicationStopping));
        // Key rows written before the store recorded holders get them once, in the background (first use records them too).
        app.Lifetime.ApplicationStarted.Register(() => _ = RecordMissingHoldersAsync(keys, app.Lifetime.ApplicationStopping));
        // Velocity-counter entries no window can reach any more are deleted in the background (docs/STORAGE.md "Pruning").
        var counterPruning = new Conclave.Server.Policy.PolicyCounterPruning(store.PolicyCounters, clock);
        app.Lifetime.ApplicationStarted.Register(() => _ = counterPruning.RunAsync(app.Lifetime.ApplicationStopping, background));
        app.Lifetime.ApplicationStopped.Register(() =>
        {
            app.Services.GetRequiredService<DenialAudit>().DisposeAsync().AsTask().GetAwaiter().GetResult();
            keys.Dispose();
            hsm?.Dispose();
            store.DisposeAsync().AsTask().GetAwaiter().GetResult();
            auditKeys.Dispose();
            cluster.Dispose();
            coordinatorIdentity.Dispose();
            clientCert.Dispose();
            caRoots.Dispose();
            apiCertificate?.Dispose();
            identity.Dispose();
        });
        return app;
    }

    /// <summary>
    /// Finishes or aborts interrupted rotation runs: at start, then every few seconds (a run left waiting for a node
    /// that was down, or one whose replica died). Never throws and never stops before the server does: a run or a node
    /// that fails unexpectedly is logged and left for the next pass (KeyService), and a pass that fails as a whole is
    /// logged and run again (a loop that ended at the first surprise would leave every later interrupted run, and every
    /// eviction, unfinished until a restart).
    /// </summary>
    private static async Task RecoverRunsForeverAsync(KeyService keys, ILogger log, CancellationToken stopping)
    {
        try
        {
            while (!stopping.IsCancellationRequested)
            {
                await BackgroundLog.RunPassAsync("run recovery", () => keys.RecoverRunsAsync(stopping), log, stopping).ConfigureAwait(false);
                await BackgroundLog.RunPassAsync("evictions", () => keys.ContinueEvictionsAsync(stopping), log, stopping).ConfigureAwait(false);
                await Task.Delay(TimeSpan.FromSeconds(3), stopping).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
            // the server stops
        }
    }

    /// <summary>Records the holders of key rows written before the store recorded them (KeyService.RecordMissingHoldersAsync). Never throws.</summary>
    private static async Task RecordMissingHoldersAsync(KeyService keys, CancellationToken stopping)
    {
        try
        {
            await Task.Yield();
            _ = await keys.RecordMissingHoldersAsync(stopping).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or StorageException or ObjectDisposedException or InvalidOperationException)
        {
            // Stopping, or the store is closing or busy: the rows left get their holders at first use.
        }
    }

    /// <summary>
    /// Checks every threshold key against the nodes at start and re-synchronises the store where it is behind them (a
    /// restored server backup); keys left undecided or out of sync are checked again every few seconds until they are
    /// consistent (a node comes back, an operator restores the matching node backups). Never throws; stops with the server
    /// (or once every key is consistent); a pass that fails unexpectedly is logged and run again.
    /// </summary>
    private static async Task CheckKeysAtStartAsync(KeyConsistency consistency, ILogger log, CancellationToken stopping)
    {
        bool first = true, done = false;
        try
        {
            while (!stopping.IsCancellationRequested && !done)
            {
                await BackgroundLog.RunPassAsync("key consistency check", async () =>
                {
                    IReadOnlyList<KeySyncReport> reports = await consistency.CheckAllAsync(repair: true, stopping, first ? null : consistency.NeedsCheck).ConfigureAwait(false);
                    first = false;
                    done = reports.All(r => r.State is KeySyncStates.Consistent or KeySyncStates.Resynchronised);
                }, log, stopping).ConfigureAwait(false);
                if (!done)
                {
                    await Task.Delay(TimeSpan.FromSeconds(3), stopping).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // the server stops
        }
    }

    /// <summary>
    /// The coordinator's entry for a signing round, durable before any node is asked: in the same commit as what the
    /// request holds (Api.RequestAudit) when the round runs inside a signing request, else on its own.
    /// </summary>
    private static Task AppendRoundAsync(IConclaveStore store, Conclave.Storage.Audit.AuditEntryInput entry, CancellationToken ct) =>
        Api.RequestAudit.Current is { } held ? held.FlushAsync(entry).WaitAsync(ct) : store.Audit.AppendAsync(entry, ct);

    /// <summary>This replica's stable name (file <c>instance-id</c> in its data folder, made at first start).</summary>
    private static string InstanceId(string dataDir)
    {
        string path = Path.Combine(dataDir, "instance-id");
        if (!File.Exists(path))
        {
            File.WriteAllText(path, "server-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8)));
        }

        return File.ReadAllText(path).Trim();
    }

    /// <summary>
    /// The rate-limit partition: the client's address, decided before authentication. Never anything the client
    /// writes (a partition per Authorization header let a random header per request have a fresh bucket each time).
    /// </summary>
    private static string ClientKey(HttpContext ctx) => ctx.Connection.RemoteIpAddress?.ToString() ?? "unknown";
}

/// <summary>Where the server keeps its files.</summary>
public sealed record ServerPaths(string DataDir, string AdminTokenFile, string MetricsTokenFile);
