using System.Diagnostics;
using System.Globalization;
using Conclave.Storage;
using Conclave.Storage.Audit;
using Conclave.Storage.Policy;

namespace Conclave.Benchmarks.Storage;

/// <summary>
/// What a velocity reservation adds to the one audit commit a limited signing request makes, at the storage level:
/// one caller, sequential, alternating the commit without a reservation (the intent and decision an unlimited request
/// writes) and the same entries with a reservation in the same transaction (<see cref="IPolicyCounterStore.TryReserveAndAppendAsync"/>),
/// so the machine's drift cancels in the paired differences. The counter's window is short (2 s) so entries leave it
/// during the run, as under steady traffic. A Stopwatch harness, not BenchmarkDotNet: one run prints a before/after-
/// comparable table in seconds on a loaded machine.
/// Run: dotnet run -c Release --project bench/Conclave.Benchmarks -- counters [seconds] [sqlite|postgres]
/// </summary>
internal static class CounterSteps
{
    private static readonly AuditEntryInput[] Entries =
    [
        new("agent-liquidator-1", "sign.accepted", "key-perp-margin", new byte[32], "accepted", "sign"),
        new("agent-liquidator-1", "policy.decide", "key-perp-margin", new byte[32], "allow", "{\"decision\":\"allow\"}"),
    ];

    internal static async Task<int> RunAsync(string[] args)
    {
        double seconds = args.Length > 0 ? double.Parse(args[0], CultureInfo.InvariantCulture) : 10;
        string engine = args.Length > 1 ? args[1] : "sqlite";
        await using HarnessStore harness = await HarnessStore.OpenAsync(engine, "conclave-counters-");
        IConclaveStore store = harness.Store;
        var limits = new CounterReservation[]
        {
            new("bench|velocity|" + Guid.NewGuid().ToString("N"), 2, 1m, 2_500m, 1, null, null, long.MaxValue),
        };
        var plain = new List<double>();
        var reserving = new List<double>();
        var added = new List<double>();
        var clock = Stopwatch.StartNew();
        Console.WriteLine($"velocity reservation in the audit commit, {engine}, {seconds} s, load average {HarnessStore.LoadAverage()}");
        for (int i = 0; clock.Elapsed.TotalSeconds < seconds; i++)
        {
            double a, b;
            if (i % 2 == 0)
            {
                a = await TimeAsync(() => store.Audit.AppendAllAsync(Entries));
                b = await TimeAsync(() => store.PolicyCounters.TryReserveAndAppendAsync(limits, DateTimeOffset.UtcNow, Entries));
            }
            else
            {
                b = await TimeAsync(() => store.PolicyCounters.TryReserveAndAppendAsync(limits, DateTimeOffset.UtcNow, Entries));
                a = await TimeAsync(() => store.Audit.AppendAllAsync(Entries));
            }

            if (i >= 200)
            {
                plain.Add(a);
                reserving.Add(b);
                added.Add(b - a);
            }
        }

        Console.WriteLine($"{"row",-44} {"p50 µs",10} {"p90 µs",10} {"samples",8}");
        Print("audit commit, intent + decision", plain);
        Print("the same with a reservation", reserving);
        Print("what the reservation adds (paired)", added);
        return 0;
    }

    private static async Task<double> TimeAsync(Func<Task> f)
    {
        long start = Stopwatch.GetTimestamp();
        await f().ConfigureAwait(false);
        return Stopwatch.GetElapsedTime(start).TotalMicroseconds;
    }

    private static void Print(string row, List<double> samples)
    {
        samples.Sort();
        Console.WriteLine($"{row,-44} {samples[samples.Count / 2],10:F1} {samples[samples.Count * 9 / 10],10:F1} {samples.Count,8}");
    }
}
