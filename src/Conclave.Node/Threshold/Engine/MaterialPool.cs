using System.Buffers.Binary;
using System.Collections.Concurrent;
using Conclave.Storage.Nonces;

namespace Conclave.Node.Threshold.Engine;

/// <summary>
/// A node's pools of one-time pre-computed secrets (FROST signing nonces, DKLs23 presignatures), per key and
/// <typeparamref name="TScope"/> (FROST: one scope per key; a protocol that presigns per signer set: the signer set, bound
/// with the key version into the item itself). Consume-before-release (DESIGN.md safety rule 1): <see cref="IssueAsync"/>
/// records every item's id consumed in the node's durable ledger before anything derived from it may leave the node,
/// then pools the secrets in memory only; <see cref="Take"/> removes an item atomically, so it serves at most one request.
/// A restart loses the pool and can never reuse an item. Every id starts with the node's current nonce epoch
/// (<see cref="NonceEpochs"/>, shared by all of a node's pools), so the consumed rows of older epochs can be pruned from the
/// ledger; a pruned id is never issued again and never accepted, since only ids this process pooled can be taken.
/// </summary>
public sealed class MaterialPool<TScope, TItem>(INonceLedger ledger, NonceEpochs epochs, NonceKind kind) : IDisposable
    where TScope : notnull
    where TItem : class, IDisposable
{
    /// <summary>Bytes of the id each pooled item is named by on the wire: epoch (8 bytes) ‖ 8 random bytes (NonceEpochs.NewNonceId).</summary>
    public const int IdSizeInBytes = NonceEpochs.NonceIdSizeInBytes;

    private readonly ConcurrentDictionary<(string Key, TScope Scope), ConcurrentDictionary<UInt128, TItem>> _pools = new();

    /// <summary>Items pooled for the key, over every scope.</summary>
    public int Count(string keyId) => _pools.Where(p => p.Key.Key == keyId).Sum(p => p.Value.Count);

    /// <summary>
    /// Names every item of <paramref name="batch"/> with a fresh id of the current nonce epoch (reserving room for the batch
    /// in the epoch, which may begin a new one and prune older ones), records the ids consumed in the durable ledger (one
    /// transaction), and only then pools the items; returns the ids in batch order. If the reservation or the ledger write
    /// fails every item of the batch is disposed and nothing is pooled.
    /// </summary>
    public async Task<IReadOnlyList<byte[]>> IssueAsync(string keyId, TScope scope, IReadOnlyList<TItem> batch, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(keyId);
        ArgumentNullException.ThrowIfNull(batch);
        var ids = new List<byte[]>(batch.Count);
        try
        {
            ulong epoch = await epochs.ReserveAsync(batch.Count, ct).ConfigureAwait(false);
            var issues = new List<NonceIssue>(batch.Count);
            foreach (TItem _ in batch)
            {
                byte[] id = NonceEpochs.NewNonceId(epoch);
                ids.Add(id);
                issues.Add(new NonceIssue(LedgerId(keyId, id), keyId, kind));
            }

            // Durable before any value derived from these items leaves the node.
            await ledger.IssueConsumedAsync(issues, ct).ConfigureAwait(false);
        }
        catch
        {
            foreach (TItem item in batch)
            {
                item.Dispose();
            }

            throw;
        }

        ConcurrentDictionary<UInt128, TItem> pool = _pools.GetOrAdd((keyId, scope), _ => new ConcurrentDictionary<UInt128, TItem>());
        for (int i = 0; i < batch.Count; i++)
        {
            pool[ToKey(ids[i])] = batch[i];
        }

        return ids;
    }

    /// <summary>Takes an item out of the pool; after this no other request can obtain it. Null: unknown or already used.</summary>
    public TItem? Take(string keyId, TScope scope, ReadOnlySpan<byte> id) =>
        id.Length == IdSizeInBytes && _pools.TryGetValue((keyId, scope), out var pool) && pool.TryRemove(ToKey(id), out TItem? item) ? item : null;

    /// <summary>Drops (and disposes) everything pooled for the key: its version changed or its share was erased.</summary>
    public void Evict(string keyId) => Drop(k => k.Key == keyId);

    /// <summary>Drops (and disposes) everything pooled for the key except what was issued under <paramref name="keep"/>.</summary>
    public void EvictExcept(string keyId, TScope keep) => Drop(k => k.Key == keyId && !EqualityComparer<TScope>.Default.Equals(k.Scope, keep));

    private void Drop(Func<(string Key, TScope Scope), bool> which)
    {
        foreach ((string Key, TScope Scope) p in _pools.Keys.Where(which).ToList())
        {
            if (_pools.TryRemove(p, out ConcurrentDictionary<UInt128, TItem>? pool))
            {
                foreach (TItem item in pool.Values)
                {
                    item.Dispose();
                }
            }
        }
    }

    public void Dispose()
    {
        foreach (string key in _pools.Keys.Select(k => k.Key).Distinct().ToList())
        {
            Evict(key);
        }
    }

    /// <summary>The ledger id of a pooled item: its epoch ‖ the first 24 bytes of SHA-256(UTF-8 key id ‖ 0x00 ‖ item id) (NonceEpochs.LedgerId).</summary>
    public static byte[] LedgerId(string keyId, ReadOnlySpan<byte> id) => NonceEpochs.LedgerId(keyId, id);

    private static UInt128 ToKey(ReadOnlySpan<byte> id16) => BinaryPrimitives.ReadUInt128BigEndian(id16);
}
