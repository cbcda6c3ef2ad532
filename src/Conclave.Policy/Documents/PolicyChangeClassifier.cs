using Conclave.Policy.Operations;
using Conclave.Policy.Risk;

namespace Conclave.Policy.Documents;

public enum PolicyChangeKind
{
    /// <summary>Provably never lets a request through further than before: one approver suffices.</summary>
    Tightening,

    /// <summary>Anything not provably a tightening: an approver quorum and a time lock.</summary>
    Loosening,
}

/// <summary>What a policy change is and why: every tightening step found, and every step that made it a loosening.</summary>
public sealed record PolicyChange(PolicyChangeKind Kind, IReadOnlyList<string> Reasons)
{
    public string KindName => Kind == PolicyChangeKind.Tightening ? "tightening" : "loosening";
}

/// <summary>
/// Classifies a change of one policy document conservatively (issue 16 "Changing policies: tightening needs one
/// approver; loosening needs an approver quorum and a time lock"; the exact rule is docs/POLICY.md "Changing policies").
/// Outcomes are ordered deny &lt; require-approval &lt; allow; a change is a <see cref="PolicyChangeKind.Tightening"/> only
/// if every difference between the enforced content of the current and the new document is one of the steps below,
/// each of which can only move a request's outcome down; anything else is a <see cref="PolicyChangeKind.Loosening"/>.
/// Only what is enforced counts: the rules of mode <c>enforce</c> of a document stored in mode enforce. A document
/// stored in shadow mode (or no document) counts as one with no rules, default levels and no <c>levelApproval</c>.
/// <list type="bullet">
/// <item>a deny rule added;</item>
/// <item>an allow rule removed, or turned into a deny rule, or — if it has no conditions — into a require-approval rule
/// that is otherwise the same (a condition on a missing argument fails closed, which for a require-approval rule means
/// it matches);</item>
/// <item>an allow rule's conditions: every old one kept, new ones added;</item>
/// <item>an allow rule's limits: a per-transaction limit lowered or added; a velocity limit (same id, window and scope)
/// with each sum or count lowered or added; velocity limits added;</item>
/// <item>a require-approval rule's approval: the same mode, groups and members, each k raised or kept, the time to live
/// shortened or kept;</item>
/// <item>at a level: more blocked operations, more approval operations, more extra approvers, a shorter (or a new)
/// approval time to live, a lower limit multiplier when no enforced require-approval rule has limits (a lower limit
/// on a require-approval rule can drop that rule's approval);</item>
/// <item><c>levelApproval</c> removed, or tightened as an approval above.</item>
/// </list>
/// Everything else — a deny or require-approval rule removed or changed otherwise, a permitting rule added, a match or
/// time window changed, a limit raised or removed, a velocity window or scope changed, a condition removed or added to
/// a require-approval rule, a <c>levelApproval</c> added, a document turned from enforce to shadow — is a loosening.
/// Pure.
/// </summary>
public static class PolicyChangeClassifier
{
    public static PolicyChange Classify(PolicyDocument? current, bool currentEnforced, PolicyDocument next, bool nextEnforced)
    {
        ArgumentNullException.ThrowIfNull(next);
        var tight = new List<string>();
        var loose = new List<string>();
        if (!nextEnforced)
        {
            if (current is not null && currentEnforced)
            {
                loose.Add($"the enforced document {next.Id} becomes shadow: its rules stop applying");
            }
            else
            {
                tight.Add("a shadow document changes no decision");
            }

            return Result(tight, loose);
        }

        bool hadOld = current is not null && currentEnforced;
        Dictionary<string, PolicyRule> oldRules = hadOld ? Enforced(current!) : new(StringComparer.Ordinal);
        Dictionary<string, PolicyRule> newRules = Enforced(next);

        foreach ((string id, PolicyRule o) in oldRules.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            if (!newRules.TryGetValue(id, out PolicyRule? n))
            {
                if (o.Effect == Effect.Allow)
                {
                    tight.Add($"allow rule {id} removed");
                }
                else
                {
                    loose.Add($"{EffectName(o.Effect)} rule {id} removed");
                }

                continue;
            }

            CompareRule(o, n, tight, loose);
        }

        foreach ((string id, PolicyRule n) in newRules.Where(kv => !oldRules.ContainsKey(kv.Key)).OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            if (n.Effect == Effect.Deny)
            {
                tight.Add($"deny rule {id} added");
            }
            else
            {
                loose.Add($"{EffectName(n.Effect)} rule {id} added");
            }
        }

        bool approvalRuleLimits = newRules.Values.Any(r => r.Effect == Effect.RequireApproval && r.Limits is not null);
        foreach (RiskLevel level in RiskLevels.All)
        {
            LevelOverride o = hadOld ? current!.Level(level) : LevelOverride.Default(level);
            CompareLevel(RiskLevels.Name(level), o, next.Level(level), approvalRuleLimits, tight, loose);
        }

        ApprovalSpec? oldLevelApproval = hadOld ? current!.LevelApproval : null;
        if (oldLevelApproval is null && next.LevelApproval is not null)
        {
            loose.Add("levelApproval added (operations a level sends to approval are held instead of denied)");
        }
        else if (oldLevelApproval is not null && next.LevelApproval is null)
        {
            tight.Add("levelApproval removed (operations a level sends to approval are denied)");
        }
        else if (oldLevelApproval is not null && next.LevelApproval is not null)
        {
            CompareApproval("levelApproval", oldLevelApproval, next.LevelApproval, tight, loose);
        }

        if (tight.Count == 0 && loose.Count == 0)
        {
            tight.Add("nothing enforced changes");
        }

        return Result(tight, loose);
    }

    private static PolicyChange Result(List<string> tight, List<string> loose) =>
        loose.Count > 0 ? new PolicyChange(PolicyChangeKind.Loosening, loose) : new PolicyChange(PolicyChangeKind.Tightening, tight);

    private static Dictionary<string, PolicyRule> Enforced(PolicyDocument d) =>
        d.Rules.Where(r => r.Mode == RuleMode.Enforce).ToDictionary(r => r.Id, StringComparer.Ordinal);

    private static string EffectName(Effect e) => e switch { Effect.Allow => "allow", Effect.Deny => "deny", _ => "require-approval" };

    private static void CompareRule(PolicyRule o, PolicyRule n, List<string> tight, List<string> loose)
    {
        string id = o.Id;
        if (PolicyCanonicalWriter.RuleJson(o) == PolicyCanonicalWriter.RuleJson(n))
        {
            return;
        }

        if (o.Effect == Effect.Allow && n.Effect == Effect.Deny)
        {
            tight.Add($"allow rule {id} turned into a deny rule");
            return;
        }

        if (o.Effect == Effect.Allow && n.Effect == Effect.RequireApproval)
        {
            // Not with conditions: a condition on a missing argument fails closed, which is "no match" for an allow
            // rule but "match" for a require-approval rule (docs/POLICY.md), so the request would be held, not denied.
            if (o.Conditions.Count == 0 && Same(o, n with { Effect = Effect.Allow, Approval = null }))
            {
                tight.Add($"allow rule {id} now requires approval");
            }
            else
            {
                loose.Add($"rule {id} turned from allow into require-approval with conditions or other changes");
            }

            return;
        }

        if (o.Effect != n.Effect)
        {
            loose.Add($"rule {id} turned from {EffectName(o.Effect)} into {EffectName(n.Effect)}");
            return;
        }

        if (o.Effect == Effect.Deny)
        {
            loose.Add($"deny rule {id} changed");
            return;
        }

        if (o.Effect == Effect.RequireApproval)
        {
            // Only the approval may change, and only upwards.
            if (!Same(o with { Approval = null }, n with { Approval = null }))
            {
                loose.Add($"require-approval rule {id}: its match, conditions, time window or limits changed");
                return;
            }

            CompareApproval($"rule {id} approval", o.Approval!, n.Approval!, tight, loose);
            return;
        }

        // Allow rule: same match and time window; conditions kept (more may be added); limits lowered or added.
        if (!Same(o with { Conditions = [], Limits = null }, n with { Conditions = [], Limits = null }))
        {
            loose.Add($"allow rule {id}: its match or time window changed");
            return;
        }

        var oldConditions = o.Conditions.Select(PolicyCanonicalWriter.ConditionJson).ToHashSet(StringComparer.Ordinal);
        var newConditions = n.Conditions.Select(PolicyCanonicalWriter.ConditionJson).ToHashSet(StringComparer.Ordinal);
        if (!oldConditions.IsSubsetOf(newConditions))
        {
            loose.Add($"allow rule {id}: a condition removed or changed");
        }
        else if (newConditions.Count > oldConditions.Count)
        {
            tight.Add($"allow rule {id}: conditions added");
        }

        CompareLimits(id, o.Limits, n.Limits, tight, loose);
    }

    private static bool Same(PolicyRule a, PolicyRule b) => PolicyCanonicalWriter.RuleJson(a) == PolicyCanonicalWriter.RuleJson(b);

    private static void CompareLimits(string id, Limits? o, Limits? n, List<string> tight, List<string> loose)
    {
        Cap($"allow rule {id}: per-transaction native limit", o?.PerTransactionNative, n?.PerTransactionNative, tight, loose);
        Cap($"allow rule {id}: per-transaction USD limit", o?.PerTransactionUsd, n?.PerTransactionUsd, tight, loose);
        var newVelocity = (n?.Velocity ?? []).ToDictionary(v => v.Id, StringComparer.Ordinal);
        foreach (VelocityLimit ov in o?.Velocity ?? [])
        {
            string what = $"allow rule {id}: velocity limit {ov.Id}";
            if (!newVelocity.Remove(ov.Id, out VelocityLimit? nv))
            {
                loose.Add(what + " removed");
                continue;
            }

            if (nv.WindowSeconds != ov.WindowSeconds || nv.Scope != ov.Scope)
            {
                loose.Add(what + ": its window or scope changed");
                continue;
            }

            Cap(what + " sumNative", ov.SumNative, nv.SumNative, tight, loose);
            Cap(what + " sumUsd", ov.SumUsd, nv.SumUsd, tight, loose);
            Cap(what + " count", ov.Count, nv.Count, tight, loose);
        }

        foreach (string added in newVelocity.Keys.Order(StringComparer.Ordinal))
        {
            tight.Add($"allow rule {id}: velocity limit {added} added");
        }
    }

    /// <summary>A cap: none → any value tightens, a value → none loosens, a lower value tightens, a higher one loosens.</summary>
    private static void Cap(string what, decimal? o, decimal? n, List<string> tight, List<string> loose)
    {
        if (o == n)
        {
            return;
        }

        if (n is null)
        {
            loose.Add(what + " removed");
        }
        else if (o is null)
        {
            tight.Add(what + " added");
        }
        else if (n < o)
        {
            tight.Add(what + " lowered");
        }
        else
        {
            loose.Add(what + " raised");
        }
    }

    private static void CompareApproval(string what, ApprovalSpec o, ApprovalSpec n, List<string> tight, List<string> loose)
    {
        if (o.Mode != n.Mode || o.Groups.Count != n.Groups.Count)
        {
            loose.Add(what + ": its mode or groups changed");
            return;
        }

        var newGroups = n.Groups.ToDictionary(g => g.Name, StringComparer.Ordinal);
        bool raised = false;
        foreach (ApprovalGroup og in o.Groups)
        {
            if (!newGroups.TryGetValue(og.Name, out ApprovalGroup? ng)
                || !og.Members.Order(StringComparer.Ordinal).SequenceEqual(ng.Members.Order(StringComparer.Ordinal), StringComparer.Ordinal))
            {
                loose.Add(what + $": group {og.Name} removed or its members changed");
                return;
            }

            if (ng.K < og.K)
            {
                loose.Add(what + $": group {og.Name} needs fewer approvers");
                return;
            }

            raised |= ng.K > og.K;
        }

        if (n.TtlSeconds > o.TtlSeconds)
        {
            loose.Add(what + ": a longer time to live");
            return;
        }

        if (raised)
        {
            tight.Add(what + ": more approvers needed");
        }

        if (n.TtlSeconds < o.TtlSeconds)
        {
            tight.Add(what + ": a shorter time to live");
        }
    }

    private static void CompareLevel(string level, LevelOverride o, LevelOverride n, bool approvalRuleLimits, List<string> tight, List<string> loose)
    {
        if (n.LimitMultiplier > o.LimitMultiplier)
        {
            loose.Add($"level {level}: a larger limit multiplier");
        }
        else if (n.LimitMultiplier < o.LimitMultiplier)
        {
            if (approvalRuleLimits)
            {
                loose.Add($"level {level}: a smaller limit multiplier while a require-approval rule has limits (it can drop that rule's approval)");
            }
            else
            {
                tight.Add($"level {level}: a smaller limit multiplier");
            }
        }

        if (n.ExtraApprovers < o.ExtraApprovers)
        {
            loose.Add($"level {level}: fewer extra approvers");
        }
        else if (n.ExtraApprovers > o.ExtraApprovers)
        {
            tight.Add($"level {level}: more extra approvers");
        }

        if (o.ApprovalTtlSeconds is { } ot && (n.ApprovalTtlSeconds is null || n.ApprovalTtlSeconds > ot))
        {
            loose.Add($"level {level}: a longer or no approval time to live");
        }
        else if (n.ApprovalTtlSeconds != o.ApprovalTtlSeconds)
        {
            tight.Add($"level {level}: a shorter approval time to live");
        }

        Ops($"level {level}: blocked operations", o.BlockedOperations, n.BlockedOperations, tight, loose);
        Ops($"level {level}: approval operations", o.ApprovalOperations, n.ApprovalOperations, tight, loose);
    }

    private static void Ops(string what, IReadOnlyList<OperationKind> o, IReadOnlyList<OperationKind> n, List<string> tight, List<string> loose)
    {
        if (!o.All(n.Contains))
        {
            loose.Add(what + " removed");
        }
        else if (n.Count > o.Count)
        {
            tight.Add(what + " added");
        }
    }
}
