using System.Data.Common;
using Conclave.Crypto.Memory;
using Conclave.Storage.Nonces;

namespace Conclave.Storage.Internal;

/// <summary>
/// The nonce ledger. Consumption is one conditional statement,
/// <c>UPDATE nonces SET consumed_at=… WHERE id=… AND consumed_at IS NULL</c>, whose row count decides the winner;
/// the commit (fsync'd: SQLite synchronous=FULL, PostgreSQL synchronous_commit=on) completes before the method
/// returns, so the caller only ever uses a nonce whose consumption is durable (DESIGN.md safety rule 1).
/// </summary>
internal sealed class SqlNonceLedger(SqlStore store) : INonceLedger
{
    public const int MaxIdLength = 64;

    public Task IssueAsync(IReadOnlyList<NonceIssue> nonces, CancellationToken cancellationToken = default)
        => IssueCoreAsync(nonces, consumedAtIssue: false, cancellationToken);

    public Task IssueConsumedAsync(IReadOnlyList<NonceIssue> nonces, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(nonces);
        if (nonces.Any(n => n?.Material is not null))
        {
            throw new ArgumentException("a nonce consumed at issue keeps its secret in memory only; store no material", nameof(nonces));
        }

        return IssueCoreAsync(nonces, consumedAtIssue: true, cancellationToken);
    }

    private async Task IssueCoreAsync(IReadOnlyList<NonceIssue> nonces, bool consumedAtIssue, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(nonces);
        if (nonces.Count == 0)
        {
            return;
        }

        var rows = new List<(byte[] Id, string KeyId, string Kind, byte[]? Wrapped, byte[]? Cipher)>(nonces.Count);
        string? kekId = null;
        foreach (NonceIssue n in nonces)
        {
            ArgumentNullException.ThrowIfNull(n);
            CheckId(n.Id);
            Validate.Identifier(n.KeyId, "nonce.KeyId");
            string kind = KindName(n.Kind);
            if (n.Material is null)
            {
                rows.Add((n.Id.ToArray(), n.KeyId, kind, null, null));
            }
            else
            {
                var kek = kekId is null ? store.Kek : store.KekFor(kekId); // one KEK for the whole batch
                kekId = kek.Id;
                var (w, c) = SecretSealer.Seal(kek, n.Material.ReadOnlySpan, SecretSealer.NonceContext(n.Id, n.KeyId, kind));
                rows.Add((n.Id.ToArray(), n.KeyId, kind, w, c));
            }
        }

        long now = store.NowMs();
        await store.WriteAsync(async (c, tx) =>
        {
            using DbCommand cmd = SqlEngine.Command(c, tx,
                "INSERT INTO nonces (id, key_id, kind, issued_at, consumed_at, kek_id, wrapped_key, ciphertext) VALUES (@id, @key, @kind, @now, @consumed, @kek, @w, @ct)");
            DbParameter pid = cmd.Add("@id", null), pkey = cmd.Add("@key", null), pkind = cmd.Add("@kind", null);
            cmd.Add("@now", now);
            cmd.Add("@consumed", consumedAtIssue ? now : DBNull.Value);
            DbParameter pkek = cmd.Add("@kek", null), pw = cmd.Add("@w", null), pct = cmd.Add("@ct", null);
            foreach (var row in rows)
            {
                pid.Value = row.Id;
                pkey.Value = row.KeyId;
                pkind.Value = row.Kind;
                pkek.Value = row.Wrapped is null ? DBNull.Value : kekId!;
                pw.Value = (object?)row.Wrapped ?? DBNull.Value;
                pct.Value = (object?)row.Cipher ?? DBNull.Value;
                try
                {
                    await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (DbException e) when (store.Engine.IsUniqueViolation(e))
                {
                    throw StorageErrors.Duplicate("nonce", Convert.ToHexStringLower(row.Id));
                }
            }

            return true;
        }, cancellationToken).ConfigureAwait(false);
    }

    public Task<bool> TryConsumeAsync(byte[] id, CancellationToken cancellationToken = default)
    {
        CheckId(id);
        return store.NonceConsumer.ConsumeAsync(id, cancellationToken);
    }

    public async Task<SecretBuffer?> TryConsumeMaterialAsync(byte[] id, CancellationToken cancellationToken = default)
    {
        CheckId(id);
        _ = store.Kek; // Locked before any I/O when the store has no KEK
        long now = store.NowMs();
        var row = await store.WriteAsync(async (c, tx) =>
        {
            (string KeyId, string Kind, string? KekId, byte[]? Wrapped, byte[]? Cipher)? found = null;
            using (DbCommand sel = SqlEngine.Command(c, tx,
                "SELECT key_id, kind, kek_id, wrapped_key, ciphertext FROM nonces WHERE id=@id AND consumed_at IS NULL" + store.Engine.ForUpdate))
            {
                sel.Add("@id", id);
                using DbDataReader r = await sel.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                if (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    found = (r.GetString(0), r.GetString(1), r.GetStringOrNull(2), r.GetBytesOrNull(3), r.GetBytesOrNull(4));
                }
            }

            if (found is null)
            {
                return null;
            }

            using DbCommand upd = SqlEngine.Command(c, tx,
                "UPDATE nonces SET consumed_at=@now, kek_id=NULL, wrapped_key=NULL, ciphertext=NULL WHERE id=@id AND consumed_at IS NULL");
            upd.Add("@now", now);
            upd.Add("@id", id);
            return await upd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1 ? found : null;
        }, cancellationToken).ConfigureAwait(false);

        // The consumption is committed; only now is the material decrypted and handed out.
        if (row is not { } f || f.Wrapped is null || f.Cipher is null)
        {
            return null;
        }

        return SecretSealer.Open(store.KekFor(f.KekId ?? ""), f.Wrapped, f.Cipher, SecretSealer.NonceContext(id, f.KeyId, f.Kind), "nonce material");
    }

    public Task<NonceStatus> GetStatusAsync(byte[] id, CancellationToken cancellationToken = default)
    {
        CheckId(id);
        return store.ReadAsync(async c =>
        {
            using DbCommand cmd = SqlEngine.Command(c, null, "SELECT consumed_at FROM nonces WHERE id=@id");
            cmd.Add("@id", id);
            using DbDataReader r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            if (!await r.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                return NonceStatus.Unknown;
            }

            return r.IsDBNull(0) ? NonceStatus.Issued : NonceStatus.Consumed;
        }, cancellationToken);
    }

    public Task<IReadOnlyList<byte[]>> ListAvailableAsync(string keyId, NonceKind kind, int limit, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(keyId);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        return store.ReadAsync<IReadOnlyList<byte[]>>(async c =>
        {
            using DbCommand cmd = SqlEngine.Command(c, null,
                "SELECT id FROM nonces WHERE key_id=@key AND kind=@kind AND consumed_at IS NULL ORDER BY issued_at, id LIMIT @limit");
            cmd.Add("@key", keyId);
            cmd.Add("@kind", KindName(kind));
            cmd.Add("@limit", limit);
            using DbDataReader r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            var list = new List<byte[]>();
            while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                list.Add((byte[])r.GetValue(0));
            }

            return list;
        }, cancellationToken);
    }

    public Task<long> CountAvailableAsync(string keyId, NonceKind kind, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(keyId);
        return store.ReadAsync(async c =>
        {
            using DbCommand cmd = SqlEngine.Command(c, null, "SELECT COUNT(*) FROM nonces WHERE key_id=@key AND kind=@kind AND consumed_at IS NULL");
            cmd.Add("@key", keyId);
            cmd.Add("@kind", KindName(kind));
            return Convert.ToInt64(await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture);
        }, cancellationToken);
    }

    public Task<byte[]?> GetHighestIdAsync(CancellationToken cancellationToken = default) => store.ReadAsync(async c =>
    {
        using DbCommand cmd = SqlEngine.Command(c, null, "SELECT id FROM nonces ORDER BY id DESC LIMIT 1");
        using DbDataReader r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await r.ReadAsync(cancellationToken).ConfigureAwait(false) ? (byte[])r.GetValue(0) : null;
    }, cancellationToken);

    public Task<long> PruneConsumedBelowAsync(byte[] bound, CancellationToken cancellationToken = default)
    {
        CheckId(bound);
        return store.WriteAsync(async (c, tx) =>
        {
            using DbCommand cmd = SqlEngine.Command(c, tx, "DELETE FROM nonces WHERE id < @bound AND consumed_at IS NOT NULL");
            cmd.Add("@bound", bound);
            return (long)await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }, cancellationToken);
    }

    private static void CheckId(byte[]? id)
    {
        if (id is null || id.Length is 0 or > MaxIdLength)
        {
            throw StorageErrors.Invalid("nonce id", $"must be 1 to {MaxIdLength} bytes");
        }
    }

    private static string KindName(NonceKind kind) => kind switch
    {
        NonceKind.Nonce => "nonce",
        NonceKind.Presignature => "presignature",
        _ => throw StorageErrors.Invalid("kind", "unknown nonce kind"),
    };
}
