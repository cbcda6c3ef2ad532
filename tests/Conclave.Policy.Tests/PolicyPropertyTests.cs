using System.Text.Json.Nodes;
using Conclave.Policy.Documents;
using Conclave.Policy.Evaluation;
using Conclave.Policy.Operations;
using Conclave.Policy.Principals;
using Conclave.Policy.Risk;

namespace Conclave.Policy.Tests;

/// <summary>
/// Properties over randomly generated policies and requests (System.Random streams derived from the run seed, so each
/// run checks new cases and a failure names the run seed, stream and case that replay it): deny always wins, and a
/// tightened policy (or a higher risk level) never allows what the looser one denied.
/// </summary>
public sealed class PolicyPropertyTests
{
    internal static readonly string[] s_ops = ["liquidate", "hedge", "transfer", "release-collateral", "settle", "message"];
    internal static readonly string[] s_principals = ["p0", "p1", "p2", "p3"];
    private static readonly string[] s_keys = ["k0", "k1", "k2"];
    private static readonly string[] s_addresses = ["0x" + new string('1', 40), "0x" + new string('2', 40), "0x" + new string('3', 40)];
    private static readonly DateTimeOffset s_now = new(2026, 11, 30, 12, 0, 0, TimeSpan.Zero);

    internal static T Pick<T>(Random r, IReadOnlyList<T> items) => items[r.Next(items.Count)];

    internal static JsonArray Subset(Random r, IReadOnlyList<string> items)
    {
        var a = new JsonArray();
        if (r.Next(3) == 0)
        {
            return a;
        }

        foreach (string s in items)
        {
            if (r.Next(2) == 0)
            {
                a.Add(s);
            }
        }

        return a;
    }

    internal static JsonObject RandomCondition(Random r) => r.Next(4) switch
    {
        0 => new JsonObject { ["arg"] = "amount", ["op"] = "lt", ["value"] = r.Next(0, 100) },
        1 => new JsonObject { ["arg"] = "amount", ["op"] = "gte", ["value"] = r.Next(0, 100) },
        2 => new JsonObject { ["arg"] = "amount", ["op"] = "between", ["min"] = r.Next(0, 50), ["max"] = r.Next(50, 100) },
        _ => new JsonObject { ["arg"] = "to", ["op"] = "in-list", ["values"] = new JsonArray(Pick(r, s_addresses)) },
    };

    internal static JsonObject RandomRule(Random r, string id, string? effect = null)
    {
        effect ??= Pick(r, ["allow", "allow", "deny", "require-approval"]);
        var rule = new JsonObject
        {
            ["id"] = id,
            ["effect"] = effect,
            ["match"] = new JsonObject { ["principals"] = Subset(r, s_principals), ["operations"] = Subset(r, s_ops), ["keys"] = Subset(r, s_keys) },
        };
        if (r.Next(2) == 0)
        {
            rule["conditions"] = new JsonArray(RandomCondition(r));
        }

        if (effect != "deny" && r.Next(2) == 0)
        {
            rule["limits"] = new JsonObject { ["perTransaction"] = new JsonObject { ["native"] = r.Next(1, 100) } };
        }

        if (effect == "require-approval")
        {
            rule["approval"] = new JsonObject { ["groups"] = new JsonArray(new JsonObject { ["name"] = "g", ["members"] = new JsonArray("a1", "a2"), ["k"] = 1 }), ["ttlSeconds"] = 600 };
        }

        return rule;
    }

    internal static JsonObject RandomPolicy(Random r)
    {
        var rules = new JsonArray();
        int n = r.Next(1, 9);
        for (int i = 0; i < n; i++)
        {
            rules.Add(RandomRule(r, $"r{i}"));
        }

        return new JsonObject
        {
            ["id"] = "prop",
            ["version"] = 1,
            ["rules"] = rules,
            ["levels"] = new JsonObject { ["elevated"] = new JsonObject { ["blockedOperations"] = new JsonArray("transfer") }, ["stressed"] = new JsonObject { ["blockedOperations"] = new JsonArray("transfer", "settle") } },
        };
    }

    internal static OperationRequest RandomRequest(Random r)
    {
        string id = Pick(r, s_principals);
        var principal = id == "p3"
            ? new Principal(id, PrincipalKind.Person, [Role.Operator], PrincipalScope.Everything)
            : new Principal(id, PrincipalKind.Agent, [Role.Agent], PrincipalScope.Everything);
        var args = new Dictionary<string, PolicyValue>(StringComparer.Ordinal);
        decimal? amount = null;
        if (r.Next(5) > 0)
        {
            amount = r.Next(0, 120);
            args["amount"] = PolicyValue.Of(amount.Value);
        }

        if (r.Next(3) > 0)
        {
            args["to"] = PolicyValue.OfAddress(Pick(r, s_addresses))!.Value;
        }

        if (r.Next(4) == 0)
        {
            args["reduceOnly"] = PolicyValue.Of(true);
        }

        return new OperationRequest { Principal = principal, Operation = Operations.Operations.Parse(Pick(r, s_ops)), KeyId = Pick(r, s_keys), Args = args, Amount = amount };
    }

    internal static Decision Decide(JsonObject policy, OperationRequest req, RiskLevel level) =>
        PolicyEvaluator.Decide(PolicyDocument.Parse(policy.ToJsonString()), req, new EvaluationContext(level, s_now), EmptyCounters.Instance);

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void Deny_always_wins(int stream)
    {
        var r = TestSeed.Random($"stream {stream}");
        int matchedDenies = 0;
        for (int i = 0; i < 400; i++)
        {
            var policyJson = RandomPolicy(r);
            var policy = PolicyDocument.Parse(policyJson.ToJsonString());
            var req = RandomRequest(r);
            var level = Pick(r, RiskLevels.All);
            var d = PolicyEvaluator.Decide(policy, req, new EvaluationContext(level, s_now), EmptyCounters.Instance);
            // The rule index never hides a rule that matches, and returns each candidate once.
            var candidates = policy.Candidates(req, s_now).ToList();
            Assert.Equal(candidates.Count, candidates.Distinct().Count());
            Assert.All(policy.Rules.Where(rule => ReferenceMatcher.Matches(rule, req, s_now)), rule => Assert.Contains(rule, candidates));
            if (policy.Rules.Any(rule => rule.Effect == Effect.Deny && ReferenceMatcher.Matches(rule, req, s_now)))
            {
                matchedDenies++;
                Assert.True(d.Outcome == DecisionOutcome.Deny, $"{TestSeed.EnvironmentVariable}={TestSeed.Run} stream {stream} case {i}: a deny rule matched but the decision is {d.ToJson()}");
            }

            // A deny rule written for exactly this request always wins, whatever else the policy says.
            var withDeny = policyJson.DeepClone().AsObject();
            withDeny["rules"]!.AsArray().Add(new JsonObject
            {
                ["id"] = "zz-deny",
                ["effect"] = "deny",
                ["match"] = new JsonObject { ["principals"] = new JsonArray(req.Principal.Id), ["operations"] = new JsonArray(Operations.Operations.Name(req.Operation)) },
            });
            Assert.Equal(DecisionOutcome.Deny, Decide(withDeny, req, level).Outcome);
        }

        Assert.True(matchedDenies > 20, "the generator must produce matching deny rules");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void A_tightened_policy_never_allows_what_the_looser_denied(int stream)
    {
        var r = TestSeed.Random($"stream {stream}");
        int denied = 0, changed = 0;
        // 1,000 cases: about 5.7% of cases change outcome, so with new streams each run 400 cases (about 23 expected, 14
        // seen) would fail the check below (changed > 10) about once in 120 runs of the four streams; 1,000 expect 57.
        for (int i = 0; i < 1000; i++)
        {
            var loose = RandomPolicy(r);
            var req = RandomRequest(r);
            var level = Pick(r, RiskLevels.All);
            var before = Decide(loose, req, level);
            var (tight, tightLevel, how) = Tighten(r, loose, level);
            var after = Decide(tight, req, tightLevel);
            if (before.Outcome == DecisionOutcome.Deny)
            {
                denied++;
                Assert.True(after.Outcome == DecisionOutcome.Deny, $"{TestSeed.EnvironmentVariable}={TestSeed.Run} stream {stream} case {i}: tightening by {how} turned a deny into {after.ToJson()}");
            }

            if (after.Outcome != before.Outcome)
            {
                changed++;
            }
        }

        Assert.True(denied > 50 && changed > 10, $"the generator must exercise the property (denied {denied}, changed {changed})");
    }

    /// <summary>One random tightening: add a deny rule, remove a permitting rule, lower or add a limit, add a condition to a permitting rule, or raise the level.</summary>
    private static (JsonObject Policy, RiskLevel Level, string How) Tighten(Random r, JsonObject loose, RiskLevel level)
    {
        var p = loose.DeepClone().AsObject();
        var rules = p["rules"]!.AsArray();
        var permitting = rules.Where(x => (string)x!["effect"]! != "deny").Select(x => x!.AsObject()).ToList();
        switch (r.Next(5))
        {
            case 0:
                rules.Add(RandomRule(r, "zz-new-deny", "deny"));
                return (p, level, "adding a deny rule");
            case 1 when permitting.Count > 0:
                rules.Remove(Pick(r, permitting));
                return (p, level, "removing a permitting rule");
            case 2 when permitting.Count > 0:
            {
                var rule = Pick(r, permitting);
                int current = rule["limits"]?["perTransaction"]?["native"]?.GetValue<int>() ?? 100;
                rule["limits"] = new JsonObject { ["perTransaction"] = new JsonObject { ["native"] = r.Next(0, current + 1) } };
                return (p, level, "lowering a limit");
            }

            case 3 when permitting.Count > 0:
            {
                var rule = Pick(r, permitting);
                var conditions = rule["conditions"]?.AsArray() ?? [];
                rule["conditions"] = conditions;
                conditions.Add(RandomCondition(r));
                return (p, level, "adding a condition");
            }

            default:
                var higher = level == RiskLevel.Lockdown ? level : (RiskLevel)r.Next((int)level + 1, 4);
                return (p, higher, "raising the risk level");
        }
    }
}
