using System.Text.Json;
using Conclave.Policy.Documents;
using Conclave.Policy.Evaluation;
using Conclave.Policy.Operations;
using Conclave.Policy.Principals;
using Conclave.Policy.Risk;

namespace Conclave.Policy.Tests;

public sealed class EvaluatorTests
{
    private static readonly DateTimeOffset s_monday = new(2026, 11, 30, 12, 0, 0, TimeSpan.Zero);
    private static readonly Principal s_bot = new("bot", PrincipalKind.Agent, [Role.Agent], PrincipalScope.Everything);

    private static OperationRequest Req(OperationKind op, decimal? amount = null, Principal? p = null) => new()
    {
        Principal = p ?? s_bot,
        Operation = op,
        KeyId = "k",
        Amount = amount,
        Args = amount is { } a ? new Dictionary<string, PolicyValue> { ["amount"] = PolicyValue.Of(a) } : new Dictionary<string, PolicyValue>(),
    };

    [Fact]
    public void An_empty_policy_denies_everything()
    {
        var p = PolicyDocument.Parse("""{"id":"p","version":1}""");
        foreach (var op in Enum.GetValues<OperationKind>())
        {
            foreach (var level in RiskLevels.All)
            {
                Assert.Equal(DecisionOutcome.Deny, PolicyEvaluator.Decide(p, Req(op), new EvaluationContext(level, s_monday), EmptyCounters.Instance).Outcome);
            }
        }
    }

    [Fact]
    public void A_raw_digest_is_granted_only_by_a_rule_naming_the_operation_the_principal_and_the_key()
    {
        var ctx = new EvaluationContext(RiskLevel.Normal, s_monday);
        Decision D(string match) => PolicyEvaluator.Decide(PolicyDocument.Parse("""{"id":"p","version":1,"rules":[{"id":"r","effect":"allow","match":{""" + match + "}}]}"),
            Req(OperationKind.RawDigest) with { KeyLabels = ["hot"] }, ctx, EmptyCounters.Instance);

        // Rules matching anything, or any principal, key or operation, do not grant a raw digest.
        foreach (string loose in new[] { "", "\"principals\":[\"bot\"]", "\"operations\":[\"raw-digest\"],\"keys\":[\"k\"]",
            "\"principals\":[\"bot\"],\"keys\":[\"k\"]", "\"principals\":[\"bot\"],\"operations\":[\"raw-digest\"]" })
        {
            var d = D(loose);
            Assert.Equal(DecisionOutcome.Deny, d.Outcome);
            Assert.True(d.NoRuleGranted);
            Assert.Contains("raw-digest explicitly", d.Reasons[0], StringComparison.Ordinal);
        }

        Assert.Equal(DecisionOutcome.Allow, D("\"principals\":[\"bot\"],\"operations\":[\"raw-digest\"],\"keys\":[\"k\"]").Outcome);
        Assert.Equal(DecisionOutcome.Allow, D("\"principals\":[\"bot\"],\"operations\":[\"raw-digest\"],\"labels\":[\"hot\"]").Outcome);
        // Other operations are still granted by a rule matching any operation.
        var any = PolicyDocument.Parse("""{"id":"p","version":1,"rules":[{"id":"r","effect":"allow","match":{}}]}""");
        Assert.Equal(DecisionOutcome.Allow, PolicyEvaluator.Decide(any, Req(OperationKind.Message), ctx, EmptyCounters.Instance).Outcome);
    }

    [Fact]
    public void A_deny_rule_is_not_a_document_that_granted_nothing()
    {
        var ctx = new EvaluationContext(RiskLevel.Normal, s_monday);
        var p = PolicyDocument.Parse("""{"id":"p","version":1,"rules":[{"id":"no","effect":"deny","match":{"operations":["transfer"]}},{"id":"small","effect":"allow","match":{"operations":["hedge"]},"limits":{"perTransaction":{"native":5}}}]}""");
        Assert.False(PolicyEvaluator.Decide(p, Req(OperationKind.Transfer), ctx, EmptyCounters.Instance).NoRuleGranted);
        Assert.True(PolicyEvaluator.Decide(p, Req(OperationKind.Hedge, 6), ctx, EmptyCounters.Instance).NoRuleGranted);
        Assert.True(PolicyEvaluator.Decide(p, Req(OperationKind.Settle), ctx, EmptyCounters.Instance).NoRuleGranted);
        Assert.False(PolicyEvaluator.Decide(p, Req(OperationKind.Unknown), ctx, EmptyCounters.Instance).NoRuleGranted);
    }

    [Fact]
    public void Decisions_are_explained_as_json()
    {
        var p = PolicyDocument.Parse("""{"id":"p","version":1,"rules":[{"id":"msg","effect":"allow","match":{"operations":["message"]}},{"id":"watch","effect":"deny","mode":"shadow","match":{"operations":["message"]}}]}""");
        var d = PolicyEvaluator.Decide(p, Req(OperationKind.Message), new EvaluationContext(RiskLevel.Normal, s_monday), EmptyCounters.Instance);
        using var json = JsonDocument.Parse(d.ToJson());
        var root = json.RootElement;
        Assert.Equal("allow", root.GetProperty("decision").GetString());
        Assert.Equal(p.Hash, root.GetProperty("policyHash").GetString());
        Assert.Equal("msg", root.GetProperty("rules")[0].GetString());
        Assert.True(root.GetProperty("reasons").GetArrayLength() > 0);
        Assert.Equal("deny", root.GetProperty("shadow").GetProperty("decision").GetString());
        Assert.Equal("watch", root.GetProperty("shadow").GetProperty("rules")[0].GetString());
    }

    [Theory]
    [InlineData("2026-11-30T21:59:00Z", false)]
    [InlineData("2026-11-30T22:00:00Z", true)]
    [InlineData("2026-11-30T23:59:00Z", true)]
    [InlineData("2026-12-01T00:00:00Z", true)]
    [InlineData("2026-12-01T05:59:00Z", true)]
    [InlineData("2026-12-01T06:00:00Z", false)]
    [InlineData("2026-12-05T01:00:00Z", true)]
    [InlineData("2026-12-05T23:00:00Z", false)]
    [InlineData("2026-12-06T01:00:00Z", false)]
    public void Night_windows_wrap_past_midnight_and_belong_to_the_day_they_start(string at, bool inside)
    {
        // Monday to Friday nights from 22:00 to 06:00: Friday night runs into Saturday morning; Saturday night is not in it.
        var p = PolicyDocument.Parse("""{"id":"p","version":1,"rules":[{"id":"night","effect":"allow","match":{"operations":["settle"]},"time":{"days":["mon","tue","wed","thu","fri"],"from":"22:00","to":"06:00"}}]}""");
        var d = PolicyEvaluator.Decide(p, Req(OperationKind.Settle), new EvaluationContext(RiskLevel.Normal, DateTimeOffset.Parse(at, System.Globalization.CultureInfo.InvariantCulture)), EmptyCounters.Instance);
        Assert.Equal(inside ? DecisionOutcome.Allow : DecisionOutcome.Deny, d.Outcome);
    }

    [Fact]
    public void Allowed_decisions_list_the_reservations_with_their_scaled_caps()
    {
        var p = PolicyDocument.Parse("""{"id":"p","version":1,"rules":[{"id":"h","effect":"allow","match":{"operations":["hedge"]},"limits":{"velocity":[{"id":"day","windowSeconds":86400,"sumNative":100,"count":9,"scope":"shared"},{"id":"mine","windowSeconds":60,"count":3}]}}]}""");
        var d = PolicyEvaluator.Decide(p, Req(OperationKind.Hedge, 7), new EvaluationContext(RiskLevel.Elevated, s_monday), EmptyCounters.Instance);
        Assert.Equal(DecisionOutcome.Allow, d.Outcome);
        Assert.Equal(2, d.Reservations.Count);
        var day = d.Reservations.Single(r => r.CounterKey == "p/h/day/shared");
        Assert.Equal(7m, day.Native);
        Assert.Equal(50m, day.MaxNative);
        Assert.Equal(4, day.MaxCount);
        var mine = d.Reservations.Single(r => r.CounterKey == "p/h/mine/p:bot");
        Assert.Equal(1, mine.MaxCount);
    }

    [Fact]
    public void Fifty_concurrent_reservations_against_a_limit_of_ten_allow_exactly_ten()
    {
        var p = PolicyDocument.Parse("""{"id":"p","version":1,"rules":[{"id":"l","effect":"allow","match":{"operations":["liquidate"]},"limits":{"velocity":[{"id":"hour","windowSeconds":3600,"count":10,"scope":"shared"}]}}]}""");
        var counters = new SlidingWindowCounters();
        int allowed = 0;
        Parallel.For(0, 50, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
        {
            var d = PolicyEvaluator.Decide(p, Req(OperationKind.Liquidate), new EvaluationContext(RiskLevel.Normal, s_monday), counters);
            if (d.Outcome == DecisionOutcome.Allow && counters.TryReserve(d.Reservations, s_monday) is not null)
            {
                Interlocked.Increment(ref allowed);
            }
        });
        Assert.Equal(10, allowed);
        Assert.Equal(10, counters.Read("p/l/hour/shared", 3600, s_monday).Count);
    }

    [Fact]
    public void Released_reservations_free_the_limit_and_old_ones_slide_out()
    {
        var p = PolicyDocument.Parse("""{"id":"p","version":1,"rules":[{"id":"l","effect":"allow","match":{"operations":["liquidate"]},"limits":{"velocity":[{"id":"min","windowSeconds":60,"sumNative":10}]}}]}""");
        var counters = new SlidingWindowCounters();
        Decision D(decimal amount, DateTimeOffset at) => PolicyEvaluator.Decide(p, Req(OperationKind.Liquidate, amount), new EvaluationContext(RiskLevel.Normal, at), counters);
        var first = D(8, s_monday);
        long handle = counters.TryReserve(first.Reservations, s_monday)!.Value;
        Assert.Equal(DecisionOutcome.Deny, D(3, s_monday.AddSeconds(1)).Outcome);
        counters.Release(handle);
        counters.Release(handle);
        Assert.Equal(DecisionOutcome.Allow, D(3, s_monday.AddSeconds(1)).Outcome);
        Assert.NotNull(counters.TryReserve(D(8, s_monday.AddSeconds(2)).Reservations, s_monday.AddSeconds(2)));
        Assert.Equal(DecisionOutcome.Deny, D(3, s_monday.AddSeconds(61)).Outcome);
        Assert.Equal(DecisionOutcome.Allow, D(3, s_monday.AddSeconds(62)).Outcome);
        // A decision made before another reservation is re-checked when it reserves, and refused atomically.
        var stale = D(2, s_monday.AddSeconds(3));
        Assert.Equal(DecisionOutcome.Allow, stale.Outcome);
        Assert.NotNull(counters.TryReserve(D(1, s_monday.AddSeconds(3)).Reservations, s_monday.AddSeconds(3)));
        Assert.Null(counters.TryReserve(stale.Reservations, s_monday.AddSeconds(3)));
        Assert.Equal(9m, counters.Read("p/l/min/p:bot", 60, s_monday.AddSeconds(3)).Native);
    }

    [Fact]
    public void Usd_limits_use_the_price_input_and_deny_without_it()
    {
        var p = PolicyDocument.Parse("""{"id":"p","version":1,"rules":[{"id":"t","effect":"allow","match":{"operations":["transfer"]},"limits":{"perTransaction":{"usd":1000}}}]}""");
        var req = Req(OperationKind.Transfer, 0.5m) with { PriceSource = "ETH-USD" };
        var ctx = new EvaluationContext(RiskLevel.Normal, s_monday, new Dictionary<string, decimal> { ["ETH-USD"] = 2000m });
        Assert.Equal(DecisionOutcome.Allow, PolicyEvaluator.Decide(p, req, ctx, EmptyCounters.Instance).Outcome);
        Assert.Equal(DecisionOutcome.Deny, PolicyEvaluator.Decide(p, req with { Amount = 0.51m }, ctx, EmptyCounters.Instance).Outcome);
        Assert.Equal(DecisionOutcome.Deny, PolicyEvaluator.Decide(p, req, ctx with { UsdPrices = null }, EmptyCounters.Instance).Outcome);
        Assert.Equal(DecisionOutcome.Deny, PolicyEvaluator.Decide(p, req with { PriceSource = null }, ctx, EmptyCounters.Instance).Outcome);
        Assert.Equal(DecisionOutcome.Deny, PolicyEvaluator.Decide(p, req with { Amount = -1m }, ctx, EmptyCounters.Instance).Outcome);
        Assert.Equal(DecisionOutcome.Deny, PolicyEvaluator.Decide(p, req with { Amount = decimal.MaxValue }, ctx, EmptyCounters.Instance).Outcome);
    }

    [Fact]
    public void Release_in_lockdown_needs_level_approval_and_is_denied_when_the_policy_has_none()
    {
        var p = PolicyDocument.Parse("""{"id":"p","version":1,"rules":[{"id":"r","effect":"allow","match":{"operations":["release-collateral"]}}]}""");
        var d = PolicyEvaluator.Decide(p, Req(OperationKind.ReleaseCollateral), new EvaluationContext(RiskLevel.Lockdown, s_monday), EmptyCounters.Instance);
        Assert.Equal(DecisionOutcome.Deny, d.Outcome);
        Assert.Contains(d.Reasons, r => r.Contains("levelApproval", StringComparison.Ordinal));
    }
}

public sealed class PrincipalTests
{
    [Fact]
    public void Agents_hold_only_the_agent_role_and_people_never_hold_it()
    {
        Assert.Throws<PolicyFormatException>(() => new Principal("a", PrincipalKind.Agent, [Role.Agent, Role.Admin], PrincipalScope.Nothing));
        Assert.Throws<PolicyFormatException>(() => new Principal("a", PrincipalKind.Agent, [Role.Operator], PrincipalScope.Nothing));
        Assert.Throws<PolicyFormatException>(() => new Principal("p", PrincipalKind.Person, [Role.Agent], PrincipalScope.Nothing));
        Assert.Throws<PolicyFormatException>(() => new Principal("p", PrincipalKind.Person, [], PrincipalScope.Nothing));
        Assert.Throws<PolicyFormatException>(() => new Principal("has space", PrincipalKind.Person, [Role.Admin], PrincipalScope.Nothing));
        var p = new Principal("ops@venue", PrincipalKind.Person, [Role.Operator, Role.Approver], PrincipalScope.Nothing);
        Assert.True(p.HasRole(Role.Approver));
        Assert.False(p.HasRole(Role.Admin));
    }

    [Fact]
    public void Scopes_name_keys_labels_and_operations_and_empty_means_none()
    {
        var scope = new PrincipalScope(["k1"], ["hot"], [OperationKind.Liquidate]);
        Assert.True(scope.Allows("k1", [], OperationKind.Liquidate));
        Assert.True(scope.Allows("k9", ["hot"], OperationKind.Liquidate));
        Assert.False(scope.Allows("k9", ["cold"], OperationKind.Liquidate));
        Assert.False(scope.Allows("k1", [], OperationKind.Transfer));
        Assert.False(PrincipalScope.Nothing.Allows("k1", ["hot"], OperationKind.Liquidate));
        Assert.True(PrincipalScope.Everything.Allows("any", [], OperationKind.RawDigest));
        Assert.False(PrincipalScope.Everything.Allows("any", [], OperationKind.Unknown));
    }

    [Theory]
    [InlineData("admin", Role.Admin)]
    [InlineData("operator", Role.Operator)]
    [InlineData("approver", Role.Approver)]
    [InlineData("auditor", Role.Auditor)]
    [InlineData("agent", Role.Agent)]
    public void Role_names_round_trip(string name, Role role)
    {
        Assert.True(Roles.TryParse(name, out var r));
        Assert.Equal(role, r);
        Assert.Equal(name, Roles.Name(role));
        Assert.False(Roles.TryParse(name.ToUpperInvariant(), out _));
    }

    [Fact]
    public void Operation_names_round_trip_and_unknown_names_are_unknown()
    {
        foreach (var op in Enum.GetValues<OperationKind>())
        {
            Assert.Equal(op, Operations.Operations.Parse(Operations.Operations.Name(op)));
        }

        Assert.Equal(OperationKind.Unknown, Operations.Operations.Parse("Liquidate"));
        Assert.Equal(OperationKind.Unknown, Operations.Operations.Parse(null));
    }
}
