using System.Globalization;
using System.Text.Json;
using Conclave.Policy.Operations;
using Conclave.Policy.Principals;
using Conclave.Policy.Risk;

namespace Conclave.Policy.Documents;

/// <summary>Strict parsing of policy documents: unknown fields, operations, roles and levels are errors.</summary>
internal static class PolicyParser
{
    public const int MaxRules = 100_000;

    public static PolicyDocument ParseDocument(JsonElement root)
    {
        var f = new JsonFields(root, "$", "id", "version", "rules", "levels", "levelApproval");
        string id = f.RequireId("id");
        long version = f.RequireLong("version", 1, long.MaxValue);
        var ruleEls = f.OptArray("rules");
        if (ruleEls.Count > MaxRules)
        {
            throw PolicyErrors.Invalid("rules", $"at most {MaxRules} rules");
        }

        var rules = new List<PolicyRule>(ruleEls.Count);
        var ids = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < ruleEls.Count; i++)
        {
            var rule = ParseRule(ruleEls[i], $"rules[{i}]");
            if (!ids.Add(rule.Id))
            {
                throw PolicyErrors.Invalid($"rules[{i}].id", "an id used by one rule only");
            }

            rules.Add(rule);
        }

        rules.Sort((a, b) => string.CompareOrdinal(a.Id, b.Id));

        var levels = new Dictionary<RiskLevel, LevelOverride>();
        if (f.Get("levels") is { } levelsEl)
        {
            if (levelsEl.ValueKind != JsonValueKind.Object)
            {
                throw PolicyErrors.Invalid("levels", "an object keyed by risk level");
            }

            foreach (var p in levelsEl.EnumerateObject())
            {
                string path = $"levels.{p.Name}";
                if (!RiskLevels.TryParse(p.Name, out var level))
                {
                    throw PolicyErrors.UnknownField(path);
                }

                if (!levels.TryAdd(level, ParseLevel(p.Value, path, level)))
                {
                    throw PolicyErrors.Invalid(path, "a level that appears once");
                }
            }
        }

        ApprovalSpec? levelApproval = f.Get("levelApproval") is { } la ? ParseApproval(la, "levelApproval") : null;
        foreach (var (level, o) in levels)
        {
            if (o.ApprovalOperations.Count > 0 && levelApproval is null)
            {
                throw PolicyErrors.Missing("levelApproval");
            }
        }

        return new PolicyDocument(id, version, rules, Cumulative(levels), levelApproval);
    }

    /// <summary>
    /// A higher level is never looser than a lower one: each level inherits the lower level's tightenings (blocked and
    /// approval operations are unions, extra approvers the maximum, approval time to live and multiplier the minimum); a
    /// multiplier declared larger than the level below's is an error. This is what makes "raising the level never allows
    /// what a lower level denied" hold. Returns the effective override of every level.
    /// </summary>
    private static Dictionary<RiskLevel, LevelOverride> Cumulative(Dictionary<RiskLevel, LevelOverride> declared)
    {
        var result = new Dictionary<RiskLevel, LevelOverride>();
        LevelOverride? lower = null;
        foreach (var level in RiskLevels.All)
        {
            var own = declared.TryGetValue(level, out var o) ? o : LevelOverride.Default(level);
            if (lower is not null)
            {
                if (declared.ContainsKey(level) && own.LimitMultiplier > lower.LimitMultiplier)
                {
                    throw PolicyErrors.Invalid($"levels.{RiskLevels.Name(level)}.limitMultiplier", "a multiplier no larger than the level below's");
                }

                long? ttl = (own.ApprovalTtlSeconds, lower.ApprovalTtlSeconds) switch
                {
                    ({ } a, { } b) => Math.Min(a, b),
                    (null, var b) => b,
                    (var a, null) => a,
                };
                own = new LevelOverride(
                    Math.Min(own.LimitMultiplier, lower.LimitMultiplier),
                    Math.Max(own.ExtraApprovers, lower.ExtraApprovers),
                    ttl,
                    [.. new SortedSet<OperationKind>(own.BlockedOperations.Concat(lower.BlockedOperations))],
                    [.. new SortedSet<OperationKind>(own.ApprovalOperations.Concat(lower.ApprovalOperations))]);
            }

            result[level] = own;
            lower = own;
        }

        return result;
    }

    private static LevelOverride ParseLevel(JsonElement e, string path, RiskLevel level)
    {
        var f = new JsonFields(e, path, "limitMultiplier", "extraApprovers", "approvalTtlSeconds", "blockedOperations", "approvalOperations");
        var defaults = LevelOverride.Default(level);
        decimal multiplier = f.OptDecimal("limitMultiplier", 0m, 1m) ?? defaults.LimitMultiplier;
        if (level == RiskLevel.Lockdown && multiplier != 0m)
        {
            throw PolicyErrors.Invalid(f.At("limitMultiplier"), "0 in lockdown (only risk-reducing operations pass, at their base limits)");
        }

        if (level == RiskLevel.Normal && multiplier != 1m)
        {
            throw PolicyErrors.Invalid(f.At("limitMultiplier"), "1 at level normal (limits are written for normal)");
        }

        int extra = (int)(f.OptLong("extraApprovers", 0, 16) ?? 0);
        long? ttl = f.OptLong("approvalTtlSeconds", 1, 7 * 86400);
        return new LevelOverride(multiplier, extra, ttl, ParseOperations(f, "blockedOperations"), ParseOperations(f, "approvalOperations"));
    }

    private static IReadOnlyList<OperationKind> ParseOperations(JsonFields f, string name)
    {
        var names = f.OptStrings(name);
        var set = new SortedSet<OperationKind>();
        for (int i = 0; i < names.Count; i++)
        {
            if (!Operations.Operations.TryParse(names[i], out var op))
            {
                throw PolicyErrors.Invalid($"{f.At(name)}[{i}]", "an operation: " + string.Join(", ", Operations.Operations.Names.Where(n => n != "unknown")));
            }

            set.Add(op);
        }

        return [.. set];
    }

    private static PolicyRule ParseRule(JsonElement e, string path)
    {
        var f = new JsonFields(e, path, "id", "effect", "mode", "match", "conditions", "time", "limits", "approval");
        string id = f.RequireId("id");
        Effect effect = f.RequireString("effect") switch
        {
            "allow" => Effect.Allow,
            "deny" => Effect.Deny,
            "require-approval" => Effect.RequireApproval,
            _ => throw PolicyErrors.Invalid(f.At("effect"), "allow, deny or require-approval"),
        };
        RuleMode mode = f.OptString("mode") switch
        {
            null or "enforce" => RuleMode.Enforce,
            "shadow" => RuleMode.Shadow,
            _ => throw PolicyErrors.Invalid(f.At("mode"), "enforce or shadow"),
        };

        var match = f.Get("match") is { } m ? ParseMatch(m, f.At("match")) : new RuleMatch();
        var condEls = f.OptArray("conditions");
        var conditions = new List<Condition>(condEls.Count);
        for (int i = 0; i < condEls.Count; i++)
        {
            conditions.Add(ParseCondition(condEls[i], $"{f.At("conditions")}[{i}]"));
        }

        TimeWindow? time = f.Get("time") is { } t ? ParseTime(t, f.At("time")) : null;
        Limits? limits = f.Get("limits") is { } l ? ParseLimits(l, f.At("limits")) : null;
        ApprovalSpec? approval = f.Get("approval") is { } a ? ParseApproval(a, f.At("approval")) : null;
        if (effect == Effect.RequireApproval && approval is null)
        {
            throw PolicyErrors.Missing(f.At("approval"));
        }

        if (effect != Effect.RequireApproval && approval is not null)
        {
            throw PolicyErrors.Invalid(f.At("approval"), "approval only on rules with effect require-approval");
        }

        if (effect == Effect.Deny && limits is not null)
        {
            throw PolicyErrors.Invalid(f.At("limits"), "limits only on allow or require-approval rules");
        }

        return new PolicyRule { Id = id, Effect = effect, Mode = mode, Match = match, Conditions = conditions, Time = time, Limits = limits, Approval = approval };
    }

    private static RuleMatch ParseMatch(JsonElement e, string path)
    {
        var f = new JsonFields(e, path, "principals", "roles", "keys", "labels", "venues", "chainIds", "operations", "contracts", "selectors");
        var roles = new SortedSet<Role>();
        var roleNames = f.OptStrings("roles");
        for (int i = 0; i < roleNames.Count; i++)
        {
            roles.Add(Principals.Roles.TryParse(roleNames[i], out var r) ? r : throw PolicyErrors.Invalid($"{f.At("roles")}[{i}]", "admin, operator, approver, auditor or agent"));
        }

        var chainIds = new SortedSet<long>();
        var chainEls = f.OptArray("chainIds");
        for (int i = 0; i < chainEls.Count; i++)
        {
            chainIds.Add(JsonFields.AsLong(chainEls[i], $"{f.At("chainIds")}[{i}]", 1, long.MaxValue));
        }

        return new RuleMatch
        {
            Principals = SortedIds(f, "principals"),
            Roles = [.. roles],
            Keys = SortedIds(f, "keys"),
            Labels = SortedIds(f, "labels"),
            Venues = SortedIds(f, "venues"),
            ChainIds = [.. chainIds],
            Operations = ParseOperations(f, "operations"),
            Contracts = SortedHex(f, "contracts", 20),
            Selectors = SortedHex(f, "selectors", 4),
        };
    }

    private static List<string> SortedIds(JsonFields f, string name)
    {
        var items = f.OptStrings(name);
        var set = new SortedSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < items.Count; i++)
        {
            set.Add(Identifiers.IsValid(items[i]) ? items[i] : throw PolicyErrors.Invalid($"{f.At(name)}[{i}]", "an id of 1-128 characters from [A-Za-z0-9._:@-]"));
        }

        return [.. set];
    }

    private static List<string> SortedHex(JsonFields f, string name, int bytes)
    {
        var items = f.OptStrings(name);
        var set = new SortedSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < items.Count; i++)
        {
            set.Add(NormalizeHex(items[i], bytes) ?? throw PolicyErrors.Invalid($"{f.At(name)}[{i}]", $"0x and {bytes * 2} hex digits"));
        }

        return [.. set];
    }

    internal static string? NormalizeHex(string s, int bytes)
    {
        if (s.Length != 2 + (bytes * 2) || !s.StartsWith("0x", StringComparison.Ordinal))
        {
            return null;
        }

        for (int i = 2; i < s.Length; i++)
        {
            if (!char.IsAsciiHexDigit(s[i]))
            {
                return null;
            }
        }

        return s.ToLowerInvariant();
    }

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

        return new Condition(arg, op, value, values, min, max);
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
            var limit = new VelocityLimit(id, v.RequireLong("windowSeconds", 1, 366L * 86400), v.OptDecimal("sumNative", 0m, decimal.MaxValue),
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
