using System.Data.Common;
using System.Globalization;

namespace Conclave.Storage.Internal;

/// <summary>
/// The versioned schema, shared by both engines (<c>{blob}</c> becomes BLOB or BYTEA). Migrations run at start in one
/// transaction each; a store whose recorded version is newer than <see cref="Latest"/> is refused before anything
/// is written to it.
/// </summary>
internal static class Migrations
{
    private sealed record Migration(int Version, string Name, string[] Statements);

    private static readonly Migration[] s_all =
    [
        new(1, "initial schema",
        [
            "CREATE TABLE store_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
            "CREATE TABLE keks (id TEXT PRIMARY KEY, kind TEXT NOT NULL, descriptor {blob} NOT NULL, check_envelope {blob} NOT NULL, state TEXT NOT NULL, created_at BIGINT NOT NULL)",
            "CREATE TABLE keys (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, scheme TEXT NOT NULL, public_key {blob} NOT NULL, threshold INTEGER NOT NULL, participants INTEGER NOT NULL, version INTEGER NOT NULL, state TEXT NOT NULL, labels TEXT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)",
            "CREATE TABLE key_versions (key_id TEXT NOT NULL REFERENCES keys(id), version INTEGER NOT NULL, public_key {blob} NOT NULL, created_at BIGINT NOT NULL, PRIMARY KEY (key_id, version))",
            "CREATE TABLE key_secrets (key_id TEXT NOT NULL, version INTEGER NOT NULL, kek_id TEXT NOT NULL REFERENCES keks(id), wrapped_key {blob} NOT NULL, ciphertext {blob} NOT NULL, created_at BIGINT NOT NULL, PRIMARY KEY (key_id, version), FOREIGN KEY (key_id, version) REFERENCES key_versions(key_id, version))",
            "CREATE TABLE nonces (id {blob} PRIMARY KEY, key_id TEXT NOT NULL, kind TEXT NOT NULL, issued_at BIGINT NOT NULL, consumed_at BIGINT, kek_id TEXT, wrapped_key {blob}, ciphertext {blob})",
            "CREATE INDEX nonces_available ON nonces (key_id, kind, consumed_at)",
            "CREATE TABLE requests (id TEXT PRIMARY KEY, key_id TEXT, operation TEXT NOT NULL, requester TEXT NOT NULL, request_hash {blob} NOT NULL, payload {blob} NOT NULL, state TEXT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, expires_at BIGINT)",
            "CREATE INDEX requests_state ON requests (state, created_at)",
            "CREATE TABLE approvals (request_id TEXT NOT NULL REFERENCES requests(id), approver TEXT NOT NULL, decision TEXT NOT NULL, signature {blob}, created_at BIGINT NOT NULL, PRIMARY KEY (request_id, approver))",
            "CREATE TABLE audit_entries (seq BIGINT PRIMARY KEY, time BIGINT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, key_id TEXT, request_hash {blob}, decision TEXT NOT NULL, result TEXT NOT NULL, prev_hash {blob} NOT NULL, hash {blob} NOT NULL)",
            "CREATE TABLE audit_head (id INTEGER PRIMARY KEY, seq BIGINT NOT NULL, hash {blob} NOT NULL)",
            "CREATE TABLE audit_checkpoints (seq BIGINT PRIMARY KEY, hash {blob} NOT NULL, scheme TEXT NOT NULL, public_key {blob} NOT NULL, signature {blob} NOT NULL, time BIGINT NOT NULL)",
        ]),

        // Issue 14 items 6 and 7. keys.mac: HMAC-SHA256 of the row's canonical encoding (KeyRecordMac) under a MAC key
        // sealed in store_secrets; existing rows get theirs at the first unlocked open (the 'key_mac_backfill' marker).
        // audit_head: the head is signed with every batch, over (seq, hash, time, checkpoint interval, checkpoints_from);
        // a migrated log is signed from its current head at the first open with a checkpoint signer ('audit_head_init').
        new(2, "integrity: key record MACs, signed audit head",
        [
            "ALTER TABLE keys ADD COLUMN mac {blob}",
            "CREATE TABLE store_secrets (name TEXT PRIMARY KEY, kek_id TEXT NOT NULL REFERENCES keks(id), wrapped_key {blob} NOT NULL, ciphertext {blob} NOT NULL, created_at BIGINT NOT NULL)",
            "ALTER TABLE audit_head ADD COLUMN checkpoint_interval BIGINT",
            "ALTER TABLE audit_head ADD COLUMN checkpoints_from BIGINT",
            "ALTER TABLE audit_head ADD COLUMN signed_time BIGINT",
            "ALTER TABLE audit_head ADD COLUMN scheme TEXT",
            "ALTER TABLE audit_head ADD COLUMN public_key {blob}",
            "ALTER TABLE audit_head ADD COLUMN signature {blob}",
            "INSERT INTO store_meta (name, value) VALUES ('key_mac_backfill', 'pending')",
            "INSERT INTO store_meta (name, value) VALUES ('audit_head_init', 'pending')",
        ]),
        new(3, "rotation runs",
        [
            "CREATE TABLE rotation_runs (run_id TEXT PRIMARY KEY, key_id TEXT NOT NULL, kind TEXT NOT NULL, from_version INTEGER NOT NULL, to_version INTEGER NOT NULL, state TEXT NOT NULL, owner TEXT NOT NULL, lease_until BIGINT NOT NULL, parameters {blob} NOT NULL, result {blob}, error TEXT, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)",
            "CREATE INDEX rotation_runs_key ON rotation_runs (key_id, created_at)",
            "CREATE TABLE rotation_active (key_id TEXT PRIMARY KEY, run_id TEXT NOT NULL REFERENCES rotation_runs(run_id))",
        ]),
        // Issue 13: evicted signer nodes (INodeTrustStore), never chosen again until re-admitted.
        new(4, "untrusted signer nodes",
        [
            "CREATE TABLE node_trust (node_id BIGINT PRIMARY KEY, state TEXT NOT NULL, reason TEXT NOT NULL, replacement BIGINT, since BIGINT NOT NULL)",
        ]),
        // Issue 13: the public transcript of every rotation run (IRotationLog.SaveTranscriptAsync).
        new(5, "rotation transcripts",
        [
            "CREATE TABLE rotation_transcripts (run_id TEXT PRIMARY KEY REFERENCES rotation_runs(run_id), transcript {blob} NOT NULL, created_at BIGINT NOT NULL)",
        ]),
        // Issue 13: continuous rotation (IRotationSchedules).
        new(6, "rotation schedules",
        [
            "CREATE TABLE rotation_schedules (key_id TEXT PRIMARY KEY, interval_ms BIGINT, after_signatures BIGINT, signatures BIGINT NOT NULL, last_rotation BIGINT, next_due BIGINT, failures BIGINT NOT NULL, total_failures BIGINT NOT NULL, last_error TEXT, demand_reason TEXT, updated_at BIGINT NOT NULL)",
        ]),

        // Issue 16: velocity counters for policy limits (Storage/Policy/IPolicyCounterStore). One lock row per counter;
        // one entry per reservation and counter, amounts as invariant decimal text.
        new(7, "policy velocity counters",
        [
            "CREATE TABLE policy_counter_keys (counter_key TEXT PRIMARY KEY)",
            "CREATE TABLE policy_counter_entries (reservation_id TEXT NOT NULL, counter_key TEXT NOT NULL REFERENCES policy_counter_keys(counter_key), at_ms BIGINT NOT NULL, native TEXT NOT NULL, usd TEXT NOT NULL, count BIGINT NOT NULL, PRIMARY KEY (reservation_id, counter_key))",
            "CREATE INDEX policy_counter_entries_window ON policy_counter_entries (counter_key, at_ms)",
        ]),

        // Issue 16: principals (people and agents) and their credentials (Storage/Principals/IPrincipalStore), each row
        // with a MAC under the record MAC key (PrincipalRecordMac); the nonces of signed requests, one row per key id and
        // nonce until the signature expires, so replicas sharing the database refuse each other's replays.
        new(8, "principals, credentials, request nonces",
        [
            "CREATE TABLE principals (id TEXT PRIMARY KEY, kind TEXT NOT NULL, roles TEXT NOT NULL, scope TEXT NOT NULL, disabled INTEGER NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, mac {blob} NOT NULL)",
            "CREATE TABLE principal_credentials (key_id TEXT PRIMARY KEY, principal_id TEXT NOT NULL REFERENCES principals(id), algorithm TEXT NOT NULL, public_key {blob} NOT NULL, created_at BIGINT NOT NULL, lease_expires_at BIGINT NOT NULL, revoked INTEGER NOT NULL, revoked_at BIGINT, mac {blob} NOT NULL)",
            "CREATE INDEX principal_credentials_principal ON principal_credentials (principal_id)",
            "CREATE TABLE request_nonces (key_id TEXT NOT NULL, nonce TEXT NOT NULL, expires_at BIGINT NOT NULL, PRIMARY KEY (key_id, nonce))",
            "CREATE INDEX request_nonces_expiry ON request_nonces (expires_at)",
        ]),

        // Issue 16: versioned policy documents (Storage/Policy/IPolicyStore), and the outcome of a held request (the
        // signature made when its approvals were met, or why it failed) in requests.result.
        new(9, "policies and request results",
        [
            "CREATE TABLE policies (policy_id TEXT NOT NULL, version BIGINT NOT NULL, hash TEXT NOT NULL, mode TEXT NOT NULL, document {blob} NOT NULL, created_by TEXT NOT NULL, created_at BIGINT NOT NULL, PRIMARY KEY (policy_id, version))",
            "ALTER TABLE requests ADD COLUMN result {blob}",
        ]),

        // Issue 16: the risk level shared by server replicas (Storage/Risk/IRiskStore): one state row (version 0 until the
        // first write), price samples per source (decimal text), votes to leave a lockdown.
        new(10, "risk level",
        [
            "CREATE TABLE risk_state (id INTEGER PRIMARY KEY, level TEXT NOT NULL, since_ms BIGINT NOT NULL, reasons TEXT NOT NULL, last_demanded_ms BIGINT NOT NULL, manual_level TEXT NOT NULL, manual_by TEXT, manual_reason TEXT, manual_at BIGINT, version BIGINT NOT NULL)",
            "INSERT INTO risk_state (id, level, since_ms, reasons, last_demanded_ms, manual_level, manual_by, manual_reason, manual_at, version) VALUES (1, 'normal', 0, '[]', 0, 'normal', NULL, NULL, NULL, 0)",
            "CREATE TABLE risk_prices (source TEXT NOT NULL, at_ms BIGINT NOT NULL, price TEXT NOT NULL)",
            "CREATE INDEX risk_prices_source_at ON risk_prices (source, at_ms)",
            "CREATE TABLE risk_lockdown_votes (lockdown_since_ms BIGINT NOT NULL, approver TEXT NOT NULL, at_ms BIGINT NOT NULL, PRIMARY KEY (lockdown_since_ms, approver))",
        ]),

        // Issue 17: Ethereum account nonces per (chain id, address) for transactions Conclave builds (Storage/Ethereum/
        // IEthereumNonceStore): the next fresh nonce (the lock row) and nonces given back to be handed out again. Not in backups.
        new(11, "ethereum nonces",
        [
            "CREATE TABLE eth_nonces (chain_id BIGINT NOT NULL, address TEXT NOT NULL, next_nonce BIGINT NOT NULL, PRIMARY KEY (chain_id, address))",
            "CREATE TABLE eth_nonces_released (chain_id BIGINT NOT NULL, address TEXT NOT NULL, nonce BIGINT NOT NULL, PRIMARY KEY (chain_id, address, nonce))",
        ]),

        // Issue 13: node_trust.mac, the record MAC of an eviction (NodeTrustRecordMac) under the key-record MAC key; rows
        // written before get theirs at the first unlocked open (the 'node_trust_mac_backfill' marker). node_trust is in
        // backups from this version on.
        new(12, "node trust record MACs",
        [
            "ALTER TABLE node_trust ADD COLUMN mac {blob}",
            "INSERT INTO store_meta (name, value) VALUES ('node_trust_mac_backfill', 'pending')",
        ]),

        // Issues 13 and 15: a replacement of the material of a key's current version, held pending by a run that keeps
        // the version (a DKLs23 repair renews every holder's pairwise state; IKeyStore.StageReplacementAsync) until the
        // run's commit moves it into key_secrets or its abort drops it. Signers only; not in backups (a run's pending state).
        new(13, "staged key material",
        [
            "CREATE TABLE key_secrets_staged (key_id TEXT NOT NULL, version INTEGER NOT NULL, kek_id TEXT NOT NULL REFERENCES keks(id), wrapped_key {blob} NOT NULL, ciphertext {blob} NOT NULL, created_at BIGINT NOT NULL, PRIMARY KEY (key_id, version), FOREIGN KEY (key_id, version) REFERENCES key_versions(key_id, version))",
        ]),

        // Issue 17: Safes registered with Conclave (Storage/Ethereum/ISafeStore): name, chain, address, threshold and the
        // owner keys' ids. Kept in backups.
        new(14, "safes",
        [
            "CREATE TABLE safes (name TEXT PRIMARY KEY, chain_id BIGINT NOT NULL, address TEXT NOT NULL, threshold BIGINT NOT NULL, owner_key_ids TEXT NOT NULL, created_at BIGINT NOT NULL, UNIQUE (chain_id, address))",
        ]),

        // Issue 16: running totals per velocity counter (SqlPolicyCounters): the sum of the counter's entries stamped
        // after watermark_ms, kept under the counter's lock row, so a reservation reads only the entries between the
        // watermark and its window's start instead of every entry in the window. NULL until first used (then computed
        // from the entries once; a restored backup starts so too).
        new(15, "policy counter running totals",
        [
            "ALTER TABLE policy_counter_keys ADD COLUMN watermark_ms BIGINT",
            "ALTER TABLE policy_counter_keys ADD COLUMN total_native TEXT",
            "ALTER TABLE policy_counter_keys ADD COLUMN total_usd TEXT",
            "ALTER TABLE policy_counter_keys ADD COLUMN total_count BIGINT",
        ]),

        // Issue 16: versioned venue profiles (Storage/Policy/IVenueProfileStore), changed through the API and shared by
        // replicas; server.json venueProfiles are installed here at start when their venue has none. Kept in backups.
        new(16, "venue profiles",
        [
            "CREATE TABLE venue_profiles (venue TEXT NOT NULL, version BIGINT NOT NULL, hash TEXT NOT NULL, document {blob} NOT NULL, created_by TEXT NOT NULL, created_at BIGINT NOT NULL, PRIMARY KEY (venue, version))",
        ]),

        // Issue 16: the threat signal shared by replicas (IRiskStore.AddThreatsAsync): refused, denied and badly signed
        // requests counted per second (every replica adds to the same row), pruned past twice the threat window. Not in
        // backups (like the risk level's other live inputs it is recomputed).
        new(17, "shared threat counts",
        [
            "CREATE TABLE risk_threats (second_ms BIGINT PRIMARY KEY, events BIGINT NOT NULL)",
        ]),

        // Issue 18: the signer nodes holding a threshold key's current version (KeyRecord.Holders), covered by the row's
        // MAC (KeyRecordMac, v2 encoding), so eviction and readiness find every key a node holds from the store without
        // reading each key's sealed package. NULL for single keys and for rows written before; the server records a
        // row's holders when it next reads its package (first use) or rotates it. Kept in backups.
        new(18, "key holders",
        [
            "ALTER TABLE keys ADD COLUMN holders TEXT",
        ]),

        // Issue 16: velocity counter entries keyed the way a reservation reads them — by counter and time, the window's
        // range scan — and stored in that key's b-tree on SQLite ({clustered}: WITHOUT ROWID), so an entry is written to
        // two b-trees (the table and the reservation-id index a release reads) instead of three (the rowid table, the
        // (reservation_id, counter_key) key's index and the window index). One reservation stamps all its entries with one
        // time, so the new key is unique exactly when the old one was.
        new(19, "policy counter entries keyed by counter and time",
        [
            "CREATE TABLE policy_counter_entries_v19 (counter_key TEXT NOT NULL REFERENCES policy_counter_keys(counter_key), at_ms BIGINT NOT NULL, reservation_id TEXT NOT NULL, native TEXT NOT NULL, usd TEXT NOT NULL, count BIGINT NOT NULL, PRIMARY KEY (counter_key, at_ms, reservation_id)){clustered}",
            "INSERT INTO policy_counter_entries_v19 (counter_key, at_ms, reservation_id, native, usd, count) SELECT counter_key, at_ms, reservation_id, native, usd, count FROM policy_counter_entries",
            "DROP TABLE policy_counter_entries",
            "ALTER TABLE policy_counter_entries_v19 RENAME TO policy_counter_entries",
            "CREATE INDEX policy_counter_entries_reservation ON policy_counter_entries (reservation_id)",
        ]),

        // A release finds its entries by the table's key, the time read from the reservation id (SqlPolicyCounters):
        // the id index was one more page written by every reservation's commit.
        new(20, "policy counter entries without a reservation-id index",
        [
            "DROP INDEX IF EXISTS policy_counter_entries_reservation",
        ]),
    ];

    /// <summary>The newest schema version this build knows.</summary>
    public static int Latest => s_all[^1].Version;

    /// <summary>Reads the recorded version without writing (0 for a new store).</summary>
    public static async Task<long> ReadVersionAsync(SqlEngine engine, DbConnection c, CancellationToken ct)
    {
        if (!await engine.TableExistsAsync(c, "schema_migrations", ct).ConfigureAwait(false))
        {
            return 0;
        }

        using DbCommand cmd = SqlEngine.Command(c, null, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false), CultureInfo.InvariantCulture);
    }

    /// <summary>Refuses a too-new store, then applies the missing migrations. Returns the resulting version.</summary>
    public static async Task<int> RunAsync(SqlEngine engine, TimeProvider time, CancellationToken ct)
    {
        DbConnection c = await engine.OpenAsync(ct).ConfigureAwait(false);
        await using (c.ConfigureAwait(false))
        {
            long found = await ReadVersionAsync(engine, c, ct).ConfigureAwait(false);
            if (found > Latest)
            {
                throw StorageErrors.SchemaTooNew(found, Latest);
            }

            await engine.PrepareAsync(c, ct).ConfigureAwait(false);
            if (found == Latest)
            {
                return Latest;
            }

            DbTransaction tx = await engine.BeginWriteAsync(c, ct).ConfigureAwait(false);
            await using (tx.ConfigureAwait(false))
            {
                await engine.LockForMigrationAsync(c, tx, ct).ConfigureAwait(false);
                await ExecAsync(c, tx, "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)", ct).ConfigureAwait(false);
                using (DbCommand cmd = SqlEngine.Command(c, tx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations"))
                {
                    found = Convert.ToInt64(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false), CultureInfo.InvariantCulture);
                }

                if (found > Latest)
                {
                    throw StorageErrors.SchemaTooNew(found, Latest);
                }

                foreach (Migration m in s_all)
                {
                    if (m.Version <= found)
                    {
                        continue;
                    }

                    foreach (string statement in m.Statements)
                    {
                        await ExecAsync(c, tx, engine.Ddl(statement), ct).ConfigureAwait(false);
                    }

                    if (m.Version == 1)
                    {
                        await SeedAsync(c, tx, time, ct).ConfigureAwait(false);
                    }

                    using DbCommand record = SqlEngine.Command(c, tx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (@v, @n, @t)");
                    record.Add("@v", m.Version);
                    record.Add("@n", m.Name);
                    record.Add("@t", time.GetUtcNow().ToUnixTimeMilliseconds());
                    await record.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                }

                await tx.CommitAsync(ct).ConfigureAwait(false);
            }
        }

        return Latest;
    }

    private static async Task SeedAsync(DbConnection c, DbTransaction tx, TimeProvider time, CancellationToken ct)
    {
        using (DbCommand cmd = SqlEngine.Command(c, tx, "INSERT INTO store_meta (name, value) VALUES ('store_id', @id), ('created_at', @t)"))
        {
            cmd.Add("@id", Guid.NewGuid().ToString("N"));
            cmd.Add("@t", time.GetUtcNow().ToString("O", CultureInfo.InvariantCulture));
            await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }

        using DbCommand head = SqlEngine.Command(c, tx, "INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, @h)");
        head.Add("@h", new byte[32]);
        await head.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    private static async Task ExecAsync(DbConnection c, DbTransaction tx, string sql, CancellationToken ct)
    {
        using DbCommand cmd = SqlEngine.Command(c, tx, sql);
        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }
}
