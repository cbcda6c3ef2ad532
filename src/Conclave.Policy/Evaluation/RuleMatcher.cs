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
    /// <remarks>
    /// Runs once per candidate rule of every decision (the worst case, rules the principal/operation index cannot
    /// narrow, is every rule of the document: `conclave bench` rows policy/decide-by-condition-…), so it is written with
    /// plain loops and ordinal comparisons and allocates nothing.
    /// </remarks>
    public static bool Matches(PolicyRule rule, OperationRequest req, DateTimeOffset now)
    {
        var m = rule.Match;
        if (m.Principals.Count > 0 && !Contains(m.Principals, req.Principal.Id))
        {
            return false;
        }

        if (m.Roles.Count > 0 && !AnyRole(m.Roles, req.Principal))
        {
            return false;
        }

        if ((m.Keys.Count > 0 || m.Labels.Count > 0) && !Contains(m.Keys, req.KeyId) && !AnyLabel(m.Labels, req.KeyLabels))
        {
            return false;
        }

        if (m.Venues.Count > 0 && (req.Venue is null || !Contains(m.Venues, req.Venue)))
        {
            return false;
        }

        if (m.ChainIds.Count > 0 && (req.ChainId is not { } chain || !Contains(m.ChainIds, chain)))
        {
            return false;
        }

        if (m.Operations.Count > 0 && !Contains(m.Operations, req.Operation))
        {
            return false;
        }

        if (m.Contracts.Count > 0 && (req.Contract is null || !Contains(m.Contracts, req.Contract)))
        {
            return false;
        }

        if (m.Selectors.Count > 0 && (req.Selector is null || !Contains(m.Selectors, req.Selector)))
        {
            return false;
        }

        if (rule.Time is { } t && !InWindow(t, now))
        {
            return false;
        }

        bool whenUnknown = rule.Effect != Effect.Allow;
        IReadOnlyList<Condition> conditions = rule.Conditions;
        for (int i = 0; i < conditions.Count; i++)
        {
            bool? holds = Evaluate(conditions[i], req.Args);
            if (!(holds ?? whenUnknown))
            {
                return false;
            }
        }

        return true;
    }

    private static bool Contains(IReadOnlyList<string> list, string value)
    {
        for (int i = 0; i < list.Count; i++)
        {
            if (string.Equals(list[i], value, StringComparison.Ordinal))
            {
                return true;
            }
        }

        return false;
    }

    private static bool Contains<T>(IReadOnlyList<T> list, T value)
        where T : struct
    {
        for (int i = 0; i < list.Count; i++)
        {
            if (EqualityComparer<T>.Default.Equals(list[i], value))
            {
                return true;
            }
        }

        return false;
    }

    private static bool ContainsValue(IReadOnlyList<PolicyValue> values, PolicyValue v)
    {
        if (values is ValueSet set)
        {
            return set.Contains(v);
        }

        for (int i = 0; i < values.Count; i++)
        {
            if (values[i].Equals(v))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Whether an address is in the list (the condition's values are addresses, lowercase, as is <paramref name="address"/>'s text).</summary>
    private static bool ContainsAddress(IReadOnlyList<PolicyValue> values, PolicyValue address)
    {
        if (values is ValueSet set)
        {
            return set.Contains(address);
        }

        for (int i = 0; i < values.Count; i++)
        {
            if (string.Equals(values[i].Text, address.Text, StringComparison.Ordinal))
            {
                return true;
            }
        }

        return false;
    }

    private static bool AnyRole(IReadOnlyList<Conclave.Policy.Principals.Role> roles, Conclave.Policy.Principals.Principal principal)
    {
        for (int i = 0; i < roles.Count; i++)
        {
            if (principal.HasRole(roles[i]))
            {
                return true;
            }
        }

        return false;
    }

    private static bool AnyLabel(IReadOnlyList<string> ruleLabels, IReadOnlyList<string> keyLabels)
    {
        for (int i = 0; i < keyLabels.Count; i++)
        {
            if (Contains(ruleLabels, keyLabels[i]))
            {
                return true;
            }
        }

        return false;
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
                return ContainsValue(c.Values, v);
            case ConditionOperator.InList or ConditionOperator.NotInList:
                if (v.Kind != PolicyValueKind.Address)
                {
                    return null;
                }

                bool inList = ContainsAddress(c.Values, v);
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
