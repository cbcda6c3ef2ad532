using System.Buffers.Binary;
using Conclave.Crypto.Memory;
using Conclave.Node.Protocol;
using Conclave.Node.Threshold.Engine;
using Conclave.Storage;
using Conclave.Storage.Encryption;
using Conclave.Storage.Keys;
using Conclave.Storage.Nonces;

namespace Conclave.Node.Tests;

/// <summary>
/// The node half of the threshold engine on its own, with a stand-in protocol's material: pools keyed by a signer set
/// (as a presigning protocol keys them) with the durable consume-before-release ledger, session bookkeeping, and shares by
/// key version from the node's real store.
/// </summary>
public sealed class NodeEngineTests : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "conclave-engine-" + Guid.NewGuid().ToString("N"));
    private IConclaveStore _store = null!;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_dir);
        _store = await ConclaveStore.OpenSqliteAsync(_dir, new StoreOptions { Kek = KeyFileKek.Source(Path.Combine(_dir, "kek"), createIfMissing: true) });
    }

    public async Task DisposeAsync()
    {
        await _store.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task MaterialPool_RecordsEveryIdConsumedBeforePooling_AndServesEachItemOnceInItsScope()
    {
        using NonceEpochs epochs = await NonceEpochs.OpenAsync(_store.Nonces);
        using var pool = new MaterialPool<string, Secret>(_store.Nonces, epochs, NonceKind.Presignature);
        Secret[] batch = [new(), new(), new()];
        IReadOnlyList<byte[]> ids = await pool.IssueAsync("key-a", "signers 1,2", batch, CancellationToken.None);

        Assert.Equal(3, ids.Count);
        Assert.Equal(3, ids.Distinct(new BytesComparer()).Count());
        foreach (byte[] id in ids)
        {
            Assert.Equal(MaterialPool<string, Secret>.IdSizeInBytes, id.Length);
            Assert.Equal(NonceStatus.Consumed, await _store.Nonces.GetStatusAsync(MaterialPool<string, Secret>.LedgerId("key-a", id)));
        }

        Assert.Equal(3, pool.Count("key-a"));
        Assert.Null(pool.Take("key-a", "signers 1,3", ids[0])); // another signer set's pool
        Assert.Null(pool.Take("key-b", "signers 1,2", ids[0]));
        Assert.Same(batch[0], pool.Take("key-a", "signers 1,2", ids[0]));
        Assert.Null(pool.Take("key-a", "signers 1,2", ids[0])); // taken once, never again
        Assert.Null(pool.Take("key-a", "signers 1,2", ids[0].AsSpan(0, 8)));

        pool.Evict("key-a");
        Assert.Equal(0, pool.Count("key-a"));
        Assert.False(batch[0].Disposed); // taken: its user disposes it
        Assert.True(batch[1].Disposed && batch[2].Disposed);
        Assert.Null(pool.Take("key-a", "signers 1,2", ids[1]));
    }

    [Fact]
    public async Task MaterialPool_WhenTheLedgerWriteFails_DisposesTheBatchAndPoolsNothing()
    {
        using NonceEpochs epochs = await NonceEpochs.OpenAsync(_store.Nonces);
        using var pool = new MaterialPool<int, Secret>(_store.Nonces, epochs, NonceKind.Nonce);
        Secret[] batch = [new(), new()];
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pool.IssueAsync("key-a", 1, batch, cancelled.Token));

        Assert.All(batch, s => Assert.True(s.Disposed));
        Assert.Equal(0, pool.Count("key-a"));
    }

    /// <summary>
    /// Main's nonce epochs kept under the engine's pool (issue 14 item 12): every id the pool issues starts with the node's
    /// current epoch, so when a new epoch begins the consumed ledger rows of the older one are pruned; an id of a pruned
    /// epoch still serves only once (it is taken from memory, never accepted from the ledger), and after a restart
    /// (a new pool, epochs opened again on the same ledger) it is not accepted at all and no id of an old epoch is issued.
    /// </summary>
    [Fact]
    public async Task MaterialPool_IssuesIdsOfTheNodesNonceEpoch_SoTheLedgerIsPrunedAndNoIdServesTwice()
    {
        byte[] first;
        ulong firstEpoch;
        using (NonceEpochs epochs = await NonceEpochs.OpenAsync(_store.Nonces, epochSize: 2))
        using (var pool = new MaterialPool<int, Secret>(_store.Nonces, epochs, NonceKind.Nonce))
        {
            firstEpoch = epochs.Current;
            IReadOnlyList<byte[]> ids = await pool.IssueAsync("key-a", 1, [new(), new()], CancellationToken.None);
            Assert.All(ids, id => Assert.Equal(firstEpoch, BinaryPrimitives.ReadUInt64BigEndian(id)));
            first = ids[0];
            Assert.Equal(NonceStatus.Consumed, await _store.Nonces.GetStatusAsync(MaterialPool<int, Secret>.LedgerId("key-a", first)));

            // The epoch is full: the next batch begins a new one, which prunes the consumed rows of the first.
            IReadOnlyList<byte[]> next = await pool.IssueAsync("key-a", 1, [new(), new()], CancellationToken.None);
            Assert.All(next, id => Assert.True(BinaryPrimitives.ReadUInt64BigEndian(id) > firstEpoch));
            Assert.Equal(NonceStatus.Unknown, await _store.Nonces.GetStatusAsync(MaterialPool<int, Secret>.LedgerId("key-a", first)));

            using Secret? taken = pool.Take("key-a", 1, first);
            Assert.NotNull(taken);
            Assert.Null(pool.Take("key-a", 1, first)); // pruned from the ledger, still never served twice
        }

        using (NonceEpochs epochs = await NonceEpochs.OpenAsync(_store.Nonces, epochSize: 2))
        using (var pool = new MaterialPool<int, Secret>(_store.Nonces, epochs, NonceKind.Nonce))
        {
            Assert.Null(pool.Take("key-a", 1, first)); // a restart never accepts an id it did not issue itself
            IReadOnlyList<byte[]> ids = await pool.IssueAsync("key-a", 1, [new()], CancellationToken.None);
            Assert.True(BinaryPrimitives.ReadUInt64BigEndian(ids[0]) > firstEpoch + 1);
        }
    }

    [Fact]
    public void SessionTable_RefusesUnknownSessions_AndSweepsExpiredOnesDisposingTheirState()
    {
        var clock = new ManualClock(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var table = new SessionTable<Secret>(TimeSpan.FromMinutes(5), clock);
        byte[] oldSession = new byte[32];
        byte[] newSession = Enumerable.Repeat((byte)7, 32).ToArray();
        var oldState = new Secret();
        var newState = new Secret();
        Assert.True(table.TryAdd(SessionTable<Secret>.RunId(oldSession), oldState));
        Assert.False(table.TryAdd(SessionTable<Secret>.RunId(oldSession), new Secret()));
        clock.Now += TimeSpan.FromMinutes(4);
        Assert.True(table.TryAdd(SessionTable<Secret>.RunId(newSession), newState));

        clock.Now += TimeSpan.FromMinutes(2);
        table.Sweep();

        Assert.True(oldState.Disposed);
        Assert.Throws<ProtocolException>(() => table.Get(oldSession));
        Assert.Same(newState, table.Get(newSession));
        Assert.False(newState.Disposed);
        table.Drop(SessionTable<Secret>.RunId(newSession));
        Assert.True(newState.Disposed);
        Assert.Empty(table.Values);
    }

    [Fact]
    public async Task KeyVersions_OpensTheCurrentShare_RefusesOtherProtocolsAndVersionsItDoesNotHold()
    {
        using (SecretBuffer material = SecretBuffer.CopyFrom([1, 2, 3]))
        {
            await _store.Keys.CreateAsync(new NewKey("key-a", "key-a", "test-scheme", [9, 9], 2, 3), material);
        }

        using (SecretBuffer material = SecretBuffer.CopyFrom([4, 5, 6]))
        {
            await _store.Keys.CreateAsync(new NewKey("key-b", "key-b", "other-scheme", [8, 8], 2, 3), material);
        }

        using var versions = new KeyVersions<Share>(_store, 4, "TEST", (scheme, m) => scheme == "test-scheme" ? new Share(m.ToArray()) : null);
        (Share share, int version) = await versions.GetCurrentAsync("key-a", CancellationToken.None);
        Assert.Equal(new byte[] { 1, 2, 3 }, share.Material);
        Assert.Equal(1, version);
        Assert.Same(share, await versions.GetAtVersionAsync("key-a", 1, CancellationToken.None));

        ProtocolException above = await Assert.ThrowsAsync<ProtocolException>(() => versions.GetAtVersionAsync("key-a", 2, CancellationToken.None));
        Assert.Contains("holds key key-a at version 1, not 2", above.Message, StringComparison.Ordinal);
        ProtocolException other = await Assert.ThrowsAsync<ProtocolException>(() => versions.GetCurrentAsync("key-b", CancellationToken.None));
        Assert.Contains("not a TEST key", other.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<ProtocolException>(() => versions.GetCurrentAsync("key-c", CancellationToken.None));

        versions.Evict("key-a");
        Assert.True(share.Disposed);
        Assert.NotSame(share, (await versions.GetCurrentAsync("key-a", CancellationToken.None)).Share);
    }

    /// <summary>
    /// A share leased for a computation survives an eviction until the lease ends (the full suite once saw an honest
    /// DKLs23 node named a culprit: a refresh committed on it between two rounds of a signing session of the older
    /// version, the eviction disposed the session's share, and its later round computed with zeroed pairwise state).
    /// </summary>
    [Fact]
    public async Task KeyVersions_ALeasedShareOutlivesAnEviction_AndIsErasedWhenTheLastLeaseEnds()
    {
        using (SecretBuffer material = SecretBuffer.CopyFrom([1, 2, 3]))
        {
            await _store.Keys.CreateAsync(new NewKey("key-l", "key-l", "test-scheme", [9, 9], 2, 3), material);
        }

        using var versions = new KeyVersions<Share>(_store, 4, "TEST", (scheme, m) => scheme == "test-scheme" ? new Share(m.ToArray()) : null);
        KeyVersions<Share>.ShareLease first = await versions.LeaseAtVersionAsync("key-l", 1, CancellationToken.None);
        KeyVersions<Share>.ShareLease second = await versions.LeaseAtVersionAsync("key-l", 1, CancellationToken.None);
        Share held = first.Share;
        Assert.Same(held, second.Share);
        Assert.Equal(1, first.Version);

        versions.Evict("key-l"); // a rotation step (commit or retire) while two sessions still compute with the share
        Assert.False(held.Disposed);
        Assert.Equal(new byte[] { 1, 2, 3 }, first.Share.Material);

        // A new lookup opens a fresh copy from the store; the evicted one is not handed out again.
        using (KeyVersions<Share>.ShareLease fresh = await versions.LeaseAtVersionAsync("key-l", 1, CancellationToken.None))
        {
            Assert.NotSame(held, fresh.Share);
        }

        first.Dispose();
        first.Dispose(); // a second dispose releases nothing more
        Assert.False(held.Disposed);
        Assert.Throws<ObjectDisposedException>(() => first.Share);
        second.Dispose();
        Assert.True(held.Disposed);

        // The cache's own copy is disposed by an eviction when no lease holds it, as before.
        (Share cached, _) = await versions.GetCurrentAsync("key-l", CancellationToken.None);
        versions.Evict("key-l");
        Assert.True(cached.Disposed);
    }

    private sealed class Secret : IDisposable
    {
        public bool Disposed { get; private set; }

        public void Dispose() => Disposed = true;
    }

    private sealed class Share(byte[] material) : IDisposable
    {
        public byte[] Material { get; } = material;

        public bool Disposed { get; private set; }

        public void Dispose() => Disposed = true;
    }

    private sealed class BytesComparer : IEqualityComparer<byte[]>
    {
        public bool Equals(byte[]? x, byte[]? y) => x.AsSpan().SequenceEqual(y);

        public int GetHashCode(byte[] obj) => obj.Length == 0 ? 0 : obj[0];
    }

    /// <summary>A session id is refused a second time until the retention has passed (DklsSignHandlers' round one; docs/DKLS23.md "Stray relayed messages").</summary>
    [Fact]
    public void A_used_session_id_is_refused_within_the_retention_and_forgotten_after_it()
    {
        var clock = new ManualClock(DateTimeOffset.UnixEpoch.AddDays(20_000));
        var ids = new UsedSessionIds(TimeSpan.FromMinutes(6), clock);
        Assert.True(ids.TryUse("a"));
        Assert.False(ids.TryUse("a"));
        Assert.True(ids.TryUse("b"));
        clock.Now += TimeSpan.FromMinutes(5);
        Assert.False(ids.TryUse("a"));
        Assert.True(ids.TryUse("c"));
        clock.Now += TimeSpan.FromMinutes(1) + TimeSpan.FromSeconds(2);
        Assert.True(ids.TryUse("a")); // older than the retention: pruned, usable again (no message of it is valid any more)
        Assert.False(ids.TryUse("c"));
        Assert.Equal(2, ids.Count); // "b" pruned with the first "a"; the new "a" and "c" kept
        Assert.Throws<ArgumentOutOfRangeException>(() => new UsedSessionIds(TimeSpan.Zero));
    }

    private sealed class ManualClock(DateTimeOffset now) : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = now;

        public override DateTimeOffset GetUtcNow() => Now;
    }
}
