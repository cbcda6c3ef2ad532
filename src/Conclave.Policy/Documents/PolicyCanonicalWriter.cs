using System.Globalization;
using System.Text.Json;
using Conclave.Policy.Operations;
using Conclave.Policy.Principals;
using Conclave.Policy.Risk;

namespace Conclave.Policy.Documents;

/// <summary>
/// The canonical form of a policy document (docs/POLICY.md "Canonical form"): the parsed model written back with keys
/// in the order below, every default explicit, every set sorted (ordinal), rules sorted by id, every risk level present
/// (declared or default), numbers in plain decimal without trailing zeros, no insignificant whitespace.
/// </summary>
internal static class PolicyCanonicalWriter
{
    public static byte[] Write(PolicyDocument doc)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = false, SkipValidation = false }))
        {
            w.WriteStartObject();
            w.WriteString("id", doc.Id);
            w.WriteNumber("version", doc.Version);
            w.WriteStartArray("rules");
            foreach (var r in doc.Rules)
            {
                WriteRule(w, r);
            }

            w.WriteEndArray();
            w.WriteStartObject("levels");
            foreach (var level in RiskLevels.All)
            {
                var o = doc.Level(level);
                w.WriteStartObject(RiskLevels.Name(level));
                WriteNumber(w, "limitMultiplier", o.LimitMultiplier);
                w.WriteNumber("extraApprovers", o.ExtraApprovers);
                if (o.ApprovalTtlSeconds is { } ttl)
                {
                    w.WriteNumber("approvalTtlSeconds", ttl);
                }
                else
                {
                    w.WriteNull("approvalTtlSeconds");
                }

                WriteOps(w, "blockedOperations", o.BlockedOperations);
                WriteOps(w, "approvalOperations", o.ApprovalOperations);
                w.WriteEndObject();
            }

            w.WriteEndObject();
            if (doc.LevelApproval is { } la)
            {
                w.WritePropertyName("levelApproval");
                WriteApproval(w, la);
            }
            else
            {
                w.WriteNull("levelApproval");
            }

            w.WriteEndObject();
        }

        return stream.ToArray();
    }

    /// <summary>The canonical JSON of one rule, as it appears inside the document's canonical form.</summary>
    internal static string RuleJson(PolicyRule r) => Fragment(w => WriteRule(w, r));

    /// <summary>The canonical JSON of one condition.</summary>
    internal static string ConditionJson(Condition c) => Fragment(w => WriteCondition(w, c));

    private static string Fragment(Action<Utf8JsonWriter> write)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream))
        {
            write(w);
        }

        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }

    internal static string Number(decimal d)
    {
        string s = d.ToString(CultureInfo.InvariantCulture);
        if (s.Contains('.', StringComparison.Ordinal))
        {
            s = s.TrimEnd('0').TrimEnd('.');
        }

        return s == "-0" ? "0" : s;
    }

    private static void WriteNumber(Utf8JsonWriter w, string name, decimal d)
    {
        w.WritePropertyName(name);
        w.WriteRawValue(Number(d), skipInputValidation: false);
    }

    private static void WriteOptNumber(Utf8JsonWriter w, string name, decimal? d)
    {
        if (d is { } v)
        {
            WriteNumber(w, name, v);
        }
        else
        {
            w.WriteNull(name);
        }
    }

    private static void WriteOps(Utf8JsonWriter w, string name, IEnumerable<OperationKind> ops)
    {
        w.WriteStartArray(name);
        foreach (string n in ops.Select(Operations.Operations.Name).Order(StringComparer.Ordinal))
        {
            w.WriteStringValue(n);
        }

        w.WriteEndArray();
    }

    private static void WriteStrings(Utf8JsonWriter w, string name, IEnumerable<string> items)
    {
        w.WriteStartArray(name);
        foreach (string s in items)
        {
            w.WriteStringValue(s);
        }

        w.WriteEndArray();
    }

    private static void WriteRule(Utf8JsonWriter w, PolicyRule r)
    {
        w.WriteStartObject();
        w.WriteString("id", r.Id);
        w.WriteString("effect", r.Effect switch { Effect.Allow => "allow", Effect.Deny => "deny", _ => "require-approval" });
        w.WriteString("mode", r.Mode == RuleMode.Enforce ? "enforce" : "shadow");
        w.WriteStartObject("match");
        WriteStrings(w, "principals", r.Match.Principals);
        WriteStrings(w, "roles", r.Match.Roles.Select(Roles.Name).Order(StringComparer.Ordinal));
        WriteStrings(w, "keys", r.Match.Keys);
        WriteStrings(w, "labels", r.Match.Labels);
        WriteStrings(w, "venues", r.Match.Venues);
        w.WriteStartArray("chainIds");
        foreach (long c in r.Match.ChainIds)
        {
            w.WriteNumberValue(c);
        }

        w.WriteEndArray();
        WriteOps(w, "operations", r.Match.Operations);
        WriteStrings(w, "contracts", r.Match.Contracts);
        WriteStrings(w, "selectors", r.Match.Selectors);
        w.WriteEndObject();

        w.WriteStartArray("conditions");
        foreach (var c in r.Conditions)
        {
            WriteCondition(w, c);
        }

        w.WriteEndArray();

        if (r.Time is { } t)
        {
            w.WriteStartObject("time");
            WriteStrings(w, "days", t.Days.Select(DayName));
            w.WriteString("from", $"{t.FromMinute / 60:00}:{t.FromMinute % 60:00}");
            w.WriteString("to", $"{t.ToMinute / 60:00}:{t.ToMinute % 60:00}");
            w.WriteEndObject();
        }
        else
        {
            w.WriteNull("time");
        }

        if (r.Limits is { } l)
        {
            w.WriteStartObject("limits");
            w.WriteStartObject("perTransaction");
            WriteOptNumber(w, "native", l.PerTransactionNative);
            WriteOptNumber(w, "usd", l.PerTransactionUsd);
            w.WriteEndObject();
            w.WriteStartArray("velocity");
            foreach (var v in l.Velocity)
            {
                w.WriteStartObject();
                w.WriteString("id", v.Id);
                w.WriteNumber("windowSeconds", v.WindowSeconds);
                WriteOptNumber(w, "sumNative", v.SumNative);
                WriteOptNumber(w, "sumUsd", v.SumUsd);
                if (v.Count is { } n)
                {
                    w.WriteNumber("count", n);
                }
                else
                {
                    w.WriteNull("count");
                }

                w.WriteString("scope", v.Scope == LimitScope.Principal ? "principal" : "shared");
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }
        else
        {
            w.WriteNull("limits");
        }

        if (r.Approval is { } a)
        {
            w.WritePropertyName("approval");
            WriteApproval(w, a);
        }
        else
        {
            w.WriteNull("approval");
        }

        w.WriteEndObject();
    }

    private static void WriteCondition(Utf8JsonWriter w, Condition c)
    {
        w.WriteStartObject();
        w.WriteString("arg", c.Arg);
        w.WriteString("op", c.Op switch
        {
            ConditionOperator.Eq => "eq",
            ConditionOperator.Ne => "ne",
            ConditionOperator.OneOf => "one-of",
            ConditionOperator.Lt => "lt",
            ConditionOperator.Lte => "lte",
            ConditionOperator.Gt => "gt",
            ConditionOperator.Gte => "gte",
            ConditionOperator.Between => "between",
            ConditionOperator.InList => "in-list",
            _ => "not-in-list",
        });
        if (c.Value is { } v)
        {
            w.WritePropertyName("value");
            WriteValue(w, v);
        }

        if (c.Values.Count > 0)
        {
            w.WriteStartArray("values");
            foreach (var x in c.Values)
            {
                WriteValue(w, x);
            }

            w.WriteEndArray();
        }

        if (c.Min is { } min)
        {
            WriteNumber(w, "min", min);
        }

        if (c.Max is { } max)
        {
            WriteNumber(w, "max", max);
        }

        w.WriteEndObject();
    }

    private static void WriteValue(Utf8JsonWriter w, PolicyValue v)
    {
        switch (v.Kind)
        {
            case PolicyValueKind.Number: w.WriteRawValue(Number(v.Number)); break;
            case PolicyValueKind.Bool: w.WriteBooleanValue(v.Bool); break;
            default: w.WriteStringValue(v.Text); break;
        }
    }

    private static void WriteApproval(Utf8JsonWriter w, ApprovalSpec a)
    {
        w.WriteStartObject();
        w.WriteString("mode", a.Mode == ApprovalMode.And ? "and" : "or");
        w.WriteStartArray("groups");
        foreach (var g in a.Groups)
        {
            w.WriteStartObject();
            w.WriteString("name", g.Name);
            WriteStrings(w, "members", g.Members);
            w.WriteNumber("k", g.K);
            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteNumber("ttlSeconds", a.TtlSeconds);
        w.WriteEndObject();
    }

    private static string DayName(DayOfWeek d) => d switch
    {
        DayOfWeek.Monday => "mon",
        DayOfWeek.Tuesday => "tue",
        DayOfWeek.Wednesday => "wed",
        DayOfWeek.Thursday => "thu",
        DayOfWeek.Friday => "fri",
        DayOfWeek.Saturday => "sat",
        _ => "sun",
    };
}
