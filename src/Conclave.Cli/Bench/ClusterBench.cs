using System.Diagnostics;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Conclave.Crypto.Signing;
using Conclave.Node.Config;
using Conclave.Node.Protocol;
using Conclave.Node.Rpc;
using Conclave.Server.Api;
using Conclave.Server.Config;
using Conclave.Server.Coordinator;
using Conclave.Server.Hosting;
using Conclave.Server.Threshold.Dkls23;
using Conclave.Server.Threshold.Engine;
using Conclave.Threshold.Frost;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace Conclave.Cli.Bench;

/// <summary>
/// `conclave bench --cluster`: the figures a venue sees. It starts what `conclave up` runs — n `conclave node run`
/// processes with mutual TLS on loopback and the server (SQLite store, durable audit before release) — and signs
/// through <c>POST /v1/keys/{name}/sign</c> with an HTTP client in this process, so every process shares this
/// machine's cores. Key creation through the API times the DKG.
/// </summary>
internal static class ClusterBench
{
    public static IReadOnlyList<string> Schemes { get; } = ["frost-secp256k1", "frost-taproot", "frost-ed25519", "ecdsa-dkls23", "ecdsa-secp256k1", "ed25519"];

    /// <summary>Threshold ECDSA (DKLs23, docs/DKLS23.md): the full three rounds per signature through the cluster.</summary>
    private const string Dkls = "ecdsa-dkls23";

    public static async Task RunAsync(BenchContext ctx, CancellationToken cancellationToken)
    {
        string[] wanted = [.. Schemes.Where(s => BenchRows.Wanted(ctx.Settings.Schemes, s))];
        if (wanted.Length == 0)
        {
            return;
        }

        (int t, int n) = Shapes.Parse(ctx.Settings.ClusterShape);
        ctx.Progress.WriteLine($"starting a {t}-of-{n} cluster ({n} node processes and the server) …");
        using var nodes = new LocalClusterProcesses(typeof(ClusterBench).Assembly.Location, n, t);
        ServerConfig config = ServerConfig.Load(nodes.Layout.ServerConfigPath);
        config.RateLimitPerSecond = 1_000_000;
        config.RateLimitBurst = 1_000_000;
        config.NodeTransport = ctx.Settings.NodeTransport;
        config.SignStepsInFlight = ctx.Settings.SignStepsInFlight;
        config.StarterPolicy = await WriteBenchPolicyAsync(nodes.Layout, cancellationToken).ConfigureAwait(false);
        WebApplication app = await ServerHost.BuildAsync(config).ConfigureAwait(false);
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            string token = (await File.ReadAllTextAsync(app.Services.GetRequiredService<ServerPaths>().AdminTokenFile, cancellationToken).ConfigureAwait(false)).Trim();
            Cluster cluster = app.Services.GetRequiredService<Cluster>();
            cluster.CountBytes = true; // bytes on the wire per signature (off outside benchmarks: sizing every message costs)
            ServerMetrics metrics = app.Services.GetRequiredService<ServerMetrics>();
            FrostCoordinator frost = app.Services.GetRequiredService<FrostCoordinator>();
            using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = Math.Max(ctx.Settings.Concurrency, 1), PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5) })
            {
                BaseAddress = new Uri("http://" + config.Listen),
                Timeout = TimeSpan.FromSeconds(60),
            };
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
            await WaitReadyAsync(http, cancellationToken).ConfigureAwait(false);
            await WarmUpAsync(ctx, http, nodes, n, t, wanted, cancellationToken).ConfigureAwait(false);
            await TransportFloorAsync(ctx, cluster, cancellationToken).ConfigureAwait(false);
            foreach (string scheme in wanted)
            {
                await MeasureSchemeAsync(ctx, http, cluster, metrics, nodes, frost, n, t, scheme, cancellationToken).ConfigureAwait(false);
            }

            if (wanted.Contains("ecdsa-secp256k1"))
            {
                await MeasurePolicyWithVelocityAsync(ctx, http, metrics, cancellationToken).ConfigureAwait(false);
            }

            foreach (string scheme in new[] { "frost-secp256k1", "ecdsa-secp256k1" }.Where(wanted.Contains))
            {
                await MeasureBatchAsync(ctx, http, nodes, frost, n, t, scheme, cancellationToken).ConfigureAwait(false);
            }

            await FarApartAsync(ctx, nodes, t, n, cancellationToken).ConfigureAwait(false);

            string presigned = $"{Dkls}/cluster-presigned-{t}-of-{n}";
            if (wanted.Contains(Dkls) && ctx.Begin(presigned))
            {
                // The presignature pool is a server setting (dklsPresignPoolSize, off by default): the same node processes and
                // store under the server started again with a pool, so no other row signs from one.
                await app.StopAsync(CancellationToken.None).ConfigureAwait(false);
                await app.DisposeAsync().ConfigureAwait(false);
                int pool = PresignedPoolSize(ctx.Settings.Duration);
                config.DklsPresignPoolSize = pool;
                app = await ServerHost.BuildAsync(config).ConfigureAwait(false);
                await app.StartAsync(cancellationToken).ConfigureAwait(false);
                app.Services.GetRequiredService<Cluster>().CountBytes = true;
                await WaitReadyAsync(http, cancellationToken).ConfigureAwait(false);
                await MeasurePresignedAsync(ctx, http, app.Services.GetRequiredService<KeyService>().Dkls, app.Services.GetRequiredService<Cluster>(),
                    nodes, n, t, presigned, pool, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            await app.StopAsync(CancellationToken.None).ConfigureAwait(false);
            await app.DisposeAsync().ConfigureAwait(false);
        }
    }

    private static async Task WaitReadyAsync(HttpClient http, CancellationToken cancellationToken)
    {
        long deadline = Stopwatch.GetTimestamp() + 60 * Stopwatch.Frequency;
        while (true)
        {
            using HttpResponseMessage r = await http.GetAsync(new Uri("/readyz", UriKind.Relative), cancellationToken).ConfigureAwait(false);
            if (r.IsSuccessStatusCode)
            {
                return;
            }

            if (Stopwatch.GetTimestamp() > deadline)
            {
                throw new BenchFailedException($"the benchmark cluster did not become ready within 60 s (/readyz answered {(int)r.StatusCode})");
            }

            await Task.Delay(200, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Warms the freshly started processes before any row is timed: signatures with a throw-away key through the REST
    /// path and the nodes (a FROST key when a threshold scheme is wanted, else the first wanted scheme's), with a quarter
    /// of the row's concurrency, for at least twice the row budget and then until the JIT is quiet, at most six row
    /// budgets (<see cref="WarmUntilQuietAsync"/>). Measured on this VM: right after start the server's tiered-compilation thread
    /// took a third of its CPU for the first few thousand requests, so the first cluster row of every run was 2–3× the
    /// others, and with a fixed budget the JIT was still recompiling (dynamic PGO) inside the first rows on a loaded
    /// machine (docs/PERFORMANCE.md).
    /// </summary>
    private static async Task WarmUpAsync(BenchContext ctx, HttpClient http, LocalClusterProcesses nodes, int n, int t, string[] wanted, CancellationToken cancellationToken)
    {
        string scheme = wanted.FirstOrDefault(s => FrostScheme.TryGet(s, out _)) ?? (wanted.Contains(Dkls) ? "frost-secp256k1" : wanted[0]);
        string name = "bench-warm-up-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3));
        await CreateKeyAsync(http, name, scheme, n, t, cancellationToken).ConfigureAwait(false);
        var signer = new RestSigner(http, name, SignBody(scheme, SHA256.HashData(Encoding.UTF8.GetBytes(name))), $"a warm-up {scheme} signature", cancellationToken);
        ctx.Progress.WriteLine($"warming up the cluster ({scheme} signatures through the API, at least {(ctx.Settings.Duration * 2).TotalSeconds:0.#} s and until the JIT is quiet) …");
        await WarmUntilQuietAsync(ctx, nodes, n, signer, ctx.Settings.Duration * 2, ctx.Settings.Duration * 6, cancellationToken).ConfigureAwait(false);
        if (wanted.Contains(Dkls) && scheme != Dkls)
        {
            await WarmUpDklsAsync(ctx, http, nodes, n, t, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The DKLs23 three-round paths warmed as well (a measurement fix, issue 15): the FROST warm-up above leaves the
    /// server's DKLs23 coordinator paths and the nodes' DKLs23 handlers to be compiled and tiered up inside the DKLs23
    /// row (19 % of the server's samples in a perf window of that row, docs/PERFORMANCE.md). A throw-away DKLs23 key is
    /// made and signed with through the API (<see cref="WarmUntilQuietAsync"/>: at least one row budget, at most six).
    /// </summary>
    private static async Task WarmUpDklsAsync(BenchContext ctx, HttpClient http, LocalClusterProcesses nodes, int n, int t, CancellationToken cancellationToken)
    {
        string name = "bench-warm-up-dkls-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3));
        await CreateKeyAsync(http, name, Dkls, n, t, cancellationToken).ConfigureAwait(false);
        var signer = new RestSigner(http, name, SignBody(Dkls, SHA256.HashData(Encoding.UTF8.GetBytes(name))), $"a warm-up {Dkls} signature", cancellationToken);
        ctx.Progress.WriteLine($"warming up the cluster ({Dkls} signatures in three rounds through the API, until the JIT is quiet) …");
        await WarmUntilQuietAsync(ctx, nodes, n, signer, ctx.Settings.Duration, ctx.Settings.Duration * 6, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Signs with <paramref name="signer"/>, a quarter of the row's concurrency in flight, for at least
    /// <paramref name="atLeast"/> and then until the tiered-compilation threads of the server and the nodes took less
    /// than 5 % of one core over the last second (<see cref="TieringClock"/>; on a loaded 2-core machine a fixed 5 s left
    /// them recompiling for the first 7 s of a row), at most <paramref name="atMost"/>.
    /// </summary>
    private static async Task WarmUntilQuietAsync(BenchContext ctx, LocalClusterProcesses nodes, int n, RestSigner signer, TimeSpan atLeast, TimeSpan atMost,
        CancellationToken cancellationToken)
    {
        var jit = new TieringClock([Process.GetCurrentProcess(), .. Enumerable.Range(1, n).Select(i => nodes.NodeProcess((uint)i)).OfType<Process>()]);
        _ = jit.Advance();
        int stop = 0;
        async Task Worker()
        {
            do
            {
                await signer.SignAsync().ConfigureAwait(false);
            }
            while (Volatile.Read(ref stop) == 0);
        }

        Task workers = Task.WhenAll(Enumerable.Range(0, Math.Max(1, ctx.Settings.Concurrency / 4)).Select(_ => Worker()));
        long start = Stopwatch.GetTimestamp();
        double share = double.NaN;
        try
        {
            while (!workers.IsCompleted)
            {
                long s0 = Stopwatch.GetTimestamp();
                await Task.WhenAny(workers, Task.Delay(TimeSpan.FromSeconds(1), cancellationToken)).ConfigureAwait(false);
                share = jit.Advance().TotalSeconds / Stopwatch.GetElapsedTime(s0).TotalSeconds;
                TimeSpan elapsed = Stopwatch.GetElapsedTime(start);
                if ((elapsed >= atLeast && (!TieringClock.IsAvailable || share < 0.05)) || elapsed >= atMost)
                {
                    break;
                }
            }
        }
        finally
        {
            Volatile.Write(ref stop, 1);
        }

        await workers.ConfigureAwait(false);
        ctx.Progress.WriteLine(string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"     warmed for {Stopwatch.GetElapsedTime(start).TotalSeconds:0.0} s; tiered compilation took {share * 100:0.#} % of one core in the last second"));
    }

    private static bool IsThreshold(string scheme, out FrostScheme? frost) => FrostScheme.TryGet(scheme, out frost) || scheme == Dkls;

    /// <summary>Creates a key through <c>POST /v1/keys</c>: t-of-n over the cluster for a threshold scheme, else server-held; the key as the API answered.</summary>
    private static async Task<JsonNode> CreateKeyAsync(HttpClient http, string name, string scheme, int n, int t, CancellationToken cancellationToken)
    {
        string create = IsThreshold(scheme, out _)
            ? $$"""{"name":"{{name}}","scheme":"{{scheme}}","threshold":{{t}},"participants":{{n}}}"""
            : $$"""{"name":"{{name}}","scheme":"{{scheme}}"}""";
        using HttpResponseMessage created = await http.PostAsync(new Uri("/v1/keys", UriKind.Relative), Json(create), cancellationToken).ConfigureAwait(false);
        string text = await created.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        return created.IsSuccessStatusCode && JsonNode.Parse(text) is { } key ? key
            : throw new BenchFailedException($"creating a {scheme} key failed: {(int)created.StatusCode} {text}");
    }

    /// <summary>Signatures of one key through <c>POST /v1/keys/{name}/sign</c>: the last answer and the REST bytes (request and response bodies) so far.</summary>
    private sealed class RestSigner(HttpClient http, string name, string body, string what, CancellationToken cancellationToken)
    {
        private readonly Uri _path = new($"/v1/keys/{name}/sign", UriKind.Relative);
        private long _restBytes;

        public JsonNode? Last { get; private set; }

        public long RestBytes => Interlocked.Read(ref _restBytes);

        public async Task SignAsync()
        {
            using HttpResponseMessage r = await http.PostAsync(_path, Json(body), cancellationToken).ConfigureAwait(false);
            string text = await r.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            if (!r.IsSuccessStatusCode)
            {
                throw new BenchFailedException($"{what} failed: {(int)r.StatusCode} {text}");
            }

            Interlocked.Add(ref _restBytes, Encoding.UTF8.GetByteCount(body) + Encoding.UTF8.GetByteCount(text));
            Last = JsonNode.Parse(text);
        }
    }

    /// <summary>The body of <c>POST /v1/keys/{name}/sign</c>: ECDSA schemes sign a 32-byte digest, the others a message.</summary>
    private static string SignBody(string scheme, byte[] message) => scheme.StartsWith("ecdsa", StringComparison.Ordinal)
        ? $$"""{"digest":"{{Convert.ToHexStringLower(message)}}"}"""
        : $$"""{"message":"{{Convert.ToHexStringLower(message)}}"}""";

    /// <summary>
    /// The floor under every node step: an empty gRPC call (GetInfo) to node 1 over mutual TLS; and one signed step
    /// (an attestation: the coordinator signs the request, the node verifies it and signs its reply, the coordinator
    /// verifies that) over each transport, sequentially and with --concurrency in flight.
    /// </summary>
    private static async Task TransportFloorAsync(BenchContext ctx, Cluster cluster, CancellationToken cancellationToken)
    {
        const string id = "transport/grpc-empty-call";
        NodeClient node = cluster.Node(1);
        if (ctx.Begin(id))
        {
            Latency rtt = await ctx.Sampler.SequentialAsync(() => node.GetInfoAsync(TimeSpan.FromSeconds(10), cancellationToken)).ConfigureAwait(false);
            ctx.Add(new BenchRow
            {
                Id = id, Family = "transport", Scheme = "grpc", Shape = "-", Where = "cluster-rest", Sign = rtt,
                SecurityProfile = "-", Note = "an empty gRPC call from the coordinator to one node over mutual TLS: the floor under every protocol step",
            });
        }

        NodeTransport configured = cluster.Transport;
        try
        {
            foreach (NodeTransport transport in new[] { NodeTransport.Frames, NodeTransport.Grpc })
            {
                string stepId = "transport/signed-step-" + (transport == NodeTransport.Frames ? "frames" : "grpc");
                if (!ctx.Begin(stepId))
                {
                    continue;
                }

                cluster.Transport = transport;
                Task Step() => SignedStepAsync(cluster, node, TimeSpan.FromSeconds(10), cancellationToken);

                Latency sequential = await ctx.Sampler.SequentialAsync(Step).ConfigureAwait(false);
                double perSecond = await ctx.Sampler.ConcurrentAsync(Step, ctx.Settings.Concurrency).ConfigureAwait(false);
                ctx.Add(new BenchRow
                {
                    Id = stepId, Family = "transport", Scheme = transport == NodeTransport.Frames ? "frames" : "grpc", Shape = "-", Where = "cluster-rest",
                    Sign = sequential, ConcurrentPerSecond = perSecond, Concurrency = ctx.Settings.Concurrency, SecurityProfile = "-",
                    Note = transport == NodeTransport.Frames
                        ? "one signed step (attestation) to one node as a frame on the long-lived connection: request signed, verified, reply signed, verified"
                        : "one signed step (attestation) to one node as a gRPC call (an HTTP/2 request): request signed, verified, reply signed, verified",
                });
            }
        }
        finally
        {
            cluster.Transport = configured;
        }
    }

    /// <summary>
    /// Coordinator and nodes far apart (issue 18): a coordinator of its own connects to every node through a
    /// <see cref="DelayProxy"/> adding half of 20 ms, then of 80 ms, to each direction, as between regions. Per round trip:
    /// one signed step to one node (the floor), a frost-secp256k1 DKG, and signing with pooled nonces — the FROST protocol
    /// through the frame transport without the REST layer, store or audit log, so the figure reads as round trips plus compute.
    /// </summary>
    private static async Task FarApartAsync(BenchContext ctx, LocalClusterProcesses nodes, int t, int n, CancellationToken cancellationToken)
    {
        foreach (int rttMs in new[] { 20, 80 })
        {
            string id = $"transport/far-{rttMs}ms-frost-secp256k1-{t}-of-{n}";
            if (!ctx.Begin(id))
            {
                continue;
            }

            var proxies = new List<DelayProxy>();
            try
            {
                ClusterManifest far = ClusterManifest.Load(nodes.Layout.ManifestPath);
                foreach (ClusterNode node in far.Nodes)
                {
                    ListenEndpoint ep = ListenEndpoint.Parse(node.Address);
                    var proxy = new DelayProxy(new System.Net.IPEndPoint(System.Net.IPAddress.Parse(ep.Host == "localhost" ? "127.0.0.1" : ep.Host), ep.Port), TimeSpan.FromMilliseconds(rttMs / 2.0));
                    proxies.Add(proxy);
                    node.Address = proxy.Address;
                }

                using Cluster cluster = LocalClusterProcesses.CreateCoordinator(nodes.ServerConfig, far);
                NodeClient first = cluster.Node(far.Nodes[0].Id);
                Latency step = await ctx.Sampler.SequentialAsync(() => SignedStepAsync(cluster, first, TimeSpan.FromSeconds(30), cancellationToken)).ConfigureAwait(false);

                var frost = new FrostCoordinator(cluster) { Runs = new InMemoryRotationLog() };
                long started = Stopwatch.GetTimestamp();
                FrostKeyInfo key = await frost.CreateKeyAsync("far-" + rttMs + "-" + Guid.NewGuid().ToString("N")[..8], FrostCiphersuite.Secp256k1Sha256, t,
                    [.. far.Nodes.Select(x => x.Id).Order().Take(n)], cancellationToken).ConfigureAwait(false);
                double keygenMs = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                byte[] message = [];
                FrostSignature? last = null;
                Latency sign = await ctx.Sampler.SequentialAsync(async () =>
                {
                    message = RandomNumberGenerator.GetBytes(32);
                    last = await frost.SignAsync(key.KeyId, message, [], cancellationToken).ConfigureAwait(false);
                }).ConfigureAwait(false);
                if (last is null || !FrostCiphersuite.Secp256k1Sha256.Verify(last.VerificationKey, message, last.Signature))
                {
                    throw new InvalidOperationException($"{id}: the last signature does not verify");
                }

                ctx.Add(new BenchRow
                {
                    Id = id, Family = "transport", Scheme = "frost-secp256k1", Shape = $"{t}-of-{n}", Where = "cluster-far", KeyGenerationMs = keygenMs, Sign = sign,
                    SecurityProfile = "-",
                    Note = string.Create(System.Globalization.CultureInfo.InvariantCulture,
                        $"every coordinator-node link delayed to a {rttMs} ms round trip (a proxy on loopback); one signed step to one node p50 {step.P50Us / 1000:F1} ms; key generation is the DKG (commit, reveal, round two, confirmations); signing uses pooled nonces, one round to {t} nodes, without the REST layer, store or audit log"),
                });
            }
            finally
            {
                foreach (DelayProxy p in proxies)
                {
                    await p.DisposeAsync().ConfigureAwait(false);
                }
            }
        }
    }

    /// <summary>
    /// The signed step the transport rows time: an attestation with a fresh challenge (the coordinator signs the request,
    /// the node verifies it and signs its reply, the coordinator verifies that).
    /// </summary>
    private static async Task SignedStepAsync(Cluster cluster, NodeClient node, TimeSpan timeout, CancellationToken cancellationToken)
    {
        Envelope req = cluster.Request(Cluster.NewSessionId(), AttestHandler.RequestKind, 0, [node.Id], RandomNumberGenerator.GetBytes(32));
        _ = await node.StepAsync(req, [], timeout, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Label of the key <see cref="MeasurePolicyWithVelocityAsync"/> signs with; the bench policy's velocity rule names it.</summary>
    private const string VelocityLabel = "bench:velocity";

    /// <summary>Agent rules in the bench policy beside the starter rules, so decisions read an index of a realistic size.</summary>
    private const int BenchPolicyAgentRules = 1_000;

    /// <summary>
    /// The policy the benchmark cluster starts with (server.json starterPolicy): the development cluster's starter rules
    /// (the admin signs with any key), a rule that also lets the admin sign with keys labelled <see cref="VelocityLabel"/>
    /// under a velocity limit (a reservation in the store per signature, as an agent's limits make), and
    /// <see cref="BenchPolicyAgentRules"/> agent rules, one venue each, that no benchmark request matches.
    /// </summary>
    private static async Task<string> WriteBenchPolicyAsync(LocalClusterLayout layout, CancellationToken cancellationToken)
    {
        JsonObject policy = JsonNode.Parse(LocalClusterLayout.StarterPolicyJson)!.AsObject();
        policy["id"] = "bench";
        JsonArray rules = policy["rules"]!.AsArray();
        rules.Add(JsonNode.Parse($$$"""
            {"id":"admin-velocity","effect":"allow","match":{"principals":["admin"],"operations":["raw-digest","message"],"labels":["{{{VelocityLabel}}}"]},
             "limits":{"velocity":[{"id":"per-minute","windowSeconds":60,"count":100000000,"scope":"principal"}]}}
            """));
        for (int i = 0; i < BenchPolicyAgentRules; i++)
        {
            rules.Add(JsonNode.Parse($$$$"""{"id":"agent-{{{{i:D4}}}}","effect":"allow","match":{"roles":["agent"],"operations":["liquidate"],"venues":["venue-{{{{i}}}}"]},"conditions":[{"arg":"amount","op":"lt","value":1000}],"limits":{"perTransaction":{"native":500}}}"""));
        }

        string path = Path.Combine(Path.GetDirectoryName(layout.ServerConfigPath)!, "bench-policy.json");
        await File.WriteAllTextAsync(path, policy.ToJsonString(), cancellationToken).ConfigureAwait(false);
        return path;
    }

    /// <summary>
    /// What policy adds to a signature through REST: <paramref name="sign"/> run sequentially for the row's budget while
    /// the server records how long each policy authorization took (decision, its audit entry, the velocity reservation;
    /// <see cref="ServerMetrics.PolicyTimes"/>); returns the signing latency and the policy part.
    /// </summary>
    private static async Task<(Latency Sign, Latency Policy)> SignTimingPolicyAsync(BenchContext ctx, ServerMetrics metrics, Func<Task> sign)
    {
        var times = new System.Collections.Concurrent.ConcurrentQueue<TimeSpan>();
        metrics.PolicyTimes = times;
        Latency latency;
        try
        {
            latency = await ctx.Sampler.SequentialAsync(sign).ConfigureAwait(false);
        }
        finally
        {
            metrics.PolicyTimes = null;
        }

        return (latency, Latency.From([.. times.Select(x => x.TotalMicroseconds)]));
    }

    private static void AddPolicyRow(BenchContext ctx, string id, string scheme, Latency policy, Latency sign, string what)
    {
        ctx.Add(new BenchRow
        {
            Id = id, Family = Comparison.PolicyFamily, Operation = "authorize (REST)", Scheme = scheme, Shape = "-", Where = "cluster-rest",
            Sign = policy, SecurityProfile = "-",
            Note = string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"{what}: the policy part of POST /v1/keys/{{name}}/sign timed inside the server (decision among the bench policy's {BenchPolicyAgentRules + 3} rules, its audit entry, the velocity reservation) for each of the row's sequential signatures, its warm-up included ({policy.Samples}); the signatures' own p50 was {Format.Duration(sign.P50Us)}"),
        });
    }

    /// <summary>A server-held ecdsa-secp256k1 key whose signatures reserve a velocity limit in the store (the bench policy's admin-velocity rule).</summary>
    private static async Task MeasurePolicyWithVelocityAsync(BenchContext ctx, HttpClient http, ServerMetrics metrics, CancellationToken cancellationToken)
    {
        const string id = "policy/rest-velocity-ecdsa-secp256k1";
        if (!ctx.Begin(id, alsoWith: "ecdsa-secp256k1"))
        {
            return;
        }

        string name = "bench-velocity-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3));
        string create = $$$"""{"name":"{{{name}}}","scheme":"ecdsa-secp256k1","labels":{"bench":"velocity"}}""";
        using (HttpResponseMessage created = await http.PostAsync(new Uri("/v1/keys", UriKind.Relative), Json(create), cancellationToken).ConfigureAwait(false))
        {
            if (!created.IsSuccessStatusCode)
            {
                throw new BenchFailedException($"creating the velocity-limited key failed: {(int)created.StatusCode} {await created.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false)}");
            }
        }

        var signer = new RestSigner(http, name, SignBody("ecdsa-secp256k1", SHA256.HashData(Encoding.UTF8.GetBytes(name))), "a velocity-limited signature", cancellationToken);
        await signer.SignAsync().ConfigureAwait(false);
        if (signer.Last?["policy"]?["rules"] is not JsonArray rules || !rules.Any(r => r?.GetValue<string>().Contains("admin-velocity", StringComparison.Ordinal) == true))
        {
            throw new BenchFailedException("a velocity-limited signature was not granted by the bench policy's velocity rule; no figures are reported for it");
        }

        (Latency sign, Latency policy) = await SignTimingPolicyAsync(ctx, metrics, signer.SignAsync).ConfigureAwait(false);
        AddPolicyRow(ctx, id, "ecdsa-secp256k1", policy, sign, "server-held key under a velocity limit");

        // What the limit adds, paired: a signature with an unlimited key of the same scheme and one with the limited key,
        // one right after the other (the order alternating), so the machine's drift between rows cancels; the row is the
        // distribution of the differences (limited minus unlimited; a difference can be negative).
        const string addedId = "policy/rest-velocity-added-ecdsa-secp256k1";
        if (!ctx.Begin(addedId, alsoWith: "ecdsa-secp256k1"))
        {
            return;
        }

        string plainName = "bench-unlimited-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3));
        _ = await CreateKeyAsync(http, plainName, "ecdsa-secp256k1", n: 0, t: 0, cancellationToken).ConfigureAwait(false); // a server-held key: no quorum

        var plain = new RestSigner(http, plainName, SignBody("ecdsa-secp256k1", SHA256.HashData(Encoding.UTF8.GetBytes(plainName))), "an unlimited signature", cancellationToken);
        var differences = new List<double>();
        long pairs = 0;
        async Task PairAsync()
        {
            bool limitedFirst = (pairs++ & 1) == 1;
            double limited = 0, unlimited = 0;
            for (int k = 0; k < 2; k++)
            {
                long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
                bool isLimited = (k == 0) == limitedFirst;
                await (isLimited ? signer : plain).SignAsync().ConfigureAwait(false);
                double us = System.Diagnostics.Stopwatch.GetElapsedTime(t0).TotalMicroseconds;
                (limited, unlimited) = isLimited ? (us, unlimited) : (limited, us);
            }

            differences.Add(limited - unlimited);
        }

        _ = await ctx.Sampler.SequentialAsync(PairAsync).ConfigureAwait(false);
        Latency added = Latency.From(differences);
        ctx.Add(new BenchRow
        {
            Id = addedId, Family = Comparison.PolicyFamily, Operation = "velocity limit (REST)", Scheme = "ecdsa-secp256k1", Shape = "-", Where = "cluster-rest",
            Sign = added, SecurityProfile = "-",
            Note = string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"what a velocity limit adds to POST /v1/keys/{{name}}/sign: {added.Samples} pairs of sequential signatures, one with an unlimited server-held key and one with a velocity-limited one, back to back, order alternating; the figures are the distribution of the differences (limited minus unlimited), warm-up included"),
        });
    }

    /// <summary>Items per <c>sign/batch</c> request in the batch rows: the route's maximum.</summary>
    private const int BatchItems = 256;

    /// <summary>Batches in flight for the batch rows' throughput figure.</summary>
    private const int BatchesInFlight = 4;

    /// <summary>
    /// <c>POST /v1/keys/{name}/sign/batch</c> with <see cref="BatchItems"/> distinct messages per request (issue 18's
    /// batch target): the latency of one batch, one at a time, and signatures per second with
    /// <see cref="BatchesInFlight"/> batches in flight. Every item of the last batch must carry a result, and its first
    /// signature must verify.
    /// </summary>
    private static async Task MeasureBatchAsync(BenchContext ctx, HttpClient http, LocalClusterProcesses nodes, FrostCoordinator coordinator, int n, int t, string scheme,
        CancellationToken cancellationToken)
    {
        string id = $"{scheme}/cluster-batch-{BatchItems}-{t}-of-{n}";
        if (!ctx.Begin(id, alsoWith: scheme))
        {
            return;
        }

        bool threshold = IsThreshold(scheme, out FrostScheme? frost);
        string name = "bench-batch-" + scheme + "-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3));
        JsonNode key = await CreateKeyAsync(http, name, scheme, n, t, cancellationToken).ConfigureAwait(false);
        byte[][] messages = [.. Enumerable.Range(0, BatchItems).Select(i => SHA256.HashData(Encoding.UTF8.GetBytes(name + "/" + i)))];
        string body = "{\"items\":[" + string.Join(",", messages.Select(m => SignBody(scheme, m))) + "]}";
        JsonNode? last = null;
        async Task BatchAsync()
        {
            using HttpResponseMessage r = await http.PostAsync(new Uri($"/v1/keys/{name}/sign/batch", UriKind.Relative), Json(body), cancellationToken).ConfigureAwait(false);
            string text = await r.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            if (!r.IsSuccessStatusCode)
            {
                throw new BenchFailedException($"a {scheme} batch failed: {(int)r.StatusCode} {text}");
            }

            last = JsonNode.Parse(text);
        }

        Latency batch = await ctx.Sampler.SequentialAsync(BatchAsync).ConfigureAwait(false);
        var cpu = CpuClock.Start(nodes, n, coordinator);
        double batchesPerSecond = await ctx.Sampler.ConcurrentAsync(BatchAsync, BatchesInFlight).ConfigureAwait(false);
        double cpuPerSignature = cpu.PerSignature(batchesPerSecond * BatchItems);
        string coalesced = cpu.CoalescingNote();
        JsonArray results = last?["results"]?.AsArray() ?? throw new BenchFailedException($"a {scheme} batch answered no results");
        if (results.Count != BatchItems || results.Any(x => x?["result"] is null))
        {
            string errors = string.Join("; ", results.Select(x => x?["error"]).OfType<JsonNode>()
                .Select(e => $"{e["title"]?.GetValue<string>()}: {e["detail"]?.GetValue<string>()}").Distinct().Take(3));
            throw new BenchFailedException($"a {scheme} batch did not sign every item: {results.Count(x => x?["result"] is not null)} of {BatchItems} ({errors})");
        }

        JsonNode first = results[0]!["result"]!;
        byte[] signature = Convert.FromHexString(first["signature"]!.GetValue<string>());
        byte[] publicKey = Convert.FromHexString((first["outputKey"] ?? first["publicKey"] ?? key["publicKey"])!.GetValue<string>());
        if (!Verifier(scheme, frost, first["outputKey"] is not null, publicKey, messages[0], signature)())
        {
            throw new BenchFailedException($"a {scheme} batch signature did not verify; no figures are reported for it");
        }

        double sequentialPerSecond = batch.MeanUs > 0 ? BatchItems * 1e6 / batch.MeanUs : 0;
        ctx.Add(new BenchRow
        {
            Id = id, Family = threshold ? "mpc" : "single-key", Operation = $"sign/batch {BatchItems}", Scheme = scheme, Shape = threshold ? $"{t}-of-{n}" : "1-of-1",
            Where = "cluster-rest", Sign = batch, ConcurrentPerSecond = batchesPerSecond * BatchItems, Concurrency = BatchesInFlight, SignatureBytes = signature.Length,
            CpuUsPerSignature = cpuPerSignature,
            SecurityProfile = "-",
            Note = string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"POST /v1/keys/{{name}}/sign/batch with {BatchItems} distinct messages per request: the latency is one whole batch; {sequentialPerSecond:N0} signatures per second one batch at a time, the throughput column with {BatchesInFlight} batches in flight (signatures per second){coalesced}"),
        });
    }

    private static async Task MeasureSchemeAsync(BenchContext ctx, HttpClient http, Cluster cluster, ServerMetrics metrics, LocalClusterProcesses nodes, FrostCoordinator coordinator, int n, int t, string scheme,
        CancellationToken cancellationToken)
    {
        string id = $"{scheme}/cluster-{t}-of-{n}";
        if (!ctx.Begin(id))
        {
            return;
        }

        bool threshold = IsThreshold(scheme, out FrostScheme? frost);
        string name = "bench-" + scheme + "-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3));
        long t0 = Stopwatch.GetTimestamp();
        await CreateKeyAsync(http, name, scheme, n, t, cancellationToken).ConfigureAwait(false);
        double keygenMs = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        byte[] message = SHA256.HashData(Encoding.UTF8.GetBytes(name));
        var signer = new RestSigner(http, name, SignBody(scheme, message), $"signing with {scheme}", cancellationToken);

        // Bytes per signature: exactly BytesSample sequential signatures between two readings of the counters.
        const int BytesSample = 20;
        await signer.SignAsync().ConfigureAwait(false);
        long nodeBytesBefore = NodeBytes(cluster, n);
        long[] sentBefore = SentByNode(cluster, n);
        long restBefore = signer.RestBytes;
        for (int i = 0; i < BytesSample; i++)
        {
            await signer.SignAsync().ConfigureAwait(false);
        }

        double nodeBytesPerSignature = (NodeBytes(cluster, n) - nodeBytesBefore) / (double)BytesSample;
        double partyBytesPerSignature = SentPerSignerPerSignature(sentBefore, SentByNode(cluster, n), BytesSample, t);
        double restBytesPerSignature = (signer.RestBytes - restBefore) / (double)BytesSample;
        (Latency sign, Latency policyPart) = await SignTimingPolicyAsync(ctx, metrics, signer.SignAsync).ConfigureAwait(false);
        var cpu = CpuClock.Start(nodes, n, coordinator);
        double concurrent = await ctx.Sampler.ConcurrentAsync(signer.SignAsync, ctx.Settings.Concurrency).ConfigureAwait(false);
        double cpuPerSignature = cpu.PerSignature(concurrent);
        string coalesced = cpu.CoalescingNote($" with {ctx.Settings.Concurrency} in flight");

        // Every figure is for signatures that verify: check the last one, and time verification in process.
        JsonNode last = signer.Last!;
        byte[] signature = Convert.FromHexString(last["signature"]!.GetValue<string>());
        byte[] publicKey = Convert.FromHexString((last["outputKey"] ?? last["publicKey"])!.GetValue<string>());
        Func<bool> verify = Verifier(scheme, frost, last["outputKey"] is not null, publicKey, message, signature);
        if (!verify())
        {
            throw new BenchFailedException($"a {scheme} signature from the cluster did not verify; no figures are reported for it");
        }

        Latency verifyLatency = ctx.Sampler.Sequential(() => verify());
        ctx.Add(new BenchRow
        {
            Id = id, Family = threshold ? "mpc" : "single-key", Scheme = scheme, Shape = threshold ? $"{t}-of-{n}" : "1-of-1", Where = "cluster-rest",
            KeyGenerationMs = keygenMs, Sign = sign, ConcurrentPerSecond = concurrent, Concurrency = ctx.Settings.Concurrency,
            VerifyUs = verifyLatency.P50Us, SignatureBytes = signature.Length, CpuUsPerSignature = cpuPerSignature,
            NodeBytesPerSignature = threshold ? nodeBytesPerSignature : null, PartyBytesPerSignature = threshold ? partyBytesPerSignature : null,
            RestBytesPerSignature = restBytesPerSignature,
            SecurityProfile = threshold
                ? $"{t} of the {n} signer nodes (each holds one share under its own key-encryption key); the server holds no share"
                : "the server (its store's key-encryption key and the host it runs on)",
            Note = threshold
                ? scheme == Dkls
                    ? "POST /v1/keys/{name}/sign through the server and the node processes, the three DKLs23 rounds per signature (this server runs without a presignature pool), after a warm-up of three-round signatures with a throw-away DKLs23 key; key generation = FROST DKG plus the pairwise OT setup through the API"
                    : "POST /v1/keys/{name}/sign through the server and the node processes; key generation = DKG through the API" + coalesced
                : "server-held key through the same REST path and durable audit",
        });
        AddPolicyRow(ctx, $"policy/rest-{scheme}-{(threshold ? $"{t}-of-{n}" : "server-held")}", scheme, policyPart, sign, "admin under the starter rules");

        // Rotation rows for every threshold key, FROST and DKLs23 (signing an ecdsa-dkls23 key while refreshes run back
        // to back: DklsApiTests.SigningWhileRefreshesRunBackToBack_EverySignatureSucceeds).
        if (threshold)
        {
            await MeasureRotationAsync(ctx, http, name, n, t, scheme, signer.SignAsync, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The presignature pool of the presigned row, sized from the time budget (100 per second of --duration, 16 to 512): the pool is
    /// filled three times over before timing (one batch is signed untimed, as a warm-up), so the at most <c>pool</c>
    /// signatures timed all come from it and none of them starts a refill (a pool is refilled when it falls below its size).
    /// </summary>
    internal static int PresignedPoolSize(TimeSpan budget) => 2 * (int)Math.Clamp(Math.Ceiling(budget.TotalSeconds * 50), 8, 256);

    /// <summary>
    /// Online DKLs23 signing from the presignature pool through <c>POST /v1/keys/{name}/sign</c> (docs/DKLS23.md
    /// "Presignature pool"): a key made through the API, its pool filled by the coordinator (three batches of
    /// <paramref name="pool"/> presignatures, the first timed: presign time per presignature with the coordinator's
    /// <see cref="DklsCoordinator.PresignParallelism"/> sessions at a time and nothing else running), one batch signed
    /// untimed (the warm-up of the online round's paths), then half a batch signed one at a time and the rest with the
    /// row's concurrency, its CPU per signature and the halves per node online step measured. Every timed signature must have used a presignature
    /// (<see cref="DklsCoordinator.PresignedSignatures"/>), and the last one must verify, or the row is not reported.
    /// </summary>
    private static async Task MeasurePresignedAsync(BenchContext ctx, HttpClient http, DklsCoordinator dkls, Cluster cluster, LocalClusterProcesses nodes,
        int n, int t, string id, int pool, CancellationToken cancellationToken)
    {
        string name = "bench-presigned-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3));
        string keyId = (await CreateKeyAsync(http, name, Dkls, n, t, cancellationToken).ConfigureAwait(false))["id"]!.GetValue<string>();
        long t0 = Stopwatch.GetTimestamp();
        await dkls.PresignAsync(keyId, [], cancellationToken).ConfigureAwait(false);
        double presignMs = Stopwatch.GetElapsedTime(t0).TotalMilliseconds / pool;
        await dkls.PresignAsync(keyId, [], cancellationToken).ConfigureAwait(false);
        await dkls.PresignAsync(keyId, [], cancellationToken).ConfigureAwait(false);
        if (dkls.PresignDepth(keyId, []) < 3 * pool)
        {
            throw new BenchFailedException($"the presignature pool of the {Dkls} key holds {dkls.PresignDepth(keyId, [])} presignatures, not {3 * pool}");
        }

        byte[] message = SHA256.HashData(Encoding.UTF8.GetBytes(name));
        var signer = new RestSigner(http, name, SignBody(Dkls, message), $"presigned signing with {Dkls}", cancellationToken);

        // Warm-up (a measurement fix, issue 15): the online round's paths (the server's presigned path and combine, the
        // nodes' dkls.presign.sign handler) run for the first time in this row; one batch of the pool is signed untimed,
        // a quarter of the row's concurrency at a time, so the timed signatures do not run while they tier up.
        int warm = 0;
        var warmSigner = new RestSigner(http, name, SignBody(Dkls, message), $"a warm-up presigned {Dkls} signature", cancellationToken);
        await Task.WhenAll(Enumerable.Range(0, Math.Max(1, ctx.Settings.Concurrency / 4)).Select(_ => Task.Run(async () =>
        {
            while (Interlocked.Increment(ref warm) <= pool)
            {
                await warmSigner.SignAsync().ConfigureAwait(false);
            }
        }, cancellationToken))).ConfigureAwait(false);

        int sequential = pool / 2, concurrent = pool - sequential - 1;
        long presignedBefore = dkls.PresignedSignatures;
        long nodeBytesBefore = NodeBytes(cluster, n);
        long[] sentBefore = SentByNode(cluster, n);
        await signer.SignAsync().ConfigureAwait(false); // not timed: the wire bytes of exactly one presigned signature
        double nodeBytesPerSignature = NodeBytes(cluster, n) - nodeBytesBefore;
        double partyBytesPerSignature = SentPerSignerPerSignature(sentBefore, SentByNode(cluster, n), 1, t);
        double restBytesPerSignature = signer.RestBytes;
        var samples = new List<double>(sequential);
        for (int i = 0; i < sequential; i++)
        {
            long s0 = Stopwatch.GetTimestamp();
            await signer.SignAsync().ConfigureAwait(false);
            samples.Add(Stopwatch.GetElapsedTime(s0).TotalMicroseconds);
        }

        int next = 0;
        var cpu = CpuClock.Start(nodes, n, () => dkls.PresignSteps, "presigned halves per node online step");
        long c0 = Stopwatch.GetTimestamp();
        await Task.WhenAll(Enumerable.Range(0, Math.Min(ctx.Settings.Concurrency, concurrent)).Select(_ => Task.Run(async () =>
        {
            while (Interlocked.Increment(ref next) <= concurrent)
            {
                await signer.SignAsync().ConfigureAwait(false);
            }
        }, cancellationToken))).ConfigureAwait(false);
        double perSecond = concurrent / Stopwatch.GetElapsedTime(c0).TotalSeconds;
        double cpuPerSignature = cpu.PerSignature(perSecond);
        string coalesced = cpu.CoalescingNote($" with {Math.Min(ctx.Settings.Concurrency, concurrent)} in flight");
        long presigned = dkls.PresignedSignatures - presignedBefore;
        if (presigned != 1 + sequential + concurrent)
        {
            throw new BenchFailedException($"only {presigned} of {1 + sequential + concurrent} signatures of the presigned row used a presignature; no figures are reported for it");
        }

        byte[] signature = Convert.FromHexString(signer.Last!["signature"]!.GetValue<string>());
        byte[] publicKey = Convert.FromHexString(signer.Last["publicKey"]!.GetValue<string>());
        Func<bool> verify = Verifier(Dkls, null, false, publicKey, message, signature);
        if (!verify())
        {
            throw new BenchFailedException($"a presigned {Dkls} signature from the cluster did not verify; no figures are reported for it");
        }

        ctx.Add(new BenchRow
        {
            Id = id, Family = "mpc", Operation = "sign-presigned", Scheme = Dkls, Shape = $"{t}-of-{n}", Where = "cluster-rest",
            Sign = Latency.From(samples), ConcurrentPerSecond = perSecond, Concurrency = Math.Min(ctx.Settings.Concurrency, concurrent),
            VerifyUs = ctx.Sampler.Sequential(() => verify()).P50Us, SignatureBytes = signature.Length, PresignMs = presignMs, CpuUsPerSignature = cpuPerSignature,
            NodeBytesPerSignature = nodeBytesPerSignature, PartyBytesPerSignature = partyBytesPerSignature, RestBytesPerSignature = restBytesPerSignature,
            SecurityProfile = $"{t} of the {n} signer nodes (each holds one share under its own key-encryption key); the server holds no share",
            Note = string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"POST /v1/keys/{{name}}/sign answered from the presignature pool (dklsPresignPoolSize {pool}): one online round to t nodes; {sequential} signatures one at a time, {concurrent} concurrently, every one from a presignature; presigning (rounds 1-3 ahead of time, in the background) took {presignMs:N1} ms per presignature; {pool} presigned signatures made untimed first (warm-up){coalesced}"),
        });
    }

    /// <summary>
    /// Rotation of the key just measured (issue 13's figures): refresh and reshare latency through the API (each a
    /// crash-safe rotation run, docs/ROTATION.md), and signing latency while refreshes of the same key run back to back.
    /// Rows of family <see cref="Comparison.RotationFamily"/>, wanted with <c>--schemes …,rotation</c> (or no filter).
    /// </summary>
    private static async Task MeasureRotationAsync(BenchContext ctx, HttpClient http, string name, int n, int t, string scheme,
        Func<Task> sign, CancellationToken cancellationToken)
    {
        string shape = $"{t}-of-{n}";
        string profile = $"{t} of the {n} signer nodes; the server holds no share";
        var refresh = new Uri($"/v1/keys/{name}/refresh", UriKind.Relative);
        var reshare = new Uri($"/v1/keys/{name}/reshare", UriKind.Relative);
        string reshareBody = $$"""{"threshold":{{t}},"participants":{{n}}}""";
        Task RefreshAsync() => RotateAsync(http, refresh, "{}", "refresh", scheme, cancellationToken);
        Task ReshareAsync() => RotateAsync(http, reshare, reshareBody, "reshare", scheme, cancellationToken);

        foreach ((string operation, Func<Task> run, string note) in new (string, Func<Task>, string)[]
        {
            ("refresh", RefreshAsync, "POST /v1/keys/{name}/refresh: new shares of the same key on every node, old version erased"),
            ("reshare", ReshareAsync, $"POST /v1/keys/{{name}}/reshare to {shape} on the same nodes: a DKG of the existing key's shares"),
        })
        {
            string id = $"rotation/{scheme}/{operation}-{shape}";
            if (ctx.Begin(id))
            {
                Latency latency = await ctx.Sampler.SequentialAsync(run).ConfigureAwait(false);
                ctx.Add(new BenchRow
                {
                    Id = id, Family = Comparison.RotationFamily, Operation = operation, Scheme = scheme, Shape = shape, Where = "cluster-rest",
                    Sign = latency, SecurityProfile = profile, Note = note,
                });
            }
        }

        string during = $"rotation/{scheme}/sign-during-refresh-{shape}";
        if (!ctx.Begin(during))
        {
            return;
        }

        // Refreshes back to back in the background while signatures are timed; a refresh in flight when sampling ends is
        // let finish (never cancelled part-way) before the row is written.
        using var stop = new CancellationTokenSource();
        int refreshes = 0;
        Task background = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                await RefreshAsync().ConfigureAwait(false);
                Interlocked.Increment(ref refreshes);
            }
        }, CancellationToken.None);
        Latency signing;
        try
        {
            signing = await ctx.Sampler.SequentialAsync(sign).ConfigureAwait(false);
        }
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false);
            await background.ConfigureAwait(false);
        }

        ctx.Add(new BenchRow
        {
            Id = during, Family = Comparison.RotationFamily, Operation = "sign-during-refresh", Scheme = scheme, Shape = shape, Where = "cluster-rest",
            Sign = signing, SecurityProfile = profile,
            Note = $"POST /v1/keys/{{name}}/sign while {refreshes} refreshes of the same key ran back to back",
        });
    }

    /// <summary>One refresh or reshare: 200 with the key, or 202 with the run, polled until it committed.</summary>
    private static async Task RotateAsync(HttpClient http, Uri route, string body, string operation, string scheme, CancellationToken cancellationToken)
    {
        using HttpResponseMessage r = await http.PostAsync(route, Json(body), cancellationToken).ConfigureAwait(false);
        string text = await r.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        if (r.StatusCode == System.Net.HttpStatusCode.OK)
        {
            return;
        }

        if (r.StatusCode != System.Net.HttpStatusCode.Accepted || r.Headers.Location is null)
        {
            throw new BenchFailedException($"{operation} of a {scheme} key failed: {(int)r.StatusCode} {text}");
        }

        long deadline = Stopwatch.GetTimestamp() + 120 * Stopwatch.Frequency;
        while (Stopwatch.GetTimestamp() < deadline)
        {
            using HttpResponseMessage poll = await http.GetAsync(r.Headers.Location, cancellationToken).ConfigureAwait(false);
            JsonNode? run = JsonNode.Parse(await poll.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false));
            string? state = run?["state"]?.GetValue<string>();
            if (run?["key"] is not null)
            {
                return;
            }

            if (state is "aborted")
            {
                throw new BenchFailedException($"{operation} of a {scheme} key was aborted: {run?["error"]}");
            }

            await Task.Delay(20, cancellationToken).ConfigureAwait(false);
        }

        throw new BenchFailedException($"{operation} of a {scheme} key did not finish within 120 s");
    }

    /// <summary>The protocol bytes each node 1..n has sent so far (its step replies).</summary>
    private static long[] SentByNode(Cluster cluster, int n) => [.. Enumerable.Range(1, n).Select(i => cluster.Node((uint)i).BytesReceived)];

    /// <summary>
    /// What a signing party sends per signature: the nodes' bytes between two readings of <see cref="SentByNode"/> over
    /// the <paramref name="threshold"/> signers of each of the <paramref name="signatures"/> (signer sets vary, so a
    /// per-node figure would spread one party's bytes over signatures it was not in).
    /// </summary>
    private static double SentPerSignerPerSignature(long[] before, long[] after, int signatures, int threshold) =>
        before.Zip(after, (b, a) => a - b).Sum() / (double)(signatures * threshold);

    private static long NodeBytes(Cluster cluster, int n)
    {
        long total = 0;
        for (uint i = 1; i <= n; i++)
        {
            NodeClient c = cluster.Node(i);
            total += c.BytesSent + c.BytesReceived;
        }

        return total;
    }

    private static Func<bool> Verifier(string scheme, FrostScheme? frost, bool outputKey, byte[] publicKey, byte[] message, byte[] signature)
    {
        if (outputKey)
        {
            return () => SignatureSchemes.SchnorrBip340.Verify(publicKey, message, signature);
        }

        if (frost is not null)
        {
            return () => frost.Suite.Verify(publicKey, message, signature);
        }

        if (scheme == Dkls)
        {
            return () => SignatureSchemes.EcdsaSecp256k1.Verify(publicKey, message, signature);
        }

        if (SignatureSchemes.TryGet(scheme, out SoftwareSignatureScheme? single))
        {
            return () => single!.Verify(publicKey, message, signature);
        }

        throw new BenchFailedException($"no verifier for {scheme}");
    }

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");
}
