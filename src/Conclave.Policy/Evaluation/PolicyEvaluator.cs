using System.Globalization;
using Conclave.Policy.Documents;
using Conclave.Policy.Operations;
using Conclave.Policy.Principals;
using Conclave.Policy.Risk;

namespace Conclave.Policy.Evaluation;

/// <summary>
/// The decision function (issue 16 "Policies", "Risk levels"): pure, a function of the request, the document, the
/// counters it reads and the context. Order: unknown operation or field, scope, level blocks, then default deny; any
/// matching deny wins; limits of the permitting rules (scaled by the level's multiplier) must hold; then every
/// triggered approval must be met (require-approval); then allow. docs/POLICY.md "Semantics" states each step.
/// </summary>
public static class PolicyEvaluator
{
    public static Decision Decide(PolicyDocument policy, OperationRequest request, EvaluationContext context, IVelocityCounters counters)
    {
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(counters);

        return DecideIndexed(policy, request, context, counters, byKeyAndVenue: true);
    }

    /// <summary>
    /// <see cref="Decide"/> reading the candidate rules through the whole index (<paramref name="byKeyAndVenue"/>) or its
    /// first level (principal and operation) alone; the decisions are the same (tests compare them).
    /// </summary>
    internal static Decision DecideIndexed(PolicyDocument policy, OperationRequest request, EvaluationContext context, IVelocityCounters counters, bool byKeyAndVenue)
    {
        var enforced = DecideCore(policy, request, context, counters, includeShadow: false, byKeyAndVenue);
        if (!policy.HasShadowRules)
        {
            return enforced;
        }

        return enforced with { Shadow = DecideCore(policy, request, context, counters, includeShadow: true, byKeyAndVenue) };
    }

    private static Decision Deny(PolicyDocument p, IReadOnlyList<string> rules, params string[] reasons) => new(DecisionOutcome.Deny, p.Hash, rules, reasons, [], []);

    /// <summary>
    /// Signing a raw 32-byte digest is allowed only by a rule that names it (issue 16 "Typed operations"): the operation
    /// <c>raw-digest</c>, the principal, and the key by id or label. A rule matching any operation, principal or key
    /// never grants it.
    /// </summary>
    private static bool AllowsRawDigestExplicitly(PolicyRule rule, OperationRequest req) =>
        rule.Match.Operations.Contains(OperationKind.RawDigest)
        && rule.Match.Principals.Contains(req.Principal.Id, StringComparer.Ordinal)
        && (rule.Match.Keys.Contains(req.KeyId, StringComparer.Ordinal) || req.KeyLabels.Any(l => rule.Match.Labels.Contains(l, StringComparer.Ordinal)));

    private static Decision DecideCore(PolicyDocument policy, OperationRequest req, EvaluationContext ctx, IVelocityCounters counters, bool includeShadow, bool byKeyAndVenue)
    {
        if (req.Operation == OperationKind.Unknown)
        {
            return Deny(policy, [], "unknown operation: requests that cannot be classified are denied");
        }

        if (req.UnknownFields.Count > 0)
        {
            return Deny(policy, [], "unknown field(s) " + string.Join(", ", req.UnknownFields) + ": requests with fields the operation does not define are denied");
        }

        string op = Operations.Operations.Name(req.Operation);
        if (!req.Principal.Scope.Allows(req.KeyId, req.KeyLabels, req.Operation))
        {
            return Deny(policy, [], $"out of scope: principal {req.Principal.Id} is not scoped to key {req.KeyId} and operation {op}");
        }

        var level = ctx.Level;
        string levelName = RiskLevels.Name(level);
        var lo = policy.Level(level);
        bool riskReducing = Operations.Operations.IsRiskReducing(req.Operation, req.Args);
        if (!riskReducing)
        {
            if (level == RiskLevel.Lockdown && req.Operation != OperationKind.ReleaseCollateral)
            {
                return Deny(policy, [], $"lockdown: only risk-reducing operations (liquidate, margin-call, reduce-only hedge) and release-collateral with approval are allowed; {op} is not");
            }

            if (lo.BlockedOperations.Contains(req.Operation))
            {
                return Deny(policy, [], $"operation {op} is blocked at risk level {levelName}");
            }
        }

        var denies = new List<string>();
        var permitting = new List<PolicyRule>();
        var input = new MatchInput(req, ctx.Now, policy.Arguments);
        foreach (RuleMatcher matcher in byKeyAndVenue ? policy.CandidateMatchers(req, ctx.Now) : policy.MatchersByPrincipalAndOperation(req))
        {
            PolicyRule rule = matcher.Rule;
            if (rule.Mode == RuleMode.Shadow && !includeShadow)
            {
                continue;
            }

            if (!matcher.Matches(input))
            {
                continue;
            }

            if (rule.Effect == Effect.Deny)
            {
                denies.Add(rule.Id);
            }
            else if (req.Operation != OperationKind.RawDigest || AllowsRawDigestExplicitly(rule, req))
            {
                permitting.Add(rule);
            }
        }

        if (denies.Count > 0)
        {
            return Deny(policy, denies, denies.Select(d => $"rule {d} denies").ToArray());
        }

        if (permitting.Count == 0)
        {
            string why = req.Operation == OperationKind.RawDigest
                ? $"no rule allows raw-digest explicitly for principal {req.Principal.Id} on key {req.KeyId} (a raw digest needs a rule naming the operation, the principal and the key or one of its labels; default deny)"
                : $"no rule allows {op} for principal {req.Principal.Id} on key {req.KeyId} (default deny)";
            return Deny(policy, [], why) with { NoRuleGranted = true };
        }

        decimal multiplier = riskReducing ? 1m
            : level == RiskLevel.Lockdown ? policy.Level(RiskLevel.Stressed).LimitMultiplier // release-collateral in lockdown, held for approval
            : lo.LimitMultiplier;

        // A limit qualifies the rule it is written on: a permitting rule whose limits do not hold grants nothing (a hard
        // cap across rules is a deny rule with a condition). So removing a permitting rule can never allow more.
        var reservations = new List<Reservation>();
        var granting = new List<PolicyRule>();
        var limitFailures = new List<string>();
        foreach (var rule in permitting)
        {
            if (rule.Limits is not { } limits)
            {
                granting.Add(rule);
                continue;
            }

            var own = new List<Reservation>();
            if (LimitChecker.Check(rule, limits, req, ctx, counters, multiplier, policy.Id, own) is { } failure)
            {
                limitFailures.Add(failure);
                continue;
            }

            granting.Add(rule);
            reservations.AddRange(own);
        }

        if (granting.Count == 0)
        {
            return Deny(policy, permitting.Select(r => r.Id).ToList(), [.. limitFailures]) with { NoRuleGranted = true };
        }

        permitting = granting;
        var ruleIds = permitting.Select(r => r.Id).ToList();
        var approvals = new List<ApprovalSpec>();
        var reasons = new List<string>();
        foreach (var rule in permitting.Where(r => r.Effect == Effect.RequireApproval))
        {
            approvals.Add(Tighten(rule.Approval!, lo, riskReducing));
            reasons.Add($"rule {rule.Id} requires approval");
        }

        bool levelApproval = !riskReducing && (lo.ApprovalOperations.Contains(req.Operation) || (level == RiskLevel.Lockdown && req.Operation == OperationKind.ReleaseCollateral));
        if (levelApproval)
        {
            if (policy.LevelApproval is not { } la)
            {
                return Deny(policy, ruleIds, $"{op} needs approval at risk level {levelName} and the policy declares no levelApproval");
            }

            approvals.Add(Tighten(la, lo, riskReducing));
            reasons.Add($"{op} requires approval at risk level {levelName}");
        }

        if (approvals.Count > 0)
        {
            return new Decision(DecisionOutcome.RequireApproval, policy.Hash, ruleIds, reasons, reservations, approvals);
        }

        reasons.Add($"allowed by rule(s) {string.Join(", ", ruleIds)} at risk level {levelName}" + (multiplier != 1m ? $" (limits x{multiplier.ToString(CultureInfo.InvariantCulture)})" : string.Empty));
        return new Decision(DecisionOutcome.Allow, policy.Hash, ruleIds, reasons, reservations, []);
    }

    /// <summary>A level's extra approvers raise every group's k (capped at the group size); its TTL shortens the spec's.</summary>
    internal static ApprovalSpec Tighten(ApprovalSpec spec, LevelOverride lo, bool riskReducing)
    {
        if (riskReducing || (lo.ExtraApprovers == 0 && lo.ApprovalTtlSeconds is null))
        {
            return spec;
        }

        var groups = spec.Groups.Select(g => g with { K = Math.Min(g.Members.Count, g.K + lo.ExtraApprovers) }).ToList();
        long ttl = lo.ApprovalTtlSeconds is { } t ? Math.Min(t, spec.TtlSeconds) : spec.TtlSeconds;
        return new ApprovalSpec(spec.Mode, groups, ttl);
    }
}
