using Conclave.Storage;
using Microsoft.Extensions.Logging;

namespace Conclave.Server.Hosting;

/// <summary>
/// The server's background passes (run recovery and evictions, the key check at start, continuous rotation, the risk
/// level, due policy changes, counter pruning) run again and again until the server stops. A pass, or one item of it,
/// that fails is left as it is and tried again at the next pass, and the loop never ends before the server does: a loop
/// that ended at its first surprise would leave, silently until a restart, interrupted runs with their keys locked,
/// evictions unfinished, keys unrotated, the risk level where it was (policy would not tighten) or approved policy
/// changes unapplied. Exception texts never carry secrets (CONVENTIONS), so a failure is logged whole.
/// </summary>
public static partial class BackgroundLog
{
    /// <summary>
    /// Runs one pass of <paramref name="pass"/> (named <paramref name="name"/> in the log). Returns normally whatever the
    /// pass threw, except an <see cref="OperationCanceledException"/> once <paramref name="stopping"/> is cancelled (the
    /// server stops: the caller's loop ends). The store closing or unavailable for a moment (<see cref="StorageException"/>,
    /// <see cref="ObjectDisposedException"/>) is expected and not logged; anything else is logged as an error, and during
    /// shutdown nothing is.
    /// </summary>
    public static async Task RunPassAsync(string name, Func<Task> pass, ILogger log, CancellationToken stopping)
    {
        ArgumentNullException.ThrowIfNull(pass);
        ArgumentNullException.ThrowIfNull(log);
        try
        {
            await pass().ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e) when (e is StorageException or ObjectDisposedException || stopping.IsCancellationRequested)
        {
            // Tried again at the next pass.
        }
#pragma warning disable CA1031 // a background pass must outlive any one failure: see the class summary
        catch (Exception e)
#pragma warning restore CA1031
        {
            PassFailed(log, name, e.GetType().Name, e);
        }
    }

    /// <summary>Logs one item of a pass (a rotation run, a node's keys) that failed unexpectedly and is left for the next pass.</summary>
    [LoggerMessage(Level = LogLevel.Error, Message = "{Pass}: {Item} failed with {Exception}; left as it is and tried again at the next pass")]
    public static partial void ItemFailed(ILogger logger, string pass, string item, string exception, Exception error);

    [LoggerMessage(Level = LogLevel.Error, Message = "{Pass} failed with {Exception}; it runs again at the next pass")]
    private static partial void PassFailed(ILogger logger, string pass, string exception, Exception error);
}
