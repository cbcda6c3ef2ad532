using Conclave.Policy.Operations;
using Conclave.Policy.Principals;

namespace Conclave.Policy.Venues;

/// <summary>
/// An operation placed against a venue profile: what it is, its arguments as policy sees them, its amount in native
/// units, and the calldata. <see cref="Reason"/> says why a request could not be classified (then
/// <see cref="Operation"/> is <see cref="OperationKind.Unknown"/> and the request is denied).
/// </summary>
public sealed record ClassifiedOperation
{
    public required OperationKind Operation { get; init; }

    public string? Venue { get; init; }

    public long? ChainId { get; init; }

    public string? Contract { get; init; }

    public string? Selector { get; init; }

    public IReadOnlyDictionary<string, PolicyValue> Args { get; init; } = new Dictionary<string, PolicyValue>();

    public decimal? Amount { get; init; }

    public string? PriceSource { get; init; }

    public byte[] Calldata { get; init; } = [];

    public IReadOnlyList<string> UnknownFields { get; init; } = [];

    public string? Reason { get; init; }

    public static ClassifiedOperation Unknown(string reason, long? chainId = null, string? contract = null) =>
        new() { Operation = OperationKind.Unknown, Reason = reason, ChainId = chainId, Contract = contract };

    /// <summary>The request policy evaluates, for this principal and key.</summary>
    public OperationRequest ToRequest(Principal principal, string keyId, IReadOnlyList<string> keyLabels) => new()
    {
        Principal = principal,
        Operation = Operation,
        KeyId = keyId,
        KeyLabels = keyLabels,
        Venue = Venue,
        ChainId = ChainId,
        Contract = Contract,
        Selector = Selector,
        Args = Args,
        Amount = Amount,
        PriceSource = PriceSource,
        UnknownFields = UnknownFields,
    };
}
