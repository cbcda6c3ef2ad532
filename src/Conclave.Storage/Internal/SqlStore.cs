using System.Data.Common;
using Conclave.Crypto.Memory;
using Conclave.Storage.Audit;
using Conclave.Storage.Backup;
using Conclave.Storage.Encryption;
using Conclave.Storage.Keys;
using Conclave.Storage.Nonces;
using Conclave.Storage.Requests;

namespace Conclave.Storage.Internal;

/// <summary>The one store implementation over <see cref="SqlEngine"/>; sub-stores share its helpers.</summary>
internal sealed partial class SqlStore : IConclaveStore
{
    private IKeyEncryptionKey? _kek;
    private readonly List<IKeyEncryptionKey> _retiredKeks = [];
    private readonly Lock _macKeyLock = new();
    private SecretBuffer? _keyMacKey;
    private readonly SqlAuditLog _audit;
    private int _disposed;
    private int _closing;

    private SqlStore(SqlEngine engine, StoreOptions options, int schemaVersion, string storeId)
    {
        Engine = engine;
        Options = options;
        SchemaVersion = schemaVersion;
        StoreId = storeId;
        Keys = new SqlKeyStore(this);
        Nonces = new SqlNonceLedger(this);
        Requests = new SqlRequestStore(this);
        Rotations = new SqlRotationLog(this);
        NodeTrust = new SqlNodeTrustStore(this);
        RotationSchedules = new SqlRotationSchedules(this);
        PolicyCounters = new SqlPolicyCounters(this);
        Principals = new SqlPrincipalStore(this);
        Risk = new SqlRiskStore(this);
        Policies = new SqlPolicyStore(this);
        VenueProfiles = new SqlVenueProfileStore(this);
        EthereumNonces = new SqlEthereumNonces(this);
        Safes = new SqlSafeStore(this);
        _audit = new SqlAuditLog(this);
        NonceConsumer = new NonceConsumer(this);
    }

    internal SqlEngine Engine { get; }

    internal StoreOptions Options { get; }

    internal TimeProvider Time => Options.TimeProvider;

    StoreEngine IConclaveStore.Engine => Engine.Kind;

    public int SchemaVersion { get; }

    public string StoreId { get; private set; }

    internal void SetStoreIdAfterImport(string storeId) => StoreId = storeId;

    public KekDescriptor? ActiveKek => _kek is null ? null : new KekDescriptor(_kek.Id, _kek.Kind, _kek.Descriptor.ToArray());

    public IKeyStore Keys { get; }

    public INonceLedger Nonces { get; }

    public IRequestStore Requests { get; }

    public Rotation.IRotationLog Rotations { get; }

    public Nodes.INodeTrustStore NodeTrust { get; }

    public Rotation.IRotationSchedules RotationSchedules { get; }
    public Policy.IPolicyCounterStore PolicyCounters { get; }

    public Principals.IPrincipalStore Principals { get; }
    public Risk.IRiskStore Risk { get; }
    public Policy.IPolicyStore Policies { get; }

    public Policy.IVenueProfileStore VenueProfiles { get; }

    public Ethereum.IEthereumNonceStore EthereumNonces { get; }

    public Ethereum.ISafeStore Safes { get; }

    public IAuditLog Audit => _audit;

    internal SqlAuditLog AuditLog => _audit;

    internal NonceConsumer NonceConsumer { get; }

    internal IKeyEncryptionKey Kek => _kek ?? throw StorageErrors.Locked();

    internal bool IsUnlocked => _kek is not null;

    /// <summary>
    /// The KEK with this id: the active one, or one this instance rotated away from (kept until dispose, so an operation
    /// that sealed just before a rotation still opens its rows). Any other id is <see cref="StorageErrorKind.WrongKeyEncryptionKey"/>.
    /// </summary>
    internal IKeyEncryptionKey KekFor(string kekId)
    {
        IKeyEncryptionKey active = Kek;
        if (active.Id == kekId)
        {
            return active;
        }

        lock (_retiredKeks)
        {
            return _retiredKeks.FirstOrDefault(k => k.Id == kekId) ?? throw StorageErrors.UnknownKek(kekId);
        }
    }

    public static async Task<IConclaveStore> OpenAsync(SqlEngine engine, StoreOptions options, CancellationToken ct)
    {
        try
        {
            int version;
            if (options.ReadOnly)
            {
                DbConnection c = await engine.OpenAsync(ct).ConfigureAwait(false);
                await using (c.ConfigureAwait(false))
                {
                    long found = await Migrations.ReadVersionAsync(engine, c, ct).ConfigureAwait(false);
                    if (found > Migrations.Latest)
                    {
                        throw StorageErrors.SchemaTooNew(found, Migrations.Latest);
                    }

                    if (found == 0)
                    {
                        throw StorageErrors.NotFound("store", engine.Description);
                    }

                    version = (int)found;
                }
            }
            else
            {
                version = await Migrations.RunAsync(engine, options.TimeProvider, ct).ConfigureAwait(false);
            }

            string storeId = await ReadMetaAsync(engine, "store_id", ct).ConfigureAwait(false) ?? "";
            var store = new SqlStore(engine, options, version, storeId);
            try
            {
                if (options.Kek is not null)
                {
                    await store.UnlockAsync(options.Kek, ct).ConfigureAwait(false);
                    if (!options.ReadOnly)
                    {
                        await store.BackfillKeyMacsAsync(ct).ConfigureAwait(false);
                        await ((SqlNodeTrustStore)store.NodeTrust).BackfillMacsAsync(ct).ConfigureAwait(false);
                    }
                }

                if (!options.ReadOnly)
                {
                    await store._audit.InitializeHeadAsync(ct).ConfigureAwait(false);
                    store._audit.Start();
                    store.NonceConsumer.Start();
                }

                return store;
            }
            catch
            {
                await store.DisposeAsync().ConfigureAwait(false);
                throw;
            }
        }
        catch (DbException e)
        {
            await engine.DisposeAsync().ConfigureAwait(false);
            throw StorageErrors.Io($"open of {engine.Description}", e);
        }
        catch
        {
            await engine.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private static async Task<string?> ReadMetaAsync(SqlEngine engine, string name, CancellationToken ct)
    {
        DbConnection c = await engine.OpenAsync(ct).ConfigureAwait(false);
        await using (c.ConfigureAwait(false))
        {
            using DbCommand cmd = SqlEngine.Command(c, null, "SELECT value FROM store_meta WHERE name=@n");
            cmd.Add("@n", name);
            return await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false) as string;
        }
    }

    private async Task UnlockAsync(IKeyEncryptionKeySource source, CancellationToken ct)
    {
        KekRow? active = await ReadAsync(async c =>
        {
            using DbCommand cmd = SqlEngine.Command(c, null, "SELECT id, kind, descriptor, check_envelope FROM keks WHERE state='active'");
            using DbDataReader r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            return await r.ReadAsync(ct).ConfigureAwait(false)
                ? new KekRow(r.GetString(0), r.GetString(1), (byte[])r.GetValue(2), (byte[])r.GetValue(3))
                : null;
        }, ct).ConfigureAwait(false);

        if (active is not null)
        {
            IKeyEncryptionKey kek = source.Open(new KekDescriptor(active.Id, active.Kind, active.Descriptor));
            if (kek.Id != active.Id || !SecretSealer.VerifyCheck(kek, active.Check, StoreId))
            {
                kek.Dispose();
                throw StorageErrors.WrongKek(active.Id);
            }

            _kek = kek;
            return;
        }

        if (Options.ReadOnly)
        {
            throw StorageErrors.Locked();
        }

        IKeyEncryptionKey created = source.Open(null);
        try
        {
            await WriteAsync(async (c, tx) =>
            {
                await InsertKekAsync(c, tx, created, ct).ConfigureAwait(false);
                return true;
            }, ct).ConfigureAwait(false);
        }
        catch
        {
            created.Dispose();
            throw;
        }

        _kek = created;
    }

    /// <summary>
    /// The key-record MAC key (<see cref="KeyRecordMac"/>), unsealed once and cached; null while the store has none
    /// (no key was ever created). Requires the KEK. The caller disposes the returned copy.
    /// </summary>
    internal async Task<SecretBuffer?> KeyMacKeyAsync(DbConnection c, DbTransaction? tx, CancellationToken ct)
    {
        _ = Kek; // Locked before any I/O
        lock (_macKeyLock)
        {
            if (_keyMacKey is not null)
            {
                return SecretBuffer.CopyFrom(_keyMacKey.ReadOnlySpan);
            }
        }

        using DbCommand cmd = SqlEngine.Command(c, tx, "SELECT kek_id, wrapped_key, ciphertext FROM store_secrets WHERE name=@n");
        cmd.Add("@n", KeyRecordMac.SecretName);
        string kekId;
        byte[] wrapped, cipher;
        using (DbDataReader r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false))
        {
            if (!await r.ReadAsync(ct).ConfigureAwait(false))
            {
                return null;
            }

            (kekId, wrapped, cipher) = (r.GetString(0), (byte[])r.GetValue(1), (byte[])r.GetValue(2));
        }

        SecretBuffer opened = SecretSealer.Open(KekFor(kekId), wrapped, cipher, KeyRecordMac.Context(StoreId), "the key-record MAC key");
        lock (_macKeyLock)
        {
            if (_keyMacKey is null)
            {
                _keyMacKey = opened;
                return SecretBuffer.CopyFrom(opened.ReadOnlySpan);
            }
        }

        opened.Dispose();
        lock (_macKeyLock)
        {
            return SecretBuffer.CopyFrom(_keyMacKey!.ReadOnlySpan);
        }
    }

    /// <summary>Creates the key-record MAC key if the store has none yet, in its own committed transaction.</summary>
    internal async Task EnsureKeyMacKeyAsync(CancellationToken ct)
    {
        IKeyEncryptionKey kek = Kek;
        lock (_macKeyLock)
        {
            if (_keyMacKey is not null)
            {
                return;
            }
        }

        (byte[] wrapped, byte[] cipher) = KeyRecordMac.NewSealedKey(kek, StoreId);
        await WriteAsync(async (c, tx) =>
        {
            // Another replica may have created it first: ON CONFLICT keeps theirs.
            using DbCommand cmd = SqlEngine.Command(c, tx,
                "INSERT INTO store_secrets (name, kek_id, wrapped_key, ciphertext, created_at) VALUES (@n, @k, @w, @c, @t) ON CONFLICT DO NOTHING");
            cmd.Add("@n", KeyRecordMac.SecretName);
            cmd.Add("@k", kek.Id);
            cmd.Add("@w", wrapped);
            cmd.Add("@c", cipher);
            cmd.Add("@t", NowMs());
            await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            return true;
        }, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// After migration 2, rows written by schema 1 have no MAC: the first unlocked, writable open computes them (trusting
    /// the rows as they are at that moment) and removes the one-time marker. From then on a row without a MAC is refused.
    /// </summary>
    private async Task BackfillKeyMacsAsync(CancellationToken ct)
    {
        if (await ReadMetaAsync(Engine, "key_mac_backfill", ct).ConfigureAwait(false) is null)
        {
            return;
        }

        await EnsureKeyMacKeyAsync(ct).ConfigureAwait(false);
        await WriteAsync(async (c, tx) =>
        {
            var ids = new List<string>();
            using (DbCommand cmd = SqlEngine.Command(c, tx, "SELECT id FROM keys WHERE mac IS NULL ORDER BY id"))
            using (DbDataReader r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false))
            {
                while (await r.ReadAsync(ct).ConfigureAwait(false))
                {
                    ids.Add(r.GetString(0));
                }
            }

            foreach (string id in ids)
            {
                await KeyRecordMac.ResealAsync(this, c, tx, id, ct).ConfigureAwait(false);
            }

            using DbCommand done = SqlEngine.Command(c, tx, "DELETE FROM store_meta WHERE name='key_mac_backfill'");
            await done.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            return true;
        }, ct).ConfigureAwait(false);
    }

    internal static Task<string?> ReadMetaValueAsync(SqlEngine engine, string name, CancellationToken ct) => ReadMetaAsync(engine, name, ct);

    private async Task InsertKekAsync(DbConnection c, DbTransaction tx, IKeyEncryptionKey kek, CancellationToken ct)
    {
        using DbCommand cmd = SqlEngine.Command(c, tx,
            "INSERT INTO keks (id, kind, descriptor, check_envelope, state, created_at) VALUES (@id, @kind, @d, @chk, 'active', @t)");
        cmd.Add("@id", kek.Id);
        cmd.Add("@kind", kek.Kind);
        cmd.Add("@d", kek.Descriptor.ToArray());
        cmd.Add("@chk", SecretSealer.MakeCheck(kek, StoreId));
        cmd.Add("@t", NowMs());
        try
        {
            await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }
        catch (DbException e) when (Engine.IsUniqueViolation(e))
        {
            throw StorageErrors.Duplicate("key-encryption key", kek.Id);
        }
    }

    public async Task<KekDescriptor> RotateKekAsync(IKeyEncryptionKeySource newKek, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(newKek);
        IKeyEncryptionKey old = Kek;
        IKeyEncryptionKey next = newKek.Open(null);
        try
        {
            await WriteAsync(async (c, tx) =>
            {
                var secretUpdates = new List<(string KeyId, int Version, byte[] Wrapped)>();
                using (DbCommand cmd = SqlEngine.Command(c, tx, "SELECT key_id, version, kek_id, wrapped_key FROM key_secrets"))
                using (DbDataReader r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
                {
                    while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        string keyId = r.GetString(0);
                        int version = r.GetInt32(1);
                        byte[] wrapped = SecretSealer.Rewrap(KekFor(r.GetString(2)), next, (byte[])r.GetValue(3), SecretSealer.KeyMaterialContext(keyId, version), $"key material '{keyId}' v{version}");
                        secretUpdates.Add((keyId, version, wrapped));
                    }
                }

                // Replacements staged by an unfinished run (IKeyStore.StageReplacementAsync) are rewrapped like the material they replace.
                var stagedUpdates = new List<(string KeyId, int Version, byte[] Wrapped)>();
                using (DbCommand cmd = SqlEngine.Command(c, tx, "SELECT key_id, version, kek_id, wrapped_key FROM key_secrets_staged"))
                using (DbDataReader r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
                {
                    while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        string keyId = r.GetString(0);
                        int version = r.GetInt32(1);
                        byte[] wrapped = SecretSealer.Rewrap(KekFor(r.GetString(2)), next, (byte[])r.GetValue(3), SecretSealer.KeyMaterialContext(keyId, version), $"staged key material '{keyId}' v{version}");
                        stagedUpdates.Add((keyId, version, wrapped));
                    }
                }

                var metaUpdates = new List<(string Name, byte[] Wrapped)>();
                using (DbCommand cmd = SqlEngine.Command(c, tx, "SELECT name, kek_id, wrapped_key FROM store_secrets"))
                using (DbDataReader r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
                {
                    while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        string name = r.GetString(0);
                        byte[] wrapped = SecretSealer.Rewrap(KekFor(r.GetString(1)), next, (byte[])r.GetValue(2), SecretSealer.Context("store-secret", name, StoreId), "store secret " + name);
                        metaUpdates.Add((name, wrapped));
                    }
                }

                var nonceUpdates = new List<(byte[] Id, byte[] Wrapped)>();
                using (DbCommand cmd = SqlEngine.Command(c, tx, "SELECT id, key_id, kind, kek_id, wrapped_key FROM nonces WHERE wrapped_key IS NOT NULL"))
                using (DbDataReader r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
                {
                    while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        byte[] id = (byte[])r.GetValue(0);
                        byte[] wrapped = SecretSealer.Rewrap(KekFor(r.GetString(3)), next, (byte[])r.GetValue(4), SecretSealer.NonceContext(id, r.GetString(1), r.GetString(2)), "nonce material");
                        nonceUpdates.Add((id, wrapped));
                    }
                }

                // The new KEK row goes in before the rows that reference it.
                using (DbCommand retire = SqlEngine.Command(c, tx, "UPDATE keks SET state='retired' WHERE id=@id"))
                {
                    retire.Add("@id", old.Id);
                    await retire.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }

                await InsertKekAsync(c, tx, next, cancellationToken).ConfigureAwait(false);
                using (DbCommand upd = SqlEngine.Command(c, tx, "UPDATE key_secrets SET kek_id=@k, wrapped_key=@w WHERE key_id=@id AND version=@v"))
                {
                    DbParameter pk = upd.Add("@k", next.Id), pw = upd.Add("@w", null), pid = upd.Add("@id", null), pv = upd.Add("@v", null);
                    foreach (var (keyId, version, wrapped) in secretUpdates)
                    {
                        pw.Value = wrapped;
                        pid.Value = keyId;
                        pv.Value = version;
                        await upd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                    }
                }

                using (DbCommand upd = SqlEngine.Command(c, tx, "UPDATE key_secrets_staged SET kek_id=@k, wrapped_key=@w WHERE key_id=@id AND version=@v"))
                {
                    DbParameter pk = upd.Add("@k", next.Id), pw = upd.Add("@w", null), pid = upd.Add("@id", null), pv = upd.Add("@v", null);
                    foreach (var (keyId, version, wrapped) in stagedUpdates)
                    {
                        pw.Value = wrapped;
                        pid.Value = keyId;
                        pv.Value = version;
                        await upd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                    }
                }

                using (DbCommand upd = SqlEngine.Command(c, tx, "UPDATE store_secrets SET kek_id=@k, wrapped_key=@w WHERE name=@n"))
                {
                    upd.Add("@k", next.Id);
                    DbParameter pw = upd.Add("@w", null), pn = upd.Add("@n", null);
                    foreach (var (name, wrapped) in metaUpdates)
                    {
                        pw.Value = wrapped;
                        pn.Value = name;
                        await upd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                    }
                }

                using (DbCommand upd = SqlEngine.Command(c, tx, "UPDATE nonces SET kek_id=@k, wrapped_key=@w WHERE id=@id"))
                {
                    DbParameter pk = upd.Add("@k", next.Id), pw = upd.Add("@w", null), pid = upd.Add("@id", null);
                    foreach (var (id, wrapped) in nonceUpdates)
                    {
                        pw.Value = wrapped;
                        pid.Value = id;
                        await upd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                    }
                }

                return true;
            }, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            next.Dispose();
            throw;
        }

        // The old KEK stays in memory (not in the store) until dispose: an operation that sealed under it while the
        // rotation ran still writes rows it can open. Rotate while other processes are stopped (docs/STORAGE.md).
        lock (_retiredKeks)
        {
            _retiredKeks.Add(old);
        }

        _kek = next;
        return ActiveKek!;
    }

    public Task ExportAsync(Stream destination, IKeyEncryptionKeySource backupKek, CancellationToken cancellationToken = default) =>
        StoreBackup.ExportAsync(this, destination, backupKek, cancellationToken);

    public Task ImportAsync(Stream source, IKeyEncryptionKeySource backupKek, CancellationToken cancellationToken = default) =>
        StoreBackup.ImportAsync(this, source, backupKek, cancellationToken);

    internal long NowMs() => Time.GetUtcNow().ToUnixTimeMilliseconds();

    internal static DateTimeOffset FromMs(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms);

    /// <summary>
    /// Runs <paramref name="work"/> in a write transaction and commits it (durably) before returning; on
    /// <paramref name="on"/>'s long-lived connection when given (dropped if the work or commit fails), else on a pooled one.
    /// </summary>
    internal async Task<T> WriteAsync<T>(Func<DbConnection, DbTransaction, Task<T>> work, CancellationToken ct, WriterConnection? on = null)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (Options.ReadOnly)
        {
            throw StorageErrors.Invalid("store", "opened read-only");
        }

        SemaphoreSlim? gate = Engine.WriteGate;
        if (gate is not null)
        {
            await gate.WaitAsync(ct).ConfigureAwait(false);
        }

        bool failed = true;
        try
        {
            if (on is not null)
            {
                T result = await TransactAsync(await on.OpenAsync(Engine, ct).ConfigureAwait(false), work, ct).ConfigureAwait(false);
                failed = false;
                return result;
            }

            DbConnection c = await Engine.OpenAsync(ct).ConfigureAwait(false);
            await using (c.ConfigureAwait(false))
            {
                return await TransactAsync(c, work, ct).ConfigureAwait(false);
            }
        }
        catch (DbException e)
        {
            throw StorageErrors.Io("write", e);
        }
        finally
        {
            if (failed && on is not null)
            {
                await on.DropAsync().ConfigureAwait(false);
            }

            gate?.Release();
        }
    }

    private async Task<T> TransactAsync<T>(DbConnection c, Func<DbConnection, DbTransaction, Task<T>> work, CancellationToken ct)
    {
        DbTransaction tx = await Engine.BeginWriteAsync(c, ct).ConfigureAwait(false);
        await using (tx.ConfigureAwait(false))
        {
            T result = await work(c, tx).ConfigureAwait(false);
            await tx.CommitAsync(ct).ConfigureAwait(false);
            return result;
        }
    }

    internal async Task<T> ReadAsync<T>(Func<DbConnection, Task<T>> work, CancellationToken ct)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        try
        {
            DbConnection c = await Engine.OpenAsync(ct).ConfigureAwait(false);
            await using (c.ConfigureAwait(false))
            {
                return await work(c).ConfigureAwait(false);
            }
        }
        catch (DbException e)
        {
            throw StorageErrors.Io("read", e);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _closing, 1) != 0)
        {
            return;
        }

        // Pending audit appends are committed (or failed) before the database goes away.
        await _audit.StopAsync().ConfigureAwait(false);
        await NonceConsumer.StopAsync().ConfigureAwait(false);
        Volatile.Write(ref _disposed, 1);
        _kek?.Dispose();
        lock (_macKeyLock)
        {
            _keyMacKey?.Dispose();
            _keyMacKey = null;
        }

        lock (_retiredKeks)
        {
            _retiredKeks.ForEach(k => k.Dispose());
            _retiredKeks.Clear();
        }

        await Engine.DisposeAsync().ConfigureAwait(false);
    }

    public override string ToString() => $"ConclaveStore({Engine.Description})";

    private sealed record KekRow(string Id, string Kind, byte[] Descriptor, byte[] Check);
}
