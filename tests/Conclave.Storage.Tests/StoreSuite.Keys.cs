using Conclave.Storage.Encryption;
using Conclave.Storage.Keys;

namespace Conclave.Storage.Tests;

public abstract partial class StoreSuite
{
    [Fact]
    public async Task Keys_create_get_list_and_open_material()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using (IConclaveStore store = await loc.OpenAsync(WithPassphrase()))
        {
            Assert.Equal(Harness.Engine, store.Engine);
            using (var m = Secret(1))
            {
                KeyRecord k = await store.Keys.CreateAsync(SampleKey("k1", "treasury"), m);
                Assert.Equal(1, k.Version);
                Assert.Equal(KeyState.Active, k.State);
                Assert.Equal("perps", k.Labels["desk"]);
            }

            await store.Keys.CreateAsync(SampleKey("k2") with { Threshold = 2, Participants = 3, Scheme = "frost-ed25519" });
            Assert.Equal("k1", (await store.Keys.GetByNameAsync("treasury"))!.Id);
            Assert.Null(await store.Keys.GetAsync("nope"));
            Assert.Equal(2, (await store.Keys.ListAsync()).Count);
            KeyRecord k2 = (await store.Keys.GetAsync("k2"))!;
            Assert.Equal((2, 3, "frost-ed25519"), (k2.Threshold, k2.Participants, k2.Scheme));
            Assert.Equal(Bytes(32, 1), ReadAll(await store.Keys.OpenMaterialAsync("k1")));
            var e = await Assert.ThrowsAsync<StorageException>(() => store.Keys.OpenMaterialAsync("k2"));
            Assert.Equal(StorageErrorKind.NotFound, e.Kind);
        }

        // Reopen with the same passphrase: the material still opens.
        await using (IConclaveStore store = await loc.OpenAsync(WithPassphrase()))
        {
            Assert.Equal(Bytes(32, 1), ReadAll(await store.Keys.OpenMaterialAsync("k1")));
        }
    }

    [Fact]
    public async Task Keys_record_their_holders_through_creation_rotation_commit_and_record_holders()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using IConclaveStore store = await loc.OpenAsync(WithPassphrase());
        NewKey threshold = SampleKey("k1", "wide") with { Threshold = 2, Participants = 3 };

        // Created with its holders (any order in, ascending out); a single key has none.
        using (var m = Secret(1))
        {
            Assert.Equal([1u, 2u, 4u], (await store.Keys.CreateAsync(threshold with { Holders = [4, 1, 2] }, m)).Holders);
        }

        Assert.Null((await store.Keys.CreateAsync(SampleKey("k2"))).Holders);
        Assert.Equal([1u, 2u, 4u], (await store.Keys.GetByNameAsync("wide"))!.Holders);
        Assert.Equal([1u, 2u, 4u], (await store.Keys.ListAsync()).Single(k => k.Id == "k1").Holders);

        // Holders must be as many distinct node ids (from 1) as the key has participants.
        foreach (uint[] bad in new uint[][] { [1, 2], [1, 2, 2], [0, 1, 2], [1, 2, 3, 4] })
        {
            var e = await Assert.ThrowsAsync<StorageException>(() => store.Keys.CreateAsync(threshold with { Id = "k3", Name = "bad", Holders = bad }));
            Assert.Equal(StorageErrorKind.InvalidArgument, e.Kind);
        }

        // A rotation's commit writes the new committee in the same step as the version; without holders it clears them.
        await store.Rotations.BeginAsync(Run("h1", "k1") with { Kind = Conclave.Storage.Rotation.RotationKind.Reshare });
        await store.Rotations.TransitionAsync("h1", Conclave.Storage.Rotation.RotationState.Started, Conclave.Storage.Rotation.RotationState.Prepared, result: [1]);
        using (var m = Secret(2))
        {
            await store.Rotations.CommitKeyAsync("h1", new KeyRotation("k1", 1, 2, threshold.PublicKey, 2, 2) { Holders = [2, 1] }, m);
        }

        Assert.Equal([1u, 2u], (await store.Keys.GetAsync("k1"))!.Holders);
        using (var m = Secret(3))
        {
            await store.Keys.AddPendingVersionAsync("k1", 2, 3, threshold.PublicKey, m);
        }

        Assert.Null((await store.Keys.CommitPendingVersionAsync(new KeyRotation("k1", 2, 3, threshold.PublicKey, 2, 3))).Holders);

        // Recorded for a row that names none, at its version and size only; a recorded committee is never replaced.
        Assert.Null((await store.Keys.RecordHoldersAsync("k1", 2, [1, 2, 3])).Holders); // another version
        Assert.Null((await store.Keys.RecordHoldersAsync("k1", 3, [1, 2])).Holders); // another number of participants
        Assert.Equal([1u, 3u, 5u], (await store.Keys.RecordHoldersAsync("k1", 3, [5, 3, 1])).Holders);
        Assert.Equal([1u, 3u, 5u], (await store.Keys.RecordHoldersAsync("k1", 3, [1, 2, 3])).Holders);
        Assert.Equal(StorageErrorKind.NotFound, (await Assert.ThrowsAsync<StorageException>(() => store.Keys.RecordHoldersAsync("nope", 1, [1, 2]))).Kind);

        // A single-key rotation clears them (the store cannot know a committee it was not told).
        using (var m = Secret(4))
        {
            Assert.Null((await store.Keys.RotateAsync("k1", 3, Bytes(32, 9), m)).Holders);
        }
    }

    [Fact]
    public async Task Keys_duplicate_id_or_name_fails_and_bad_input_is_rejected()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using IConclaveStore store = await loc.OpenAsync(WithPassphrase());
        await store.Keys.CreateAsync(SampleKey("k1", "a"));
        Assert.Equal(StorageErrorKind.Duplicate, (await Assert.ThrowsAsync<StorageException>(() => store.Keys.CreateAsync(SampleKey("k1", "b")))).Kind);
        Assert.Equal(StorageErrorKind.Duplicate, (await Assert.ThrowsAsync<StorageException>(() => store.Keys.CreateAsync(SampleKey("k2", "a")))).Kind);
        Assert.Equal(StorageErrorKind.InvalidArgument, (await Assert.ThrowsAsync<StorageException>(() => store.Keys.CreateAsync(SampleKey("k3") with { Threshold = 3, Participants = 2 }))).Kind);
        Assert.Equal(StorageErrorKind.InvalidArgument, (await Assert.ThrowsAsync<StorageException>(() => store.Keys.CreateAsync(SampleKey("bad\nid")))).Kind);
        Assert.Equal(StorageErrorKind.InvalidArgument, (await Assert.ThrowsAsync<StorageException>(() => store.Keys.CreateAsync(SampleKey("k4") with { PublicKey = [] }))).Kind);
        Assert.Single(await store.Keys.ListAsync());
    }

    [Fact]
    public async Task Keys_rotation_keeps_history_and_every_public_key()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using IConclaveStore store = await loc.OpenAsync(WithPassphrase());
        using (var m = Secret(10))
        {
            await store.Keys.CreateAsync(SampleKey("k"), m);
        }

        using (var m = Secret(20))
        {
            KeyRecord r = await store.Keys.RotateAsync("k", 1, Bytes(32, 99), m);
            Assert.Equal(2, r.Version);
            Assert.Equal(Bytes(32, 99), r.PublicKey);
        }

        using (var m = Secret(30))
        {
            Assert.Equal(StorageErrorKind.Conflict, (await Assert.ThrowsAsync<StorageException>(() => store.Keys.RotateAsync("k", 1, Bytes(32, 5), m))).Kind);
            Assert.Equal(StorageErrorKind.NotFound, (await Assert.ThrowsAsync<StorageException>(() => store.Keys.RotateAsync("missing", 1, Bytes(32, 5), m))).Kind);
        }

        var versions = await store.Keys.GetVersionsAsync("k");
        Assert.Equal([1, 2], versions.Select(v => v.Version));
        Assert.Equal(Bytes(32, 1), versions[0].PublicKey);
        Assert.Equal(Bytes(32, 99), versions[1].PublicKey);
        Assert.All(versions, v => Assert.True(v.HasMaterial));
        Assert.Equal(Bytes(32, 20), ReadAll(await store.Keys.OpenMaterialAsync("k")));
        Assert.Equal(Bytes(32, 10), ReadAll(await store.Keys.OpenMaterialAsync("k", 1)));
    }

    [Fact]
    public async Task Keys_state_and_labels_update()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using IConclaveStore store = await loc.OpenAsync(WithPassphrase());
        await store.Keys.CreateAsync(SampleKey("k"));
        Assert.Equal(KeyState.Disabled, (await store.Keys.SetStateAsync("k", KeyState.Disabled)).State);
        KeyRecord r = await store.Keys.SetLabelsAsync("k", new Dictionary<string, string> { ["venue"] = "options", ["tier"] = "hot" });
        Assert.Equal(2, r.Labels.Count);
        Assert.Equal("hot", r.Labels["tier"]);
        Assert.Equal(StorageErrorKind.NotFound, (await Assert.ThrowsAsync<StorageException>(() => store.Keys.SetStateAsync("zz", KeyState.Retired))).Kind);
    }

    [Fact]
    public async Task Wrong_passphrase_is_refused_and_nothing_is_written()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using (IConclaveStore store = await loc.OpenAsync(WithPassphrase("right")))
        {
            using var m = Secret(3);
            await store.Keys.CreateAsync(SampleKey("k"), m);
        }

        object? keksBefore = await loc.ScalarAsync("SELECT COUNT(*) FROM keks");
        var e = await Assert.ThrowsAsync<StorageException>(() => loc.OpenAsync(WithPassphrase("wrong")));
        Assert.Equal(StorageErrorKind.WrongKeyEncryptionKey, e.Kind);
        Assert.DoesNotContain("wrong", e.Message.Replace("the passphrase or key file", "", StringComparison.Ordinal), StringComparison.Ordinal);
        Assert.Equal(keksBefore, await loc.ScalarAsync("SELECT COUNT(*) FROM keks"));

        // A key file cannot open a passphrase store either.
        string file = Path.Combine(Path.GetTempPath(), "conclave-kek-" + Guid.NewGuid().ToString("N"));
        try
        {
            var e2 = await Assert.ThrowsAsync<StorageException>(() => loc.OpenAsync(new StoreOptions { Kek = KeyFileKek.Source(file, createIfMissing: true) }));
            Assert.Equal(StorageErrorKind.InvalidArgument, e2.Kind);
        }
        finally
        {
            File.Delete(file);
        }

        await using (IConclaveStore store = await loc.OpenAsync(WithPassphrase("right")))
        {
            Assert.Equal(Bytes(32, 3), ReadAll(await store.Keys.OpenMaterialAsync("k")));
        }
    }

    [Fact]
    public async Task Key_file_kek_works_and_another_file_is_refused()
    {
        string dir = Path.Combine(Path.GetTempPath(), "conclave-kek-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            string file = Path.Combine(dir, "kek.bin");
            string other = Path.Combine(dir, "other.bin");
            await using TestLocation loc = await Harness.NewLocationAsync();
            await using (IConclaveStore store = await loc.OpenAsync(new StoreOptions { Kek = KeyFileKek.Source(file, createIfMissing: true) }))
            {
                Assert.Equal(KeyFileKek.KindName, store.ActiveKek!.Kind);
                using var m = Secret(4);
                await store.Keys.CreateAsync(SampleKey("k"), m);
            }

            Assert.Equal(32, new FileInfo(file).Length);
            if (!OperatingSystem.IsWindows())
            {
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
            }

            KeyFileKek.CreateFile(other).Dispose();
            var e = await Assert.ThrowsAsync<StorageException>(() => loc.OpenAsync(new StoreOptions { Kek = KeyFileKek.Source(other) }));
            Assert.Equal(StorageErrorKind.WrongKeyEncryptionKey, e.Kind);

            await File.WriteAllBytesAsync(other, new byte[31]);
            Assert.Equal(StorageErrorKind.InvalidArgument, (await Assert.ThrowsAsync<StorageException>(() => loc.OpenAsync(new StoreOptions { Kek = KeyFileKek.Source(other) }))).Kind);

            await using (IConclaveStore store = await loc.OpenAsync(new StoreOptions { Kek = KeyFileKek.Source(file) }))
            {
                Assert.Equal(Bytes(32, 4), ReadAll(await store.Keys.OpenMaterialAsync("k")));
            }
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public async Task Swapped_or_altered_material_rows_fail_to_decrypt()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using IConclaveStore store = await loc.OpenAsync(WithPassphrase());
        using (var a = Secret(5))
        using (var b = Secret(6))
        {
            await store.Keys.CreateAsync(SampleKey("a"), a);
            await store.Keys.CreateAsync(SampleKey("b"), b);
        }

        // Copy b's wrapped key and ciphertext onto a: associated data binds each to (key id, version).
        await loc.ExecAsync("UPDATE key_secrets SET wrapped_key=(SELECT wrapped_key FROM key_secrets WHERE key_id='b'), ciphertext=(SELECT ciphertext FROM key_secrets WHERE key_id='b') WHERE key_id='a'");
        var e = await Assert.ThrowsAsync<StorageException>(() => store.Keys.OpenMaterialAsync("a"));
        Assert.Equal(StorageErrorKind.Corrupted, e.Kind);

        // Flip a byte of b's ciphertext.
        byte[] ct = (byte[])(await loc.ScalarAsync("SELECT ciphertext FROM key_secrets WHERE key_id='b'"))!;
        ct[^1] ^= 1;
        await loc.ExecAsync("UPDATE key_secrets SET ciphertext=@c WHERE key_id='b'", ("@c", ct));
        Assert.Equal(StorageErrorKind.Corrupted, (await Assert.ThrowsAsync<StorageException>(() => store.Keys.OpenMaterialAsync("b"))).Kind);
    }

    [Fact]
    public async Task Kek_rotation_rewraps_every_data_key()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        string oldKekId;
        await using (IConclaveStore store = await loc.OpenAsync(WithPassphrase("old")))
        {
            oldKekId = store.ActiveKek!.Id;
            using (var m = Secret(7))
            {
                await store.Keys.CreateAsync(SampleKey("k"), m);
            }

            using (var m = Secret(8))
            {
                await store.Keys.RotateAsync("k", 1, Bytes(32, 8), m);
            }

            using (var n = Secret(9))
            {
                await store.Nonces.IssueAsync([new Nonces.NonceIssue([1, 2, 3], "k", Nonces.NonceKind.Nonce, n)]);
            }

            byte[] ctBefore = (byte[])(await loc.ScalarAsync("SELECT ciphertext FROM key_secrets WHERE key_id='k' AND version=1"))!;
            var kek = await store.RotateKekAsync(EngineHarness.Passphrase("new"));
            Assert.NotEqual(oldKekId, kek.Id);
            Assert.Equal(kek.Id, store.ActiveKek!.Id);
            Assert.Equal(ctBefore, (byte[])(await loc.ScalarAsync("SELECT ciphertext FROM key_secrets WHERE key_id='k' AND version=1"))!);
            Assert.Equal(2L, Convert.ToInt64(await loc.ScalarAsync("SELECT COUNT(*) FROM key_secrets WHERE kek_id=@k", ("@k", kek.Id))));
            Assert.Equal(Bytes(32, 7), ReadAll(await store.Keys.OpenMaterialAsync("k", 1)));
        }

        Assert.Equal(StorageErrorKind.WrongKeyEncryptionKey, (await Assert.ThrowsAsync<StorageException>(() => loc.OpenAsync(WithPassphrase("old")))).Kind);
        await using (IConclaveStore store = await loc.OpenAsync(WithPassphrase("new")))
        {
            Assert.Equal(Bytes(32, 8), ReadAll(await store.Keys.OpenMaterialAsync("k")));
            Assert.Equal(Bytes(32, 9), ReadAll((await store.Nonces.TryConsumeMaterialAsync([1, 2, 3]))!));
        }
    }

    [Fact]
    public async Task Failed_kek_rotation_changes_nothing()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using (IConclaveStore store = await loc.OpenAsync(WithPassphrase("old")))
        {
            using (var a = Secret(11))
            using (var b = Secret(12))
            {
                await store.Keys.CreateAsync(SampleKey("a"), a);
                await store.Keys.CreateAsync(SampleKey("b"), b);
            }

            string before = store.ActiveKek!.Id;
            byte[] wrapped = (byte[])(await loc.ScalarAsync("SELECT wrapped_key FROM key_secrets WHERE key_id='b'"))!;
            wrapped[^2] ^= 1;
            await loc.ExecAsync("UPDATE key_secrets SET wrapped_key=@w WHERE key_id='b'", ("@w", wrapped));
            var e = await Assert.ThrowsAsync<StorageException>(() => store.RotateKekAsync(EngineHarness.Passphrase("new")));
            Assert.Equal(StorageErrorKind.Corrupted, e.Kind);
            Assert.Equal(before, store.ActiveKek!.Id);
            Assert.Equal(1L, Convert.ToInt64(await loc.ScalarAsync("SELECT COUNT(*) FROM keks")));
            Assert.Equal(Bytes(32, 11), ReadAll(await store.Keys.OpenMaterialAsync("a")));
        }

        await using (IConclaveStore store = await loc.OpenAsync(WithPassphrase("old")))
        {
            Assert.Equal(Bytes(32, 11), ReadAll(await store.Keys.OpenMaterialAsync("a")));
        }
    }

    [Fact]
    public async Task Store_opened_without_kek_reads_metadata_but_not_secrets()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using (IConclaveStore store = await loc.OpenAsync(WithPassphrase()))
        {
            using var m = Secret(1);
            await store.Keys.CreateAsync(SampleKey("k"), m);
        }

        await using (IConclaveStore store = await loc.OpenAsync())
        {
            Assert.Null(store.ActiveKek);
            Assert.NotNull(await store.Keys.GetAsync("k"));
            Assert.Equal(StorageErrorKind.Locked, (await Assert.ThrowsAsync<StorageException>(() => store.Keys.OpenMaterialAsync("k"))).Kind);
        }
    }

    [Fact]
    public async Task Newer_schema_is_refused_and_left_untouched()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using (IConclaveStore store = await loc.OpenAsync(WithPassphrase()))
        {
            Assert.Equal(20, store.SchemaVersion);
            await store.Keys.CreateAsync(SampleKey("k"));
        }

        await using (IConclaveStore store = await loc.OpenAsync())
        {
            Assert.Equal(20, store.SchemaVersion); // reopening migrates nothing
        }

        Assert.Equal(20L, Convert.ToInt64(await loc.ScalarAsync("SELECT COUNT(*) FROM schema_migrations"))); // 1-20
        await loc.ExecAsync("INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'from the future', 0)");
        byte[]? before = loc.SqliteDirectory is null ? null : await File.ReadAllBytesAsync(Path.Combine(loc.SqliteDirectory, ConclaveStore.SqliteFileName));
        var e = await Assert.ThrowsAsync<StorageException>(() => loc.OpenAsync(WithPassphrase()));
        Assert.Equal(StorageErrorKind.SchemaTooNew, e.Kind);
        Assert.Contains("999", e.Message, StringComparison.Ordinal);
        if (before is not null)
        {
            Assert.Equal(before, await File.ReadAllBytesAsync(Path.Combine(loc.SqliteDirectory!, ConclaveStore.SqliteFileName)));
        }

        Assert.Equal(1L, Convert.ToInt64(await loc.ScalarAsync("SELECT COUNT(*) FROM keys")));
    }
}
