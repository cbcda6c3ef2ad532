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

/// <summary>
/// A key as the API shows it: public data only. For schnorr-bip340 and frost-taproot <c>publicKey</c> is the BIP-341
/// internal key P (x-only) and <c>outputKey</c> the BIP-86 output key Q = P + int(hash_TapTweak(x(P)))·G (x-only), the
/// witness program of <c>addresses.bitcoin</c> and the key signatures verify under; absent for other schemes.
/// </summary>
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
    DateTimeOffset CreatedAt,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? OutputKey = null);

public sealed record KeyListResponse(IReadOnlyList<KeyResponse> Keys);

public sealed record KeyVersionResponse(int Version, string PublicKey, DateTimeOffset CreatedAt);

public sealed record KeyVersionsResponse(string Name, IReadOnlyList<KeyVersionResponse> Versions);

/// <summary>
/// POST /v1/keys/{name}/sign: a message or a digest, optionally a non-hardened path to sign with that child key, and
/// for schnorr-bip340 only <c>untweaked: true</c> to sign plain BIP-340 under the internal key (not a taproot spend).
/// </summary>
/// <summary>
/// POST /v1/keys/{name}/sign. <c>operation</c> (optional) says what the request does for policy (docs/POLICY.md
/// "Enforcement"): <c>message</c> with <c>message</c>, <c>raw-digest</c> with <c>digest</c>; without it a digest is
/// <c>raw-digest</c> and a message is <c>message</c>.
/// </summary>
public sealed record SignRequest(string? Message = null, string? Digest = null, string? Path = null, bool? Untweaked = null, string? Operation = null);

/// <summary>An explained policy decision: <c>{"decision", "policyHash", "rules", "reasons"}</c>, and <c>shadow</c> beside it when shadow policies or rules exist.</summary>
public sealed record PolicyExplanation(
    string Decision,
    string PolicyHash,
    IReadOnlyList<string> Rules,
    IReadOnlyList<string> Reasons,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] PolicyExplanation? Shadow = null);

/// <summary>202 for a request held for approval: its id, where to poll, when it expires, and the decision.</summary>
public sealed record HeldResponse(string RequestId, string Status, string RequestHash, DateTimeOffset ExpiresAt, PolicyExplanation Policy);

/// <summary>
/// The signature. It verifies under <c>outputKey</c> when the response has one (schnorr-bip340 and frost-taproot:
/// the BIP-86 output key of the (child) key, a taproot key-path signature), else under <c>publicKey</c>.
/// <c>publicKey</c> is the (child) key as POST /derive reports it — for the taproot schemes the internal key.
/// </summary>
public sealed record SignResponse(
    string Signature,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? RecoveryId,
    string PublicKey,
    int KeyVersion,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Path = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? OutputKey = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] PolicyExplanation? Policy = null);

/// <summary>POST /v1/keys/{name}/sign/batch.</summary>
public sealed record SignBatchRequest(IReadOnlyList<SignRequest>? Items);

/// <summary>One batch item: a result or a problem.</summary>
public sealed record SignBatchItem(
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] SignResponse? Result,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] ProblemBody? Error);

public sealed record SignBatchResponse(IReadOnlyList<SignBatchItem> Results);

/// <summary>POST /v1/keys/{name}/derive.</summary>
public sealed record DeriveRequest(string? Path);

/// <summary>The child key; <c>outputKey</c> (taproot schemes only) as in <see cref="KeyResponse"/>.</summary>
public sealed record DeriveResponse(
    string Path,
    string PublicKey,
    KeyAddresses Addresses,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? OutputKey = null);

/// <summary>
/// A rotation run (DKG, refresh, reshare) as GET /v1/operations/{id} shows it; refresh and reshare answer 202 with it
/// when the run outlives the request. <c>key</c> is present once the run committed.
/// </summary>
public sealed record OperationResponse(string Id, string Kind, string KeyId, string State, int FromVersion, int ToVersion, string? Error,
    DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt, KeyResponse? Key);

/// <summary>POST /v1/keys/{name}/reshare.</summary>
public sealed record ReshareRequest(int? Threshold, int? Participants);

/// <summary>POST /v1/keys/{name}/repair: the signer node whose lost share is rebuilt.</summary>
public sealed record RepairRequest(int? Node);

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

/// <summary>POST /v1/admin/audit/rotate-key: the handover entry's seq, the scheme, and the outgoing and new checkpoint keys (hex).</summary>
public sealed record AuditKeyRotationResponse(long Seq, string Scheme, string OldPublicKey, string NewPublicKey);

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

/// <summary>
/// GET /readyz: ready when the store answers, a quorum of nodes attests and every threshold key (registered, or active
/// in the store: KeyService.KeysBelowQuorumAsync) can reach its own quorum; <c>keysBelowQuorum</c> names (by id) the
/// keys whose holders that are up are fewer than their threshold. <c>keysOutOfSync</c> names the keys the server store and the nodes disagree about (docs/OPERATIONS.md
/// "Restoring the server"); the server is not ready until every key was checked once after start.
/// </summary>
public sealed record ReadyResponse(bool Ready, bool StoreOpen, IReadOnlyList<uint> NodesUp, int Threshold, IReadOnlyList<string>? KeysBelowQuorum = null,
    IReadOnlyList<KeyOutOfSyncResponse>? KeysOutOfSync = null, bool KeysChecked = true);

/// <summary>A key the server store and the signer nodes disagree about, and how.</summary>
public sealed record KeyOutOfSyncResponse(string Id, string Name, string Problem);

/// <summary>POST /v1/cluster/resync: the consistency check of every active threshold key against the signer nodes.</summary>
public sealed record KeySyncResponse(IReadOnlyList<KeySyncReport> Keys);

/// <summary>RFC 9457 problem details as written by the server (application/problem+json).</summary>
public sealed record ProblemBody(
    string Type,
    string Title,
    int Status,
    string Detail,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<uint>? Culprits = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<CulpritReasonResponse>? CulpritReasons = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] PolicyExplanation? Policy = null);

/// <summary>A culprit the coordinator proved, and why (<c>invalid-dkg-share</c>, <c>false-complaint</c>), in a 502 node-misbehaved problem.</summary>
public sealed record CulpritReasonResponse(uint Node, string Reason);

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
[JsonSerializable(typeof(RepairRequest))]
[JsonSerializable(typeof(OperationResponse))]
[JsonSerializable(typeof(AuditPageResponse))]
[JsonSerializable(typeof(AuditVerifyResponse))]
[JsonSerializable(typeof(AuditKeyRotationResponse))]
[JsonSerializable(typeof(HealthResponse))]
[JsonSerializable(typeof(ReadyResponse))]
[JsonSerializable(typeof(KeySyncResponse))]
[JsonSerializable(typeof(ProblemBody))]
[JsonSerializable(typeof(HeldResponse))]
[JsonSerializable(typeof(PolicyExplanation))]
[JsonSerializable(typeof(EvictNodeRequest))]
[JsonSerializable(typeof(NodeResponse))]
[JsonSerializable(typeof(NodeListResponse))]
[JsonSerializable(typeof(EvictionResponse))]
[JsonSerializable(typeof(RotationScheduleRequest))]
[JsonSerializable(typeof(RotationScheduleResponse))]
[JsonSerializable(typeof(RotationDemandRequest))]
[JsonSerializable(typeof(Conclave.Server.Risk.RiskResponse))]
[JsonSerializable(typeof(Conclave.Server.Risk.SetRiskRequest))]
[JsonSerializable(typeof(Conclave.Server.Risk.RiskPricesRequest))]
[JsonSerializable(typeof(Conclave.Server.Risk.LockdownVoteResponse))]
internal sealed partial class ApiJsonContext : JsonSerializerContext;
