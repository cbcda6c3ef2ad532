using Conclave.Policy.Documents;
using Conclave.Policy.Operations;

namespace Conclave.Policy.Evaluation;

/// <summary>
/// Whether a rule applies to a request: every non-empty match list contains the request's value, every condition
/// holds, and the time is inside the rule's window. A condition on an argument the request lacks, or of the wrong
/// type, fails closed: it does not hold for allow rules, and it holds for deny and require-approval rules (so a missing
/// argument can never avoid a deny or an approval).
/// </summary>
internal static class RuleMatcher
{
    public static bool Matches(PolicyRule rule, OperationRequest req, DateTimeOffset now)
    {
        var m = rule.Match;
        if (m.Principals.Count > 0 && !m.Principals.Contains(req.Principal.Id, StringComparer.Ordinal))
        {
            return false;
        }

        if (m.Roles.Count > 0 && !m.Roles.Any(req.Principal.HasRole))
        {
            return false;
        }

        if ((m.Keys.Count > 0 || m.Labels.Count > 0)
            && !m.Keys.Contains(req.KeyId, StringComparer.Ordinal) && !req.KeyLabels.Any(l => m.Labels.Contains(l, StringComparer.Ordinal)))
        {
            return false;
        }

        if (m.Venues.Count > 0 && (req.Venue is null || !m.Venues.Contains(req.Venue, StringComparer.Ordinal)))
        {
            return false;
        }

        if (m.ChainIds.Count > 0 && (req.ChainId is not { } chain || !m.ChainIds.Contains(chain)))
        {
            return false;
        }

        if (m.Operations.Count > 0 && !m.Operations.Contains(req.Operation))
        {
            return false;
        }

        if (m.Contracts.Count > 0 && (req.Contract is null || !m.Contracts.Contains(req.Contract, StringComparer.Ordinal)))
        {
            return false;
        }

        if (m.Selectors.Count > 0 && (req.Selector is null || !m.Selectors.Contains(req.Selector, StringComparer.Ordinal)))
        {
            return false;
        }

        if (rule.Time is { } t && !InWindow(t, now))
        {
            return false;
        }

        bool whenUnknown = rule.Effect != Effect.Allow;
        foreach (var c in rule.Conditions)
        {
            bool? holds = Evaluate(c, req.Args);
            if (!(holds ?? whenUnknown))
            {
                return false;
            }
        }

        return true;
    }

    internal static bool InWindow(TimeWindow t, DateTimeOffset now)
    {
        var utc = now.UtcDateTime;
        int minute = (utc.Hour * 60) + utc.Minute;
        if (t.FromMinute < t.ToMinute)
        {
            return t.Days.Contains(utc.DayOfWeek) && minute >= t.FromMinute && minute < t.ToMinute;
        }

        // Wraps past midnight: the part after midnight belongs to the day the window started.
        if (minute >= t.FromMinute)
        {
            return t.Days.Contains(utc.DayOfWeek);
        }

        return minute < t.ToMinute && t.Days.Contains(utc.AddDays(-1).DayOfWeek);
    }

    /// <summary>True or false, or null when the argument is missing or of a type the operator cannot compare.</summary>
    internal static bool? Evaluate(Condition c, IReadOnlyDictionary<string, PolicyValue> args)
    {
        if (!args.TryGetValue(c.Arg, out var v))
        {
            return null;
        }

        switch (c.Op)
        {
            case ConditionOperator.Eq or ConditionOperator.Ne:
                if (v.Kind != c.Value!.Value.Kind)
                {
                    return null;
                }

                bool eq = v.Equals(c.Value.Value);
                return c.Op == ConditionOperator.Eq ? eq : !eq;
            case ConditionOperator.OneOf:
                return c.Values.Contains(v);
            case ConditionOperator.InList or ConditionOperator.NotInList:
                if (v.Kind != PolicyValueKind.Address)
                {
                    return null;
                }

                bool inList = c.Values.Any(x => string.Equals(x.Text, v.Text, StringComparison.Ordinal));
                return c.Op == ConditionOperator.InList ? inList : !inList;
            default:
                if (v.Kind != PolicyValueKind.Number)
                {
                    return null;
                }

                decimal n = v.Number;
                return c.Op switch
                {
                    ConditionOperator.Lt => n < c.Value!.Value.Number,
                    ConditionOperator.Lte => n <= c.Value!.Value.Number,
                    ConditionOperator.Gt => n > c.Value!.Value.Number,
                    ConditionOperator.Gte => n >= c.Value!.Value.Number,
                    _ => n >= c.Min!.Value && n <= c.Max!.Value,
                };
        }
    }
}
