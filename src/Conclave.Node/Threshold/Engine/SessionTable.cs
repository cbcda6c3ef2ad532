using System.Collections.Concurrent;
using Conclave.Node.Protocol;

namespace Conclave.Node.Threshold.Engine;

/// <summary>
/// A node's in-memory state of the protocol sessions (runs) it takes part in, by run id (the hex of the session id every
/// message of the run carries). One-time round secrets live only here and die with the process; a session older than
/// the lifetime is swept (disposed) at the next step, so an abandoned run cannot pin secrets in memory.
/// </summary>
public sealed class SessionTable<TState>(TimeSpan lifetime, TimeProvider? clock = null)
    where TState : class, IDisposable
{
    private readonly ConcurrentDictionary<string, (TState State, DateTimeOffset Started)> _sessions = new(StringComparer.Ordinal);
    private readonly TimeProvider _clock = clock ?? TimeProvider.System;

    /// <summary>The run id of a session id: lowercase hex, as the rotation log records it.</summary>
    public static string RunId(ReadOnlySpan<byte> sessionId) => Convert.ToHexStringLower(sessionId);

    /// <summary>The live sessions' states.</summary>
    public IEnumerable<TState> Values => _sessions.Values.Select(s => s.State);

    public bool ContainsKey(string runId) => _sessions.ContainsKey(runId);

    /// <summary>Adds a session; false when one with this run id is already live.</summary>
    public bool TryAdd(string runId, TState state) => _sessions.TryAdd(runId, (state, _clock.GetUtcNow()));

    /// <summary>The state of the session <paramref name="sessionId"/> names; a refusal when it is not live here.</summary>
    public TState Get(ReadOnlySpan<byte> sessionId) =>
        _sessions.TryGetValue(RunId(sessionId), out (TState State, DateTimeOffset Started) s) ? s.State
            : throw new ProtocolException("unknown session (never started here, finished, or expired)");

    /// <summary>Forgets a session and disposes its state (after a failure, an abort, a commit or a retire).</summary>
    public void Drop(string runId)
    {
        if (_sessions.TryRemove(runId, out (TState State, DateTimeOffset Started) s))
        {
            s.State.Dispose();
        }
    }

    /// <summary>Drops (disposes) every live session whose state matches <paramref name="match"/>; returns how many.</summary>
    public int DropWhere(Func<TState, bool> match)
    {
        ArgumentNullException.ThrowIfNull(match);
        int dropped = 0;
        foreach (KeyValuePair<string, (TState State, DateTimeOffset Started)> kv in _sessions)
        {
            if (match(kv.Value.State) && _sessions.TryRemove(kv.Key, out (TState State, DateTimeOffset Started) s))
            {
                s.State.Dispose();
                dropped++;
            }
        }

        return dropped;
    }

    /// <summary>Drops every session older than the lifetime.</summary>
    public void Sweep()
    {
        DateTimeOffset cutoff = _clock.GetUtcNow() - lifetime;
        foreach (KeyValuePair<string, (TState State, DateTimeOffset Started)> kv in _sessions)
        {
            if (kv.Value.Started < cutoff)
            {
                Drop(kv.Key);
            }
        }
    }
}
