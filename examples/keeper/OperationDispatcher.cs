using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Conclave.Client;

namespace Conclave.Keeper;

/// <summary>
/// Runs venue operations concurrently (at most <c>concurrency</c> in flight; Conclave's nonce manager keeps the key's
/// nonces contiguous) and keeps them idempotent per target (an account, a series): a target with an operation in flight,
/// or whose transaction the node accepted but has not mined yet, is not acted on again. A refusal by the chain is one
/// <c>revert</c> line, any other failure one <c>failed</c> line; neither stops the keeper, and the target is tried
/// again at a later scan if it still needs it.
/// </summary>
internal sealed class OperationDispatcher(VenueOperations venue, ChainReader chain, KeeperLog log, int concurrency) : IDisposable
{
    private readonly SemaphoreSlim _slots = new(concurrency, concurrency);
    private readonly ConcurrentDictionary<string, byte> _inFlight = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string> _pending = new(StringComparer.Ordinal);
    private readonly Lock _tasksGate = new();
    private readonly List<Task> _tasks = [];
    private int _sent;
    private int _reverted;
    private int _failed;

    public int Sent => Volatile.Read(ref _sent);

    public int Reverted => Volatile.Read(ref _reverted);

    public int Failed => Volatile.Read(ref _failed);

    /// <summary>False while an operation on <paramref name="target"/> is in flight or its transaction is not mined yet.</summary>
    public async Task<bool> IsFreeAsync(string target, CancellationToken ct)
    {
        if (_inFlight.ContainsKey(target))
        {
            return false;
        }

        if (_pending.TryGetValue(target, out string? hash))
        {
            bool? status = await chain.ReceiptStatusAsync(hash, ct).ConfigureAwait(false);
            if (status is null)
            {
                return false;
            }

            _pending.TryRemove(target, out _);
            if (status == false)
            {
                log.Line($"reverted-on-chain {target} tx={hash}");
            }
        }

        return true;
    }

    /// <summary>Starts <paramref name="operation"/> on <paramref name="target"/> unless one is already in flight.</summary>
    /// <param name="done">The log line's first word on success (<c>liquidated</c>, <c>settled</c>).</param>
    public void Dispatch(string target, string done, string operation, JsonObject args, CancellationToken ct)
    {
        if (!_inFlight.TryAdd(target, 0))
        {
            return;
        }

        Task task = RunAsync(target, done, operation, args, ct);
        lock (_tasksGate)
        {
            _tasks.RemoveAll(t => t.IsCompleted);
            _tasks.Add(task);
        }
    }

    private async Task RunAsync(string target, string done, string operation, JsonObject args, CancellationToken ct)
    {
        try
        {
            await _slots.WaitAsync(ct).ConfigureAwait(false);
            try
            {
                SentTransaction tx = await venue.SendAsync(operation, args, ct).ConfigureAwait(false);
                _pending[target] = tx.Hash;
                Interlocked.Increment(ref _sent);
                log.Line($"{done} {target} tx={tx.Hash} nonce={tx.Nonce} from={tx.From}");
            }
            finally
            {
                _slots.Release();
            }
        }
        catch (ConclaveApiException e) when (e.Type == VenueOperations.ChainRefused)
        {
            Interlocked.Increment(ref _reverted);
            log.Line($"revert {operation} {target}: {e.Detail}");
        }
        catch (ConclaveApiException e)
        {
            Interlocked.Increment(ref _failed);
            log.Line($"failed {operation} {target}: {e.Status} {e.Type} {e.Detail}");
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            log.Line($"abandoned {operation} {target}: stopping");
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException or System.Text.Json.JsonException or InvalidOperationException)
        {
            Interlocked.Increment(ref _failed);
            log.Line($"failed {operation} {target}: {e.GetType().Name}: {e.Message}");
        }
        finally
        {
            _inFlight.TryRemove(target, out _);
        }
    }

    /// <summary>Waits for the operations in flight, at most <paramref name="deadline"/>; true if they all finished.</summary>
    public async Task<bool> DrainAsync(TimeSpan deadline)
    {
        Task[] running;
        lock (_tasksGate)
        {
            running = [.. _tasks];
        }

        try
        {
            await Task.WhenAll(running).WaitAsync(deadline).ConfigureAwait(false);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    public void Dispose() => _slots.Dispose();
}
