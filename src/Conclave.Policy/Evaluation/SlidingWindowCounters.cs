namespace Conclave.Policy.Evaluation;

/// <summary>
/// In-memory sliding-window counters (a reference implementation for tests and one process; the server keeps its
/// counters in the store). <see cref="TryReserve"/> checks every reservation of a decision against its limit and adds
/// them all, or none, under one lock, so concurrent callers cannot overspend a limit. Time is passed in, never read.
/// </summary>
public sealed class SlidingWindowCounters : IVelocityCounters
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, List<Entry>> _entries = new(StringComparer.Ordinal);
    private long _nextId;

    private sealed record Entry(long Id, DateTimeOffset At, decimal Native, decimal Usd, long Count);

    public VelocityTotals Read(string counterKey, long windowSeconds, DateTimeOffset now)
    {
        lock (_lock)
        {
            return ReadCore(counterKey, windowSeconds, now);
        }
    }

    /// <summary>
    /// Adds every reservation if each stays within its maximum (re-checked here, under the lock); returns a handle to
    /// release them, or null (nothing added) if any would exceed its limit.
    /// </summary>
    public long? TryReserve(IReadOnlyList<Reservation> reservations, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(reservations);
        lock (_lock)
        {
            foreach (var r in reservations)
            {
                var t = ReadCore(r.CounterKey, r.WindowSeconds, now);
                if ((r.MaxNative is { } mn && t.Native + r.Native > mn) || (r.MaxUsd is { } mu && t.Usd + r.Usd > mu) || (r.MaxCount is { } mc && t.Count + r.Count > mc))
                {
                    return null;
                }
            }

            long id = ++_nextId;
            foreach (var r in reservations)
            {
                if (!_entries.TryGetValue(r.CounterKey, out var list))
                {
                    _entries[r.CounterKey] = list = [];
                }

                list.Add(new Entry(id, now, r.Native, r.Usd, r.Count));
            }

            return id;
        }
    }

    /// <summary>Removes the reservations made under <paramref name="handle"/> (signing failed). Idempotent.</summary>
    public void Release(long handle)
    {
        lock (_lock)
        {
            foreach (var list in _entries.Values)
            {
                list.RemoveAll(e => e.Id == handle);
            }
        }
    }

    private VelocityTotals ReadCore(string key, long windowSeconds, DateTimeOffset now)
    {
        if (!_entries.TryGetValue(key, out var list))
        {
            return default;
        }

        var from = now - TimeSpan.FromSeconds(windowSeconds);
        decimal native = 0, usd = 0;
        long count = 0;
        foreach (var e in list)
        {
            if (e.At > from && e.At <= now)
            {
                native += e.Native;
                usd += e.Usd;
                count += e.Count;
            }
        }

        return new VelocityTotals(native, usd, count);
    }
}
