using System.Text.Json.Nodes;
using Conclave.Policy.Documents;
using Conclave.Policy.Evaluation;
using Conclave.Policy.Operations;
using Conclave.Policy.Principals;
using Conclave.Policy.Risk;

using static Conclave.Policy.Tests.PolicyPropertyTests;

namespace Conclave.Policy.Tests;

/// <summary>
/// The rule index's second level (key or label, and venue; docs/POLICY.md "Decision latency"): decisions read through
/// it are the same as through the principal/operation level alone, on seeded random policies and requests, and a
/// policy whose rules differ only by venue (the by-venue layout of `conclave bench`) reads one candidate, not all.
/// No timings are asserted.
/// </summary>
public sealed class RuleIndexTests
{
    private static readonly string[] s_keys = ["k0", "k1", "k2"];
    private static readonly string[] s_labels = ["desk:a", "desk:b", "scheme:ecdsa-secp256k1"];
    private static readonly string[] s_venues = ["v0", "v1", "v2"];
    private static readonly string[] s_roles = ["agent", "operator"];
    private static readonly DateTimeOffset s_now = new(2026, 11, 30, 12, 0, 0, TimeSpan.Zero);

    private static JsonObject Rule(Random r, string id)
    {
        JsonObject rule = RandomRule(r, id);
        JsonObject match = rule["match"]!.AsObject();
        match["labels"] = Subset(r, s_labels);
        match["venues"] = Subset(r, s_venues);
        if (r.Next(4) == 0)
        {
            match["roles"] = Subset(r, s_roles);
        }

        if (r.Next(6) == 0)
        {
            rule["mode"] = "shadow";
        }

        if (rule["effect"]!.GetValue<string>() != "deny" && r.Next(3) == 0)
        {
            rule["limits"] = new JsonObject
            {
                ["velocity"] = new JsonArray(new JsonObject { ["id"] = "w", ["windowSeconds"] = 60, ["count"] = r.Next(1, 5), ["scope"] = Pick(r, ["principal", "shared"]) }),
            };
        }

        return rule;
    }

    private static OperationRequest Request(Random r)
    {
        OperationRequest req = RandomRequest(r);
        string[] labels = [.. s_labels.Where(_ => r.Next(2) == 0)];
        if (labels.Length > 0 && r.Next(5) == 0)
        {
            labels = [.. labels, labels[0]]; // a label given twice reaches one slot twice
        }

        return req with { KeyId = Pick(r, s_keys), KeyLabels = labels, Venue = r.Next(4) == 0 ? null : Pick(r, s_venues) };
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void Decisions_through_the_key_and_venue_index_are_the_same_as_through_principal_and_operation_alone(int stream)
    {
        var r = TestSeed.Random($"stream {stream}");
        int allowed = 0, denied = 0, held = 0, narrowed = 0;
        for (int i = 0; i < 300; i++)
        {
            var rules = new JsonArray();
            int n = r.Next(1, 40);
            for (int j = 0; j < n; j++)
            {
                rules.Add(Rule(r, $"r{j:D2}"));
            }

            PolicyDocument policy = PolicyDocument.Parse(new JsonObject { ["id"] = "idx", ["version"] = 1, ["rules"] = rules }.ToJsonString());
            for (int q = 0; q < 10; q++)
            {
                OperationRequest req = Request(r);
                var context = new EvaluationContext(Pick(r, RiskLevels.All), s_now);

                IVelocityCounters counters = EmptyCounters.Instance;
                Decision indexed = PolicyEvaluator.DecideIndexed(policy, req, context, counters, byKeyAndVenue: true);
                Decision reference = PolicyEvaluator.DecideIndexed(policy, req, context, counters, byKeyAndVenue: false);
                string where = $"{TestSeed.EnvironmentVariable}={TestSeed.Run} stream {stream} policy {i} request {q}";
                Assert.True(reference.ToJson() == indexed.ToJson(), $"{where}: {reference.ToJson()} vs {indexed.ToJson()}");
                Assert.Equal(reference.Reservations, indexed.Reservations);
                Assert.Equal(reference.Approvals.Count, indexed.Approvals.Count);
                Assert.Equal(reference.NoRuleGranted, indexed.NoRuleGranted);

                // The index never returns a rule twice, never hides a rule that matches, and returns a subset in order.
                List<PolicyRule> candidates = [.. policy.Candidates(req)];
                List<PolicyRule> all = [.. policy.CandidatesByPrincipalAndOperation(req)];
                Assert.Equal(candidates.Count, candidates.Distinct().Count());
                Assert.All(policy.Rules.Where(rule => RuleMatcher.Matches(rule, req, s_now)), rule => Assert.Contains(rule, candidates));
                Assert.Equal(all.Where(candidates.Contains), candidates);
                narrowed += all.Count - candidates.Count;
                switch (indexed.Outcome)
                {
                    case DecisionOutcome.Allow: allowed++; break;
                    case DecisionOutcome.Deny: denied++; break;
                    default: held++; break;
                }
            }
        }

        // The generator reaches every outcome, and the index does leave rules out.
        Assert.True(allowed > 50 && denied > 50 && held > 20, $"allowed {allowed}, denied {denied}, held {held}");
        Assert.True(narrowed > 1000, $"narrowed {narrowed}");
    }

    [Fact]
    public void A_thousand_rules_for_one_role_and_operation_that_differ_by_venue_leave_one_candidate()
    {
        var rules = new JsonArray();
        for (int i = 0; i < 1000; i++)
        {
            rules.Add(JsonNode.Parse($$"""{"id":"r{{i}}","effect":"allow","match":{"roles":["agent"],"operations":["liquidate"],"venues":["venue-{{i}}"]},"limits":{"perTransaction":{"native":500} } }"""));
        }

        PolicyDocument policy = PolicyDocument.Parse(new JsonObject { ["id"] = "by-role", ["version"] = 1, ["rules"] = rules }.ToJsonString());
        var req = new OperationRequest
        {
            Principal = new Principal("agent-7", PrincipalKind.Agent, [Role.Agent], PrincipalScope.Everything),
            Operation = OperationKind.Liquidate,
            KeyId = "key-7",
            Venue = "venue-999",
            Args = new Dictionary<string, PolicyValue>(StringComparer.Ordinal) { ["amount"] = PolicyValue.Of(5m) },
            Amount = 5m,
        };
        Assert.Equal(1000, policy.CandidatesByPrincipalAndOperation(req).Count());
        Assert.Equal(["r999"], policy.Candidates(req).Select(x => x.Id));
        Decision d = PolicyEvaluator.Decide(policy, req, new EvaluationContext(RiskLevel.Normal, s_now), EmptyCounters.Instance);
        Assert.Equal(DecisionOutcome.Allow, d.Outcome);
        Assert.Equal(["r999"], d.Rules);
        Assert.Empty(policy.Candidates(req with { Venue = null }));
    }
}
