using System.Runtime.InteropServices;
using Conclave.Crypto.Interop;
using Conclave.Hsm;

namespace Conclave.Cli.Bench;

/// <summary>What the user asked `conclave bench` for.</summary>
internal sealed record BenchSettings(
    TimeSpan Duration,
    int Concurrency,
    bool Cluster,
    IReadOnlyList<string> Shapes,
    string ClusterShape,
    IReadOnlyList<string>? Schemes,
    HsmOptions? Hsm,
    string NodeTransport = "frames",
    IReadOnlyList<int>? KeyCounts = null,
    int SignStepsInFlight = 2);

/// <summary>One run: the settings, the sampler, the report being filled, and the progress lines on standard error.</summary>
internal sealed class BenchContext
{
    private int _step;

    public BenchContext(BenchSettings settings, TextWriter progress)
    {
        Settings = settings;
        Progress = progress;
        Sampler = new Sampler(settings.Duration);
        Report = new BenchReport
        {
            StartedAt = DateTimeOffset.UtcNow,
            Machine = DescribeMachine(),
            Settings = new BenchSettingsRecord(settings.Duration.TotalSeconds, settings.Concurrency, settings.Cluster,
                settings.Cluster ? [.. settings.Shapes, "cluster " + settings.ClusterShape] : settings.Shapes, settings.Schemes, settings.NodeTransport,
                settings.SignStepsInFlight),
        };
    }

    public BenchSettings Settings { get; }

    public Sampler Sampler { get; }

    public BenchReport Report { get; }

    public TextWriter Progress { get; }

    /// <summary>Announces the next measurement; false when --schemes leaves it out (it is kept when it names the
    /// row, its family, or <paramref name="alsoWith"/>: a row measured with another one's scheme).</summary>
    public bool Begin(string id, string? alsoWith = null)
    {
        string family = id.Split('/')[0];
        if (!BenchRows.Wanted(Settings.Schemes, family) && !BenchRows.Wanted(Settings.Schemes, id) && (alsoWith is null || !BenchRows.Wanted(Settings.Schemes, alsoWith)))
        {
            return false;
        }

        _step++;
        Progress.WriteLine($"[{_step,2}] {id} …");
        return true;
    }

    public void Add(BenchRow row)
    {
        if (row.Id == BenchRows.BaselineId)
        {
            Report.BaselineP50Us = row.Sign.P50Us;
        }

        row.RatioToBaseline = Report.BaselineP50Us > 0 ? row.Sign.P50Us / Report.BaselineP50Us : 0;
        Report.Rows.Add(row);
        Progress.WriteLine($"     sign p50 {Format.Duration(row.Sign.P50Us)}, p99 {Format.Duration(row.Sign.P99Us)}"
            + (row.ConcurrentPerSecond > 0 ? $", {row.ConcurrentPerSecond:N0}/s with {row.Concurrency} in flight" : string.Empty)
            + (row.CpuUsPerSignature is { } cpu ? $", {Format.Duration(cpu)} CPU per signature (server and nodes)" : string.Empty)
            + $", {row.RatioToBaseline:N1}× baseline");
    }

    public void Skip(string id, string reason)
    {
        Report.NotMeasured.Add(new BenchSkip(id, reason));
        Progress.WriteLine($"     {id}: not measured: {reason}");
    }

    public static BenchMachine DescribeMachine()
    {
        string cpu = "unknown CPU";
        try
        {
            string? line = File.Exists("/proc/cpuinfo") ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal)) : null;
            cpu = line?.Split(':', 2)[1].Trim() ?? RuntimeInformation.ProcessArchitecture.ToString();
        }
        catch (IOException)
        {
        }

        return new BenchMachine(
            cpu,
            Environment.ProcessorCount,
            GC.GetGCMemoryInfo().TotalAvailableMemoryBytes,
            RuntimeInformation.OSDescription,
            RuntimeInformation.FrameworkDescription,
            NativeLibraries.Describe(),
            LoadAverage(),
            null);
    }

    public static string? LoadAverage()
    {
        try
        {
            return File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : null;
        }
        catch (IOException)
        {
            return null;
        }
    }
}

internal static class Format
{
    public static string Duration(double us) => us switch
    {
        >= 1_000_000 => $"{us / 1_000_000:F2} s",
        >= 1_000 => $"{us / 1_000:F2} ms",
        _ => $"{us:F1} µs",
    };
}
