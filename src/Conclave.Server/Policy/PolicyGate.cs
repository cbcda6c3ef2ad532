using System.Security.Cryptography;
using System.Text;
using Conclave.Policy.Evaluation;
using Conclave.Policy.Operations;
using Conclave.Policy.Risk;
using Conclave.Server.Api;
using Conclave.Server.Config;
using Conclave.Storage;
using Conclave.Storage.Audit;
using Conclave.Storage.Keys;
using Conclave.Storage.Policy;

namespace Conclave.Server.Policy;

/// <summary>What the gate let through: the decision, and the counter reservation to release if signing fails.</summary>
public sealed record PolicyGrant(ServerDecision Decision, string? ReservationId, byte[] RequestHash)
{
    /// <summary>
    /// Completes when the reservation (and the decision's audit entries with it) is durable; a reservation made with a
    /// request's held entries (<see cref="RequestAudit.FlushReservingAsync"/>) is granted while its commit is still being
    /// made, so a server-held signature is computed during the flush. The request's next flush waits for it, so nothing
    /// is released before it; a release (<see cref="PolicyGate.ReleaseAsync(PolicyGrant?)"/>) waits for it too.
    /// </summary>
    public Task ReservationDurable { get; init; } = Task.CompletedTask;

    public PolicyExplanation Explanation => PolicyGate.Explain(Decision);
}

/// <summary>A request held for approval (HTTP 202).</summary>
public sealed class HeldForApprovalException(HeldResponse held) : Exception("the request is held for approval")
{
    public HeldResponse Held { get; } = held;
}

/// <summary>
/// Policy enforcement in front of every route that signs (issue 16, docs/POLICY.md "Enforcement"): the caller's
/// principal (<see cref="CallerIdentity"/>), the key and the typed operation are decided by <see cref="PolicyEngine"/> at
/// the current risk level (<see cref="IRiskLevelSource"/>); the decision is audited (and the shadow decision beside
/// it); a deny is a 403 problem with the explanation; a held request is stored for approval (202); an allowed request
/// reserves its velocity counters atomically in the store before signing, and the caller releases them if signing
/// fails (<see cref="ReleaseAsync"/>).
/// </summary>
public sealed class PolicyGate(PolicyEngine engine, IRiskLevelSource risk, ServerConfig config, TimeProvider time)
{
    public PolicyEngine Engine { get; } = engine;

    private IConclaveStore Store => Engine.Store;

    /// <summary>
    /// Told of every request policy denies (a deny rule, a level block, a velocity limit, admin signing turned off): the
    /// risk subsystem counts them with refused and badly signed requests as a threat signal (docs/POLICY.md "Risk
    /// levels"). Must not throw or block. A request held for approval is not a denial.
    /// </summary>
    public Action? DeniedRequest { get; init; }

    /// <summary>Told how long each authorization took (decision, its audit entry, the velocity reservation): the
    /// <c>conclave_policy_seconds</c> histogram and `conclave bench`'s policy cost through REST.</summary>
    public Action<TimeSpan>? Decided { get; init; }

    /// <summary>
    /// Policy sees a key's labels as <c>name:value</c>, plus <c>scheme:SCHEME</c> (so a rule can name, for example, every
    /// ecdsa-secp256k1 key: the starter policy allows the admin raw digests that way).
    /// </summary>
    public static IReadOnlyList<string> Labels(KeyRecord key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return [.. key.Labels.Where(kv => kv.Key != "scheme").Select(kv => kv.Key + ":" + kv.Value).Append("scheme:" + key.Scheme).Order(StringComparer.Ordinal)];
    }

    /// <summary>
    /// Decides, audits and — when allowed — reserves. Throws <see cref="ApiException"/> (403 policy-denied) for a deny and
    /// <see cref="HeldForApprovalException"/> for a held request when <paramref name="held"/> can store it; a held
    /// request that cannot be stored (a batch item, eth_sendTransaction, the REST transaction route) is refused with the decision.
    /// </summary>
    public async Task<PolicyGrant> AuthorizeAsync(CallerIdentity caller, KeyRecord key, OperationRequest request, string route, string body, HeldRequestSink? held, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(caller);
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(request);
        long started = System.Diagnostics.Stopwatch.GetTimestamp();
        try
        {
            return await DecideAndReserveAsync(caller, key, request, route, body, held, ct).ConfigureAwait(false);
        }
        catch (ApiException e) when (e.Problem.Type == ProblemTypes.PolicyDenied)
        {
            DeniedRequest?.Invoke();
            throw;
        }
        finally
        {
            Decided?.Invoke(System.Diagnostics.Stopwatch.GetElapsedTime(started));
        }
    }

    private async Task<PolicyGrant> DecideAndReserveAsync(CallerIdentity caller, KeyRecord key, OperationRequest request, string route, string body, HeldRequestSink? held, CancellationToken ct)
    {
        DateTimeOffset now = time.GetUtcNow();
        byte[] requestHash = RequestHash(route, key.Id, caller.Principal.Id, body);
        ServerDecision d;
        RiskLevel level = risk.Current.Level;
        IReadOnlyDictionary<string, decimal> prices = risk.FreshUsdPrices(now);
        if (caller.Method == AuthMethod.AdminToken && !config.AdminSigning)
        {
            d = new ServerDecision(DecisionOutcome.Deny, "none", [], ["admin signing is turned off (server.json adminSigning: false)"], [], [], []);
        }
        else
        {
            // On a route that holds its audit entries the decision is audited only with its reservation (below), so a
            // provisional allow (counters taken as empty, not read) that the reservation refuses leaves no trace and is
            // decided again on the store's totals: the common case, a limit with room, reads no counter.
            d = await Engine.DecideAsync(request, level, now, ct, provisional: RequestAudit.Current is not null, usdPrices: prices).ConfigureAwait(false);
        }

        // An allowed request that spends a velocity limit, on a route that holds its audit entries (Api.RequestAudit):
        // the reservation, the intent and the decision are committed together below (one fsync instead of two).
        RequestAudit? rides = d.Outcome == DecisionOutcome.Allow && d.Reservations.Count > 0 ? RequestAudit.Current : null;
        if (rides is not null && d.Provisional)
        {
            if (await rides.FlushReservingAsync(Entries(caller, key.Id, requestHash, Operations.Name(request.Operation), d), Counters(d.Reservations), now).ConfigureAwait(false)
                is { } provisionalReservation)
            {
                return new PolicyGrant(d, provisionalReservation.Id, requestHash) { ReservationDurable = provisionalReservation.Durable };
            }

            // A cap had no room for this request: nothing was written; decide on what the store holds, as without the
            // provisional decision (another granting rule may allow it, or the deny names the limit).
            d = await Engine.DecideAsync(request, level, now, ct, usdPrices: prices).ConfigureAwait(false);
            rides = d.Outcome == DecisionOutcome.Allow && d.Reservations.Count > 0 ? RequestAudit.Current : null;
        }

        if (rides is null)
        {
            await AuditAsync(caller, key.Id, requestHash, Operations.Name(request.Operation), d).ConfigureAwait(false);
        }

        switch (d.Outcome)
        {
            case DecisionOutcome.Deny:
                throw Denied(d);
            case DecisionOutcome.RequireApproval:
                if (held is null)
                {
                    throw Denied(d with
                    {
                        Outcome = DecisionOutcome.Deny,
                        Reasons = [.. d.Reasons, "the request needs approval, and this route does not hold requests for approval: send it alone to POST /v1/keys/{name}/sign (or a /rpc signing method)"],
                    });
                }

                throw new HeldForApprovalException(await held(d, requestHash, now, ct).ConfigureAwait(false));
        }

        HeldReservation? riding = rides is not null
            ? await rides.FlushReservingAsync(Entries(caller, key.Id, requestHash, Operations.Name(request.Operation), d), Counters(d.Reservations), now).ConfigureAwait(false)
            : null;
        string? reservation = rides is not null ? riding?.Id : await ReserveAsync(d.Reservations, now, ct).ConfigureAwait(false);
        if (d.Reservations.Count > 0 && reservation is null)
        {
            var limited = d with { Outcome = DecisionOutcome.Deny, Reasons = [.. d.Reasons, "a velocity limit was reached by concurrent requests"], Reservations = [] };
            await AuditAsync(caller, key.Id, requestHash, Operations.Name(request.Operation), limited).ConfigureAwait(false);
            throw Denied(limited);
        }

        return new PolicyGrant(d, reservation, requestHash) { ReservationDurable = riding?.Durable ?? Task.CompletedTask };
    }

    /// <summary>
    /// As <see cref="AuthorizeAsync"/>, but a require-approval decision is returned (audited, nothing stored or reserved)
    /// instead of being held: for a request made of several decisions that is held once, with all their approvals
    /// (a Safe transaction's owner signatures and execution, <see cref="Chains.SafeTreasury"/>). Exactly one of the
    /// grant and the held decision is set.
    /// </summary>
    public async Task<(PolicyGrant? Grant, ServerDecision? Held, DateTimeOffset At)> AuthorizeOrDeferAsync(CallerIdentity caller, KeyRecord key, OperationRequest request,
        string route, string body, CancellationToken ct)
    {
        try
        {
            return (await AuthorizeAsync(caller, key, request, route, body, (d, _, now, _) => throw new DeferredHold(d, now), ct).ConfigureAwait(false), null, default);
        }
        catch (DeferredHold deferred)
        {
            return (null, deferred.Decision, deferred.At);
        }
    }

    private sealed class DeferredHold(ServerDecision decision, DateTimeOffset at) : Exception("a held decision returned to its caller")
    {
        public ServerDecision Decision { get; } = decision;

        public DateTimeOffset At { get; } = at;
    }

    /// <summary>Reserves a decision's velocity counters (all or none); null when there is nothing to reserve or a cap would be exceeded.</summary>
    public async Task<string?> ReserveAsync(IReadOnlyList<Reservation> reservations, DateTimeOffset now, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(reservations);
        if (reservations.Count == 0)
        {
            return null;
        }

        return await Store.PolicyCounters.TryReserveAsync(Counters(reservations), now, ct).ConfigureAwait(false);
    }

    private static CounterReservation[] Counters(IReadOnlyList<Reservation> reservations) =>
        [.. reservations.Select(r => new CounterReservation(r.CounterKey, r.WindowSeconds, r.Native, r.Usd, r.Count, r.MaxNative, r.MaxUsd, r.MaxCount))];

    /// <summary>
    /// Signing failed: gives the reserved amounts back, once the reservation is durable (a release that ran before the
    /// reservation's commit would find nothing, and the commit would then spend the limit for nothing). A reservation
    /// whose commit failed was never written: nothing to give back.
    /// </summary>
    public async Task ReleaseAsync(PolicyGrant? grant)
    {
        if (grant is null)
        {
            return;
        }

        await grant.ReservationDurable.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        if (grant.ReservationDurable.IsCompletedSuccessfully)
        {
            await ReleaseAsync(grant.ReservationId, grant.Decision.Reservations).ConfigureAwait(false);
        }
    }

    /// <summary>Gives back the reservation <paramref name="reservationId"/> made of <paramref name="reservations"/> (<see cref="ReserveAsync"/>).</summary>
    public async Task ReleaseAsync(string? reservationId, IReadOnlyList<Reservation> reservations)
    {
        ArgumentNullException.ThrowIfNull(reservations);
        if (reservationId is { } id)
        {
            await Store.PolicyCounters.ReleaseAsync(id, [.. reservations.Select(r => r.CounterKey)], CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <summary>SHA-256 over the route, key id, principal and the exact request body: what approvers vote over.</summary>
    public static byte[] RequestHash(string route, string keyId, string principal, string body) =>
        SHA256.HashData(Encoding.UTF8.GetBytes($"conclave-request-v1\n{route}\n{keyId}\n{principal}\n{body}"));

    public static ApiException Denied(ServerDecision d)
    {
        ArgumentNullException.ThrowIfNull(d);
        string detail = "denied by policy: " + string.Join("; ", d.Reasons);
        return new ApiException(ProblemTypes.Make(ProblemTypes.PolicyDenied, detail.Length <= 1000 ? detail : detail[..999] + "…") with { Policy = Explain(d) });
    }

    public static PolicyExplanation Explain(ServerDecision d)
    {
        ArgumentNullException.ThrowIfNull(d);
        return new PolicyExplanation(d.OutcomeName, d.PolicyHash, d.Rules, d.Reasons, d.Shadow is { } s ? Explain(s) : null);
    }

    /// <summary>
    /// The decision's audit entry (action <c>policy.decide</c>): decision, policy hash, rules and reasons (cut to the
    /// audit log's 256 characters; the full explanation is in the response), and a <c>policy.shadow</c> entry beside
    /// it when shadow policies or rules exist.
    /// </summary>
    public async Task AuditAsync(CallerIdentity caller, string? keyId, byte[] requestHash, string operation, ServerDecision d)
    {
        ArgumentNullException.ThrowIfNull(caller);
        ArgumentNullException.ThrowIfNull(d);
        IReadOnlyList<AuditEntryInput> entries = Entries(caller, keyId, requestHash, operation, d);
        AuditEntryInput decided = entries[0];
        AuditEntryInput? shadow = entries.Count > 1 ? entries[1] : null;
        if (RequestAudit.Current is { } held)
        {
            // A signing request that holds its audit entries (Api.RequestAudit): an allow is committed with the request's
            // next effect — the round entry before any node is asked, or the response — so it is durable before the
            // decision is acted on, in the same fsync. Any other outcome is committed now, with what the request holds.
            if (d.Outcome == DecisionOutcome.Allow)
            {
                held.Defer(decided);
                if (shadow is not null)
                {
                    held.Defer(shadow);
                }

                return;
            }

            if (shadow is not null)
            {
                held.Defer(decided);
                await held.FlushAsync(shadow).ConfigureAwait(false);
            }
            else
            {
                await held.FlushAsync(decided).ConfigureAwait(false);
            }

            return;
        }

        try
        {
            await Store.Audit.AppendAsync(decided, CancellationToken.None).ConfigureAwait(false);
            if (shadow is not null)
            {
                await Store.Audit.AppendAsync(shadow, CancellationToken.None).ConfigureAwait(false);
            }
        }
        catch (Conclave.Storage.StorageException e)
        {
            // A decision that cannot be audited is not acted on (fail closed, as the request's intent entry).
            throw ApiMiddleware.AuditUnavailable(e);
        }
    }

    /// <summary>The decision's audit entry, and the shadow decision's beside it when there is one.</summary>
    private static IReadOnlyList<AuditEntryInput> Entries(CallerIdentity caller, string? keyId, byte[] requestHash, string operation, ServerDecision d)
    {
        var decided = new AuditEntryInput(caller.Actor, "policy.decide", keyId, requestHash, d.OutcomeName, Summary(operation, d));
        return d.Shadow is { } s ? [decided, new AuditEntryInput(caller.Actor, "policy.shadow", keyId, requestHash, s.OutcomeName, Summary(operation, s))] : [decided];
    }

    internal static string Summary(string operation, ServerDecision d)
    {
        string text = $"{operation} policy {d.PolicyHash} rules [{string.Join(",", d.Rules)}] reasons: {string.Join("; ", d.Reasons)}";
        text = new string([.. text.Select(c => char.IsControl(c) ? ' ' : c)]);
        return text.Length <= 256 ? text : text[..255] + "…";
    }
}

/// <summary>Stores a held request and answers what the 202 says.</summary>
public delegate Task<HeldResponse> HeldRequestSink(ServerDecision decision, byte[] requestHash, DateTimeOffset now, CancellationToken ct);
