using System.Text.Json;
using Conclave.Crypto;
using Conclave.Server.Coordinator;
using Conclave.Storage;
using Microsoft.AspNetCore.Http;

namespace Conclave.Server.Api;

/// <summary>
/// The problem types of the API (RFC 9457). Each error has a stable <c>type</c> URI under
/// https://conclave.dev/problems/; docs/API.md lists them. Every error the server produces goes through
/// <see cref="FromException"/>: one mapping from exceptions to problems, so no handler writes its own.
/// </summary>
public static class ProblemTypes
{
    public const string Base = "https://conclave.dev/problems/";
    public const string InvalidRequest = Base + "invalid-request";
    public const string MalformedJson = Base + "malformed-json";
    public const string BadHex = Base + "bad-hex";
    public const string UnknownKey = Base + "unknown-key";
    public const string UnknownScheme = Base + "unknown-scheme";
    public const string KeyExists = Base + "key-exists";
    public const string KeyNotActive = Base + "key-not-active";
    public const string WrongInput = Base + "wrong-input-kind";
    public const string HardenedPath = Base + "hardened-path";
    public const string NotThreshold = Base + "not-threshold-key";
    public const string Unsupported = Base + "unsupported";
    public const string NotImplemented = Base + "not-implemented";
    public const string Unauthorized = Base + "unauthorized";
    public const string NotFound = Base + "not-found";
    public const string MethodNotAllowed = Base + "method-not-allowed";
    public const string HeadersTooLarge = Base + "headers-too-large";
    public const string BodyTooLarge = Base + "body-too-large";
    public const string RateLimited = Base + "rate-limited";
    public const string Timeout = Base + "timeout";
    public const string NodeMisbehaved = Base + "node-misbehaved";
    public const string QuorumUnavailable = Base + "quorum-unavailable";
    public const string StoreConflict = Base + "conflict";
    public const string RotationInProgress = Base + "rotation-in-progress";
    public const string KeyIntegrity = Base + "key-integrity";
    public const string NodeUntrusted = Base + "node-untrusted";
    public const string EvictionRefused = Base + "eviction-refused";
    public const string KeyOutOfSync = Base + "key-out-of-sync";
    public const string HsmUnavailable = Base + "hsm-unavailable";
    public const string PolicyDenied = Base + "policy-denied";
    public const string VoteRefused = Base + "vote-refused";
    public const string InvalidPolicy = Base + "invalid-policy";
    public const string PolicyVersion = Base + "policy-version";
    public const string PolicyChangeRefused = Base + "policy-change-refused";
    public const string InvalidVenueProfile = Base + "invalid-venue-profile";
    public const string VenueProfileUnchanged = Base + "venue-profile-unchanged";
    public const string UnknownChain = Base + "unknown-chain";
    public const string ChainRefused = Base + "chain-refused";
    public const string UpstreamUnavailable = Base + "upstream-unavailable";
    public const string Internal = Base + "internal";
    public const string Forbidden = Base + "forbidden";
    public const string UnknownPrincipal = Base + "unknown-principal";
    public const string PrincipalExists = Base + "principal-exists";
    public const string CredentialExists = Base + "credential-exists";
    public const string CredentialRevoked = Base + "credential-revoked";
    public const string NotInLockdown = Base + "not-in-lockdown";
    public const string AlreadyVoted = Base + "already-voted";
    public const string UnknownSafe = Base + "unknown-safe";
    public const string SafeExists = Base + "safe-exists";
    public const string SafeMismatch = Base + "safe-mismatch";
    public const string SafeContractsUnknown = Base + "safe-contracts-unknown";
    public const string TransactionNotPending = Base + "transaction-not-pending";

    /// <summary>Every type the server can return, with its HTTP status and title.</summary>
    public static IReadOnlyList<(string Type, int Status, string Title)> All { get; } =
    [
        (InvalidRequest, 400, "Invalid request"),
        (MalformedJson, 400, "Malformed JSON"),
        (BadHex, 400, "Bad hex"),
        (UnknownScheme, 400, "Unknown scheme"),
        (WrongInput, 400, "Wrong input for this scheme"),
        (HardenedPath, 400, "Hardened derivation is not possible from a public key"),
        (NotThreshold, 400, "Not a threshold key"),
        (Unsupported, 400, "Not supported for this key"),
        (Unauthorized, 401, "Unauthorized"),
        (Forbidden, 403, "Forbidden"),
        (UnknownPrincipal, 404, "Unknown principal"),
        (PrincipalExists, 409, "Principal exists"),
        (CredentialExists, 409, "Credential exists"),
        (CredentialRevoked, 409, "Credential revoked"),
        (InvalidPolicy, 400, "Invalid policy document or policy request"),
        (UnknownChain, 400, "No upstream for this chain"),
        (SafeContractsUnknown, 400, "No Safe singleton or proxy factory for this chain"),
        (PolicyDenied, 403, "Denied by policy"),
        (VoteRefused, 409, "The vote was refused"),
        (PolicyVersion, 409, "The policy version is not newer than the stored one"),
        (PolicyChangeRefused, 409, "The policy change cannot be held for approval"),
        (InvalidVenueProfile, 400, "Invalid venue profile"),
        (VenueProfileUnchanged, 409, "The venue profile is already the one in force"),
        (UnknownKey, 404, "Unknown key"),
        (NotFound, 404, "Not found"),
        (MethodNotAllowed, 405, "Method not allowed"),
        (KeyExists, 409, "Key exists"),
        (KeyNotActive, 409, "Key not active"),
        (StoreConflict, 409, "Conflict"),
        (RotationInProgress, 409, "A rotation of this key is already running"),
        (NodeUntrusted, 409, "The operation would include an evicted signer node"),
        (EvictionRefused, 409, "The node cannot be evicted as asked"),
        (NotInLockdown, 409, "The risk level is not lockdown"),
        (AlreadyVoted, 409, "This approver already voted"),
        (UnknownSafe, 404, "Unknown Safe"),
        (SafeExists, 409, "Safe already registered"),
        (SafeMismatch, 409, "The Safe on chain does not have these owners or this threshold"),
        (TransactionNotPending, 409, "The transaction to replace is not pending"),
        (BodyTooLarge, 413, "Request body too large"),
        (ChainRefused, 422, "The chain's node refused the transaction or call"),
        (RateLimited, 429, "Too many requests"),
        (HeadersTooLarge, 431, "Request headers too large"),
        (Internal, 500, "Internal error"),
        (KeyIntegrity, 500, "Key record failed its integrity check"),
        (NotImplemented, 501, "Not implemented"),
        (NodeMisbehaved, 502, "A signer node misbehaved"),
        (UpstreamUnavailable, 502, "The chain's node did not answer"),
        (QuorumUnavailable, 503, "No quorum of signer nodes"),
        (HsmUnavailable, 503, "The HSM token could not do this"),
        (KeyOutOfSync, 503, "The server store and the signer nodes disagree about this key"),
        (Timeout, 504, "Timeout"),
    ];

    public static ProblemBody Make(string type, string detail, IReadOnlyList<uint>? culprits = null)
    {
        (string _, int status, string title) = All.First(t => t.Type == type);
        return new ProblemBody(type, title, status, detail, culprits);
    }

    /// <summary>The one mapping from exceptions to problems.</summary>
    public static ProblemBody FromException(Exception e) => e switch
    {
        ApiException a => a.Problem,
        BadHttpRequestException { StatusCode: 413 } => Make(BodyTooLarge, "the request body exceeds the server's limit"),
        BadHttpRequestException b when b.InnerException is JsonException j => ApiJson.Problem(j),
        BadHttpRequestException b when b.Message.Contains("body", StringComparison.OrdinalIgnoreCase) => Make(MalformedJson, "the request needs a JSON body"),
        BadHttpRequestException b => Make(InvalidRequest, BindFailure(b.Message)),
        JsonException j => ApiJson.Problem(j),
        CryptoFormatException f => Make(InvalidRequest, f.Message),
        Conclave.Policy.PolicyFormatException p => Make(InvalidPolicy, p.Message),
        StorageException { Kind: StorageErrorKind.NotFound } => Make(UnknownKey, "the key does not exist"),
        StorageException { Kind: StorageErrorKind.Duplicate } => Make(KeyExists, "a key with this name already exists"),
        StorageException { Kind: StorageErrorKind.Conflict } => Make(StoreConflict, "the key changed concurrently; retry"),
        StorageException { Kind: StorageErrorKind.InvalidArgument } s => Make(InvalidRequest, s.Message),
        StorageException { Kind: StorageErrorKind.IntegrityCheckFailed } s => Make(KeyIntegrity, s.Message),
        // Nobody named (a DKLs23 signature that does not verify, signers reporting different R): say so, not "node(s)  misbehaved".
        CulpritException c => Make(NodeMisbehaved, c.Culprits.Count == 0
            ? $"a signer misbehaved but no node can be named: {c.Message}"
            : $"signer node(s) {string.Join(", ", c.Culprits)} misbehaved: {c.Message}", c.Culprits) with
        {
            CulpritReasons = c.Reasons.Count == 0 ? null : [.. c.Reasons.Select(r => new CulpritReasonResponse(r.Node, r.Reason))],
        },
        QuorumUnavailableException q => Make(QuorumUnavailable, q.Message),

        // A node step that failed and was not retried or attributed further up (a key generation or rotation round): the
        // culprit when the node named one, 504 when the node did not answer in time, else 503. Only the node id and the
        // gRPC status go out; the node's own text stays in the server log.
        NodeCallException { Culprit: uint culprit } n => Make(NodeMisbehaved, $"signer node {culprit} misbehaved (reported by node {n.NodeId})", [culprit]),
        NodeCallException { Status: Grpc.Core.StatusCode.DeadlineExceeded } n => Make(Timeout, $"signer node {n.NodeId} did not answer in time"),
        NodeCallException n => Make(QuorumUnavailable, $"signer node {n.NodeId} could not take part ({n.Status}); retry when it is back"),
        NodeUntrustedException u => Make(NodeUntrusted, u.Message),
        EvictionRefusedException r => Make(EvictionRefused, r.Message),
        TimeoutException => Make(Timeout, "the operation did not finish in time"),
        _ => Make(Internal, "an unexpected error occurred; the server log has details"),
    };

    /// <summary>A parameter the framework could not bind, by name only (its message names .NET types).</summary>
    private static string BindFailure(string message)
    {
        System.Text.RegularExpressions.Match m = System.Text.RegularExpressions.Regex.Match(message, "^Failed to bind parameter \"(?:[^\"]* )?([A-Za-z][A-Za-z0-9]{0,40})\"");
        return m.Success ? $"parameter '{m.Groups[1].Value}' has the wrong form" : "the request is malformed";
    }

    public static async Task WriteAsync(HttpContext ctx, ProblemBody problem)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        ArgumentNullException.ThrowIfNull(problem);
        AuditTrail.SetProblem(ctx, problem.Type);
        ctx.Response.StatusCode = problem.Status;
        ctx.Response.ContentType = "application/problem+json";
        if (problem.Status == 401)
        {
            ctx.Response.Headers.WWWAuthenticate = "Bearer";
        }

        // Not ctx.RequestAborted: a timed-out request's token is already cancelled when its 504 is written. The body
        // is small; a client that went away makes the write fail on its own.
        await JsonSerializer.SerializeAsync(ctx.Response.Body, problem, ApiJsonContext.Default.ProblemBody, CancellationToken.None).ConfigureAwait(false);
    }
}

/// <summary>An expected API failure carrying its problem.</summary>
public sealed class ApiException : Exception
{
    public ApiException() : this(ProblemTypes.Make(ProblemTypes.Internal, "error")) { }

    public ApiException(string message) : this(ProblemTypes.Make(ProblemTypes.InvalidRequest, message)) { }

    public ApiException(string message, Exception innerException) : base(message, innerException) => Problem = ProblemTypes.Make(ProblemTypes.InvalidRequest, message);

    public ApiException(ProblemBody problem) : base(problem?.Detail) => Problem = problem!;

    public ApiException(string type, string detail) : this(ProblemTypes.Make(type, detail)) { }

    public ApiException(ProblemBody problem, Exception innerException) : base(problem?.Detail, innerException) => Problem = problem!;

    public ProblemBody Problem { get; }
}
