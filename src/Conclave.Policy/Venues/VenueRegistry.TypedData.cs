using System.Globalization;
using System.Numerics;
using System.Text.Json;
using Conclave.Policy.Documents;
using Conclave.Policy.Operations;

namespace Conclave.Policy.Venues;

public sealed partial class VenueRegistry
{
    /// <summary>
    /// Classifies an <c>eth_signTypedData_v4</c> document (EIP-712) against the profiles. The domain's <c>chainId</c> and
    /// <c>verifyingContract</c> name a profile and the <c>primaryType</c> names the struct one of its operations declares
    /// (<see cref="VenueOperation.TypedData"/>); a document that names no such profile and struct is not a venue
    /// operation and the result is null (the request stays operation <c>typed-data</c>). Once it does, everything the
    /// signature commits to must be what the profile says, else the result is <see cref="OperationKind.Unknown"/> with
    /// the reason (denied): the struct's members in <c>types</c> exactly the profile's names and canonical types in
    /// order (EIP-712 "Definition of encodeType": the type hash commits to them), no type of <c>types</c> named like an
    /// atomic member type, an <c>EIP712Domain</c> that (when declared) has <c>chainId</c> as <c>uint256</c> and
    /// <c>verifyingContract</c> as <c>address</c> (EIP-712 "Definition of domainSeparator"), no member given twice,
    /// every member present and decoded strictly (address: 0x and 40 hex digits; bool: true or false; integers: a JSON
    /// integer, a decimal string or a 0x hex string, in range, scaled by the profile's decimals exactly; bytesN: 0x and
    /// 2N hex digits). A message member the struct does not declare is an unknown field (denied).
    /// </summary>
    public ClassifiedOperation? ClassifyTypedData(JsonElement typedData)
    {
        if (typedData.ValueKind != JsonValueKind.Object
            || !typedData.TryGetProperty("domain", out JsonElement domain) || domain.ValueKind != JsonValueKind.Object
            || !typedData.TryGetProperty("primaryType", out JsonElement primary) || primary.ValueKind != JsonValueKind.String
            || !domain.TryGetProperty("chainId", out JsonElement chainEl) || IntegerValue(chainEl) is not { } chain || chain.Sign <= 0 || chain > long.MaxValue
            || !domain.TryGetProperty("verifyingContract", out JsonElement contractEl) || contractEl.ValueKind != JsonValueKind.String
            || !PolicyValue.TryNormalizeAddress(contractEl.GetString(), out string contract)
            || !_byContract.TryGetValue(((long)chain, contract), out VenueProfile? profile))
        {
            return null;
        }

        string primaryType = primary.GetString()!;
        VenueOperation? vo = profile.Operations.Values.FirstOrDefault(o => string.Equals(o.TypedData?.Name, primaryType, StringComparison.Ordinal));
        if (vo is null || vo.TypedData is not { } shape)
        {
            return null;
        }

        long chainId = (long)chain;
        string venue = profile.Venue;
        ClassifiedOperation Refuse(string reason) =>
            ClassifiedOperation.Unknown($"typed data {shape.Name} of venue {venue}: {reason}", chainId, contract);

        if (HasDuplicateMember(typedData) || HasDuplicateMember(domain))
        {
            return Refuse("a member of the document or its domain is given twice");
        }

        if (!typedData.TryGetProperty("types", out JsonElement types) || types.ValueKind != JsonValueKind.Object || HasDuplicateMember(types))
        {
            return Refuse("types must be an object naming each type once");
        }

        if (types.TryGetProperty("EIP712Domain", out JsonElement domainType)
            && (!Declares(domainType, "chainId", "uint256") || !Declares(domainType, "verifyingContract", "address")))
        {
            return Refuse("EIP712Domain must declare chainId as uint256 and verifyingContract as address");
        }

        if (!types.TryGetProperty(shape.Name, out JsonElement members) || members.ValueKind != JsonValueKind.Array || members.GetArrayLength() != shape.Parameters.Count)
        {
            return Refuse("its members are not the profile's");
        }

        int i = 0;
        foreach (JsonElement m in members.EnumerateArray())
        {
            AbiParameter expected = shape.Parameters[i++];
            if (m.ValueKind != JsonValueKind.Object || HasDuplicateMember(m) || m.EnumerateObject().Count() != 2
                || !m.TryGetProperty("name", out JsonElement n) || n.ValueKind != JsonValueKind.String || n.GetString() != expected.Name
                || !m.TryGetProperty("type", out JsonElement t) || t.ValueKind != JsonValueKind.String || t.GetString() != expected.Type.Canonical)
            {
                return Refuse("its members are not the profile's");
            }

            if (types.TryGetProperty(expected.Type.Canonical, out _))
            {
                return Refuse("a type in types is named like an atomic member type");
            }
        }

        if (!typedData.TryGetProperty("message", out JsonElement message) || message.ValueKind != JsonValueKind.Object || HasDuplicateMember(message))
        {
            return Refuse("message must be an object naming each member once");
        }

        var unknown = new List<string>();
        foreach (JsonProperty p in message.EnumerateObject())
        {
            if (!shape.Parameters.Any(x => x.Name == p.Name))
            {
                unknown.Add("message." + JsonFields.SafeName(p.Name));
            }
        }

        var values = new Dictionary<string, PolicyValue>(StringComparer.Ordinal);
        foreach (AbiParameter prm in shape.Parameters)
        {
            if (!message.TryGetProperty(prm.Name, out JsonElement el))
            {
                return Refuse($"member {prm.Name} is missing");
            }

            if (DecodeMember(prm.Type, el, vo.DecimalsOf(prm.Name)) is not { } value)
            {
                return Refuse($"member {prm.Name} is not a {prm.Type.Canonical} in range with at most the profile's decimals");
            }

            values[prm.Name] = value;
        }

        return Classified(profile, vo, values, [], typedData: true) with { UnknownFields = unknown };
    }

    private static bool Declares(JsonElement structType, string name, string type) =>
        structType.ValueKind == JsonValueKind.Array && structType.EnumerateArray().Any(m => m.ValueKind == JsonValueKind.Object
            && m.TryGetProperty("name", out JsonElement n) && n.ValueKind == JsonValueKind.String && n.GetString() == name
            && m.TryGetProperty("type", out JsonElement t) && t.ValueKind == JsonValueKind.String && t.GetString() == type)
        && structType.EnumerateArray().Count(m => m.ValueKind == JsonValueKind.Object && m.TryGetProperty("name", out JsonElement n) && n.ValueKind == JsonValueKind.String
            && n.GetString() == name) == 1;

    private static bool HasDuplicateMember(JsonElement o)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        return o.EnumerateObject().Any(p => !seen.Add(p.Name));
    }

    /// <summary>One message member as policy sees it; null when it is not a canonical value of its type.</summary>
    private static PolicyValue? DecodeMember(AbiType type, JsonElement el, int decimals)
    {
        switch (type.Kind)
        {
            case AbiKind.Address:
                return el.ValueKind == JsonValueKind.String ? PolicyValue.OfAddress(el.GetString()!) : null;
            case AbiKind.Bool:
                return el.ValueKind switch
                {
                    JsonValueKind.True => PolicyValue.Of(true),
                    JsonValueKind.False => PolicyValue.Of(false),
                    _ => null,
                };
            case AbiKind.FixedBytes:
                return el.ValueKind == JsonValueKind.String && PolicyParser.NormalizeHex(el.GetString()!, type.Bits / 8) is { } hex ? PolicyValue.OfText(hex) : null;
            default:
                return IntegerValue(el) is { } raw && AbiCodec.InRange(type, raw) ? AbiCodec.Scale(raw, decimals) : null;
        }
    }

    /// <summary>
    /// An EIP-712 integer as eth_signTypedData_v4 documents write it: a JSON integer (digits, an optional minus), a
    /// decimal string, or a 0x hex string of 1-64 digits (not negative). Null for anything else (exponents, fractions,
    /// signs on hex, empty or over-long texts).
    /// </summary>
    internal static BigInteger? IntegerValue(JsonElement el)
    {
        string text = el.ValueKind switch
        {
            JsonValueKind.Number => el.GetRawText(),
            JsonValueKind.String => el.GetString()!,
            _ => string.Empty,
        };
        if (text.StartsWith("0x", StringComparison.Ordinal))
        {
            string digits = text[2..];
            return digits.Length is >= 1 and <= 64 && digits.All(char.IsAsciiHexDigit)
                ? BigInteger.Parse("0" + digits, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture)
                : null;
        }

        bool negative = text.StartsWith('-');
        string body = negative ? text[1..] : text;
        if (body.Length is 0 or > 80 || !body.All(char.IsAsciiDigit))
        {
            return null;
        }

        BigInteger v = BigInteger.Parse(body, NumberStyles.None, CultureInfo.InvariantCulture);
        return negative ? -v : v;
    }
}
