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
    private static readonly string[] s_contracts = ["0x" + new string('a', 40), "0x" + new string('b', 40), "0x" + new string('c', 40)];
    private static readonly string[] s_roles = ["agent", "operator", "approver"];
    private static readonly long[] s_chains = [1, 10, 42161];
    private static readonly string[] s_selectors = ["0xa9059cbb", "0x095ea7b3", "0x23b872dd"];
    private static readonly DateTimeOffset s_now = new(2026, 11, 30, 12, 0, 0, TimeSpan.Zero);

    internal static JsonObject Rule(Random r, string id)
    {
        JsonObject rule = RandomRule(r, id);
        JsonObject match = rule["match"]!.AsObject();
        match["labels"] = Subset(r, s_labels);
        match["venues"] = Subset(r, s_venues);
        if (r.Next(2) == 0)
        {
            match["contracts"] = Subset(r, s_contracts);
        }
        if (r.Next(4) == 0)
        {
            match["roles"] = Subset(r, s_roles);
        }

        // Chain ids and selectors, sometimes beside venues and contracts (the index files a rule by one of its lists).
        if (r.Next(3) == 0)
        {
            match["chainIds"] = new JsonArray([.. s_chains.Where(_ => r.Next(2) == 0).Select(c => (JsonNode)JsonValue.Create(c))]);
        }

        if (r.Next(3) == 0)
        {
            match["selectors"] = Subset(r, s_selectors);
        }

        if (r.Next(8) == 0)
        {
            // A window holding at the tests' noon or not, sometimes past midnight.
            (string from, string to) = Pick<(string, string)>(r, [("11:00", "13:00"), ("12:30", "11:30"), ("22:00", "02:00"), ("23:15", "00:00"), ("00:00", "24:00"), ("12:59", "13:01")]);
            rule["time"] = new JsonObject { ["from"] = from, ["to"] = to };
            if (r.Next(2) == 0)
            {
                rule["time"]!["days"] = Subset(r, s_days);
            }
        }

        if (r.Next(6) == 0)
        {
            rule["mode"] = "shadow";
        }

        // Argument conditions the index files allow rules under (eq, one-of), before or after the others, sometimes
        // two: values of several kinds and decimal scales, so equality is the matcher's own.
        for (int c = r.Next(3) == 0 ? 2 : 1; c > 0 && r.Next(2) == 0; c--)
        {
            JsonArray conditions = rule["conditions"] as JsonArray ?? [];
            rule["conditions"] = conditions;
            JsonObject condition = ArgumentCondition(r);
            if (r.Next(2) == 0)
            {
                conditions.Insert(0, condition);
            }
            else
            {
                conditions.Add(condition);
            }
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

    private static readonly string[] s_sides = ["buy", "sell"];

    private static readonly string[] s_days = ["sun", "mon", "tue", "sat"];

    /// <summary>A decision time: at the edges of the windows <see cref="Rule"/> draws (before and after midnight, across the week's end) or any minute of the week.</summary>
    internal static DateTimeOffset Time(Random r)
    {
        DateTimeOffset sunday = new(2026, 11, 29, 0, 0, 0, TimeSpan.Zero);
        int[] edges = [0, 59, 60, 660, 719, 720, 721, 750, 779, 780, 781, 1319, 1320, 1394, 1395, 1439];
        return r.Next(3) == 0
            ? sunday.AddMinutes(r.Next(7 * 1440))
            : sunday.AddDays(Pick(r, [0, 1, 2, 6])).AddMinutes(Pick(r, edges));
    }

    private static JsonNode SeriesValue(Random r) => r.Next(3) switch
    {
        0 => JsonValue.Create(r.Next(4)),
        1 => JsonValue.Create(r.Next(4) + 0.00m), // 2.00: the same number at another scale
        _ => JsonValue.Create(r.Next(4).ToString(System.Globalization.CultureInfo.InvariantCulture)), // a text, not a number
    };

    /// <summary>The counterparties requests name (those of <c>PolicyPropertyTests.RandomRequest</c>).</summary>
    private static readonly string[] s_tos = ["0x" + new string('1', 40), "0x" + new string('2', 40), "0x" + new string('3', 40)];

    /// <summary>An allowlist of counterparties: a few of the requests' (or none), sometimes past eight entries (a hashed set).</summary>
    private static JsonArray Allowlist(Random r)
    {
        var list = new JsonArray();
        foreach (string to in s_tos.Where(_ => r.Next(2) == 0))
        {
            list.Add(to);
        }

        for (int k = r.Next(3) == 0 ? 9 : (list.Count == 0 ? 1 : 0); k > 0; k--)
        {
            list.Add("0x" + r.Next(16, 255).ToString("x2", System.Globalization.CultureInfo.InvariantCulture) + new string('e', 38));
        }

        return list;
    }

    internal static JsonObject ArgumentCondition(Random r) => r.Next(11) switch
    {
        10 => new JsonObject { ["arg"] = "to", ["op"] = "in-list", ["values"] = Allowlist(r) },
        6 or 7 => new JsonObject { ["arg"] = "to", ["op"] = "not-in-list", ["values"] = Allowlist(r) },
        8 => new JsonObject { ["arg"] = "series", ["op"] = "ne", ["value"] = SeriesValue(r) },
        9 => new JsonObject { ["arg"] = "side", ["op"] = "ne", ["value"] = Pick(r, s_sides) },
        4 => new JsonObject { ["arg"] = "size", ["op"] = Pick(r, ["lt", "lte", "gt", "gte"]), ["value"] = r.Next(0, 6) },
        5 => Between(r.Next(0, 4), r.Next(0, 3)),
        0 => new JsonObject { ["arg"] = "series", ["op"] = "eq", ["value"] = SeriesValue(r) },
        1 => new JsonObject { ["arg"] = "series", ["op"] = "one-of", ["values"] = new JsonArray(SeriesValue(r), SeriesValue(r)) },
        2 => new JsonObject { ["arg"] = "side", ["op"] = "eq", ["value"] = Pick(r, s_sides) },
        _ => new JsonObject { ["arg"] = "side", ["op"] = "one-of", ["values"] = new JsonArray(Pick(r, s_sides), r.Next(2) == 0) },
    };

    private static JsonObject Between(int min, int width) => new() { ["arg"] = "size", ["op"] = "between", ["min"] = min, ["max"] = min + width };

    /// <summary>
    /// A family of rules past <see cref="RuleIndex.NestAbove"/> that share a condition the index files allow rules by (an
    /// <c>eq</c>, <c>one-of</c> or <c>in-list</c>, so they land in one argument slot and are nested; or a range of the
    /// amount, so those without such a condition share an interval of a range slot and are nested) and differ by one or two
    /// more — a range of <c>size</c> (one- or two-sided), another <c>eq</c>/<c>one-of</c>, an <c>in-list</c>, a <c>ne</c> —
    /// or by nothing; sometimes all of them share a second condition too (which narrows nothing, so the nest files them
    /// by the next one). A few members deny or require approval (in one family in four most do: filed failing closed, never nested), some are shadow
    /// rules or carry a limit; the family's match is one operation or any, sometimes a venue, so most requests reach it.
    /// </summary>
    internal static IEnumerable<JsonObject> Family(Random r, string prefix)
    {
        int sharedKind = r.Next(7);
        JsonObject shared = sharedKind switch
        {
            0 => new JsonObject { ["arg"] = "side", ["op"] = "eq", ["value"] = Pick(r, s_sides) },
            1 => new JsonObject { ["arg"] = "series", ["op"] = "one-of", ["values"] = new JsonArray(SeriesValue(r), SeriesValue(r)) },
            2 => new JsonObject { ["arg"] = "to", ["op"] = "in-list", ["values"] = new JsonArray(Pick(r, s_tos), Pick(r, s_tos)) },
            5 => new JsonObject { ["arg"] = "amount", ["op"] = Pick(r, ["lt", "lte", "gte"]), ["value"] = Pick(r, [0, 60, 200]) },
            6 => new JsonObject { ["arg"] = "amount", ["op"] = "between", ["min"] = r.Next(0, 40), ["max"] = Pick(r, [60, 119]) },
            _ => new JsonObject { ["arg"] = "series", ["op"] = "eq", ["value"] = SeriesValue(r) },
        };
        JsonObject? alsoShared = r.Next(4) == 0 ? new JsonObject { ["arg"] = "side", ["op"] = "one-of", ["values"] = new JsonArray(Pick(r, s_sides), "hold") } : null;
        JsonArray operations = r.Next(3) == 0 ? [] : [Pick(r, PolicyPropertyTests.s_ops)];
        JsonArray venues = r.Next(4) == 0 ? [Pick(r, s_venues)] : [];
        bool denying = r.Next(4) == 0; // mostly deny and approval rules sharing the value (filed failing closed, so never nested)
        for (int j = 0, count = r.Next(RuleIndex.NestAbove + 1, 41); j < count; j++)
        {
            var conditions = new JsonArray(shared.DeepClone());
            if (alsoShared is not null)
            {
                conditions.Add(alsoShared.DeepClone());
            }

            for (int c = r.Next(5) == 0 ? 0 : r.Next(3) == 0 ? 2 : 1; c > 0; c--)
            {
                // A family sharing a range (the amount) differs mostly by ranges of the size, so most of it is filed by the range.
                JsonObject other = (sharedKind >= 5 && r.Next(4) > 0 ? Pick(r, [0, 1, 2]) : r.Next(8)) switch
                {
                    0 or 1 => Between(r.Next(0, 6), r.Next(0, 3)),
                    2 => new JsonObject { ["arg"] = "size", ["op"] = Pick(r, ["lt", "lte", "gt", "gte"]), ["value"] = r.Next(0, 6) },
                    3 => new JsonObject { ["arg"] = "series", ["op"] = "eq", ["value"] = SeriesValue(r) },
                    4 => new JsonObject { ["arg"] = "side", ["op"] = r.Next(2) == 0 ? "eq" : "ne", ["value"] = Pick(r, s_sides) },
                    5 => new JsonObject { ["arg"] = "side", ["op"] = "one-of", ["values"] = new JsonArray(Pick(r, s_sides), r.Next(2) == 0) },
                    _ => new JsonObject { ["arg"] = "to", ["op"] = "in-list", ["values"] = Allowlist(r) },
                };
                conditions.Insert(r.Next(conditions.Count + 1), other);
            }

            string effect = r.Next(10) switch { 0 => "deny", 1 => "require-approval", _ => "allow" };
            if (denying)
            {
                effect = r.Next(4) == 0 ? "allow" : Pick(r, ["deny", "require-approval"]);
            }

            var rule = new JsonObject
            {
                ["id"] = $"{prefix}{j:D2}",
                ["effect"] = effect,
                ["match"] = new JsonObject { ["operations"] = operations.DeepClone(), ["venues"] = venues.DeepClone() },
                ["conditions"] = conditions,
            };
            if (effect == "require-approval")
            {
                rule["approval"] = new JsonObject { ["groups"] = new JsonArray(new JsonObject { ["name"] = "g", ["members"] = new JsonArray("a1", "a2"), ["k"] = 1 }), ["ttlSeconds"] = 600 };
            }

            if (r.Next(8) == 0)
            {
                rule["mode"] = "shadow";
            }

            if (effect == "allow" && r.Next(6) == 0)
            {
                rule["limits"] = new JsonObject { ["perTransaction"] = new JsonObject { ["native"] = r.Next(1, 100) } };
            }

            yield return rule;
        }
    }

    internal static OperationRequest Request(Random r)
    {
        OperationRequest req = RandomRequest(r);
        string[] labels = [.. s_labels.Where(_ => r.Next(2) == 0)];
        if (labels.Length > 0 && r.Next(5) == 0)
        {
            labels = [.. labels, labels[0]]; // a label given twice reaches one slot twice
        }

        var args = new Dictionary<string, PolicyValue>(req.Args, StringComparer.Ordinal);
        switch (r.Next(4))
        {
            case 0: break; // no series: an allow rule's condition on it does not hold, a deny's does
            case 1: args["series"] = PolicyValue.Of(r.Next(4)); break;
            case 2: args["series"] = PolicyValue.Of(r.Next(4) + 0.000m); break;
            default: args["series"] = PolicyValue.OfText(r.Next(4).ToString(System.Globalization.CultureInfo.InvariantCulture)); break;
        }

        switch (r.Next(3))
        {
            case 0: break;
            case 1: args["side"] = PolicyValue.OfText(Pick(r, s_sides)); break;
            default: args["side"] = PolicyValue.Of(r.Next(2) == 0); break;
        }

        if (args.ContainsKey("to") && r.Next(6) == 0)
        {
            args["to"] = PolicyValue.OfText(Pick(r, s_tos)); // a counterparty that is not an address: a "not in" deny holds
        }

        switch (r.Next(5))
        {
            case 0: break; // no size: an allow rule's range on it does not hold, a deny's does
            case 1: args["size"] = PolicyValue.OfText("3"); break;
            case 2: args["size"] = PolicyValue.Of(r.Next(-1, 7) + 0.00m); break; // on a bound, at another scale
            default: args["size"] = PolicyValue.Of(r.Next(-10, 70) / 10m); break; // between bounds too
        }

        // Sometimes a person holding several roles (the index reaches a rule filed by roles through each of them).
        Principal principal = r.Next(4) != 0 ? req.Principal
            : new Principal(req.Principal.Id, PrincipalKind.Person, Pick<Role[]>(r, [[Role.Operator, Role.Approver], [Role.Approver], [Role.Operator, Role.Admin]]), PrincipalScope.Everything);
        return req with
        {
            Principal = principal, KeyId = Pick(r, s_keys), KeyLabels = labels, Venue = r.Next(4) == 0 ? null : Pick(r, s_venues), Contract = r.Next(3) == 0 ? null : Pick(r, s_contracts),
            ChainId = r.Next(4) == 0 ? null : Pick(r, s_chains), Selector = r.Next(4) == 0 ? null : Pick(r, s_selectors), Args = args,
        };
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

            // Half the policies hold one or two families of rules sharing a filed condition (nested by the others).
            for (int f = r.Next(2) == 0 ? 0 : r.Next(1, 3); f > 0; f--)
            {
                foreach (JsonObject member in Family(r, $"f{f}-"))
                {
                    rules.Add(member);
                }
            }

            PolicyDocument policy = PolicyDocument.Parse(new JsonObject { ["id"] = "idx", ["version"] = 1, ["rules"] = rules }.ToJsonString());
            for (int q = 0; q < 10; q++)
            {
                OperationRequest req = Request(r);
                DateTimeOffset now = Time(r);
                var context = new EvaluationContext(Pick(r, RiskLevels.All), now);

                IVelocityCounters counters = EmptyCounters.Instance;
                Decision indexed = PolicyEvaluator.DecideIndexed(policy, req, context, counters, byKeyAndVenue: true);
                Decision reference = PolicyEvaluator.DecideIndexed(policy, req, context, counters, byKeyAndVenue: false);
                string where = $"{TestSeed.EnvironmentVariable}={TestSeed.Run} stream {stream} policy {i} request {q}";
                Assert.True(reference.ToJson() == indexed.ToJson(), $"{where}: {reference.ToJson()} vs {indexed.ToJson()}");
                Assert.Equal(reference.Reservations, indexed.Reservations);
                Assert.Equal(reference.Approvals.Count, indexed.Approvals.Count);
                Assert.Equal(reference.NoRuleGranted, indexed.NoRuleGranted);

                // The index never returns a rule twice, never hides a rule that matches, and returns a subset in order.
                List<PolicyRule> candidates = [.. policy.Candidates(req, now)];
                List<PolicyRule> all = [.. policy.CandidatesByPrincipalAndOperation(req)];
                Assert.Equal(candidates.Count, candidates.Distinct().Count());
                Assert.All(policy.Rules.Where(rule => ReferenceMatcher.Matches(rule, req, now)), rule => Assert.Contains(rule, candidates));
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
        Assert.Equal(["r999"], policy.Candidates(req, s_now).Select(x => x.Id));
        Decision d = PolicyEvaluator.Decide(policy, req, new EvaluationContext(RiskLevel.Normal, s_now), EmptyCounters.Instance);
        Assert.Equal(DecisionOutcome.Allow, d.Outcome);
        Assert.Equal(["r999"], d.Rules);
        Assert.Empty(policy.Candidates(req with { Venue = null }, s_now));
    }

    /// <summary>
    /// A rule per option series (the by-condition layout of `conclave bench`): allow rules filed by their <c>eq</c>
    /// argument leave the one for the request's series, also when the value comes at another decimal scale; a deny
    /// rule with the same kind of condition is always a candidate (a missing argument makes its condition hold).
    /// </summary>
    [Fact]
    public void A_thousand_rules_that_differ_by_contract_leave_one_candidate_and_a_request_without_a_contract_none_of_them()
    {
        var rules = new JsonArray();
        for (int i = 0; i < 1000; i++)
        {
            rules.Add(JsonNode.Parse($$$"""{"id":"c{{{i:D4}}}","effect":"allow","match":{"roles":["agent"],"operations":["liquidate"],"contracts":["0x{{{i:x40}}}"]}}"""));
        }

        rules.Add(JsonNode.Parse("""{"id":"venue-and-contract","effect":"allow","match":{"operations":["liquidate"],"venues":["v1"],"contracts":["0x00000000000000000000000000000000000003e7"]}}"""));
        PolicyDocument policy = PolicyDocument.Parse(new JsonObject { ["id"] = "markets", ["version"] = 1, ["rules"] = rules }.ToJsonString());
        OperationRequest req = AgentLiquidates() with { Contract = "0x" + 999.ToString("x40", System.Globalization.CultureInfo.InvariantCulture) };
        Assert.Equal(1001, policy.CandidatesByPrincipalAndOperation(req).Count());
        Assert.Equal(["c0999"], policy.Candidates(req, s_now).Select(x => x.Id));
        Assert.Equal(["c0999", "venue-and-contract"], policy.Candidates(req with { Venue = "v1" }, s_now).Select(x => x.Id));
        Assert.Empty(policy.Candidates(req with { Contract = null }, s_now));
        Assert.Equal(DecisionOutcome.Allow, PolicyEvaluator.Decide(policy, req, new EvaluationContext(RiskLevel.Normal, s_now), EmptyCounters.Instance).Outcome);
    }

    /// <summary>
    /// Rules that differ by chain id or by selector (a rule per chain, per function) leave the request's own; a rule is
    /// filed by its shortest such list, so one naming a venue and many chains is reached through its venue; rules that
    /// list only roles are reached through each role a person holds.
    /// </summary>
    [Fact]
    public void A_thousand_rules_that_differ_by_chain_id_or_selector_leave_one_candidate_and_roles_reach_their_rules()
    {
        var rules = new JsonArray();
        for (int i = 0; i < 1000; i++)
        {
            rules.Add(JsonNode.Parse($$$"""{"id":"chain{{{i:D4}}}","effect":"allow","match":{"operations":["transfer"],"chainIds":[{{{1000 + i}}}]}}"""));
            rules.Add(JsonNode.Parse($$$"""{"id":"sel{{{i:D4}}}","effect":"allow","match":{"operations":["transfer"],"selectors":["0x{{{i:x8}}}"]}}"""));
        }

        rules.Add(JsonNode.Parse("""{"id":"venue-many-chains","effect":"allow","match":{"operations":["transfer"],"venues":["v1"],"chainIds":[1,10,1999]}}"""));
        rules.Add(JsonNode.Parse("""{"id":"approvers","effect":"deny","match":{"operations":["transfer"],"roles":["approver"]}}"""));
        rules.Add(JsonNode.Parse("""{"id":"auditors","effect":"deny","match":{"operations":["transfer"],"roles":["auditor"]}}"""));
        PolicyDocument policy = PolicyDocument.Parse(new JsonObject { ["id"] = "chains", ["version"] = 1, ["rules"] = rules }.ToJsonString());
        OperationRequest req = AgentLiquidates() with { Operation = OperationKind.Transfer, ChainId = 1999, Selector = "0x000003e7" };
        Assert.Equal(2003, policy.CandidatesByPrincipalAndOperation(req).Count());
        Assert.Equal(["chain0999", "sel0999"], policy.Candidates(req, s_now).Select(x => x.Id));
        Assert.Equal(["chain0999", "sel0999", "venue-many-chains"], policy.Candidates(req with { Venue = "v1" }, s_now).Select(x => x.Id));
        Assert.Empty(policy.Candidates(req with { ChainId = null, Selector = null }, s_now));

        var person = new Principal("ops-1", PrincipalKind.Person, [Role.Operator, Role.Approver], PrincipalScope.Everything);
        Assert.Equal(["approvers"], policy.Candidates(req with { Principal = person, ChainId = null, Selector = null }, s_now).Select(x => x.Id));
        Assert.Equal(DecisionOutcome.Deny, PolicyEvaluator.Decide(policy, req with { Principal = person }, new EvaluationContext(RiskLevel.Normal, s_now), EmptyCounters.Instance).Outcome);
    }

    /// <summary>
    /// Rules that differ by time window (an hour a day each, on some days one past midnight) are filed by the hours of the
    /// week they hold through and the minutes they hold at: a decision reads the ones holding at its minute, the part of a window after midnight counting on the
    /// next day, and a deny rule holding only on Sundays is read on Sundays only.
    /// </summary>
    [Fact]
    public void Rules_that_differ_by_time_window_are_read_only_at_the_minutes_they_hold()
    {
        var rules = new JsonArray();
        for (int h = 0; h < 24; h++)
        {
            rules.Add(JsonNode.Parse($$$"""{"id":"h{{{h:D2}}}","effect":"allow","match":{"operations":["liquidate"]},"time":{"from":"{{{h:D2}}}:00","to":"{{{h:D2}}}:59"}}"""));
        }

        rules.Add(JsonNode.Parse("""{"id":"late-mon","effect":"allow","match":{"operations":["liquidate"]},"time":{"days":["mon"],"from":"23:30","to":"00:30"}}"""));
        rules.Add(JsonNode.Parse("""{"id":"no-sundays","effect":"deny","match":{"operations":["liquidate"]},"time":{"days":["sun"],"from":"00:00","to":"24:00"}}"""));
        PolicyDocument policy = PolicyDocument.Parse(new JsonObject { ["id"] = "hours", ["version"] = 1, ["rules"] = rules }.ToJsonString());
        OperationRequest req = AgentLiquidates();
        DateTimeOffset monday = new(2026, 11, 30, 0, 0, 0, TimeSpan.Zero);
        Assert.Equal(26, policy.CandidatesByPrincipalAndOperation(req).Count());
        Assert.Equal(["h12"], policy.Candidates(req, monday.AddHours(12).AddMinutes(58)).Select(x => x.Id));
        Assert.Empty(policy.Candidates(req, monday.AddHours(12).AddMinutes(59))); // 12:00–12:59 is filed by its minutes: 12:59 is outside it
        Assert.Equal(["h23", "late-mon"], policy.Candidates(req, monday.AddHours(23).AddMinutes(45)).Select(x => x.Id));
        Assert.Equal(["h00", "late-mon"], policy.Candidates(req, monday.AddDays(1).AddMinutes(10)).Select(x => x.Id)); // Tuesday 00:10
        Assert.Equal(["h00"], policy.Candidates(req, monday.AddMinutes(10)).Select(x => x.Id)); // Monday 00:10: Sunday's window did not start
        Assert.Equal(["h05", "no-sundays"], policy.Candidates(req, monday.AddDays(-1).AddHours(5)).Select(x => x.Id));
        Assert.Equal(DecisionOutcome.Deny, PolicyEvaluator.Decide(policy, req, new EvaluationContext(RiskLevel.Normal, monday.AddDays(-1).AddHours(5)), EmptyCounters.Instance).Outcome);
        Assert.Equal(DecisionOutcome.Allow, PolicyEvaluator.Decide(policy, req, new EvaluationContext(RiskLevel.Normal, monday.AddDays(1).AddMinutes(10)), EmptyCounters.Instance).Outcome);
    }

    /// <summary>
    /// Allow rules that share their first condition and differ by a later one are filed by the later one (the condition
    /// whose values the fewest rules of the bucket share), so a thousand of them still leave one candidate; a request
    /// without that argument reaches none of them, and one with a value of the shared condition they do not accept is denied.
    /// </summary>
    [Fact]
    public void Allow_rules_that_share_a_first_condition_are_filed_by_the_condition_that_tells_them_apart()
    {
        var rules = new JsonArray();
        for (int i = 0; i < 1000; i++)
        {
            rules.Add(JsonNode.Parse($$$"""{"id":"s{{{i:D4}}}","effect":"allow","match":{"operations":["liquidate"]},"conditions":[{"arg":"series","op":"eq","value":7},{"arg":"side","op":"one-of","values":["side-{{{i}}}","alt-{{{i}}}"]}]}"""));
        }

        PolicyDocument policy = PolicyDocument.Parse(new JsonObject { ["id"] = "second", ["version"] = 1, ["rules"] = rules }.ToJsonString());
        OperationRequest req = AgentLiquidates(("series", PolicyValue.Of(7m)), ("side", PolicyValue.OfText("side-998")));
        Assert.Equal(1000, policy.CandidatesByPrincipalAndOperation(req).Count());
        Assert.Equal(["s0998"], policy.Candidates(req, s_now).Select(x => x.Id));
        Assert.Equal(["s0005"], policy.Candidates(AgentLiquidates(("series", PolicyValue.Of(7m)), ("side", PolicyValue.OfText("alt-5"))), s_now).Select(x => x.Id));
        Assert.Empty(policy.Candidates(AgentLiquidates(("series", PolicyValue.Of(7m))), s_now));
        Assert.Equal(DecisionOutcome.Allow, PolicyEvaluator.Decide(policy, req, new EvaluationContext(RiskLevel.Normal, s_now), EmptyCounters.Instance).Outcome);
        Assert.Equal(DecisionOutcome.Deny, PolicyEvaluator.Decide(policy, AgentLiquidates(("series", PolicyValue.Of(8m)), ("side", PolicyValue.OfText("side-998"))),
            new EvaluationContext(RiskLevel.Normal, s_now), EmptyCounters.Instance).Outcome);
    }

    /// <summary>
    /// The bench's former worst case (`unindexed`): 999 allow rules sharing <c>series eq 7</c>, each with an amount band
    /// of its own, and one allow rule with an amount cap. The series slot is nested by the bands, so a request reads the
    /// band holding its amount (or none), whatever the series' decimal scale; a request without an amount, or with a text,
    /// reads none of the bands. Deny and approval rules with the same two conditions stay filed failing closed (by their
    /// range): read when the amount is in their band and when there is no amount, and they decide.
    /// </summary>
    [Fact]
    public void Allow_rules_sharing_a_condition_and_differing_by_an_amount_band_are_nested_by_the_band()
    {
        var rules = new JsonArray();
        for (int i = 0; i < 999; i++)
        {
            rules.Add(JsonNode.Parse($$$"""{"id":"s{{{i:D4}}}","effect":"allow","match":{"roles":["agent"],"operations":["liquidate"]},"conditions":[{"arg":"series","op":"eq","value":7},{"arg":"amount","op":"between","min":{{{1000 + i}}},"max":{{{1000 + i}}}.5}]}"""));
        }

        rules.Add(JsonNode.Parse("""{"id":"allow","effect":"allow","match":{"roles":["agent"],"operations":["liquidate"]},"conditions":[{"arg":"amount","op":"lt","value":1000}]}"""));
        rules.Add(JsonNode.Parse("""{"id":"t-deny","effect":"deny","match":{"operations":["liquidate"]},"conditions":[{"arg":"series","op":"eq","value":7},{"arg":"amount","op":"between","min":2000,"max":3000}]}"""));
        rules.Add(JsonNode.Parse("""{"id":"t-held","effect":"require-approval","match":{"operations":["liquidate"]},"conditions":[{"arg":"series","op":"eq","value":7},{"arg":"amount","op":"gt","value":1990}],"approval":{"groups":[{"name":"g","members":["a1","a2"],"k":1}],"ttlSeconds":600}}"""));
        PolicyDocument policy = PolicyDocument.Parse(new JsonObject { ["id"] = "nested", ["version"] = 1, ["rules"] = rules }.ToJsonString());
        static OperationRequest Liquidate(PolicyValue? series, PolicyValue? amount) => AgentLiquidates(("series", series), ("amount", amount));
        var ctx = new EvaluationContext(RiskLevel.Normal, s_now);
        PolicyValue seven = PolicyValue.Of(7m);

        Assert.Equal(1002, policy.CandidatesByPrincipalAndOperation(Liquidate(seven, PolicyValue.Of(5m))).Count());
        Assert.Equal(["allow"], policy.Candidates(Liquidate(seven, PolicyValue.Of(5m)), s_now).Select(x => x.Id));
        Assert.Equal(["allow"], PolicyEvaluator.Decide(policy, Liquidate(PolicyValue.Of(7.000m), PolicyValue.Of(5m)), ctx, EmptyCounters.Instance).Rules);
        Assert.Equal(["s0500"], policy.Candidates(Liquidate(PolicyValue.Of(7.00m), PolicyValue.Of(1500.50m)), s_now).Select(x => x.Id)); // an included bound
        Assert.Empty(policy.Candidates(Liquidate(seven, PolicyValue.Of(1500.75m)), s_now)); // between two bands
        Assert.Equal(["s0800"], policy.Candidates(Liquidate(seven, PolicyValue.Of(1800m)), s_now).Select(x => x.Id));
        Assert.Empty(policy.Candidates(Liquidate(PolicyValue.Of(8m), PolicyValue.Of(1500m)), s_now));
        Assert.Empty(policy.Candidates(Liquidate(PolicyValue.OfText("7"), PolicyValue.Of(1500m)), s_now)); // a text is not the number 7

        // Without an amount, or with a text for it, no band holds: only the fail-closed deny and approval rules are read, and hold.
        Assert.Equal(["t-deny", "t-held"], policy.Candidates(Liquidate(seven, null), s_now).Select(x => x.Id));
        Assert.Equal(["t-deny", "t-held"], policy.Candidates(Liquidate(seven, PolicyValue.OfText("1500")), s_now).Select(x => x.Id));
        Assert.Equal(DecisionOutcome.Deny, PolicyEvaluator.Decide(policy, Liquidate(seven, null), ctx, EmptyCounters.Instance).Outcome);
        Assert.Equal(["s0995", "t-held"], policy.Candidates(Liquidate(seven, PolicyValue.Of(1995m)), s_now).Select(x => x.Id));
        Assert.Equal(DecisionOutcome.RequireApproval, PolicyEvaluator.Decide(policy, Liquidate(seven, PolicyValue.Of(1995m)), ctx, EmptyCounters.Instance).Outcome);
        Assert.Equal(["t-deny", "t-held"], policy.Candidates(Liquidate(seven, PolicyValue.Of(2500m)), s_now).Select(x => x.Id));
        Assert.Equal(["t-deny", "t-held"], policy.Candidates(Liquidate(null, PolicyValue.Of(2500m)), s_now).Select(x => x.Id)); // no series: they hold too
    }

    /// <summary>
    /// Allow rules on a grid of two <c>eq</c> conditions (32 series × 32 sides, each value shared by 32 rules, so the
    /// argument level's choice leaves 32 in a slot) are nested by the other one: one candidate; without the side none.
    /// Rules sharing <c>series eq 7</c> and each listing three counterparties of its own and a shared one (<c>in-list</c>;
    /// together shared more than the series, so they are filed by the series) are nested by the list: a counterparty of one list reads that rule, the shared counterparty every rule (they all hold), a text
    /// or a missing counterparty none; a shadow rule and a rule without a second condition are read whenever the slot is.
    /// </summary>
    [Fact]
    public void Allow_rules_sharing_a_condition_are_nested_by_another_eq_one_of_or_in_list()
    {
        var grid = new JsonArray();
        for (int i = 0; i < 1024; i++)
        {
            grid.Add(JsonNode.Parse($$$"""{"id":"g{{{i:D4}}}","effect":"allow","match":{"operations":["liquidate"]},"conditions":[{"arg":"series","op":"eq","value":{{{i / 32}}}},{"arg":"side","op":"eq","value":"side-{{{i % 32}}}"}]}"""));
        }

        PolicyDocument byTwo = PolicyDocument.Parse(new JsonObject { ["id"] = "grid", ["version"] = 1, ["rules"] = grid }.ToJsonString());
        Assert.Equal(["g0169"], byTwo.Candidates(AgentLiquidates(("series", PolicyValue.Of(5m)), ("side", PolicyValue.OfText("side-9"))), s_now).Select(x => x.Id));
        Assert.Empty(byTwo.Candidates(AgentLiquidates(("series", PolicyValue.Of(5m))), s_now));
        Assert.Empty(byTwo.Candidates(AgentLiquidates(("side", PolicyValue.OfText("side-9"))), s_now));

        string Address(int i) => "0x" + i.ToString("x40", System.Globalization.CultureInfo.InvariantCulture);
        var lists = new JsonArray();
        for (int i = 1; i <= 100; i++)
        {
            lists.Add(JsonNode.Parse($$$"""{"id":"l{{{i:D3}}}","effect":"allow","match":{"operations":["liquidate"]},"conditions":[{"arg":"to","op":"in-list","values":["{{{Address(i)}}}","{{{Address(0)}}}","{{{Address(200 + i)}}}","{{{Address(400 + i)}}}"]},{"arg":"series","op":"eq","value":7}]}"""));
        }

        lists.Add(JsonNode.Parse("""{"id":"m-plain","effect":"allow","match":{"operations":["liquidate"]},"conditions":[{"arg":"series","op":"eq","value":7}]}"""));
        lists.Add(JsonNode.Parse($$$"""{"id":"m-shadow","effect":"allow","mode":"shadow","match":{"operations":["liquidate"]},"conditions":[{"arg":"series","op":"eq","value":7},{"arg":"side","op":"one-of","values":["buy","sell"]}]}"""));
        PolicyDocument byList = PolicyDocument.Parse(new JsonObject { ["id"] = "lists", ["version"] = 1, ["rules"] = lists }.ToJsonString());
        OperationRequest To(PolicyValue? to, PolicyValue? side = null) => AgentLiquidates(("series", PolicyValue.Of(7m)), ("to", to), ("side", side));
        Assert.Equal(["l042", "m-plain"], byList.Candidates(To(PolicyValue.OfAddress(Address(42))), s_now).Select(x => x.Id));
        Assert.Equal(["l042", "m-plain", "m-shadow"], byList.Candidates(To(PolicyValue.OfAddress(Address(42)), PolicyValue.OfText("sell")), s_now).Select(x => x.Id));
        Assert.Equal(101, byList.Candidates(To(PolicyValue.OfAddress(Address(0))), s_now).Count());
        Assert.Equal(["m-plain"], byList.Candidates(To(PolicyValue.OfText(Address(42))), s_now).Select(x => x.Id));
        Assert.Equal(["m-plain"], byList.Candidates(To(null), s_now).Select(x => x.Id));
        Decision shadow = PolicyEvaluator.Decide(byList, To(PolicyValue.OfAddress(Address(42)), PolicyValue.OfText("buy")), new EvaluationContext(RiskLevel.Normal, s_now), EmptyCounters.Instance);
        Assert.Equal(["l042", "m-plain"], shadow.Rules);
        Assert.Equal(["l042", "m-plain", "m-shadow"], shadow.Shadow!.Rules);
    }

    /// <summary>
    /// Deny rules that share the value they are filed by and differ by a second <c>eq</c> are not nested: their
    /// conditions fail closed, so a request without the second argument, or with a value of another kind, reads every one
    /// of them and each holds; with a value of the right kind they are still all read (the fail-closed slot is read whole).
    /// </summary>
    [Fact]
    public void Deny_rules_sharing_a_value_are_not_nested_and_all_hold_without_the_second_argument()
    {
        var rules = new JsonArray();
        for (int i = 0; i < 3 * RuleIndex.NestAbove; i++)
        {
            rules.Add(JsonNode.Parse($$$"""{"id":"d{{{i:D2}}}","effect":"deny","match":{"operations":["liquidate"]},"conditions":[{"arg":"series","op":"eq","value":7},{"arg":"side","op":"eq","value":"side-{{{i}}}"}]}"""));
        }

        rules.Add(JsonNode.Parse("""{"id":"z-allow","effect":"allow","match":{"operations":["liquidate"]}}"""));
        PolicyDocument policy = PolicyDocument.Parse(new JsonObject { ["id"] = "denies", ["version"] = 1, ["rules"] = rules }.ToJsonString());
        var ctx = new EvaluationContext(RiskLevel.Normal, s_now);
        OperationRequest noSide = AgentLiquidates(("series", PolicyValue.Of(7m)));
        OperationRequest boolSide = AgentLiquidates(("series", PolicyValue.Of(7m)), ("side", PolicyValue.Of(true)));
        OperationRequest oneSide = AgentLiquidates(("series", PolicyValue.Of(7m)), ("side", PolicyValue.OfText("side-3")));
        Assert.Equal((3 * RuleIndex.NestAbove) + 1, policy.Candidates(noSide, s_now).Count());
        Assert.Equal(3 * RuleIndex.NestAbove, PolicyEvaluator.Decide(policy, noSide, ctx, EmptyCounters.Instance).Rules.Count);
        Assert.Equal(3 * RuleIndex.NestAbove, PolicyEvaluator.Decide(policy, boolSide, ctx, EmptyCounters.Instance).Rules.Count);
        Assert.Equal(["d03"], PolicyEvaluator.Decide(policy, oneSide, ctx, EmptyCounters.Instance).Rules);
        Assert.Equal(["z-allow"], PolicyEvaluator.Decide(policy, AgentLiquidates(("series", PolicyValue.Of(8m))), ctx, EmptyCounters.Instance).Rules);
    }

    /// <summary>
    /// Allow rules filed by a range they share (<c>amount lt 1000</c>: no <c>eq</c>/<c>one-of</c>/<c>in-list</c>) and
    /// differing by a band of another argument are told apart by the band (every range condition of a rule is filed):
    /// a request reads the band holding its series (and the rule with the shared range alone), none of the bands
    /// without a series or without an amount under the cap; so does a rule with a cap of its own and a band beside the
    /// group. A deny rule with the same conditions is filed failing closed and read whenever the amount is under its cap
    /// or missing.
    /// </summary>
    [Fact]
    public void Allow_rules_sharing_a_range_are_told_apart_by_their_other_range()
    {
        var rules = new JsonArray();
        for (int i = 0; i < 999; i++)
        {
            rules.Add(JsonNode.Parse($$$"""{"id":"s{{{i:D4}}}","effect":"allow","match":{"roles":["agent"],"operations":["liquidate"]},"conditions":[{"arg":"amount","op":"lt","value":1000},{"arg":"series","op":"between","min":{{{1000 + i}}},"max":{{{1000 + i}}}.5}]}"""));
        }

        rules.Add(JsonNode.Parse("""{"id":"allow","effect":"allow","match":{"roles":["agent"],"operations":["liquidate"]},"conditions":[{"arg":"amount","op":"lt","value":1000.0}]}"""));
        rules.Add(JsonNode.Parse("""{"id":"cap-900","effect":"allow","match":{"roles":["agent"],"operations":["liquidate"]},"conditions":[{"arg":"amount","op":"lt","value":900},{"arg":"series","op":"between","min":1500,"max":1500}]}"""));
        rules.Add(JsonNode.Parse("""{"id":"t-deny","effect":"deny","match":{"operations":["liquidate"]},"conditions":[{"arg":"amount","op":"lt","value":1000},{"arg":"series","op":"between","min":5000,"max":6000}]}"""));
        PolicyDocument policy = PolicyDocument.Parse(new JsonObject { ["id"] = "shared-range", ["version"] = 1, ["rules"] = rules }.ToJsonString());
        static OperationRequest Liquidate(PolicyValue? amount, PolicyValue? series) => AgentLiquidates(("amount", amount), ("series", series));
        var ctx = new EvaluationContext(RiskLevel.Normal, s_now);
        PolicyValue five = PolicyValue.Of(5m);

        Assert.Equal(1002, policy.CandidatesByPrincipalAndOperation(Liquidate(five, PolicyValue.Of(7m))).Count());
        Assert.Equal(["allow", "t-deny"], policy.Candidates(Liquidate(five, PolicyValue.Of(7m)), s_now).Select(x => x.Id));
        Assert.Equal(["allow"], PolicyEvaluator.Decide(policy, Liquidate(five, PolicyValue.Of(7m)), ctx, EmptyCounters.Instance).Rules);
        Assert.Equal(["allow", "cap-900", "s0500", "t-deny"], policy.Candidates(Liquidate(five, PolicyValue.Of(1500.0m)), s_now).Select(x => x.Id));
        Assert.Equal(["allow", "s0500", "t-deny"], policy.Candidates(Liquidate(PolicyValue.Of(950m), PolicyValue.Of(1500.5m)), s_now).Select(x => x.Id));
        Assert.Equal(["allow", "t-deny"], policy.Candidates(Liquidate(five, null), s_now).Select(x => x.Id));
        Assert.Equal(["allow", "t-deny"], policy.Candidates(Liquidate(five, PolicyValue.OfText("1500")), s_now).Select(x => x.Id));
        Assert.Equal(DecisionOutcome.Deny, PolicyEvaluator.Decide(policy, Liquidate(five, null), ctx, EmptyCounters.Instance).Outcome); // the deny's band fails closed
        Assert.Empty(policy.Candidates(Liquidate(PolicyValue.Of(1000m), PolicyValue.Of(1500m)), s_now)); // "lt" excludes its bound
        Assert.Equal(["t-deny"], policy.Candidates(Liquidate(null, PolicyValue.Of(1500m)), s_now).Select(x => x.Id));
        Assert.Equal(["t-deny"], policy.Candidates(Liquidate(PolicyValue.OfText("5"), PolicyValue.Of(5500m)), s_now).Select(x => x.Id));
    }

    /// <summary>
    /// The bench's layout <c>by-two-ranges</c> (once its worst case, <c>unindexed</c>): 999 allow rules each with an amount
    /// cap of its own that every small amount is under, differing by a band of the series, and one rule with a cap alone.
    /// Filed by every range condition, a request reads the one band holding its series and the cap, not the thousand.
    /// </summary>
    [Fact]
    public void Allow_rules_with_caps_of_their_own_are_told_apart_by_a_band_of_another_argument()
    {
        var rules = new JsonArray();
        for (int i = 0; i < 999; i++)
        {
            rules.Add(JsonNode.Parse($$$"""{"id":"u{{{i:D4}}}","effect":"allow","match":{"roles":["agent"],"operations":["liquidate"]},"conditions":[{"arg":"amount","op":"lt","value":{{{1000 + i}}}},{"arg":"series","op":"between","min":{{{10 * i}}},"max":{{{(10 * i) + 4}}}}]}"""));
        }

        rules.Add(JsonNode.Parse("""{"id":"z-cap","effect":"allow","match":{"roles":["agent"],"operations":["liquidate"]},"conditions":[{"arg":"amount","op":"lt","value":1000}]}"""));
        PolicyDocument policy = PolicyDocument.Parse(new JsonObject { ["id"] = "two-ranges", ["version"] = 1, ["rules"] = rules }.ToJsonString());
        static OperationRequest Liquidate(PolicyValue? amount, PolicyValue? series) => AgentLiquidates(("amount", amount), ("series", series));

        Assert.Equal(1000, policy.CandidatesByPrincipalAndOperation(Liquidate(PolicyValue.Of(5m), PolicyValue.Of(7m))).Count());
        Assert.Equal(["z-cap"], policy.Candidates(Liquidate(PolicyValue.Of(5m), PolicyValue.Of(7m)), s_now).Select(x => x.Id)); // between two bands
        Assert.Equal(["u0123", "z-cap"], policy.Candidates(Liquidate(PolicyValue.Of(5m), PolicyValue.Of(1234m)), s_now).Select(x => x.Id));
        Assert.Equal(["u0123"], policy.Candidates(Liquidate(PolicyValue.Of(1122m), PolicyValue.Of(1230.0m)), s_now).Select(x => x.Id)); // cap 1123 holds, z-cap's does not
        Assert.Empty(policy.Candidates(Liquidate(PolicyValue.Of(1123m), PolicyValue.Of(1230m)), s_now)); // "lt" excludes its bound
        Assert.Equal(["z-cap"], policy.Candidates(Liquidate(PolicyValue.Of(5m), null), s_now).Select(x => x.Id));
        Assert.Empty(policy.Candidates(Liquidate(null, PolicyValue.Of(1234m)), s_now));
        Assert.Equal(["u0123", "z-cap"], PolicyEvaluator.Decide(policy, Liquidate(PolicyValue.Of(5m), PolicyValue.Of(1234m)), new EvaluationContext(RiskLevel.Normal, s_now), EmptyCounters.Instance).Rules);
    }

    /// <summary>
    /// The bench's layout <c>by-not-in-list</c>: allow rules each with a cap of its own the amount is under and a
    /// <c>not-in-list</c> of counterparties holding the request's, and a rule with a cap alone. Filed by their lists too,
    /// a request reads the rules whose list leaves its counterparty out: the cap alone, and all of them for another
    /// counterparty; without a counterparty, or with a text, the cap alone.
    /// </summary>
    [Fact]
    public void Allow_rules_with_a_not_in_list_beside_a_range_are_told_apart_by_the_list()
    {
        string mine = "0x" + 999.ToString("x40", System.Globalization.CultureInfo.InvariantCulture);
        var rules = new JsonArray();
        for (int i = 0; i < 999; i++)
        {
            rules.Add(JsonNode.Parse($$$"""{"id":"u{{{i:D4}}}","effect":"allow","match":{"roles":["agent"],"operations":["liquidate"]},"conditions":[{"arg":"amount","op":"lt","value":{{{1000 + i}}}},{"arg":"to","op":"not-in-list","values":["0x{{{i:x40}}}","{{{mine}}}"]}]}"""));
        }

        rules.Add(JsonNode.Parse("""{"id":"z-cap","effect":"allow","match":{"roles":["agent"],"operations":["liquidate"]},"conditions":[{"arg":"amount","op":"lt","value":1000}]}"""));
        PolicyDocument policy = PolicyDocument.Parse(new JsonObject { ["id"] = "unindexed", ["version"] = 1, ["rules"] = rules }.ToJsonString());
        OperationRequest req = AgentLiquidates(("amount", PolicyValue.Of(5m)), ("to", PolicyValue.OfAddress(mine)));

        Assert.Equal(["z-cap"], policy.Candidates(req, s_now).Select(x => x.Id));
        Assert.Equal(["z-cap"], PolicyEvaluator.Decide(policy, req, new EvaluationContext(RiskLevel.Normal, s_now), EmptyCounters.Instance).Rules);
        string other = "0x" + 5000.ToString("x40", System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(1000, policy.Candidates(AgentLiquidates(("amount", PolicyValue.Of(5m)), ("to", PolicyValue.OfAddress(other))), s_now).Count()); // no list holds it
        string[] seventh = [.. policy.Candidates(AgentLiquidates(("amount", PolicyValue.Of(5m)), ("to", PolicyValue.OfAddress("0x" + 7.ToString("x40", System.Globalization.CultureInfo.InvariantCulture)))), s_now).Select(x => x.Id)];
        Assert.Equal(999, seventh.Length); // every rule but u0007, whose list holds counterparty 7
        Assert.DoesNotContain("u0007", seventh);
        Assert.Equal(["z-cap"], policy.Candidates(AgentLiquidates(("amount", PolicyValue.Of(5m))), s_now).Select(x => x.Id));
        Assert.Equal(["z-cap"], policy.Candidates(AgentLiquidates(("amount", PolicyValue.Of(5m)), ("to", PolicyValue.OfText(mine))), s_now).Select(x => x.Id));
    }

    /// <summary>
    /// The bench's <c>unindexed</c> layout (so named when windows were filed by hour alone, every rule a candidate): allow
    /// rules each holding only a minute inside the request's hour. A window that holds through part of an hour is filed
    /// by the minutes it holds at, so only the rules holding at the decision's minute are candidates.
    /// </summary>
    [Fact]
    public void Allow_rules_with_windows_inside_the_requests_hour_are_candidates_only_at_their_minutes()
    {
        var rules = new JsonArray();
        for (int i = 0; i < 999; i++)
        {
            int from = 721 + (i % 58);
            rules.Add(JsonNode.Parse($$$"""{"id":"w{{{i:D4}}}","effect":"allow","match":{"roles":["agent"],"operations":["liquidate"]},"time":{"from":"{{{from / 60:D2}}}:{{{from % 60:D2}}}","to":"{{{(from + 1) / 60:D2}}}:{{{(from + 1) % 60:D2}}}"}}"""));
        }

        rules.Add(JsonNode.Parse("""{"id":"z-any-time","effect":"allow","match":{"roles":["agent"],"operations":["liquidate"]},"conditions":[{"arg":"amount","op":"lt","value":1000}]}"""));
        PolicyDocument policy = PolicyDocument.Parse(new JsonObject { ["id"] = "minutes", ["version"] = 1, ["rules"] = rules }.ToJsonString());
        OperationRequest req = AgentLiquidates(("amount", PolicyValue.Of(5m)));

        Assert.Equal(["z-any-time"], policy.Candidates(req, s_now).Select(x => x.Id)); // s_now is 12:00
        Assert.Equal(["z-any-time"], PolicyEvaluator.Decide(policy, req, new EvaluationContext(RiskLevel.Normal, s_now), EmptyCounters.Instance).Rules);

        // 12:05: the windows 12:05–12:06 (i ≡ 4 mod 58), and the rule at any time.
        DateTimeOffset at = s_now.AddMinutes(5).AddSeconds(59);
        string[] expected = [.. Enumerable.Range(0, 999).Where(i => i % 58 == 4).Select(i => $"w{i:D4}"), "z-any-time"];
        Assert.Equal(expected, policy.Candidates(req, at).Select(x => x.Id));
        Assert.Equal(expected, PolicyEvaluator.Decide(policy, req, new EvaluationContext(RiskLevel.Normal, at), EmptyCounters.Instance).Rules);
        Assert.Single(policy.Candidates(req, s_now.AddHours(1)));
    }

    /// <summary>
    /// A window from 24:00 to 00:00 holds at no minute (past midnight it would end before it starts): its rule never
    /// matches, so it is never a candidate — a deny rule with it denies nothing, an allow rule allows nothing.
    /// </summary>
    [Fact]
    public void A_window_that_holds_at_no_minute_is_never_a_candidate()
    {
        PolicyDocument policy = PolicyDocument.Parse("""{"id":"empty-window","version":1,"rules":[{"id":"never","effect":"deny","match":{"operations":["liquidate"]},"time":{"from":"24:00","to":"00:00"}},{"id":"always","effect":"allow","match":{"operations":["liquidate"]}}]}""");
        OperationRequest req = AgentLiquidates();
        DateTimeOffset sunday = new(2026, 11, 29, 0, 0, 0, TimeSpan.Zero);
        for (int minute = 0; minute < 7 * 1440; minute += 7)
        {
            DateTimeOffset now = sunday.AddMinutes(minute);
            Assert.False(ReferenceMatcher.Matches(policy.Rules.Single(r => r.Id == "never"), req, now));
            Assert.Equal(["always"], policy.Candidates(req, now).Select(x => x.Id));
        }

        Assert.Equal(DecisionOutcome.Allow, PolicyEvaluator.Decide(policy, req, new EvaluationContext(RiskLevel.Normal, sunday), EmptyCounters.Instance).Outcome);
    }

    /// <summary>
    /// Rules that differ only by time window (any days, any start and end to the minute, past midnight, across the week's
    /// end, whole days): at any minute of the week the candidates are exactly the rules whose window holds then, as
    /// <see cref="ReferenceMatcher"/> reads it — the hours a window holds through and the minutes of the hours it reaches
    /// in part are where it is filed, nothing more, nothing less.
    /// </summary>
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    public void Rules_differing_by_time_window_are_candidates_exactly_when_their_window_holds(int stream)
    {
        var r = TestSeed.Random($"windows {stream}");
        string[] dayNames = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
        for (int round = 0; round < 20; round++)
        {
            var rules = new JsonArray();
            int count = r.Next(1, 200);
            for (int i = 0; i < count; i++)
            {
                // Starts and ends near the hour and at midnight more often than elsewhere.
                int from = r.Next(4) == 0 ? r.Next(25) * 60 : r.Next(1440);
                int to = r.Next(5) switch
                {
                    0 => 1440,
                    1 => r.Next(24) * 60,
                    2 => (from + r.Next(1, 3)) % 1440,
                    _ => r.Next(1440),
                };
                if (to == from || (to == 1440 && from == 0 && r.Next(2) == 0))
                {
                    to = (from + 61) % 1440;
                }

                if (to == from)
                {
                    to = 1;
                }

                var time = new JsonObject { ["from"] = $"{from / 60:D2}:{from % 60:D2}", ["to"] = $"{to / 60:D2}:{to % 60:D2}" };
                if (r.Next(3) != 0)
                {
                    time["days"] = new JsonArray([.. dayNames.Where(_ => r.Next(3) == 0).Select(d => (JsonNode)JsonValue.Create(d))]);
                }

                rules.Add(new JsonObject
                {
                    ["id"] = $"t{i:D3}",
                    ["effect"] = r.Next(4) == 0 ? "deny" : "allow",
                    ["match"] = new JsonObject { ["operations"] = new JsonArray("liquidate") },
                    ["time"] = time,
                });
            }

            PolicyDocument policy = PolicyDocument.Parse(new JsonObject { ["id"] = "windows", ["version"] = 1, ["rules"] = rules }.ToJsonString());
            OperationRequest req = AgentLiquidates(("amount", PolicyValue.Of(5m)));
            DateTimeOffset sunday = new(2026, 11, 29, 0, 0, 0, TimeSpan.Zero);
            for (int q = 0; q < 200; q++)
            {
                DateTimeOffset now = q < 100 ? sunday.AddMinutes(r.Next(7 * 1440)) : Time(r);
                now = now.AddSeconds(r.Next(60));
                string[] expected = [.. policy.Rules.Where(rule => ReferenceMatcher.Matches(rule, req, now)).Select(rule => rule.Id)];
                string[] indexed = [.. policy.Candidates(req, now).Select(rule => rule.Id)];
                Assert.True(expected.SequenceEqual(indexed),
                    $"{TestSeed.EnvironmentVariable}={TestSeed.Run} stream {stream} round {round} at {now:ddd HH:mm:ss}: expected [{string.Join(",", expected)}], got [{string.Join(",", indexed)}]");
            }
        }
    }

    /// <summary>
    /// Allow rules with one to four range, <c>not-in-list</c> or <c>ne</c> conditions each, on up to three numeric
    /// arguments and two others (several on one argument: their intersection; bounds included or not, at other decimal
    /// scales; empty intersections; <c>ne</c> of a number beside a range of it, or of a text; lists of addresses), from 1 to
    /// 14,000 rules (the largest past the stack-allocated bit sets and, a band each, past the prefix budget that lengthens
    /// the stride): the candidates are exactly, in document order, the rules whose every condition holds
    /// (<see cref="ReferenceMatcher"/> on every rule), for numbers on, beside and between the bounds, listed and unlisted
    /// addresses, values missing or of another kind.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Allow_rules_with_several_filed_conditions_leave_exactly_the_rules_all_of_whose_conditions_hold(int stream)
    {
        var r = TestSeed.Random($"range filter {stream}");
        string[] argNames = ["amount", "series", "strike"];
        string[] addresses = [.. Enumerable.Range(1, 6).Select(a => "0x" + a.ToString("x40", System.Globalization.CultureInfo.InvariantCulture))];
        string[] sides = ["buy", "sell", "hold"];
        for (int round = 0; round < 24; round++)
        {
            int count = round switch
            {
                0 when stream == 1 => 14_000,
                _ => r.Next(1, round < 12 ? 40 : 700),
            };
            var rules = new JsonArray();
            var bounds = new List<decimal>();
            bool large = count > 10_000; // one band of the amount each, mostly: more ends on one side than the prefix budget keeps at stride 64
            for (int i = 0; i < count; i++)
            {
                var conditions = new JsonArray();
                for (int c = large ? 1 : r.Next(1, 5); c > 0; c--)
                {
                    if (!large && r.Next(4) == 0)
                    {
                        conditions.Add(r.Next(3) switch
                        {
                            0 => new JsonObject { ["arg"] = "to", ["op"] = "not-in-list", ["values"] = new JsonArray([.. addresses.Where(_ => r.Next(3) == 0).DefaultIfEmpty(addresses[0]).Select(x => (JsonNode)x!)]) },
                            1 => new JsonObject { ["arg"] = "side", ["op"] = "ne", ["value"] = Pick(r, sides) },
                            _ => new JsonObject { ["arg"] = argNames[r.Next(3)], ["op"] = "ne", ["value"] = r.Next(0, 60) },
                        });
                        continue;
                    }

                    string arg = large ? "amount" : argNames[r.Next(r.Next(1, 4))];
                    decimal a = r.Next(0, 60) + (r.Next(4) == 0 ? 0.5m : r.Next(2) == 0 ? 0.0m : 0m);
                    decimal b = a + r.Next(0, 20);
                    bounds.Add(a);
                    bounds.Add(b);
                    string op = large && r.Next(10) > 0 ? "between" : Pick(r, ["lt", "lte", "gt", "gte", "between"]);
                    conditions.Add(op == "between"
                        ? new JsonObject { ["arg"] = arg, ["op"] = op, ["min"] = a, ["max"] = b }
                        : new JsonObject { ["arg"] = arg, ["op"] = op, ["value"] = a });
                }

                rules.Add(new JsonObject { ["id"] = $"r{i:D5}", ["effect"] = "allow", ["match"] = new JsonObject { ["operations"] = new JsonArray("liquidate") }, ["conditions"] = conditions });
            }

            PolicyDocument policy = PolicyDocument.Parse(new JsonObject { ["id"] = "filter", ["version"] = 1, ["rules"] = rules }.ToJsonString());
            decimal[] numbers = [.. bounds.Distinct().SelectMany(x => new[] { x, x - 0.25m, x + 0.25m }).OrderBy(_ => r.Next()).Take(count > 1000 ? 16 : 40)];
            PolicyValue? Draw()
            {
                int kind = r.Next(10);
                return kind == 0 ? null : kind == 1 ? PolicyValue.OfText("7") : PolicyValue.Of(Pick(r, numbers));
            }

            for (int q = 0; q < (count > 1000 ? 16 : 40); q++)
            {
                PolicyValue? to = r.Next(6) switch { 0 => null, 1 => PolicyValue.OfText("buy"), _ => PolicyValue.OfAddress(Pick(r, addresses)) };
                PolicyValue? side = r.Next(6) switch { 0 => null, 1 => PolicyValue.Of(7m), _ => PolicyValue.OfText(Pick(r, sides)) };
                OperationRequest req = AgentLiquidates(("amount", Draw()), ("series", Draw()), ("strike", Draw()), ("to", to), ("side", side));
                string[] expected = [.. policy.Rules.Where(rule => ReferenceMatcher.Matches(rule, req, s_now)).Select(rule => rule.Id)];
                string[] indexed = [.. policy.Candidates(req, s_now).Select(c => c.Id)];
                Assert.True(expected.SequenceEqual(indexed),
                    $"{TestSeed.EnvironmentVariable}={TestSeed.Run} stream {stream} round {round} ({count} rules) request {q}: expected [{string.Join(",", expected.Take(20))}] ({expected.Length}), got [{string.Join(",", indexed.Take(20))}] ({indexed.Length})");
            }
        }
    }

    /// <summary>
    /// The rule for nesting: an argument slot of up to <see cref="RuleIndex.NestAbove"/> allow rules is read whole; one
    /// more and it is filed by the rules' other conditions.
    /// </summary>
    [Fact]
    public void An_argument_slot_is_nested_only_past_NestAbove_rules()
    {
        PolicyDocument Policy(int count)
        {
            var rules = new JsonArray();
            for (int i = 0; i < count; i++)
            {
                rules.Add(JsonNode.Parse($$$"""{"id":"s{{{i:D2}}}","effect":"allow","match":{"operations":["liquidate"]},"conditions":[{"arg":"series","op":"eq","value":7},{"arg":"amount","op":"gte","value":{{{100 + i}}}}]}"""));
            }

            return PolicyDocument.Parse(new JsonObject { ["id"] = "threshold", ["version"] = 1, ["rules"] = rules }.ToJsonString());
        }

        OperationRequest req = AgentLiquidates(("series", PolicyValue.Of(7m)), ("amount", PolicyValue.Of(101m)));
        Assert.Equal(RuleIndex.NestAbove, Policy(RuleIndex.NestAbove).Candidates(req, s_now).Count());
        Assert.Equal(["s00", "s01"], Policy(RuleIndex.NestAbove + 1).Candidates(req, s_now).Select(x => x.Id));
    }

    [Fact]
    public void A_thousand_allow_rules_that_differ_by_an_argument_value_leave_one_candidate_and_deny_rules_by_value_fail_closed()
    {
        var rules = new JsonArray();
        for (int i = 0; i < 1000; i++)
        {
            rules.Add(JsonNode.Parse($$"""{"id":"r{{i}}","effect":"allow","match":{"roles":["agent"],"operations":["liquidate"]},"conditions":[{"arg":"amount","op":"lt","value":1000},{"arg":"series","op":"eq","value":{{i}}}]}"""));
        }

        rules.Add(JsonNode.Parse("""{"id":"no-series-7","effect":"deny","match":{"operations":["liquidate"]},"conditions":[{"arg":"series","op":"eq","value":7}]}"""));
        rules.Add(JsonNode.Parse("""{"id":"series-one-of","effect":"allow","match":{"roles":["agent"],"operations":["liquidate"]},"conditions":[{"arg":"series","op":"one-of","values":[3,998]}]}"""));
        PolicyDocument policy = PolicyDocument.Parse(new JsonObject { ["id"] = "by-series", ["version"] = 1, ["rules"] = rules }.ToJsonString());
        static OperationRequest Liquidate(PolicyValue? series) => AgentLiquidates(("amount", PolicyValue.Of(5m)), ("series", series));

        OperationRequest req = Liquidate(PolicyValue.Of(998.000m));
        Assert.Equal(1002, policy.CandidatesByPrincipalAndOperation(req).Count());
        Assert.Equal(["r998", "series-one-of"], policy.Candidates(req, s_now).Select(x => x.Id)); // the deny rule cannot hold for 998
        Assert.Equal(["no-series-7", "r7"], policy.Candidates(Liquidate(PolicyValue.Of(7.0m)), s_now).Select(x => x.Id));
        Decision d = PolicyEvaluator.Decide(policy, req, new EvaluationContext(RiskLevel.Normal, s_now), EmptyCounters.Instance);
        Assert.Equal(DecisionOutcome.Allow, d.Outcome);
        Assert.Equal(["r998", "series-one-of"], d.Rules);

        // Series 7 is denied by its rule; no series reaches only the deny rule (whose condition then holds) and is denied;
        // a series given as a text is another kind: only the deny rule again.
        Assert.Equal(DecisionOutcome.Deny, PolicyEvaluator.Decide(policy, Liquidate(PolicyValue.Of(7m)), new EvaluationContext(RiskLevel.Normal, s_now), EmptyCounters.Instance).Outcome);
        Assert.Equal(["no-series-7"], policy.Candidates(Liquidate(null), s_now).Select(x => x.Id));
        Assert.Equal(DecisionOutcome.Deny, PolicyEvaluator.Decide(policy, Liquidate(null), new EvaluationContext(RiskLevel.Normal, s_now), EmptyCounters.Instance).Outcome);
        Assert.Equal(["no-series-7"], policy.Candidates(Liquidate(PolicyValue.OfText("998")), s_now).Select(x => x.Id));
    }

    /// <summary>
    /// A thousand allow rules that differ only by an amount band (the by-range layout of `conclave bench`) leave the one
    /// band holding the request's amount, bounds included or not as written; nested thresholds too many to index
    /// ("amount below X" for every X) are all candidates again, and decide the same.
    /// </summary>
    [Fact]
    public void Allow_rules_by_amount_band_leave_the_band_that_holds_the_amount()
    {
        var bands = new JsonArray();
        for (int i = 0; i < 1000; i++)
        {
            bands.Add(JsonNode.Parse($$"""{"id":"b{{i:D4}}","effect":"allow","match":{"roles":["agent"],"operations":["liquidate"]},"conditions":[{"arg":"amount","op":"between","min":{{i * 10}},"max":{{(i * 10) + 9}}}]}"""));
        }

        bands.Add(JsonNode.Parse("""{"id":"over","effect":"allow","match":{"roles":["agent"],"operations":["liquidate"]},"conditions":[{"arg":"amount","op":"gt","value":9999}]}"""));
        bands.Add(JsonNode.Parse("""{"id":"not-under","effect":"allow","match":{"roles":["agent"],"operations":["liquidate"]},"conditions":[{"arg":"amount","op":"gte","value":9990}]}"""));
        PolicyDocument policy = PolicyDocument.Parse(new JsonObject { ["id"] = "bands", ["version"] = 1, ["rules"] = bands }.ToJsonString());
        static OperationRequest Liquidate(PolicyValue? amount) => AgentLiquidates(("amount", amount));

        Assert.Equal(1002, policy.CandidatesByPrincipalAndOperation(Liquidate(PolicyValue.Of(5m))).Count());
        Assert.Equal(["b0000"], policy.Candidates(Liquidate(PolicyValue.Of(5m)), s_now).Select(x => x.Id));
        Assert.Equal(["b0123"], policy.Candidates(Liquidate(PolicyValue.Of(1239.00m)), s_now).Select(x => x.Id)); // an included bound, at another scale
        Assert.Empty(policy.Candidates(Liquidate(PolicyValue.Of(1239.5m)), s_now)); // between two bands
        Assert.Equal(["b0999", "not-under"], policy.Candidates(Liquidate(PolicyValue.Of(9990m)), s_now).Select(x => x.Id));
        Assert.Equal(["not-under", "over"], policy.Candidates(Liquidate(PolicyValue.Of(10_000m)), s_now).Select(x => x.Id));
        Assert.Equal(["b0999", "not-under"], policy.Candidates(Liquidate(PolicyValue.Of(9999m)), s_now).Select(x => x.Id)); // "over" excludes its bound
        Assert.Equal(["not-under", "over"], policy.Candidates(Liquidate(PolicyValue.Of(9999.5m)), s_now).Select(x => x.Id));
        Assert.Empty(policy.Candidates(Liquidate(null), s_now));
        Assert.Empty(policy.Candidates(Liquidate(PolicyValue.OfText("5")), s_now));
        Assert.Equal(DecisionOutcome.Allow, PolicyEvaluator.Decide(policy, Liquidate(PolicyValue.Of(5m)), new EvaluationContext(RiskLevel.Normal, s_now), EmptyCounters.Instance).Outcome);

        // "amount below X" for 300 values of X (nested, bounded on one side): the candidates are exactly the rules holding.
        var ceilings = new JsonArray();
        var nested = new JsonArray();
        for (int i = 0; i < 300; i++)
        {
            ceilings.Add(JsonNode.Parse($$"""{"id":"c{{i:D3}}","effect":"allow","match":{"operations":["liquidate"]},"conditions":[{"arg":"amount","op":"{{(i % 2 == 0 ? "lt" : "lte")}}","value":{{i}}}]}"""));
            nested.Add(JsonNode.Parse($$"""{"id":"n{{i:D3}}","effect":"allow","match":{"operations":["liquidate"]},"conditions":[{"arg":"amount","op":"between","min":0,"max":{{i}}}]}"""));
        }

        PolicyDocument below = PolicyDocument.Parse(new JsonObject { ["id"] = "ceilings", ["version"] = 1, ["rules"] = ceilings }.ToJsonString());
        Assert.Equal(Enumerable.Range(150, 150).Where(i => i > 150 || i % 2 == 1).Select(i => $"c{i:D3}"), below.Candidates(Liquidate(PolicyValue.Of(150m)), s_now).Select(x => x.Id));
        Decision d = PolicyEvaluator.Decide(below, Liquidate(PolicyValue.Of(150m)), new EvaluationContext(RiskLevel.Normal, s_now), EmptyCounters.Instance);
        Assert.Equal(149, d.Rules.Count); // c151 … c299 (c150 is "lt 150")

        // Bands each containing the next, 300 of them: the candidates are exactly the bands holding the amount.
        PolicyDocument bands2 = PolicyDocument.Parse(new JsonObject { ["id"] = "nested", ["version"] = 1, ["rules"] = nested }.ToJsonString());
        Assert.Equal(Enumerable.Range(150, 150).Select(i => $"n{i:D3}"), bands2.Candidates(Liquidate(PolicyValue.Of(150m)), s_now).Select(x => x.Id));
        Assert.Equal(["n299"], bands2.Candidates(Liquidate(PolicyValue.Of(299m)), s_now).Select(x => x.Id));
        Assert.Empty(bands2.Candidates(Liquidate(PolicyValue.Of(299.5m)), s_now));
        Assert.Equal(150, PolicyEvaluator.Decide(bands2, Liquidate(PolicyValue.Of(150m)), new EvaluationContext(RiskLevel.Normal, s_now), EmptyCounters.Instance).Rules.Count);
    }

    /// <summary>
    /// Deny and require-approval rules with a range condition (caps: deny above X, approval above Y) are filed by it too,
    /// failing closed: a request with a number reads only the caps it exceeds; one without a number for the argument
    /// (missing, or a text) reads every one of them, and each of them then holds, as the matcher has it.
    /// </summary>
    [Fact]
    public void Deny_and_approval_caps_leave_the_caps_a_number_exceeds_and_all_of_them_without_a_number()
    {
        var rules = new JsonArray();
        for (int i = 0; i < 1000; i++)
        {
            rules.Add(JsonNode.Parse($$"""{"id":"d{{i:D4}}","effect":"deny","match":{"roles":["agent"],"operations":["liquidate"]},"conditions":[{"arg":"amount","op":"gt","value":{{1000 + i}}}]}"""));
        }

        rules.Add(JsonNode.Parse("""{"id":"held","effect":"require-approval","match":{"operations":["liquidate"]},"conditions":[{"arg":"amount","op":"between","min":500,"max":900}],"approval":{"groups":[{"name":"g","members":["a1","a2"],"k":1}],"ttlSeconds":600}}"""));
        rules.Add(JsonNode.Parse("""{"id":"allow","effect":"allow","match":{"roles":["agent"],"operations":["liquidate"]},"conditions":[{"arg":"amount","op":"lt","value":100000}]}"""));
        PolicyDocument policy = PolicyDocument.Parse(new JsonObject { ["id"] = "caps", ["version"] = 1, ["rules"] = rules }.ToJsonString());
        static OperationRequest Liquidate(PolicyValue? amount) => AgentLiquidates(("amount", amount));
        var ctx = new EvaluationContext(RiskLevel.Normal, s_now);

        // (Candidates come in document order, and a parsed document keeps its rules in id order.)
        Assert.Equal(["allow"], policy.Candidates(Liquidate(PolicyValue.Of(5m)), s_now).Select(x => x.Id));
        Assert.Equal(DecisionOutcome.Allow, PolicyEvaluator.Decide(policy, Liquidate(PolicyValue.Of(5m)), ctx, EmptyCounters.Instance).Outcome);
        Assert.Equal(["allow", "held"], policy.Candidates(Liquidate(PolicyValue.Of(900m)), s_now).Select(x => x.Id));
        Assert.Equal(DecisionOutcome.RequireApproval, PolicyEvaluator.Decide(policy, Liquidate(PolicyValue.Of(900m)), ctx, EmptyCounters.Instance).Outcome);
        Assert.Equal(["allow", "d0000", "d0001"], policy.Candidates(Liquidate(PolicyValue.Of(1001.5m)), s_now).Select(x => x.Id));
        Assert.Equal(["d0000", "d0001"], PolicyEvaluator.Decide(policy, Liquidate(PolicyValue.Of(1001.5m)), ctx, EmptyCounters.Instance).Rules);
        Assert.Equal(["allow", "d0000"], policy.Candidates(Liquidate(PolicyValue.Of(1001m)), s_now).Select(x => x.Id)); // "gt" excludes its bound

        // Without a number every cap is a candidate and holds (fail closed); the allow rule's range does not hold.
        Assert.Equal(1001, policy.Candidates(Liquidate(null), s_now).Count());
        Assert.Equal(1001, policy.Candidates(Liquidate(PolicyValue.OfText("5")), s_now).Count());
        Decision missing = PolicyEvaluator.Decide(policy, Liquidate(null), ctx, EmptyCounters.Instance);
        Assert.Equal(DecisionOutcome.Deny, missing.Outcome);
        Assert.Equal(1000, missing.Rules.Count);
    }

    /// <summary>
    /// Two-sided bands (`between`, both ends included) of every shape — nested, overlapping, touching, equal, single
    /// points, bounds at another decimal scale: the candidates
    /// through the interval tree are exactly, and in document order, the allow rules whose first range condition holds
    /// the number, checked against a brute-force scan for numbers on, between and outside every bound.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Two_sided_bands_of_any_nesting_leave_exactly_the_bands_holding_the_number(int stream)
    {
        var r = TestSeed.Random($"bands {stream}");
        for (int round = 0; round < 40; round++)
        {
            int count = r.Next(1, 1 + (round < 20 ? 30 : 600));
            var rules = new JsonArray();
            var expected = new List<(string Id, decimal Low, decimal High)>();
            int nesting = r.Next(3);
            for (int i = 0; i < count; i++)
            {
                // Nested (each inside the one before), or random, or touching neighbours; scales vary (2 and 2.0).
                (int lo, int hi) = nesting switch
                {
                    0 => (Math.Min(i, 299), 600 - Math.Min(i, 299) + r.Next(0, 2)),
                    1 => (r.Next(0, 40) is var a ? (a, a + r.Next(0, 10)) : default),
                    _ => (i * 3, (i * 3) + 3),
                };
                decimal low = r.Next(2) == 0 ? lo : lo + 0.0m;
                decimal high = hi;
                string id = $"b{i:D3}";
                rules.Add(JsonNode.Parse($$"""{"id":"{{id}}","effect":"allow","match":{"operations":["liquidate"]},"conditions":[{"arg":"amount","op":"between","min":{{low.ToString(System.Globalization.CultureInfo.InvariantCulture)}},"max":{{high.ToString(System.Globalization.CultureInfo.InvariantCulture)}}}]}"""));
                expected.Add((id, low, high));
            }

            PolicyDocument policy = PolicyDocument.Parse(new JsonObject { ["id"] = "bands", ["version"] = 1, ["rules"] = rules }.ToJsonString());
            decimal[] probes = [.. expected.SelectMany(b => new[] { b.Low, b.High, b.Low - 0.5m, b.High + 0.5m, b.Low + 0.25m }).Distinct().OrderBy(_ => r.Next()).Take(60), -1m, 10_000m];
            foreach (decimal x in probes)
            {
                string where = $"{TestSeed.EnvironmentVariable}={TestSeed.Run} stream {stream} round {round} amount {x}";
                string[] brute = [.. expected.Where(b => b.Low <= x && x <= b.High).Select(b => b.Id)];
                string[] indexed = [.. policy.Candidates(AgentLiquidates(("amount", PolicyValue.Of(x))), s_now).Select(c => c.Id)];
                Assert.True(brute.SequenceEqual(indexed), $"{where}: expected [{string.Join(",", brute)}], got [{string.Join(",", indexed)}]");
            }
        }
    }

    /// <summary>
    /// Deny rules that each allow a list of counterparties (<c>not-in-list</c>), one allow rule: a listed address reads only
    /// the rules whose list leaves it out, an unlisted one, a missing counterparty or one that is not an address reads
    /// them all; every candidate set is what a scan of the matcher gives, and the decision follows.
    /// </summary>
    [Fact]
    public void Allowlist_deny_rules_are_read_only_when_their_list_leaves_the_counterparty_out()
    {
        var r = TestSeed.Random("allowlists");
        string Address(int i) => "0x" + i.ToString("x40", System.Globalization.CultureInfo.InvariantCulture);
        for (int round = 0; round < 30; round++)
        {
            int count = r.Next(1, round < 15 ? 12 : 400);
            var rules = new JsonArray();
            for (int i = 0; i < count; i++)
            {
                // Each list: a run of addresses around i and, most of the time, the shared address 0.
                var list = new JsonArray();
                for (int a = 1 + Math.Max(0, i - r.Next(0, 3)), end = a + r.Next(1, 12); a < end; a++)
                {
                    list.Add(Address(a));
                }

                if (r.Next(5) > 0)
                {
                    list.Add(Address(0));
                }

                var rule = new JsonObject
                {
                    ["id"] = $"d{i:D3}",
                    ["effect"] = r.Next(4) == 0 ? "require-approval" : "deny",
                    ["match"] = new JsonObject { ["roles"] = new JsonArray("agent"), ["operations"] = new JsonArray("liquidate") },
                    ["conditions"] = new JsonArray(new JsonObject { ["arg"] = "to", ["op"] = "not-in-list", ["values"] = list }),
                };
                if (rule["effect"]!.GetValue<string>() == "require-approval")
                {
                    rule["approval"] = new JsonObject { ["groups"] = new JsonArray(new JsonObject { ["name"] = "g", ["members"] = new JsonArray("a1", "a2"), ["k"] = 1 }), ["ttlSeconds"] = 600 };
                }

                rules.Add(rule);
            }

            rules.Add(new JsonObject { ["id"] = "allow", ["effect"] = "allow", ["match"] = new JsonObject { ["roles"] = new JsonArray("agent"), ["operations"] = new JsonArray("liquidate") } });
            string json = new JsonObject { ["id"] = "allowlists", ["version"] = 1, ["rules"] = rules }.ToJsonString();
            PolicyDocument policy = PolicyDocument.Parse(json);
            PolicyValue?[] probes = [null, PolicyValue.OfText(Address(0)), PolicyValue.OfAddress(Address(0)), PolicyValue.OfAddress(Address(r.Next(1, count + 12))), PolicyValue.OfAddress(Address(5000))];
            foreach (PolicyValue? to in probes)
            {
                OperationRequest req = AgentLiquidates(("to", to));
                string where = $"{TestSeed.EnvironmentVariable}={TestSeed.Run} round {round} to {to?.Text ?? "missing"}";
                string[] scan = [.. policy.CandidatesByPrincipalAndOperation(req).Where(rule => ReferenceMatcher.Matches(rule, req, s_now)).Select(rule => rule.Id)];
                string[] indexed = [.. policy.Candidates(req, s_now).Select(rule => rule.Id)];
                Assert.True(scan.SequenceEqual(indexed), $"{where}: expected [{string.Join(",", scan)}], got [{string.Join(",", indexed)}]");
                var context = new EvaluationContext(RiskLevel.Normal, s_now);
                Assert.Equal(PolicyEvaluator.DecideIndexed(policy, req, context, EmptyCounters.Instance, byKeyAndVenue: false).ToJson(),
                    PolicyEvaluator.DecideIndexed(policy, req, context, EmptyCounters.Instance, byKeyAndVenue: true).ToJson());
            }
        }
    }

    /// <summary>agent-7 (role agent) liquidating with key-7, with the arguments given (a null value: the argument is absent).</summary>
    private static OperationRequest AgentLiquidates(params (string Name, PolicyValue? Value)[] args) => new()
    {
        Principal = new Principal("agent-7", PrincipalKind.Agent, [Role.Agent], PrincipalScope.Everything),
        Operation = OperationKind.Liquidate,
        KeyId = "key-7",
        Args = args.Where(a => a.Value is not null).ToDictionary(a => a.Name, a => a.Value!.Value, StringComparer.Ordinal),
    };
}
