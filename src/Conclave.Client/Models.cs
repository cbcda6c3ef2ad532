using System.Text.Json;
using System.Text.Json.Serialization;

namespace Conclave.Client;

public sealed record CreateKeyRequest(string Name, string Scheme, int? Threshold = null, int? Participants = null, IReadOnlyDictionary<string, string>? Labels = null);

public sealed record KeyAddresses(string? Ethereum = null, string? Bitcoin = null, string? Solana = null);

/// <summary>
/// A rotation run (key generation, refresh, reshare) as GET /v1/operations/{id} shows it. State: started, prepared,
/// committed, retired (finished) or aborted (finished, nothing changed). <see cref="Key"/> is set once committed.
/// </summary>
public sealed record Operation(string Id, string Kind, string KeyId, string State, int FromVersion, int ToVersion, string? Error,
    DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt, KeyInfo? Key);

/// <summary>A key. <see cref="OutputKey"/> (schnorr-bip340, frost-taproot): the BIP-86 output key of the internal key <see cref="PublicKey"/>.</summary>
public sealed record KeyInfo(string Id, string Name, string Scheme, string PublicKey, int Threshold, int Participants, int Version, string State,
    IReadOnlyDictionary<string, string> Labels, KeyAddresses Addresses, DateTimeOffset CreatedAt, string? OutputKey = null);

public sealed record KeyList(IReadOnlyList<KeyInfo> Keys);

public sealed record KeyVersion(int Version, string PublicKey, DateTimeOffset CreatedAt);

public sealed record KeyVersions(string Name, IReadOnlyList<KeyVersion> Versions);

/// <summary>One of Message (hex) or Digest (hex, 32 bytes), as the key's scheme requires; Untweaked (schnorr-bip340 only): plain BIP-340 under the internal key.</summary>
public sealed record SignRequest(string? Message = null, string? Digest = null, string? Path = null, bool? Untweaked = null);

/// <summary>A signature: it verifies under <see cref="OutputKey"/> when present (taproot key path), else under <see cref="PublicKey"/>.</summary>
public sealed record SignResult(string Signature, int? RecoveryId, string PublicKey, int KeyVersion, string? Path = null, string? OutputKey = null);

/// <summary>A request the server's policy holds for approval (HTTP 202 from a sign route): <c>GET /v1/requests/{id}</c> follows it.</summary>
public sealed record HeldRequest(string RequestId, string Status, string RequestHash, DateTimeOffset ExpiresAt);

/// <summary>
/// A held request as <c>GET /v1/requests/{id}</c> shows it: status pending, approved, rejected, executed, failed or
/// expired; once executed, <see cref="Result"/> is the sign route's answer (or <c>{"error"}</c> when signing after the
/// approval failed).
/// </summary>
public sealed record RequestStatus(string RequestId, string Status, string? KeyId, string? Operation, string? Requester, string RequestHash, string? PolicyHash,
    DateTimeOffset CreatedAt, DateTimeOffset ExpiresAt, System.Text.Json.JsonElement? Result = null);

/// <summary>POST /v1/keys/{name}/sign/batch: 1 to <see cref="MaxItems"/> sign requests, each decided by policy on its own.</summary>
public sealed record SignBatchRequest(IReadOnlyList<SignRequest> Items)
{
    /// <summary>The most items the server takes in one batch (more, or none, is a 400 invalid-request).</summary>
    public const int MaxItems = 256;
}

public sealed record SignBatchItem(SignResult? Result, Problem? Error);

public sealed record SignBatchResult(IReadOnlyList<SignBatchItem> Results);

public sealed record DeriveRequest(string Path);

public sealed record DeriveResult(string Path, string PublicKey, KeyAddresses Addresses, string? OutputKey = null);

public sealed record ReshareRequest(int Threshold, int Participants);

/// <summary>POST /v1/keys/{name}/repair: the signer node whose lost share is rebuilt.</summary>
public sealed record RepairRequest(int Node);

public sealed record AuditEntry(long Seq, DateTimeOffset Time, string Actor, string Action, string? KeyId, string? RequestHash, string Decision, string Result, string Hash);

public sealed record AuditPage(IReadOnlyList<AuditEntry> Entries, long Next);

public sealed record AuditVerification(bool Ok, long Entries, long Checkpoints, long? FirstBad, string Kind, string Detail, long HeadSeq, string HeadHash);

/// <summary>POST /v1/admin/audit/rotate-key: the handover entry's seq, the scheme, the outgoing and the new checkpoint key (hex).</summary>
public sealed record AuditKeyRotation(long Seq, string Scheme, string OldPublicKey, string NewPublicKey);

public sealed record ReadyStatus(bool Ready, bool StoreOpen, IReadOnlyList<uint> NodesUp, int Threshold);

/// <summary>POST /v1/admin/nodes/{id}/evict: an optional replacement node and reason.</summary>
public sealed record EvictNodeRequest(uint? Replacement = null, string? Reason = null);

/// <summary>A signer node: trust ("trusted" or "untrusted") and the keys whose committee includes it.</summary>
public sealed record NodeInfo(uint Id, string Trust, IReadOnlyList<string> Keys, string? Reason = null, uint? Replacement = null, DateTimeOffset? Since = null);

public sealed record NodeList(IReadOnlyList<NodeInfo> Nodes);

/// <summary>The node after an eviction, the keys moved off it, and whether no key holds it any more.</summary>
public sealed record Eviction(NodeInfo Node, IReadOnlyList<KeyInfo> Moved, bool Finished);
/// <summary>What one signer node said about a key in a consistency check: state (active, pending, destroyed, absent, unreachable, refused, invalid) and version.</summary>
public sealed record KeySyncNode(uint Node, string State, int Version, string? Detail);

/// <summary>
/// One key checked against the signer nodes (POST /v1/cluster/resync): State is consistent, resynchronised, out-of-sync or
/// unchecked; Problem says what is wrong; Blocking keys are refused for signing and rotation.
/// </summary>
public sealed record KeySyncReport(string KeyId, string Name, string State, int StoreVersion, int? NodeVersion, string? Problem, IReadOnlyList<KeySyncNode> Nodes, bool Blocking);

public sealed record KeySyncResult(IReadOnlyList<KeySyncReport> Keys);

/// <summary>PUT /v1/keys/{name}/rotation-schedule.</summary>
public sealed record RotationScheduleRequest(long? IntervalSeconds = null, long? AfterSignatures = null);

/// <summary>A key's continuous-rotation schedule and its state.</summary>
public sealed record RotationSchedule(string Key, long? IntervalSeconds, long? AfterSignatures, long Signatures, DateTimeOffset? LastRotation, DateTimeOffset? NextDue,
    long Failures, long TotalFailures, string? LastError, string? DemandReason);

/// <summary>PUT /v1/risk: the manual risk level (a floor) and why.</summary>
public sealed record RiskSetRequest(string Level, string? Reason = null);

/// <summary>The risk level in force (GET /v1/risk): why, since when, when it may fall, its inputs, the lockdown-exit votes.</summary>
public sealed record RiskStatus(string Level, DateTimeOffset Since, IReadOnlyList<string> Reasons, DateTimeOffset LastDemandedAt, DateTimeOffset? CanFallAfter,
    long CoolDownSeconds, RiskInputs Inputs, RiskLockdownExit LockdownExit);

public sealed record RiskInputs(RiskManual Manual, IReadOnlyList<RiskPriceSource> Prices, int ThreatEvents, int CulpritNodes, string Demanded, IReadOnlyList<string> DemandedReasons);

public sealed record RiskManual(string Level, string? By, string? Reason, DateTimeOffset? At);

public sealed record RiskPriceSource(string Source, double? Volatility, int Samples, DateTimeOffset? LatestAt, bool Stale);

public sealed record RiskLockdownExit(IReadOnlyList<string> Votes, int Needed, IReadOnlyList<string> Approvers);

/// <summary>What a vote to leave lockdown did (left, recorded, waiting-cool-down, still-demanded) and the level after it.</summary>
public sealed record RiskLockdownVote(string Outcome, RiskStatus Risk);

/// <summary>RFC 9457 problem details returned by the server.</summary>
public sealed record Problem(string Type, string Title, int Status, string Detail, IReadOnlyList<uint>? Culprits = null);

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(CreateKeyRequest))]
[JsonSerializable(typeof(KeyInfo))]
[JsonSerializable(typeof(Operation))]
[JsonSerializable(typeof(KeyList))]
[JsonSerializable(typeof(KeyVersions))]
[JsonSerializable(typeof(SignRequest))]
[JsonSerializable(typeof(SignResult))]
[JsonSerializable(typeof(HeldRequest))]
[JsonSerializable(typeof(RequestStatus))]
[JsonSerializable(typeof(SignBatchRequest))]
[JsonSerializable(typeof(SignBatchResult))]
[JsonSerializable(typeof(DeriveRequest))]
[JsonSerializable(typeof(DeriveResult))]
[JsonSerializable(typeof(ReshareRequest))]
[JsonSerializable(typeof(RepairRequest))]
[JsonSerializable(typeof(EvictNodeRequest))]
[JsonSerializable(typeof(NodeInfo))]
[JsonSerializable(typeof(NodeList))]
[JsonSerializable(typeof(Eviction))]
[JsonSerializable(typeof(RotationScheduleRequest))]
[JsonSerializable(typeof(RotationSchedule))]
[JsonSerializable(typeof(AuditPage))]
[JsonSerializable(typeof(AuditVerification))]
[JsonSerializable(typeof(AuditKeyRotation))]
[JsonSerializable(typeof(ReadyStatus))]
[JsonSerializable(typeof(KeySyncResult))]
[JsonSerializable(typeof(RiskSetRequest))]
[JsonSerializable(typeof(RiskStatus))]
[JsonSerializable(typeof(RiskLockdownVote))]
[JsonSerializable(typeof(Problem))]
internal sealed partial class ClientJsonContext : JsonSerializerContext;
