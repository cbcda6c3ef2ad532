namespace Conclave.Storage.Tests;

/// <summary>Issue 14 item 11: a fresh SQLite store is owner-only from the start; a folder others can write is refused.</summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class FilePermissionTests
{
    private const UnixFileMode Group = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute;
    private const UnixFileMode Other = UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;

    [Fact]
    public async Task Fresh_store_folder_is_0700_and_database_wal_and_shm_are_0600()
    {
        string parent = Path.Combine(Path.GetTempPath(), "conclave-perm-" + Guid.NewGuid().ToString("N"));
        string dir = Path.Combine(parent, "nested", "data");
        try
        {
            await using (IConclaveStore store = await ConclaveStore.OpenSqliteAsync(dir, new StoreOptions { Kek = EngineHarness.Passphrase() }))
            {
                await store.Keys.CreateAsync(new Keys.NewKey("k", "k", "ed25519", new byte[32]));
                Assert.Equal(OwnerOnly.DirectoryMode, File.GetUnixFileMode(dir));
                Assert.Equal(OwnerOnly.DirectoryMode, File.GetUnixFileMode(Path.Combine(parent, "nested")));
                string db = Path.Combine(dir, ConclaveStore.SqliteFileName);
                foreach (string f in new[] { db, db + "-wal", db + "-shm" })
                {
                    Assert.True(File.Exists(f), f);
                    Assert.Equal(OwnerOnly.FileMode, File.GetUnixFileMode(f));
                }
            }
        }
        finally
        {
            Directory.Delete(parent, recursive: true);
        }
    }

    [Fact]
    public async Task Group_or_world_writable_data_folder_is_refused_with_one_line_naming_chmod_700()
    {
        string dir = Path.Combine(Path.GetTempPath(), "conclave-perm-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            foreach (UnixFileMode loose in new[] { OwnerOnly.DirectoryMode | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute | UnixFileMode.GroupRead, OwnerOnly.DirectoryMode | Other })
            {
                File.SetUnixFileMode(dir, loose);
                var e = await Assert.ThrowsAsync<StorageException>(() => ConclaveStore.OpenSqliteAsync(dir));
                Assert.Contains(dir, e.Message, StringComparison.Ordinal);
                Assert.Contains("chmod 700", e.Message, StringComparison.Ordinal);
                Assert.DoesNotContain('\n', e.Message);
                Assert.False(File.Exists(Path.Combine(dir, ConclaveStore.SqliteFileName))); // nothing was created
            }

            // Group-readable but not writable is not a takeover risk: accepted (the database inside is still 0600).
            File.SetUnixFileMode(dir, OwnerOnly.DirectoryMode | (Group & ~UnixFileMode.GroupWrite));
            await using IConclaveStore ok = await ConclaveStore.OpenSqliteAsync(dir);
            Assert.Equal(OwnerOnly.FileMode, File.GetUnixFileMode(Path.Combine(dir, ConclaveStore.SqliteFileName)));
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(dir, recursive: true);
        }
    }
}
