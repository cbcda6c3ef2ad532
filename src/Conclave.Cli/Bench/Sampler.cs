using System.Diagnostics;

namespace Conclave.Cli.Bench;

/// <summary>Latency percentiles of one operation, in microseconds.</summary>
internal sealed record Latency(int Samples, double P50Us, double P95Us, double P99Us, double MeanUs)
{
    public static Latency From(List<double> samplesUs)
    {
        if (samplesUs.Count == 0)
        {
            return new Latency(0, 0, 0, 0, 0);
        }

        samplesUs.Sort();
        double At(double q) => samplesUs[Math.Min(samplesUs.Count - 1, (int)Math.Floor(q * samplesUs.Count))];
        return new Latency(samplesUs.Count, At(0.50), At(0.95), At(0.99), samplesUs.Average());
    }
}

/// <summary>
/// Measures operations: a warm-up (a quarter of the budget, at least a few calls, so the JIT and pools settle), then
/// samples until the time budget is spent and at least <see cref="MinSamples"/> calls were timed.
/// </summary>
internal sealed class Sampler
{
    public const int MinSamples = 5;

    private readonly TimeSpan _budget;

    public Sampler(TimeSpan budget) => _budget = budget;

    /// <summary>Latency of a synchronous operation; the same loop as <see cref="SequentialAsync"/> (the operation
    /// completes synchronously, so the wrapper adds no scheduling, only a completed-task check per call).</summary>
    public Latency Sequential(Action op) => SequentialAsync(() =>
    {
        op();
        return Task.CompletedTask;
    }).GetAwaiter().GetResult();

    public async Task<Latency> SequentialAsync(Func<Task> op)
    {
        await RunForAsync(op, _budget / 4, 3).ConfigureAwait(false);
        var samples = new List<double>();
        long end = Stopwatch.GetTimestamp() + (long)(_budget.TotalSeconds * Stopwatch.Frequency);
        while (samples.Count < MinSamples || Stopwatch.GetTimestamp() < end)
        {
            long t0 = Stopwatch.GetTimestamp();
            await op().ConfigureAwait(false);
            samples.Add(Stopwatch.GetElapsedTime(t0).TotalMicroseconds);
        }

        return Latency.From(samples);
    }

    /// <summary>Operations per second with <paramref name="workers"/> callers in flight for the budget.</summary>
    public async Task<double> ConcurrentAsync(Func<Task> op, int workers)
    {
        long count = 0;
        long start = Stopwatch.GetTimestamp();
        long end = start + (long)(_budget.TotalSeconds * Stopwatch.Frequency);
        await Task.WhenAll(Enumerable.Range(0, workers).Select(_ => Task.Run(async () =>
        {
            do
            {
                await op().ConfigureAwait(false);
                Interlocked.Increment(ref count);
            }
            while (Stopwatch.GetTimestamp() < end);
        }))).ConfigureAwait(false);
        return count / Stopwatch.GetElapsedTime(start).TotalSeconds;
    }

    /// <summary>Operations per second with <paramref name="threads"/> threads calling a synchronous operation.</summary>
    public double Concurrent(Action op, int threads)
    {
        long count = 0;
        long start = Stopwatch.GetTimestamp();
        long end = start + (long)(_budget.TotalSeconds * Stopwatch.Frequency);
        var all = new Thread[threads];
        for (int i = 0; i < threads; i++)
        {
            all[i] = new Thread(() =>
            {
                do
                {
                    op();
                    Interlocked.Increment(ref count);
                }
                while (Stopwatch.GetTimestamp() < end);
            }) { IsBackground = true };
            all[i].Start();
        }

        foreach (Thread t in all)
        {
            t.Join();
        }

        return count / Stopwatch.GetElapsedTime(start).TotalSeconds;
    }

    /// <summary>Times one call (key generation, DKG) in milliseconds.</summary>
    public static double Once(Action op)
    {
        long t0 = Stopwatch.GetTimestamp();
        op();
        return Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
    }

    private static async Task RunForAsync(Func<Task> op, TimeSpan time, int atLeast)
    {
        long end = Stopwatch.GetTimestamp() + (long)(time.TotalSeconds * Stopwatch.Frequency);
        for (int i = 0; i < atLeast || Stopwatch.GetTimestamp() < end; i++)
        {
            await op().ConfigureAwait(false);
        }
    }
}
