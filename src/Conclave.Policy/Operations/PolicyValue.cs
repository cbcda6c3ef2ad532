using System.Globalization;

namespace Conclave.Policy.Operations;

public enum PolicyValueKind
{
    Number,
    Bool,
    Text,
    Address,
}

/// <summary>
/// An argument of an operation as policy sees it: a decimal number (amounts in native units, already scaled by the
/// venue profile's decimals), a boolean, a text, or a 20-byte address (kept as lowercase 0x hex so comparisons are
/// exact).
/// </summary>
public readonly record struct PolicyValue
{
    private PolicyValue(PolicyValueKind kind, decimal number, bool b, string? text)
    {
        Kind = kind;
        Number = number;
        Bool = b;
        Text = text ?? string.Empty;
    }

    public PolicyValueKind Kind { get; }

    public decimal Number { get; }

    public bool Bool { get; }

    public string Text { get; }

    public static PolicyValue Of(decimal number) => new(PolicyValueKind.Number, number, false, null);

    public static PolicyValue Of(bool value) => new(PolicyValueKind.Bool, 0, value, null);

    public static PolicyValue OfText(string text) => new(PolicyValueKind.Text, 0, false, text);

    /// <summary>An address from 0x-prefixed 40 hex digits (any case); null when malformed.</summary>
    public static PolicyValue? OfAddress(string text) => TryNormalizeAddress(text, out string a) ? new PolicyValue(PolicyValueKind.Address, 0, false, a) : null;

    public static bool TryNormalizeAddress(string? text, out string normalized)
    {
        normalized = string.Empty;
        if (text is null || text.Length != 42 || !text.StartsWith("0x", StringComparison.Ordinal))
        {
            return false;
        }

        for (int i = 2; i < 42; i++)
        {
            if (!char.IsAsciiHexDigit(text[i]))
            {
                return false;
            }
        }

        normalized = text.ToLowerInvariant();
        return true;
    }

    public override string ToString() => Kind switch
    {
        PolicyValueKind.Number => Number.ToString(CultureInfo.InvariantCulture),
        PolicyValueKind.Bool => Bool ? "true" : "false",
        _ => Text,
    };
}
