using System.Collections.Concurrent;

namespace Conclave.Server.Threshold.Engine;

/// <summary>
/// The coordinator's registry of a protocol's keys (public data), one entry per key at its newest registered version.
/// Registering a newer version reports the version it replaced, so the caller can drop pooled material issued for it.
/// </summary>
public sealed class KeyRegistry<TKey>
    where TKey : class, IThresholdKey
{
    private readonly ConcurrentDictionary<string, TKey> _keys = new(StringComparer.Ordinal);

    /// <summary>Registers a key (or a newer version of it); returns the registration it replaced, if any.</summary>
    public TKey? Register(TKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        TKey? previous = null;
        _keys.AddOrUpdate(key.KeyId, key, (_, old) =>
        {
            previous = old;
            return key;
        });
        return previous;
    }

    /// <summary>Every registered key.</summary>
    public IReadOnlyList<TKey> Keys => [.. _keys.Values];

    public TKey? Find(string keyId) => _keys.TryGetValue(keyId, out TKey? k) ? k : null;
}
