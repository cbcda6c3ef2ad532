using Conclave.Storage.Keys;
using Conclave.Storage.Rotation;

namespace Conclave.Storage.Tests;

public abstract partial class StoreSuite
{
    private static NewRotationRun Run(string id, string key, int from = 1) =>
        new(id, key, RotationKind.Refresh, from, from + 1, "server-a", TimeSpan.FromMinutes(2), [1, 2, 3]);

    /// <summary>
    /// Issue 15: a run retired with an audit entry (a move off an evicted node, <c>node.evict.key</c>) writes the entry in
    /// the same transaction: a failed entry leaves the run Committed (its key locked, so it is finished again), a run
    /// that is not Committed is refused with nothing written, and a second retire writes no second entry.
    /// </summary>
    [Fact]
    public async Task Rotation_retire_with_an_audit_entry_writes_it_exactly_when_the_run_is_retired()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using IConclaveStore store = await loc.OpenAsync(WithPassphrase());
        var entry = new Audit.AuditEntryInput("coordinator", "node.evict.key", "k1", null, "allow", "key moved away from node 3: version 1 -> 2 on nodes 1,2");
        await store.Rotations.BeginAsync(Run("e1", "k1") with { Kind = RotationKind.Reshare });
        long before = (await store.Audit.GetHeadAsync()).Seq;

        // Not committed yet: refused, nothing written.
        Assert.Equal(StorageErrorKind.Conflict, (await Assert.ThrowsAsync<StorageException>(() => store.Rotations.RetireAsync("e1", entry))).Kind);
        await store.Rotations.TransitionAsync("e1", RotationState.Started, RotationState.Prepared, result: [1]);
        await store.Rotations.TransitionAsync("e1", RotationState.Prepared, RotationState.Committed);
        Assert.Equal(before, (await store.Audit.GetHeadAsync()).Seq);

        // The audit table refuses inserts (a broken or busy store): the retire fails with its entry.
        await loc.ExecAsync(Harness.Engine == StoreEngine.Sqlite
            ? "CREATE TRIGGER audit_down BEFORE INSERT ON audit_entries BEGIN SELECT RAISE(ABORT, 'audit down'); END;"
            : "CREATE FUNCTION audit_down() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'audit down'; END $$ LANGUAGE plpgsql; "
              + "CREATE TRIGGER audit_down BEFORE INSERT ON audit_entries FOR EACH ROW EXECUTE FUNCTION audit_down();");
        await Assert.ThrowsAsync<StorageException>(() => store.Rotations.RetireAsync("e1", entry));
        Assert.Equal(RotationState.Committed, (await store.Rotations.GetAsync("e1"))!.State);
        Assert.Equal("e1", (await store.Rotations.GetActiveAsync("k1"))!.RunId);
        Assert.Equal(before, (await store.Audit.GetHeadAsync()).Seq);

        await loc.ExecAsync("DROP TRIGGER audit_down" + (Harness.Engine == StoreEngine.Sqlite ? ";" : " ON audit_entries; DROP FUNCTION audit_down();"));
        RotationRun retired = await store.Rotations.RetireAsync("e1", entry);
        Assert.Equal(RotationState.Retired, retired.State);
        Assert.Null(await store.Rotations.GetActiveAsync("k1"));
        Assert.Equal(StorageErrorKind.Conflict, (await Assert.ThrowsAsync<StorageException>(() => store.Rotations.RetireAsync("e1", entry))).Kind);
        Audit.AuditEntry written = Assert.Single(await store.Audit.ReadAsync(before + 1, 10));
        Assert.Equal(("node.evict.key", "k1", entry.Result), (written.Action, written.KeyId, written.Result));

        // Without an entry: the plain transition.
        await store.Rotations.BeginAsync(Run("e2", "k1", from: 2));
        await store.Rotations.TransitionAsync("e2", RotationState.Started, RotationState.Prepared, result: [1]);
        await store.Rotations.TransitionAsync("e2", RotationState.Prepared, RotationState.Committed);
        Assert.Equal(RotationState.Retired, (await store.Rotations.RetireAsync("e2")).State);
        Assert.Equal(before + 1, (await store.Audit.GetHeadAsync()).Seq);
    }

    [Fact]
    public async Task Rotation_one_unfinished_run_per_key_across_two_store_instances()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using IConclaveStore a = await loc.OpenAsync(WithPassphrase());
        await using IConclaveStore b = await loc.OpenAsync(WithPassphrase());
        RotationRun first = await a.Rotations.BeginAsync(Run("r1", "k1"));
        Assert.Equal(RotationState.Started, first.State);

        // Another instance on the same database (a second replica), or a second request: refused while r1 is unfinished.
        StorageException busy = await Assert.ThrowsAsync<StorageException>(() => b.Rotations.BeginAsync(Run("r2", "k1")));
        Assert.Equal(StorageErrorKind.Conflict, busy.Kind);
        Assert.Contains("unfinished rotation run r1", busy.Message, StringComparison.Ordinal);
        Assert.Equal("r1", (await b.Rotations.GetActiveAsync("k1"))!.RunId);
        Assert.Single(await b.Rotations.ListUnfinishedAsync());

        // Another key is independent; finishing r1 releases k1.
        await b.Rotations.BeginAsync(Run("r3", "k2"));
        await a.Rotations.TransitionAsync("r1", RotationState.Started, RotationState.Aborted, error: "test");
        Assert.Null(await a.Rotations.GetActiveAsync("k1"));
        RotationRun again = await b.Rotations.BeginAsync(Run("r4", "k1"));
        Assert.Equal("r4", again.RunId);
        Assert.Equal(StorageErrorKind.Duplicate, (await Assert.ThrowsAsync<StorageException>(() => a.Rotations.BeginAsync(Run("r4", "k9")))).Kind);
        Assert.Equal("test", (await a.Rotations.GetAsync("r1"))!.Error);
    }

    [Fact]
    public async Task Rotation_concurrent_begins_on_one_key_let_exactly_one_through()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using IConclaveStore a = await loc.OpenAsync(WithPassphrase());
        await using IConclaveStore b = await loc.OpenAsync(WithPassphrase());
        Task<RotationRun>[] begins = [.. Enumerable.Range(0, 16).Select(i => (i % 2 == 0 ? a : b).Rotations.BeginAsync(Run("c" + i, "hot")))];
        int won = 0;
        foreach (Task<RotationRun> t in begins)
        {
            try
            {
                await t;
                won++;
            }
            catch (StorageException e) when (e.Kind == StorageErrorKind.Conflict)
            {
            }
        }

        Assert.Equal(1, won);
    }

    [Fact]
    public async Task Rotation_transitions_are_checked_and_leases_taken_over_only_when_expired()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using IConclaveStore store = await loc.OpenAsync(WithPassphrase());
        await store.Rotations.BeginAsync(Run("t1", "k1"));
        Assert.Equal(StorageErrorKind.Conflict, (await Assert.ThrowsAsync<StorageException>(() =>
            store.Rotations.TransitionAsync("t1", RotationState.Prepared, RotationState.Committed))).Kind);
        RotationRun prepared = await store.Rotations.TransitionAsync("t1", RotationState.Started, RotationState.Prepared, result: [9, 9]);
        Assert.Equal([9, 9], prepared.Result);
        Assert.True(await store.Rotations.TryLeaseAsync("t1", "server-a", TimeSpan.FromMinutes(1)));
        Assert.False(await store.Rotations.TryLeaseAsync("t1", "server-b", TimeSpan.FromMinutes(1)));
        Assert.True(await store.Rotations.TryLeaseAsync("t1", "server-a", TimeSpan.FromMilliseconds(-1)));
        Assert.True(await store.Rotations.TryLeaseAsync("t1", "server-b", TimeSpan.FromMinutes(1)));
        Assert.Equal("server-b", (await store.Rotations.GetAsync("t1"))!.Owner);
    }

    [Fact]
    public async Task Rotation_commit_moves_the_key_row_and_the_run_in_one_step()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using IConclaveStore store = await loc.OpenAsync(WithPassphrase());
        using (var m = Secret(1))
        {
            await store.Keys.CreateAsync(SampleKey("k1") with { Threshold = 2, Participants = 3 }, m);
        }

        await store.Rotations.BeginAsync(Run("m1", "k1") with { Kind = RotationKind.Reshare });
        await store.Rotations.TransitionAsync("m1", RotationState.Started, RotationState.Prepared, result: [1]);
        var rotation = new KeyRotation("k1", 1, 2, Bytes(32, 2), 3, 4);
        using (var m = Secret(2))
        {
            RotationRun committed = await store.Rotations.CommitKeyAsync("m1", rotation, m);
            Assert.Equal(RotationState.Committed, committed.State);
        }

        KeyRecord k = (await store.Keys.GetAsync("k1"))!;
        Assert.Equal((2, 3, 4), (k.Version, k.Threshold, k.Participants));
        Assert.Equal(Bytes(32, 2), ReadAll(await store.Keys.OpenMaterialAsync("k1")));

        // Repeating the commit (a resumed run) changes nothing.
        using (var m = Secret(3))
        {
            await store.Rotations.CommitKeyAsync("m1", rotation, m);
        }

        Assert.Equal(Bytes(32, 2), ReadAll(await store.Keys.OpenMaterialAsync("k1")));
        Assert.Equal(2, (await store.Keys.GetVersionsAsync("k1")).Count);

        // A commit whose key moved meanwhile fails and leaves the run prepared.
        await store.Rotations.TransitionAsync("m1", RotationState.Committed, RotationState.Retired);
        await store.Rotations.BeginAsync(Run("m2", "k1", from: 1));
        await store.Rotations.TransitionAsync("m2", RotationState.Started, RotationState.Prepared, result: [1]);
        using (var m = Secret(4))
        {
            StorageException moved = await Assert.ThrowsAsync<StorageException>(() => store.Rotations.CommitKeyAsync("m2", new KeyRotation("k1", 1, 2, Bytes(32, 2), 3, 4), m));
            Assert.Equal(StorageErrorKind.Conflict, moved.Kind);
        }

        Assert.Equal(RotationState.Prepared, (await store.Rotations.GetAsync("m2"))!.State);
    }

    [Fact]
    public async Task Pending_versions_do_not_change_the_current_one_until_committed_and_discard_leaves_nothing()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using IConclaveStore store = await loc.OpenAsync(WithPassphrase());
        using (var m = Secret(1))
        {
            await store.Keys.CreateAsync(SampleKey("k1") with { Threshold = 2, Participants = 3 }, m);
        }

        using (var m = Secret(2))
        {
            await store.Keys.AddPendingVersionAsync("k1", 1, 2, Bytes(32, 2), m);
        }

        Assert.Equal(1, (await store.Keys.GetAsync("k1"))!.Version);
        Assert.Equal(Bytes(32, 1), ReadAll(await store.Keys.OpenMaterialAsync("k1")));
        Assert.True(await store.Keys.DiscardPendingVersionAsync("k1", 2));
        Assert.False(await store.Keys.DiscardPendingVersionAsync("k1", 1)); // never the current version
        Assert.Single(await store.Keys.GetVersionsAsync("k1"));

        using (var m = Secret(3))
        {
            await store.Keys.AddPendingVersionAsync("k1", 1, 2, Bytes(32, 3), m);
        }

        KeyRecord committed = await store.Keys.CommitPendingVersionAsync(new KeyRotation("k1", 1, 2, Bytes(32, 3), 3, 3));
        Assert.Equal((2, 3, 3, KeyState.Active), (committed.Version, committed.Threshold, committed.Participants, committed.State));
        Assert.Equal(2, (await store.Keys.CommitPendingVersionAsync(new KeyRotation("k1", 1, 2, Bytes(32, 3), 3, 3))).Version); // idempotent
        Assert.Equal(Bytes(32, 3), ReadAll(await store.Keys.OpenMaterialAsync("k1")));

        // A new member's key is pending until committed; discarding it removes the whole key.
        using (var m = Secret(4))
        {
            await store.Keys.CreateAsync(SampleKey("k2") with { InitialVersion = 5, InitialState = KeyState.Pending }, m);
        }

        Assert.Equal(KeyState.Pending, (await store.Keys.GetAsync("k2"))!.State);
        Assert.True(await store.Keys.DiscardPendingVersionAsync("k2", 5));
        Assert.Null(await store.Keys.GetAsync("k2"));
    }

    /// <summary>
    /// A run that keeps the version (a DKLs23 repair renews every holder's pairwise state) stages a replacement of the
    /// current version's material: the version keeps signing with the old material until the commit moves the replacement
    /// in; a discard (abort) drops it and leaves the old material; a second staging is a conflict, and so is staging for
    /// a version the key is not at.
    /// </summary>
    [Fact]
    public async Task Staged_replacements_take_effect_on_commit_only_and_discard_leaves_the_old_material()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using IConclaveStore store = await loc.OpenAsync(WithPassphrase());
        using (var m = Secret(1))
        {
            await store.Keys.CreateAsync(SampleKey("k1") with { Threshold = 2, Participants = 3 }, m);
        }

        using (var m = Secret(2))
        {
            await store.Keys.StageReplacementAsync("k1", 1, m);
            Assert.Equal(StorageErrorKind.Conflict, (await Assert.ThrowsAsync<StorageException>(() => store.Keys.StageReplacementAsync("k1", 1, m))).Kind);
            Assert.Equal(StorageErrorKind.Conflict, (await Assert.ThrowsAsync<StorageException>(() => store.Keys.StageReplacementAsync("k1", 2, m))).Kind);
            Assert.Equal(StorageErrorKind.NotFound, (await Assert.ThrowsAsync<StorageException>(() => store.Keys.StageReplacementAsync("nope", 1, m))).Kind);
        }

        Assert.Equal(Bytes(32, 1), ReadAll(await store.Keys.OpenMaterialAsync("k1"))); // staged is not used
        Assert.True(await store.Keys.DiscardPendingVersionAsync("k1", 1)); // abort: drops the replacement only
        Assert.False(await store.Keys.DiscardPendingVersionAsync("k1", 1));
        Assert.Equal(Bytes(32, 1), ReadAll(await store.Keys.OpenMaterialAsync("k1")));
        Assert.Equal((1, KeyState.Active), ((await store.Keys.GetAsync("k1"))!.Version, (await store.Keys.GetAsync("k1"))!.State));

        using (var m = Secret(3))
        {
            await store.Keys.StageReplacementAsync("k1", 1, m);
        }

        KeyRecord committed = await store.Keys.CommitPendingVersionAsync(new KeyRotation("k1", 1, 1, Bytes(32, 1), 2, 3));
        Assert.Equal((1, KeyState.Active), (committed.Version, committed.State));
        Assert.Equal(Bytes(32, 3), ReadAll(await store.Keys.OpenMaterialAsync("k1")));
        Assert.Equal(Bytes(32, 3), ReadAll(await store.Keys.OpenMaterialAsync("k1", 1)));
        Assert.Equal(Bytes(32, 3), ReadAll(await store.Keys.OpenMaterialAsync("k1"))); // a repeated commit changes nothing
        await store.Keys.CommitPendingVersionAsync(new KeyRotation("k1", 1, 1, Bytes(32, 1), 2, 3));
        Assert.Equal(Bytes(32, 3), ReadAll(await store.Keys.OpenMaterialAsync("k1")));
        Assert.False(await store.Keys.DiscardPendingVersionAsync("k1", 1)); // nothing staged any more

        // A staged replacement survives reopening the store (it is durable until its run commits or aborts).
        using (var m = Secret(4))
        {
            await store.Keys.StageReplacementAsync("k1", 1, m);
        }

        await using (IConclaveStore reopened = await loc.OpenAsync(WithPassphrase()))
        {
            Assert.Equal(Bytes(32, 3), ReadAll(await reopened.Keys.OpenMaterialAsync("k1")));
            await reopened.Keys.CommitPendingVersionAsync(new KeyRotation("k1", 1, 1, Bytes(32, 1), 2, 3));
            Assert.Equal(Bytes(32, 4), ReadAll(await reopened.Keys.OpenMaterialAsync("k1")));
        }
    }

    [Fact]
    public async Task Erased_material_leaves_no_ciphertext_in_the_database_files()
    {
        if (Harness.Engine != StoreEngine.Sqlite)
        {
            return; // PostgreSQL keeps dead tuples until VACUUM (docs/ROTATION.md); this checks the SQLite files
        }

        await using TestLocation loc = await Harness.NewLocationAsync();
        byte[] cipher;
        await using (IConclaveStore store = await loc.OpenAsync(WithPassphrase()))
        {
            using (var m = Secret(7))
            {
                await store.Keys.CreateAsync(SampleKey("k1"), m);
            }

            cipher = (byte[])(await loc.ScalarAsync("SELECT ciphertext FROM key_secrets WHERE key_id='k1' AND version=1"))!;
            Assert.True(FilesContain(loc.SqliteDirectory!, cipher), "positive control: the ciphertext is in the files before the erase");
            using (var m = Secret(8))
            {
                await store.Keys.RotateAsync("k1", 1, Bytes(32, 8), m);
            }

            Assert.True(await store.Keys.DestroyMaterialAsync("k1", 1));
            Assert.False(FilesContain(loc.SqliteDirectory!, cipher), "the erased ciphertext is gone from the database and its write-ahead log");
        }

        Assert.False(FilesContain(loc.SqliteDirectory!, cipher));
    }

    private static bool FilesContain(string dir, byte[] needle)
    {
        byte[] probe = needle[..Math.Min(48, needle.Length)];
        foreach (string f in Directory.GetFiles(dir))
        {
            using var fs = new FileStream(f, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var ms = new MemoryStream();
            fs.CopyTo(ms);
            if (ms.ToArray().AsSpan().IndexOf(probe) >= 0)
            {
                return true;
            }
        }

        return false;
    }
}
