using Microsoft.Extensions.Logging;
using Conclave.Policy.Documents;
using Conclave.Storage;
using Conclave.Storage.Policy;

namespace Conclave.Server.Policy;

/// <summary>
/// Deletes velocity-counter entries no window can reach any more (docs/STORAGE.md, migration 15 "Pruning"): every
/// <see cref="Interval"/>, at most <see cref="EntriesPerRun"/> entries stamped at or before now less
/// <see cref="Horizon"/> — the longest window a policy can give a limit (<see cref="VelocityLimit.MaxWindowSeconds"/>,
/// whatever today's documents say, since a later version may lengthen a window and counters outlive versions) and
/// <see cref="ClockSkew"/> for a replica whose clock is behind this one's. Every replica runs one; on a shared
/// PostgreSQL they queue on the same counter's lock row and the later finds nothing left.
/// </summary>
public sealed class PolicyCounterPruning(IPolicyCounterStore counters, TimeProvider time)
{
    /// <summary>How often a run starts.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(30);

    /// <summary>Entries one run deletes at most (in transactions of at most 500 each): about 660 a second at most.</summary>
    public const int EntriesPerRun = 20_000;

    /// <summary>How far behind this replica's clock another replica's may be without pruning changing its decisions.</summary>
    public static readonly TimeSpan ClockSkew = TimeSpan.FromDays(1);

    /// <summary>How old an entry is before it is deleted.</summary>
    public static readonly TimeSpan Horizon = TimeSpan.FromSeconds(VelocityLimit.MaxWindowSeconds) + ClockSkew;

    /// <summary>One run: how many entries were deleted.</summary>
    public Task<int> PruneOnceAsync(CancellationToken ct) => counters.PruneAsync(time.GetUtcNow() - Horizon, EntriesPerRun, ct);

    /// <summary>
    /// Runs every <see cref="Interval"/> until the server stops. Never throws and never stops before: a run that fails
    /// is logged (Hosting.BackgroundLog) and the next one tries again.
    /// </summary>
    public async Task RunAsync(CancellationToken stopping, ILogger? log = null)
    {
        using var timer = new PeriodicTimer(Interval);
        try
        {
            while (await timer.WaitForNextTickAsync(stopping).ConfigureAwait(false))
            {
                await Hosting.BackgroundLog.RunPassAsync("counter pruning", () => PruneOnceAsync(stopping),
                    log ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, stopping).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }
}
