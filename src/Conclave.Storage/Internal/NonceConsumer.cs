using System.Data.Common;
using System.Threading.Channels;

namespace Conclave.Storage.Internal;

/// <summary>
/// Group commit for <see cref="Nonces.INonceLedger.TryConsumeAsync"/>: concurrent consumptions queue here and one
/// writer applies all queued conditional UPDATEs in a single transaction, one fsync for the batch. Every caller's
/// task completes only after that commit, with its own row count as the answer; if the commit fails, every call in
/// the batch fails and none of them consumed anything (the transaction rolled back). Ids are applied in ascending
/// byte order so two PostgreSQL replicas batching overlapping ids lock rows in the same order and cannot deadlock.
/// </summary>
internal sealed class NonceConsumer(SqlStore store)
{
    private const int MaxBatch = 1024;
    private readonly Channel<(byte[] Id, TaskCompletionSource<bool> Done)> _queue =
        Channel.CreateUnbounded<(byte[], TaskCompletionSource<bool>)>(new UnboundedChannelOptions { SingleReader = true });

    private Task? _writer;

    public void Start() => _writer = Task.Run(LoopAsync);

    public async Task StopAsync()
    {
        _queue.Writer.TryComplete();
        if (_writer is not null)
        {
            await _writer.ConfigureAwait(false);
        }
    }

    public Task<bool> ConsumeAsync(byte[] id, CancellationToken ct)
    {
        if (_writer is null)
        {
            throw StorageErrors.Invalid("store", "opened read-only");
        }

        var done = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!_queue.Writer.TryWrite((id.ToArray(), done)))
        {
            throw new ObjectDisposedException(nameof(IConclaveStore));
        }

        // Cancelling only stops waiting: a queued consumption is still applied (and the nonce is then spent).
        return done.Task.WaitAsync(ct);
    }

    private async Task LoopAsync()
    {
        var batch = new List<(byte[] Id, TaskCompletionSource<bool> Done)>(MaxBatch);
        while (await _queue.Reader.WaitToReadAsync().ConfigureAwait(false))
        {
            batch.Clear();
            while (batch.Count < MaxBatch && _queue.Reader.TryRead(out var item))
            {
                batch.Add(item);
            }

            batch.Sort((a, b) => a.Id.AsSpan().SequenceCompareTo(b.Id));
            try
            {
                bool[] results = await store.WriteAsync(async (c, tx) =>
                {
                    var won = new bool[batch.Count];
                    using DbCommand cmd = SqlEngine.Command(c, tx,
                        "UPDATE nonces SET consumed_at=@now, kek_id=NULL, wrapped_key=NULL, ciphertext=NULL WHERE id=@id AND consumed_at IS NULL");
                    cmd.Add("@now", store.NowMs());
                    DbParameter pid = cmd.Add("@id", null);
                    for (int i = 0; i < batch.Count; i++)
                    {
                        pid.Value = batch[i].Id;
                        won[i] = await cmd.ExecuteNonQueryAsync().ConfigureAwait(false) == 1;
                    }

                    return won;
                }, CancellationToken.None).ConfigureAwait(false);
                for (int i = 0; i < batch.Count; i++)
                {
                    batch[i].Done.TrySetResult(results[i]);
                }
            }
            catch (Exception e)
            {
                var failure = e as StorageException ?? StorageErrors.Io("nonce consumption", e);
                foreach (var item in batch)
                {
                    item.Done.TrySetException(failure);
                }
            }
        }
    }
}
