using System.Globalization;
using System.Text;
using Conclave.Policy.Documents;
using Conclave.Policy.Evaluation;
using Conclave.Policy.Operations;
using Conclave.Policy.Principals;
using Conclave.Policy.Risk;

namespace Conclave.Cli.Bench;

/// <summary>
/// Policy decision latency in process (issue 16 "Benchmark": 10, 100, 1,000 and 10,000 rules; target p99 ≤ 20 µs at
/// 1,000): <see cref="PolicyEvaluator.Decide"/> on a parsed document, one call timed per sample. Several layouts, because
/// the evaluator indexes rules by (principal, operation) and then by (key, venue) (RuleIndex) and the cost depends on
/// how many rules survive the index:
/// <list type="bullet">
/// <item><c>per-agent</c>: every rule names one agent and one operation, with a key list, an amount condition and a
/// per-transaction limit (a venue that writes a rule per bot): the index leaves the request's agent's few rules.</item>
/// <item><c>by-venue</c>: every rule matches the role agent and the operation liquidate and differs only by venue
/// (a venue that writes rules per market): the venue level of the index leaves the one rule of the request's venue.</item>
/// <item><c>by-contract</c>: every rule matches the role agent and the operation liquidate and differs only by the
/// contract it names (a rule per market contract): the place level of the index leaves the one rule of the request's
/// contract.</item>
/// <item><c>by-condition</c>: every rule matches the role agent and the operation liquidate, any key and venue, and
/// differs only by an <c>eq</c> condition on an argument (a rule per option series): the argument level of the index
/// leaves the one rule of the request's series.</item>
/// <item><c>by-range</c>: every rule matches the role agent and the operation liquidate and differs only by a band of
/// the amount (<c>between</c>, a tier per size band): the range level of the index leaves the band holding the amount.</item>
/// <item><c>by-threshold</c>: every rule matches the role agent and the operation liquidate and differs only by an
/// amount floor (<c>gte</c>, one per tier): the floors are kept sorted, so the index leaves the rules whose floor the
/// amount reaches.</item>
/// <item><c>nested-bands</c>: every rule matches the role agent and the operation liquidate and differs only by a band
/// of the amount that contains the next one (<c>between</c>, nested): the interval tree of the range level leaves the
/// one band holding the amount however deep the nesting.</item>
/// <item><c>deny-caps</c>: one allow rule and, for the same role and operation, rules that each deny amounts above a cap
/// of their own (<c>gt</c>): deny rules are filed by their range failing closed (read when the amount exceeds the cap or
/// there is no amount), so the request under every cap reads the allow rule alone.</item>
/// <item><c>deny-lists</c>: one allow rule and, for the same role and operation, rules that each deny one counterparty
/// (<c>in-list</c> on the argument <c>to</c>): deny rules are filed by value failing closed, so the request reads the
/// allow rule alone.</item>
/// <item><c>allowlists</c>: one allow rule and, for the same role and operation, rules that each deny a counterparty outside
/// a list of its own (<c>not-in-list</c>, every list holding the request's): deny rules are filed by the values they
/// list, so a counterparty every list holds reads the allow rule alone.</item>
/// <item><c>by-chain</c>: allow rules for the same role and operation that each name a chain of their own
/// (<c>chainIds</c>, none the request's) and one allow rule for any chain: the place level of the index (chain ids as
/// venues, contracts and selectors) leaves the rule for any chain.</item>
/// <item><c>by-time</c>: allow rules for the same role and operation that each hold only in a time window of their own
/// (none holding at the request's time) and one allow rule at any time: rules are filed by the hours of the week their
/// window reaches, so the index leaves the rule for any time.</item>
/// <item><c>by-second-condition</c>: allow rules for the same role and operation that share an <c>eq</c> condition (the
/// one the argument level files them by, which the request meets) and differ by a range of the amount the request's
/// amount is not in, and one allow rule without them: the argument slot of the shared value holds more than
/// <c>RuleIndex.NestAbove</c> rules, so it is nested by their other condition (the amount bands, in an interval tree),
/// which leaves the one allow rule.</item>
/// <item><c>by-shared-range</c>: allow rules for the same role and operation that share a range condition the request
/// meets (<c>amount lt 1000</c>; they have no <c>eq</c>/<c>one-of</c>/<c>in-list</c>, so the condition filter files
/// them) and differ by a band of another argument (<c>series between</c>) the request's value is not in, and one allow
/// rule with the shared range alone: the filter holds every range, not-in-list and ne condition of a rule, so the bands
/// leave the one allow rule.</item>
/// <item><c>by-two-ranges</c>: the same, but each rule's cap is its own (<c>amount lt 1000 + i</c>: every one holds the
/// request's amount, no two are the same interval): the caps leave every rule, the bands none of them, so the one
/// allow rule is left (filed by its first range alone, this was the worst case).</item>
/// <item><c>by-not-in-list</c>: allow rules for the same role and operation, each with a cap of its own the request's
/// amount is under and a counterparty condition (<c>to not-in-list</c>, each list holding the request's counterparty),
/// and one allow rule with a cap alone: the lists leave the one allow rule.</item>
/// <item><c>by-minute</c>: allow rules for the same role and operation, each holding only in a window of a minute
/// inside the request's hour but not at its minute, and one allow rule at any time: a window that holds through part of
/// an hour is filed by the minutes it holds at, so the minute index leaves the one allow rule (filed by hour alone, every
/// rule was a candidate: the worst case until then, named <c>unindexed</c> in earlier reports).</item>
/// </list>
/// The request is allowed by exactly one rule in every layout, so the whole decision (scope, level, deny scan, limits,
/// explanation) runs. Velocity counters are empty (their reads are the store's, measured with it).
/// </summary>
internal static class PolicyBench
{
    public static IReadOnlyList<int> RuleCounts { get; } = [10, 100, 1_000, 10_000];

    public static IReadOnlyList<string> Layouts { get; } = ["per-agent", "by-venue", "by-contract", "by-condition", "by-range", "by-threshold", "nested-bands", "deny-caps", "deny-lists", "allowlists", "by-chain", "by-time", "by-second-condition", "by-shared-range", "by-two-ranges", "by-not-in-list", "by-minute"];

    private static readonly DateTimeOffset Now = new(2026, 11, 30, 12, 0, 0, TimeSpan.Zero);

    public static void Run(BenchContext ctx)
    {
        foreach (string layout in Layouts)
        {
            foreach (int rules in RuleCounts)
            {
                string id = $"policy/decide-{layout}-{rules}";
                if (!ctx.Begin(id))
                {
                    continue;
                }

                (PolicyDocument policy, OperationRequest request) = layout switch
                {
                    "per-agent" => PerAgent(rules),
                    "by-venue" => ByVenue(rules),
                    "by-contract" => ByContract(rules),
                    "by-condition" => ByCondition(rules),
                    "by-range" => ByRange(rules),
                    "by-threshold" => ByThreshold(rules),
                    "nested-bands" => NestedBands(rules),
                    "deny-caps" => DenyCaps(rules),
                    "deny-lists" => DenyLists(rules, notIn: false),
                    "allowlists" => DenyLists(rules, notIn: true),
                    "by-chain" => ByChain(rules),
                    "by-time" => ByTime(rules),
                    "by-second-condition" => SecondCondition(rules),
                    "by-shared-range" => SharedRange(rules, ownCaps: false),
                    "by-two-ranges" => SharedRange(rules, ownCaps: true),
                    "by-not-in-list" => NotInLists(rules),
                    _ => WithinTheHour(rules),
                };
                var context = new EvaluationContext(RiskLevel.Normal, Now);
                Decision first = PolicyEvaluator.Decide(policy, request, context, EmptyCounters.Instance);
                if (first.Outcome != DecisionOutcome.Allow || first.Rules.Count != 1)
                {
                    throw new BenchFailedException($"{id}: the benchmark request was not allowed by exactly one rule ({first.Outcome}); no figures are reported");
                }

                Latency latency = ctx.Sampler.Sequential(() => PolicyEvaluator.Decide(policy, request, context, EmptyCounters.Instance));
                ctx.Add(new BenchRow
                {
                    Id = id, Family = Comparison.PolicyFamily, Operation = "decide", Scheme = "conclave-policy", Shape = $"{rules} rules", Where = "in-process",
                    Sign = latency, SecurityProfile = "-",
                    Note = layout switch
                    {
                        "per-agent" => $"{rules} rules, one agent and one operation each: the principal/operation index leaves {PerAgentCandidates(rules)} candidate(s)",
                        "by-venue" => $"{rules} rules matching role agent and operation liquidate, one venue each: the venue index leaves 1 candidate(s)",
                        "by-contract" => $"{rules} rules matching role agent and operation liquidate, one contract each: the contract index leaves 1 candidate(s)",
                        "by-condition" => $"{rules} rules matching role agent and operation liquidate, one series (eq) condition each: the argument index leaves 1 candidate(s)",
                        "by-range" => $"{rules} rules matching role agent and operation liquidate, one amount band (between) each: the range index leaves 1 candidate(s)",
                        "by-threshold" => $"{rules} rules matching role agent and operation liquidate, one amount floor (gte) each: the floor index leaves 1 candidate(s)",
                        "nested-bands" => $"{rules} rules matching role agent and operation liquidate, nested amount bands (between): the interval tree leaves 1 candidate(s)",
                        "deny-caps" => $"{rules - 1} deny rules (an amount cap each) and 1 allow rule, all matching role agent and operation liquidate: the fail-closed range index leaves 1 candidate(s)",
                        "deny-lists" => $"{rules - 1} deny rules (one counterparty each, in-list) and 1 allow rule, all matching role agent and operation liquidate: the fail-closed value index leaves 1 candidate(s)",
                        "allowlists" => $"{rules - 1} deny rules (a counterparty outside a list each, not-in-list) and 1 allow rule, all matching role agent and operation liquidate: the fail-closed \"not in\" index leaves 1 candidate(s)",
                        "by-chain" => $"{rules - 1} allow rules (a chain id each, not the request's) and 1 allow rule for any chain, all matching role agent and operation liquidate: the chain index leaves 1 candidate(s)",
                        "by-time" => $"{rules - 1} allow rules (a time window each, none holding now) and 1 allow rule at any time, all matching role agent and operation liquidate: the hour index leaves 1 candidate(s)",
                        "by-second-condition" => $"{rules - 1} allow rules (the same series condition, then an amount band each that the request's amount is not in) and 1 allow rule, all matching role agent and operation liquidate: the series slot is nested by the bands, the nested index leaves 1 candidate(s)",
                        "by-shared-range" => $"{rules - 1} allow rules (the same amount cap, then a series band each that the request's series is not in) and 1 allow rule, all matching role agent and operation liquidate: the condition filter (every range, not-in-list and ne condition) leaves 1 candidate(s)",
                        "by-two-ranges" => $"{rules - 1} allow rules (an amount cap each that the request's amount is under, then a series band each that the request's series is not in) and 1 allow rule, all matching role agent and operation liquidate: the condition filter (every range, not-in-list and ne condition) leaves 1 candidate(s)",
                        "by-not-in-list" => $"{rules - 1} allow rules (an amount cap each that the request's amount is under, then a not-in-list of counterparties each holding the request's) and 1 allow rule, all matching role agent and operation liquidate: the condition filter (every range, not-in-list and ne condition) leaves 1 candidate(s)",
                        _ => $"{rules - 1} allow rules (a window of a minute each inside the request's hour, none holding at its minute) and 1 allow rule at any time, all matching role agent and operation liquidate: the minute index leaves 1 candidate(s)",
                    },
                });
            }
        }
    }

    private const int Agents = 50;

    /// <summary>Rules of the per-agent layout the index returns for the request (agent-7, liquidate).</summary>
    private static int PerAgentCandidates(int count) => Enumerable.Range(0, count).Count(i => i % Agents == 7 && (i / Agents) % Ops.Length == 0);

    private static readonly string[] Ops = ["liquidate", "settle", "exercise", "margin-call", "hedge"];

    private static (PolicyDocument, OperationRequest) PerAgent(int count)
    {
        var rules = new StringBuilder();
        for (int i = 0; i < count; i++)
        {
            // Rule i: agent (i mod 50), operation (i / 50) mod 5, its own key: the request below is allowed by rule 7 only.
            string op = Ops[(i / Agents) % Ops.Length];
            rules.Append(CultureInfo.InvariantCulture, $$$$"""{"id":"r{{{{i}}}}","effect":"allow","match":{"principals":["agent-{{{{i % Agents}}}}"],"operations":["{{{{op}}}}"],"keys":["key-{{{{i}}}}"]},"conditions":[{"arg":"amount","op":"lt","value":1000}],"limits":{"perTransaction":{"native":500}}},""");
        }

        return (Document(rules), Request("agent-7", "liquidate", "key-7", venue: null, series: null));
    }

    private static (PolicyDocument, OperationRequest) ByVenue(int count)
    {
        var rules = new StringBuilder();
        for (int i = 0; i < count; i++)
        {
            rules.Append(CultureInfo.InvariantCulture, $$$$"""{"id":"r{{{{i}}}}","effect":"allow","match":{"roles":["agent"],"operations":["liquidate"],"venues":["venue-{{{{i}}}}"]},"conditions":[{"arg":"amount","op":"lt","value":1000}],"limits":{"perTransaction":{"native":500}}},""");
        }

        return (Document(rules), Request("agent-7", "liquidate", "key-7", venue: $"venue-{count - 1}", series: null));
    }

    private static (PolicyDocument, OperationRequest) ByContract(int count)
    {
        var rules = new StringBuilder();
        for (int i = 0; i < count; i++)
        {
            rules.Append(CultureInfo.InvariantCulture, $$$$"""{"id":"r{{{{i}}}}","effect":"allow","match":{"roles":["agent"],"operations":["liquidate"],"contracts":["0x{{{{i:x40}}}}"]},"conditions":[{"arg":"amount","op":"lt","value":1000}],"limits":{"perTransaction":{"native":500}}},""");
        }

        (PolicyDocument policy, OperationRequest request) = (Document(rules), Request("agent-7", "liquidate", "key-7", venue: "venue-1", series: null));
        return (policy, request with { Contract = "0x" + (count - 1).ToString("x40", CultureInfo.InvariantCulture) });
    }

    private static (PolicyDocument, OperationRequest) ByCondition(int count)
    {
        var rules = new StringBuilder();
        for (int i = 0; i < count; i++)
        {
            rules.Append(CultureInfo.InvariantCulture, $$$$"""{"id":"r{{{{i}}}}","effect":"allow","match":{"roles":["agent"],"operations":["liquidate"]},"conditions":[{"arg":"series","op":"eq","value":{{{{i}}}}},{"arg":"amount","op":"lt","value":1000}],"limits":{"perTransaction":{"native":500}}},""");
        }

        return (Document(rules), Request("agent-7", "liquidate", "key-7", venue: "venue-1", series: count - 1));
    }

    private static (PolicyDocument, OperationRequest) ByRange(int count)
    {
        var rules = new StringBuilder();
        for (int i = 0; i < count; i++)
        {
            // Rule i allows amounts in band count-1-i, [10 b, 10 b + 9]: the request's amount, 5, is in band 0, the last rule.
            int band = count - 1 - i;
            rules.Append(CultureInfo.InvariantCulture, $$$$"""{"id":"r{{{{i:D5}}}}","effect":"allow","match":{"roles":["agent"],"operations":["liquidate"]},"conditions":[{"arg":"amount","op":"between","min":{{{{band * 10}}}},"max":{{{{(band * 10) + 9}}}}}],"limits":{"perTransaction":{"native":500}}},""");
        }

        return (Document(rules), Request("agent-7", "liquidate", "key-7", venue: "venue-1", series: null));
    }

    private static (PolicyDocument, OperationRequest) ByThreshold(int count)
    {
        var rules = new StringBuilder();
        for (int i = 0; i < count; i++)
        {
            // Rule i allows amounts of at least 10 (count-1-i): the request's amount, 5, is at least 0 only (the last rule).
            rules.Append(CultureInfo.InvariantCulture, $$$$"""{"id":"r{{{{i:D5}}}}","effect":"allow","match":{"roles":["agent"],"operations":["liquidate"]},"conditions":[{"arg":"amount","op":"gte","value":{{{{(count - 1 - i) * 10}}}}}],"limits":{"perTransaction":{"native":500}}},""");
        }

        return (Document(rules), Request("agent-7", "liquidate", "key-7", venue: "venue-1", series: null));
    }

    private static (PolicyDocument, OperationRequest) NestedBands(int count)
    {
        var rules = new StringBuilder();
        for (int i = 0; i < count; i++)
        {
            // Rule i allows amounts in [10 (count-1-i), 10 count]: each band contains the next; 5 is in the last one only.
            rules.Append(CultureInfo.InvariantCulture, $$$$"""{"id":"r{{{{i:D5}}}}","effect":"allow","match":{"roles":["agent"],"operations":["liquidate"]},"conditions":[{"arg":"amount","op":"between","min":{{{{(count - 1 - i) * 10}}}},"max":{{{{count * 10}}}}}],"limits":{"perTransaction":{"native":500}}},""");
        }

        // The matching rule is the last one in document order, so every other candidate is checked before it.
        return (Document(rules), Request("agent-7", "liquidate", "key-7", venue: "venue-1", series: null));
    }

    private static (PolicyDocument, OperationRequest) DenyCaps(int count)
    {
        var rules = new StringBuilder();
        for (int i = 0; i < count - 1; i++)
        {
            // Rule i denies amounts above 1000 + i: the request's amount, 5, is under every cap, so none denies.
            rules.Append(CultureInfo.InvariantCulture, $$$$"""{"id":"d{{{{i:D5}}}}","effect":"deny","match":{"roles":["agent"],"operations":["liquidate"]},"conditions":[{"arg":"amount","op":"gt","value":{{{{1000 + i}}}}}]},""");
        }

        rules.Append("""{"id":"allow","effect":"allow","match":{"roles":["agent"],"operations":["liquidate"]},"conditions":[{"arg":"amount","op":"lt","value":1000}],"limits":{"perTransaction":{"native":500}}},""");
        return (Document(rules), Request("agent-7", "liquidate", "key-7", venue: "venue-1", series: null));
    }

    private static (PolicyDocument, OperationRequest) ByChain(int count)
    {
        var rules = new StringBuilder();
        for (int i = 0; i < count - 1; i++)
        {
            // Rule i allows chain 1000 + i; the request is on chain 1.
            rules.Append(CultureInfo.InvariantCulture, $$$$"""{"id":"c{{{{i:D5}}}}","effect":"allow","match":{"roles":["agent"],"operations":["liquidate"],"chainIds":[{{{{1000 + i}}}}]}},""");
        }

        rules.Append("""{"id":"allow","effect":"allow","match":{"roles":["agent"],"operations":["liquidate"]},"conditions":[{"arg":"amount","op":"lt","value":1000}],"limits":{"perTransaction":{"native":500}}},""");
        return (Document(rules), Request("agent-7", "liquidate", "key-7", venue: "venue-1", series: null) with { ChainId = 1 });
    }

    private static (PolicyDocument, OperationRequest) ByTime(int count)
    {
        var rules = new StringBuilder();
        for (int i = 0; i < count - 1; i++)
        {
            // Rule i holds every day for 30 minutes from 13:00 + (i mod 600) minutes; the request is at 12:00.
            int from = 780 + (i % 600);
            rules.Append(CultureInfo.InvariantCulture, $$$$"""{"id":"t{{{{i:D5}}}}","effect":"allow","match":{"roles":["agent"],"operations":["liquidate"]},"time":{"from":"{{{{from / 60:D2}}}}:{{{{from % 60:D2}}}}","to":"{{{{(from + 30) / 60:D2}}}}:{{{{(from + 30) % 60:D2}}}}"}},""");
        }

        rules.Append("""{"id":"allow","effect":"allow","match":{"roles":["agent"],"operations":["liquidate"]},"conditions":[{"arg":"amount","op":"lt","value":1000}],"limits":{"perTransaction":{"native":500}}},""");
        return (Document(rules), Request("agent-7", "liquidate", "key-7", venue: "venue-1", series: null));
    }

    private static (PolicyDocument, OperationRequest) SecondCondition(int count)
    {
        var rules = new StringBuilder();
        for (int i = 0; i < count - 1; i++)
        {
            // Rule i: series 7 (the request's) and an amount from 1000 + i to 1000.5 + i (the request's is 5).
            rules.Append(CultureInfo.InvariantCulture, $$$$"""{"id":"s{{{{i:D5}}}}","effect":"allow","match":{"roles":["agent"],"operations":["liquidate"]},"conditions":[{"arg":"series","op":"eq","value":7},{"arg":"amount","op":"between","min":{{{{1000 + i}}}},"max":{{{{1000 + i}}}}.5}]},""");
        }

        rules.Append("""{"id":"allow","effect":"allow","match":{"roles":["agent"],"operations":["liquidate"]},"conditions":[{"arg":"amount","op":"lt","value":1000}],"limits":{"perTransaction":{"native":500}}},""");
        return (Document(rules), Request("agent-7", "liquidate", "key-7", venue: "venue-1", series: 7));
    }

    private static (PolicyDocument, OperationRequest) SharedRange(int count, bool ownCaps)
    {
        var rules = new StringBuilder();
        for (int i = 0; i < count - 1; i++)
        {
            // Rule i: an amount under 1000 (or 1000 + i: the request's, 5, is) and a series from 1000 + i to 1000.5 + i (the request's is 7).
            rules.Append(CultureInfo.InvariantCulture, $$$$"""{"id":"s{{{{i:D5}}}}","effect":"allow","match":{"roles":["agent"],"operations":["liquidate"]},"conditions":[{"arg":"amount","op":"lt","value":{{{{(ownCaps ? 1000 + i : 1000)}}}}},{"arg":"series","op":"between","min":{{{{1000 + i}}}},"max":{{{{1000 + i}}}}.5}]},""");
        }

        rules.Append("""{"id":"allow","effect":"allow","match":{"roles":["agent"],"operations":["liquidate"]},"conditions":[{"arg":"amount","op":"lt","value":1000}],"limits":{"perTransaction":{"native":500}}},""");
        return (Document(rules), Request("agent-7", "liquidate", "key-7", venue: "venue-1", series: 7));
    }

    private static (PolicyDocument, OperationRequest) WithinTheHour(int count)
    {
        var rules = new StringBuilder();
        for (int i = 0; i < count - 1; i++)
        {
            // Rule i holds every day at the one minute 12:01 + (i mod 58) (a window ends before its "to"); the request is at 12:00.
            int from = 721 + (i % 58);
            rules.Append(CultureInfo.InvariantCulture, $$$$"""{"id":"w{{{{i:D5}}}}","effect":"allow","match":{"roles":["agent"],"operations":["liquidate"]},"time":{"from":"{{{{from / 60:D2}}}}:{{{{from % 60:D2}}}}","to":"{{{{(from + 1) / 60:D2}}}}:{{{{(from + 1) % 60:D2}}}}"}},""");
        }

        rules.Append("""{"id":"allow","effect":"allow","match":{"roles":["agent"],"operations":["liquidate"]},"conditions":[{"arg":"amount","op":"lt","value":1000}],"limits":{"perTransaction":{"native":500}}},""");
        return (Document(rules), Request("agent-7", "liquidate", "key-7", venue: "venue-1", series: null));
    }

    private static (PolicyDocument, OperationRequest) NotInLists(int count)
    {
        var rules = new StringBuilder();
        string mine = "0x" + count.ToString("x40", CultureInfo.InvariantCulture);
        for (int i = 0; i < count - 1; i++)
        {
            // Rule i: an amount under 1000 + i (the request's, 5, is) to any counterparty but i and the request's.
            rules.Append(CultureInfo.InvariantCulture, $$$$"""{"id":"u{{{{i:D5}}}}","effect":"allow","match":{"roles":["agent"],"operations":["liquidate"]},"conditions":[{"arg":"amount","op":"lt","value":{{{{1000 + i}}}}},{"arg":"to","op":"not-in-list","values":["0x{{{{i:x40}}}}","{{{{mine}}}}"]}]},""");
        }

        rules.Append("""{"id":"allow","effect":"allow","match":{"roles":["agent"],"operations":["liquidate"]},"conditions":[{"arg":"amount","op":"lt","value":1000}],"limits":{"perTransaction":{"native":500}}},""");
        (PolicyDocument policy, OperationRequest request) = (Document(rules), Request("agent-7", "liquidate", "key-7", venue: "venue-1", series: null));
        var args = new Dictionary<string, PolicyValue>(request.Args, StringComparer.Ordinal) { ["to"] = PolicyValue.OfAddress(mine)!.Value };
        return (policy, request with { Args = args });
    }

    private static (PolicyDocument, OperationRequest) DenyLists(int count, bool notIn)
    {
        var rules = new StringBuilder();
        string mine = "0x" + count.ToString("x40", CultureInfo.InvariantCulture);
        for (int i = 0; i < count - 1; i++)
        {
            // in-list: rule i denies counterparty i, and the request's (address count) is none of them; not-in-list: rule i
            // denies any counterparty outside {i, the request's}, so none denies the request.
            string values = notIn ? $"\"0x{i:x40}\",\"{mine}\"" : $"\"0x{i:x40}\"";
            rules.Append(CultureInfo.InvariantCulture, $$$$"""{"id":"d{{{{i:D5}}}}","effect":"deny","match":{"roles":["agent"],"operations":["liquidate"]},"conditions":[{"arg":"to","op":"{{{{(notIn ? "not-in-list" : "in-list")}}}}","values":[{{{{values}}}}]}]},""");
        }

        rules.Append("""{"id":"allow","effect":"allow","match":{"roles":["agent"],"operations":["liquidate"]},"conditions":[{"arg":"amount","op":"lt","value":1000}],"limits":{"perTransaction":{"native":500}}},""");
        (PolicyDocument policy, OperationRequest request) = (Document(rules), Request("agent-7", "liquidate", "key-7", venue: "venue-1", series: null));
        var args = new Dictionary<string, PolicyValue>(request.Args, StringComparer.Ordinal) { ["to"] = PolicyValue.OfAddress(mine)!.Value };
        return (policy, request with { Args = args });
    }

    private static PolicyDocument Document(StringBuilder rules)
    {
        rules.Append("""{"id":"no-transfers","effect":"deny","match":{"operations":["transfer"]}}""");
        return PolicyDocument.Parse($$"""{"id":"bench","version":1,"rules":[{{rules}}]}""");
    }

    private static OperationRequest Request(string agent, string operation, string key, string? venue, int? series)
    {
        var args = new Dictionary<string, PolicyValue>(StringComparer.Ordinal) { ["amount"] = PolicyValue.Of(5m) };
        if (series is int n)
        {
            args["series"] = PolicyValue.Of(n);
        }

        return new()
        {
            Principal = new Principal(agent, PrincipalKind.Agent, [Role.Agent], PrincipalScope.Everything),
            Operation = Operations.Parse(operation),
            KeyId = key,
            Venue = venue,
            Args = args,
            Amount = 5m,
        };
    }
}
