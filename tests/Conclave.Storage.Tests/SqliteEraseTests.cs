using System.Security.Cryptography;
using Conclave.Crypto.Memory;
using Conclave.Storage.Keys;

namespace Conclave.Storage.Tests;

/// <summary>
/// Erasing for real on SQLite (docs/ROTATION.md "Erasing for real"): once a node erases a share version (the retire of
/// a run, or the abort that discards a pending one), its sealed share is in none of the database files, byte for byte.
/// <c>secure_delete</c> zeroes the deleted row, but a b-tree balance copies rows to other places in the table's pages
/// and SQLite leaves the bytes they moved from in the page's unused space: a share that moved before it was erased
/// could be read back from <c>conclave.db</c> (seen in <c>NodeChaosTests</c>, seed 535986194).
/// </summary>
public sealed class SqliteEraseTests
{
    [Fact]
    public async Task ManyRotationsOfKeysOfMixedSizes_LeaveNoErasedShareInTheDatabaseFiles()
    {
        await using TestLocation loc = await new SqliteHarness().NewLocationAsync();
        await using IConclaveStore store = await loc.OpenAsync(new StoreOptions { Kek = EngineHarness.Passphrase() });

        // Keys whose shares differ in size (as FROST and DKLs23 key packages of different suites and committees do),
        // refreshed and reshared in a seeded order: most steps store a pending version, then commit it and erase the
        // old version (a retire) or discard it (an abort); the others replace the current version's material in place or
        // through a staged replacement that is promoted or discarded. Right after each erase, its share must be in no file.
        var rng = TestSeed.Random("order");
        DeterministicRandomSource shares = TestSeed.For("share material");
        var versions = new Dictionary<string, int>(StringComparer.Ordinal);
        var lengths = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < 48; i++)
        {
            string id = $"erase-{new string('k', i % 5)}-{i}";
            lengths[id] = rng.Next(150, 600);
            using SecretBuffer material = Material(shares, lengths[id]);
            await store.Keys.CreateAsync(new NewKey(id, id, "frost-secp256k1", PublicKey(id), 2, 3), material);
            versions[id] = 1;
        }

        string[] ids = [.. versions.Keys];
        var found = new List<string>();
        int erases = 0;
        for (int step = 0; step < 600; step++)
        {
            string id = ids[rng.Next(ids.Length)];
            int from = versions[id];
            int length = rng.Next(150, 600);
            int kind = rng.Next(8);
            if (kind <= 2)
            {
                // The current version's material replaced in place (a DKLs23 share after a ban: ReplaceMaterialAsync), or
                // a replacement staged and then promoted (a DKLs23 repair's commit) or discarded (its abort).
                byte[] old = await SealedShareAsync(loc, id, from);
                using SecretBuffer material = Material(shares, length);
                if (kind == 0)
                {
                    Assert.True(await store.Keys.ReplaceMaterialAsync(id, from, material));
                }
                else
                {
                    await store.Keys.StageReplacementAsync(id, from, material);
                    byte[] staged = await loc.ScalarAsync("SELECT ciphertext FROM key_secrets_staged WHERE key_id=@k AND version=@v", ("@k", id), ("@v", from)) as byte[]
                        ?? throw new InvalidOperationException($"no staged share of {id} v{from}");
                    if (kind == 2)
                    {
                        Assert.True(await store.Keys.DiscardPendingVersionAsync(id, from));
                        old = staged;
                    }
                    else
                    {
                        await store.Keys.CommitPendingVersionAsync(new KeyRotation(id, from, from, PublicKey(id), 2, 3));
                    }
                }

                lengths[id] = kind == 2 ? lengths[id] : length;
                erases++;
                if (FileHolding(DatabaseFiles(loc.SqliteDirectory!), old) is string replacedIn)
                {
                    found.Add($"{id} v{from} ({(kind == 0 ? "replaced" : kind == 1 ? "promoted over" : "staged, discarded")}) in {replacedIn} (step {step})");
                }

                continue;
            }

            using (SecretBuffer material = Material(shares, length))
            {
                await store.Keys.AddPendingVersionAsync(id, from, from + 1, PublicKey(id), material);
            }

            int erased;
            byte[] ciphertext;
            if (rng.Next(4) == 0)
            {
                erased = from + 1;
                ciphertext = await SealedShareAsync(loc, id, erased);
                Assert.True(await store.Keys.DiscardPendingVersionAsync(id, erased));
            }
            else
            {
                await store.Keys.CommitPendingVersionAsync(new KeyRotation(id, from, from + 1, PublicKey(id), 2, 3));
                erased = from;
                ciphertext = await SealedShareAsync(loc, id, erased);
                Assert.True(await store.Keys.DestroyMaterialAsync(id, erased));
                versions[id] = from + 1;
                lengths[id] = length;
            }

            erases++;
            if (FileHolding(DatabaseFiles(loc.SqliteDirectory!), ciphertext) is string file)
            {
                found.Add($"{id} v{erased} in {file} (step {step})");
            }
        }

        Assert.True(found.Count == 0, $"{found.Count} of {erases} erased shares were still in the files after their erase: {string.Join(", ", found)}");
        Dictionary<string, byte[]> files = DatabaseFiles(loc.SqliteDirectory!);

        // Every current share is still there and opens (the scan can see a share, and the erases kept the rest).
        foreach ((string id, int version) in versions)
        {
            Assert.NotNull(FileHolding(files, await SealedShareAsync(loc, id, version)));
            using SecretBuffer opened = await store.Keys.OpenMaterialAsync(id);
            Assert.Equal(lengths[id], opened.Length);
        }
    }

    private static SecretBuffer Material(DeterministicRandomSource shares, int size) => SecretBuffer.CopyFrom(shares.Bytes(size));

    private static byte[] PublicKey(string id) => SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(id));

    private static async Task<byte[]> SealedShareAsync(TestLocation loc, string id, int version) =>
        await loc.ScalarAsync("SELECT ciphertext FROM key_secrets WHERE key_id=@k AND version=@v", ("@k", id), ("@v", version)) as byte[]
            ?? throw new InvalidOperationException($"no share of {id} v{version}");

    /// <summary>conclave.db, -wal and -shm as they are on disk now.</summary>
    private static Dictionary<string, byte[]> DatabaseFiles(string dir)
    {
        var files = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (string f in Directory.GetFiles(dir, ConclaveStore.SqliteFileName + "*"))
        {
            // SQLite deletes -wal and -shm when its last connection closes: a file listed a moment ago may be gone (and
            // then holds nothing).
            try
            {
                using var s = new FileStream(f, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                using var m = new MemoryStream();
                s.CopyTo(m);
                files[Path.GetFileName(f)] = m.ToArray();
            }
            catch (FileNotFoundException)
            {
            }
        }

        return files;
    }

    /// <summary>The file holding any 32-byte window of <paramref name="ciphertext"/> (AEAD output: never there by chance).</summary>
    private static string? FileHolding(Dictionary<string, byte[]> files, byte[] ciphertext)
    {
        foreach ((string name, byte[] bytes) in files)
        {
            for (int at = 0; at + 32 <= ciphertext.Length; at += 32)
            {
                if (bytes.AsSpan().IndexOf(ciphertext.AsSpan(at, 32)) >= 0)
                {
                    return name;
                }
            }
        }

        return null;
    }
}
