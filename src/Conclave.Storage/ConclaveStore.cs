using Conclave.Storage.Internal;

namespace Conclave.Storage;

/// <summary>Opens stores: SQLite from a data folder (the default), PostgreSQL from a connection string.</summary>
public static class ConclaveStore
{
    /// <summary>The database file inside a data folder.</summary>
    public const string SqliteFileName = SqliteEngine.FileName;

    /// <summary>
    /// Opens (creating if needed: the folder 0700, the database 0600; a folder group or others can write is refused) the SQLite store in <paramref name="dataDirectory"/>, runs migrations
    /// and, when a KEK source is given, unlocks the secrets.
    /// </summary>
    public static async Task<IConclaveStore> OpenSqliteAsync(string dataDirectory, StoreOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(dataDirectory);
        options ??= new StoreOptions();
        string path = Path.Combine(Path.GetFullPath(dataDirectory), SqliteFileName);
        if (options.ReadOnly)
        {
            if (!File.Exists(path))
            {
                throw StorageErrors.NotFound("store", path);
            }
        }
        else
        {
            OwnerOnly.CreateDirectory(dataDirectory);
        }

        if (!options.ReadOnly)
        {
            // A verifier may read a suspicious folder; a writer refuses one that others could swap files in.
            if (OwnerOnly.WritableByOthers(dataDirectory) is { } refused)
            {
                throw StorageErrors.InsecureFolder(refused);
            }

            // SQLite creates a new database 0644 and its -wal/-shm files with the database's mode: start it 0600.
            OwnerOnly.CreateEmptyFile(path);
            TightenExisting(path);
        }

        if (File.Exists(path) && !options.ReadOnly)
        {
            // Refuse a newer store before touching it: even switching to WAL writes the file header.
            var probe = new SqliteEngine(path, readOnly: true);
            await using (probe.ConfigureAwait(false))
            {
                try
                {
                    await CheckVersionAsync(probe, cancellationToken).ConfigureAwait(false);
                }
                catch (System.Data.Common.DbException e)
                {
                    throw StorageErrors.Io($"open of {probe.Description}", e);
                }
            }
        }

        var engine = new SqliteEngine(path, options.ReadOnly);
        return await SqlStore.OpenAsync(engine, options, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Opens the PostgreSQL store at <paramref name="connectionString"/> (the database must exist), runs migrations and unlocks.</summary>
    public static async Task<IConclaveStore> OpenPostgresAsync(string connectionString, StoreOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(connectionString);
        var engine = new PostgresEngine(connectionString);
        return await SqlStore.OpenAsync(engine, options ?? new StoreOptions(), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>A store made by an older Conclave may have 0644 files: owner-only from this open on.</summary>
    private static void TightenExisting(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        foreach (string f in new[] { path, path + "-wal", path + "-shm" })
        {
            if (File.Exists(f) && (File.GetUnixFileMode(f) & ~OwnerOnly.FileMode) != 0)
            {
                File.SetUnixFileMode(f, OwnerOnly.FileMode);
            }
        }
    }

    private static async Task CheckVersionAsync(SqlEngine engine, CancellationToken ct)
    {
        var c = await engine.OpenAsync(ct).ConfigureAwait(false);
        await using (c.ConfigureAwait(false))
        {
            long found = await Migrations.ReadVersionAsync(engine, c, ct).ConfigureAwait(false);
            if (found > Migrations.Latest)
            {
                throw StorageErrors.SchemaTooNew(found, Migrations.Latest);
            }
        }
    }
}
