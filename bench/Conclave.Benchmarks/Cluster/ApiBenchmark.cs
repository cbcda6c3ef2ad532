using System.Diagnostics;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Conclave.Server.Config;
using Conclave.Server.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace Conclave.Benchmarks.Cluster;

/// <summary>
/// Signing through the REST API, as DESIGN.md's targets are stated: three `conclave node run` processes (2-of-3,
/// mutual TLS on loopback), the server (ServerHost, what `conclave up` runs, SQLite store, audit intent and outcome
/// entries) in this process, and an HttpClient with keep-alive connections also in this process — all on the same
/// two cores. For each scheme: sequential latency (p50, p99) of POST /v1/keys/{name}/sign and throughput with
/// --concurrency requests in flight, against the same-run baseline (single-key libsecp256k1 ECDSA in-process).
/// </summary>
internal static class ApiBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        int sequential = ClusterBenchmark.ArgInt(args, "--signatures", 2000);
        int seconds = ClusterBenchmark.ArgInt(args, "--seconds", 10);
        int concurrency = ClusterBenchmark.ArgInt(args, "--concurrency", 16);
        string? jsonPath = ClusterBenchmark.ArgString(args, "--json");
        string[] schemes = ClusterBenchmark.ArgString(args, "--schemes")?.Split(',') ?? ["frost-secp256k1", "frost-taproot", "frost-ed25519", "ecdsa-secp256k1", "ed25519"];

        double baselineUs = ClusterBenchmark.Baseline();
        Console.WriteLine($"baseline: ecdsa-secp256k1 sign (libsecp256k1, in-process) {baselineUs:F1} µs");
        using var nodes = new LocalClusterProcesses(ClusterBenchmark.FindCliDll(), 3, 2);
        ServerConfig config = ServerConfig.Load(nodes.Layout.ServerConfigPath);
        config.RateLimitPerSecond = 1_000_000;
        config.RateLimitBurst = 1_000_000;
        WebApplication app = await ServerHost.BuildAsync(config);
        await app.StartAsync();
        var results = new List<Row>();
        double transportP50Us;
        try
        {
            string token = (await File.ReadAllTextAsync(app.Services.GetRequiredService<ServerPaths>().AdminTokenFile)).Trim();
            using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = concurrency, PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5) })
            {
                BaseAddress = new Uri("http://" + config.Listen),
            };
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
            while (!(await http.GetAsync(new Uri("/readyz", UriKind.Relative))).IsSuccessStatusCode)
            {
                await Task.Delay(200);
            }

            // The transport floor: an empty gRPC call (GetInfo) to one node over mutual TLS, sequentially.
            {
                var node = nodes.Coordinator.Node(1);
                for (int i = 0; i < 500; i++)
                {
                    await node.GetInfoAsync(TimeSpan.FromSeconds(5), CancellationToken.None);
                }

                var rtt = new double[3000];
                for (int i = 0; i < rtt.Length; i++)
                {
                    long t0 = Stopwatch.GetTimestamp();
                    await node.GetInfoAsync(TimeSpan.FromSeconds(5), CancellationToken.None);
                    rtt[i] = Stopwatch.GetElapsedTime(t0).TotalMicroseconds;
                }

                Array.Sort(rtt);
                transportP50Us = rtt[rtt.Length / 2];
                Console.WriteLine($"transport: empty gRPC call to a node over mTLS, p50 {transportP50Us:F0} µs, p99 {rtt[(int)(rtt.Length * 0.99)]:F0} µs");
            }

            foreach (string scheme in schemes)
            {
                string name = "bench-" + scheme;
                using (HttpResponseMessage created = await http.PostAsync(new Uri("/v1/keys", UriKind.Relative), Json($$"""{"name":"{{name}}","scheme":"{{scheme}}"}""")))
                {
                    if (!created.IsSuccessStatusCode)
                    {
                        throw new InvalidOperationException($"creating {scheme}: {await created.Content.ReadAsStringAsync()}");
                    }
                }

                string body = scheme.StartsWith("ecdsa", StringComparison.Ordinal)
                    ? $$"""{"digest":"{{Convert.ToHexStringLower(SHA256.HashData([1]))}}"}"""
                    : $$"""{"message":"{{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32))}}"}""";
                var path = new Uri($"/v1/keys/{name}/sign", UriKind.Relative);
                for (int i = 0; i < 300; i++)
                {
                    await SignAsync(http, path, body);
                }

                (double p50, double p99, double perSecond) = await ClusterBenchmark.MeasureAsync(() => SignAsync(http, path, body), sequential, concurrency, seconds);
                var row = new Row(scheme, p50, p99, perSecond, baselineUs);
                results.Add(row);
                Console.WriteLine($"{row.Scheme,-16} REST sign p50 {row.P50Ms,6:F2} ms  p99 {row.P99Ms,6:F2} ms  {row.SignaturesPerSecond,7:F0} sig/s ({concurrency} in flight)  " +
                    $"p50 = {row.P50Ms * 1000 / baselineUs:F0}× baseline");
            }
        }
        finally
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }

        if (jsonPath is not null)
        {
            await File.WriteAllTextAsync(jsonPath, JsonSerializer.Serialize(new { machine = Environment.MachineName, cores = Environment.ProcessorCount, baselineUs, transportP50Us, concurrency, results }, new JsonSerializerOptions { WriteIndented = true }));
        }

        return 0;
    }

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    private static async Task SignAsync(HttpClient http, Uri path, string body)
    {
        using HttpResponseMessage r = await http.PostAsync(path, Json(body));
        if (!r.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"sign failed: {(int)r.StatusCode} {await r.Content.ReadAsStringAsync()}");
        }

        _ = JsonNode.Parse(await r.Content.ReadAsStringAsync())!["signature"];
    }

    private sealed record Row(string Scheme, double P50Ms, double P99Ms, double SignaturesPerSecond, double BaselineUs);
}
