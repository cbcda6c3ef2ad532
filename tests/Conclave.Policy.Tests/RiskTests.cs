using Conclave.Policy.Documents;
using Conclave.Policy.Evaluation;
using Conclave.Policy.Operations;
using Conclave.Policy.Risk;

namespace Conclave.Policy.Tests;

public sealed class RiskTests
{
    private static readonly DateTimeOffset s_t0 = new(2026, 11, 30, 12, 0, 0, TimeSpan.Zero);

    private static readonly RiskConfig s_config = new()
    {
        CoolDown = TimeSpan.FromMinutes(30),
        LockdownExit = new ApprovalGroup("risk", ["alice", "bob", "carol"], 2),
    };

    /// <summary>Calm samples every minute for an hour ending at <paramref name="end"/>, alternating by ±0.1 %.</summary>
    private static List<PriceSample> Calm(DateTimeOffset end, decimal price = 2000m)
    {
        var list = new List<PriceSample>();
        for (int i = 59; i >= 0; i--)
        {
            list.Add(new PriceSample(end.AddMinutes(-i), i % 2 == 0 ? price : price * 1.001m));
        }

        return list;
    }

    private static RiskSignals Prices(List<PriceSample> samples) => new() { Prices = new Dictionary<string, IReadOnlyList<PriceSample>> { ["ETH-USD"] = samples } };

    [Fact]
    public void Realised_volatility_is_the_root_of_summed_squared_log_returns()
    {
        var samples = new List<PriceSample> { new(s_t0.AddMinutes(-2), 100m), new(s_t0.AddMinutes(-1), 110m), new(s_t0, 99m) };
        double expected = Math.Sqrt(Math.Pow(Math.Log(1.1), 2) + Math.Pow(Math.Log(0.9), 2));
        Assert.Equal(expected, RiskTriggers.RealisedVolatility(samples, 3600, s_t0)!.Value, 12);
        Assert.Null(RiskTriggers.RealisedVolatility([new(s_t0, 100m)], 3600, s_t0));
        // Samples outside the window do not count.
        Assert.Equal(Math.Abs(Math.Log(0.9)), RiskTriggers.RealisedVolatility(samples, 90, s_t0)!.Value, 12);
    }

    [Fact]
    public void Calm_prices_demand_normal()
    {
        var (level, reasons) = RiskTriggers.Demanded(s_config, Prices(Calm(s_t0)), s_t0);
        Assert.Equal(RiskLevel.Normal, level);
        Assert.Empty(reasons);
    }

    [Fact]
    public void A_volatility_spike_raises_the_level_at_once()
    {
        var samples = Calm(s_t0);
        samples.Add(new PriceSample(s_t0.AddSeconds(30), 2000m * 0.88m)); // a 12 % drop
        var state = RiskState.Initial(s_t0.AddHours(-2));
        state = RiskRatchet.Step(s_config, state, Prices(samples), s_t0.AddSeconds(30));
        Assert.Equal(RiskLevel.Stressed, state.Level);
        Assert.Equal(s_t0.AddSeconds(30), state.Since);
        Assert.Contains(state.Reasons, r => r.Contains("realised volatility of ETH-USD", StringComparison.Ordinal));
    }

    [Fact]
    public void The_level_does_not_fall_before_the_cool_down_and_falls_after_it()
    {
        var state = RiskRatchet.Step(s_config, RiskState.Initial(s_t0), RiskLevel.Stressed, ["spike"], s_t0);
        Assert.Equal(RiskLevel.Stressed, state.Level);
        state = RiskRatchet.Step(s_config, state, RiskLevel.Normal, [], s_t0.AddMinutes(29));
        Assert.Equal(RiskLevel.Stressed, state.Level);
        // The spike is seen again at minute 20 of the cool-down: the clock restarts from there.
        state = RiskRatchet.Step(s_config, state, RiskLevel.Stressed, ["spike"], s_t0.AddMinutes(20));
        state = RiskRatchet.Step(s_config, state, RiskLevel.Normal, [], s_t0.AddMinutes(49));
        Assert.Equal(RiskLevel.Stressed, state.Level);
        state = RiskRatchet.Step(s_config, state, RiskLevel.Elevated, ["stale"], s_t0.AddMinutes(50));
        Assert.Equal(RiskLevel.Elevated, state.Level);
        Assert.Equal(s_t0.AddMinutes(50), state.Since);
        state = RiskRatchet.Step(s_config, state, RiskLevel.Normal, [], s_t0.AddMinutes(79));
        Assert.Equal(RiskLevel.Elevated, state.Level);
        state = RiskRatchet.Step(s_config, state, RiskLevel.Normal, [], s_t0.AddMinutes(80));
        Assert.Equal(RiskLevel.Normal, state.Level);
    }

    [Fact]
    public void Lockdown_never_falls_by_itself_and_leaving_needs_a_quorum_after_the_cool_down()
    {
        var state = RiskRatchet.Step(s_config, RiskState.Initial(s_t0), RiskLevel.Lockdown, ["threat"], s_t0);
        state = RiskRatchet.Step(s_config, state, RiskLevel.Normal, [], s_t0.AddDays(2));
        Assert.Equal(RiskLevel.Lockdown, state.Level);

        var late = s_t0.AddHours(1);
        Assert.Equal(LockdownExitOutcome.QuorumNotMet, RiskRatchet.ExitLockdown(s_config, state, ["alice"], RiskLevel.Normal, late, out _));
        Assert.Equal(LockdownExitOutcome.QuorumNotMet, RiskRatchet.ExitLockdown(s_config, state, ["alice", "alice"], RiskLevel.Normal, late, out _));
        Assert.Equal(LockdownExitOutcome.QuorumNotMet, RiskRatchet.ExitLockdown(s_config, state, ["alice", "mallory"], RiskLevel.Normal, late, out _));
        Assert.Equal(LockdownExitOutcome.StillDemanded, RiskRatchet.ExitLockdown(s_config, state, ["alice", "bob"], RiskLevel.Lockdown, late, out _));
        Assert.Equal(LockdownExitOutcome.CoolDownNotOver, RiskRatchet.ExitLockdown(s_config, state, ["alice", "bob"], RiskLevel.Normal, s_t0.AddMinutes(10), out _));
        Assert.Equal(LockdownExitOutcome.Left, RiskRatchet.ExitLockdown(s_config, state, ["alice", "bob"], RiskLevel.Normal, late, out var after));
        Assert.Equal(RiskLevel.Stressed, after.Level);
        Assert.Equal(LockdownExitOutcome.NotInLockdown, RiskRatchet.ExitLockdown(s_config, after, ["alice", "bob"], RiskLevel.Normal, late, out _));
    }

    [Fact]
    public void A_stale_price_raises_to_the_configured_level()
    {
        var samples = Calm(s_t0.AddMinutes(-10));
        var (level, reasons) = RiskTriggers.Demanded(s_config, Prices(samples), s_t0);
        Assert.Equal(RiskLevel.Elevated, level);
        Assert.Contains(reasons, r => r.Contains("stale", StringComparison.Ordinal));
    }

    [Fact]
    public void A_burst_of_denied_or_badly_signed_requests_is_a_threat_signal()
    {
        var events = Enumerable.Range(0, 100).Select(i => s_t0.AddSeconds(-i)).ToList();
        Assert.Equal(RiskLevel.Stressed, RiskTriggers.Demanded(s_config, new RiskSignals { ThreatEvents = events }, s_t0).Level);
        Assert.Equal(RiskLevel.Elevated, RiskTriggers.Demanded(s_config, new RiskSignals { ThreatEvents = events.Take(20).ToList() }, s_t0).Level);
        Assert.Equal(RiskLevel.Normal, RiskTriggers.Demanded(s_config, new RiskSignals { ThreatEvents = events.Take(19).ToList() }, s_t0).Level);
        // Old events do not count.
        Assert.Equal(RiskLevel.Normal, RiskTriggers.Demanded(s_config, new RiskSignals { ThreatEvents = events }, s_t0.AddMinutes(10)).Level);
        // Counted events (every replica's, per second) add to single ones, inside the window only.
        ThreatBucket[] buckets = [new(s_t0.AddSeconds(-10), 12), new(s_t0.AddSeconds(-400), 50)];
        Assert.Equal(RiskLevel.Elevated, RiskTriggers.Demanded(s_config, new RiskSignals { ThreatEvents = events.Take(8).ToList(), ThreatBuckets = buckets }, s_t0).Level);
        Assert.Equal(RiskLevel.Normal, RiskTriggers.Demanded(s_config, new RiskSignals { ThreatEvents = events.Take(7).ToList(), ThreatBuckets = buckets }, s_t0).Level);
    }

    [Fact]
    public void Culprit_nodes_and_the_manual_level_are_floors()
    {
        Assert.Equal(RiskLevel.Elevated, RiskTriggers.Demanded(s_config, new RiskSignals { CulpritNodes = 1 }, s_t0).Level);
        Assert.Equal(RiskLevel.Lockdown, RiskTriggers.Demanded(s_config, new RiskSignals { Manual = RiskLevel.Lockdown, CulpritNodes = 1 }, s_t0).Level);
    }

    /// <summary>
    /// Issue 16 "Adaptive": a synthetic volatility spike in price samples raises the level on its own; the next
    /// liquidation is still signed, a collateral release is held for approval, a hedge above the shrunken limit is
    /// denied; the level does not fall before the cool-down.
    /// </summary>
    [Fact]
    public void Adaptive_a_volatility_spike_tightens_policy_by_itself()
    {
        var policy = PolicyTable.Policy;
        var rows = PolicyTable.Rows;
        var liquidate = rows.First(r => r.GetProperty("name").GetString() == "liquidate within limits");
        var release = rows.First(r => r.GetProperty("name").GetString() == "small release to an unlisted recipient");
        var hedge = rows.First(r => r.GetProperty("name").GetString() == "hedge 30 (USD 60,000)");
        var prices = new Dictionary<string, decimal> { ["ETH-USD"] = 2000m };

        var samples = Calm(s_t0);
        var state = RiskRatchet.Step(s_config, RiskState.Initial(s_t0.AddHours(-2)), Prices(samples), s_t0);
        Assert.Equal(RiskLevel.Normal, state.Level);
        Decision Decide(System.Text.Json.JsonElement row, DateTimeOffset at) =>
            PolicyEvaluator.Decide(policy, PolicyTable.Request(row), new EvaluationContext(state.Level, at, prices), EmptyCounters.Instance);
        Assert.Equal(DecisionOutcome.Allow, Decide(release, s_t0).Outcome);
        Assert.Equal(DecisionOutcome.Allow, Decide(hedge, s_t0).Outcome);

        // A 6 % move in one minute: realised volatility above 0.05.
        samples.Add(new PriceSample(s_t0.AddMinutes(1), 2000m * 0.94m));
        state = RiskRatchet.Step(s_config, state, Prices(samples), s_t0.AddMinutes(1));
        Assert.Equal(RiskLevel.Elevated, state.Level);
        var at = s_t0.AddMinutes(1);
        Assert.Equal(DecisionOutcome.Allow, Decide(liquidate, at).Outcome);
        Assert.Equal(DecisionOutcome.RequireApproval, Decide(release, at).Outcome);
        var denied = Decide(hedge, at);
        Assert.Equal(DecisionOutcome.Deny, denied.Outcome);
        Assert.Contains(denied.Reasons, r => r.Contains("per-transaction limit of 25", StringComparison.Ordinal));

        // Prices calm down after the spike; the ratchet is stepped every minute. The spike's return (minute 0 to 1) is in
        // the one-hour window while both its samples are, through minute 59; the level then holds for the 30-minute
        // cool-down and falls at minute 89.
        for (int m = 2; m <= 120; m++)
        {
            samples.Add(new PriceSample(s_t0.AddMinutes(m), m % 2 == 0 ? 1880m : 1880m * 1.001m));
            state = RiskRatchet.Step(s_config, state, Prices(samples), s_t0.AddMinutes(m));
            if (m < 89)
            {
                Assert.True(state.Level == RiskLevel.Elevated, $"minute {m}: {state.Level}");
            }

            if (m == 89)
            {
                Assert.Equal(RiskLevel.Normal, state.Level);
                break;
            }
        }

        Assert.Equal(DecisionOutcome.Allow, Decide(hedge, s_t0.AddMinutes(89)).Outcome);
    }
}
