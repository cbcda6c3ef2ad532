using Microsoft.Extensions.Logging;

namespace Conclave.Server.Hosting;

/// <summary>
/// What the server's background passes (run recovery, evictions, the key check at start) log when a pass, or one item of
/// it, fails in a way the pass does not expect: the item is left as it was and tried again at the next pass, and the pass
/// goes on with the next item. Exception texts never carry secrets (CONVENTIONS), so the failure is logged whole.
/// </summary>
internal static partial class BackgroundLog
{
    [LoggerMessage(Level = LogLevel.Error, Message = "{Pass}: {Item} failed with {Exception}; left as it is and tried again at the next pass")]
    public static partial void ItemFailed(ILogger logger, string pass, string item, string exception, Exception error);

    [LoggerMessage(Level = LogLevel.Error, Message = "{Pass} failed with {Exception}; it runs again in a few seconds")]
    public static partial void PassFailed(ILogger logger, string pass, string exception, Exception error);
}
