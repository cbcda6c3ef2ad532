using System.Text;

namespace Conclave.Cli.Commands;

/// <summary>
/// "field value" output for one record: aligned plain lines rather than a boxed table, so a long hex value is never
/// broken by table borders (a terminal's soft wrap copies back as one value). Values longer than
/// <see cref="MaxShownLength"/> characters (an ML-DSA public key is 3,904 hex digits) are shown shortened with their
/// size; <c>--json</c> prints every value whole.
/// </summary>
internal sealed class Fields
{
    /// <summary>Longest value shown whole: a 64-byte signature in hex (128 digits) with a 0x prefix and a little room.</summary>
    public const int MaxShownLength = 132;

    private readonly List<(string Name, string Value)> _rows = [];

    public void Add(string name, string value) => _rows.Add((name, value));

    public void Write()
    {
        int width = _rows.Count == 0 ? 0 : _rows.Max(r => r.Name.Length);
        var sb = new StringBuilder();
        foreach ((string name, string value) in _rows)
        {
            sb.Append(name.PadRight(width)).Append("  ").Append(Shorten(Clean(value))).Append('\n');
        }

        Console.Out.Write(sb.ToString());
    }

    /// <summary>A value longer than <see cref="MaxShownLength"/>: its start and end, and how long it is.</summary>
    public static string Shorten(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        if (value.Length <= MaxShownLength)
        {
            return value;
        }

        string size = value.All(Uri.IsHexDigit) && value.Length % 2 == 0 ? $"{value.Length / 2} bytes" : $"{value.Length} characters";
        return $"{value[..48]}…{value[^16..]} ({size}; --json prints it whole)";
    }

    /// <summary>Control characters (a label value could hold any) are shown as '?', so output cannot move the cursor.</summary>
    private static string Clean(string value) => value.Any(char.IsControl) ? new string([.. value.Select(c => char.IsControl(c) ? '?' : c)]) : value;
}
