using System.Globalization;
using Conclave.Storage;
using Conclave.Storage.Audit;
using Microsoft.Extensions.Logging;

namespace Conclave.Server.Api;

/// <summary>
/// Refused (unauthenticated) requests in the audit log without letting a flood of them fill it. The first refusal of
/// an action from a client address in a window is appended at once (actor "anonymous", decision "deny", result
/// "unauthorized from ADDRESS"); further refusals of the same action from the same address in that window are only
/// counted, and one entry "unauthorized from ADDRESS: N more in W s" is appended when the window closes. The caller
/// never waits for the log (a refused request gets its 401 at once), at most <see cref="MaxTracked"/> address and
/// action pairs are tracked (more are counted under address "(others)"), and a refusal's entry never carries the
/// request body or its hash — only what was asked, from where, and how often.
/// </summary>
public sealed partial class DenialAudit : IAsyncDisposable
{
    /// <summary>Distinct (address, action) pairs counted per window.</summary>
    public const int MaxTracked = 1024;

    private readonly IConclaveStore _store;
    private readonly ILogger _log;
    private readonly TimeSpan _window;
    private readonly Dictionary<(string Address, string Action, string Actor, string Result), int> _counts = [];
    private readonly Lock _lock = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _flusher;
    private int _disposed;

    public DenialAudit(IConclaveStore store, ILogger log, TimeSpan window)
    {
        _store = store;
        _log = log;
        _window = window;
        _flusher = Task.Run(FlushLoopAsync);
    }

    /// <summary>Told of every refusal (the risk subsystem counts them as a threat signal); must not throw or block.</summary>
    public Action? Refused { get; init; }

    /// <summary>
    /// Records one refusal; returns the pending append when this one is logged individually, else null. <paramref name="actor"/>
    /// is who was refused when known (a principal refused a route by its role), <paramref name="result"/> what happened
    /// ("unauthorized", "unauthorized (replayed)", "forbidden (role)"); refusals are counted per address, action, actor and result.
    /// </summary>
    public Task? Record(string? address, string action, string actor = "anonymous", string result = "unauthorized")
    {
        Refused?.Invoke();
        string from = string.IsNullOrEmpty(address) ? "unknown" : address;
        bool first;
        lock (_lock)
        {
            if (!_counts.ContainsKey((from, action, actor, result)) && _counts.Count >= MaxTracked)
            {
                from = "(others)";
            }

            first = !_counts.TryGetValue((from, action, actor, result), out int n);
            _counts[(from, action, actor, result)] = first ? 0 : n + 1;
        }

        return first ? AppendAsync(new AuditEntryInput(actor, action, null, null, "deny", $"{result} from {from}")) : null;
    }

    /// <summary>Writes the counted repeats of the window that just ended (also called on shutdown).</summary>
    public async Task FlushAsync()
    {
        KeyValuePair<(string Address, string Action, string Actor, string Result), int>[] repeats;
        lock (_lock)
        {
            repeats = [.. _counts.Where(kv => kv.Value > 0)];
            _counts.Clear();
        }

        foreach (KeyValuePair<(string Address, string Action, string Actor, string Result), int> r in repeats)
        {
            string seconds = _window.TotalSeconds.ToString("0.#", CultureInfo.InvariantCulture);
            await AppendAsync(new AuditEntryInput(r.Key.Actor, r.Key.Action, null, null, "deny",
                $"{r.Key.Result} from {r.Key.Address}: {r.Value} more in {seconds} s")).ConfigureAwait(false);
        }
    }

    private async Task AppendAsync(AuditEntryInput entry)
    {
        try
        {
            await _store.Audit.AppendAsync(entry, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is StorageException or ObjectDisposedException)
        {
            LogLost(_log, e);
        }
    }

    private async Task FlushLoopAsync()
    {
        using var timer = new PeriodicTimer(_window);
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
            {
                await FlushAsync().ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        await _flusher.ConfigureAwait(false);
        await FlushAsync().ConfigureAwait(false);
        _stop.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "an audit entry for refused requests could not be written")]
    private static partial void LogLost(ILogger logger, Exception e);
}
