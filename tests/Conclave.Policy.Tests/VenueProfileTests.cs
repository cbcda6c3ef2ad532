using System.Numerics;
using System.Text.Json;
using Conclave.Policy.Documents;
using Conclave.Policy.Evaluation;
using Conclave.Policy.Operations;
using Conclave.Policy.Principals;
using Conclave.Policy.Risk;
using Conclave.Policy.Venues;

namespace Conclave.Policy.Tests;

public sealed class VenueProfileTests
{
    private const string Perp = "0x00000000000000000000000000000000000000aa";
    private const string Account = "0x1111111111111111111111111111111111111111";

    private const string ProfileJson = """
    {
      "venue": "perpx", "chainId": 1, "contract": "0x00000000000000000000000000000000000000AA", "priceSource": "ETH-USD",
      "operations": {
        "transfer": { "function": "transfer(address to, uint256 amount)", "amount": "amount", "decimals": { "amount": 18 } },
        "liquidate": { "function": "function liquidate(address account, uint256 amount)", "amount": "amount", "decimals": { "amount": 18 } },
        "hedge": { "function": "openPosition(bytes32 market, int256 size, bool reduceOnly)", "amount": "size", "decimals": { "size": 18 } },
        "settle": { "function": "settle(uint8 series)" }
      }
    }
    """;

    private static VenueRegistry Registry() => new([VenueProfile.Parse(ProfileJson)]);

    private static JsonElement Args(string json) => JsonDocument.Parse(json).RootElement;

    [Fact]
    public void Selectors_are_keccak_of_the_canonical_signature()
    {
        // ERC-20 selectors as deployed everywhere.
        Assert.Equal("0xa9059cbb", AbiFunction.Parse("transfer(address to, uint256 amount)", "f").Selector);
        Assert.Equal("0x095ea7b3", AbiFunction.Parse("approve(address spender, uint amount)", "f").Selector);
        Assert.Equal("0x23b872dd", AbiFunction.Parse("transferFrom(address from, address to, uint256 value)", "f").Selector);
        Assert.Equal("transferFrom(address,address,uint256)", AbiFunction.Parse("transferFrom(address from, address to, uint256 value)", "f").Signature);
    }

    [Fact]
    public void The_hash_is_of_the_canonical_form_and_changes_with_meaning_only()
    {
        string hash = VenueProfile.Parse(ProfileJson).Hash;
        Assert.Matches("^sha256:[0-9a-f]{64}$", hash);
        // Whitespace, member order, the contract's case, "function " and uint for uint256: the same profile.
        const string Same = """
            {"operations":{"settle":{"function":"settle(uint8 series)"},
              "hedge":{"decimals":{"size":18},"amount":"size","function":"openPosition(bytes32 market,int size,bool reduceOnly)"},
              "liquidate":{"function":"liquidate(address account, uint amount)","decimals":{"amount":18},"amount":"amount"},
              "transfer":{"function":"function transfer(address to,uint256 amount)","amount":"amount","decimals":{"amount":18}}},
             "priceSource":"ETH-USD","contract":"0x00000000000000000000000000000000000000aa","chainId":1,"venue":"perpx"}
            """;
        Assert.Equal(hash, VenueProfile.Parse(Same).Hash);
        Assert.Equal(VenueProfile.Parse(Same).CanonicalJson, VenueProfile.Parse(ProfileJson).CanonicalJson);
        // Any change of meaning: decimals, a parameter's name, no amount argument, the chain, the price source, an operation.
        foreach ((string from, string to) in new[]
        {
            ("\"size\": 18", "\"size\": 6"), ("uint8 series", "uint8 seriesId"), ("\"amount\": \"size\", ", ""),
            ("\"chainId\": 1", "\"chainId\": 5"), ("ETH-USD", "BTC-USD"), ("\"settle\": {", "\"exercise\": {"),
        })
        {
            Assert.Contains(from, ProfileJson, StringComparison.Ordinal);
            string changed = ProfileJson.Replace(from, to, StringComparison.Ordinal);
            Assert.NotEqual(hash, VenueProfile.Parse(changed).Hash);
        }
    }

    [Fact]
    public void Build_makes_the_calldata_and_classify_reads_it_back()
    {
        var reg = Registry();
        var built = reg.Build(OperationKind.Transfer, "perpx", Args($$"""{"to":"{{Account}}","amount":"1.5"}"""));
        Assert.Equal(OperationKind.Transfer, built.Operation);
        Assert.Equal("a9059cbb" + "000000000000000000000000" + Account[2..] + "00000000000000000000000000000000000000000000000014d1120d7b160000", Convert.ToHexStringLower(built.Calldata));
        Assert.Equal(1.5m, built.Amount);
        Assert.Equal("ETH-USD", built.PriceSource);
        Assert.Equal("0xa9059cbb", built.Selector);

        var back = reg.Classify(1, Perp, built.Calldata, BigInteger.Zero);
        Assert.Equal(OperationKind.Transfer, back.Operation);
        Assert.Equal("perpx", back.Venue);
        Assert.Equal(1.5m, back.Amount);
        Assert.Equal(Account, back.Args["to"].Text);
        Assert.Null(back.Reason);
    }

    [Fact]
    public void Signed_integers_and_booleans_round_trip()
    {
        var reg = Registry();
        var built = reg.Build(OperationKind.Hedge, "perpx", Args("""{"market":"0x4554480000000000000000000000000000000000000000000000000000000000","size":-2.25,"reduceOnly":true}"""));
        Assert.Equal(new string('f', 48), Convert.ToHexStringLower(built.Calldata.AsSpan(36, 24)));
        var back = reg.Classify(1, Perp, built.Calldata, BigInteger.Zero);
        Assert.Equal(OperationKind.Hedge, back.Operation);
        Assert.Equal(-2.25m, back.Args["size"].Number);
        Assert.Equal(2.25m, back.Amount);
        Assert.True(back.Args["reduceOnly"].Bool);
        Assert.True(Operations.Operations.IsRiskReducing(back.Operation, back.Args));
    }

    [Fact]
    public void Calldata_that_is_not_canonical_or_not_in_the_profile_is_unknown()
    {
        var reg = Registry();
        byte[] good = reg.Build(OperationKind.Liquidate, "perpx", Args($$"""{"account":"{{Account}}","amount":"2"}""")).Calldata;

        byte[] dirtyAddress = (byte[])good.Clone();
        dirtyAddress[4] = 1;
        byte[] shortData = good[..^1];
        byte[] longData = [.. good, 0];
        byte[] unknownSelector = (byte[])good.Clone();
        unknownSelector[0] ^= 0xff;
        byte[] badBool = reg.Build(OperationKind.Hedge, "perpx", Args("""{"market":"0x4554480000000000000000000000000000000000000000000000000000000000","size":1,"reduceOnly":false}""")).Calldata;
        badBool[^1] = 2;
        byte[] bigUint8 = reg.Build(OperationKind.Settle, "perpx", Args("""{"series":7}""")).Calldata;
        bigUint8[^2] = 1;

        foreach (byte[] data in new[] { dirtyAddress, shortData, longData, unknownSelector, badBool, bigUint8, good[..3] })
        {
            var c = reg.Classify(1, Perp, data, BigInteger.Zero);
            Assert.Equal(OperationKind.Unknown, c.Operation);
            Assert.False(string.IsNullOrEmpty(c.Reason));
        }

        Assert.Equal(OperationKind.Unknown, reg.Classify(5, Perp, good, BigInteger.Zero).Operation);
        Assert.Equal(OperationKind.Unknown, reg.Classify(1, Account, good, BigInteger.Zero).Operation);
        Assert.Equal(OperationKind.Unknown, reg.Classify(1, Perp, good, BigInteger.One).Operation);
        Assert.Equal(OperationKind.Unknown, reg.Classify(1, null, good, BigInteger.Zero).Operation);
    }

    [Fact]
    public void A_plain_value_transfer_is_a_transfer_in_native_units()
    {
        var c = Registry().Classify(1, Account, [], BigInteger.Parse("1500000000000000000", System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(OperationKind.Transfer, c.Operation);
        Assert.Equal(1.5m, c.Amount);
        Assert.Equal(Account, c.Args["to"].Text);
        Assert.Equal(OperationKind.Unknown, Registry().Classify(1, Account, [], BigInteger.Zero).Operation);
    }

    [Fact]
    public void An_extra_argument_is_an_unknown_field_and_the_request_is_denied()
    {
        var reg = Registry();
        var c = reg.Build(OperationKind.Liquidate, "perpx", Args($$"""{"account":"{{Account}}","amount":"2","memo":"x"}"""));
        Assert.Equal(["memo"], c.UnknownFields);
        var policy = PolicyDocument.Parse("""{"id":"p","version":1,"rules":[{"id":"liq","effect":"allow","match":{"operations":["liquidate"],"selectors":["0x00000000"]}},{"id":"any-liq","effect":"allow","match":{"operations":["liquidate"]}}]}""");
        var agent = new Principal("bot", PrincipalKind.Agent, [Role.Agent], PrincipalScope.Everything);
        var d = PolicyEvaluator.Decide(policy, c.ToRequest(agent, "k", []), new EvaluationContext(RiskLevel.Normal, DateTimeOffset.UnixEpoch), EmptyCounters.Instance);
        Assert.Equal(DecisionOutcome.Deny, d.Outcome);
        Assert.Contains(d.Reasons, r => r.Contains("memo", StringComparison.Ordinal));

        var ok = reg.Build(OperationKind.Liquidate, "perpx", Args($$"""{"account":"{{Account}}","amount":"2"}"""));
        var allowed = PolicyEvaluator.Decide(policy, ok.ToRequest(agent, "k", []), new EvaluationContext(RiskLevel.Normal, DateTimeOffset.UnixEpoch), EmptyCounters.Instance);
        Assert.Equal(DecisionOutcome.Allow, allowed.Outcome);
        Assert.Equal(["any-liq"], allowed.Rules);
    }

    [Fact]
    public void Policy_matches_on_contract_and_selector_of_classified_calldata()
    {
        var reg = Registry();
        var built = reg.Build(OperationKind.Liquidate, "perpx", Args($$"""{"account":"{{Account}}","amount":"2"}"""));
        var c = reg.Classify(1, Perp.ToUpperInvariant().Replace("0X", "0x", StringComparison.Ordinal), built.Calldata, BigInteger.Zero);
        var policy = PolicyDocument.Parse($$$"""{"id":"p","version":1,"rules":[{"id":"liq","effect":"allow","match":{"chainIds":[1],"contracts":["{{{Perp}}}"],"selectors":["{{{built.Selector}}}"],"venues":["perpx"]}}]}""");
        var agent = new Principal("bot", PrincipalKind.Agent, [Role.Agent], PrincipalScope.Everything);
        var d = PolicyEvaluator.Decide(policy, c.ToRequest(agent, "k", []), new EvaluationContext(RiskLevel.Normal, DateTimeOffset.UnixEpoch), EmptyCounters.Instance);
        Assert.Equal(DecisionOutcome.Allow, d.Outcome);
    }

    [Theory]
    [InlineData("""{"account":"0x11","amount":"2"}""", "invalid-value", "args.account")]
    [InlineData("""{"account":"0x1111111111111111111111111111111111111111"}""", "missing-field", "args.amount")]
    [InlineData("""{"account":"0x1111111111111111111111111111111111111111","amount":"0.0000000000000000001"}""", "invalid-value", "args.amount")]
    [InlineData("""{"account":"0x1111111111111111111111111111111111111111","amount":"-1"}""", "invalid-value", "args.amount")]
    [InlineData("""{"account":"0x1111111111111111111111111111111111111111","amount":"1e18"}""", "invalid-value", "args.amount")]
    [InlineData("""{"account":"0x1111111111111111111111111111111111111111","amount":true}""", "invalid-value", "args.amount")]
    public void Bad_arguments_are_refused_with_a_typed_error(string args, string code, string path)
    {
        var e = Assert.Throws<PolicyFormatException>(() => Registry().Build(OperationKind.Liquidate, "perpx", Args(args)));
        Assert.Equal(code, e.Code);
        Assert.Equal(path, e.Path);
    }

    [Fact]
    public void Unmapped_operations_and_venues_are_unknown()
    {
        Assert.Equal(OperationKind.Unknown, Registry().Build(OperationKind.Exercise, "perpx", Args("{}")).Operation);
        Assert.Equal(OperationKind.Unknown, Registry().Build(OperationKind.Liquidate, "nowhere", Args("{}")).Operation);
    }

    [Theory]
    [InlineData("""{"venue":"v","chainId":1,"contract":"0x00000000000000000000000000000000000000aa","operations":{"settle":{"function":"settle(string name)"}}}""", "unsupported")]
    [InlineData("""{"venue":"v","chainId":1,"contract":"0x00000000000000000000000000000000000000aa","operations":{"settle":{"function":"settle(uint256)"}}}""", "invalid-value")]
    [InlineData("""{"venue":"v","chainId":1,"contract":"0x00000000000000000000000000000000000000aa","operations":{"settle":{"function":"settle(address a)","amount":"a"}}}""", "invalid-value")]
    [InlineData("""{"venue":"v","chainId":1,"contract":"0x00000000000000000000000000000000000000aa","operations":{"message":{"function":"settle(address a)"}}}""", "invalid-value")]
    [InlineData("""{"venue":"v","chainId":1,"contract":"0x00000000000000000000000000000000000000aa","operations":{"settle":{"function":"f(uint256 a)"},"exercise":{"function":"f(uint256 b)"}}}""", "invalid-value")]
    [InlineData("""{"venue":"v","chainId":1,"contract":"0xaa","operations":{}}""", "invalid-value")]
    [InlineData("""{"venue":"v","chainId":1,"contract":"0x00000000000000000000000000000000000000aa","operations":{},"abi":[]}""", "unknown-field")]
    public void Bad_profiles_are_refused(string json, string code)
    {
        Assert.Equal(code, Assert.Throws<PolicyFormatException>(() => VenueProfile.Parse(json)).Code);
    }
}
