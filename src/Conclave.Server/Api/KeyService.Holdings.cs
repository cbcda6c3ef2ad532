using Conclave.Crypto;
using Conclave.Node.Threshold.Engine;
using Conclave.Server.Threshold.Dkls23;
using Conclave.Server.Threshold.Engine;
using Conclave.Storage;
using Conclave.Storage.Keys;
using Conclave.Threshold;
using Conclave.Threshold.Dkls23;
using Conclave.Threshold.Frost;

namespace Conclave.Server.Api;

/// <summary>
/// Which signer nodes hold which threshold keys (issue 18), read from the store rather than from the coordinators'
/// registries: a key is registered only when it is first used after start, so the registries hold the keys used since
/// start, not every key. The key row records the holders of its current version (<see cref="KeyRecord.Holders"/>,
/// covered by the row's MAC, written in the same transaction as the version by the rotation run's commit), so eviction,
/// the node list and readiness see every stored key without reading and checking each key's sealed package. A row
/// written before holders were recorded gets them the first time its package is read (first use, or the background pass
/// <see cref="RecordMissingHoldersAsync"/> after start).
/// </summary>
public sealed partial class KeyService
{
    /// <summary>An active threshold key of the store and the nodes holding shares of its current version.</summary>
    private sealed record KeyHolding(KeyRecord Key, IReadOnlyList<uint> Holders) : IThresholdKey
    {
        public string KeyId => Key.Id;

        public int Version => Key.Version;

        public int Threshold => Key.Threshold;

        public IReadOnlyList<uint> Nodes => Holders;
    }

    /// <summary>How long readiness reuses the store's holdings it read (a read lists every key row: about a second at 100,000 keys).</summary>
    private static readonly TimeSpan s_holdingsReuse = TimeSpan.FromSeconds(10);

    private readonly SemaphoreSlim _holdingsRead = new(1, 1);
    private (long ReadAtMs, IReadOnlyList<KeyHolding> Holdings)? _readinessHoldings;

    private static bool IsThresholdScheme(string scheme) => scheme == DklsScheme.Name || FrostCiphersuite.TryGet(scheme, out _);

    /// <summary>
    /// Every active threshold key of the store (FROST and ecdsa-dkls23) with its holders. A row
    /// that records no holders yet is, with <paramref name="readUnrecorded"/>, registered as on first use (its package
    /// read and checked, its holders recorded); without, it takes its holders from the coordinator's registration if the
    /// key was used since start, and is left out otherwise. A tampered row fails the whole listing, as it always did.
    /// </summary>
    private async Task<IReadOnlyList<KeyHolding>> HoldingsAsync(bool readUnrecorded, CancellationToken ct)
    {
        var list = new List<KeyHolding>();
        foreach (KeyRecord k in await _store.Keys.ListAsync(ct).ConfigureAwait(false))
        {
            bool frost = FrostCiphersuite.TryGet(k.Scheme, out FrostCiphersuite? suite);
            if (k.State != KeyState.Active || !(frost || k.Scheme == DklsScheme.Name))
            {
                continue;
            }

            IReadOnlyList<uint>? holders = k.Holders;
            if (holders is null && readUnrecorded)
            {
                holders = frost ? (await FrostKeyAsync(k, suite!, ct).ConfigureAwait(false)).Nodes : (await DklsKeyAsync(k, ct).ConfigureAwait(false)).Nodes;
            }
            else if (holders is null)
            {
                holders = frost ? RegisteredNodes(_frost.Find(k.Id), k) : RegisteredNodes(_dkls.Find(k.Id), k);
            }

            if (holders is not null)
            {
                list.Add(new KeyHolding(k, holders));
            }
        }

        return list;
    }

    private static IReadOnlyList<uint>? RegisteredNodes(IThresholdKey? registered, KeyRecord key) =>
        registered is not null && registered.Version == key.Version ? registered.Nodes : null;

    /// <summary>
    /// The threshold keys (ids, ordered) whose holders that are up (<paramref name="up"/>) are fewer than their
    /// threshold: every key registered since start, and, when some node of the cluster is down, every active threshold
    /// key of the store by the holders its row records (a newer registration overrides it). The store's holdings are read
    /// at most every 10 seconds (they change only when a key is created or rotated, and this server's own changes are in
    /// its registrations at once). With every node of the cluster up no key whose holders are nodes of the cluster can be
    /// below its threshold, so the store is not read.
    /// </summary>
    public async Task<IReadOnlyList<string>> KeysBelowQuorumAsync(IReadOnlyList<uint> up, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(up);
        var keys = new Dictionary<string, IThresholdKey>(StringComparer.Ordinal);
        if (!_cluster.NodeIds.All(up.Contains))
        {
            try
            {
                foreach (KeyHolding h in await ReadinessHoldingsAsync(ct).ConfigureAwait(false))
                {
                    keys[h.KeyId] = h;
                }
            }
            catch (StorageException e) when (e.Kind == StorageErrorKind.IntegrityCheckFailed)
            {
                // A tampered key row: the registrations alone, as before holders were stored (the row is refused wherever it is read).
            }
        }

        foreach (IThresholdKey k in _frost.Keys.Cast<IThresholdKey>().Concat(_dkls.Keys))
        {
            if (!keys.TryGetValue(k.KeyId, out IThresholdKey? stored) || k.Version > stored.Version)
            {
                keys[k.KeyId] = k;
            }
        }

        return [.. keys.Values.Where(k => k.Nodes.Count(up.Contains) < k.Threshold).Select(k => k.KeyId).Order(StringComparer.Ordinal)];
    }

    /// <summary>The store's holdings for readiness: read again when the last read is older than 10 seconds, one read at a time.</summary>
    private async Task<IReadOnlyList<KeyHolding>> ReadinessHoldingsAsync(CancellationToken ct)
    {
        await _holdingsRead.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            long now = Environment.TickCount64;
            if (_readinessHoldings is { } last && now - last.ReadAtMs < s_holdingsReuse.TotalMilliseconds)
            {
                return last.Holdings;
            }

            IReadOnlyList<KeyHolding> read = await HoldingsAsync(readUnrecorded: false, ct).ConfigureAwait(false);
            _readinessHoldings = (now, read);
            return read;
        }
        finally
        {
            _holdingsRead.Release();
        }
    }

    /// <summary>
    /// The holders of a key as its checked package names them (<paramref name="nodes"/>, on registration): recorded in a
    /// row that names none yet; a row whose recorded holders differ from its package is refused like any tampered row.
    /// </summary>
    private async Task CheckHoldersAsync(KeyRecord key, IReadOnlyList<uint> nodes)
    {
        if (key.Holders is { } recorded)
        {
            if (!recorded.Order().SequenceEqual(nodes.Order()))
            {
                throw new StorageException(StorageErrorKind.IntegrityCheckFailed,
                    $"key '{key.Id}': the key record failed its integrity check (its recorded holders are not its public key package's); it is refused");
            }

            return;
        }

        try
        {
            _ = await _store.Keys.RecordHoldersAsync(key.Id, key.Version, nodes, CancellationToken.None).ConfigureAwait(false);
        }
        catch (StorageException e) when (e.Kind != StorageErrorKind.IntegrityCheckFailed)
        {
            // The store was busy: recorded at the next registration or by the background pass; the key works meanwhile.
        }
    }

    /// <summary>
    /// Records the holders of every active threshold key whose row names none (rows written before the store recorded
    /// holders), reading and checking its package as first use does but without registering the key. Run once in the
    /// background after start. A key whose row or package fails its check is skipped (it is refused wherever it is read);
    /// a tampered row that fails the listing leaves every row for first use. Returns the rows recorded.
    /// </summary>
    public async Task<int> RecordMissingHoldersAsync(CancellationToken ct)
    {
        IReadOnlyList<KeyRecord> all;
        try
        {
            all = await _store.Keys.ListAsync(ct).ConfigureAwait(false);
        }
        catch (StorageException e) when (e.Kind == StorageErrorKind.IntegrityCheckFailed)
        {
            return 0;
        }

        int recorded = 0;
        foreach (KeyRecord k in all.Where(k => k.State == KeyState.Active && k.Holders is null && IsThresholdScheme(k.Scheme)))
        {
            try
            {
                IReadOnlyList<uint> holders = FrostCiphersuite.TryGet(k.Scheme, out FrostCiphersuite? suite)
                    ? [.. (await ReadPackageAsync(k, suite, ct).ConfigureAwait(false)).Participants.Select(p => FrostNodeIds.ToNode(p))]
                    : new DklsKeyInfo(k.Id, await ReadDklsKeyAsync(k, ct).ConfigureAwait(false), k.Version).Nodes;
                if ((await _store.Keys.RecordHoldersAsync(k.Id, k.Version, holders, ct).ConfigureAwait(false)).Holders is not null)
                {
                    recorded++;
                }
            }
            catch (Exception e) when (e is StorageException or ThresholdProtocolException or CryptoFormatException or ArgumentException)
            {
                // Refused wherever it is read; the other keys go on.
            }
        }

        return recorded;
    }
}
