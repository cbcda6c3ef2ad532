using System.Text.Json.Nodes;
using Conclave.Policy.Documents;
using Conclave.Policy.Evaluation;
using Conclave.Policy.Operations;
using Conclave.Policy.Risk;

using static Conclave.Policy.Tests.PolicyPropertyTests;

namespace Conclave.Policy.Tests;

/// <summary>
/// The server decides a velocity-limited request first with every counter taken as empty and lets the reservation check
/// the caps under the counters' locks (Conclave.Server PolicyEngine.DecideAsync, provisional; docs/POLICY.md "Velocity
/// limits"). That is sound only if: whenever the decision on empty counters is an allow whose reservations all fit under
/// the real totals (total + this request ≤ cap, the check the store makes), the decision on the real totals is the
/// same decision — outcome, rules, reasons and reservations. Checked here on seeded random policies (limits of counts,
/// native and USD sums, per principal and shared, at every risk level's multiplier) and random totals near the caps.
/// </summary>
public sealed class ProvisionalDecisionTests
{
    private static readonly DateTimeOffset s_now = new(2026, 11, 30, 12, 0, 0, TimeSpan.Zero);

    /// <summary>Totals drawn once per counter key and window (0 to a little over a typical cap).</summary>
    private sealed class RandomTotals(Random r) : IVelocityCounters
    {
        private readonly Dictionary<(string, long), VelocityTotals> _totals = [];

        public VelocityTotals Read(string counterKey, long windowSeconds, DateTimeOffset now)
        {
            if (!_totals.TryGetValue((counterKey, windowSeconds), out VelocityTotals t))
            {
                t = r.Next(3) == 0 ? default : new VelocityTotals(r.Next(0, 120), r.Next(0, 12_000), r.Next(0, 6));
                _totals[(counterKey, windowSeconds)] = t;
            }

            return t;
        }
    }

    private static JsonObject Velocity(Random r, int i) => r.Next(3) switch
    {
        0 => new JsonObject { ["id"] = $"v{i}", ["windowSeconds"] = 60 * (1 + r.Next(3)), ["count"] = r.Next(1, 6), ["scope"] = Pick(r, ["principal", "shared"]) },
        1 => new JsonObject { ["id"] = $"v{i}", ["windowSeconds"] = 3600, ["sumNative"] = r.Next(1, 120), ["scope"] = Pick(r, ["principal", "shared"]) },
        _ => new JsonObject { ["id"] = $"v{i}", ["windowSeconds"] = 600, ["sumUsd"] = r.Next(100, 12_000), ["count"] = r.Next(1, 6), ["scope"] = "shared" },
    };

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void An_allow_on_empty_counters_whose_reservations_fit_the_real_totals_is_the_decision_on_the_real_totals(int stream)
    {
        var r = TestSeed.Random($"provisional {stream}");
        int same = 0, refused = 0;
        for (int i = 0; i < 1000; i++)
        {
            JsonObject doc = RandomPolicy(r);
            foreach (JsonNode? rule in doc["rules"]!.AsArray())
            {
                if (rule!["effect"]!.GetValue<string>() != "deny" && r.Next(3) > 0)
                {
                    JsonObject limits = rule["limits"] as JsonObject ?? [];
                    rule["limits"] = limits;
                    limits["velocity"] = new JsonArray([.. Enumerable.Range(0, r.Next(1, 3)).Select(v => (JsonNode)Velocity(r, v))]);
                }
            }

            doc["levels"]!["elevated"]!["limitMultiplier"] = 0.5;
            doc["levels"]!["stressed"]!["limitMultiplier"] = 0.2;
            PolicyDocument policy = PolicyDocument.Parse(doc.ToJsonString());
            for (int q = 0; q < 10; q++)
            {
                OperationRequest req = RandomRequest(r) with { PriceSource = "feed" };
                var ctx = new EvaluationContext(Pick(r, RiskLevels.All), s_now, new Dictionary<string, decimal>(StringComparer.Ordinal) { ["feed"] = 100m });
                Decision provisional = PolicyEvaluator.Decide(policy, req, ctx, EmptyCounters.Instance);
                if (provisional.Outcome != DecisionOutcome.Allow || provisional.Reservations.Count == 0 || provisional.Shadow is not null)
                {
                    continue;
                }

                var totals = new RandomTotals(r);
                bool fits = provisional.Reservations.All(v =>
                {
                    VelocityTotals t = totals.Read(v.CounterKey, v.WindowSeconds, s_now);
                    return !(v.MaxNative is { } mn && t.Native + v.Native > mn) && !(v.MaxUsd is { } mu && t.Usd + v.Usd > mu) && !(v.MaxCount is { } mc && t.Count + v.Count > mc);
                });
                Decision real = PolicyEvaluator.Decide(policy, req, ctx, totals);
                string where = $"{TestSeed.EnvironmentVariable}={TestSeed.Run} stream {stream} policy {i} request {q}";
                if (fits)
                {
                    Assert.True(provisional.ToJson() == real.ToJson(), $"{where}: {provisional.ToJson()} vs {real.ToJson()}");
                    Assert.Equal(provisional.Reservations, real.Reservations);
                    same++;
                }
                else
                {
                    refused++; // the store refuses this reservation; the server then decides on the real totals
                }
            }
        }

        Assert.True(same > 100 && refused > 100, $"the generator must reach both cases (fits {same}, refused {refused})");
    }
}
