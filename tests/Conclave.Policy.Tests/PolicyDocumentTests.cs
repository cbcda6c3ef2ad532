using System.Text;
using Conclave.Policy.Documents;
using Conclave.Policy.Risk;

namespace Conclave.Policy.Tests;

public sealed class PolicyDocumentTests
{
    private const string Minimal = """{"id":"p","version":1,"rules":[{"id":"a","effect":"allow","match":{"operations":["message"],"principals":["x","w"]}}]}""";

    [Fact]
    public void Hash_ignores_whitespace_key_order_set_order_rule_order_and_explicit_defaults()
    {
        string a = """
        { "version": 1, "id": "p", "rules": [
            { "effect": "deny", "id": "z", "match": { "operations": ["transfer"] } },
            { "match": { "principals": ["x", "w"], "operations": ["message"] }, "id": "a", "effect": "allow" } ] }
        """;
        string b = """{"id":"p","version":1,"rules":[{"id":"a","effect":"allow","mode":"enforce","match":{"operations":["message"],"principals":["w","x"]}},{"id":"z","effect":"deny","match":{"operations":["transfer"]},"conditions":[]}],"levels":{"elevated":{"limitMultiplier":0.50}}}""";
        var da = PolicyDocument.Parse(a);
        var db = PolicyDocument.Parse(b);
        Assert.Equal(da.Hash, db.Hash);
        Assert.Equal(da.CanonicalJson, db.CanonicalJson);
        Assert.StartsWith("sha256:", da.Hash, StringComparison.Ordinal);
        Assert.Equal(71, da.Hash.Length);
    }

    [Fact]
    public void Canonical_form_is_stable_and_reparses_to_the_same_hash()
    {
        var d = PolicyDocument.Parse(PolicyTable.Root.GetProperty("policy").GetRawText());
        var again = PolicyDocument.Parse(Encoding.UTF8.GetString(d.CanonicalJson));
        Assert.Equal(d.Hash, again.Hash);
        Assert.Equal(d.CanonicalJson, again.CanonicalJson);
    }

    [Theory]
    [InlineData("""{"id":"p","version":2,"rules":[{"id":"a","effect":"allow","match":{"operations":["message"],"principals":["x","w"]}}]}""")]
    [InlineData("""{"id":"p","version":1,"rules":[{"id":"a","effect":"allow","match":{"operations":["message"],"principals":["x"]}}]}""")]
    [InlineData("""{"id":"p","version":1,"rules":[{"id":"a","effect":"deny","match":{"operations":["message"],"principals":["x","w"]}}]}""")]
    [InlineData("""{"id":"p","version":1,"rules":[{"id":"a","effect":"allow","mode":"shadow","match":{"operations":["message"],"principals":["x","w"]}}]}""")]
    [InlineData("""{"id":"p","version":1,"rules":[{"id":"a","effect":"allow","match":{"operations":["message"],"principals":["x","w"]}}],"levels":{"elevated":{"limitMultiplier":0.4}}}""")]
    public void Any_change_of_meaning_changes_the_hash(string changed)
    {
        Assert.NotEqual(PolicyDocument.Parse(Minimal).Hash, PolicyDocument.Parse(changed).Hash);
    }

    [Theory]
    [InlineData("""{"id":"p","version":1,"rules":[],"extra":1}""", "unknown-field", "extra")]
    [InlineData("""{"id":"p","version":1,"rules":[{"id":"a","effect":"allow","match":{"operation":["message"]}}]}""", "unknown-field", "rules[0].match.operation")]
    [InlineData("""{"id":"p","version":1,"rules":[{"id":"a","effect":"permit"}]}""", "invalid-value", "rules[0].effect")]
    [InlineData("""{"id":"p","version":1,"rules":[{"id":"a","effect":"allow","match":{"operations":["launch"]}}]}""", "invalid-value", "rules[0].match.operations[0]")]
    [InlineData("""{"id":"p","version":1,"rules":[{"id":"a","effect":"allow","match":{"roles":["king"]}}]}""", "invalid-value", "rules[0].match.roles[0]")]
    [InlineData("""{"id":"p","version":1,"rules":[{"id":"a","effect":"require-approval"}]}""", "missing-field", "rules[0].approval")]
    [InlineData("""{"id":"p","version":1,"rules":[{"id":"a","effect":"allow"},{"id":"a","effect":"deny"}]}""", "invalid-value", "rules[1].id")]
    [InlineData("""{"id":"p","version":0,"rules":[]}""", "invalid-value", "version")]
    [InlineData("""{"version":1,"rules":[]}""", "missing-field", "id")]
    [InlineData("""{"id":"p","version":1,"rules":[],"levels":{"panic":{}}}""", "unknown-field", "levels.panic")]
    [InlineData("""{"id":"p","version":1,"rules":[],"levels":{"stressed":{"limitMultiplier":0.6}}}""", "invalid-value", "levels.stressed.limitMultiplier")]
    [InlineData("""{"id":"p","version":1,"rules":[],"levels":{"lockdown":{"limitMultiplier":0.1}}}""", "invalid-value", "levels.lockdown.limitMultiplier")]
    [InlineData("""{"id":"p","version":1,"rules":[],"levels":{"elevated":{"approvalOperations":["transfer"]}}}""", "missing-field", "levelApproval")]
    [InlineData("""{"id":"p","version":1,"rules":[{"id":"a","effect":"allow","conditions":[{"arg":"amount","op":"lt","value":"ten"}]}]}""", "invalid-value", "rules[0].conditions[0].value")]
    [InlineData("""{"id":"p","version":1,"rules":[{"id":"a","effect":"allow","conditions":[{"arg":"amount","op":"between","min":5,"max":1}]}]}""", "invalid-value", "rules[0].conditions[0].max")]
    [InlineData("""{"id":"p","version":1,"rules":[{"id":"a","effect":"allow","conditions":[{"arg":"to","op":"in-list","values":["0x12"]}]}]}""", "invalid-value", "rules[0].conditions[0].values[0]")]
    [InlineData("""{"id":"p","version":1,"rules":[{"id":"a","effect":"allow","time":{"from":"25:00","to":"01:00"}}]}""", "invalid-value", "rules[0].time.from")]
    [InlineData("""{"id":"p","version":1,"rules":[{"id":"a","effect":"allow","limits":{"velocity":[{"id":"v","windowSeconds":60}]}}]}""", "missing-field", "rules[0].limits.velocity[0].sumNative|sumUsd|count")]
    [InlineData("""{"id":"p","version":1,"rules":[{"id":"a","effect":"require-approval","approval":{"groups":[{"name":"g","members":["a"],"k":2}],"ttlSeconds":60}}]}""", "invalid-value", "rules[0].approval.groups[0].k")]
    [InlineData("""{"id":"p","version":1,"rules":[{"id":"a","effect":"deny","limits":{"perTransaction":{"native":1}}}]}""", "invalid-value", "rules[0].limits")]
    [InlineData("""{"id":"p","version":1,"rules":[{"id":"a","id":"b","effect":"allow"}]}""", "invalid-value", "rules[0].id")]
    [InlineData("""{"id":"p","version":1,"rules":[""", "invalid-json", "$")]
    public void Bad_documents_are_refused_with_a_typed_error_naming_the_field(string json, string code, string path)
    {
        var e = Assert.Throws<PolicyFormatException>(() => PolicyDocument.Parse(json));
        Assert.Equal(code, e.Code);
        Assert.Equal(path, e.Path);
        Assert.StartsWith(path, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Levels_inherit_the_tightenings_of_the_levels_below()
    {
        var d = PolicyDocument.Parse("""{"id":"p","version":1,"rules":[],"levels":{"elevated":{"limitMultiplier":0.1,"blockedOperations":["transfer"],"extraApprovers":2,"approvalTtlSeconds":100}}}""");
        Assert.Equal(0.1m, d.Level(RiskLevel.Stressed).LimitMultiplier);
        Assert.Contains(Operations.OperationKind.Transfer, d.Level(RiskLevel.Lockdown).BlockedOperations);
        Assert.Equal(2, d.Level(RiskLevel.Stressed).ExtraApprovers);
        Assert.Equal(100, d.Level(RiskLevel.Lockdown).ApprovalTtlSeconds);
        Assert.Equal(1m, d.Level(RiskLevel.Normal).LimitMultiplier);
        Assert.Equal(0m, d.Level(RiskLevel.Lockdown).LimitMultiplier);
    }
}
