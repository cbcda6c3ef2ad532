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
    private readonly ConcurrentDictionary<string, Entry> _current = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string Key, int Version), Entry> _previous = new();
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

    /// <summary>
    /// The opened share of the key's current version and that version (cached together). For a glance only (for example
    /// the version): a share that is computed with must be held by a lease (<see cref="LeaseAtVersionAsync"/>), or a
    /// rotation step evicting it meanwhile erases it under the computation.
    /// </summary>
    public async Task<(TShare Share, int Version)> GetCurrentAsync(string keyId, CancellationToken ct)
    {
        Entry entry = await CurrentEntryAsync(keyId, ct).ConfigureAwait(false);
        return (entry.Share, entry.Version);
    }

    private async Task<Entry> CurrentEntryAsync(string keyId, CancellationToken ct)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_current.TryGetValue(keyId, out Entry? cached))
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
            var entry = new Entry(share, record.Version);
            _current[keyId] = entry;
            return entry;
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
    public async Task<TShare> GetAtVersionAsync(string keyId, int version, CancellationToken ct) =>
        (await EntryAtVersionAsync(keyId, version, ct).ConfigureAwait(false)).Share;

    /// <summary>
    /// As <see cref="GetAtVersionAsync"/>, held: the share stays open (not erased from memory) until the lease is
    /// disposed, even if a rotation step evicts it meanwhile (a commit or a retire while a signing session of the older
    /// version is still running; before leases the evicted share was disposed under the session, which then computed
    /// with zeroed pairwise state and its honest peer named it a culprit). A retired version's share is still erased
    /// from the store at once; only its opened copy lives until the last session using it ends.
    /// </summary>
    public async Task<ShareLease> LeaseAtVersionAsync(string keyId, int version, CancellationToken ct)
    {
        for (int attempt = 0; ; attempt++)
        {
            Entry entry = await EntryAtVersionAsync(keyId, version, ct).ConfigureAwait(false);
            if (entry.TryAddRef())
            {
                return new ShareLease(entry);
            }

            // Evicted (and released) between the lookup and the reference: look it up again, from the store if need be.
            if (attempt >= 16)
            {
                throw new ProtocolException($"node {_nodeId}: key {keyId} version {version} keeps being replaced; retry later");
            }
        }
    }

    private async Task<Entry> EntryAtVersionAsync(string keyId, int version, CancellationToken ct)
    {
        Entry current = await CurrentEntryAsync(keyId, ct).ConfigureAwait(false);
        if (version == current.Version)
        {
            return current;
        }

        if (version > current.Version || version < 1)
        {
            throw new ProtocolException($"node {_nodeId} holds key {keyId} at version {current.Version}, not {version}");
        }

        if (_previous.TryGetValue((keyId, version), out Entry? older))
        {
            return older;
        }

        KeyRecord record = await _store.Keys.GetAsync(keyId, ct).ConfigureAwait(false)
            ?? throw new ProtocolException($"node {_nodeId} holds no key {keyId}");
        if (!(await _store.Keys.GetVersionsAsync(keyId, ct).ConfigureAwait(false)).Any(v => v.Version == version && v.HasMaterial)
            || await OpenAsync(keyId, record.Scheme, version, ct).ConfigureAwait(false) is not { } opened)
        {
            throw new ProtocolException($"node {_nodeId} holds key {keyId} at version {current.Version}; version {version} is erased");
        }

        var entry = new Entry(opened, version);
        if (!_previous.TryAdd((keyId, version), entry))
        {
            entry.Release();
            entry = _previous[(keyId, version)];
        }

        return entry;
    }

    /// <summary>Forgets every opened share of the key (after a rotation step changed its versions).</summary>
    public void Evict(string keyId)
    {
        foreach ((string Key, int Version) old in _previous.Keys.Where(k => k.Key == keyId).ToList())
        {
            if (_previous.TryRemove(old, out Entry? p))
            {
                p.Release(); // disposed now, or when the last lease on it ends
            }
        }

        if (_current.TryRemove(keyId, out Entry? c))
        {
            c.Release();
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

    /// <summary>
    /// An opened share and its references: one for the cache while it holds the entry, one per lease. The share is
    /// disposed (its secrets zeroed) when the last reference goes.
    /// </summary>
    internal sealed class Entry(TShare share, int version)
    {
        private int _refs = 1;

        public TShare Share { get; } = share;

        public int Version { get; } = version;

        public bool TryAddRef()
        {
            while (true)
            {
                int refs = Volatile.Read(ref _refs);
                if (refs == 0)
                {
                    return false;
                }

                if (Interlocked.CompareExchange(ref _refs, refs + 1, refs) == refs)
                {
                    return true;
                }
            }
        }

        public void Release()
        {
            if (Interlocked.Decrement(ref _refs) == 0)
            {
                Share.Dispose();
            }
        }
    }

    /// <summary>A share held open for a computation (<see cref="LeaseAtVersionAsync"/>); dispose it when done.</summary>
    public sealed class ShareLease : IDisposable
    {
        private Entry? _entry;

        internal ShareLease(Entry entry) => _entry = entry;

        /// <summary>The opened share (valid until this lease is disposed).</summary>
        public TShare Share => (_entry ?? throw new ObjectDisposedException(nameof(ShareLease))).Share;

        public int Version => (_entry ?? throw new ObjectDisposedException(nameof(ShareLease))).Version;

        public void Dispose() => Interlocked.Exchange(ref _entry, null)?.Release();
    }

    private async Task<TShare?> OpenAsync(string keyId, string scheme, int version, CancellationToken ct)
    {
        using SecretBuffer material = await _store.Keys.OpenMaterialAsync(keyId, version, ct).ConfigureAwait(false);
        return _open(scheme, material.ReadOnlySpan);
    }
}
