using System.Collections.Concurrent;
using Conclave.Crypto.Memory;
using Conclave.Node.Protocol;
using Conclave.Storage;
using Conclave.Storage.Keys;

namespace Conclave.Node.Threshold.Engine;

/// <summary>Opens a protocol's share from its sealed key material; null when <paramref name="scheme"/> is not the protocol's.</summary>
public delegate TShare? OpenShare<TShare>(string scheme, ReadOnlySpan<byte> material);

/// <summary>
/// A node's shares of one protocol's keys, by key version: opened from the node's own store (sealed under its KEK) and
/// cached in memory. The current version signs; an older version signs only while its share is still held (the rotation
/// that replaced it is committed but not yet retired); a pending version never signs (docs/ROTATION.md). The versions
/// themselves (pending, committed, retired) are the store's (<see cref="IKeyStore"/>), moved by the rotation steps.
/// </summary>
public sealed class KeyVersions<TShare> : IDisposable
    where TShare : class, IDisposable
{
    private readonly ConcurrentDictionary<string, (TShare Share, int Version)> _current = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string Key, int Version), TShare> _previous = new();
    private readonly SemaphoreSlim _loadGate = new(1, 1);
    private readonly IConclaveStore _store;
    private readonly uint _nodeId;
    private readonly string _protocol;
    private readonly OpenShare<TShare> _open;
    private bool _disposed;

    /// <param name="protocol">The protocol's name in refusals ("FROST").</param>
    public KeyVersions(IConclaveStore store, uint nodeId, string protocol, OpenShare<TShare> open)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(open);
        _store = store;
        _nodeId = nodeId;
        _protocol = protocol;
        _open = open;
    }

    /// <summary>The opened share of the key's current version and that version (cached together).</summary>
    public async Task<(TShare Share, int Version)> GetCurrentAsync(string keyId, CancellationToken ct)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_current.TryGetValue(keyId, out (TShare Share, int Version) cached))
        {
            return cached;
        }

        await _loadGate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (_current.TryGetValue(keyId, out cached))
            {
                return cached;
            }

            KeyRecord record = await _store.Keys.GetAsync(keyId, ct).ConfigureAwait(false)
                ?? throw new ProtocolException($"node {_nodeId} holds no key {keyId}");
            if (record.State != KeyState.Active)
            {
                throw new ProtocolException($"key {keyId} is {record.State.ToString().ToLowerInvariant()}");
            }

            TShare share = await OpenAsync(keyId, record.Scheme, record.Version, ct).ConfigureAwait(false)
                ?? throw new ProtocolException($"key {keyId} is not a {_protocol} key");
            _current[keyId] = (share, record.Version);
            return (share, record.Version);
        }
        finally
        {
            _loadGate.Release();
        }
    }

    /// <summary>
    /// The opened share of <paramref name="version"/>: the current version, or an older one whose share is still held
    /// because the rotation that replaced it is not yet retired. A node restored from a backup taken before a refresh holds
    /// a stale share at its current version and refuses the newer one; a pending version (not yet committed) never signs.
    /// </summary>
    public async Task<TShare> GetAtVersionAsync(string keyId, int version, CancellationToken ct)
    {
        (TShare current, int currentVersion) = await GetCurrentAsync(keyId, ct).ConfigureAwait(false);
        if (version == currentVersion)
        {
            return current;
        }

        if (version > currentVersion || version < 1)
        {
            throw new ProtocolException($"node {_nodeId} holds key {keyId} at version {currentVersion}, not {version}");
        }

        if (_previous.TryGetValue((keyId, version), out TShare? older))
        {
            return older;
        }

        KeyRecord record = await _store.Keys.GetAsync(keyId, ct).ConfigureAwait(false)
            ?? throw new ProtocolException($"node {_nodeId} holds no key {keyId}");
        if (!(await _store.Keys.GetVersionsAsync(keyId, ct).ConfigureAwait(false)).Any(v => v.Version == version && v.HasMaterial)
            || await OpenAsync(keyId, record.Scheme, version, ct).ConfigureAwait(false) is not { } opened)
        {
            throw new ProtocolException($"node {_nodeId} holds key {keyId} at version {currentVersion}; version {version} is erased");
        }

        if (!_previous.TryAdd((keyId, version), opened))
        {
            opened.Dispose();
            opened = _previous[(keyId, version)];
        }

        return opened;
    }

    /// <summary>Forgets every opened share of the key (after a rotation step changed its versions).</summary>
    public void Evict(string keyId)
    {
        foreach ((string Key, int Version) old in _previous.Keys.Where(k => k.Key == keyId).ToList())
        {
            if (_previous.TryRemove(old, out TShare? p))
            {
                p.Dispose();
            }
        }

        if (_current.TryRemove(keyId, out (TShare Share, int Version) c))
        {
            c.Share.Dispose();
        }
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        foreach (string key in _current.Keys.Concat(_previous.Keys.Select(k => k.Key)).Distinct().ToList())
        {
            Evict(key);
        }

        _loadGate.Dispose();
    }

    private async Task<TShare?> OpenAsync(string keyId, string scheme, int version, CancellationToken ct)
    {
        using SecretBuffer material = await _store.Keys.OpenMaterialAsync(keyId, version, ct).ConfigureAwait(false);
        return _open(scheme, material.ReadOnlySpan);
    }
}
