using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;
using Conclave.Crypto.Signing;
using Conclave.Server.Coordinator;
using Conclave.Server.Hosting;
using Conclave.Threshold.Frost;
using Conclave.Threshold.Frost.Ciphersuites;

namespace Conclave.Benchmarks.Cluster;

/// <summary>
/// FROST through a real 2-of-3 cluster on loopback: three `conclave node run` processes, gRPC over HTTP/2 with
/// mutual TLS, signed envelopes, and the coordinator in this process (no REST layer). Measures DKG and refresh
/// time, sequential signing latency (p50, p99) and concurrent throughput, each against the same-run baseline:
/// single-key libsecp256k1 ECDSA signing in-process. Prints a table and writes JSON.
/// </summary>
internal static class ClusterBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        int sequential = ArgInt(args, "--signatures", 2000);
        int seconds = ArgInt(args, "--seconds", 10);
        int concurrency = ArgInt(args, "--concurrency", 16);
        string? jsonPath = ArgString(args, "--json");
        string cliDll = FindCliDll();

        double baselineUs = Baseline();
        Console.WriteLine($"baseline: ecdsa-secp256k1 sign (libsecp256k1, in-process) {baselineUs:F1} µs");
        using var cluster = new LocalClusterProcesses(cliDll, 3, 2);
        var results = new List<Row>();
        foreach (FrostCiphersuite suite in FrostCiphersuite.All)
        {
            var coordinator = new FrostCoordinator(cluster.Coordinator) { PoolBatch = 512, PoolLowWater = 256 };
            var sw = Stopwatch.StartNew();
            FrostKeyInfo key = await coordinator.CreateKeyAsync("bench-" + suite.SchemeName, suite, 2, [1, 2, 3], CancellationToken.None);
            double dkgMs = sw.Elapsed.TotalMilliseconds;
            sw.Restart();
            key = await coordinator.RefreshAsync(key.KeyId, CancellationToken.None);
            double refreshMs = sw.Elapsed.TotalMilliseconds;

            // Fill the pools, warm up.
            foreach (uint n in key.Nodes)
            {
                await coordinator.RefillAsync(key, n, CancellationToken.None);
            }

            byte[] msg = RandomNumberGenerator.GetBytes(32);
            for (int i = 0; i < 300; i++)
            {
                _ = await coordinator.SignAsync(key.KeyId, msg, CancellationToken.None);
            }

            (double p50, double p99, double perSecond) = await MeasureAsync(() => coordinator.SignAsync(key.KeyId, msg, CancellationToken.None), sequential, concurrency, seconds);
            var row = new Row(suite.SchemeName, dkgMs, refreshMs, p50, p99, perSecond, baselineUs);
            results.Add(row);
            Console.WriteLine($"{row.Scheme,-16} DKG {row.DkgMs,7:F1} ms  refresh {row.RefreshMs,7:F1} ms  sign p50 {row.P50Ms,6:F2} ms  p99 {row.P99Ms,6:F2} ms  " +
                $"{row.SignaturesPerSecond,7:F0} sig/s ({concurrency} in flight)  p50 = {row.P50Ms * 1000 / baselineUs:F0}× baseline");
        }

        if (jsonPath is not null)
        {
            await File.WriteAllTextAsync(jsonPath, JsonSerializer.Serialize(new { machine = Environment.MachineName, cores = Environment.ProcessorCount, baselineUs, results }, new JsonSerializerOptions { WriteIndented = true }));
        }

        return 0;
    }

    /// <summary>Latency of <paramref name="op"/> run <paramref name="sequential"/> times one after another (p50, p99 in ms),
    /// then its throughput with <paramref name="concurrency"/> calls in flight for <paramref name="seconds"/>.</summary>
    internal static async Task<(double P50Ms, double P99Ms, double PerSecond)> MeasureAsync(Func<Task> op, int sequential, int concurrency, int seconds)
    {
        var lat = new double[sequential];
        for (int i = 0; i < sequential; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            await op();
            lat[i] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        }

        Array.Sort(lat);
        long done = 0;
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(seconds));
        var sw = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async _ =>
        {
            while (!stop.IsCancellationRequested)
            {
                await op();
                Interlocked.Increment(ref done);
            }
        }));
        return (lat[sequential / 2], lat[(int)(sequential * 0.99)], done / sw.Elapsed.TotalSeconds);
    }

    private sealed record Row(string Scheme, double DkgMs, double RefreshMs, double P50Ms, double P99Ms, double SignaturesPerSecond, double BaselineUs);

    internal static double Baseline()
    {
        using SoftwareSigningKey key = SignatureSchemes.EcdsaSecp256k1.GenerateKey();
        byte[] digest = SHA256.HashData([1, 2, 3]);
        for (int i = 0; i < 2000; i++)
        {
            _ = key.Sign(digest);
        }

        const int n = 20000;
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < n; i++)
        {
            _ = key.Sign(digest);
        }

        return sw.Elapsed.TotalMicroseconds / n;
    }

    internal static string FindCliDll()
    {
        string? dir = AppContext.BaseDirectory;
        while (dir is not null && !File.Exists(Path.Combine(dir, "Conclave.slnx")))
        {
            dir = Path.GetDirectoryName(dir);
        }

        string config = AppContext.BaseDirectory.Contains("/Release/", StringComparison.Ordinal) ? "Release" : "Debug";
        string path = Path.Combine(dir ?? ".", "src", "Conclave.Cli", "bin", config, "net10.0", "conclave.dll");
        return File.Exists(path) ? path : throw new FileNotFoundException("build the solution first", path);
    }

    internal static int ArgInt(string[] args, string name, int fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length && int.TryParse(args[i + 1], System.Globalization.CultureInfo.InvariantCulture, out int v) ? v : fallback;
    }

    internal static string? ArgString(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }
}
