using System.Globalization;
using System.Text.Json.Nodes;
using Conclave.Policy.Documents;
using Conclave.Policy.Evaluation;
using Conclave.Policy.Operations;
using Conclave.Policy.Principals;
using Conclave.Policy.Risk;

namespace Conclave.Policy.Tests;

/// <summary>
/// Long <c>in-list</c>, <c>not-in-list</c> and <c>one-of</c> conditions (a blocklist of thousands of addresses) are held
/// as <see cref="ValueSet"/>s with hashed membership: decisions are those of a plain scan — addresses in any letter case,
/// numbers at other decimal scales, values of other kinds — on seeded random lists on both sides of the scan limit.
/// </summary>
public sealed class ValueSetTests
{
    private static readonly DateTimeOffset s_now = new(2026, 11, 30, 12, 0, 0, TimeSpan.Zero);

    private static string Address(Random r)
    {
        byte[] b = new byte[20];
        r.NextBytes(b);
        return "0x" + Convert.ToHexStringLower(b);
    }

    private static OperationRequest Transfer(Dictionary<string, PolicyValue> args) => new()
    {
        Principal = new Principal("agent-1", PrincipalKind.Agent, [Role.Agent], PrincipalScope.Everything),
        Operation = OperationKind.Transfer,
        KeyId = "key-1",
        Args = args,
    };

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void Membership_in_long_and_short_lists_is_the_scan_s(int stream)
    {
        var r = TestSeed.Random($"value sets {stream}");
        for (int round = 0; round < 60; round++)
        {
            int n = round % 3 == 0 ? r.Next(1, 9) : r.Next(9, 3000);
            string[] listed = [.. Enumerable.Range(0, n).Select(_ => Address(r))];
            int[] series = [.. Enumerable.Range(0, r.Next(1, 30)).Select(_ => r.Next(0, 60))];
            string blockOp = r.Next(2) == 0 ? "in-list" : "not-in-list";
            var doc = new JsonObject
            {
                ["id"] = "lists",
                ["version"] = 1,
                ["rules"] = new JsonArray(
                    JsonNode.Parse($$"""{"id":"block","effect":"deny","match":{"operations":["transfer"]},"conditions":[{"arg":"to","op":"{{blockOp}}","values":[{{string.Join(",", listed.Select(a => $"\"{(r.Next(2) == 0 ? a.ToUpperInvariant().Replace("0X", "0x", StringComparison.Ordinal) : a)}\""))}}]}]}"""),
                    JsonNode.Parse($$"""{"id":"series","effect":"allow","match":{"operations":["transfer"]},"conditions":[{"arg":"series","op":"one-of","values":[{{string.Join(",", series.Select(x => x.ToString(CultureInfo.InvariantCulture)))}}]}]}""")),
            };
            PolicyDocument policy = PolicyDocument.Parse(doc.ToJsonString());
            for (int q = 0; q < 40; q++)
            {
                string to = r.Next(2) == 0 ? listed[r.Next(n)] : Address(r);
                decimal s = r.Next(0, 60) + (r.Next(2) == 0 ? 0m : 0.000m);
                var args = new Dictionary<string, PolicyValue>(StringComparer.Ordinal) { ["to"] = PolicyValue.OfAddress(to)!.Value, ["series"] = PolicyValue.Of(s) };
                if (r.Next(8) == 0)
                {
                    args["series"] = PolicyValue.OfText(s.ToString(CultureInfo.InvariantCulture)); // a text is never a listed number
                }

                bool blocked = listed.Contains(to, StringComparer.Ordinal) == (blockOp == "in-list");
                bool inSeries = args["series"].Kind == PolicyValueKind.Number && series.Any(x => x == s);
                DecisionOutcome expected = blocked ? DecisionOutcome.Deny : inSeries ? DecisionOutcome.Allow : DecisionOutcome.Deny;
                Decision d = PolicyEvaluator.Decide(policy, Transfer(args), new EvaluationContext(RiskLevel.Normal, s_now), EmptyCounters.Instance);
                Assert.True(expected == d.Outcome, $"{TestSeed.EnvironmentVariable}={TestSeed.Run} stream {stream} round {round} query {q}: {d.ToJson()}");
                Assert.Equal(blocked, d.Rules.Contains("block"));
            }
        }
    }
}
