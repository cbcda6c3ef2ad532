using System.Data.Common;
using Conclave.Crypto.Memory;
using Conclave.Storage.Principals;

namespace Conclave.Storage.Internal;

/// <summary>
/// Principals, credentials and request nonces in <c>principals</c>, <c>principal_credentials</c> and
/// <c>request_nonces</c> (migration 8). Every write re-reads the row it changes with its MAC checked (so a tampered
/// row is refused rather than re-sealed) and writes the new MAC in the same transaction.
/// </summary>
internal sealed class SqlPrincipalStore(SqlStore store) : IPrincipalStore
{
    public const int MaxScopeLength = 65536;
    private const int MaxRoles = 8;
    private long _nonceInserts;

    public async Task<PrincipalRecord> CreateAsync(NewPrincipal principal, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(principal);
        Validate.Text(principal.Id, "principal.Id");
        Validate.Text(principal.Kind, "principal.Kind");
        string roles = RolesText(principal.Roles);
        ValidateScope(principal.Scope);
        await store.EnsureKeyMacKeyAsync(cancellationToken).ConfigureAwait(false);
        long now = store.NowMs();
        await store.WriteAsync(async (c, tx) =>
        {
            using SecretBuffer macKey = await MacKeyAsync(c, tx, "principal", principal.Id, cancellationToken).ConfigureAwait(false);
            using DbCommand cmd = SqlEngine.Command(c, tx,
                "INSERT INTO principals (id, kind, roles, scope, disabled, created_at, updated_at, mac) VALUES (@id, @kind, @roles, @scope, 0, @now, @now, @mac)");
            cmd.Add("@id", principal.Id);
            cmd.Add("@kind", principal.Kind);
            cmd.Add("@roles", roles);
            cmd.Add("@scope", principal.Scope);
            cmd.Add("@now", now);
            cmd.Add("@mac", KeyRecordMac.Compute(macKey, PrincipalRecordMac.EncodePrincipal(principal.Id, principal.Kind, roles, principal.Scope, false)));
            try
            {
                await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (DbException e) when (store.Engine.IsUniqueViolation(e))
            {
                throw StorageErrors.Duplicate("principal", principal.Id);
            }

            return true;
        }, cancellationToken).ConfigureAwait(false);
        return await GetAsync(principal.Id, cancellationToken).ConfigureAwait(false) ?? throw StorageErrors.NotFound("principal", principal.Id);
    }

    public Task<PrincipalRecord?> GetAsync(string id, CancellationToken cancellationToken = default)
    {
        Validate.Text(id, nameof(id));
        return store.ReadAsync(async c =>
        {
            IReadOnlyList<PrincipalRecord> found = await ReadPrincipalsAsync(c, null, id, cancellationToken).ConfigureAwait(false);
            return found.Count == 0 ? null : found[0];
        }, cancellationToken);
    }

    public Task<IReadOnlyList<PrincipalRecord>> ListAsync(CancellationToken cancellationToken = default) =>
        store.ReadAsync(c => ReadPrincipalsAsync(c, null, null, cancellationToken), cancellationToken);

    public async Task<PrincipalRecord> SetDisabledAsync(string id, bool disabled, CancellationToken cancellationToken = default)
    {
        Validate.Text(id, nameof(id));
        await store.WriteAsync(async (c, tx) =>
        {
            IReadOnlyList<PrincipalRecord> found = await ReadPrincipalsAsync(c, tx, id, cancellationToken, forUpdate: true).ConfigureAwait(false);
            if (found.Count == 0)
            {
                throw StorageErrors.NotFound("principal", id);
            }

            PrincipalRecord p = found[0];
            using SecretBuffer macKey = await MacKeyAsync(c, tx, "principal", id, cancellationToken).ConfigureAwait(false);
            using DbCommand cmd = SqlEngine.Command(c, tx, "UPDATE principals SET disabled=@d, updated_at=@now, mac=@mac WHERE id=@id");
            cmd.Add("@d", disabled ? 1 : 0);
            cmd.Add("@now", store.NowMs());
            cmd.Add("@mac", KeyRecordMac.Compute(macKey, PrincipalRecordMac.EncodePrincipal(p.Id, p.Kind, string.Join(',', p.Roles), p.Scope, disabled)));
            cmd.Add("@id", id);
            await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            return true;
        }, cancellationToken).ConfigureAwait(false);
        return await GetAsync(id, cancellationToken).ConfigureAwait(false) ?? throw StorageErrors.NotFound("principal", id);
    }

    public async Task<CredentialRecord> AddCredentialAsync(NewCredential credential, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(credential);
        Validate.Text(credential.KeyId, "credential.KeyId");
        Validate.Text(credential.PrincipalId, "credential.PrincipalId");
        Validate.Text(credential.Algorithm, "credential.Algorithm");
        Validate.PublicKey(credential.PublicKey, "credential.PublicKey");
        await store.EnsureKeyMacKeyAsync(cancellationToken).ConfigureAwait(false);
        long now = store.NowMs();
        long lease = credential.LeaseExpiresAt.ToUnixTimeMilliseconds();
        await store.WriteAsync(async (c, tx) =>
        {
            if ((await ReadPrincipalsAsync(c, tx, credential.PrincipalId, cancellationToken, forUpdate: true).ConfigureAwait(false)).Count == 0)
            {
                throw StorageErrors.NotFound("principal", credential.PrincipalId);
            }

            using SecretBuffer macKey = await MacKeyAsync(c, tx, "credential", credential.KeyId, cancellationToken).ConfigureAwait(false);
            using DbCommand cmd = SqlEngine.Command(c, tx,
                "INSERT INTO principal_credentials (key_id, principal_id, algorithm, public_key, created_at, lease_expires_at, revoked, revoked_at, mac) " +
                "VALUES (@k, @p, @a, @pk, @now, @lease, 0, NULL, @mac)");
            cmd.Add("@k", credential.KeyId);
            cmd.Add("@p", credential.PrincipalId);
            cmd.Add("@a", credential.Algorithm);
            cmd.Add("@pk", credential.PublicKey);
            cmd.Add("@now", now);
            cmd.Add("@lease", lease);
            cmd.Add("@mac", KeyRecordMac.Compute(macKey, PrincipalRecordMac.EncodeCredential(credential.KeyId, credential.PrincipalId, credential.Algorithm, credential.PublicKey, lease, false, null)));
            try
            {
                await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (DbException e) when (store.Engine.IsUniqueViolation(e))
            {
                throw StorageErrors.Duplicate("credential", credential.KeyId);
            }

            return true;
        }, cancellationToken).ConfigureAwait(false);
        return await GetCredentialAsync(credential.KeyId, cancellationToken).ConfigureAwait(false) ?? throw StorageErrors.NotFound("credential", credential.KeyId);
    }

    public Task<CredentialRecord?> GetCredentialAsync(string keyId, CancellationToken cancellationToken = default)
    {
        Validate.Text(keyId, nameof(keyId));
        return store.ReadAsync(async c =>
        {
            IReadOnlyList<CredentialRecord> found = await ReadCredentialsAsync(c, null, "key_id", keyId, cancellationToken).ConfigureAwait(false);
            return found.Count == 0 ? null : found[0];
        }, cancellationToken);
    }

    public Task<IReadOnlyList<CredentialRecord>> ListCredentialsAsync(string principalId, CancellationToken cancellationToken = default)
    {
        Validate.Text(principalId, nameof(principalId));
        return store.ReadAsync(c => ReadCredentialsAsync(c, null, "principal_id", principalId, cancellationToken), cancellationToken);
    }

    public Task<CredentialRecord> RenewCredentialAsync(string keyId, DateTimeOffset leaseExpiresAt, CancellationToken cancellationToken = default) =>
        UpdateCredentialAsync(keyId, cancellationToken, cur =>
        {
            if (cur.Revoked)
            {
                throw StorageErrors.Conflict("credential", keyId, "is revoked; revocation is final");
            }

            return cur with { LeaseExpiresAt = DateTimeOffset.FromUnixTimeMilliseconds(leaseExpiresAt.ToUnixTimeMilliseconds()) };
        });

    public Task<CredentialRecord> RevokeCredentialAsync(string keyId, CancellationToken cancellationToken = default) =>
        UpdateCredentialAsync(keyId, cancellationToken, cur => cur.Revoked ? cur : cur with { Revoked = true, RevokedAt = SqlStore.FromMs(store.NowMs()) });

    public Task<bool> TryConsumeRequestNonceAsync(string keyId, string nonce, DateTimeOffset expiresAt, CancellationToken cancellationToken = default)
    {
        Validate.Text(keyId, nameof(keyId));
        Validate.Text(nonce, nameof(nonce));
        long now = store.NowMs();
        bool pruneAll = Interlocked.Increment(ref _nonceInserts) % 1024 == 0;
        return store.WriteAsync(async (c, tx) =>
        {
            // An expired row of this key id no longer blocks its nonce (the signature it protected cannot be accepted any more).
            using (DbCommand prune = SqlEngine.Command(c, tx, pruneAll ? "DELETE FROM request_nonces WHERE expires_at <= @now" : "DELETE FROM request_nonces WHERE key_id=@k AND expires_at <= @now"))
            {
                prune.Add("@k", keyId);
                prune.Add("@now", now);
                await prune.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            using DbCommand cmd = SqlEngine.Command(c, tx, "INSERT INTO request_nonces (key_id, nonce, expires_at) VALUES (@k, @n, @e) ON CONFLICT DO NOTHING");
            cmd.Add("@k", keyId);
            cmd.Add("@n", nonce);
            cmd.Add("@e", expiresAt.ToUnixTimeMilliseconds());
            return await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1;
        }, cancellationToken);
    }

    private async Task<CredentialRecord> UpdateCredentialAsync(string keyId, CancellationToken ct, Func<CredentialRecord, CredentialRecord> change)
    {
        Validate.Text(keyId, nameof(keyId));
        await store.WriteAsync(async (c, tx) =>
        {
            IReadOnlyList<CredentialRecord> found = await ReadCredentialsAsync(c, tx, "key_id", keyId, ct, forUpdate: true).ConfigureAwait(false);
            if (found.Count == 0)
            {
                throw StorageErrors.NotFound("credential", keyId);
            }

            CredentialRecord next = change(found[0]);
            long lease = next.LeaseExpiresAt.ToUnixTimeMilliseconds();
            long? revokedAt = next.RevokedAt?.ToUnixTimeMilliseconds();
            using SecretBuffer macKey = await MacKeyAsync(c, tx, "credential", keyId, ct).ConfigureAwait(false);
            using DbCommand cmd = SqlEngine.Command(c, tx, "UPDATE principal_credentials SET lease_expires_at=@lease, revoked=@r, revoked_at=@ra, mac=@mac WHERE key_id=@k");
            cmd.Add("@lease", lease);
            cmd.Add("@r", next.Revoked ? 1 : 0);
            cmd.Add("@ra", revokedAt).DbType = System.Data.DbType.Int64;
            cmd.Add("@mac", KeyRecordMac.Compute(macKey, PrincipalRecordMac.EncodeCredential(next.KeyId, next.PrincipalId, next.Algorithm, next.PublicKey, lease, next.Revoked, revokedAt)));
            cmd.Add("@k", keyId);
            await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            return true;
        }, ct).ConfigureAwait(false);
        return await GetCredentialAsync(keyId, ct).ConfigureAwait(false) ?? throw StorageErrors.NotFound("credential", keyId);
    }

    private async Task<SecretBuffer> MacKeyAsync(DbConnection c, DbTransaction? tx, string what, string id, CancellationToken ct) =>
        await store.KeyMacKeyAsync(c, tx, ct).ConfigureAwait(false) ?? throw StorageErrors.RecordIntegrity(what, id);

    private async Task<IReadOnlyList<PrincipalRecord>> ReadPrincipalsAsync(DbConnection c, DbTransaction? tx, string? id, CancellationToken ct, bool forUpdate = false)
    {
        string where = id is null ? " ORDER BY id" : " WHERE id=@id" + (forUpdate ? store.Engine.ForUpdate : "");
        var rows = new List<(PrincipalRecord Record, byte[]? Mac)>();
        using (DbCommand cmd = SqlEngine.Command(c, tx, $"SELECT {PrincipalRecordMac.PrincipalColumns}, mac FROM principals{where}"))
        {
            if (id is not null)
            {
                cmd.Add("@id", id);
            }

            using DbDataReader r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await r.ReadAsync(ct).ConfigureAwait(false))
            {
                string roles = r.GetString(2);
                rows.Add((new PrincipalRecord(r.GetString(0), r.GetString(1), roles.Length == 0 ? [] : roles.Split(','), r.GetString(3), Convert.ToInt64(r.GetValue(4), System.Globalization.CultureInfo.InvariantCulture) != 0,
                    SqlStore.FromMs(r.GetInt64(5)), SqlStore.FromMs(r.GetInt64(6))), r.GetBytesOrNull(7)));
            }
        }

        if (rows.Count == 0)
        {
            return [];
        }

        using SecretBuffer macKey = await MacKeyAsync(c, tx, "principal", rows[0].Record.Id, ct).ConfigureAwait(false);
        foreach (var (p, mac) in rows)
        {
            if (!KeyRecordMac.Matches(macKey, PrincipalRecordMac.EncodePrincipal(p.Id, p.Kind, string.Join(',', p.Roles), p.Scope, p.Disabled), mac))
            {
                throw StorageErrors.RecordIntegrity("principal", p.Id);
            }
        }

        return [.. rows.Select(x => x.Record)];
    }

    private async Task<IReadOnlyList<CredentialRecord>> ReadCredentialsAsync(DbConnection c, DbTransaction? tx, string column, string value, CancellationToken ct, bool forUpdate = false)
    {
        var rows = new List<(CredentialRecord Record, byte[]? Mac)>();
        using (DbCommand cmd = SqlEngine.Command(c, tx, $"SELECT {PrincipalRecordMac.CredentialColumns}, mac FROM principal_credentials WHERE {column}=@v ORDER BY key_id{(forUpdate ? store.Engine.ForUpdate : "")}"))
        {
            cmd.Add("@v", value);
            using DbDataReader r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await r.ReadAsync(ct).ConfigureAwait(false))
            {
                long? revokedAt = r.GetInt64OrNull(7);
                rows.Add((new CredentialRecord(r.GetString(0), r.GetString(1), r.GetString(2), (byte[])r.GetValue(3), SqlStore.FromMs(r.GetInt64(4)), SqlStore.FromMs(r.GetInt64(5)),
                    Convert.ToInt64(r.GetValue(6), System.Globalization.CultureInfo.InvariantCulture) != 0, revokedAt is { } ra ? SqlStore.FromMs(ra) : null), r.GetBytesOrNull(8)));
            }
        }

        if (rows.Count == 0)
        {
            return [];
        }

        using SecretBuffer macKey = await MacKeyAsync(c, tx, "credential", rows[0].Record.KeyId, ct).ConfigureAwait(false);
        foreach (var (k, mac) in rows)
        {
            byte[] encoded = PrincipalRecordMac.EncodeCredential(k.KeyId, k.PrincipalId, k.Algorithm, k.PublicKey, k.LeaseExpiresAt.ToUnixTimeMilliseconds(), k.Revoked, k.RevokedAt?.ToUnixTimeMilliseconds());
            if (!KeyRecordMac.Matches(macKey, encoded, mac))
            {
                throw StorageErrors.RecordIntegrity("credential", k.KeyId);
            }
        }

        return [.. rows.Select(x => x.Record)];
    }

    private static string RolesText(IReadOnlyList<string>? roles)
    {
        if (roles is null || roles.Count is 0 or > MaxRoles)
        {
            throw StorageErrors.Invalid("principal.Roles", $"1 to {MaxRoles} role names");
        }

        foreach (string role in roles)
        {
            Validate.Text(role, "principal.Roles");
            if (role.Contains(',', StringComparison.Ordinal))
            {
                throw StorageErrors.Invalid("principal.Roles", "a role name has no comma");
            }
        }

        return string.Join(',', roles.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal));
    }

    private static void ValidateScope(string? scope)
    {
        if (scope is null || scope.Length is 0 or > MaxScopeLength)
        {
            throw StorageErrors.Invalid("principal.Scope", $"1 to {MaxScopeLength} characters");
        }
    }
}
