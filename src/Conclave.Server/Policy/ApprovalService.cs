using Microsoft.Extensions.Logging;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Conclave.Policy.Approvals;
using Conclave.Policy.Documents;
using Conclave.Policy.Evaluation;
using Conclave.Policy.Principals;
using Conclave.Server.Api;
using Conclave.Storage;
using Conclave.Storage.Audit;
using Conclave.Storage.Keys;
using Conclave.Storage.Policy;
using Conclave.Storage.Principals;
using Conclave.Storage.Requests;

namespace Conclave.Server.Policy;

/// <summary>Signs a held request once its approvals are met; returns the response body to keep with the request.</summary>
public delegate Task<byte[]> HeldRequestExecutor(KeyRecord key, string body, PolicyExplanation policy, CancellationToken ct);

/// <summary>
/// Requests held for approval (issue 16 "Approvals"), stored in the store's <c>requests</c> and <c>approvals</c>
/// tables. A vote is cast by an approver principal over the request hash and the policy hash the 202 answered; the
/// evidence of the authenticated vote (its body, and the RFC 9421 signature headers when there are any) is stored with
/// it. Conclave.Policy's <see cref="ApprovalRequest"/> decides each vote: the initiator never counts, one vote per
/// approver, any reject is final, expiry. When every approval is met the request is signed (velocity counters reserved
/// then) and its result kept; <c>GET /v1/requests/{id}</c> returns it. Every step is audited.
/// </summary>
public sealed partial class ApprovalService(IConclaveStore store, PolicyGate gate, TimeProvider time)
{
    public const string SignRoute = "sign";

    /// <summary>The route of a held /rpc signing call (eth_sign, personal_sign, eth_signTypedData_v4, eth_signTransaction).</summary>
    public const string RpcRoute = "rpc";

    /// <summary>The route of a held Safe transaction (owner signatures and execution, docs/VENUE.md "Held owner signatures").</summary>
    public const string SafeRoute = "safe";

    /// <summary>The route (and the request's operation) of a held policy change.</summary>
    public const string PolicyChangeRoute = "policy-change";

    /// <summary>The route (and the request's operation) of a held venue profile change.</summary>
    public const string VenueProfileChangeRoute = "venue-profile-change";

    private readonly Dictionary<string, HeldRequestExecutor> _executors = new(StringComparer.Ordinal);

    /// <summary>Registers how a held request of <paramref name="route"/> is signed when approved.</summary>
    public void Register(string route, HeldRequestExecutor executor)
    {
        lock (_executors)
        {
            _executors[route] = executor;
        }
    }

    /// <summary>The sink the gate calls for a held request of this route, key, caller and body.</summary>
    public HeldRequestSink Sink(string route, KeyRecord key, CallerIdentity caller, string operation, string body) =>
        (decision, requestHash, now, ct) => HoldAsync(route, key, caller, operation, body, decision, requestHash, now, ct);

    private async Task<HeldResponse> HoldAsync(string route, KeyRecord key, CallerIdentity caller, string operation, string body, ServerDecision d, byte[] requestHash,
        DateTimeOffset now, CancellationToken ct)
    {
        string id = "req-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));
        DateTimeOffset expires = now.AddSeconds(d.Approvals.Min(a => a.TtlSeconds));
        PolicyExplanation explanation = PolicyGate.Explain(d);
        var payload = new JsonObject
        {
            ["route"] = route,
            ["keyId"] = key.Id,
            ["principal"] = caller.Principal.Id,
            ["credential"] = SigningCredential(caller),
            ["operation"] = operation,
            ["body"] = body,
            ["createdAt"] = now.ToUnixTimeMilliseconds(),
            ["policy"] = JsonSerializer.SerializeToNode(explanation, ApiJsonContext.Default.PolicyExplanation),
            ["approvals"] = new JsonArray([.. d.Approvals.Select(a => (JsonNode)new JsonObject
            {
                ["mode"] = a.Mode == ApprovalMode.And ? "and" : "or",
                ["ttlSeconds"] = a.TtlSeconds,
                ["groups"] = new JsonArray([.. a.Groups.Select(g => (JsonNode)new JsonObject
                {
                    ["name"] = g.Name,
                    ["k"] = g.K,
                    ["members"] = new JsonArray([.. g.Members.Select(m => (JsonNode)JsonValue.Create(m))]),
                })]),
            })]),
            ["reservations"] = new JsonArray([.. d.Reservations.Select(r => (JsonNode)new JsonObject
            {
                ["counterKey"] = r.CounterKey,
                ["windowSeconds"] = r.WindowSeconds,
                ["native"] = r.Native,
                ["usd"] = r.Usd,
                ["count"] = r.Count,
                ["maxNative"] = r.MaxNative,
                ["maxUsd"] = r.MaxUsd,
                ["maxCount"] = r.MaxCount,
            })]),
        };
        await store.Requests.CreateAsync(new NewRequest(id, key.Id, operation, caller.Principal.Id, requestHash, Encoding.UTF8.GetBytes(payload.ToJsonString()), expires), ct)
            .ConfigureAwait(false);
        await store.Audit.AppendAsync(new AuditEntryInput(caller.Actor, "request.held", key.Id, requestHash, "require-approval",
            PolicyGate.Summary(operation, d) is var s && s.Length <= 200 ? $"{id} {s}" : $"{id} {s[..200]}…"), CancellationToken.None).ConfigureAwait(false);
        return new HeldResponse(id, "pending", Convert.ToHexStringLower(requestHash), expires, explanation);
    }

    /// <summary>
    /// Applies due policy changes every <paramref name="interval"/> until the server stops. Never throws and never stops
    /// before: a pass that fails is logged (Hosting.BackgroundLog) and the next tick tries again.
    /// </summary>
    public async Task RunAsync(TimeSpan interval, CancellationToken stopping, ILogger? log = null)
    {
        using var timer = new PeriodicTimer(interval);
        try
        {
            while (await timer.WaitForNextTickAsync(stopping).ConfigureAwait(false))
            {
                await Hosting.BackgroundLog.RunPassAsync("due policy changes", () => ApplyDuePolicyChangesAsync(stopping),
                    log ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, stopping).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Requests, optionally by state; pending ones past their expiry are marked expired first.</summary>
    public Task<IReadOnlyList<JsonObject>> ListAsync(RequestState? state, CancellationToken ct) => ListAsync(state, null, ct);

    /// <summary>Requests, optionally by state and only those <paramref name="requester"/> made (when given).</summary>
    public async Task<IReadOnlyList<JsonObject>> ListAsync(RequestState? state, string? requester, CancellationToken ct)
    {
        await ExpireAsync(ct).ConfigureAwait(false);
        IReadOnlyList<RequestRecord> all = await store.Requests.ListAsync(state, 1000, ct).ConfigureAwait(false);
        var list = new List<JsonObject>();
        foreach (RequestRecord r in all)
        {
            if (requester is not null && !string.Equals(r.Requester, requester, StringComparison.Ordinal))
            {
                continue;
            }

            list.Add(await ViewAsync(r, ct).ConfigureAwait(false));
        }

        return list;
    }

    public async Task<JsonObject?> GetAsync(string id, CancellationToken ct)
    {
        await ExpireAsync(ct).ConfigureAwait(false);
        RequestRecord? r = await store.Requests.GetAsync(id, ct).ConfigureAwait(false);
        return r is null ? null : await ViewAsync(r, ct).ConfigureAwait(false);
    }

    private async Task ExpireAsync(CancellationToken ct)
    {
        await ApplyDuePolicyChangesAsync(ct).ConfigureAwait(false);
        DateTimeOffset now = time.GetUtcNow();
        foreach (RequestRecord r in await store.Requests.ListAsync(RequestState.Pending, 1000, ct).ConfigureAwait(false))
        {
            if (r.ExpiresAt is { } e && now >= e && await store.Requests.TransitionAsync(r.Id, RequestState.Pending, RequestState.Expired, ct).ConfigureAwait(false))
            {
                await store.Audit.AppendAsync(new AuditEntryInput("coordinator", "request.expired", r.KeyId, r.RequestHash, "deny", r.Id + " expired unapproved"),
                    CancellationToken.None).ConfigureAwait(false);
            }
        }
    }

    private async Task<JsonObject> ViewAsync(RequestRecord r, CancellationToken ct)
    {
        using JsonDocument payload = JsonDocument.Parse(r.Payload);
        JsonElement p = payload.RootElement;
        IReadOnlyList<ApprovalRecord> votes = await store.Requests.GetApprovalsAsync(r.Id, ct).ConfigureAwait(false);
        var o = new JsonObject
        {
            ["requestId"] = r.Id,
            ["status"] = r.State.ToString().ToLowerInvariant(),
            ["keyId"] = r.KeyId,
            ["operation"] = r.Operation,
            ["requester"] = r.Requester,
            ["requestHash"] = Convert.ToHexStringLower(r.RequestHash),
            ["policyHash"] = p.GetProperty("policy").GetProperty("policyHash").GetString(),
            ["createdAt"] = r.CreatedAt,
            ["expiresAt"] = r.ExpiresAt,
            ["policy"] = JsonNode.Parse(p.GetProperty("policy").GetRawText()),
            ["votes"] = new JsonArray([.. votes.Select(v => (JsonNode)new JsonObject
            {
                ["approver"] = v.Approver,
                ["decision"] = v.Decision == ApprovalDecision.Approve ? "approve" : "reject",
                ["at"] = v.At,
            })]),
        };
        if (p.TryGetProperty("change", out JsonElement change))
        {
            JsonObject c = JsonNode.Parse(change.GetRawText())!.AsObject();
            if (r.State == RequestState.Approved)
            {
                c["effectiveAt"] = await EffectiveAtAsync(r, p, ct).ConfigureAwait(false);
            }

            o["change"] = c;
        }

        if (r.Result is { } result)
        {
            o["result"] = JsonNode.Parse(result);
        }

        return o;
    }

    /// <summary>
    /// One vote by <paramref name="caller"/> (who must hold the role approver) over <paramref name="requestHashHex"/> and
    /// <paramref name="policyHash"/>, which must be the request's. Refusals are typed problems: 403 forbidden (not an
    /// approver role, or an agent: an agent never votes), 403 vote-refused for self-approval — by the initiator, or
    /// under a credential whose public key is also one of the initiator's credentials — and non-members, 409
    /// vote-refused for a second vote, a decided or an expired request.
    /// </summary>
    public async Task<JsonObject> VoteAsync(CallerIdentity caller, string id, bool approve, string? requestHashHex, string? policyHash, byte[] evidence, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(caller);
        ArgumentNullException.ThrowIfNull(evidence);
        if (caller.Principal.Kind == PrincipalKind.Agent || caller.Principal.HasRole(Role.Agent))
        {
            throw new ApiException(ProblemTypes.Forbidden, $"principal {caller.Principal.Id} is an agent: agents never vote on requests");
        }

        if (!caller.Principal.HasRole(Role.Approver))
        {
            throw new ApiException(ProblemTypes.Forbidden, $"principal {caller.Principal.Id} does not hold the role approver");
        }

        await ExpireAsync(ct).ConfigureAwait(false);
        RequestRecord r = await store.Requests.GetAsync(id, ct).ConfigureAwait(false) ?? throw new ApiException(ProblemTypes.NotFound, $"no request {id}");
        using JsonDocument payload = JsonDocument.Parse(r.Payload);
        JsonElement p = payload.RootElement;
        string storedPolicyHash = p.GetProperty("policy").GetProperty("policyHash").GetString()!;
        if (requestHashHex is null || policyHash is null)
        {
            throw new ApiException(ProblemTypes.InvalidRequest, "a vote names the request's requestHash and policyHash (as GET /v1/requests/{id} shows them)");
        }

        byte[] given;
        try
        {
            given = Convert.FromHexString(requestHashHex);
        }
        catch (FormatException)
        {
            throw new ApiException(ProblemTypes.BadHex, "requestHash must be 64 hex digits");
        }

        if (given.Length != 32 || !CryptographicOperations.FixedTimeEquals(given, r.RequestHash)
            || !CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(policyHash), Encoding.UTF8.GetBytes(storedPolicyHash)))
        {
            throw new ApiException(ProblemTypes.VoteRefused, "the vote's requestHash or policyHash is not this request's: nothing was recorded");
        }

        if (await HoldsAnInitiatorKeyAsync(caller, r.Requester, ct).ConfigureAwait(false))
        {
            // One key registered under two principals (an agent's and an approver's) is one holder: it never votes on its own request.
            await AuditVoteAsync(caller, r, approve, "refused: the vote is signed with a key the initiator also holds").ConfigureAwait(false);
            throw new ApiException(ProblemTypes.Make(ProblemTypes.VoteRefused,
                "the vote is signed with a key that is also a credential of the request's initiator: the initiator never votes on its own request") with { Status = 403 });
        }

        ApprovalRequest state = Rebuild(r, p, await store.Requests.GetApprovalsAsync(id, ct).ConfigureAwait(false));
        DateTimeOffset now = time.GetUtcNow();
        if (r.State == RequestState.Approved && IsChange(r) && !approve)
        {
            // A policy change waiting for its time lock can still be stopped: a reject from an eligible approver (not
            // the initiator, who has not voted on it yet) is final, as before the quorum.
            if (string.Equals(caller.Principal.Id, r.Requester, StringComparison.Ordinal) || !state.IsEligible(caller.Principal.Id))
            {
                await AuditVoteAsync(caller, r, approve, "refused: not an approver of this change").ConfigureAwait(false);
                throw new ApiException(ProblemTypes.Make(ProblemTypes.VoteRefused, $"principal {caller.Principal.Id} may not vote on this change") with { Status = 403 });
            }

            // The store keeps votes of pending requests only: this one is in the audit log, with its evidence's hash.
            await AuditVoteAsync(caller, r, approve, "recorded during the time lock, evidence-sha256 " + Convert.ToHexStringLower(SHA256.HashData(evidence)))
                .ConfigureAwait(false);
            if (await store.Requests.TransitionAsync(id, RequestState.Approved, RequestState.Rejected, ct).ConfigureAwait(false))
            {
                await store.Audit.AppendAsync(new AuditEntryInput(caller.Actor, "request.rejected", r.KeyId, r.RequestHash, "deny", r.Id + " rejected during its time lock"),
                    CancellationToken.None).ConfigureAwait(false);
            }

            return (await GetAsync(id, ct).ConfigureAwait(false))!;
        }

        if (r.State != RequestState.Pending)
        {
            await AuditVoteAsync(caller, r, approve, "refused: the request is " + r.State.ToString().ToLowerInvariant()).ConfigureAwait(false);
            throw new ApiException(ProblemTypes.VoteRefused, $"request {id} is {r.State.ToString().ToLowerInvariant()}; it takes no more votes");
        }

        VoteOutcome outcome = state.Cast(caller.Principal.Id, approve, now, out _);
        string? refusal = outcome switch
        {
            VoteOutcome.SelfApprovalRefused => "the initiator of a request never votes on it",
            VoteOutcome.NotAnApprover => $"principal {caller.Principal.Id} is not in an approval group of this request",
            VoteOutcome.AlreadyVoted => $"principal {caller.Principal.Id} has already voted on this request",
            VoteOutcome.Expired => "the request has expired",
            VoteOutcome.AlreadyDecided => "the request is already decided",
            _ => null,
        };
        if (refusal is not null)
        {
            await AuditVoteAsync(caller, r, approve, "refused: " + refusal).ConfigureAwait(false);
            throw new ApiException(outcome is VoteOutcome.SelfApprovalRefused or VoteOutcome.NotAnApprover
                ? ProblemTypes.Make(ProblemTypes.VoteRefused, refusal) with { Status = 403 }
                : ProblemTypes.Make(ProblemTypes.VoteRefused, refusal));
        }

        if (!await store.Requests.AddApprovalAsync(id, caller.Principal.Id, approve ? ApprovalDecision.Approve : ApprovalDecision.Reject, evidence, ct).ConfigureAwait(false))
        {
            await AuditVoteAsync(caller, r, approve, "refused: a second vote").ConfigureAwait(false);
            throw new ApiException(ProblemTypes.VoteRefused, $"principal {caller.Principal.Id} has already voted on this request");
        }

        await AuditVoteAsync(caller, r, approve, "recorded").ConfigureAwait(false);

        // Decide from what the store now holds (votes of other replicas included).
        state = Rebuild(r, p, await store.Requests.GetApprovalsAsync(id, ct).ConfigureAwait(false));
        ApprovalStatus status = state.Status(now);
        if (status == ApprovalStatus.Rejected && await store.Requests.TransitionAsync(id, RequestState.Pending, RequestState.Rejected, ct).ConfigureAwait(false))
        {
            await store.Audit.AppendAsync(new AuditEntryInput(caller.Actor, "request.rejected", r.KeyId, r.RequestHash, "deny", r.Id + " rejected"), CancellationToken.None)
                .ConfigureAwait(false);
        }
        else if (status == ApprovalStatus.Approved && await store.Requests.TransitionAsync(id, RequestState.Pending, RequestState.Approved, ct).ConfigureAwait(false))
        {
            if (IsChange(r))
            {
                await store.Audit.AppendAsync(new AuditEntryInput(caller.Actor, "request.approved", null, r.RequestHash, "allow",
                    $"{r.Id} {r.Operation} approved; in force after its time lock of {p.GetProperty("change").GetProperty("timeLockSeconds").GetInt64()}s"), CancellationToken.None)
                    .ConfigureAwait(false);
                await ApplyDuePolicyChangesAsync(ct).ConfigureAwait(false);
            }
            else
            {
                await ExecuteAsync(r, p, ct).ConfigureAwait(false);
            }
        }

        return (await GetAsync(id, ct).ConfigureAwait(false))!;
    }

    /// <summary>
    /// True when <paramref name="caller"/> signed with a credential whose public key is also a credential (live, revoked or
    /// lapsed) of <paramref name="initiator"/>: the same key holder under another principal.
    /// </summary>
    private async Task<bool> HoldsAnInitiatorKeyAsync(CallerIdentity caller, string initiator, CancellationToken ct)
    {
        if (caller.Method != AuthMethod.HttpSignature || caller.CredentialId is null || string.Equals(caller.Principal.Id, initiator, StringComparison.Ordinal)
            || await store.Principals.GetCredentialAsync(caller.CredentialId, ct).ConfigureAwait(false) is not { } voterKey)
        {
            return false;
        }

        IReadOnlyList<Conclave.Storage.Principals.CredentialRecord> initiatorKeys = initiator == CallerIdentity.Admin.Principal.Id
            ? []
            : await store.Principals.ListCredentialsAsync(initiator, ct).ConfigureAwait(false);
        return initiatorKeys.Any(k => k.PublicKey.AsSpan().SequenceEqual(voterKey.PublicKey));
    }

    /// <summary>The quorum is met: reserve the counters, sign, keep the result (or why it failed).</summary>
    private async Task ExecuteAsync(RequestRecord r, JsonElement p, CancellationToken ct)
    {
        string route = p.GetProperty("route").GetString()!;
        HeldRequestExecutor? executor;
        lock (_executors)
        {
            _executors.TryGetValue(route, out executor);
        }

        var reservations = p.GetProperty("reservations").EnumerateArray().Select(x => new Reservation(
            x.GetProperty("counterKey").GetString()!, x.GetProperty("windowSeconds").GetInt64(), x.GetProperty("native").GetDecimal(), x.GetProperty("usd").GetDecimal(),
            x.GetProperty("count").GetInt64(), Dec(x, "maxNative"), Dec(x, "maxUsd"), x.GetProperty("maxCount").ValueKind == JsonValueKind.Null ? null : x.GetProperty("maxCount").GetInt64()))
            .ToList();
        string? reservation = null;
        string error;
        try
        {
            DateTimeOffset now = time.GetUtcNow();
            if (await InitiatorRefusalAsync(r, p, now, ct).ConfigureAwait(false) is { } refused)
            {
                // Checked before anything is reserved or signed.
                error = refused;
            }
            else if (executor is null)
            {
                error = "no executor for route " + route;
            }
            else if ((reservation = await gate.ReserveAsync(reservations, now, ct).ConfigureAwait(false)) is null && reservations.Count > 0)
            {
                error = "a velocity limit was reached while the request waited for approval";
            }
            else
            {
                KeyRecord key = await store.Keys.GetAsync(r.KeyId!, ct).ConfigureAwait(false) ?? throw new ApiException(ProblemTypes.UnknownKey, "the key no longer exists");
                PolicyExplanation policy = JsonSerializer.Deserialize(p.GetProperty("policy").GetRawText(), ApiJsonContext.Default.PolicyExplanation)!;
                byte[] result = await executor(key, p.GetProperty("body").GetString()!, policy, ct).ConfigureAwait(false);
                await store.Requests.FinishAsync(r.Id, RequestState.Approved, RequestState.Executed, result, CancellationToken.None).ConfigureAwait(false);
                await store.Audit.AppendAsync(new AuditEntryInput("coordinator", "request.executed", r.KeyId, r.RequestHash, "allow",
                    $"{r.Id} signed after approval, response-sha256 {Convert.ToHexStringLower(SHA256.HashData(result))}"), CancellationToken.None).ConfigureAwait(false);
                return;
            }
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            error = ProblemTypes.FromException(e).Detail;
        }

        await gate.ReleaseAsync(reservation, reservations).ConfigureAwait(false);
        await FailAsync(r, RequestState.Approved, "coordinator", "failed after approval: " + error).ConfigureAwait(false);
    }

    /// <summary>Moves <paramref name="r"/> from <paramref name="from"/> to failed with <paramref name="why"/> as its result's error, and audits it once.</summary>
    private async Task FailAsync(RequestRecord r, RequestState from, string actor, string why)
    {
        byte[] failure = Encoding.UTF8.GetBytes(new JsonObject { ["error"] = why }.ToJsonString());
        if (await store.Requests.FinishAsync(r.Id, from, RequestState.Failed, failure, CancellationToken.None).ConfigureAwait(false))
        {
            await store.Audit.AppendAsync(new AuditEntryInput(actor, "request.failed", r.KeyId, r.RequestHash, "deny",
                (r.Id + " " + why) is var t && t.Length <= 256 ? t : t[..255] + "…"), CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <summary>The key id of the RFC 9421 credential <paramref name="caller"/> signed with; null for the admin token and client certificates.</summary>
    private static string? SigningCredential(CallerIdentity caller) => caller.Method == AuthMethod.HttpSignature ? caller.CredentialId : null;

    /// <summary>
    /// Why a held request may no longer run as its initiator (null when it may): the principal that made it no longer
    /// exists or is disabled, or the RFC 9421 credential it was made under is revoked or its lease has lapsed at
    /// <paramref name="now"/>. A request made under the admin token names no credential and is not refused here.
    /// </summary>
    private async Task<string?> InitiatorRefusalAsync(RequestRecord r, JsonElement p, DateTimeOffset now, CancellationToken ct)
    {
        if (string.Equals(r.Requester, CallerIdentity.Admin.Principal.Id, StringComparison.Ordinal))
        {
            return null;
        }

        PrincipalRecord? principal = await store.Principals.GetAsync(r.Requester, ct).ConfigureAwait(false);
        if (principal is null)
        {
            return $"principal {r.Requester} that made the request no longer exists";
        }

        if (principal.Disabled)
        {
            return $"principal {r.Requester} that made the request is disabled";
        }

        if (!p.TryGetProperty("credential", out JsonElement c) || c.ValueKind != JsonValueKind.String)
        {
            return null;
        }

        string keyId = c.GetString()!;
        CredentialRecord? credential = await store.Principals.GetCredentialAsync(keyId, ct).ConfigureAwait(false);
        return credential is null || !string.Equals(credential.PrincipalId, r.Requester, StringComparison.Ordinal) ? $"credential {keyId} the request was made under no longer exists"
            : credential.Revoked ? $"credential {keyId} the request was made under was revoked"
            : now >= credential.LeaseExpiresAt ? $"the lease of credential {keyId} the request was made under lapsed"
            : null;
    }

    /// <summary>
    /// Fails at once every pending request made under credential <paramref name="keyId"/>, and every approved policy
    /// change made under it that waits for its time lock, once <paramref name="actor"/> revoked it: revocation is final,
    /// so they could never run. A request this pass does not reach (past the first 1,000 of a state) is still refused
    /// when its quorum is met.
    /// </summary>
    public async Task FailRequestsOfRevokedCredentialAsync(string keyId, string actor, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(keyId);
        ArgumentNullException.ThrowIfNull(actor);
        foreach (RequestState state in (RequestState[])[RequestState.Pending, RequestState.Approved])
        {
            foreach (RequestRecord r in await store.Requests.ListAsync(state, 1000, ct).ConfigureAwait(false))
            {
                if (state == RequestState.Approved && !IsChange(r))
                {
                    continue;
                }

                using JsonDocument payload = JsonDocument.Parse(r.Payload);
                if (payload.RootElement.TryGetProperty("credential", out JsonElement c) && c.ValueKind == JsonValueKind.String && c.GetString() == keyId)
                {
                    await FailAsync(r, state, actor, $"failed: credential {keyId} the request was made under was revoked").ConfigureAwait(false);
                }
            }
        }
    }

    private static decimal? Dec(JsonElement x, string name) => x.GetProperty(name).ValueKind == JsonValueKind.Null ? null : x.GetProperty(name).GetDecimal();

    private static ApprovalRequest Rebuild(RequestRecord r, JsonElement p, IReadOnlyList<ApprovalRecord> votes)
    {
        var specs = p.GetProperty("approvals").EnumerateArray().Select(a => new ApprovalSpec(
            a.GetProperty("mode").GetString() == "and" ? ApprovalMode.And : ApprovalMode.Or,
            [.. a.GetProperty("groups").EnumerateArray().Select(g => new ApprovalGroup(g.GetProperty("name").GetString()!,
                [.. g.GetProperty("members").EnumerateArray().Select(m => m.GetString()!)], g.GetProperty("k").GetInt32()))],
            a.GetProperty("ttlSeconds").GetInt64())).ToList();
        var state = new ApprovalRequest(r.Id, r.Requester, specs, DateTimeOffset.FromUnixTimeMilliseconds(p.GetProperty("createdAt").GetInt64()));
        foreach (ApprovalRecord v in votes)
        {
            // Votes were checked when cast; replaying them at the creation time rebuilds the state whatever the clock says now.
            state.Cast(v.Approver, v.Decision == ApprovalDecision.Approve, state.CreatedAt, out state);
        }

        return state;
    }

    private Task AuditVoteAsync(CallerIdentity caller, RequestRecord r, bool approve, string result) =>
        store.Audit.AppendAsync(new AuditEntryInput(caller.Actor, approve ? "request.approve" : "request.reject", r.KeyId, r.RequestHash,
            result.StartsWith("refused", StringComparison.Ordinal) ? "deny" : "allow", $"{r.Id} {result}"), CancellationToken.None);
}
