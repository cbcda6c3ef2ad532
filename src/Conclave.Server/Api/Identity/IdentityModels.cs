using System.Text.Json;
using System.Text.Json.Serialization;

namespace Conclave.Server.Api.Identity;

/// <summary>The keys (ids, <c>*</c> for any), key labels and operations (names, <c>*</c> for any) a principal may ask for; an empty list means none.</summary>
public sealed record ScopeBody(List<string>? Keys = null, List<string>? Labels = null, List<string>? Operations = null);

/// <summary>POST /v1/principals.</summary>
public sealed record CreatePrincipalRequest(string? Id, string? Kind, List<string>? Roles = null, ScopeBody? Scope = null);

/// <summary>POST /v1/principals/{id}/credentials: the public key (base64 of the raw key, or of a DER SubjectPublicKeyInfo).</summary>
public sealed record AddCredentialRequest(string? Algorithm, string? PublicKey, string? KeyId = null, long? LeaseSeconds = null);

/// <summary>POST /v1/principals/{id}/credentials/{keyId}/renew (body optional).</summary>
public sealed record RenewCredentialRequest(long? LeaseSeconds = null);

/// <summary>A credential; <c>state</c> is active, lapsed (lease over) or revoked. The public key is base64 of the raw key.</summary>
public sealed record CredentialResponse(string KeyId, string PrincipalId, string Algorithm, string PublicKey, DateTimeOffset CreatedAt, DateTimeOffset LeaseExpiresAt,
    bool Revoked, DateTimeOffset? RevokedAt, string State);

public sealed record PrincipalResponse(string Id, string Kind, IReadOnlyList<string> Roles, ScopeBody Scope, bool Disabled, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt,
    IReadOnlyList<CredentialResponse> Credentials);

public sealed record PrincipalListResponse(IReadOnlyList<PrincipalResponse> Principals);

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, DefaultIgnoreCondition = JsonIgnoreCondition.Never, PropertyNameCaseInsensitive = false,
    NumberHandling = JsonNumberHandling.Strict, UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow, AllowDuplicateProperties = false)]
[JsonSerializable(typeof(ScopeBody))]
[JsonSerializable(typeof(CreatePrincipalRequest))]
[JsonSerializable(typeof(AddCredentialRequest))]
[JsonSerializable(typeof(RenewCredentialRequest))]
[JsonSerializable(typeof(CredentialResponse))]
[JsonSerializable(typeof(PrincipalResponse))]
[JsonSerializable(typeof(PrincipalListResponse))]
internal sealed partial class IdentityJsonContext : JsonSerializerContext;
