namespace Conclave.Policy.HttpSignatures;

public enum NonceOutcome
{
    Fresh,
    Replayed,
    WindowFull,
}

/// <summary>
/// The nonces of accepted signatures, each remembered until its signature expires (ATTACKS.md "Replay of a client
/// request"): a second request with the same key id and nonce inside the window is refused. Bounded: when full of
/// unexpired nonces it refuses new ones (fails closed) rather than forgetting. Thread-safe; time is passed in.
/// </summary>
public sealed class NonceReplayWindow(int capacity = 1_000_000)
{
    private readonly Lock _lock = new();
    private readonly Dictionary<(string KeyId, string Nonce), DateTimeOffset> _seen = [];
    private readonly PriorityQueue<(string, string), DateTimeOffset> _byExpiry = new();

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _seen.Count;
            }
        }
    }

    public NonceOutcome TryRemember(string keyId, string nonce, DateTimeOffset expiresAt, DateTimeOffset now)
    {
        lock (_lock)
        {
            while (_byExpiry.TryPeek(out var oldest, out var at) && at <= now)
            {
                _byExpiry.Dequeue();
                if (_seen.TryGetValue(oldest, out var stored) && stored == at)
                {
                    _seen.Remove(oldest);
                }
            }

            if (_seen.ContainsKey((keyId, nonce)))
            {
                return NonceOutcome.Replayed;
            }

            if (_seen.Count >= capacity)
            {
                return NonceOutcome.WindowFull;
            }

            _seen[(keyId, nonce)] = expiresAt;
            _byExpiry.Enqueue((keyId, nonce), expiresAt);
            return NonceOutcome.Fresh;
        }
    }
}
