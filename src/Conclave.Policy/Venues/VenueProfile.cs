using System.Text.Json;
using Conclave.Policy.Documents;
using Conclave.Policy.Operations;

namespace Conclave.Policy.Venues;

/// <summary>
/// How one operation maps onto a contract function (<see cref="Function"/>, for eth_signTransaction calldata) and/or an
/// EIP-712 struct (<see cref="TypedData"/>, for eth_signTypedData_v4 messages whose primaryType it names), which
/// argument is the amount, and each argument's decimals. At least one of the two is set.
/// </summary>
public sealed record VenueOperation(OperationKind Operation, AbiFunction? Function, AbiFunction? TypedData, string? AmountArg, IReadOnlyDictionary<string, int> Decimals)
{
    public int DecimalsOf(string arg) => Decimals.TryGetValue(arg, out int d) ? d : 0;
}

/// <summary>
/// A venue profile (issue 16 "Typed operations"): a venue's contract on one chain, the ABI function each operation maps
/// to, which argument is the amount or notional and its decimals, and the price source for USD limits. JSON:
/// <c>{"venue", "chainId", "contract", "priceSource", "nativeDecimals", "operations": {"liquidate": {"function":
/// "liquidate(address account, uint256 amount)", "amount": "amount", "decimals": {"amount": 18}}}}</c>. An operation
/// signed as EIP-712 typed data names its struct instead of (or besides) a function: <c>"settle": {"typedData":
/// "Settlement(address account,uint256 amount)", "amount": "amount"}</c> (EIP-712 "Definition of encodeType": the
/// struct's name and its members as <c>type name</c>; atomic types only).
/// </summary>
public sealed record VenueProfile
{
    public required string Venue { get; init; }

    public required long ChainId { get; init; }

    /// <summary>Lowercase 0x address.</summary>
    public required string Contract { get; init; }

    public string? PriceSource { get; init; }

    public required IReadOnlyDictionary<OperationKind, VenueOperation> Operations { get; init; }

    /// <summary>
    /// <c>sha256:</c> and the hex SHA-256 of the canonical form (<see cref="CanonicalJson"/>): whitespace, member order
    /// and the spelling of types (<c>uint</c> for <c>uint256</c>) do not change it; any change of meaning does.
    /// </summary>
    public string Hash => "sha256:" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(CanonicalJson));

    /// <summary>The profile written back in canonical form (UTF-8 JSON).</summary>
    public byte[] CanonicalJson => VenueProfileCanonicalWriter.Write(this);

    public static VenueProfile Parse(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        try
        {
            using var doc = JsonDocument.Parse(json);
            return Parse(doc.RootElement, "$");
        }
        catch (JsonException e)
        {
            throw PolicyErrors.Json("the venue profile", e);
        }
    }

    internal static VenueProfile Parse(JsonElement root, string path)
    {
        var f = new JsonFields(root, path, "venue", "chainId", "contract", "priceSource", "operations");
        string venue = f.RequireId("venue");
        long chainId = f.RequireLong("chainId", 1, long.MaxValue);
        string contract = PolicyParser.NormalizeHex(f.RequireString("contract"), 20) ?? throw PolicyErrors.Invalid(f.At("contract"), "0x and 40 hex digits");
        string? priceSource = f.OptString("priceSource");
        if (priceSource is not null && !Identifiers.IsValid(priceSource))
        {
            throw PolicyErrors.Invalid(f.At("priceSource"), "an id of 1-128 characters from [A-Za-z0-9._:@-]");
        }

        var ops = new Dictionary<OperationKind, VenueOperation>();
        var selectors = new HashSet<string>(StringComparer.Ordinal);
        var primaryTypes = new HashSet<string>(StringComparer.Ordinal);
        var opsEl = f.Require("operations");
        if (opsEl.ValueKind != JsonValueKind.Object)
        {
            throw PolicyErrors.Invalid(f.At("operations"), "an object keyed by operation");
        }

        foreach (var p in opsEl.EnumerateObject())
        {
            string opPath = $"{f.At("operations")}.{JsonFields.SafeName(p.Name)}";
            if (!Conclave.Policy.Operations.Operations.TryParse(p.Name, out var kind) || kind is OperationKind.TypedData or OperationKind.Message or OperationKind.RawDigest)
            {
                throw PolicyErrors.Invalid(opPath, "a contract operation (liquidate, settle, exercise, margin-call, release-collateral, hedge, transfer)");
            }

            var o = new JsonFields(p.Value, opPath, "function", "typedData", "amount", "decimals");
            AbiFunction? fn = o.OptString("function") is { } fragment ? AbiFunction.Parse(fragment, o.At("function")) : null;
            AbiFunction? typed = o.OptString("typedData") is { } structType ? AbiFunction.Parse(structType, o.At("typedData")) : null;
            if (fn is null && typed is null)
            {
                throw PolicyErrors.Missing(o.At("function"));
            }

            if (fn is not null && !selectors.Add(fn.Selector))
            {
                throw PolicyErrors.Invalid(o.At("function"), "a function mapped to one operation only");
            }

            if (typed is not null && !primaryTypes.Add(typed.Name))
            {
                throw PolicyErrors.Invalid(o.At("typedData"), "a typed-data struct mapped to one operation only");
            }

            AbiFunction[] shapes = [.. new[] { fn, typed }.OfType<AbiFunction>()];
            string? amount = o.OptString("amount");
            if (amount is not null && !shapes.All(s => s.Parameters.Any(x => x.Name == amount && x.Type.Kind is AbiKind.Uint or AbiKind.Int)))
            {
                throw PolicyErrors.Invalid(o.At("amount"), fn is not null && typed is not null
                    ? "the name of an integer parameter of both the function and the typed-data struct"
                    : "the name of an integer parameter of the function");
            }

            var decimals = new Dictionary<string, int>(StringComparer.Ordinal);
            if (o.Get("decimals") is { } dEl)
            {
                string[] integers = [.. shapes.SelectMany(s => s.Parameters).Where(x => x.Type.Kind is AbiKind.Uint or AbiKind.Int).Select(x => x.Name).Distinct(StringComparer.Ordinal)];
                var df = new JsonFields(dEl, o.At("decimals"), integers);
                foreach (string name in integers)
                {
                    if (df.OptLong(name, 0, 36) is { } d)
                    {
                        decimals[name] = (int)d;
                    }
                }
            }

            if (!ops.TryAdd(kind, new VenueOperation(kind, fn, typed, amount, decimals)))
            {
                throw PolicyErrors.Invalid(opPath, "an operation that appears once");
            }
        }

        return new VenueProfile { Venue = venue, ChainId = chainId, Contract = contract, PriceSource = priceSource, Operations = ops };
    }
}
