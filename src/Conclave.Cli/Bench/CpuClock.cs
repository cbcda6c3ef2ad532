using System.Diagnostics;
using Conclave.Server.Coordinator;
using Conclave.Server.Hosting;

namespace Conclave.Cli.Bench;

/// <summary>
/// CPU time spent by this process (the bench, which hosts the server) and every signer-node process of the bench's
/// cluster over a measured phase: the cost of a signature whatever else the machine runs (issue 18's "cost per
/// signature", compared across cluster shapes and runs). Read from the processes' own CPU clocks before and after.
/// </summary>
internal sealed class CpuClock
{
    private readonly Process[] _processes;
    private readonly TimeSpan _before;
    private readonly long _start;
    private readonly Func<(long Items, long Steps)> _steps;
    private readonly string _perStep;
    private readonly (long Items, long Steps) _stepsBefore;

    private CpuClock(Process[] processes, Func<(long Items, long Steps)> steps, string perStep)
    {
        _processes = processes;
        _steps = steps;
        _perStep = perStep;
        _stepsBefore = steps();
        _before = Total();
        _start = Stopwatch.GetTimestamp();
    }

    public static CpuClock Start(LocalClusterProcesses nodes, int n, FrostCoordinator frost) =>
        Start(nodes, n, () => frost.SignSteps, "shares per node sign step");

    /// <summary>
    /// As above, with the coalescing counted by <paramref name="steps"/> (items asked and steps sent, for example the
    /// DKLs23 coordinator's online steps) and described as <paramref name="perStep"/> in the note.
    /// </summary>
    public static CpuClock Start(LocalClusterProcesses nodes, int n, Func<(long Items, long Steps)> steps, string perStep) =>
        new([Process.GetCurrentProcess(), .. Enumerable.Range(1, n).Select(i => nodes.NodeProcess((uint)i)).OfType<Process>()], steps, perStep);

    /// <summary>Items per step over the phase (the coalescing achieved); null when no step ran.</summary>
    public double? SharesPerStep
    {
        get
        {
            (long items, long steps) = _steps();
            return steps > _stepsBefore.Steps ? (items - _stepsBefore.Items) / (double)(steps - _stepsBefore.Steps) : null;
        }
    }

    /// <summary>"; N shares per node sign step" and <paramref name="suffix"/> for a row's note, or nothing when no step ran.</summary>
    public string CoalescingNote(string suffix = "") => SharesPerStep is { } perStep
        ? string.Create(System.Globalization.CultureInfo.InvariantCulture, $"; {perStep:N1} {_perStep}{suffix}")
        : "";

    /// <summary>Microseconds of CPU per signature, given the phase's signatures per second.</summary>
    public double PerSignature(double signaturesPerSecond)
    {
        TimeSpan spent = Total() - _before;
        double signatures = signaturesPerSecond * Stopwatch.GetElapsedTime(_start).TotalSeconds;
        return signatures > 0 ? spent.TotalMicroseconds / signatures : 0;
    }

    private TimeSpan Total()
    {
        TimeSpan sum = TimeSpan.Zero;
        foreach (Process p in _processes)
        {
            p.Refresh();
            sum += p.HasExited ? TimeSpan.Zero : p.TotalProcessorTime;
        }

        return sum;
    }
}
