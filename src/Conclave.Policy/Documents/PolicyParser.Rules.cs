using System.Globalization;
using System.Text.Json;
using Conclave.Policy.Operations;

namespace Conclave.Policy.Documents;

/// <summary>The parts of a rule: conditions, time windows, limits and approvals.</summary>
internal static partial class PolicyParser
{
    private static Condition ParseCondition(JsonElement e, string path)
    {
        var f = new JsonFields(e, path, "arg", "op", "value", "values", "min", "max");
        string arg = f.RequireId("arg");
        var op = f.RequireString("op") switch
        {
            "eq" => ConditionOperator.Eq,
            "ne" => ConditionOperator.Ne,
            "one-of" => ConditionOperator.OneOf,
            "lt" => ConditionOperator.Lt,
            "lte" => ConditionOperator.Lte,
            "gt" => ConditionOperator.Gt,
            "gte" => ConditionOperator.Gte,
            "between" => ConditionOperator.Between,
            "in-list" => ConditionOperator.InList,
            "not-in-list" => ConditionOperator.NotInList,
            _ => throw PolicyErrors.Invalid(f.At("op"), "eq, ne, one-of, lt, lte, gt, gte, between, in-list or not-in-list"),
        };

        PolicyValue? value = null;
        var values = new List<PolicyValue>();
        decimal? min = null, max = null;
        switch (op)
        {
            case ConditionOperator.Eq or ConditionOperator.Ne:
                value = ParseValue(f.Require("value"), f.At("value"));
                Only(f, "value");
                break;
            case ConditionOperator.Lt or ConditionOperator.Lte or ConditionOperator.Gt or ConditionOperator.Gte:
                value = PolicyValue.Of(JsonFields.AsDecimal(f.Require("value"), f.At("value"), decimal.MinValue, decimal.MaxValue));
                Only(f, "value");
                break;
            case ConditionOperator.Between:
                min = f.OptDecimal("min", decimal.MinValue, decimal.MaxValue) ?? throw PolicyErrors.Missing(f.At("min"));
                max = f.OptDecimal("max", decimal.MinValue, decimal.MaxValue) ?? throw PolicyErrors.Missing(f.At("max"));
                if (min > max)
                {
                    throw PolicyErrors.Invalid(f.At("max"), "max not below min");
                }

                Only(f, "min", "max");
                break;
            case ConditionOperator.OneOf:
                var els = f.OptArray("values");
                for (int i = 0; i < els.Count; i++)
                {
                    values.Add(ParseValue(els[i], $"{f.At("values")}[{i}]"));
                }

                if (values.Count == 0)
                {
                    throw PolicyErrors.Missing(f.At("values"));
                }

                values = [.. values.Distinct().OrderBy(v => v.Kind).ThenBy(v => v.ToString(), StringComparer.Ordinal)];
                Only(f, "values");
                break;
            default:
                var addrs = f.OptStrings("values");
                for (int i = 0; i < addrs.Count; i++)
                {
                    values.Add(PolicyValue.OfAddress(addrs[i]) ?? throw PolicyErrors.Invalid($"{f.At("values")}[{i}]", "an address: 0x and 40 hex digits"));
                }

                if (values.Count == 0)
                {
                    throw PolicyErrors.Missing(f.At("values"));
                }

                values = [.. values.Distinct().OrderBy(v => v.Text, StringComparer.Ordinal)];
                Only(f, "values");
                break;
        }

        return new Condition(arg, op, value, new ValueSet(values), min, max);
    }

    private static void Only(JsonFields f, params string[] allowed)
    {
        foreach (string n in new[] { "value", "values", "min", "max" })
        {
            if (f.Has(n) && Array.IndexOf(allowed, n) < 0)
            {
                throw PolicyErrors.Invalid(f.At(n), "only " + string.Join(" and ", allowed) + " with this operator");
            }
        }
    }

    /// <summary>A JSON literal as a policy value: number, true/false, an address (0x + 40 hex), or text.</summary>
    internal static PolicyValue ParseValue(JsonElement e, string path) => e.ValueKind switch
    {
        JsonValueKind.Number => PolicyValue.Of(JsonFields.AsDecimal(e, path, decimal.MinValue, decimal.MaxValue)),
        JsonValueKind.True => PolicyValue.Of(true),
        JsonValueKind.False => PolicyValue.Of(false),
        JsonValueKind.String => PolicyValue.OfAddress(e.GetString()!) ?? PolicyValue.OfText(e.GetString()!),
        _ => throw PolicyErrors.Invalid(path, "a number, true, false or a string"),
    };

    private static TimeWindow ParseTime(JsonElement e, string path)
    {
        var f = new JsonFields(e, path, "days", "from", "to");
        var names = f.OptStrings("days");
        var days = new SortedSet<DayOfWeek>();
        for (int i = 0; i < names.Count; i++)
        {
            days.Add(names[i] switch
            {
                "mon" => DayOfWeek.Monday,
                "tue" => DayOfWeek.Tuesday,
                "wed" => DayOfWeek.Wednesday,
                "thu" => DayOfWeek.Thursday,
                "fri" => DayOfWeek.Friday,
                "sat" => DayOfWeek.Saturday,
                "sun" => DayOfWeek.Sunday,
                _ => throw PolicyErrors.Invalid($"{f.At("days")}[{i}]", "mon, tue, wed, thu, fri, sat or sun"),
            });
        }

        if (days.Count == 0)
        {
            days = [.. Enum.GetValues<DayOfWeek>()];
        }

        int from = ParseMinute(f.RequireString("from"), f.At("from"));
        int to = ParseMinute(f.RequireString("to"), f.At("to"));
        if (from == to)
        {
            throw PolicyErrors.Invalid(f.At("to"), "a time other than from");
        }

        return new TimeWindow([.. days], from, to);
    }

    private static int ParseMinute(string s, string path)
    {
        if (s.Length == 5 && s[2] == ':' && int.TryParse(s.AsSpan(0, 2), NumberStyles.None, CultureInfo.InvariantCulture, out int h)
            && int.TryParse(s.AsSpan(3, 2), NumberStyles.None, CultureInfo.InvariantCulture, out int m) && h <= 24 && m < 60 && (h < 24 || m == 0))
        {
            return (h * 60) + m;
        }

        throw PolicyErrors.Invalid(path, "a UTC time HH:mm (00:00 to 24:00)");
    }

    private static Limits ParseLimits(JsonElement e, string path)
    {
        var f = new JsonFields(e, path, "perTransaction", "velocity");
        decimal? native = null, usd = null;
        if (f.Get("perTransaction") is { } pt)
        {
            var p = new JsonFields(pt, f.At("perTransaction"), "native", "usd");
            native = p.OptDecimal("native", 0m, decimal.MaxValue);
            usd = p.OptDecimal("usd", 0m, decimal.MaxValue);
        }

        var velEls = f.OptArray("velocity");
        var velocity = new List<VelocityLimit>(velEls.Count);
        var ids = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < velEls.Count; i++)
        {
            string vp = $"{f.At("velocity")}[{i}]";
            var v = new JsonFields(velEls[i], vp, "id", "windowSeconds", "sumNative", "sumUsd", "count", "scope");
            string id = v.RequireId("id");
            if (!ids.Add(id))
            {
                throw PolicyErrors.Invalid(v.At("id"), "an id used once per rule");
            }

            var scope = v.OptString("scope") switch
            {
                null or "principal" => LimitScope.Principal,
                "shared" => LimitScope.Shared,
                _ => throw PolicyErrors.Invalid(v.At("scope"), "principal or shared"),
            };
            var limit = new VelocityLimit(id, v.RequireLong("windowSeconds", 1, VelocityLimit.MaxWindowSeconds), v.OptDecimal("sumNative", 0m, decimal.MaxValue),
                v.OptDecimal("sumUsd", 0m, decimal.MaxValue), v.OptLong("count", 0, int.MaxValue), scope);
            if (limit.SumNative is null && limit.SumUsd is null && limit.Count is null)
            {
                throw PolicyErrors.Missing(v.At("sumNative|sumUsd|count"));
            }

            velocity.Add(limit);
        }

        velocity.Sort((a, b) => string.CompareOrdinal(a.Id, b.Id));
        return new Limits(native, usd, velocity);
    }

    internal static ApprovalSpec ParseApproval(JsonElement e, string path)
    {
        var f = new JsonFields(e, path, "mode", "groups", "ttlSeconds");
        var mode = f.OptString("mode") switch
        {
            null or "and" => ApprovalMode.And,
            "or" => ApprovalMode.Or,
            _ => throw PolicyErrors.Invalid(f.At("mode"), "and or or"),
        };
        var groupEls = f.OptArray("groups");
        if (groupEls.Count == 0)
        {
            throw PolicyErrors.Missing(f.At("groups"));
        }

        var groups = new List<ApprovalGroup>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < groupEls.Count; i++)
        {
            string gp = $"{f.At("groups")}[{i}]";
            var g = new JsonFields(groupEls[i], gp, "name", "members", "k");
            string name = g.RequireId("name");
            if (!names.Add(name))
            {
                throw PolicyErrors.Invalid(g.At("name"), "a group name used once");
            }

            var members = SortedIds(g, "members");
            if (members.Count == 0)
            {
                throw PolicyErrors.Missing(g.At("members"));
            }

            int k = (int)g.RequireLong("k", 1, members.Count);
            groups.Add(new ApprovalGroup(name, members, k));
        }

        groups.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        return new ApprovalSpec(mode, groups, f.RequireLong("ttlSeconds", 1, 7 * 86400));
    }
}
