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

    public static TheoryData<string, string> TamperedNodeTrustColumns => new()
    {
        { "node_id", "UPDATE node_trust SET node_id=3 WHERE node_id=2" },
        { "state", "UPDATE node_trust SET state='trusted' WHERE node_id=2" },
        { "reason", "UPDATE node_trust SET reason='routine' WHERE node_id=2" },
        { "replacement", "UPDATE node_trust SET replacement=NULL WHERE node_id=2" },
        { "since", "UPDATE node_trust SET since=since+1 WHERE node_id=2" },
        { "mac", "UPDATE node_trust SET mac=NULL WHERE node_id=2" },
        { "mac of another row", "UPDATE node_trust SET mac=(SELECT mac FROM node_trust WHERE node_id=4) WHERE node_id=2" },
    };

    [Theory]
    [MemberData(nameof(TamperedNodeTrustColumns))]
    public async Task NodeTrust_row_changed_by_sql_is_refused(string column, string sql)
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using (IConclaveStore store = await loc.OpenAsync(WithPassphrase()))
        {
            await store.NodeTrust.MarkUntrustedAsync(2, "suspected compromise", 5);
            await store.NodeTrust.MarkUntrustedAsync(4, "test", null);
        }

        Assert.Equal(1, await loc.ExecAsync(sql));
        await using (IConclaveStore store = await loc.OpenAsync(WithPassphrase()))
        {
            string node = column == "node_id" ? "node 3" : "node 2";
            uint id = column == "node_id" ? 3u : 2u;
            foreach (Func<Task> use in new Func<Task>[]
            {
                () => store.NodeTrust.ListUntrustedAsync(), () => store.NodeTrust.MarkUntrustedAsync(id, "again", 6), () => store.NodeTrust.ReadmitAsync(id),
            })
            {
                var e = await Assert.ThrowsAsync<StorageException>(use);
                Assert.Equal(StorageErrorKind.IntegrityCheckFailed, e.Kind);
                Assert.Contains($"untrusted node '{node}'", e.Message, StringComparison.Ordinal);
                Assert.Contains("integrity check", e.Message, StringComparison.Ordinal);
            }

            // The tampered row is still there (refused, not removed or re-sealed).
            Assert.Equal(2L, Convert.ToInt64(await loc.ScalarAsync("SELECT COUNT(*) FROM node_trust"), System.Globalization.CultureInfo.InvariantCulture));
        }
    }

    [Fact]
    public async Task NodeTrust_mac_follows_every_write_kek_rotation_and_migration_backfill()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using (IConclaveStore store = await loc.OpenAsync(WithPassphrase()))
        {
            await store.NodeTrust.MarkUntrustedAsync(2, "suspected compromise", null);
            await store.NodeTrust.MarkUntrustedAsync(2, "again", 5); // the update re-seals the row
            await store.RotateKekAsync(EngineHarness.Passphrase("new passphrase"));
        }

        await using (IConclaveStore store = await loc.OpenAsync(WithPassphrase("new passphrase")))
        {
            UntrustedNode n = Assert.Single(await store.NodeTrust.ListUntrustedAsync());
            Assert.Equal((2u, "suspected compromise", (uint?)5), (n.NodeId, n.Reason, n.Replacement));
        }

        // A row written before migration 12 has no MAC: the first unlocked open computes it, once.
        await loc.ExecAsync("UPDATE node_trust SET mac=NULL");
        await loc.ExecAsync("INSERT INTO store_meta (name, value) VALUES ('node_trust_mac_backfill', 'pending')");
        await using (IConclaveStore store = await loc.OpenAsync(WithPassphrase("new passphrase")))
        {
            Assert.Equal(2u, Assert.Single(await store.NodeTrust.ListUntrustedAsync()).NodeId);
        }

        Assert.Null(await loc.ScalarAsync("SELECT value FROM store_meta WHERE name='node_trust_mac_backfill'"));
        Assert.Equal(32, ((byte[])(await loc.ScalarAsync("SELECT mac FROM node_trust WHERE node_id=2"))!).Length);

        // Afterwards, a missing MAC is tampering, not a migration.
        await loc.ExecAsync("UPDATE node_trust SET mac=NULL");
        await using (IConclaveStore store = await loc.OpenAsync(WithPassphrase("new passphrase")))
        {
            Assert.Equal(StorageErrorKind.IntegrityCheckFailed, (await Assert.ThrowsAsync<StorageException>(() => store.NodeTrust.ListUntrustedAsync())).Kind);
        }
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
        Assert.Equal([1, 2, 3], await store.Rotations.GetRunTranscriptAsync("t2"));
        Assert.Null(await store.Rotations.GetRunTranscriptAsync("t1")); // aborted
    }

    [Fact]
    public async Task Repair_run_transcript_is_served_by_run_and_never_as_the_versions_transcript()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using IConclaveStore store = await loc.OpenAsync(WithPassphrase());
        await store.Rotations.BeginAsync(new Rotation.NewRotationRun("made", "k1", Rotation.RotationKind.Refresh, 1, 2, "server-a", TimeSpan.FromMinutes(2), [1]));
        await store.Rotations.SaveTranscriptAsync("made", [1, 1]);
        await store.Rotations.TransitionAsync("made", Rotation.RotationState.Started, Rotation.RotationState.Prepared, [5]);
        await store.Rotations.TransitionAsync("made", Rotation.RotationState.Prepared, Rotation.RotationState.Committed);
        await store.Rotations.TransitionAsync("made", Rotation.RotationState.Committed, Rotation.RotationState.Retired);

        // A repair keeps the version (2 to 2) and takes the key's one-run lock like any run.
        await store.Rotations.BeginAsync(new Rotation.NewRotationRun("fix", "k1", Rotation.RotationKind.Repair, 2, 2, "server-a", TimeSpan.FromMinutes(2), [1]));
        Assert.Equal(StorageErrorKind.Conflict, (await Assert.ThrowsAsync<StorageException>(() =>
            store.Rotations.BeginAsync(new Rotation.NewRotationRun("other", "k1", Rotation.RotationKind.Refresh, 2, 3, "server-b", TimeSpan.FromMinutes(2), [1])))).Kind);
        await store.Rotations.SaveTranscriptAsync("fix", [2, 2]);
        Assert.Null(await store.Rotations.GetRunTranscriptAsync("fix")); // not committed yet
        await store.Rotations.TransitionAsync("fix", Rotation.RotationState.Started, Rotation.RotationState.Prepared, [5]);
        await store.Rotations.TransitionAsync("fix", Rotation.RotationState.Prepared, Rotation.RotationState.Committed);
        Assert.Equal([2, 2], await store.Rotations.GetRunTranscriptAsync("fix"));
        Assert.Equal([1, 1], await store.Rotations.GetTranscriptAsync("k1", 2));
        Rotation.RotationRun run = (await store.Rotations.GetAsync("fix"))!;
        Assert.Equal((Rotation.RotationKind.Repair, 2, 2), (run.Kind, run.FromVersion, run.ToVersion));
    }
}

public abstract partial class StoreSuite
{
    [Fact]
    public async Task Rotation_schedule_counts_demands_and_records_outcomes()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using IConclaveStore store = await loc.OpenAsync(WithPassphrase());
        Rotation.IRotationSchedules s = store.RotationSchedules;
        var t0 = DateTimeOffset.FromUnixTimeMilliseconds(1_800_000_000_000);
        Assert.Equal(StorageErrorKind.InvalidArgument, (await Assert.ThrowsAsync<StorageException>(() => s.SetAsync("k1", null, null, null))).Kind);
        Assert.Equal(StorageErrorKind.InvalidArgument, (await Assert.ThrowsAsync<StorageException>(() => s.SetAsync("k1", TimeSpan.Zero, null, null))).Kind);
        Rotation.RotationSchedule set = await s.SetAsync("k1", TimeSpan.FromHours(1), 100, t0.AddHours(1));
        Assert.Equal((TimeSpan.FromHours(1), (long?)100, 0L, t0.AddHours(1)), (set.Interval, set.AfterSignatures, set.Signatures, set.NextDue));

        await s.AddSignaturesAsync("k1", 7);
        await s.AddSignaturesAsync("k1", 5);
        await s.AddSignaturesAsync("unscheduled", 5);
        Assert.Equal(12, (await s.GetAsync("k1"))!.Signatures);
        Assert.True(await s.DemandAsync("k1", "risk escalation", t0));
        Assert.False(await s.DemandAsync("unscheduled", "x", t0));
        Assert.Equal((t0, "risk escalation"), ((await s.GetAsync("k1"))!.NextDue, (await s.GetAsync("k1"))!.DemandReason));

        await s.RecordFailureAsync("k1", "quorum unavailable", t0.AddMinutes(1));
        await s.RecordFailureAsync("k1", "quorum unavailable", t0.AddMinutes(2));
        Assert.Equal((2L, 2L, "quorum unavailable"), ((await s.GetAsync("k1"))!.Failures, (await s.GetAsync("k1"))!.TotalFailures, (await s.GetAsync("k1"))!.LastError));
        await s.RecordRotationAsync("k1", t0.AddMinutes(3), t0.AddMinutes(63));
        Rotation.RotationSchedule done = (await s.GetAsync("k1"))!;
        Assert.Equal((0L, 0L, 2L, (string?)null, (string?)null, t0.AddMinutes(3), t0.AddMinutes(63)),
            (done.Signatures, done.Failures, done.TotalFailures, done.LastError, done.DemandReason, done.LastRotation, done.NextDue));

        // Setting it again keeps the counters; removing it ends it.
        Assert.Equal(2L, (await s.SetAsync("k1", null, 10, null)).TotalFailures);
        Assert.Single(await s.ListAsync());
        Assert.True(await s.RemoveAsync("k1"));
        Assert.Null(await s.GetAsync("k1"));
    }
}
