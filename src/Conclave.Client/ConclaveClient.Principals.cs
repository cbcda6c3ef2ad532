using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Serialization;
using Conclave.Policy.HttpSignatures;

namespace Conclave.Client;

/// <summary>The keys (ids, <c>*</c> for any), key labels and operations (<c>*</c> for any) a principal may ask for.</summary>
public sealed record ScopeInfo(IReadOnlyList<string>? Keys = null, IReadOnlyList<string>? Labels = null, IReadOnlyList<string>? Operations = null);

/// <summary>POST /v1/principals.</summary>
public sealed record CreatePrincipalRequest(string Id, string Kind, IReadOnlyList<string>? Roles = null, ScopeInfo? Scope = null);

/// <summary>POST /v1/principals/{id}/credentials: algorithm <c>ed25519</c> or <c>ecdsa-p256-sha256</c>, the public key in base64.</summary>
public sealed record AddCredentialRequest(string Algorithm, string PublicKey, string? KeyId = null, long? LeaseSeconds = null);

/// <summary>POST /v1/principals/{id}/credentials/{keyId}/renew.</summary>
public sealed record RenewCredentialRequest(long? LeaseSeconds = null);

/// <summary>A credential; State is active, lapsed or revoked.</summary>
public sealed record CredentialInfo(string KeyId, string PrincipalId, string Algorithm, string PublicKey, DateTimeOffset CreatedAt, DateTimeOffset LeaseExpiresAt,
    bool Revoked, DateTimeOffset? RevokedAt, string State);

public sealed record PrincipalInfo(string Id, string Kind, IReadOnlyList<string> Roles, ScopeInfo Scope, bool Disabled, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt,
    IReadOnlyList<CredentialInfo> Credentials);

public sealed record PrincipalList(IReadOnlyList<PrincipalInfo> Principals);

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(CreatePrincipalRequest))]
[JsonSerializable(typeof(AddCredentialRequest))]
[JsonSerializable(typeof(RenewCredentialRequest))]
[JsonSerializable(typeof(CredentialInfo))]
[JsonSerializable(typeof(PrincipalInfo))]
[JsonSerializable(typeof(PrincipalList))]
internal sealed partial class PrincipalJsonContext : JsonSerializerContext;

/// <summary>Principals and credentials (docs/API.md "Principals and credentials"), and clients that sign as an agent.</summary>
public sealed partial class ConclaveClient
{
    private static PrincipalJsonContext P => PrincipalJsonContext.Default;

    /// <summary>
    /// A client that signs every request as the principal holding <paramref name="key"/> under <paramref name="keyId"/>
    /// (<see cref="AgentSigningHandler"/>); no token is sent. The key stays the caller's.
    /// </summary>
    public static ConclaveClient ForAgent(Uri baseAddress, HttpSigningKey key, string keyId, TimeSpan? timeout = null, HttpMessageHandler? innerHandler = null)
    {
        ArgumentNullException.ThrowIfNull(baseAddress);
        var handler = new AgentSigningHandler(key, keyId) { InnerHandler = innerHandler ?? new SocketsHttpHandler() };
        return new ConclaveClient(new HttpClient(handler) { BaseAddress = baseAddress, Timeout = timeout ?? TimeSpan.FromSeconds(100) }, ownsHttpClient: true);
    }

    /// <summary>
    /// A client that signs every request as the principal holding <paramref name="key"/> under <paramref name="keyId"/>
    /// (<see cref="AgentSigningHandler"/>) and takes the key: disposing the client disposes it. With
    /// <paramref name="trustedRoot"/>, an HTTPS server's certificate must chain to that root rather than to the system's
    /// roots (the host name must still match). For a caller that holds the key only as long as the client, such as the CLI.
    /// </summary>
    public static ConclaveClient ForAgentOwningKey(Uri baseAddress, HttpSigningKey key, string keyId,
        System.Security.Cryptography.X509Certificates.X509Certificate2? trustedRoot = null, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(key);
        ConclaveClient client = ForAgent(baseAddress, key, keyId, timeout, trustedRoot is null ? null : TrustingHandler(trustedRoot));
        client._ownedKey = key;
        return client;
    }

    public Task<PrincipalInfo> CreatePrincipalAsync(CreatePrincipalRequest request, CancellationToken ct = default) =>
        PostAsync("v1/principals", request, P.CreatePrincipalRequest, P.PrincipalInfo, ct);

    public async Task<IReadOnlyList<PrincipalInfo>> ListPrincipalsAsync(CancellationToken ct = default) => (await GetAsync("v1/principals", P.PrincipalList, ct).ConfigureAwait(false)).Principals;

    public Task<PrincipalInfo> GetPrincipalAsync(string id, CancellationToken ct = default) => GetAsync($"v1/principals/{Esc(id)}", P.PrincipalInfo, ct);

    public async Task<PrincipalInfo> SetPrincipalDisabledAsync(string id, bool disabled, CancellationToken ct = default)
    {
        using HttpResponseMessage r = await _http.PostAsync(new Uri($"v1/principals/{Esc(id)}/{(disabled ? "disable" : "enable")}", UriKind.Relative), null, ct).ConfigureAwait(false);
        return await ReadAsync(r, P.PrincipalInfo, ct).ConfigureAwait(false);
    }

    public Task<CredentialInfo> AddCredentialAsync(string principalId, AddCredentialRequest request, CancellationToken ct = default) =>
        PostAsync($"v1/principals/{Esc(principalId)}/credentials", request, P.AddCredentialRequest, P.CredentialInfo, ct);

    /// <summary>Renews a credential's lease (an admin, or the principal itself).</summary>
    public Task<CredentialInfo> RenewCredentialAsync(string principalId, string keyId, long? leaseSeconds = null, CancellationToken ct = default) =>
        PostAsync($"v1/principals/{Esc(principalId)}/credentials/{Esc(keyId)}/renew", new RenewCredentialRequest(leaseSeconds), P.RenewCredentialRequest, P.CredentialInfo, ct);

    /// <summary>Revokes a credential for good (an admin, or the principal itself).</summary>
    public async Task<CredentialInfo> RevokeCredentialAsync(string principalId, string keyId, CancellationToken ct = default)
    {
        using HttpResponseMessage r = await _http.PostAsync(new Uri($"v1/principals/{Esc(principalId)}/credentials/{Esc(keyId)}/revoke", UriKind.Relative), null, ct).ConfigureAwait(false);
        return await ReadAsync(r, P.CredentialInfo, ct).ConfigureAwait(false);
    }
}
