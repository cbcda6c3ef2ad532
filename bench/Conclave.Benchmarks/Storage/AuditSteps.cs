using System.Diagnostics;
using System.Globalization;
using Conclave.Storage;
using Conclave.Storage.Audit;

namespace Conclave.Benchmarks.Storage;

/// <summary>
/// The audit commit a signing request waits for, one caller at a time, as a latency distribution with its tail: p50,
/// p99, p99.9 and the slowest, and how far apart the commits slower than 2 ms fall (a stall at a fixed number of commits
/// is the write-ahead log's checkpoint). Three entries per commit (the intent, the policy decision and the round entry a
/// FROST request commits together), with the store's checkpoint signer, as the server writes them.
/// A Stopwatch harness, not BenchmarkDotNet: the tail is the point.
/// Run: dotnet run -c Release --project bench/Conclave.Benchmarks -- audit [seconds] [sqlite|postgres]
/// </summary>
internal static class AuditSteps
{
    private static readonly AuditEntryInput[] Entries =
    [
        new("admin", "POST /v1/keys/{name}/sign", "key-perp-margin", new byte[32], "allow", "accepted"),
        new("admin", "policy.decide", "key-perp-margin", new byte[32], "allow", "{\"decision\":\"allow\",\"policyHash\":\"0000000000000000000000000000000000000000000000000000000000000000\"}"),
        new("coordinator", "frost.sign", "key-perp-margin", new byte[32], "allow", "{\"version\":1,\"session\":\"00000000000000000000000000000000\"}"),
    ];

    internal static async Task<int> RunAsync(string[] args)
    {
        double seconds = args.Length > 0 ? double.Parse(args[0], CultureInfo.InvariantCulture) : 10;
        string engine = args.Length > 1 ? args[1] : "sqlite";
        using Conclave.Crypto.Signing.SoftwareSigningKey signer = Conclave.Crypto.Signing.SignatureSchemes.Ed25519.GenerateKey();
        var options = new StoreOptions { CheckpointSigner = signer, CheckpointInterval = 1000 };
        await using HarnessStore harness = await HarnessStore.OpenAsync(engine, "conclave-audit-", options);
        IConclaveStore store = harness.Store;
        var samples = new List<double>();
        var slow = new List<int>();
        var clock = Stopwatch.StartNew();
        Console.WriteLine($"audit commit of {Entries.Length} entries, one at a time, {engine}, {seconds} s, load average {HarnessStore.LoadAverage()}");
        for (int i = 0; clock.Elapsed.TotalSeconds < seconds; i++)
        {
            long start = Stopwatch.GetTimestamp();
            await store.Audit.AppendAllAsync(Entries).ConfigureAwait(false);
            double us = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
            if (i >= 200)
            {
                samples.Add(us);
                if (us > 2_000)
                {
                    slow.Add(i);
                }
            }
        }

        var sorted = samples.Order().ToList();
        double P(double q) => sorted[Math.Min(sorted.Count - 1, (int)(sorted.Count * q))];
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"commits {sorted.Count}: p50 {P(0.5):F1} µs, p90 {P(0.9):F1}, p99 {P(0.99):F1}, p99.9 {P(0.999):F1}, max {sorted[^1]:F1}; slower than 2 ms: {slow.Count}"));
        if (slow.Count > 1)
        {
            var gaps = slow.Zip(slow.Skip(1), (a, b) => b - a).Order().ToList();
            Console.WriteLine($"commits between two slower than 2 ms: median {gaps[gaps.Count / 2]}, min {gaps[0]}, max {gaps[^1]}");
        }

        return 0;
    }
}
