using System.Data.Common;
using System.Text.Json;
using Conclave.Crypto.Memory;
using Conclave.Storage.Encryption;
using Conclave.Storage.Keys;

namespace Conclave.Storage.Internal;

internal sealed class SqlKeyStore(SqlStore store) : IKeyStore
{
    // The MAC's columns first (KeyRecordMac.Columns), then the times; readers select them followed by mac.
    private const string KeyColumns = KeyRecordMac.Columns + ", created_at, updated_at";

    public async Task<KeyRecord> CreateAsync(NewKey key, SecretBuffer? material = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        Validate.Identifier(key.Id, "key.Id");
        Validate.Text(key.Name, "key.Name");
        Validate.Identifier(key.Scheme, "key.Scheme");
        Validate.PublicKey(key.PublicKey, "key.PublicKey");
        if (key.InitialVersion < 1)
        {
            throw StorageErrors.Invalid("key.InitialVersion", "versions start at 1");
        }

        if (key.Threshold < 1 || key.Participants < key.Threshold || key.Participants > 1000)
        {
            throw StorageErrors.Invalid("key.Threshold", "need 1 <= threshold <= participants <= 1000");
        }

        if (key.InitialState is not (KeyState.Active or KeyState.Pending))
        {
            throw StorageErrors.Invalid("key.InitialState", "a key starts active or pending");
        }

        string labels = Validate.Labels(key.Labels);
        _ = HoldersText(key.Holders, key.Participants, "key.Holders");
        var kek = material is null ? null : store.Kek; // one KEK for sealing and for the kek_id column
        (string KekId, byte[] Wrapped, byte[] Cipher)? sealedMaterial = kek is null
            ? null
            : Sealed(kek, SecretSealer.Seal(kek, material!.ReadOnlySpan, SecretSealer.KeyMaterialContext(key.Id, key.InitialVersion)));
        long now = store.NowMs();
        await store.EnsureKeyMacKeyAsync(cancellationToken).ConfigureAwait(false);
        await store.WriteAsync((c, tx) => InsertKeyInTransactionAsync(c, tx, key, labels, sealedMaterial, now, cancellationToken), cancellationToken).ConfigureAwait(false);
        return (await GetAsync(key.Id, cancellationToken).ConfigureAwait(false))!;
    }

    /// <summary>Inserts a key row and its first version inside the caller's transaction (duplicate id or name fails).</summary>
    internal async Task<bool> InsertKeyInTransactionAsync(DbConnection c, DbTransaction tx, NewKey key, string labels,
        (string KekId, byte[] Wrapped, byte[] Cipher)? sealedMaterial, long now, CancellationToken ct)
    {
        using (DbCommand cmd = SqlEngine.Command(c, tx,
            $"INSERT INTO keys ({KeyColumns}) VALUES (@id, @name, @scheme, @pk, @t, @n, @version, @state, @labels, @holders, @now, @now)"))
        {
            cmd.Add("@id", key.Id);
            cmd.Add("@name", key.Name);
            cmd.Add("@scheme", key.Scheme);
            cmd.Add("@pk", key.PublicKey);
            cmd.Add("@t", key.Threshold);
            cmd.Add("@n", key.Participants);
            cmd.Add("@state", key.InitialState.ToString());
            cmd.Add("@labels", labels);
            cmd.Add("@version", key.InitialVersion);
            cmd.Add("@holders", HoldersText(key.Holders, key.Participants, "key.Holders"));
            cmd.Add("@now", now);
            try
            {
                await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }
            catch (DbException e) when (store.Engine.IsUniqueViolation(e))
            {
                throw StorageErrors.Duplicate("key (id or name)", key.Id);
            }
        }

        await InsertVersionAsync(c, tx, key.Id, key.InitialVersion, key.PublicKey, sealedMaterial, now, ct).ConfigureAwait(false);
        await KeyRecordMac.ResealAsync(store, c, tx, key.Id, ct).ConfigureAwait(false);
        return true;
    }

    /// <summary>Validates a new key and seals its material for <see cref="InsertKeyInTransactionAsync"/>; returns the labels' encoding.</summary>
    internal (string Labels, (string KekId, byte[] Wrapped, byte[] Cipher)? Sealed) PrepareNewKey(NewKey key, SecretBuffer? material)
    {
        Validate.Identifier(key.Id, "key.Id");
        Validate.Text(key.Name, "key.Name");
        Validate.Identifier(key.Scheme, "key.Scheme");
        Validate.PublicKey(key.PublicKey, "key.PublicKey");
        ValidateShape(key.Threshold, key.Participants);
        _ = HoldersText(key.Holders, key.Participants, "key.Holders");
        string labels = Validate.Labels(key.Labels);
        var kek = material is null ? null : store.Kek;
        return (labels, kek is null ? null : Sealed(kek, SecretSealer.Seal(kek, material!.ReadOnlySpan, SecretSealer.KeyMaterialContext(key.Id, key.InitialVersion))));
    }

    private async Task InsertVersionAsync(DbConnection c, DbTransaction tx, string keyId, int version, byte[] publicKey,
        (string KekId, byte[] Wrapped, byte[] Cipher)? material, long now, CancellationToken ct)
    {
        using (DbCommand cmd = SqlEngine.Command(c, tx, "INSERT INTO key_versions (key_id, version, public_key, created_at) VALUES (@id, @v, @pk, @now)"))
        {
            cmd.Add("@id", keyId);
            cmd.Add("@v", version);
            cmd.Add("@pk", publicKey);
            cmd.Add("@now", now);
            await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }

        if (material is { } m)
        {
            using DbCommand cmd = SqlEngine.Command(c, tx,
                "INSERT INTO key_secrets (key_id, version, kek_id, wrapped_key, ciphertext, created_at) VALUES (@id, @v, @kek, @w, @ct, @now)");
            cmd.Add("@id", keyId);
            cmd.Add("@v", version);
            cmd.Add("@kek", m.KekId);
            cmd.Add("@w", m.Wrapped);
            cmd.Add("@ct", m.Cipher);
            cmd.Add("@now", now);
            await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }
    }

    public Task<KeyRecord?> GetAsync(string id, CancellationToken cancellationToken = default) =>
        GetOneAsync("id", id, cancellationToken);

    public Task<KeyRecord?> GetByNameAsync(string name, CancellationToken cancellationToken = default) =>
        GetOneAsync("name", name, cancellationToken);

    private Task<KeyRecord?> GetOneAsync(string column, string value, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(value);
        return store.ReadAsync(async c =>
        {
            using SecretBuffer? macKey = store.IsUnlocked ? await store.KeyMacKeyAsync(c, null, ct).ConfigureAwait(false) : null;
            using DbCommand cmd = SqlEngine.Command(c, null, $"SELECT {KeyColumns}, mac FROM keys WHERE {column}=@v");
            cmd.Add("@v", value);
            using DbDataReader r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            return await r.ReadAsync(ct).ConfigureAwait(false) ? ReadKey(r, macKey) : null;
        }, ct);
    }

    public Task<IReadOnlyList<KeyRecord>> ListAsync(CancellationToken cancellationToken = default) =>
        store.ReadAsync<IReadOnlyList<KeyRecord>>(async c =>
        {
            using SecretBuffer? macKey = store.IsUnlocked ? await store.KeyMacKeyAsync(c, null, cancellationToken).ConfigureAwait(false) : null;
            using DbCommand cmd = SqlEngine.Command(c, null, $"SELECT {KeyColumns}, mac FROM keys ORDER BY name");
            using DbDataReader r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            var list = new List<KeyRecord>();
            while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                list.Add(ReadKey(r, macKey));
            }

            return list;
        }, cancellationToken);

    public Task<IReadOnlyList<KeyVersionRecord>> GetVersionsAsync(string id, CancellationToken cancellationToken = default) =>
        store.ReadAsync<IReadOnlyList<KeyVersionRecord>>(async c =>
        {
            using DbCommand cmd = SqlEngine.Command(c, null,
                "SELECT v.key_id, v.version, v.public_key, v.created_at, s.key_id FROM key_versions v " +
                "LEFT JOIN key_secrets s ON s.key_id = v.key_id AND s.version = v.version WHERE v.key_id=@id ORDER BY v.version");
            cmd.Add("@id", id);
            using DbDataReader r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            var list = new List<KeyVersionRecord>();
            while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                list.Add(new KeyVersionRecord(r.GetString(0), r.GetInt32(1), (byte[])r.GetValue(2), SqlStore.FromMs(r.GetInt64(3)), !r.IsDBNull(4)));
            }

            return list;
        }, cancellationToken);

    public async Task<KeyRecord> RotateAsync(string id, int expectedVersion, byte[] newPublicKey, SecretBuffer? material = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(id);
        Validate.PublicKey(newPublicKey, nameof(newPublicKey));
        int next = checked(expectedVersion + 1);
        var kek = material is null ? null : store.Kek;
        (string KekId, byte[] Wrapped, byte[] Cipher)? sealedMaterial = kek is null
            ? null
            : Sealed(kek, SecretSealer.Seal(kek, material!.ReadOnlySpan, SecretSealer.KeyMaterialContext(id, next)));
        long now = store.NowMs();
        await store.WriteAsync(async (c, tx) =>
        {
            await KeyRecordMac.ReadVerifiedAsync(store, c, tx, id, cancellationToken).ConfigureAwait(false);
            using (DbCommand cmd = SqlEngine.Command(c, tx,
                "UPDATE keys SET version=@next, public_key=@pk, holders=NULL, updated_at=@now WHERE id=@id AND version=@expected"))
            {
                cmd.Add("@next", next);
                cmd.Add("@pk", newPublicKey);
                cmd.Add("@now", now);
                cmd.Add("@id", id);
                cmd.Add("@expected", expectedVersion);
                if (await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) != 1)
                {
                    throw await ExistsAsync(c, tx, id, cancellationToken).ConfigureAwait(false)
                        ? StorageErrors.Conflict("key", id, $"is not at version {expectedVersion}")
                        : StorageErrors.NotFound("key", id);
                }
            }

            await InsertVersionAsync(c, tx, id, next, newPublicKey, sealedMaterial, now, cancellationToken).ConfigureAwait(false);
            await KeyRecordMac.ResealAsync(store, c, tx, id, cancellationToken).ConfigureAwait(false);
            return true;
        }, cancellationToken).ConfigureAwait(false);
        return (await GetAsync(id, cancellationToken).ConfigureAwait(false))!;
    }

    public async Task<bool> DestroyMaterialAsync(string id, int version, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(id);
        bool erased = await store.WriteAsync(async (c, tx) =>
        {
            await DeleteStagedAsync(c, tx, id, version, cancellationToken).ConfigureAwait(false);
            int deleted;
            using (DbCommand cmd = SqlEngine.Command(c, tx, "DELETE FROM key_secrets WHERE key_id=@id AND version=@v"))
            {
                cmd.Add("@id", id);
                cmd.Add("@v", version);
                deleted = await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            if (deleted == 1)
            {
                // No copy of the deleted ciphertext may stay in the table's pages (SqlEngine.RewriteAfterEraseAsync).
                await store.Engine.RewriteAfterEraseAsync(c, tx, "key_secrets", cancellationToken).ConfigureAwait(false);
            }

            return deleted == 1;
        }, cancellationToken).ConfigureAwait(false);
        if (erased)
        {
            // The deleted ciphertext must not survive in free pages or the write-ahead log (SqlEngine.ScrubAsync).
            await store.Engine.ScrubAsync(cancellationToken).ConfigureAwait(false);
        }

        return erased;
    }

    public async Task<bool> ReplaceMaterialAsync(string id, int version, SecretBuffer material, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(id);
        ArgumentNullException.ThrowIfNull(material);
        IKeyEncryptionKey kek = store.Kek;
        (string kekId, byte[] wrapped, byte[] cipher) = Sealed(kek, SecretSealer.Seal(kek, material.ReadOnlySpan, SecretSealer.KeyMaterialContext(id, version)));
        bool replaced = await store.WriteAsync(async (c, tx) =>
        {
            using DbCommand cmd = SqlEngine.Command(c, tx, "UPDATE key_secrets SET kek_id=@kek, wrapped_key=@w, ciphertext=@ct WHERE key_id=@id AND version=@v");
            cmd.Add("@kek", kekId);
            cmd.Add("@w", wrapped);
            cmd.Add("@ct", cipher);
            cmd.Add("@id", id);
            cmd.Add("@v", version);
            if (await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) != 1)
            {
                return false;
            }

            // The replaced ciphertext: no copy of it may stay in the table's pages (SqlEngine.RewriteAfterEraseAsync).
            await store.Engine.RewriteAfterEraseAsync(c, tx, "key_secrets", cancellationToken).ConfigureAwait(false);
            return true;
        }, cancellationToken).ConfigureAwait(false);
        if (replaced)
        {
            // The replaced ciphertext must not survive in free pages or the write-ahead log (SqlEngine.ScrubAsync).
            await store.Engine.ScrubAsync(cancellationToken).ConfigureAwait(false);
        }

        return replaced;
    }

    public async Task<KeyRecord> AddPendingVersionAsync(string id, int currentVersion, int pendingVersion, byte[] publicKey, SecretBuffer material,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(id);
        ArgumentNullException.ThrowIfNull(material);
        Validate.PublicKey(publicKey, nameof(publicKey));
        if (pendingVersion <= currentVersion)
        {
            throw StorageErrors.Invalid(nameof(pendingVersion), "a pending version is above the current one");
        }

        IKeyEncryptionKey kek = store.Kek;
        (string KekId, byte[] Wrapped, byte[] Cipher) sealedMaterial = Sealed(kek, SecretSealer.Seal(kek, material.ReadOnlySpan, SecretSealer.KeyMaterialContext(id, pendingVersion)));
        long now = store.NowMs();
        await store.WriteAsync(async (c, tx) =>
        {
            int? current = await CurrentVersionAsync(c, tx, id, cancellationToken).ConfigureAwait(false);
            if (current is null)
            {
                throw StorageErrors.NotFound("key", id);
            }

            if (current != currentVersion)
            {
                throw StorageErrors.Conflict("key", id, $"is not at version {currentVersion}");
            }

            try
            {
                await InsertVersionAsync(c, tx, id, pendingVersion, publicKey, sealedMaterial, now, cancellationToken).ConfigureAwait(false);
            }
            catch (DbException e) when (store.Engine.IsUniqueViolation(e))
            {
                throw StorageErrors.Conflict("key", id, $"already has a version {pendingVersion}");
            }

            return true;
        }, cancellationToken).ConfigureAwait(false);
        return (await GetAsync(id, cancellationToken).ConfigureAwait(false))!;
    }

    public async Task<KeyRecord> CommitPendingVersionAsync(KeyRotation rotation, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(rotation);
        Validate.PublicKey(rotation.PublicKey, "rotation.PublicKey");
        ValidateShape(rotation.Threshold, rotation.Participants);
        string? holders = HoldersText(rotation.Holders, rotation.Participants, "rotation.Holders");
        long now = store.NowMs();
        bool replaced = false;
        await store.WriteAsync(async (c, tx) =>
        {
            (int Version, string State)? row = await VersionAndStateAsync(c, tx, rotation.KeyId, cancellationToken).ConfigureAwait(false)
                ?? throw StorageErrors.NotFound("key", rotation.KeyId);
            if (row.Value.Version == rotation.ToVersion && row.Value.State == nameof(KeyState.Active))
            {
                // Already at the version: a run that keeps it commits its staged replacement, if any; otherwise this is a
                // repeated commit after a crash or a retry.
                replaced = await PromoteStagedAsync(c, tx, rotation.KeyId, rotation.ToVersion, cancellationToken).ConfigureAwait(false);
                return true;
            }

            // A new member (a pending key) or a node rejoining a committee it left (a destroyed key) takes the new
            // version whatever version its record still names; a holder moves only from the run's old version.
            bool joining = row.Value.State is nameof(KeyState.Pending) or nameof(KeyState.Destroyed);
            if (!joining && row.Value.Version != rotation.FromVersion)
            {
                throw StorageErrors.Conflict("key", rotation.KeyId, $"is at version {row.Value.Version}, neither {rotation.FromVersion} nor {rotation.ToVersion}");
            }

            if (!await HasMaterialAsync(c, tx, rotation.KeyId, rotation.ToVersion, cancellationToken).ConfigureAwait(false))
            {
                throw StorageErrors.Conflict("key", rotation.KeyId, $"holds no pending version {rotation.ToVersion}");
            }

            await KeyRecordMac.ReadVerifiedAsync(store, c, tx, rotation.KeyId, cancellationToken).ConfigureAwait(false);
            using DbCommand cmd = SqlEngine.Command(c, tx,
                "UPDATE keys SET version=@to, public_key=@pk, threshold=@t, participants=@n, holders=@holders, state=@active, updated_at=@now WHERE id=@id");
            cmd.Add("@holders", holders);
            cmd.Add("@to", rotation.ToVersion);
            cmd.Add("@pk", rotation.PublicKey);
            cmd.Add("@t", rotation.Threshold);
            cmd.Add("@n", rotation.Participants);
            cmd.Add("@active", nameof(KeyState.Active));
            cmd.Add("@now", now);
            cmd.Add("@id", rotation.KeyId);
            await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            await KeyRecordMac.ResealAsync(store, c, tx, rotation.KeyId, cancellationToken).ConfigureAwait(false);
            return true;
        }, cancellationToken).ConfigureAwait(false);
        if (replaced)
        {
            // The replaced ciphertext must not survive in free pages or the write-ahead log (SqlEngine.ScrubAsync).
            await store.Engine.ScrubAsync(cancellationToken).ConfigureAwait(false);
        }

        return (await GetAsync(rotation.KeyId, cancellationToken).ConfigureAwait(false))!;
    }

    public async Task<KeyRecord> StageReplacementAsync(string id, int version, SecretBuffer material, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(id);
        ArgumentNullException.ThrowIfNull(material);
        IKeyEncryptionKey kek = store.Kek;
        // Sealed under the version's own context: the commit moves the ciphertext into key_secrets as it is.
        (string KekId, byte[] Wrapped, byte[] Cipher) sealedMaterial = Sealed(kek, SecretSealer.Seal(kek, material.ReadOnlySpan, SecretSealer.KeyMaterialContext(id, version)));
        long now = store.NowMs();
        await store.WriteAsync(async (c, tx) =>
        {
            (int Version, string State)? row = await VersionAndStateAsync(c, tx, id, cancellationToken).ConfigureAwait(false)
                ?? throw StorageErrors.NotFound("key", id);
            if (row.Value.Version != version || row.Value.State != nameof(KeyState.Active) || !await HasMaterialAsync(c, tx, id, version, cancellationToken).ConfigureAwait(false))
            {
                throw StorageErrors.Conflict("key", id, $"is not active with material at version {version}");
            }

            using DbCommand cmd = SqlEngine.Command(c, tx,
                "INSERT INTO key_secrets_staged (key_id, version, kek_id, wrapped_key, ciphertext, created_at) VALUES (@id, @v, @kek, @w, @ct, @now)");
            cmd.Add("@id", id);
            cmd.Add("@v", version);
            cmd.Add("@kek", sealedMaterial.KekId);
            cmd.Add("@w", sealedMaterial.Wrapped);
            cmd.Add("@ct", sealedMaterial.Cipher);
            cmd.Add("@now", now);
            try
            {
                await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (DbException e) when (store.Engine.IsUniqueViolation(e))
            {
                throw StorageErrors.Conflict("key", id, $"already holds a staged replacement of version {version}");
            }

            return true;
        }, cancellationToken).ConfigureAwait(false);
        return (await GetAsync(id, cancellationToken).ConfigureAwait(false))!;
    }

    /// <summary>Moves a staged replacement of the version into key_secrets, inside the caller's transaction; false if none.</summary>
    private async Task<bool> PromoteStagedAsync(DbConnection c, DbTransaction tx, string id, int version, CancellationToken ct)
    {
        using (DbCommand upd = SqlEngine.Command(c, tx,
            "UPDATE key_secrets SET kek_id = (SELECT s.kek_id FROM key_secrets_staged s WHERE s.key_id=@id AND s.version=@v), " +
            "wrapped_key = (SELECT s.wrapped_key FROM key_secrets_staged s WHERE s.key_id=@id AND s.version=@v), " +
            "ciphertext = (SELECT s.ciphertext FROM key_secrets_staged s WHERE s.key_id=@id AND s.version=@v) " +
            "WHERE key_id=@id AND version=@v AND EXISTS (SELECT 1 FROM key_secrets_staged s WHERE s.key_id=@id AND s.version=@v)"))
        {
            upd.Add("@id", id);
            upd.Add("@v", version);
            if (await upd.ExecuteNonQueryAsync(ct).ConfigureAwait(false) == 0)
            {
                return false;
            }
        }

        // The version's previous material was overwritten: no copy of it may stay in the table's pages.
        await store.Engine.RewriteAfterEraseAsync(c, tx, "key_secrets", ct).ConfigureAwait(false);
        await DeleteStagedAsync(c, tx, id, version, ct).ConfigureAwait(false);
        return true;
    }

    /// <summary>Deletes staged replacements (all of a key's, or one version's); when any was deleted, no copy of it stays in the table's pages.</summary>
    private async Task<int> DeleteStagedAsync(DbConnection c, DbTransaction tx, string id, int? version, CancellationToken ct)
    {
        using DbCommand cmd = SqlEngine.Command(c, tx, version is null
            ? "DELETE FROM key_secrets_staged WHERE key_id=@id"
            : "DELETE FROM key_secrets_staged WHERE key_id=@id AND version=@v");
        cmd.Add("@id", id);
        if (version is not null)
        {
            cmd.Add("@v", version.Value);
        }

        int deleted = await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        if (deleted > 0)
        {
            await store.Engine.RewriteAfterEraseAsync(c, tx, "key_secrets_staged", ct).ConfigureAwait(false);
        }

        return deleted;
    }

    public async Task<bool> DiscardPendingVersionAsync(string id, int version, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(id);
        bool removed = await store.WriteAsync(async (c, tx) =>
        {
            (int Version, string State)? row = await VersionAndStateAsync(c, tx, id, cancellationToken).ConfigureAwait(false);
            if (row is null)
            {
                return false;
            }

            bool wholeKey = row.Value.State == nameof(KeyState.Pending) && row.Value.Version == version;
            int n = await DeleteStagedAsync(c, tx, id, wholeKey ? null : version, cancellationToken).ConfigureAwait(false);
            if (!wholeKey && version <= row.Value.Version)
            {
                return n > 0; // never the current version, never history: only a replacement staged for it
            }

            foreach (string sql in wholeKey
                ? new[] { "DELETE FROM key_secrets WHERE key_id=@id", "DELETE FROM key_versions WHERE key_id=@id", "DELETE FROM keys WHERE id=@id" }
                : ["DELETE FROM key_secrets WHERE key_id=@id AND version=@v", "DELETE FROM key_versions WHERE key_id=@id AND version=@v"])
            {
                using DbCommand cmd = SqlEngine.Command(c, tx, sql);
                cmd.Add("@id", id);
                if (!wholeKey)
                {
                    cmd.Add("@v", version);
                }

                n += await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            if (n > 0)
            {
                await store.Engine.RewriteAfterEraseAsync(c, tx, "key_secrets", cancellationToken).ConfigureAwait(false);
            }

            return n > 0;
        }, cancellationToken).ConfigureAwait(false);
        if (removed)
        {
            await store.Engine.ScrubAsync(cancellationToken).ConfigureAwait(false);
        }

        return removed;
    }

    /// <summary>
    /// The server's side of a rotation commit, inside the caller's transaction: the key row moves to the new version
    /// (public key, threshold, participants) and the new version is inserted with its material. Conflict if the key
    /// is not at the run's old version.
    /// </summary>
    internal async Task<bool> CommitRotationInTransactionAsync(DbConnection c, DbTransaction tx, KeyRotation rotation, SecretBuffer? material, CancellationToken ct)
    {
        Validate.PublicKey(rotation.PublicKey, "rotation.PublicKey");
        ValidateShape(rotation.Threshold, rotation.Participants);
        string? holders = HoldersText(rotation.Holders, rotation.Participants, "rotation.Holders");
        (int Version, string State)? row = await VersionAndStateAsync(c, tx, rotation.KeyId, ct).ConfigureAwait(false)
            ?? throw StorageErrors.NotFound("key", rotation.KeyId);
        // The run's own commit is idempotent at the run level (SqlRotationLog.CommitKeyAsync); here a key that is not
        // at the run's old version was moved by something else, and the run must not overwrite it.
        if (row.Value.Version != rotation.FromVersion)
        {
            throw StorageErrors.Conflict("key", rotation.KeyId, $"is at version {row.Value.Version}, not {rotation.FromVersion}");
        }

        var kek = material is null ? null : store.Kek;
        (string KekId, byte[] Wrapped, byte[] Cipher)? sealedMaterial = kek is null
            ? null
            : Sealed(kek, SecretSealer.Seal(kek, material!.ReadOnlySpan, SecretSealer.KeyMaterialContext(rotation.KeyId, rotation.ToVersion)));
        long now = store.NowMs();
        await KeyRecordMac.ReadVerifiedAsync(store, c, tx, rotation.KeyId, ct).ConfigureAwait(false);
        using (DbCommand cmd = SqlEngine.Command(c, tx,
            "UPDATE keys SET version=@to, public_key=@pk, threshold=@t, participants=@n, holders=@holders, updated_at=@now WHERE id=@id AND version=@from"))
        {
            cmd.Add("@holders", holders);
            cmd.Add("@to", rotation.ToVersion);
            cmd.Add("@pk", rotation.PublicKey);
            cmd.Add("@t", rotation.Threshold);
            cmd.Add("@n", rotation.Participants);
            cmd.Add("@now", now);
            cmd.Add("@id", rotation.KeyId);
            cmd.Add("@from", rotation.FromVersion);
            await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }

        await InsertVersionAsync(c, tx, rotation.KeyId, rotation.ToVersion, rotation.PublicKey, sealedMaterial, now, ct).ConfigureAwait(false);
        await KeyRecordMac.ResealAsync(store, c, tx, rotation.KeyId, ct).ConfigureAwait(false);
        return true;
    }

    private static void ValidateShape(int threshold, int participants)
    {
        if (threshold < 1 || participants < threshold || participants > 1000)
        {
            throw StorageErrors.Invalid("rotation.Threshold", "need 1 <= threshold <= participants <= 1000");
        }
    }

    private static async Task<int?> CurrentVersionAsync(DbConnection c, DbTransaction tx, string id, CancellationToken ct)
        => (await VersionAndStateAsync(c, tx, id, ct).ConfigureAwait(false))?.Version;

    private static async Task<(int Version, string State)?> VersionAndStateAsync(DbConnection c, DbTransaction tx, string id, CancellationToken ct)
    {
        using DbCommand cmd = SqlEngine.Command(c, tx, "SELECT version, state FROM keys WHERE id=@id");
        cmd.Add("@id", id);
        using DbDataReader r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        return await r.ReadAsync(ct).ConfigureAwait(false) ? (r.GetInt32(0), r.GetString(1)) : null;
    }

    private static async Task<bool> HasMaterialAsync(DbConnection c, DbTransaction tx, string id, int version, CancellationToken ct)
    {
        using DbCommand cmd = SqlEngine.Command(c, tx, "SELECT COUNT(*) FROM key_secrets WHERE key_id=@id AND version=@v");
        cmd.Add("@id", id);
        cmd.Add("@v", version);
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture) > 0;
    }

    public async Task<KeyRecord> RecordHoldersAsync(string id, int version, IReadOnlyList<uint> holders, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(id);
        ArgumentNullException.ThrowIfNull(holders);
        string text = HoldersText(holders, holders.Count, nameof(holders))!;
        await store.WriteAsync(async (c, tx) =>
        {
            await KeyRecordMac.ReadVerifiedAsync(store, c, tx, id, cancellationToken).ConfigureAwait(false);
            using (DbCommand cmd = SqlEngine.Command(c, tx,
                "UPDATE keys SET holders=@h, updated_at=@now WHERE id=@id AND version=@v AND participants=@n AND holders IS NULL"))
            {
                cmd.Add("@h", text);
                cmd.Add("@now", store.NowMs());
                cmd.Add("@id", id);
                cmd.Add("@v", version);
                cmd.Add("@n", holders.Count);
                if (await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) != 1)
                {
                    return false; // moved on, already recorded, or another committee size: the row stays as it is
                }
            }

            await KeyRecordMac.ResealAsync(store, c, tx, id, cancellationToken).ConfigureAwait(false);
            return true;
        }, cancellationToken).ConfigureAwait(false);
        return (await GetAsync(id, cancellationToken).ConfigureAwait(false))!;
    }

    public Task<KeyRecord> SetStateAsync(string id, KeyState state, CancellationToken cancellationToken = default)
    {
        if (!Enum.IsDefined(state))
        {
            throw StorageErrors.Invalid(nameof(state), "unknown key state");
        }

        return UpdateAsync(id, "state=@v", state.ToString(), cancellationToken);
    }

    public Task<KeyRecord> SetLabelsAsync(string id, IReadOnlyDictionary<string, string> labels, CancellationToken cancellationToken = default) =>
        UpdateAsync(id, "labels=@v", Validate.Labels(labels), cancellationToken);

    private async Task<KeyRecord> UpdateAsync(string id, string set, object value, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(id);
        await store.WriteAsync(async (c, tx) =>
        {
            await KeyRecordMac.ReadVerifiedAsync(store, c, tx, id, ct).ConfigureAwait(false);
            using (DbCommand cmd = SqlEngine.Command(c, tx, $"UPDATE keys SET {set}, updated_at=@now WHERE id=@id"))
            {
                cmd.Add("@v", value);
                cmd.Add("@now", store.NowMs());
                cmd.Add("@id", id);
                if (await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false) != 1)
                {
                    throw StorageErrors.NotFound("key", id);
                }
            }

            await KeyRecordMac.ResealAsync(store, c, tx, id, ct).ConfigureAwait(false);
            return true;
        }, ct).ConfigureAwait(false);
        return (await GetAsync(id, ct).ConfigureAwait(false))!;
    }

    public async Task<SecretBuffer> OpenMaterialAsync(string id, int? version = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(id);
        _ = store.Kek; // Locked before any I/O when the store has no KEK
        var row = await store.ReadAsync(async c =>
        {
            using DbCommand cmd = SqlEngine.Command(c, null, version is null
                ? "SELECT s.version, s.kek_id, s.wrapped_key, s.ciphertext FROM key_secrets s JOIN keys k ON k.id = s.key_id AND k.version = s.version WHERE s.key_id=@id"
                : "SELECT s.version, s.kek_id, s.wrapped_key, s.ciphertext FROM key_secrets s WHERE s.key_id=@id AND s.version=@v");
            cmd.Add("@id", id);
            if (version is not null)
            {
                cmd.Add("@v", version.Value);
            }

            using DbDataReader r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            return await r.ReadAsync(cancellationToken).ConfigureAwait(false)
                ? new { Version = r.GetInt32(0), KekId = r.GetString(1), Wrapped = (byte[])r.GetValue(2), Cipher = (byte[])r.GetValue(3) }
                : null;
        }, cancellationToken).ConfigureAwait(false);
        if (row is null)
        {
            throw StorageErrors.NotFound("key material", id);
        }

        IKeyEncryptionKey kek = store.KekFor(row.KekId);

        // Associated data names (key id, version): a row copied from another key or version does not open.
        return SecretSealer.Open(kek, row.Wrapped, row.Cipher, SecretSealer.KeyMaterialContext(id, row.Version), $"key material '{id}' v{row.Version}");
    }

    private static (string, byte[], byte[]) Sealed(IKeyEncryptionKey kek, (byte[] Wrapped, byte[] Cipher) s) => (kek.Id, s.Wrapped, s.Cipher);

    private static async Task<bool> ExistsAsync(DbConnection c, DbTransaction tx, string id, CancellationToken ct)
    {
        using DbCommand cmd = SqlEngine.Command(c, tx, "SELECT COUNT(*) FROM keys WHERE id=@id");
        cmd.Add("@id", id);
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture) > 0;
    }

    /// <summary>
    /// Reads a row selected as <c>KeyColumns, mac</c>. An unlocked store checks the MAC (<see cref="KeyRecordMac"/>) and
    /// refuses a row that does not match; a store opened without a KEK cannot, and returns the row unchecked.
    /// </summary>
    private KeyRecord ReadKey(DbDataReader r, SecretBuffer? macKey)
    {
        if (store.IsUnlocked && (macKey is null || !KeyRecordMac.Matches(macKey, KeyRecordMac.EncodeRow(r, 0), r.GetBytesOrNull(KeyRecordMac.ColumnCount + 2))))
        {
            throw StorageErrors.KeyIntegrity(r.GetString(0));
        }

        return ReadKey(r);
    }

    private static KeyRecord ReadKey(DbDataReader r) => new(
        r.GetString(0),
        r.GetString(1),
        r.GetString(2),
        (byte[])r.GetValue(3),
        r.GetInt32(4),
        r.GetInt32(5),
        r.GetInt32(6),
        Enum.Parse<KeyState>(r.GetString(7)),
        JsonSerializer.Deserialize<Dictionary<string, string>>(r.GetString(8)) ?? [],
        SqlStore.FromMs(r.GetInt64(10)),
        SqlStore.FromMs(r.GetInt64(11)))
    {
        Holders = ParseHolders(r.GetStringOrNull(9), r.GetString(0)),
    };

    /// <summary>
    /// The stored form of a key's holders: ascending distinct node ids in decimal, separated by commas; null for none.
    /// Refused unless there are exactly <paramref name="participants"/> ids, each at least 1.
    /// </summary>
    private static string? HoldersText(IReadOnlyList<uint>? holders, int participants, string parameter)
    {
        if (holders is null)
        {
            return null;
        }

        uint[] sorted = [.. holders.Distinct().Order()];
        if (sorted.Length != holders.Count || sorted.Length != participants || sorted[0] == 0)
        {
            throw StorageErrors.Invalid(parameter, "must name as many distinct signer nodes (ids from 1) as the key has participants");
        }

        return string.Join(',', sorted.Select(n => n.ToString(System.Globalization.CultureInfo.InvariantCulture)));
    }

    /// <summary>Reads <see cref="HoldersText"/>'s form back (the row's MAC was checked, so a malformed value means a corrupted store).</summary>
    private static uint[]? ParseHolders(string? text, string keyId)
    {
        if (text is null)
        {
            return null;
        }

        string[] parts = text.Split(',');
        var ids = new uint[parts.Length];
        for (int i = 0; i < parts.Length; i++)
        {
            if (!uint.TryParse(parts[i], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out ids[i]))
            {
                throw StorageErrors.Corrupted($"the holders of key '{keyId}'");
            }
        }

        return ids;
    }
}
