namespace Conclave.Node.Threshold.Engine;

/// <summary>
/// A node's durable record of a share it makes (issue 14 item 8) must be durable before the share leaves the node. The
/// record names only public values known before the share is computed, so its commit (an fsync) runs while the share
/// is computed instead of after it (issue 18); the share is handed back only once the record is durable. One place for
/// that rule, used by every protocol's signing step (FROST's sign step, DKLs23's round three and online round).
/// </summary>
public static class RecordedRelease
{
    /// <summary>
    /// Computes the share while <paramref name="record"/> commits, and returns it only once the record is durable (a
    /// failed record is thrown instead, and nothing is returned). If computing fails, the record is still awaited (it
    /// stays: the share was asked for) and the computation's failure is thrown, not the record's.
    /// </summary>
    public static async Task<T> ComputeAsync<T>(Task record, Func<Task<T>> compute)
    {
        ArgumentNullException.ThrowIfNull(record);
        ArgumentNullException.ThrowIfNull(compute);
        T result;
        try
        {
            result = await compute().ConfigureAwait(false);
        }
        catch
        {
            await record.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            throw;
        }

        await record.ConfigureAwait(false);
        return result;
    }

    /// <summary>As <see cref="ComputeAsync{T}(Task, Func{Task{T}})"/> for a computation that does not wait.</summary>
    public static Task<T> Compute<T>(Task record, Func<T> compute)
    {
        ArgumentNullException.ThrowIfNull(compute);
        return ComputeAsync(record, () => Task.FromResult(compute()));
    }
}
