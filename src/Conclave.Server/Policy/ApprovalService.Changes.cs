using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Conclave.Policy.Documents;
using Conclave.Policy.Venues;
using Conclave.Server.Api;
using Conclave.Storage.Audit;
using Conclave.Storage.Policy;
using Conclave.Storage.Requests;

namespace Conclave.Server.Policy;

/// <summary>
/// Held changes (docs/POLICY.md "Changing policies", "Venue profiles in the store"): a policy document or a venue
/// profile waits for the approvers of server.json <c>policyChanges</c>, then its time lock, and is then stored.
/// </summary>
public sealed partial class ApprovalService
{
    /// <summary>Where approved venue profile changes are stored and applied (set by the server; without it they fail).</summary>
    public VenueProfileSource? VenueProfiles { get; init; }

    private static bool IsChange(RequestRecord r) => r.Operation is PolicyChangeRoute or VenueProfileChangeRoute;

    /// <summary>What storing an approved change did: the request's result, or why it could not be stored.</summary>
    private sealed record StoredChange(JsonObject? Result, string? Error, string AuditAction = "", string AuditDetail = "", string InForce = "");

    /// <summary>
    /// Holds a policy change (docs/POLICY.md "Changing policies"): the document, classified against the current version
    /// by <see cref="PolicyChangeClassifier"/>, waits for one approver of <paramref name="settings"/> (a tightening) or
    /// the loosening quorum, then — for a loosening — the time lock, and is then stored. The votes are the same as a
    /// held signing request's: over the request hash and the new document's hash, initiator excluded, one each, any
    /// reject final, expiry after <see cref="PolicyChangeSettings.Ttl"/>.
    /// </summary>
    public async Task<JsonObject> HoldPolicyChangeAsync(CallerIdentity caller, PolicyDocument doc, PolicyMode mode, string text, PolicyChangeSettings settings,
        CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(caller);
        ArgumentNullException.ThrowIfNull(doc);
        ArgumentNullException.ThrowIfNull(settings);
        List<string> approvers = Approvers(settings, "policy");
        StoredPolicy? current = await store.Policies.GetAsync(doc.Id, null, ct).ConfigureAwait(false);
        if (current is not null && doc.Version <= current.Version)
        {
            throw new ApiException(ProblemTypes.PolicyVersion, $"policy {doc.Id} is at version {current.Version}; put a higher version");
        }

        PolicyDocument? currentDoc = current is null ? null : PolicyDocument.Parse(Encoding.UTF8.GetString(current.Document));
        PolicyChange change = PolicyChangeClassifier.Classify(currentDoc, current?.Mode == PolicyMode.Enforce, doc, mode == PolicyMode.Enforce);
        bool tightening = change.Kind == PolicyChangeKind.Tightening;
        int k = tightening ? 1 : settings.Quorum;
        long timeLock = tightening ? 0 : settings.TimeLock;
        string modeName = mode == PolicyMode.Enforce ? "enforce" : "shadow";
        var changeView = new JsonObject
        {
            ["policyId"] = doc.Id,
            ["version"] = doc.Version,
            ["mode"] = modeName,
            ["kind"] = change.KindName,
            ["reasons"] = Texts(change.Reasons),
            ["approvalsNeeded"] = k,
            ["timeLockSeconds"] = timeLock,
            ["currentVersion"] = current?.Version,
        };
        byte[] requestHash = SHA256.HashData(Encoding.UTF8.GetBytes($"conclave-policy-change-v1\n{caller.Principal.Id}\n{modeName}\n{doc.Hash}\n{text}"));
        string summary = $"{doc.Id} v{doc.Version} {modeName} {doc.Hash} {change.KindName} ({k} approver(s), time lock {timeLock}s): {string.Join("; ", change.Reasons)}";
        return await HoldChangeAsync(caller, PolicyChangeRoute, "policy.change.held", requestHash, doc.Hash, change.Reasons, changeView, approvers, k, settings, text, summary, ct)
            .ConfigureAwait(false);
    }

    /// <summary>
    /// Holds a venue profile change (docs/POLICY.md "Venue profiles in the store"). A profile decides what a transaction
    /// is, its amount and the contract it names, so any change can move a request from denied to allowed: every change,
    /// a new venue included, is held as a loosening (the loosening quorum of <paramref name="settings"/>, then its time
    /// lock), and is then stored as the venue's next version. The profile is checked first (400 invalid-venue-profile);
    /// the profile in force put again is 409 venue-profile-unchanged.
    /// </summary>
    public async Task<JsonObject> HoldVenueProfileChangeAsync(CallerIdentity caller, string venue, string text, PolicyChangeSettings settings, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(caller);
        ArgumentNullException.ThrowIfNull(settings);
        VenueProfileSource source = VenueProfiles ?? throw new InvalidOperationException("this server keeps no venue profiles");
        List<string> approvers = Approvers(settings, "venue profile");
        VenueProfile profile = await source.CheckAsync(venue, text, ct).ConfigureAwait(false);
        StoredVenueProfile? current = await store.VenueProfiles.GetAsync(venue, null, ct).ConfigureAwait(false);
        if (current is not null && current.Hash == profile.Hash)
        {
            throw new ApiException(ProblemTypes.VenueProfileUnchanged, $"venue {venue} already has this profile (version {current.Version})");
        }

        long version = (current?.Version ?? 0) + 1;
        string[] reasons = [current is null ? $"venue {venue} gets its first profile" : $"venue {venue}'s profile changes from version {current.Version}",
            "a venue profile decides what a transaction is and its amount: every change is held as a loosening"];
        var changeView = new JsonObject
        {
            ["venue"] = venue,
            ["version"] = version,
            ["hash"] = profile.Hash,
            ["kind"] = "loosening",
            ["reasons"] = Texts(reasons),
            ["approvalsNeeded"] = settings.Quorum,
            ["timeLockSeconds"] = settings.TimeLock,
            ["currentVersion"] = current?.Version,
        };
        byte[] requestHash = SHA256.HashData(Encoding.UTF8.GetBytes($"conclave-venue-profile-change-v1\n{caller.Principal.Id}\n{venue}\n{profile.Hash}\n{text}"));
        string summary = $"{venue} v{version} {profile.Hash} loosening ({settings.Quorum} approver(s), time lock {settings.TimeLock}s)";
        return await HoldChangeAsync(caller, VenueProfileChangeRoute, "venue.change.held", requestHash, profile.Hash, reasons, changeView, approvers, settings.Quorum, settings, text,
            summary, ct).ConfigureAwait(false);
    }

    private static List<string> Approvers(PolicyChangeSettings settings, string what) =>
        settings.Approvers is { Count: > 0 } approvers ? approvers
            : throw new ApiException(ProblemTypes.PolicyChangeRefused, $"no policy-change approvers are configured (server.json policyChanges.approvers): no {what} can be changed");

    private static JsonArray Texts(IEnumerable<string> texts) => new([.. texts.Select(x => (JsonNode)JsonValue.Create(x))]);

    /// <summary>Stores a held change of <paramref name="route"/> as a request (one approval group: the change approvers, k of them) and audits it.</summary>
    private async Task<JsonObject> HoldChangeAsync(CallerIdentity caller, string route, string auditAction, byte[] requestHash, string hash, IReadOnlyList<string> reasons,
        JsonObject changeView, List<string> approvers, int k, PolicyChangeSettings settings, string text, string summary, CancellationToken ct)
    {
        DateTimeOffset now = time.GetUtcNow();
        string id = "req-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));
        var payload = new JsonObject
        {
            ["route"] = route,
            ["principal"] = caller.Principal.Id,
            ["credential"] = SigningCredential(caller),
            ["body"] = text,
            ["createdAt"] = now.ToUnixTimeMilliseconds(),
            ["policy"] = new JsonObject { ["decision"] = "require-approval", ["policyHash"] = hash, ["rules"] = new JsonArray(), ["reasons"] = Texts(reasons) },
            ["change"] = changeView,
            ["approvals"] = new JsonArray(new JsonObject
            {
                ["mode"] = "or",
                ["ttlSeconds"] = settings.Ttl,
                ["groups"] = new JsonArray(new JsonObject { ["name"] = "policy-changes", ["k"] = k, ["members"] = Texts(approvers) }),
            }),
            ["reservations"] = new JsonArray(),
        };
        await store.Requests.CreateAsync(new NewRequest(id, null, route, caller.Principal.Id, requestHash, Encoding.UTF8.GetBytes(payload.ToJsonString()), now.AddSeconds(settings.Ttl)),
            ct).ConfigureAwait(false);
        summary = id + " " + summary;
        await store.Audit.AppendAsync(new AuditEntryInput(caller.Actor, auditAction, null, requestHash, "require-approval", summary.Length <= 256 ? summary : summary[..255] + "…"),
            CancellationToken.None).ConfigureAwait(false);
        return (await GetAsync(id, ct).ConfigureAwait(false))!;
    }

    /// <summary>
    /// Stores every approved change (of a policy or a venue profile) whose time lock is over (a tightening's is zero).
    /// Called on every read and vote of requests and every second in the background; safe on several replicas (the
    /// stored version is checked).
    /// </summary>
    public async Task ApplyDuePolicyChangesAsync(CancellationToken ct)
    {
        DateTimeOffset now = time.GetUtcNow();
        foreach (RequestRecord r in await store.Requests.ListAsync(RequestState.Approved, 1000, ct).ConfigureAwait(false))
        {
            if (!IsChange(r))
            {
                continue;
            }

            using JsonDocument payload = JsonDocument.Parse(r.Payload);
            JsonElement p = payload.RootElement;
            if (now < await EffectiveAtAsync(r, p, ct).ConfigureAwait(false))
            {
                continue;
            }

            StoredChange outcome = await InitiatorRefusalAsync(r, p, now, ct).ConfigureAwait(false) is { } refused
                ? new StoredChange(null, refused)
                : r.Operation == PolicyChangeRoute
                    ? await StorePolicyAsync(r, p, now, ct).ConfigureAwait(false)
                    : await StoreVenueProfileAsync(r, p, now, ct).ConfigureAwait(false);
            if (outcome.Error is { } error)
            {
                await FailAsync(r, RequestState.Approved, "coordinator", "failed after approval: " + error).ConfigureAwait(false);
            }
            else if (await store.Requests.FinishAsync(r.Id, RequestState.Approved, RequestState.Executed, Encoding.UTF8.GetBytes(outcome.Result!.ToJsonString()), CancellationToken.None)
                .ConfigureAwait(false))
            {
                string reasons = string.Join("; ", p.GetProperty("change").GetProperty("reasons").EnumerateArray().Select(x => x.GetString()));
                string detail = $"{outcome.AuditDetail} approved ({r.Id}): {reasons}";
                await store.Audit.AppendAsync(new AuditEntryInput("coordinator", outcome.AuditAction, null, r.RequestHash, "allow", detail.Length <= 256 ? detail : detail[..255] + "…"),
                    CancellationToken.None).ConfigureAwait(false);
                await store.Audit.AppendAsync(new AuditEntryInput("coordinator", "request.executed", null, r.RequestHash, "allow", $"{r.Id} {outcome.InForce} in force"),
                    CancellationToken.None).ConfigureAwait(false);
            }
        }
    }

    private async Task<StoredChange> StorePolicyAsync(RequestRecord r, JsonElement p, DateTimeOffset now, CancellationToken ct)
    {
        JsonElement change = p.GetProperty("change");
        string text = p.GetProperty("body").GetString()!;
        PolicyDocument doc = PolicyDocument.Parse(text);
        string modeName = change.GetProperty("mode").GetString()!;
        PolicyMode mode = modeName == "shadow" ? PolicyMode.Shadow : PolicyMode.Enforce;
        bool put = await store.Policies.PutAsync(new StoredPolicy(doc.Id, doc.Version, doc.Hash, mode, Encoding.UTF8.GetBytes(text), r.Requester, now), ct).ConfigureAwait(false);
        gate.Engine.Invalidate(); // this server's next decision reads the new set; other replicas' within their refresh
        // Not put: another replica may have stored this very change a moment ago.
        if (!put && (await store.Policies.GetAsync(doc.Id, doc.Version, ct).ConfigureAwait(false))?.Hash != doc.Hash)
        {
            long? newest = (await store.Policies.GetAsync(doc.Id, null, ct).ConfigureAwait(false))?.Version;
            return new StoredChange(null, $"policy {doc.Id} is at version {newest}, put while this change waited; put a higher version");
        }

        return new StoredChange(new JsonObject { ["id"] = doc.Id, ["version"] = doc.Version, ["hash"] = doc.Hash, ["mode"] = modeName }, null, "policy.put",
            $"{doc.Id} v{doc.Version} {modeName} {doc.Hash} {change.GetProperty("kind").GetString()}", $"policy {doc.Id} v{doc.Version}");
    }

    private async Task<StoredChange> StoreVenueProfileAsync(RequestRecord r, JsonElement p, DateTimeOffset now, CancellationToken ct)
    {
        if (VenueProfiles is not { } source)
        {
            return new StoredChange(null, "this server keeps no venue profiles");
        }

        JsonElement change = p.GetProperty("change");
        string venue = change.GetProperty("venue").GetString()!;
        long version = change.GetProperty("version").GetInt64();
        string text = p.GetProperty("body").GetString()!;
        VenueProfile profile;
        try
        {
            // Checked again: another venue may have taken this contract while the change waited.
            profile = await source.CheckAsync(venue, text, ct).ConfigureAwait(false);
        }
        catch (ApiException e)
        {
            return new StoredChange(null, e.Problem.Detail);
        }

        bool put = await store.VenueProfiles.PutAsync(new StoredVenueProfile(venue, version, profile.Hash, Encoding.UTF8.GetBytes(text), r.Requester, now), ct).ConfigureAwait(false);
        source.Invalidate(); // this server's next request uses the new set; other replicas' within their refresh
        if (!put && (await store.VenueProfiles.GetAsync(venue, version, ct).ConfigureAwait(false))?.Hash != profile.Hash)
        {
            long? newest = (await store.VenueProfiles.GetAsync(venue, null, ct).ConfigureAwait(false))?.Version;
            return new StoredChange(null, $"venue {venue}'s profile is at version {newest}, changed while this change waited; put it again");
        }

        return new StoredChange(new JsonObject { ["venue"] = venue, ["version"] = version, ["hash"] = profile.Hash }, null, "venue.put", $"{venue} v{version} {profile.Hash} loosening",
            $"venue profile {venue} v{version}");
    }

    /// <summary>When an approved change takes effect: its quorum's last vote plus its time lock.</summary>
    private async Task<DateTimeOffset> EffectiveAtAsync(RequestRecord r, JsonElement p, CancellationToken ct)
    {
        IReadOnlyList<ApprovalRecord> votes = await store.Requests.GetApprovalsAsync(r.Id, ct).ConfigureAwait(false);
        DateTimeOffset approvedAt = votes.Where(v => v.Decision == ApprovalDecision.Approve).Select(v => v.At).DefaultIfEmpty(r.CreatedAt).Max();
        return approvedAt.AddSeconds(p.GetProperty("change").GetProperty("timeLockSeconds").GetInt64());
    }
}
