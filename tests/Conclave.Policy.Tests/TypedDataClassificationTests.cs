using System.Text.Json;
using System.Text.Json.Nodes;
using Conclave.Policy.Documents;
using Conclave.Policy.Evaluation;
using Conclave.Policy.Operations;
using Conclave.Policy.Principals;
using Conclave.Policy.Risk;
using Conclave.Policy.Venues;

namespace Conclave.Policy.Tests;

/// <summary>
/// eth_signTypedData_v4 documents (EIP-712) classified against venue profiles (docs/POLICY.md "Venue profiles"): a
/// document whose domain (chainId, verifyingContract) and primaryType name a profile's typed-data struct is that venue
/// operation, with its arguments and amount, and policy matches it by its rules; a document that names none stays
/// typed-data; one that names a struct but does not match it exactly is unknown (denied).
/// </summary>
public sealed class TypedDataClassificationTests
{
    private const string Perp = "0x00000000000000000000000000000000000000aa";
    private const string Account = "0x1111111111111111111111111111111111111111";

    private const string ProfileJson = """
    {
      "venue": "perpx", "chainId": 1, "contract": "0x00000000000000000000000000000000000000AA", "priceSource": "ETH-USD",
      "operations": {
        "liquidate": { "function": "liquidate(address account, uint256 amount)", "amount": "amount", "decimals": { "amount": 18 } },
        "settle": { "typedData": "Settlement(address account,uint256 amount,uint64 nonce,bool final)", "amount": "amount", "decimals": { "amount": 6 } },
        "hedge": { "function": "openPosition(int256 size)", "typedData": "Hedge(int256 size,bytes32 market)", "amount": "size", "decimals": { "size": 18 } }
      }
    }
    """;

    private static VenueRegistry Registry() => new([VenueProfile.Parse(ProfileJson)]);

    private static readonly Principal Bot = new("bot", PrincipalKind.Agent, [Role.Agent], PrincipalScope.Everything);

    /// <summary>A Settlement document as a wallet library writes it (EIP712Domain declared, the amount a decimal string).</summary>
    private static JsonObject Settlement() => JsonNode.Parse($$"""
        {"types":{
           "EIP712Domain":[{"name":"name","type":"string"},{"name":"version","type":"string"},{"name":"chainId","type":"uint256"},{"name":"verifyingContract","type":"address"}],
           "Settlement":[{"name":"account","type":"address"},{"name":"amount","type":"uint256"},{"name":"nonce","type":"uint64"},{"name":"final","type":"bool"}]},
         "primaryType":"Settlement",
         "domain":{"name":"PerpX","version":"1","chainId":1,"verifyingContract":"0x00000000000000000000000000000000000000AA"},
         "message":{"account":"{{Account}}","amount":"2500000","nonce":7,"final":true} }
        """)!.AsObject();

    private static ClassifiedOperation? Classify(JsonNode doc)
    {
        using JsonDocument d = JsonDocument.Parse(doc.ToJsonString());
        return Registry().ClassifyTypedData(d.RootElement);
    }

    private static Decision Decide(string policy, ClassifiedOperation c) =>
        PolicyEvaluator.Decide(PolicyDocument.Parse(policy), c.ToRequest(Bot, "k", []), new EvaluationContext(RiskLevel.Normal, DateTimeOffset.UnixEpoch), EmptyCounters.Instance);

    [Fact]
    public void A_document_whose_domain_and_primary_type_match_a_profile_is_that_venue_operation_and_matched_by_its_rules()
    {
        ClassifiedOperation c = Classify(Settlement())!;
        Assert.Equal(OperationKind.Settle, c.Operation);
        Assert.Equal("perpx", c.Venue);
        Assert.Equal(1L, c.ChainId);
        Assert.Equal(Perp, c.Contract);
        Assert.Null(c.Selector);
        Assert.Equal(2.5m, c.Amount);
        Assert.Equal(Account, c.Args["account"].Text);
        Assert.Equal(7m, c.Args["nonce"].Number);
        Assert.True(c.Args["final"].Bool);
        Assert.Equal("ETH-USD", c.PriceSource);
        Assert.Empty(c.UnknownFields);
        Assert.Null(c.Reason);

        // Rules for the venue operation apply, with their limits and conditions on its arguments.
        const string Policy = """
            {"id":"p","version":1,"rules":[
              {"id":"settle","effect":"allow","match":{"operations":["settle"],"venues":["perpx"],"chainIds":[1],"contracts":["0x00000000000000000000000000000000000000aa"]},
               "conditions":[{"arg":"account","op":"in-list","values":["0x1111111111111111111111111111111111111111"]}],
               "limits":{"perTransaction":{"native":3}}}]}
            """;
        Decision allowed = Decide(Policy, c);
        Assert.Equal(DecisionOutcome.Allow, allowed.Outcome);
        Assert.Equal(["settle"], allowed.Rules);

        JsonObject big = Settlement();
        big["message"]!["amount"] = "3000001"; // 3.000001 > 3
        Assert.Equal(DecisionOutcome.Deny, Decide(Policy, Classify(big)!).Outcome);
        JsonObject other = Settlement();
        other["message"]!["account"] = "0x2222222222222222222222222222222222222222";
        Assert.Equal(DecisionOutcome.Deny, Decide(Policy, Classify(other)!).Outcome);

        // A rule that allows typed data in general does not allow a venue operation signed as typed data.
        Assert.Equal(DecisionOutcome.Deny, Decide("""{"id":"p","version":1,"rules":[{"id":"typed","effect":"allow","match":{"operations":["typed-data"]}}]}""", c).Outcome);
    }

    [Fact]
    public void Integers_may_be_json_numbers_decimal_or_hex_strings_and_signed_members_and_bytes_decode()
    {
        JsonObject hexAmount = Settlement();
        hexAmount["message"]!["amount"] = "0x2625a0"; // 2,500,000
        Assert.Equal(2.5m, Classify(hexAmount)!.Amount);
        JsonObject numberAmount = Settlement();
        numberAmount["message"]!["amount"] = 2500000;
        Assert.Equal(2.5m, Classify(numberAmount)!.Amount);
        JsonObject hexChain = Settlement();
        hexChain["domain"]!["chainId"] = "0x1";
        Assert.Equal(OperationKind.Settle, Classify(hexChain)!.Operation);

        // Hedge is mapped both as a function and as a struct; the struct classifies a reduce of -1.5.
        JsonObject hedge = JsonNode.Parse($$"""
            {"types":{"Hedge":[{"name":"size","type":"int256"},{"name":"market","type":"bytes32"}]},"primaryType":"Hedge",
             "domain":{"chainId":"1","verifyingContract":"{{Perp}}"},
             "message":{"size":"-1500000000000000000","market":"0x4554480000000000000000000000000000000000000000000000000000000000"} }
            """)!.AsObject();
        ClassifiedOperation h = Classify(hedge)!;
        Assert.Equal(OperationKind.Hedge, h.Operation);
        Assert.Equal(-1.5m, h.Args["size"].Number);
        Assert.Equal(1.5m, h.Amount);
        Assert.Equal("0x4554480000000000000000000000000000000000000000000000000000000000", h.Args["market"].Text);
    }

    [Fact]
    public void A_document_naming_no_profile_struct_stays_typed_data()
    {
        JsonObject otherChain = Settlement();
        otherChain["domain"]!["chainId"] = 5;
        JsonObject otherContract = Settlement();
        otherContract["domain"]!["verifyingContract"] = Account;
        JsonObject permit = Settlement();
        permit["primaryType"] = "Permit";
        JsonObject noContract = Settlement();
        noContract["domain"]!.AsObject().Remove("verifyingContract");
        JsonObject badChain = Settlement();
        badChain["domain"]!["chainId"] = "one";
        foreach (JsonObject doc in new[] { otherChain, otherContract, permit, noContract, badChain })
        {
            Assert.Null(Classify(doc));
        }

        using JsonDocument notAnObject = JsonDocument.Parse("[1]");
        Assert.Null(Registry().ClassifyTypedData(notAnObject.RootElement));
    }

    public static TheoryData<string, string> Mismatches => new()
    {
        { "a member's type differs", """{"path":"types.Settlement[1].type","value":"uint128"}""" },
        { "a member's name differs", """{"path":"types.Settlement[0].name","value":"owner"}""" },
        { "the domain's chainId declared as a string", """{"path":"types.EIP712Domain[2].type","value":"string"}""" },
        { "a fractional amount", """{"path":"message.amount","value":"2.5"}""" },
        { "an exponent", """{"path":"message.amount","value":"25e5"}""" },
        { "a negative unsigned amount", """{"path":"message.amount","value":"-1"}""" },
        { "an amount out of range", """{"path":"message.nonce","value":"18446744073709551616"}""" },
        { "a malformed address", """{"path":"message.account","value":"0x11"}""" },
        { "a bool as text", """{"path":"message.final","value":"true"}""" },
        { "a missing member", """{"path":"message.nonce","remove":true}""" },
    };

    [Theory]
    [MemberData(nameof(Mismatches))]
    public void A_document_naming_a_profile_struct_but_not_matching_it_exactly_is_unknown(string why, string change)
    {
        JsonObject doc = Settlement();
        JsonObject c = JsonNode.Parse(change)!.AsObject();
        string[] path = c["path"]!.GetValue<string>().Split('.');
        JsonNode parent = doc;
        foreach (string step in path[..^1])
        {
            parent = Step(parent, step);
        }

        string last = path[^1];
        if (c["remove"] is not null)
        {
            parent.AsObject().Remove(last);
        }
        else
        {
            parent[last] = c["value"]!.DeepClone();
        }

        ClassifiedOperation result = Classify(doc)!;
        Assert.True(result is not null, why);
        Assert.Equal(OperationKind.Unknown, result.Operation);
        Assert.False(string.IsNullOrEmpty(result.Reason), why);
        Assert.Equal(DecisionOutcome.Deny, Decide("""{"id":"p","version":1,"rules":[{"id":"any","effect":"allow","match":{}}]}""", result).Outcome);

        static JsonNode Step(JsonNode node, string step)
        {
            int open = step.IndexOf('[', StringComparison.Ordinal);
            return open < 0 ? node[step]! : node[step[..open]]!.AsArray()[int.Parse(step[(open + 1)..^1], System.Globalization.CultureInfo.InvariantCulture)]!;
        }
    }

    [Fact]
    public void Members_out_of_order_extra_duplicated_or_shadowed_by_a_struct_are_refused()
    {
        JsonObject reordered = Settlement();
        JsonArray members = reordered["types"]!["Settlement"]!.AsArray();
        JsonNode first = members[0]!;
        members.RemoveAt(0);
        members.Add(first);
        JsonObject extraType = Settlement();
        extraType["types"]!["Settlement"]!.AsArray().Add(JsonNode.Parse("""{"name":"memo","type":"uint8"}"""));
        JsonObject shadow = Settlement();
        shadow["types"]!["uint256"] = JsonNode.Parse("""[{"name":"x","type":"uint8"}]""");
        foreach (JsonObject doc in new[] { reordered, extraType, shadow })
        {
            Assert.Equal(OperationKind.Unknown, Classify(doc)!.Operation);
        }

        // A member given twice: which one the digest reads is ambiguous, so it is refused.
        string twice = Settlement().ToJsonString().Replace("\"nonce\":7", "\"nonce\":7,\"nonce\":8", StringComparison.Ordinal);
        using (JsonDocument d = JsonDocument.Parse(twice))
        {
            Assert.Equal(OperationKind.Unknown, Registry().ClassifyTypedData(d.RootElement)!.Operation);
        }

        // A message member the struct does not declare is an unknown field, named safely, and the request is denied.
        JsonObject extra = Settlement();
        extra["message"]!["memo\n<b>"] = "x";
        ClassifiedOperation c = Classify(extra)!;
        Assert.Equal(OperationKind.Settle, c.Operation);
        Assert.Single(c.UnknownFields);
        Assert.DoesNotContain("<b>", c.UnknownFields[0], StringComparison.Ordinal);
        Decision d2 = Decide("""{"id":"p","version":1,"rules":[{"id":"any","effect":"allow","match":{"operations":["settle"]}}]}""", c);
        Assert.Equal(DecisionOutcome.Deny, d2.Outcome);
        Assert.Contains(d2.Reasons, r => r.Contains("unknown field", StringComparison.Ordinal));
    }

    [Fact]
    public void An_operation_mapped_only_as_typed_data_is_not_built_as_a_contract_call()
    {
        using JsonDocument args = JsonDocument.Parse($$"""{"account":"{{Account}}","amount":"1","nonce":1,"final":false}""");
        ClassifiedOperation c = Registry().Build(OperationKind.Settle, "perpx", args.RootElement);
        Assert.Equal(OperationKind.Unknown, c.Operation);
        Assert.Contains("typed data", c.Reason, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"settle":{"amount":"a"}}""", "missing-field")]
    [InlineData("""{"settle":{"typedData":"Settlement(string memo)"}}""", "unsupported")]
    [InlineData("""{"settle":{"typedData":"Settlement(address a)","amount":"a"}}""", "invalid-value")]
    [InlineData("""{"settle":{"typedData":"S(uint256 a)"},"exercise":{"typedData":"S(uint256 b)"}}""", "invalid-value")]
    [InlineData("""{"settle":{"function":"settle(uint256 a)","typedData":"S(uint256 b)","amount":"a"}}""", "invalid-value")]
    [InlineData("""{"settle":{"typedData":"S(uint256 a)","decimals":{"b":6}}}""", "unknown-field")]
    public void Bad_typed_data_mappings_are_refused(string operations, string code)
    {
        string json = $$"""{"venue":"v","chainId":1,"contract":"{{Perp}}","operations":{{operations}}}""";
        Assert.Equal(code, Assert.Throws<PolicyFormatException>(() => VenueProfile.Parse(json)).Code);
    }
}
