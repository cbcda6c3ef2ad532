using System.Text.Json.Nodes;
using Conclave.Policy.Documents;
using Conclave.Policy.Evaluation;
using Conclave.Policy.Risk;

using static Conclave.Policy.Tests.PolicyPropertyTests;

namespace Conclave.Policy.Tests;

/// <summary>
/// <see cref="PolicyChangeClassifier"/> (docs/POLICY.md "Changing policies"): a table of changes with the expected
/// classification, and the property that a change classified as tightening never moves any request's outcome up
/// (deny &lt; require-approval &lt; allow) at any risk level, over seeded random policies, changes and requests.
/// </summary>
public sealed class PolicyChangeTests
{
    private const string Base = """
        {"id":"p","version":1,"rules":[
          {"id":"liq","effect":"allow","match":{"operations":["liquidate"]},"conditions":[{"arg":"amount","op":"lt","value":100}],
           "limits":{"perTransaction":{"native":50},"velocity":[{"id":"hour","windowSeconds":3600,"sumNative":500}]}},
          {"id":"held","effect":"require-approval","match":{"operations":["release-collateral"]},
           "approval":{"mode":"or","groups":[{"name":"risk","members":["alice","bob","carol"],"k":1}],"ttlSeconds":900}},
          {"id":"no-transfers","effect":"deny","match":{"operations":["transfer"]}},
          {"id":"watch","effect":"deny","mode":"shadow","match":{"operations":["hedge"]}}],
         "levels":{"elevated":{"blockedOperations":["settle"]}},
         "levelApproval":{"mode":"or","groups":[{"name":"risk","members":["alice","bob"],"k":1}],"ttlSeconds":600}}
        """;

    private static JsonObject Doc() => JsonNode.Parse(Base)!.AsObject();

    private static JsonObject Rule(JsonObject doc, string id) => doc["rules"]!.AsArray().Single(r => r!["id"]!.GetValue<string>() == id)!.AsObject();

    private static PolicyChange Classify(JsonObject? before, JsonObject after, bool beforeEnforced = true, bool afterEnforced = true) =>
        PolicyChangeClassifier.Classify(before is null ? null : PolicyDocument.Parse(before.ToJsonString()), beforeEnforced, PolicyDocument.Parse(after.ToJsonString()), afterEnforced);

    public static TheoryData<string, string> Changes() => new()
    {
        { "tightening", "deny rule added" },
        { "tightening", "allow rule removed" },
        { "tightening", "allow rule turned into deny" },
        { "tightening", "allow rule now requires approval" },
        { "tightening", "condition added to allow rule" },
        { "tightening", "per-transaction limit lowered" },
        { "tightening", "velocity sum lowered" },
        { "tightening", "velocity limit added" },
        { "tightening", "approval k raised" },
        { "tightening", "approval ttl shortened" },
        { "tightening", "level blocks more" },
        { "tightening", "level extra approvers" },
        { "tightening", "levelApproval removed" },
        { "tightening", "shadow rule added" },
        { "tightening", "only the version changes" },
        { "loosening", "allow rule with a condition now requires approval" },
        { "loosening", "deny rule removed" },
        { "loosening", "deny rule changed" },
        { "loosening", "allow rule added" },
        { "loosening", "require-approval rule removed" },
        { "loosening", "require-approval rule changed to allow" },
        { "loosening", "condition removed from allow rule" },
        { "loosening", "condition added to require-approval rule" },
        { "loosening", "limit raised" },
        { "loosening", "limit removed" },
        { "loosening", "velocity window changed" },
        { "loosening", "match widened" },
        { "loosening", "approval k lowered" },
        { "loosening", "approval ttl longer" },
        { "loosening", "level blocks less" },
        { "loosening", "levelApproval k lowered" },
        { "loosening", "enforced deny turned shadow" },
        { "loosening", "document turned shadow" },
    };

    private static (JsonObject? Before, JsonObject After, bool BeforeEnforced, bool AfterEnforced) Make(string change)
    {
        JsonObject d = Doc();
        d["version"] = 2;
        JsonArray rules = d["rules"]!.AsArray();
        bool afterEnforced = true;
        switch (change)
        {
            case "deny rule added": rules.Add(JsonNode.Parse("""{"id":"no-hedge","effect":"deny","match":{"operations":["hedge"]}}""")); break;
            case "allow rule removed": rules.Remove(Rule(d, "liq")); break;
            case "allow rule turned into deny":
                Rule(d, "liq")["effect"] = "deny";
                Rule(d, "liq").Remove("limits");
                break;
            case "allow rule now requires approval":
                Rule(d, "liq").Remove("conditions");
                return (d, Changed(d, x =>
                {
                    Rule(x, "liq")["effect"] = "require-approval";
                    Rule(x, "liq")["approval"] = JsonNode.Parse("""{"groups":[{"name":"g","members":["alice"],"k":1}],"ttlSeconds":60}""");
                }), true, true);
            case "allow rule with a condition now requires approval":
                Rule(d, "liq")["effect"] = "require-approval";
                Rule(d, "liq")["approval"] = JsonNode.Parse("""{"groups":[{"name":"g","members":["alice"],"k":1}],"ttlSeconds":60}""");
                break;
            case "condition added to allow rule": Rule(d, "liq")["conditions"]!.AsArray().Add(JsonNode.Parse("""{"arg":"amount","op":"gt","value":1}""")); break;
            case "per-transaction limit lowered": Rule(d, "liq")["limits"]!["perTransaction"]!["native"] = 40; break;
            case "velocity sum lowered": Rule(d, "liq")["limits"]!["velocity"]![0]!["sumNative"] = 400; break;
            case "velocity limit added": Rule(d, "liq")["limits"]!["velocity"]!.AsArray().Add(JsonNode.Parse("""{"id":"day","windowSeconds":86400,"count":10}""")); break;
            case "approval k raised": Rule(d, "held")["approval"]!["groups"]![0]!["k"] = 2; break;
            case "approval ttl shortened": Rule(d, "held")["approval"]!["ttlSeconds"] = 300; break;
            case "level blocks more": d["levels"]!["elevated"]!["blockedOperations"]!.AsArray().Add("exercise"); break;
            case "level extra approvers": d["levels"]!["stressed"] = JsonNode.Parse("""{"extraApprovers":1}"""); break;
            case "levelApproval removed": d.Remove("levelApproval"); break;
            case "shadow rule added": rules.Add(JsonNode.Parse("""{"id":"try","effect":"allow","mode":"shadow","match":{"operations":["hedge"]}}""")); break;
            case "only the version changes": break;
            case "deny rule removed": rules.Remove(Rule(d, "no-transfers")); break;
            case "deny rule changed": Rule(d, "no-transfers")["match"]!["principals"] = new JsonArray("bot"); break;
            case "allow rule added": rules.Add(JsonNode.Parse("""{"id":"hedge","effect":"allow","match":{"operations":["hedge"]}}""")); break;
            case "require-approval rule removed": rules.Remove(Rule(d, "held")); break;
            case "require-approval rule changed to allow":
                Rule(d, "held")["effect"] = "allow";
                Rule(d, "held").Remove("approval");
                break;
            case "condition removed from allow rule": Rule(d, "liq").Remove("conditions"); break;
            case "condition added to require-approval rule": Rule(d, "held")["conditions"] = JsonNode.Parse("""[{"arg":"amount","op":"gt","value":10}]"""); break;
            case "limit raised": Rule(d, "liq")["limits"]!["perTransaction"]!["native"] = 60; break;
            case "limit removed": Rule(d, "liq")["limits"]!["perTransaction"]!.AsObject().Remove("native"); break;
            case "velocity window changed": Rule(d, "liq")["limits"]!["velocity"]![0]!["windowSeconds"] = 60; break;
            case "match widened": Rule(d, "liq")["match"]!["operations"]!.AsArray().Add("hedge"); break;
            case "approval k lowered":
                Rule(d, "held")["approval"]!["groups"]![0]!["k"] = 2;
                return (d, Changed(d, x => Rule(x, "held")["approval"]!["groups"]![0]!["k"] = 1), true, true);
            case "approval ttl longer": Rule(d, "held")["approval"]!["ttlSeconds"] = 1800; break;
            case "level blocks less": d["levels"]!["elevated"]!["blockedOperations"] = new JsonArray(); break;
            case "levelApproval k lowered":
                d["levelApproval"]!["groups"]![0]!["k"] = 2;
                return (d, Changed(d, x => x["levelApproval"]!["groups"]![0]!["k"] = 1), true, true);
            case "enforced deny turned shadow": Rule(d, "no-transfers")["mode"] = "shadow"; break;
            case "document turned shadow": afterEnforced = false; break;
            default: throw new ArgumentException(change);
        }

        return (Doc(), d, true, afterEnforced);
    }

    private static JsonObject Changed(JsonObject d, Action<JsonObject> change)
    {
        JsonObject copy = d.DeepClone().AsObject();
        copy["version"] = copy["version"]!.GetValue<int>() + 1;
        change(copy);
        return copy;
    }

    [Theory]
    [MemberData(nameof(Changes))]
    public void A_change_is_tightening_only_if_provably_so(string expected, string change)
    {
        (JsonObject? before, JsonObject after, bool be, bool ae) = Make(change);
        PolicyChange c = Classify(before, after, be, ae);
        Assert.True(expected == c.KindName, $"{change}: {c.KindName} ({string.Join("; ", c.Reasons)})");
        Assert.NotEmpty(c.Reasons);
    }

    [Fact]
    public void A_new_document_is_tightening_only_without_permitting_rules_and_a_shadow_document_changes_nothing()
    {
        var onlyDenies = JsonNode.Parse("""{"id":"n","version":1,"rules":[{"id":"d","effect":"deny","match":{"operations":["transfer"]}}]}""")!.AsObject();
        var grants = JsonNode.Parse("""{"id":"n","version":1,"rules":[{"id":"a","effect":"allow","match":{"operations":["transfer"]}}]}""")!.AsObject();
        Assert.Equal(PolicyChangeKind.Tightening, Classify(null, onlyDenies).Kind);
        PolicyChange g = Classify(null, grants);
        Assert.Equal(PolicyChangeKind.Loosening, g.Kind);
        Assert.Contains("allow rule a added", g.Reasons);
        // Shadow documents decide nothing: put as shadow is a tightening; shadow to enforce compares with nothing.
        Assert.Equal(PolicyChangeKind.Tightening, Classify(null, grants, afterEnforced: false).Kind);
        Assert.Equal(PolicyChangeKind.Loosening, Classify(grants, Changed(grants, _ => { }), beforeEnforced: false).Kind);
        // The reasons of a loosening name every loosening step, not the tightening ones beside it.
        JsonObject mixed = Changed(Doc(), d =>
        {
            Rule(d, "liq")["limits"]!["perTransaction"]!["native"] = 10;
            d["rules"]!.AsArray().Remove(Rule(d, "no-transfers"));
        });
        PolicyChange m = Classify(Doc(), mixed);
        Assert.Equal(PolicyChangeKind.Loosening, m.Kind);
        Assert.Equal(["deny rule no-transfers removed"], m.Reasons);
    }

    private static int Rank(DecisionOutcome o) => o switch { DecisionOutcome.Deny => 0, DecisionOutcome.RequireApproval => 1, _ => 2 };

    /// <summary>One to three random changes of any kind (tightening or loosening) to a random policy.</summary>
    private static JsonObject Mutate(Random r, JsonObject before)
    {
        JsonObject p = before.DeepClone().AsObject();
        p["version"] = 2;
        int n = r.Next(1, 4);
        for (int i = 0; i < n; i++)
        {
            JsonArray rules = p["rules"]!.AsArray();
            JsonObject? any = rules.Count > 0 ? Pick(r, [.. rules.Select(x => x!.AsObject())]) : null;
            switch (r.Next(12))
            {
                case 0: rules.Add(RandomRule(r, $"zd{i}", "deny")); break;
                case 1 when any is not null: rules.Remove(any); break;
                case 2: rules.Add(RandomRule(r, $"za{i}")); break;
                case 3 when any is not null && (string)any["effect"]! != "deny":
                    int current = any["limits"]?["perTransaction"]?["native"]?.GetValue<int>() ?? 100;
                    if (r.Next(4) == 0)
                    {
                        any.Remove("limits");
                    }
                    else
                    {
                        any["limits"] = new JsonObject { ["perTransaction"] = new JsonObject { ["native"] = Math.Max(1, current + r.Next(-40, 40)) } };
                    }

                    break;
                case 4 when any is not null:
                    JsonArray conditions = any["conditions"]?.AsArray() ?? [];
                    any["conditions"] = conditions;
                    conditions.Add(RandomCondition(r));
                    break;
                case 5 when any is not null: any.Remove("conditions"); break;
                case 6 when any is not null && (string)any["effect"]! == "allow":
                    any["effect"] = "require-approval";
                    any["approval"] = new JsonObject { ["groups"] = new JsonArray(new JsonObject { ["name"] = "g", ["members"] = new JsonArray("a1", "a2"), ["k"] = 1 }), ["ttlSeconds"] = 600 };
                    break;
                case 7 when any is not null:
                    string effect = Pick(r, ["allow", "deny", "require-approval"]);
                    rules.Remove(any);
                    JsonObject replaced = RandomRule(r, any["id"]!.GetValue<string>(), effect);
                    replaced["match"] = any["match"]!.DeepClone();
                    rules.Add(replaced);
                    break;
                case 8 when any is not null && any["approval"] is JsonObject a:
                    a["groups"]![0]!["k"] = r.Next(1, 3);
                    a["ttlSeconds"] = Pick(r, [300, 600, 900]);
                    break;
                case 9:
                    p["levels"]!["elevated"]!["limitMultiplier"] = Pick(r, [0.3, 0.5, 0.7]);
                    break;
                case 10:
                    p["levels"]!["elevated"]!["blockedOperations"] = Subset(r, s_ops);
                    break;
                case 11 when any is not null:
                    any["match"]!["principals"] = Subset(r, s_principals);
                    break;
                default: break;
            }
        }

        return p;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void A_change_classified_as_tightening_never_lets_a_request_further_than_before(int stream)
    {
        var r = TestSeed.Random($"stream {stream}");
        int tightenings = 0, loosenings = 0, moved = 0;
        for (int i = 0; i < 300; i++)
        {
            JsonObject before = RandomPolicy(r);
            JsonObject after = Mutate(r, before);
            PolicyDocument b = PolicyDocument.Parse(before.ToJsonString());
            PolicyDocument a;
            try
            {
                a = PolicyDocument.Parse(after.ToJsonString());
            }
            catch (PolicyFormatException)
            {
                continue; // a mutation can make an invalid document (a duplicate rule id); nothing to classify
            }

            PolicyChange c = PolicyChangeClassifier.Classify(b, true, a, true);
            if (c.Kind == PolicyChangeKind.Loosening)
            {
                loosenings++;
                continue;
            }

            tightenings++;
            for (int j = 0; j < 20; j++)
            {
                var req = RandomRequest(r);
                foreach (RiskLevel level in RiskLevels.All)
                {
                    var ctx = new EvaluationContext(level, new DateTimeOffset(2026, 11, 30, 12, 0, 0, TimeSpan.Zero));
                    Decision was = PolicyEvaluator.Decide(b, req, ctx, EmptyCounters.Instance);
                    Decision now = PolicyEvaluator.Decide(a, req, ctx, EmptyCounters.Instance);
                    Assert.True(Rank(now.Outcome) <= Rank(was.Outcome),
                        $"{TestSeed.EnvironmentVariable}={TestSeed.Run} stream {stream} case {i}: a change classified tightening ({string.Join("; ", c.Reasons)}) moved {was.ToJson()} to {now.ToJson()}");
                    if (Rank(now.Outcome) < Rank(was.Outcome))
                    {
                        moved++;
                    }
                }
            }
        }

        Assert.True(tightenings > 40 && loosenings > 40 && moved > 10, $"the generator must exercise both kinds (tightening {tightenings}, loosening {loosenings}, moved {moved})");
    }
}
