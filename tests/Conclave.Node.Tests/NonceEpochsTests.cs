using System.Buffers.Binary;
using Conclave.Node.Threshold.Engine;
using Conclave.Storage;
using Conclave.Storage.Encryption;
using Conclave.Storage.Nonces;

namespace Conclave.Node.Tests;

/// <summary>
/// Issue 14 item 12: the node's nonce ledger is pruned by epoch (NonceEpochs) and a pruned id can never be issued
/// again: epochs only go up, also across restarts after everything older was pruned.
/// </summary>
public sealed class NonceEpochsTests : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "conclave-epochs-" + Guid.NewGuid().ToString("N")[..10]);
    private IConclaveStore _store = null!;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_dir);
        _store = await ConclaveStore.OpenSqliteAsync(Path.Combine(_dir, "data"), new StoreOptions { Kek = KeyFileKek.Source(Path.Combine(_dir, "node.kek"), createIfMissing: true) });
    }

    public async Task DisposeAsync()
    {
        await _store.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    /// <summary>What the node's commit step does for a batch: reserve, make ids of the epoch, record them consumed.</summary>
    private static async Task<List<byte[]>> IssueBatchAsync(NonceEpochs epochs, INonceLedger ledger, int count)
    {
        ulong epoch = await epochs.ReserveAsync(count, CancellationToken.None);
        var ledgerIds = new List<byte[]>();
        for (int i = 0; i < count; i++)
        {
            byte[] id = NonceEpochs.NewNonceId(epoch);
            Assert.Equal(epoch, BinaryPrimitives.ReadUInt64BigEndian(id));
            ledgerIds.Add(NonceEpochs.LedgerId("k1", id));
        }

        await ledger.IssueConsumedAsync([.. ledgerIds.Select(l => new NonceIssue(l, "k1", NonceKind.Nonce))]);
        return ledgerIds;
    }

    [Fact]
    public async Task OldEpochsArePruned_AndARestartNeverGoesBackToAPrunedEpoch()
    {
        using (NonceEpochs epochs = await NonceEpochs.OpenAsync(_store.Nonces, epochSize: 10))
        {
            Assert.Equal(1UL, epochs.Current);
            List<byte[]> first = await IssueBatchAsync(epochs, _store.Nonces, 10);
            Assert.All(first, id => Assert.Equal(NonceStatus.Consumed, _store.Nonces.GetStatusAsync(id).Result));

            // The epoch is full: the next batch begins epoch 2, and epoch 1's rows are gone from the ledger.
            List<byte[]> second = await IssueBatchAsync(epochs, _store.Nonces, 4);
            Assert.Equal(2UL, epochs.Current);
            Assert.All(first, id => Assert.Equal(NonceStatus.Unknown, _store.Nonces.GetStatusAsync(id).Result));
            Assert.All(second, id => Assert.Equal(NonceStatus.Consumed, _store.Nonces.GetStatusAsync(id).Result));
        }

        // A restart begins epoch 3 and prunes epoch 2; another restart with nothing issued still goes up, because the
        // newest epoch's marker row is never pruned.
        using (NonceEpochs epochs = await NonceEpochs.OpenAsync(_store.Nonces, epochSize: 10))
        {
            Assert.Equal(3UL, epochs.Current);
        }

        using (NonceEpochs epochs = await NonceEpochs.OpenAsync(_store.Nonces, epochSize: 10))
        {
            Assert.Equal(4UL, epochs.Current);
            Assert.Equal(NonceStatus.Consumed, await _store.Nonces.GetStatusAsync(NonceEpochs.Marker(4)));
            Assert.Equal(NonceStatus.Unknown, await _store.Nonces.GetStatusAsync(NonceEpochs.Marker(3)));
            List<byte[]> later = await IssueBatchAsync(epochs, _store.Nonces, 3);
            Assert.All(later, id => Assert.Equal(4UL, BinaryPrimitives.ReadUInt64BigEndian(id)));
        }
    }
}
