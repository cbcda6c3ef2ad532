using System.Collections.Concurrent;

namespace Conclave.Server.Threshold.Engine;

/// <summary>What one coalesced item came to: its result, or the failure its caller sees.</summary>
public readonly record struct CoalescedOutcome<TResult>(TResult? Result, Exception? Failure)
{
    public static CoalescedOutcome<TResult> Of(TResult result) => new(result, null);

    public static CoalescedOutcome<TResult> Failed(Exception failure) => new(default, failure);
}

/// <summary>
/// Coalesces concurrent calls to the same node into shared steps (issue 18): each node has at most
/// <see cref="MaxStepsInFlight"/> steps outstanding; a call made while that many are out waits in the node's queue, and
/// when a step returns, everything queued for the node (up to <see cref="MaxItems"/>) leaves in the next step. Nothing is
/// ever delayed to make a batch: a call to a node with room goes out at once, alone, so a lone request pays no latency;
/// under load the batches grow by themselves and one envelope signature each way, one frame each way and one group
/// commit on the node serve every item in them.
/// The protocol supplies <c>send</c>: one step carrying the items, and one outcome per item in order. A step that fails
/// as a whole (the node is down, it timed out, it answered nonsense) fails every item in it with that failure, and each
/// caller handles it as it would its own step's failure. A caller that gives up before its item left is dropped from the
/// queue; one that gives up after simply no longer waits (what the node did with the item stands, as for a lone step).
/// Protocol-neutral: FROST's signing round uses it; any protocol whose online round is one step per item can.
/// </summary>
public sealed class StepCoalescer<TItem, TResult>
{
    private readonly Func<uint, IReadOnlyList<TItem>, Task<IReadOnlyList<CoalescedOutcome<TResult>>>> _send;
    private readonly ConcurrentDictionary<uint, NodeQueue> _queues = new();

    /// <param name="send">Sends one step to a node with these items and returns one outcome per item, in order.</param>
    public StepCoalescer(Func<uint, IReadOnlyList<TItem>, Task<IReadOnlyList<CoalescedOutcome<TResult>>>> send)
    {
        ArgumentNullException.ThrowIfNull(send);
        _send = send;
    }

    /// <summary>Most items one step carries.</summary>
    public int MaxItems { get; init; } = 256;

    /// <summary>Steps outstanding per node before further calls wait and coalesce (1: strict alternation).</summary>
    public int MaxStepsInFlight { get; set; } = 2;

    /// <summary>Items that have left in a step, and steps sent (for the bench's average batch size).</summary>
    public (long Items, long Steps) Sent => (Interlocked.Read(ref _itemsSent), Interlocked.Read(ref _stepsSent));

    private long _itemsSent;
    private long _stepsSent;

    /// <summary>Sends <paramref name="item"/> to <paramref name="node"/> in the next step with room, and returns its outcome.</summary>
    public Task<TResult> CallAsync(uint node, TItem item, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        var pending = new Pending(item);
        if (ct.CanBeCanceled)
        {
            pending.Registration = ct.Register(static s =>
            {
                var (p, token) = ((Pending, CancellationToken))s!;
                p.TrySetCanceled(token);
            }, (pending, ct));
        }

        NodeQueue queue = _queues.GetOrAdd(node, static _ => new NodeQueue());
        List<Pending>? batch = null;
        lock (queue.Gate)
        {
            queue.Waiting.Enqueue(pending);
            if (queue.InFlight < Math.Max(1, MaxStepsInFlight))
            {
                queue.InFlight++;
                batch = Take(queue);
            }
        }

        if (batch is not null)
        {
            _ = RunAsync(node, queue, batch);
        }

        return pending.Task;
    }

    /// <summary>Sends one step; then hands the node's queue to the next step (or frees the slot), then completes this step's items.</summary>
    private async Task RunAsync(uint node, NodeQueue queue, List<Pending> batch)
    {
        IReadOnlyList<CoalescedOutcome<TResult>> outcomes;
        if (batch.Count == 0)
        {
            outcomes = [];
        }
        else
        {
            Interlocked.Add(ref _itemsSent, batch.Count);
            Interlocked.Increment(ref _stepsSent);
            try
            {
                outcomes = await _send(node, batch.ConvertAll(p => p.Item)).ConfigureAwait(false);
                if (outcomes.Count != batch.Count)
                {
                    throw new InvalidOperationException("a coalesced step returned another number of outcomes than items");
                }
            }
            catch (Exception e)
            {
                outcomes = [.. batch.Select(_ => CoalescedOutcome<TResult>.Failed(e))];
            }
        }

        List<Pending> next;
        lock (queue.Gate)
        {
            next = Take(queue);
            if (next.Count == 0)
            {
                queue.InFlight--;
            }
        }

        if (next.Count > 0)
        {
            _ = RunAsync(node, queue, next);
        }

        // Every item but the last continues on the thread pool, so the callers' own work (aggregating, answering their
        // HTTP requests) spreads over the cores instead of running one after another here; the last runs inline.
        for (int i = 0; i < batch.Count; i++)
        {
            batch[i].Outcome = outcomes[i];
            if (i < batch.Count - 1)
            {
                ThreadPool.UnsafeQueueUserWorkItem(static p => p.Complete(), batch[i], preferLocal: false);
            }
            else
            {
                batch[i].Complete();
            }
        }
    }

    /// <summary>Up to <see cref="MaxItems"/> queued items whose callers still wait (under the queue's lock).</summary>
    private List<Pending> Take(NodeQueue queue)
    {
        var batch = new List<Pending>(Math.Min(queue.Waiting.Count, MaxItems));
        while (batch.Count < MaxItems && queue.Waiting.TryDequeue(out Pending? p))
        {
            if (!p.Task.IsCompleted)
            {
                batch.Add(p);
            }
        }

        return batch;
    }

    private sealed class NodeQueue
    {
        public readonly Lock Gate = new();
        public readonly Queue<Pending> Waiting = new();
        public int InFlight;
    }

    private sealed class Pending(TItem item) : TaskCompletionSource<TResult>
    {
        public TItem Item { get; } = item;

        public CancellationTokenRegistration Registration { get; set; }

        public CoalescedOutcome<TResult> Outcome { get; set; }

        public void Complete()
        {
            Registration.Dispose();
            if (Outcome.Failure is { } failure)
            {
                TrySetException(failure);
            }
            else
            {
                TrySetResult(Outcome.Result!);
            }
        }
    }
}
