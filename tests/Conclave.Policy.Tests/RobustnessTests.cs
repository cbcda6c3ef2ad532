using System.Numerics;
using System.Text;
using Conclave.Policy.Documents;
using Conclave.Policy.HttpSignatures;
using Conclave.Policy.Venues;

namespace Conclave.Policy.Tests;

/// <summary>
/// Bad input never crashes: random mutations of valid inputs (System.Random streams derived from the run seed) either
/// parse or fail with the library's typed error (or a typed verification result), never another exception; and error
/// texts do not echo input values.
/// </summary>
public sealed class RobustnessTests
{
    private const string Alphabet = "{}[]\":,0-1.e9aZ\\ \u00e9";

    private static string Mutate(Random r, string s)
    {
        var sb = new StringBuilder(s);
        int edits = r.Next(1, 4);
        for (int i = 0; i < edits && sb.Length > 0; i++)
        {
            int at = r.Next(sb.Length);
            switch (r.Next(3))
            {
                case 0: sb.Remove(at, 1); break;
                case 1: sb.Insert(at, Alphabet[r.Next(Alphabet.Length)]); break;
                default: sb[at] = Alphabet[r.Next(Alphabet.Length)]; break;
            }
        }

        return sb.ToString();
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void Mutated_policy_documents_parse_or_fail_with_a_typed_error(int stream)
    {
        var r = TestSeed.Random($"stream {stream}");
        string valid = PolicyTable.Root.GetProperty("policy").GetRawText();
        int parsed = 0, refused = 0;
        for (int i = 0; i < 1500; i++)
        {
            try
            {
                PolicyDocument.Parse(Mutate(r, valid));
                parsed++;
            }
            catch (PolicyFormatException e)
            {
                refused++;
                Assert.False(string.IsNullOrEmpty(e.Code));
                Assert.DoesNotContain('\n', e.Message);
            }
        }

        Assert.True(refused > 1000 && parsed > 0, $"parsed {parsed}, refused {refused}");
    }

    [Fact]
    public void Mutated_venue_profiles_and_calldata_never_crash()
    {
        var r = TestSeed.Random("mutations");
        const string profile = """{"venue":"v","chainId":1,"contract":"0x00000000000000000000000000000000000000aa","priceSource":"ETH-USD","operations":{"liquidate":{"function":"liquidate(address account, uint256 amount)","amount":"amount","decimals":{"amount":18}},"hedge":{"function":"h(int16 s, bool b, bytes4 m)","amount":"s"}}}""";
        for (int i = 0; i < 1000; i++)
        {
            try
            {
                VenueProfile.Parse(Mutate(r, profile));
            }
            catch (PolicyFormatException)
            {
            }
        }

        var reg = new VenueRegistry([VenueProfile.Parse(profile)]);
        for (int i = 0; i < 3000; i++)
        {
            byte[] data = new byte[r.Next(0, 100)];
            r.NextBytes(data);
            if (data.Length >= 4 && r.Next(2) == 0)
            {
                // Real selectors so that decoding runs on random words.
                byte[] sel = Convert.FromHexString(r.Next(2) == 0 ? AbiFunction.Parse("liquidate(address account, uint256 amount)", "f").Selector[2..] : AbiFunction.Parse("h(int16 s, bool b, bytes4 m)", "f").Selector[2..]);
                sel.CopyTo(data, 0);
            }

            var c = reg.Classify(1, "0x00000000000000000000000000000000000000aa", data, new BigInteger(r.Next(0, 2)));
            Assert.True(c.Operation == Operations.OperationKind.Unknown ? c.Reason is not null : c.Reason is null);
        }
    }

    [Fact]
    public void Mutated_typed_data_documents_are_classified_unknown_or_left_alone_and_never_crash()
    {
        var r = TestSeed.Random("mutations");
        var reg = new VenueRegistry([VenueProfile.Parse("""
            {"venue":"v","chainId":1,"contract":"0x00000000000000000000000000000000000000aa",
             "operations":{"settle":{"typedData":"Settlement(address account,uint256 amount,bool final,bytes4 tag,int16 skew)","amount":"amount","decimals":{"amount":6}}}}
            """)]);
        const string doc = """{"types":{"EIP712Domain":[{"name":"name","type":"string"},{"name":"chainId","type":"uint256"},{"name":"verifyingContract","type":"address"}],"Settlement":[{"name":"account","type":"address"},{"name":"amount","type":"uint256"},{"name":"final","type":"bool"},{"name":"tag","type":"bytes4"},{"name":"skew","type":"int16"}]},"primaryType":"Settlement","domain":{"name":"PerpX","chainId":1,"verifyingContract":"0x00000000000000000000000000000000000000aa"},"message":{"account":"0x1111111111111111111111111111111111111111","amount":"2500000","final":true,"tag":"0x01020304","skew":-7}}""";
        int classified = 0, unknown = 0, none = 0;
        for (int i = 0; i < 4000; i++)
        {
            System.Text.Json.JsonDocument parsed;
            try
            {
                parsed = System.Text.Json.JsonDocument.Parse(Mutate(r, doc));
            }
            catch (System.Text.Json.JsonException)
            {
                continue;
            }

            using (parsed)
            {
                ClassifiedOperation? c = reg.ClassifyTypedData(parsed.RootElement);
                if (c is null)
                {
                    none++;
                }
                else if (c.Operation == Operations.OperationKind.Unknown)
                {
                    Assert.False(string.IsNullOrEmpty(c.Reason));
                    unknown++;
                }
                else
                {
                    Assert.Null(c.Reason);
                    classified++;
                }
            }
        }

        Assert.True(classified > 0 && unknown > 0 && none > 0, $"classified {classified}, unknown {unknown}, none {none}");
    }

    [Fact]
    public void Random_signature_headers_get_a_typed_refusal_that_echoes_nothing()
    {
        var r = TestSeed.Random("mutations");
        var verifier = new AgentRequestVerifier(_ => null, new NonceReplayWindow());
        const string input = "sig1=(\"@method\" \"@target-uri\" \"content-digest\");created=1800000000;expires=1800000030;nonce=\"SECRETNONCE-abcdefgh\";keyid=\"agent-1\";tag=\"conclave-agent\"";
        const string sig = "sig1=:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==:";
        for (int i = 0; i < 3000; i++)
        {
            var m = new HttpMessageComponents("POST", "https://c.example/v1/sign")
                .Add("content-digest", Mutate(r, ContentDigest.Create("{}"u8)))
                .Add("signature-input", Mutate(r, input))
                .Add("signature", Mutate(r, sig));
            var result = verifier.Verify(m, "{}"u8, DateTimeOffset.FromUnixTimeSeconds(1_800_000_001));
            Assert.False(result.IsValid);
            Assert.DoesNotContain("SECRETNONCE", result.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Errors_name_the_field_and_not_the_value()
    {
        var e = Assert.Throws<PolicyFormatException>(() => PolicyDocument.Parse("""{"id":"p","version":1,"rules":[{"id":"a","effect":"allow","conditions":[{"arg":"amount","op":"lt","value":"hunter2-secret"}]}]}"""));
        Assert.DoesNotContain("hunter2", e.Message, StringComparison.Ordinal);
        var f = Assert.Throws<PolicyFormatException>(() => PolicyDocument.Parse("""{"id":"p","version":1,"rules":[{"id":"a","effect":"hunter2-secret"}]}"""));
        Assert.DoesNotContain("hunter2", f.Message, StringComparison.Ordinal);
    }
}
