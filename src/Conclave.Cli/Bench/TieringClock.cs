using System.Diagnostics;
using System.Globalization;

namespace Conclave.Cli.Bench;

/// <summary>
/// CPU time of the .NET tiered-compilation threads (".NET Tiered Com…") of the bench process, which hosts the server, and
/// of the bench's node processes, read from Linux /proc: how much of a phase went to the JIT recompiling hot methods
/// rather than to signing. The runtime ends that thread when it is idle and starts another when needed, so each
/// reading adds what every thread present spent since the previous one (a new thread counts from zero). Elsewhere than
/// Linux it reads nothing (<see cref="IsAvailable"/> false).
/// </summary>
internal sealed class TieringClock(IReadOnlyList<Process> processes)
{
    /// <summary>Clock ticks per second of /proc/…/stat (USER_HZ, 100 on Linux).</summary>
    private const double TicksPerSecond = 100;

    private readonly Dictionary<(int Pid, string Tid), long> _last = [];

    public static bool IsAvailable => OperatingSystem.IsLinux();

    /// <summary>CPU time the tiered-compilation threads spent since the previous call (the first call starts the clock and returns zero).</summary>
    public TimeSpan Advance()
    {
        bool first = _last.Count == 0;
        long added = 0;
        foreach (Process p in processes)
        {
            string tasks = $"/proc/{p.Id.ToString(CultureInfo.InvariantCulture)}/task";
            if (!Directory.Exists(tasks))
            {
                continue;
            }

            try
            {
                foreach (string task in Directory.EnumerateDirectories(tasks))
                {
                    if (!File.ReadAllText(Path.Combine(task, "comm")).StartsWith(".NET Tiered Com", StringComparison.Ordinal))
                    {
                        continue;
                    }

                    string stat = File.ReadAllText(Path.Combine(task, "stat"));
                    string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                    long ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture); // utime, stime (fields 14, 15)
                    var key = (p.Id, Path.GetFileName(task));
                    added += ticks - _last.GetValueOrDefault(key);
                    _last[key] = ticks;
                }
            }
            catch (IOException)
            {
                // A thread or process that ended between listing and reading: nothing more to add for it.
            }
        }

        return first ? TimeSpan.Zero : TimeSpan.FromSeconds(added / TicksPerSecond);
    }
}
