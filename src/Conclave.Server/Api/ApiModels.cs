using System.Text.Json;
using System.Text.Json.Serialization;

namespace Conclave.Server.Api;

/// <summary>POST /v1/keys.</summary>
public sealed record CreateKeyRequest(string? Name, string? Scheme, int? Threshold = null, int? Participants = null, Dictionary<string, string>? Labels = null);

/// <summary>Addresses of a key on the chains its scheme can sign for (absent when not applicable).</summary>
public sealed record KeyAddresses(
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Ethereum = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Bitcoin = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Solana = null);

/// <summary>A key as the API shows it: public data only.</summary>
public sealed record KeyResponse(
    string Id,
    string Name,
    string Scheme,
    string PublicKey,
    int Threshold,
    int Participants,
    int Version,
    string State,
    IReadOnlyDictionary<string, string> Labels,
    KeyAddresses Addresses,
    DateTimeOffset CreatedAt);

public sealed record KeyListResponse(IReadOnlyList<KeyResponse> Keys);

public sealed record KeyVersionResponse(int Version, string PublicKey, DateTimeOffset CreatedAt);

public sealed record KeyVersionsResponse(string Name, IReadOnlyList<KeyVersionResponse> Versions);

/// <summary>POST /v1/keys/{name}/sign: exactly one of message (hex) or digest (hex, 32 bytes).</summary>
/// <summary>POST /v1/keys/{name}/sign: a message or a digest, and optionally a non-hardened path to sign with that child key.</summary>
public sealed record SignRequest(string? Message = null, string? Digest = null, string? Path = null);

/// <summary>The signature; <c>publicKey</c> is the key that verifies it (the child's when a path was given).</summary>
public sealed record SignResponse(
    string Signature,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? RecoveryId,
    string PublicKey,
    int KeyVersion,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Path = null);

/// <summary>POST /v1/keys/{name}/sign/batch.</summary>
public sealed record SignBatchRequest(IReadOnlyList<SignRequest>? Items);

/// <summary>One batch item: a result or a problem.</summary>
public sealed record SignBatchItem(
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] SignResponse? Result,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] ProblemBody? Error);

public sealed record SignBatchResponse(IReadOnlyList<SignBatchItem> Results);

/// <summary>POST /v1/keys/{name}/derive.</summary>
public sealed record DeriveRequest(string? Path);

public sealed record DeriveResponse(string Path, string PublicKey, KeyAddresses Addresses);

/// <summary>POST /v1/keys/{name}/reshare.</summary>
public sealed record ReshareRequest(int? Threshold, int? Participants);

public sealed record AuditEntryResponse(
    long Seq,
    DateTimeOffset Time,
    string Actor,
    string Action,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? KeyId,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? RequestHash,
    string Decision,
    string Result,
    string Hash);

public sealed record AuditPageResponse(IReadOnlyList<AuditEntryResponse> Entries, long Next);

public sealed record AuditVerifyResponse(
    bool Ok,
    long Entries,
    long Checkpoints,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] long? FirstBad,
    string Kind,
    string Detail,
    long HeadSeq,
    string HeadHash);

public sealed record HealthResponse(string Status);

public sealed record ReadyResponse(bool Ready, bool StoreOpen, IReadOnlyList<uint> NodesUp, int Threshold);

/// <summary>RFC 9457 problem details as written by the server (application/problem+json).</summary>
public sealed record ProblemBody(
    string Type,
    string Title,
    int Status,
    string Detail,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<uint>? Culprits = null);

/// <summary>
/// The API's JSON contract. Request bodies are strict (docs/API.md "Request bodies"): property names are matched
/// exactly (camelCase), an unknown property, a property given twice or a value of the wrong type (a number as a
/// string, a fraction or an out-of-range integer where an integer is expected) is a 400 problem naming the field.
/// </summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, DefaultIgnoreCondition = JsonIgnoreCondition.Never, PropertyNameCaseInsensitive = false,
    NumberHandling = JsonNumberHandling.Strict, UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow, AllowDuplicateProperties = false)]
[JsonSerializable(typeof(CreateKeyRequest))]
[JsonSerializable(typeof(KeyResponse))]
[JsonSerializable(typeof(KeyListResponse))]
[JsonSerializable(typeof(KeyVersionsResponse))]
[JsonSerializable(typeof(SignRequest))]
[JsonSerializable(typeof(SignResponse))]
[JsonSerializable(typeof(SignBatchRequest))]
[JsonSerializable(typeof(SignBatchResponse))]
[JsonSerializable(typeof(DeriveRequest))]
[JsonSerializable(typeof(DeriveResponse))]
[JsonSerializable(typeof(ReshareRequest))]
[JsonSerializable(typeof(AuditPageResponse))]
[JsonSerializable(typeof(AuditVerifyResponse))]
[JsonSerializable(typeof(HealthResponse))]
[JsonSerializable(typeof(ReadyResponse))]
[JsonSerializable(typeof(ProblemBody))]
internal sealed partial class ApiJsonContext : JsonSerializerContext;
