namespace Conclave.Storage.Principals;

/// <summary>
/// A principal as stored (issue 16 "Identities and authentication"): a person or an agent, its role names, its scope
/// (a JSON document the server writes and reads; the store keeps it as text and covers it with the record MAC) and
/// whether it is disabled. The store does not interpret kinds, roles or scopes; the server (Conclave.Policy) does.
/// </summary>
public sealed record PrincipalRecord(string Id, string Kind, IReadOnlyList<string> Roles, string Scope, bool Disabled, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt);

/// <summary>A principal to create.</summary>
public sealed record NewPrincipal(string Id, string Kind, IReadOnlyList<string> Roles, string Scope);

/// <summary>
/// A credential of a principal: a public key (algorithm name and raw key bytes) under a key id that requests name in
/// their signature's <c>keyid</c>, with a lease that lapses unless renewed and a revoked flag that is final.
/// </summary>
public sealed record CredentialRecord(string KeyId, string PrincipalId, string Algorithm, byte[] PublicKey, DateTimeOffset CreatedAt, DateTimeOffset LeaseExpiresAt,
    bool Revoked, DateTimeOffset? RevokedAt)
{
    /// <summary>True when the credential may authenticate a request at <paramref name="now"/>: not revoked and its lease not lapsed.</summary>
    public bool IsActiveAt(DateTimeOffset now) => !Revoked && now < LeaseExpiresAt;
}

/// <summary>A credential to register.</summary>
public sealed record NewCredential(string KeyId, string PrincipalId, string Algorithm, byte[] PublicKey, DateTimeOffset LeaseExpiresAt);

/// <summary>
/// Principals and their credentials, shared by every server replica on the store, and the nonces of signed requests.
/// Every principal and credential row carries an HMAC-SHA256 under the store's record MAC key (like key records,
/// docs/STORAGE.md): a row changed outside Conclave — a role added, a scope widened, a revoked credential revived, a
/// lease extended, a public key swapped — is refused with <see cref="StorageErrorKind.IntegrityCheckFailed"/>. Writes
/// need the KEK (the MAC key is sealed under it).
/// </summary>
public interface IPrincipalStore
{
    /// <summary>Creates a principal; <see cref="StorageErrorKind.Duplicate"/> when the id exists.</summary>
    Task<PrincipalRecord> CreateAsync(NewPrincipal principal, CancellationToken cancellationToken = default);

    /// <summary>The principal, integrity-checked, or null.</summary>
    Task<PrincipalRecord?> GetAsync(string id, CancellationToken cancellationToken = default);

    /// <summary>Every principal by id, integrity-checked.</summary>
    Task<IReadOnlyList<PrincipalRecord>> ListAsync(CancellationToken cancellationToken = default);

    /// <summary>Disables or re-enables a principal (a disabled principal's credentials authenticate nothing). NotFound when absent.</summary>
    Task<PrincipalRecord> SetDisabledAsync(string id, bool disabled, CancellationToken cancellationToken = default);

    /// <summary>Registers a credential for an existing principal. Duplicate when the key id is taken (by anyone, ever); NotFound without the principal.</summary>
    Task<CredentialRecord> AddCredentialAsync(NewCredential credential, CancellationToken cancellationToken = default);

    /// <summary>The credential with this key id, integrity-checked, or null.</summary>
    Task<CredentialRecord?> GetCredentialAsync(string keyId, CancellationToken cancellationToken = default);

    /// <summary>A principal's credentials by key id, integrity-checked.</summary>
    Task<IReadOnlyList<CredentialRecord>> ListCredentialsAsync(string principalId, CancellationToken cancellationToken = default);

    /// <summary>Sets a new lease end. NotFound when absent; <see cref="StorageErrorKind.Conflict"/> when revoked (revocation is final).</summary>
    Task<CredentialRecord> RenewCredentialAsync(string keyId, DateTimeOffset leaseExpiresAt, CancellationToken cancellationToken = default);

    /// <summary>Revokes a credential for good; revoking again keeps the first time. NotFound when absent.</summary>
    Task<CredentialRecord> RevokeCredentialAsync(string keyId, CancellationToken cancellationToken = default);

    /// <summary>
    /// Remembers the nonce of an accepted signed request until <paramref name="expiresAt"/>: true the first time, false
    /// when the same key id and nonce are already remembered (a replay), across every process sharing the store (a
    /// unique row per key id and nonce). Expired nonces are forgotten.
    /// </summary>
    Task<bool> TryConsumeRequestNonceAsync(string keyId, string nonce, DateTimeOffset expiresAt, CancellationToken cancellationToken = default);
}
