using Conclave.Policy.Principals;

namespace Conclave.Policy.Operations;

/// <summary>
/// A signing request as policy sees it (issue 16 "Typed operations"): who asks, with which key, for what operation on
/// which venue, chain and contract, with which arguments. <see cref="Amount"/> is the operation's amount or notional in
/// native units as the venue profile names it (null when the operation has none); <see cref="PriceSource"/> is the
/// profile's price input for USD limits. <see cref="UnknownFields"/> lists request fields the classifier could not
/// place; any makes the request denied.
/// </summary>
public sealed record OperationRequest
{
    public required Principal Principal { get; init; }

    public required OperationKind Operation { get; init; }

    public required string KeyId { get; init; }

    public IReadOnlyList<string> KeyLabels { get; init; } = [];

    public string? Venue { get; init; }

    public long? ChainId { get; init; }

    /// <summary>Lowercase 0x address of the contract called, if any.</summary>
    public string? Contract { get; init; }

    /// <summary>Lowercase 0x 4-byte function selector, if any.</summary>
    public string? Selector { get; init; }

    public IReadOnlyDictionary<string, PolicyValue> Args { get; init; } = new Dictionary<string, PolicyValue>();

    public decimal? Amount { get; init; }

    public string? PriceSource { get; init; }

    public IReadOnlyList<string> UnknownFields { get; init; } = [];
}
