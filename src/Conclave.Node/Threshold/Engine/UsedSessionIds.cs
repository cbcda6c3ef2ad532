using System.Collections.Concurrent;

namespace Conclave.Node.Threshold.Engine;

/// <summary>
/// Session ids a node has started a session under, remembered for <see cref="Retention"/> so that a coordinator cannot
/// start a second session under the same id while messages of the first are still valid (docs/DKLS23.md "Stray relayed
/// messages"): a node that signed two different round messages for one session id could otherwise be shown one of the
/// first attempt's in place of the second's, which would not open and would name it. An honest coordinator takes a fresh
/// random id for every attempt, so it is never refused. In memory: a restarted node forgets them (and refuses requests
/// issued before it started).
/// </summary>
public sealed class UsedSessionIds(TimeSpan retention, TimeProvider? clock = null)
{
    private readonly ConcurrentDictionary<string, DateTimeOffset> _used = new(StringComparer.Ordinal);
    private readonly TimeProvider _clock = clock ?? TimeProvider.System;
    private long _nextPruneTicks;

    /// <summary>How long an id is remembered after its session started.</summary>
    public TimeSpan Retention { get; } = retention > TimeSpan.Zero ? retention : throw new ArgumentOutOfRangeException(nameof(retention));

    /// <summary>Records <paramref name="runId"/> as used; false when it was used within <see cref="Retention"/>.</summary>
    public bool TryUse(string runId)
    {
        ArgumentException.ThrowIfNullOrEmpty(runId);
        DateTimeOffset now = _clock.GetUtcNow();
        Prune(now);
        return _used.TryAdd(runId, now);
    }

    /// <summary>How many ids are remembered now.</summary>
    public int Count => _used.Count;

    /// <summary>Forgets ids older than the retention, at most once a second (the table holds a few minutes of sessions).</summary>
    private void Prune(DateTimeOffset now)
    {
        long next = Interlocked.Read(ref _nextPruneTicks);
        if (now.UtcTicks < next || Interlocked.CompareExchange(ref _nextPruneTicks, now.UtcTicks + TimeSpan.TicksPerSecond, next) != next)
        {
            return;
        }

        DateTimeOffset cutoff = now - Retention;
        foreach (KeyValuePair<string, DateTimeOffset> kv in _used)
        {
            if (kv.Value < cutoff)
            {
                _used.TryRemove(kv);
            }
        }
    }
}
