using Conclave.Storage.Nodes;

namespace Conclave.Storage.Tests;

public abstract partial class StoreSuite
{
    [Fact]
    public async Task NodeTrust_mark_is_durable_shared_by_replicas_and_readmit_removes_it()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using (IConclaveStore a = await loc.OpenAsync(WithPassphrase()))
        await using (IConclaveStore b = await loc.OpenAsync(WithPassphrase()))
        {
            Assert.Empty(await a.NodeTrust.ListUntrustedAsync());
            UntrustedNode first = await a.NodeTrust.MarkUntrustedAsync(2, "suspected compromise", null);
            Assert.Equal((2u, "suspected compromise", (uint?)null), (first.NodeId, first.Reason, first.Replacement));

            // Marking again keeps the first reason and time; a replacement given later is recorded.
            UntrustedNode again = await b.NodeTrust.MarkUntrustedAsync(2, "another reason", 5);
            Assert.Equal((2u, "suspected compromise", (uint?)5, first.Since), (again.NodeId, again.Reason, again.Replacement, again.Since));
            await b.NodeTrust.MarkUntrustedAsync(4, "test", null);
            Assert.Equal([2u, 4u], (await a.NodeTrust.ListUntrustedAsync()).Select(n => n.NodeId));

            Assert.Equal(StorageErrorKind.InvalidArgument, (await Assert.ThrowsAsync<StorageException>(() => a.NodeTrust.MarkUntrustedAsync(3, "x", 3))).Kind);
            Assert.Equal(StorageErrorKind.InvalidArgument, (await Assert.ThrowsAsync<StorageException>(() => a.NodeTrust.MarkUntrustedAsync(3, "bad\nreason", null))).Kind);
        }

        // Reopened (a restarted server): still untrusted until re-admitted.
        await using IConclaveStore c = await loc.OpenAsync(WithPassphrase());
        Assert.Equal([2u, 4u], (await c.NodeTrust.ListUntrustedAsync()).Select(n => n.NodeId));
        Assert.True(await c.NodeTrust.ReadmitAsync(4));
        Assert.False(await c.NodeTrust.ReadmitAsync(4));
        UntrustedNode left = Assert.Single(await c.NodeTrust.ListUntrustedAsync());
        Assert.Equal((uint?)5, left.Replacement);
    }
}

public abstract partial class StoreSuite
{
    [Fact]
    public async Task Rotation_transcript_is_kept_once_and_served_only_for_a_committed_run()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using IConclaveStore store = await loc.OpenAsync(WithPassphrase());
        await store.Rotations.BeginAsync(new Rotation.NewRotationRun("t1", "k1", Rotation.RotationKind.Refresh, 1, 2, "server-a", TimeSpan.FromMinutes(2), [1]));
        await store.Rotations.SaveTranscriptAsync("t1", [7, 8, 9]);
        Assert.Equal(StorageErrorKind.Duplicate, (await Assert.ThrowsAsync<StorageException>(() => store.Rotations.SaveTranscriptAsync("t1", [1]))).Kind);
        Assert.Null(await store.Rotations.GetTranscriptAsync("k1", 2)); // not committed yet

        await store.Rotations.TransitionAsync("t1", Rotation.RotationState.Started, Rotation.RotationState.Aborted, error: "test");
        Assert.Null(await store.Rotations.GetTranscriptAsync("k1", 2)); // an aborted run made no version

        await store.Rotations.BeginAsync(new Rotation.NewRotationRun("t2", "k1", Rotation.RotationKind.Refresh, 1, 2, "server-a", TimeSpan.FromMinutes(2), [1]));
        await store.Rotations.SaveTranscriptAsync("t2", [1, 2, 3]);
        await store.Rotations.TransitionAsync("t2", Rotation.RotationState.Started, Rotation.RotationState.Prepared, [5]);
        await store.Rotations.TransitionAsync("t2", Rotation.RotationState.Prepared, Rotation.RotationState.Committed);
        Assert.Equal([1, 2, 3], await store.Rotations.GetTranscriptAsync("k1", 2));
        Assert.Null(await store.Rotations.GetTranscriptAsync("k1", 3));
    }
}
