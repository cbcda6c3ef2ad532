using Conclave.Policy.Documents;
using Conclave.Policy.Operations;

namespace Conclave.Policy.Tests;

/// <summary>
/// docs/POLICY.md "Semantics", matching, written as plainly as possible from the rule and the request as they are (no
/// compilation, no ordinals, no caches): the reference the compiled <c>RuleMatcher</c> is compared against. A rule
/// applies when every non-empty match list holds the request's value (keys by id or any label), the time is in its
/// window, and every condition holds; a condition on a missing argument, or one of a kind its operator does not
/// compare, does not hold for an allow rule and holds for a deny or require-approval rule.
/// </summary>
internal static class ReferenceMatcher
{
    public static bool Matches(PolicyRule rule, OperationRequest req, DateTimeOffset now)
    {
        RuleMatch m = rule.Match;
        bool listed =
            (m.Principals.Count == 0 || m.Principals.Contains(req.Principal.Id, StringComparer.Ordinal))
            && (m.Roles.Count == 0 || m.Roles.Any(req.Principal.HasRole))
            && (m.Keys.Count + m.Labels.Count == 0 || m.Keys.Contains(req.KeyId, StringComparer.Ordinal) || req.KeyLabels.Any(l => m.Labels.Contains(l, StringComparer.Ordinal)))
            && (m.Venues.Count == 0 || (req.Venue is not null && m.Venues.Contains(req.Venue, StringComparer.Ordinal)))
            && (m.ChainIds.Count == 0 || (req.ChainId is not null && m.ChainIds.Contains(req.ChainId.Value)))
            && (m.Operations.Count == 0 || m.Operations.Contains(req.Operation))
            && (m.Contracts.Count == 0 || (req.Contract is not null && m.Contracts.Contains(req.Contract, StringComparer.Ordinal)))
            && (m.Selectors.Count == 0 || (req.Selector is not null && m.Selectors.Contains(req.Selector, StringComparer.Ordinal)));
        if (!listed || (rule.Time is not null && !InWindow(rule.Time, now)))
        {
            return false;
        }

        bool unknownHolds = rule.Effect != Effect.Allow;
        return rule.Conditions.All(c => Holds(c, req.Args) ?? unknownHolds);
    }

    private static bool InWindow(TimeWindow t, DateTimeOffset now)
    {
        DateTime utc = now.UtcDateTime;
        int minute = (utc.Hour * 60) + utc.Minute;
        if (t.FromMinute < t.ToMinute)
        {
            return t.Days.Contains(utc.DayOfWeek) && minute >= t.FromMinute && minute < t.ToMinute;
        }

        // Past midnight, the window belongs to the day it started.
        return minute >= t.FromMinute ? t.Days.Contains(utc.DayOfWeek) : minute < t.ToMinute && t.Days.Contains(utc.AddDays(-1).DayOfWeek);
    }

    /// <summary>Null: the argument is missing, or of a kind the operator does not compare.</summary>
    private static bool? Holds(Condition c, IReadOnlyDictionary<string, PolicyValue> args)
    {
        if (!args.TryGetValue(c.Arg, out PolicyValue v))
        {
            return null;
        }

        switch (c.Op)
        {
            case ConditionOperator.Eq:
                return v.Kind == c.Value!.Value.Kind ? v == c.Value.Value : null;
            case ConditionOperator.Ne:
                return v.Kind == c.Value!.Value.Kind ? v != c.Value.Value : null;
            case ConditionOperator.OneOf:
                return c.Values.Contains(v);
            case ConditionOperator.InList:
                return v.Kind == PolicyValueKind.Address ? c.Values.Any(x => x.Text == v.Text) : null;
            case ConditionOperator.NotInList:
                return v.Kind == PolicyValueKind.Address ? !c.Values.Any(x => x.Text == v.Text) : null;
        }

        if (v.Kind != PolicyValueKind.Number)
        {
            return null;
        }

        return c.Op switch
        {
            ConditionOperator.Lt => v.Number < c.Value!.Value.Number,
            ConditionOperator.Lte => v.Number <= c.Value!.Value.Number,
            ConditionOperator.Gt => v.Number > c.Value!.Value.Number,
            ConditionOperator.Gte => v.Number >= c.Value!.Value.Number,
            _ => v.Number >= c.Min!.Value && v.Number <= c.Max!.Value,
        };
    }
}
