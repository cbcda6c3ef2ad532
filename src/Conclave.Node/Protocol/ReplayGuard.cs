namespace Conclave.Node.Protocol;

/// <summary>
/// Refuses a message seen before (by the SHA-256 of its signed transcript) or outside the validity window.
/// Entries older than the window are forgotten, since the window check alone refuses them afterwards
/// (ATTACKS.md "Replay").
/// </summary>
public sealed class ReplayGuard
{
    private readonly TimeSpan _window;
    private readonly TimeProvider _clock;
    private readonly Dictionary<UInt128, long> _seen = [];
    private readonly Lock _gate = new();
    private long _lastSweep;

    public ReplayGuard(TimeSpan window, TimeProvider? clock = null)
    {
        _window = window;
        _clock = clock ?? TimeProvider.System;
    }

    public enum Verdict
    {
        Fresh,
        Replayed,
        Expired,
        FromTheFuture,
    }

    /// <summary>Checks a message by the SHA-256 of its transcript (<see cref="EnvelopeSigner.Digest"/>) and its issue time.</summary>
    public Verdict Check(ReadOnlySpan<byte> digest, long issuedAtUnixMs)
    {
        if (digest.Length != EnvelopeSigner.DigestSizeInBytes)
        {
            throw new ArgumentException("a SHA-256 digest is 32 bytes", nameof(digest));
        }

        long now = _clock.GetUtcNow().ToUnixTimeMilliseconds();
        long window = (long)_window.TotalMilliseconds;
        if (issuedAtUnixMs < now - window)
        {
            return Verdict.Expired;
        }

        if (issuedAtUnixMs > now + window)
        {
            return Verdict.FromTheFuture;
        }

        var key = new UInt128(BitConverter.ToUInt64(digest[..8]), BitConverter.ToUInt64(digest[8..16]));
        lock (_gate)
        {
            if (now - _lastSweep > window)
            {
                foreach (KeyValuePair<UInt128, long> kv in _seen.Where(kv => kv.Value < now - window).ToList())
                {
                    _seen.Remove(kv.Key);
                }

                _lastSweep = now;
            }

            return _seen.TryAdd(key, issuedAtUnixMs) ? Verdict.Fresh : Verdict.Replayed;
        }
    }
}
