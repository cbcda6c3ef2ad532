namespace Conclave.Policy.Operations;

/// <summary>
/// What a signing request does (issue 16 "Typed operations"). <see cref="Unknown"/> is what a request that cannot
/// be classified becomes; it is always denied.
/// </summary>
public enum OperationKind
{
    Unknown,
    Liquidate,
    Settle,
    Exercise,
    MarginCall,
    ReleaseCollateral,
    Hedge,
    Transfer,
    TypedData,
    Message,
    RawDigest,
}

/// <summary>Wire names of operations and which ones reduce risk.</summary>
public static class Operations
{
    private static readonly Dictionary<string, OperationKind> s_byName = new(StringComparer.Ordinal)
    {
        ["liquidate"] = OperationKind.Liquidate,
        ["settle"] = OperationKind.Settle,
        ["exercise"] = OperationKind.Exercise,
        ["margin-call"] = OperationKind.MarginCall,
        ["release-collateral"] = OperationKind.ReleaseCollateral,
        ["hedge"] = OperationKind.Hedge,
        ["transfer"] = OperationKind.Transfer,
        ["typed-data"] = OperationKind.TypedData,
        ["message"] = OperationKind.Message,
        ["raw-digest"] = OperationKind.RawDigest,
        ["unknown"] = OperationKind.Unknown,
    };

    public static IReadOnlyCollection<string> Names => s_byName.Keys;

    public static string Name(OperationKind kind) => kind switch
    {
        OperationKind.Liquidate => "liquidate",
        OperationKind.Settle => "settle",
        OperationKind.Exercise => "exercise",
        OperationKind.MarginCall => "margin-call",
        OperationKind.ReleaseCollateral => "release-collateral",
        OperationKind.Hedge => "hedge",
        OperationKind.Transfer => "transfer",
        OperationKind.TypedData => "typed-data",
        OperationKind.Message => "message",
        OperationKind.RawDigest => "raw-digest",
        _ => "unknown",
    };

    /// <summary>Parses a wire name; anything else is <see cref="OperationKind.Unknown"/> (and so denied).</summary>
    public static OperationKind Parse(string? name) => name is not null && s_byName.TryGetValue(name, out var k) ? k : OperationKind.Unknown;

    public static bool TryParse(string? name, out OperationKind kind)
    {
        kind = Parse(name);
        return kind != OperationKind.Unknown;
    }

    /// <summary>
    /// Risk-reducing operations stay allowed in lockdown and are exempt from level limit multipliers and blocked
    /// lists: liquidate, margin-call (a margin top-up), and hedge when its <c>reduceOnly</c> argument is true.
    /// </summary>
    public static bool IsRiskReducing(OperationKind kind, IReadOnlyDictionary<string, PolicyValue> args) => kind switch
    {
        OperationKind.Liquidate or OperationKind.MarginCall => true,
        OperationKind.Hedge => args.TryGetValue("reduceOnly", out var v) && v.Kind == PolicyValueKind.Bool && v.Bool,
        _ => false,
    };
}
