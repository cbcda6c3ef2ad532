using Conclave.Policy.Evaluation;
using Conclave.Policy.Risk;

namespace Conclave.Policy.Tests;

/// <summary>
/// The decision table in tests/vectors/conclave/policy-table.json: every row at every risk level (one test case each),
/// and the shadow decisions where a row gives them.
/// </summary>
public sealed class PolicyTableTests
{
    public static TheoryData<int, string, string> Cases()
    {
        var data = new TheoryData<int, string, string>();
        var rows = PolicyTable.Rows;
        for (int i = 0; i < rows.Count; i++)
        {
            foreach (var level in RiskLevels.All)
            {
                data.Add(i, RiskLevels.Name(level), rows[i].GetProperty("name").GetString()!);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Row_decides_as_the_table_says(int index, string level, string name)
    {
        var row = PolicyTable.Rows[index];
        Assert.True(RiskLevels.TryParse(level, out var lvl));
        var decision = PolicyEvaluator.Decide(PolicyTable.Policy, PolicyTable.Request(row), new EvaluationContext(lvl, PolicyTable.At(row), PolicyTable.Prices(row)), PolicyTable.Counters(row));
        string expected = row.GetProperty("expect")[(int)lvl].GetString()!;
        Assert.True(expected == Decision.OutcomeName(decision.Outcome), $"{name} at {level}: expected {expected}, got {decision.ToJson()}");
        Assert.Equal(PolicyTable.Policy.Hash, decision.PolicyHash);
        Assert.NotEmpty(decision.Reasons);
        if (row.TryGetProperty("shadow", out var shadow))
        {
            Assert.NotNull(decision.Shadow);
            Assert.Equal(shadow[(int)lvl].GetString(), Decision.OutcomeName(decision.Shadow!.Outcome));
        }
    }

    [Fact]
    public void Table_has_at_least_150_cases_and_every_outcome_at_every_level()
    {
        var rows = PolicyTable.Rows;
        Assert.True(rows.Count * 4 >= 150);
        foreach (var level in RiskLevels.All)
        {
            var outcomes = rows.Select(r => r.GetProperty("expect")[(int)level].GetString()).ToHashSet();
            Assert.Contains("deny", outcomes);
            Assert.Contains("allow", outcomes);
            Assert.Contains("require-approval", outcomes);
        }
    }
}
