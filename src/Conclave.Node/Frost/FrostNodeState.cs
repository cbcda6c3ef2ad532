using System.Collections.Concurrent;
using Conclave.Crypto.Memory;
using Conclave.Storage;
using Conclave.Storage.Keys;
using Conclave.Threshold.Frost;
using Conclave.Threshold.Frost.Ciphersuites;

namespace Conclave.Node.Frost;

/// <summary>
/// What a node holds for FROST: its key packages (sealed in its own store, cached opened in memory) and its
/// nonce pools. Pooled nonces live only in memory: their ids are recorded consumed in the durable ledger
/// before their commitments leave the node, and each is removed from the pool atomically when it signs,
/// so a nonce signs at most once and a restart can lose nonces but never reuse one (safety rule 1).
/// </summary>
public sealed class FrostNodeState : IDisposable
{
    private readonly ConcurrentDictionary<string, KeyPackage> _keys = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int> _versions = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string Key, int Version), KeyPackage> _previous = new();
    private readonly ConcurrentDictionary<string, ConcurrentDictionary<UInt128, SigningNonces>> _pools = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _loadGate = new(1, 1);

    public FrostNodeState(IConclaveStore store, uint nodeId)
    {
        Store = store;
        NodeId = nodeId;
    }

    public IConclaveStore Store { get; }

    public uint NodeId { get; }

    /// <summary>Testing only: alter every signature share (see NodeConfig.FaultInjection).</summary>
    public bool CorruptShares { get; init; }

    /// <summary>The nonce epochs of this node's ledger (opened at start; NonceEpochs).</summary>
    public required NonceEpochs Epochs { get; init; }

    /// <summary>Upper bound of pooled nonces per key, to bound memory.</summary>
    public int MaxPoolPerKey { get; init; } = 100_000;

    public async Task<KeyPackage> GetKeyAsync(string keyId, CancellationToken ct) => (await GetKeyWithVersionAsync(keyId, ct).ConfigureAwait(false)).Key;

    /// <summary>The opened key package and the key version it belongs to (cached together).</summary>
    public async Task<(KeyPackage Key, int Version)> GetKeyWithVersionAsync(string keyId, CancellationToken ct)
    {
        if (_keys.TryGetValue(keyId, out KeyPackage? k) && _versions.TryGetValue(keyId, out int v))
        {
            return (k, v);
        }

        await _loadGate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (_keys.TryGetValue(keyId, out k) && _versions.TryGetValue(keyId, out v))
            {
                return (k, v);
            }

            KeyRecord record = await Store.Keys.GetAsync(keyId, ct).ConfigureAwait(false)
                ?? throw new Protocol.ProtocolException($"node {NodeId} holds no key {keyId}");
            if (record.State != KeyState.Active)
            {
                throw new Protocol.ProtocolException($"key {keyId} is {record.State.ToString().ToLowerInvariant()}");
            }

            if (!FrostCiphersuite.TryGet(record.Scheme, out FrostCiphersuite? suite))
            {
                throw new Protocol.ProtocolException($"key {keyId} is not a FROST key");
            }

            using SecretBuffer material = await Store.Keys.OpenMaterialAsync(keyId, record.Version, ct).ConfigureAwait(false);
            k = KeyPackage.Import(suite, material.ReadOnlySpan);
            _versions[keyId] = record.Version;
            _keys[keyId] = k;
            return (k, record.Version);
        }
        finally
        {
            _loadGate.Release();
        }
    }

    /// <summary>
    /// Refuses unless this node can sign with the key at <paramref name="version"/>: the current version, or an older one
    /// whose share is still held because the rotation that replaced it is not yet retired. A node restored from a
    /// backup taken before a refresh holds a stale share at its current version and refuses the newer one; a pending
    /// version (not yet committed) never signs.
    /// </summary>
    public async Task RequireVersionAsync(string keyId, int version, CancellationToken ct) =>
        _ = await GetKeyAtVersionAsync(keyId, version, ct).ConfigureAwait(false);

    /// <summary>The opened key package of <paramref name="version"/> (see <see cref="RequireVersionAsync"/>).</summary>
    public async Task<KeyPackage> GetKeyAtVersionAsync(string keyId, int version, CancellationToken ct)
    {
        (KeyPackage current, int currentVersion) = await GetKeyWithVersionAsync(keyId, ct).ConfigureAwait(false);
        if (version == currentVersion)
        {
            return current;
        }

        if (version > currentVersion || version < 1)
        {
            throw new Protocol.ProtocolException($"node {NodeId} holds key {keyId} at version {currentVersion}, not {version}");
        }

        if (_previous.TryGetValue((keyId, version), out KeyPackage? older))
        {
            return older;
        }

        KeyRecord record = await Store.Keys.GetAsync(keyId, ct).ConfigureAwait(false)
            ?? throw new Protocol.ProtocolException($"node {NodeId} holds no key {keyId}");
        if (!(await Store.Keys.GetVersionsAsync(keyId, ct).ConfigureAwait(false)).Any(v => v.Version == version && v.HasMaterial)
            || !FrostCiphersuite.TryGet(record.Scheme, out FrostCiphersuite? suite))
        {
            throw new Protocol.ProtocolException($"node {NodeId} holds key {keyId} at version {currentVersion}; version {version} is erased");
        }

        using SecretBuffer material = await Store.Keys.OpenMaterialAsync(keyId, version, ct).ConfigureAwait(false);
        older = KeyPackage.Import(suite, material.ReadOnlySpan);
        if (!_previous.TryAdd((keyId, version), older))
        {
            older.Dispose();
            older = _previous[(keyId, version)];
        }

        return older;
    }

    /// <summary>Forgets an opened key (after refresh or reshare replaced it) and drops its pool.</summary>
    public void Evict(string keyId)
    {
        _versions.TryRemove(keyId, out _);
        foreach ((string Key, int Version) old in _previous.Keys.Where(k => k.Key == keyId).ToList())
        {
            if (_previous.TryRemove(old, out KeyPackage? p))
            {
                p.Dispose();
            }
        }

        if (_keys.TryRemove(keyId, out KeyPackage? k))
        {
            k.Dispose();
        }

        if (_pools.TryRemove(keyId, out ConcurrentDictionary<UInt128, SigningNonces>? pool))
        {
            foreach (SigningNonces n in pool.Values)
            {
                n.Dispose();
            }
        }
    }

    public int PoolSize(string keyId) => _pools.TryGetValue(keyId, out var p) ? p.Count : 0;

    internal void AddToPool(string keyId, IEnumerable<(UInt128 Id, SigningNonces Nonces)> items)
    {
        ConcurrentDictionary<UInt128, SigningNonces> pool = _pools.GetOrAdd(keyId, _ => new ConcurrentDictionary<UInt128, SigningNonces>());
        foreach ((UInt128 id, SigningNonces n) in items)
        {
            pool[id] = n;
        }
    }

    /// <summary>Takes a nonce out of the pool; after this no other request can obtain it.</summary>
    internal SigningNonces? TakeFromPool(string keyId, UInt128 id)
        => _pools.TryGetValue(keyId, out var pool) && pool.TryRemove(id, out SigningNonces? n) ? n : null;

    public void Dispose()
    {
        foreach (string key in _keys.Keys.ToList())
        {
            Evict(key);
        }

        foreach (string key in _pools.Keys.ToList())
        {
            Evict(key);
        }

        _loadGate.Dispose();
        Epochs.Dispose();
    }
}
