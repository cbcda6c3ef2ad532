using System.Collections.Concurrent;

namespace Conclave.Server.Threshold.Engine;

/// <summary>
/// The coordinator's pools of public pre-computed material, one pool per <typeparamref name="TPoolKey"/>: for FROST the
/// round-one commitments per (key, version, node), for a protocol that presigns per signer set the presignature handles
/// per (key, version, signer set). An item is removed from its pool before it is used (<see cref="TakeAsync"/>), so the
/// coordinator never hands one item to two signing rounds; the nodes enforce the same on their side with their durable
/// consume-before-release ledger. A pool is refilled in the background when it falls below <see cref="LowWater"/>,
/// one refill in flight per pool. The pool key must name the key version: material issued for one version never
/// serves another (<see cref="Drop"/> after a rotation).
/// </summary>
/// <param name="fetch">Asks the node(s) behind a pool for a new batch (the protocol's pre-computation round).</param>
/// <param name="backgroundFailure">
/// Told of a failed background refill; returns true when it handled the failure (for example by resting the node).
/// </param>
public sealed class MaterialPools<TPoolKey, TItem>(
    Func<TPoolKey, CancellationToken, Task<IReadOnlyList<TItem>>> fetch,
    Func<TPoolKey, Exception, bool> backgroundFailure)
    where TPoolKey : notnull
    where TItem : class
{
    private readonly ConcurrentDictionary<TPoolKey, Pool> _pools = new();

    /// <summary>A refill starts when a pool falls below this.</summary>
    public int LowWater { get; set; } = 32;

    /// <summary>How many items the pool holds now.</summary>
    public int Depth(TPoolKey key) => _pools.TryGetValue(key, out Pool? p) ? p.Count : 0;

    /// <summary>
    /// Takes one item out of the pool (after this no other caller can obtain it); an empty pool is refilled first. Returns
    /// null when the pool is still empty after the refill this call waited for (it failed, or other calls took all).
    /// </summary>
    public async Task<TItem?> TakeAsync(TPoolKey key, CancellationToken ct)
    {
        Pool pool = _pools.GetOrAdd(key, _ => new Pool());
        if (pool.TryTake(out TItem? item))
        {
            if (pool.Count < LowWater)
            {
                _ = RefillInBackground(key, pool);
            }

            return item;
        }

        await RefillAsync(key, pool, ct).ConfigureAwait(false);
        return pool.TryTake(out item) ? item : null;
    }

    /// <summary>
    /// Takes one item without waiting (after this no other caller can obtain it); null when the pool is empty. A pool left
    /// below <see cref="LowWater"/> is refilled in the background.
    /// </summary>
    public TItem? TryTake(TPoolKey key)
    {
        if (!_pools.TryGetValue(key, out Pool? pool) || !pool.TryTake(out TItem? item))
        {
            return null;
        }

        if (pool.Count < LowWater)
        {
            _ = RefillInBackground(key, pool);
        }

        return item;
    }

    /// <summary>Starts a background refill of the pool unless one is in flight (failures go to the background handler).</summary>
    public void StartRefill(TPoolKey key) => _ = RefillInBackground(key, _pools.GetOrAdd(key, _ => new Pool()));

    /// <summary>The pools that exist now (some may be empty).</summary>
    public IReadOnlyList<TPoolKey> PoolKeys => [.. _pools.Keys];

    /// <summary>Fetches one batch into the pool (or waits for the refill already in flight).</summary>
    public Task RefillAsync(TPoolKey key, CancellationToken ct) => RefillAsync(key, _pools.GetOrAdd(key, _ => new Pool()), ct);

    /// <summary>Forgets the pools <paramref name="which"/> selects (stale after a rotation, a node restart or a repair).</summary>
    public void Drop(Func<TPoolKey, bool> which)
    {
        ArgumentNullException.ThrowIfNull(which);
        foreach (TPoolKey key in _pools.Keys.Where(which))
        {
            _pools.TryRemove(key, out _);
        }
    }

    private async Task RefillInBackground(TPoolKey key, Pool pool)
    {
        try
        {
            await RefillAsync(key, pool, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (backgroundFailure(key, e))
        {
        }
    }

    private async Task RefillAsync(TPoolKey key, Pool pool, CancellationToken ct)
    {
        if (!await pool.RefillGate.WaitAsync(0, ct).ConfigureAwait(false))
        {
            // Another refill is in flight: wait for it.
            await pool.RefillGate.WaitAsync(ct).ConfigureAwait(false);
            pool.RefillGate.Release();
            return;
        }

        try
        {
            pool.AddRange(await fetch(key, ct).ConfigureAwait(false));
        }
        finally
        {
            pool.RefillGate.Release();
        }
    }

    private sealed class Pool
    {
        private readonly ConcurrentQueue<TItem> _queue = new();

        public SemaphoreSlim RefillGate { get; } = new(1, 1);

        public int Count => _queue.Count;

        public bool TryTake(out TItem? item) => _queue.TryDequeue(out item);

        public void AddRange(IEnumerable<TItem> items)
        {
            foreach (TItem i in items)
            {
                _queue.Enqueue(i);
            }
        }
    }
}
