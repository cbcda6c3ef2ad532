using System.Numerics;
using System.Text.Json;
using Conclave.Policy.Operations;

namespace Conclave.Policy.Venues;

/// <summary>
/// The venue profiles known to a server: builds calldata for typed requests and classifies calldata (from
/// eth_signTransaction) back into typed operations. Pure.
/// </summary>
public sealed partial class VenueRegistry
{
    private readonly Dictionary<string, VenueProfile> _byVenue = new(StringComparer.Ordinal);
    private readonly Dictionary<(long, string), VenueProfile> _byContract = [];

    public VenueRegistry(IEnumerable<VenueProfile> profiles)
    {
        ArgumentNullException.ThrowIfNull(profiles);
        foreach (var p in profiles)
        {
            if (!_byVenue.TryAdd(p.Venue, p))
            {
                throw PolicyErrors.Invalid("venue", "a venue with one profile");
            }

            if (!_byContract.TryAdd((p.ChainId, p.Contract), p))
            {
                throw PolicyErrors.Invalid("contract", "a contract on a chain with one profile");
            }
        }
    }

    public bool TryGet(string venue, out VenueProfile? profile) => _byVenue.TryGetValue(venue, out profile);

    /// <summary>
    /// Builds the calldata of a typed request <c>{"operation", "venue", "args"}</c>: every function parameter must be
    /// given, no other argument is accepted (the extras are reported as unknown fields and the request is denied);
    /// integers are decimal texts or JSON numbers in the units the profile declares (scaled by its decimals).
    /// </summary>
    public ClassifiedOperation Build(OperationKind operation, string venue, JsonElement args)
    {
        if (!_byVenue.TryGetValue(venue, out var profile))
        {
            return ClassifiedOperation.Unknown($"venue {venue} has no profile");
        }

        if (!profile.Operations.TryGetValue(operation, out var vo))
        {
            return ClassifiedOperation.Unknown($"venue {venue} does not map operation {Operations.Operations.Name(operation)}", profile.ChainId, profile.Contract);
        }

        if (vo.Function is not { } function)
        {
            return ClassifiedOperation.Unknown($"venue {venue} signs operation {Operations.Operations.Name(operation)} as EIP-712 typed data, not as a contract call",
                profile.ChainId, profile.Contract);
        }

        if (args.ValueKind != JsonValueKind.Object)
        {
            throw PolicyErrors.Invalid("args", "an object");
        }

        var given = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        var unknown = new List<string>();
        foreach (var p in args.EnumerateObject())
        {
            if (function.Parameters.Any(x => x.Name == p.Name))
            {
                given[p.Name] = p.Value;
            }
            else
            {
                unknown.Add(p.Name);
            }
        }

        byte[] calldata = new byte[4 + (32 * function.Parameters.Count)];
        function.SelectorBytes.CopyTo(calldata, 0);
        var values = new Dictionary<string, PolicyValue>(StringComparer.Ordinal);
        for (int i = 0; i < function.Parameters.Count; i++)
        {
            var prm = function.Parameters[i];
            string path = $"args.{prm.Name}";
            if (!given.TryGetValue(prm.Name, out var el))
            {
                throw PolicyErrors.Missing(path);
            }

            var word = calldata.AsSpan(4 + (32 * i), 32);
            values[prm.Name] = EncodeArg(prm.Type, el, vo.DecimalsOf(prm.Name), path, word);
        }

        return Classified(profile, vo, values, calldata) with { UnknownFields = unknown };
    }

    private static PolicyValue EncodeArg(AbiType type, JsonElement el, int decimals, string path, Span<byte> word)
    {
        switch (type.Kind)
        {
            case AbiKind.Address:
            {
                string s = el.ValueKind == JsonValueKind.String ? el.GetString()! : string.Empty;
                if (!PolicyValue.TryNormalizeAddress(s, out string a))
                {
                    throw PolicyErrors.Invalid(path, "an address: 0x and 40 hex digits");
                }

                AbiCodec.EncodeWord(type, new BigInteger(Convert.FromHexString(a[2..]), isUnsigned: true, isBigEndian: true), default, word);
                return PolicyValue.OfAddress(a)!.Value;
            }

            case AbiKind.Bool:
                if (el.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
                {
                    throw PolicyErrors.Invalid(path, "true or false");
                }

                AbiCodec.EncodeWord(type, el.ValueKind == JsonValueKind.True ? BigInteger.One : BigInteger.Zero, default, word);
                return PolicyValue.Of(el.ValueKind == JsonValueKind.True);
            case AbiKind.FixedBytes:
            {
                int n = type.Bits / 8;
                string s = el.ValueKind == JsonValueKind.String ? el.GetString()! : string.Empty;
                if (Documents.PolicyParser.NormalizeHex(s, n) is not { } hex)
                {
                    throw PolicyErrors.Invalid(path, $"0x and {n * 2} hex digits");
                }

                AbiCodec.EncodeWord(type, BigInteger.Zero, Convert.FromHexString(hex[2..]), word);
                return PolicyValue.OfText(hex);
            }

            default:
            {
                string text = el.ValueKind switch
                {
                    JsonValueKind.String => el.GetString()!,
                    JsonValueKind.Number => el.GetRawText(),
                    _ => string.Empty,
                };
                if (AbiCodec.ParseScaled(text, decimals) is not { } raw || !AbiCodec.InRange(type, raw) || AbiCodec.Scale(raw, decimals) is not { } value)
                {
                    throw PolicyErrors.Invalid(path, $"a decimal number with at most {decimals} decimals in the range of {type.Canonical}");
                }

                AbiCodec.EncodeWord(type, raw, default, word);
                return value;
            }
        }
    }

    /// <summary>
    /// Classifies a contract call (eth_signTransaction): the profile for (chain id, to), the operation by selector, every
    /// argument decoded strictly. A call with no data and a value is a <c>transfer</c> of the chain's native coin (18
    /// decimals). Anything else is <see cref="OperationKind.Unknown"/> with the reason.
    /// </summary>
    public ClassifiedOperation Classify(long chainId, string? to, ReadOnlySpan<byte> data, BigInteger value)
    {
        string? contract = to is null ? null : Documents.PolicyParser.NormalizeHex(to, 20);
        if (contract is null)
        {
            return ClassifiedOperation.Unknown("contract creation or malformed recipient", chainId);
        }

        if (data.IsEmpty)
        {
            var amount = AbiCodec.Scale(value, 18);
            if (value.Sign <= 0 || amount is null)
            {
                return ClassifiedOperation.Unknown("a call with neither data nor value", chainId, contract);
            }

            return new ClassifiedOperation
            {
                Operation = OperationKind.Transfer,
                ChainId = chainId,
                Contract = contract,
                Args = new Dictionary<string, PolicyValue> { ["to"] = PolicyValue.OfAddress(contract)!.Value, ["value"] = amount.Value },
                Amount = amount.Value.Number,
            };
        }

        if (!_byContract.TryGetValue((chainId, contract), out var profile))
        {
            return ClassifiedOperation.Unknown("no venue profile for this contract on this chain", chainId, contract);
        }

        if (value.Sign != 0)
        {
            return ClassifiedOperation.Unknown("a contract call that also sends value", chainId, contract);
        }

        if (data.Length < 4)
        {
            return ClassifiedOperation.Unknown("calldata shorter than a selector", chainId, contract);
        }

        byte[] selector = data[..4].ToArray();
        var vo = profile.Operations.Values.FirstOrDefault(o => o.Function is not null && selector.AsSpan().SequenceEqual(o.Function.SelectorBytes));
        if (vo?.Function is not { } function)
        {
            return ClassifiedOperation.Unknown("selector not in the venue profile", chainId, contract);
        }

        if (data.Length != 4 + (32 * function.Parameters.Count))
        {
            return ClassifiedOperation.Unknown("calldata length does not match the function", chainId, contract);
        }

        var values = new Dictionary<string, PolicyValue>(StringComparer.Ordinal);
        for (int i = 0; i < function.Parameters.Count; i++)
        {
            var prm = function.Parameters[i];
            if (AbiCodec.DecodeWord(prm.Type, data.Slice(4 + (32 * i), 32), vo.DecimalsOf(prm.Name)) is not { } v)
            {
                return ClassifiedOperation.Unknown($"argument {prm.Name} is not a canonical {prm.Type.Canonical} or out of range", chainId, contract);
            }

            values[prm.Name] = v;
        }

        return Classified(profile, vo, values, data.ToArray());
    }

    private static ClassifiedOperation Classified(VenueProfile profile, VenueOperation vo, Dictionary<string, PolicyValue> values, byte[] calldata, bool typedData = false) => new()
    {
        Operation = vo.Operation,
        Venue = profile.Venue,
        ChainId = profile.ChainId,
        Contract = profile.Contract,
        Selector = typedData ? null : vo.Function?.Selector,
        Args = values,
        Amount = vo.AmountArg is { } a ? Math.Abs(values[a].Number) : null,
        PriceSource = profile.PriceSource,
        Calldata = calldata,
    };
}
