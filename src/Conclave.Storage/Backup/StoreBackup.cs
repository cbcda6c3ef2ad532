using System.Buffers.Binary;
using System.Data.Common;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Conclave.Crypto.Aead;
using Conclave.Crypto.Memory;
using Conclave.Crypto.Randomness;
using Conclave.Storage.Encryption;
using Conclave.Storage.Internal;

namespace Conclave.Storage.Backup;

/// <summary>
/// Encrypted export and import of a store (docs/STORAGE.md, "Backup format"):
/// <code>
/// "CNVBAK" 0x00 0x01 ‖ u32be len(header) ‖ header (JSON) ‖ body envelope
/// header: format, store id, schema version, time, backup KEK descriptor and check value, wrapped data key, body length
/// body:   JSON rows of every table except nonces, sealed with <see cref="Envelope"/> under a fresh data key;
///         the associated data is the header, so a changed header or a truncated body fails authentication.
/// </code>
/// Key material stays wrapped under the store's own KEK inside the body, so restoring needs both the backup
/// passphrase (or key file) and the store's KEK. Import checks everything (KEK, authentication, schema version,
/// audit chain) before it writes, then writes in one transaction into an empty store only.
/// </summary>
internal static class StoreBackup
{
    private static ReadOnlySpan<byte> Magic => "CNVBAK\0\u0001"u8;

    private enum Col
    {
        Text,
        Int,
        Blob,
    }

    private sealed record Table(string Name, string OrderBy, (string Name, Col Type)[] Columns);

    // Insertion order respects foreign keys. The nonce ledger is deliberately absent: a nonce is never restored.
    private static readonly Table[] s_tables =
    [
        new("keks", "id", [("id", Col.Text), ("kind", Col.Text), ("descriptor", Col.Blob), ("check_envelope", Col.Blob), ("state", Col.Text), ("created_at", Col.Int)]),
        new("store_secrets", "name", [("name", Col.Text), ("kek_id", Col.Text), ("wrapped_key", Col.Blob), ("ciphertext", Col.Blob), ("created_at", Col.Int)]),
        new("keys", "id", [("id", Col.Text), ("name", Col.Text), ("scheme", Col.Text), ("public_key", Col.Blob), ("threshold", Col.Int), ("participants", Col.Int), ("version", Col.Int), ("state", Col.Text), ("labels", Col.Text), ("created_at", Col.Int), ("updated_at", Col.Int), ("mac", Col.Blob), ("holders", Col.Text)]),
        new("key_versions", "key_id, version", [("key_id", Col.Text), ("version", Col.Int), ("public_key", Col.Blob), ("created_at", Col.Int)]),
        new("key_secrets", "key_id, version", [("key_id", Col.Text), ("version", Col.Int), ("kek_id", Col.Text), ("wrapped_key", Col.Blob), ("ciphertext", Col.Blob), ("created_at", Col.Int)]),
        new("requests", "id", [("id", Col.Text), ("key_id", Col.Text), ("operation", Col.Text), ("requester", Col.Text), ("request_hash", Col.Blob), ("payload", Col.Blob), ("state", Col.Text), ("created_at", Col.Int), ("updated_at", Col.Int), ("expires_at", Col.Int), ("result", Col.Blob)]),
        new("policies", "policy_id, version", [("policy_id", Col.Text), ("version", Col.Int), ("hash", Col.Text), ("mode", Col.Text), ("document", Col.Blob), ("created_by", Col.Text), ("created_at", Col.Int)]),
        new("venue_profiles", "venue, version", [("venue", Col.Text), ("version", Col.Int), ("hash", Col.Text), ("document", Col.Blob), ("created_by", Col.Text), ("created_at", Col.Int)]),
        new("approvals", "request_id, approver", [("request_id", Col.Text), ("approver", Col.Text), ("decision", Col.Text), ("signature", Col.Blob), ("created_at", Col.Int)]),
        new("principals", "id", [("id", Col.Text), ("kind", Col.Text), ("roles", Col.Text), ("scope", Col.Text), ("disabled", Col.Int), ("created_at", Col.Int), ("updated_at", Col.Int), ("mac", Col.Blob)]),
        new("principal_credentials", "key_id", [("key_id", Col.Text), ("principal_id", Col.Text), ("algorithm", Col.Text), ("public_key", Col.Blob), ("created_at", Col.Int), ("lease_expires_at", Col.Int), ("revoked", Col.Int), ("revoked_at", Col.Int), ("mac", Col.Blob)]),
        new("policy_counter_keys", "counter_key", [("counter_key", Col.Text)]),
        new("policy_counter_entries", "counter_key, reservation_id", [("reservation_id", Col.Text), ("counter_key", Col.Text), ("at_ms", Col.Int), ("native", Col.Text), ("usd", Col.Text), ("count", Col.Int)]),
        new("risk_state", "id", [("id", Col.Int), ("level", Col.Text), ("since_ms", Col.Int), ("reasons", Col.Text), ("last_demanded_ms", Col.Int), ("manual_level", Col.Text), ("manual_by", Col.Text), ("manual_reason", Col.Text), ("manual_at", Col.Int), ("version", Col.Int)]),
        new("risk_prices", "source, at_ms, price", [("source", Col.Text), ("at_ms", Col.Int), ("price", Col.Text)]),
        new("risk_lockdown_votes", "lockdown_since_ms, approver", [("lockdown_since_ms", Col.Int), ("approver", Col.Text), ("at_ms", Col.Int)]),
        new("node_trust", "node_id", [("node_id", Col.Int), ("state", Col.Text), ("reason", Col.Text), ("replacement", Col.Int), ("since", Col.Int), ("mac", Col.Blob)]),
        new("safes", "name", [("name", Col.Text), ("chain_id", Col.Int), ("address", Col.Text), ("threshold", Col.Int), ("owner_key_ids", Col.Text), ("created_at", Col.Int)]),
        new("audit_entries", "seq", [("seq", Col.Int), ("time", Col.Int), ("actor", Col.Text), ("action", Col.Text), ("key_id", Col.Text), ("request_hash", Col.Blob), ("decision", Col.Text), ("result", Col.Text), ("prev_hash", Col.Blob), ("hash", Col.Blob)]),
        new("audit_checkpoints", "seq", [("seq", Col.Int), ("hash", Col.Blob), ("scheme", Col.Text), ("public_key", Col.Blob), ("signature", Col.Blob), ("time", Col.Int)]),
    ];

    private static readonly string[] s_mustBeEmpty = ["keks", "store_secrets", "keys", "requests", "policies", "venue_profiles", "principals", "policy_counter_keys", "risk_prices", "node_trust", "audit_entries", "nonces", "safes"];

    // Tables a backup written before they were backed up lacks (policies: before migration 9; the principals, the policy
    // counters and the risk level: before they were added to backups; node_trust: before migration 12; the Safes: before
    // migration 14; the venue profiles: before migration 16); restored as empty (the risk level as normal).
    private static readonly string[] s_mayBeAbsent = ["policies", "venue_profiles", "principals", "principal_credentials", "policy_counter_keys", "policy_counter_entries", "risk_state", "risk_prices",
        "risk_lockdown_votes", "node_trust", "safes"];

    public static async Task ExportAsync(SqlStore store, Stream destination, IKeyEncryptionKeySource backupKekSource, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(destination);
        ArgumentNullException.ThrowIfNull(backupKekSource);
        byte[] body = await store.ReadAsync(async c =>
        {
            DbTransaction tx = store.Engine.Kind == StoreEngine.Postgres
                ? await c.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, ct).ConfigureAwait(false)
                : await c.BeginTransactionAsync(ct).ConfigureAwait(false);
            await using (tx.ConfigureAwait(false))
            {
                return await SerializeAsync(store, c, tx, ct).ConfigureAwait(false);
            }
        }, ct).ConfigureAwait(false);

        using IKeyEncryptionKey kek = backupKekSource.Open(null);
        using SecretBuffer dataKey = SecretBuffer.Allocate(Envelope.KeySizeInBytes);
        SystemRandomSource.Instance.Fill(dataKey.Span);
        string scope = "backup:" + store.StoreId;
        var header = new BackupHeader
        {
            Format = 1,
            StoreId = store.StoreId,
            SchemaVersion = store.SchemaVersion,
            CreatedAt = store.Time.GetUtcNow().ToString("O", System.Globalization.CultureInfo.InvariantCulture),
            KekId = kek.Id,
            KekKind = kek.Kind,
            KekDescriptor = kek.Descriptor.ToArray(),
            KekCheck = SecretSealer.MakeCheck(kek, scope),
            WrappedKey = kek.Wrap(dataKey.ReadOnlySpan, SecretSealer.Context("backup-key", store.StoreId)),
            BodyLength = Envelope.SealedSize(body.Length),
        };
        byte[] headerBytes = JsonSerializer.SerializeToUtf8Bytes(header);
        byte[] sealedBody = Envelope.Seal(dataKey.ReadOnlySpan, body, BodyAd(headerBytes));
        CryptographicOperations.ZeroMemory(body);

        byte[] len = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(len, (uint)headerBytes.Length);
        await destination.WriteAsync(Magic.ToArray(), ct).ConfigureAwait(false);
        await destination.WriteAsync(len, ct).ConfigureAwait(false);
        await destination.WriteAsync(headerBytes, ct).ConfigureAwait(false);
        await destination.WriteAsync(sealedBody, ct).ConfigureAwait(false);
        await destination.FlushAsync(ct).ConfigureAwait(false);
    }

    private static async Task<byte[]> SerializeAsync(SqlStore store, DbConnection c, DbTransaction tx, CancellationToken ct)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            w.WriteNumber("schemaVersion", store.SchemaVersion);
            w.WriteString("storeId", store.StoreId);
            AuditHeadRow head = await ReadHeadAsync(c, tx, ct).ConfigureAwait(false);
            w.WriteNumber("headSeq", head.Seq);
            w.WriteBase64String("headHash", head.Hash);
            w.WriteStartObject("tables");
            foreach (Table t in s_tables)
            {
                w.WriteStartArray(t.Name);
                using DbCommand cmd = SqlEngine.Command(c, tx, $"SELECT {string.Join(", ", t.Columns.Select(x => x.Name))} FROM {t.Name} ORDER BY {t.OrderBy}");
                using DbDataReader r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
                while (await r.ReadAsync(ct).ConfigureAwait(false))
                {
                    w.WriteStartArray();
                    for (int i = 0; i < t.Columns.Length; i++)
                    {
                        if (r.IsDBNull(i))
                        {
                            w.WriteNullValue();
                            continue;
                        }

                        switch (t.Columns[i].Type)
                        {
                            case Col.Text: w.WriteStringValue(r.GetString(i)); break;
                            case Col.Int: w.WriteNumberValue(r.GetInt64(i)); break;
                            default: w.WriteBase64StringValue((byte[])r.GetValue(i)); break;
                        }
                    }

                    w.WriteEndArray();
                }

                w.WriteEndArray();
            }

            w.WriteEndObject();
            w.WriteEndObject();
        }

        return ms.ToArray();
    }

    public static async Task ImportAsync(SqlStore store, Stream source, IKeyEncryptionKeySource backupKekSource, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(backupKekSource);
        using var buffer = new MemoryStream();
        await source.CopyToAsync(buffer, ct).ConfigureAwait(false);
        byte[] file = buffer.ToArray();

        // 1. Parse and authenticate everything before touching the store.
        if (file.Length < Magic.Length + 4 || !file.AsSpan(0, Magic.Length).SequenceEqual(Magic))
        {
            throw StorageErrors.BadBackup("not a Conclave backup (bad magic or truncated header)");
        }

        int headerLength = (int)Math.Min(BinaryPrimitives.ReadUInt32BigEndian(file.AsSpan(Magic.Length)), int.MaxValue);
        int headerStart = Magic.Length + 4;
        if (headerLength > file.Length - headerStart)
        {
            throw StorageErrors.BadBackup("the file is truncated (header incomplete)");
        }

        byte[] headerBytes = file.AsSpan(headerStart, headerLength).ToArray();
        BackupHeader header;
        try
        {
            header = JsonSerializer.Deserialize<BackupHeader>(headerBytes) ?? throw StorageErrors.BadBackup("empty header");
        }
        catch (JsonException e)
        {
            throw StorageErrors.BadBackup("the header is corrupted", e);
        }

        if (header.Format != 1 || header.KekId is null || header.KekKind is null || header.KekDescriptor is null
            || header.KekCheck is null || header.WrappedKey is null || header.StoreId is null)
        {
            throw StorageErrors.BadBackup("unsupported or incomplete header");
        }

        if (header.SchemaVersion > Migrations.Latest)
        {
            throw StorageErrors.SchemaTooNew(header.SchemaVersion, Migrations.Latest);
        }

        ReadOnlySpan<byte> sealedBody = file.AsSpan(headerStart + headerLength);
        if (sealedBody.Length != header.BodyLength)
        {
            throw StorageErrors.BadBackup($"the file is truncated or has trailing data (body {sealedBody.Length} of {header.BodyLength} bytes)");
        }

        byte[] body;
        using (IKeyEncryptionKey kek = backupKekSource.Open(new KekDescriptor(header.KekId, header.KekKind, header.KekDescriptor)))
        {
            if (kek.Id != header.KekId || !SecretSealer.VerifyCheck(kek, header.KekCheck, "backup:" + header.StoreId))
            {
                throw new StorageException(StorageErrorKind.WrongKeyEncryptionKey, "backup rejected: wrong passphrase or key file; nothing was imported");
            }

            SecretBuffer dataKey;
            try
            {
                dataKey = kek.Unwrap(header.WrappedKey, SecretSealer.Context("backup-key", header.StoreId));
            }
            catch (EnvelopeException e)
            {
                throw StorageErrors.BadBackup("the data key does not authenticate", e);
            }

            using (dataKey)
            {
                try
                {
                    using SecretBuffer plain = Envelope.Open(dataKey.ReadOnlySpan, sealedBody, BodyAd(headerBytes));
                    body = plain.ReadOnlySpan.ToArray();
                }
                catch (EnvelopeException e)
                {
                    throw StorageErrors.BadBackup("the body does not authenticate (corrupted or altered)", e);
                }
            }
        }

        try
        {
            using JsonDocument doc = JsonDocument.Parse(body);
            var parsed = Parse(doc.RootElement);
            CheckAuditChain(parsed);

            // 2. Write, in one transaction, into an empty store only.
            await store.WriteAsync(async (c, tx) =>
            {
                foreach (string t in s_mustBeEmpty)
                {
                    using DbCommand count = SqlEngine.Command(c, tx, $"SELECT COUNT(*) FROM {t}");
                    if (Convert.ToInt64(await count.ExecuteScalarAsync(ct).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture) != 0)
                    {
                        throw StorageErrors.NotEmpty();
                    }
                }

                // A fresh store has its one risk_state row (normal); the backup's replaces it.
                if (parsed.Tables["risk_state"].Count > 0)
                {
                    using DbCommand clear = SqlEngine.Command(c, tx, "DELETE FROM risk_state");
                    await clear.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                }

                foreach (Table t in s_tables)
                {
                    string sql = $"INSERT INTO {t.Name} ({string.Join(", ", t.Columns.Select(x => x.Name))}) VALUES ({string.Join(", ", t.Columns.Select((_, i) => "@p" + i.ToString(System.Globalization.CultureInfo.InvariantCulture)))})";
                    foreach (object?[] row in parsed.Tables[t.Name])
                    {
                        using DbCommand cmd = SqlEngine.Command(c, tx, sql);
                        for (int i = 0; i < row.Length; i++)
                        {
                            cmd.Add("@p" + i.ToString(System.Globalization.CultureInfo.InvariantCulture), row[i]);
                        }

                        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                    }
                }

                // The backup does not carry the head signature: the restored log is signed again from its head on (by this
                // store's checkpoint signer now, or at the first open with one); its checkpoints are restored as they were.
                using (DbCommand head = SqlEngine.Command(c, tx,
                    "UPDATE audit_head SET seq=@s, hash=@h, checkpoint_interval=NULL, checkpoints_from=NULL, signed_time=NULL, scheme=NULL, public_key=NULL, signature=NULL WHERE id=1"))
                {
                    head.Add("@s", parsed.HeadSeq);
                    head.Add("@h", parsed.HeadHash);
                    await head.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                }

                await store.AuditLog.StartSigningAsync(c, tx, ct).ConfigureAwait(false);
                if (store.Options.CheckpointSigner is null)
                {
                    using DbCommand marker = SqlEngine.Command(c, tx, "INSERT INTO store_meta (name, value) VALUES ('audit_head_init', 'pending') ON CONFLICT DO NOTHING");
                    await marker.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                }

                // The KEK check values are bound to the store id, so the restored store keeps the original id.
                using (DbCommand meta = SqlEngine.Command(c, tx, "UPDATE store_meta SET value=@v WHERE name='store_id'"))
                {
                    meta.Add("@v", header.StoreId);
                    await meta.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                }

                return true;
            }, ct).ConfigureAwait(false);
            store.SetStoreIdAfterImport(header.StoreId);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(body);
        }
    }

    private sealed record Parsed(Dictionary<string, List<object?[]>> Tables, long HeadSeq, byte[] HeadHash);

    private static Parsed Parse(JsonElement root)
    {
        try
        {
            long headSeq = root.GetProperty("headSeq").GetInt64();
            byte[] headHash = root.GetProperty("headHash").GetBytesFromBase64();
            JsonElement tables = root.GetProperty("tables");
            var result = new Dictionary<string, List<object?[]>>();
            foreach (Table t in s_tables)
            {
                var rows = new List<object?[]>();
                // A backup written before migration 9 has no policies table and no requests.result column.
                if (!tables.TryGetProperty(t.Name, out JsonElement tableRows) && s_mayBeAbsent.Contains(t.Name, StringComparer.Ordinal))
                {
                    result[t.Name] = rows;
                    continue;
                }

                tableRows = tables.GetProperty(t.Name);
                foreach (JsonElement row in tableRows.EnumerateArray())
                {
                    int missing = t.Columns.Length - row.GetArrayLength();
                    // Before migration 18 a key row had no holders (restored as NULL: recorded again at first use).
                    if (missing != 0 && !(missing == 1 && t.Name is "requests" or "keys"))
                    {
                        throw StorageErrors.BadBackup($"a row of {t.Name} has the wrong number of columns");
                    }

                    var values = new object?[t.Columns.Length];
                    int i = 0;
                    foreach (JsonElement cell in row.EnumerateArray())
                    {
                        values[i] = cell.ValueKind == JsonValueKind.Null ? null : t.Columns[i].Type switch
                        {
                            Col.Text => cell.GetString(),
                            Col.Int => cell.GetInt64(),
                            _ => cell.GetBytesFromBase64(),
                        };
                        i++;
                    }

                    rows.Add(values);
                }

                result[t.Name] = rows;
            }

            return new Parsed(result, headSeq, headHash);
        }
        catch (Exception e) when (e is KeyNotFoundException or InvalidOperationException or FormatException or JsonException)
        {
            throw StorageErrors.BadBackup("the body is malformed", e);
        }
    }

    /// <summary>The backup's own audit chain must verify before it is restored.</summary>
    private static void CheckAuditChain(Parsed p)
    {
        byte[] prev = new byte[32];
        long expected = 1;
        foreach (object?[] r in p.Tables["audit_entries"])
        {
            long seq = (long)r[0]!;
            byte[] hash = AuditHashing.Hash(seq, (long)r[1]!, (string)r[2]!, (string)r[3]!, (string?)r[4], (byte[]?)r[5], (string)r[6]!, (string)r[7]!, (byte[])r[8]!);
            if (seq != expected || !hash.AsSpan().SequenceEqual((byte[])r[9]!) || !prev.AsSpan().SequenceEqual((byte[])r[8]!))
            {
                throw StorageErrors.BadBackup($"the audit chain in the backup does not verify at seq {expected}");
            }

            prev = hash;
            expected++;
        }

        if (p.HeadSeq != expected - 1 || !p.HeadHash.AsSpan().SequenceEqual(prev))
        {
            throw StorageErrors.BadBackup("the audit head in the backup does not match its entries");
        }
    }

    private sealed record AuditHeadRow(long Seq, byte[] Hash);

    private static async Task<AuditHeadRow> ReadHeadAsync(DbConnection c, DbTransaction tx, CancellationToken ct)
    {
        using DbCommand cmd = SqlEngine.Command(c, tx, "SELECT seq, hash FROM audit_head WHERE id=1");
        using DbDataReader r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        return await r.ReadAsync(ct).ConfigureAwait(false) ? new AuditHeadRow(r.GetInt64(0), (byte[])r.GetValue(1)) : new AuditHeadRow(0, new byte[32]);
    }

    private static byte[] BodyAd(byte[] headerBytes)
    {
        byte[] label = Encoding.ASCII.GetBytes("conclave/backup/v1");
        byte[] ad = new byte[label.Length + headerBytes.Length];
        label.CopyTo(ad, 0);
        headerBytes.CopyTo(ad, label.Length);
        return ad;
    }

    private sealed class BackupHeader
    {
        public int Format { get; set; }

        public string? StoreId { get; set; }

        public int SchemaVersion { get; set; }

        public string? CreatedAt { get; set; }

        public string? KekId { get; set; }

        public string? KekKind { get; set; }

        public byte[]? KekDescriptor { get; set; }

        public byte[]? KekCheck { get; set; }

        public byte[]? WrappedKey { get; set; }

        public int BodyLength { get; set; }
    }
}
