using System.Globalization;
using System.Text.Json;
using Conclave.Policy.Operations;
using Conclave.Policy.Principals;
using Conclave.Policy.Risk;

namespace Conclave.Policy.Documents;

/// <summary>Strict parsing of policy documents: unknown fields, operations, roles and levels are errors.</summary>
internal static partial class PolicyParser
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
                string path = $"levels.{JsonFields.SafeName(p.Name)}";
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
}
