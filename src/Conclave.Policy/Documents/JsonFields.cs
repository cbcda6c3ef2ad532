using System.Globalization;
using System.Text.Json;

namespace Conclave.Policy.Documents;

/// <summary>
/// Strict reading of one JSON object: unknown and duplicate properties are refused, every error names the JSON path
/// of the field. Used by every parser in this library (policy documents, venue profiles, risk configuration).
/// </summary>
internal readonly struct JsonFields
{
    private readonly Dictionary<string, JsonElement> _props;

    public JsonFields(JsonElement element, string path, params string[] allowed)
    {
        Path = path;
        if (element.ValueKind != JsonValueKind.Object)
        {
            throw PolicyErrors.Invalid(path, "an object");
        }

        _props = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        foreach (var p in element.EnumerateObject())
        {
            if (Array.IndexOf(allowed, p.Name) < 0)
            {
                throw PolicyErrors.UnknownField(Child(path, p.Name));
            }

            if (!_props.TryAdd(p.Name, p.Value))
            {
                throw PolicyErrors.Invalid(Child(path, p.Name), "a property that appears once");
            }
        }
    }

    public string Path { get; }

    public static string Child(string path, string name) => path == "$" ? SafeName(name) : $"{path}.{SafeName(name)}";

    /// <summary>
    /// A property name as it may appear in an error path: names from the input are echoed only when they are short
    /// plain identifiers, so an error stays one readable line and carries nothing a client smuggled into a name.
    /// </summary>
    public static string SafeName(string name) =>
        name.Length is > 0 and <= 64 && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '|') ? name : "(unprintable name)";

    public string At(string name) => Child(Path, name);

    public bool Has(string name) => _props.ContainsKey(name) && _props[name].ValueKind != JsonValueKind.Null;

    public JsonElement? Get(string name) => Has(name) ? _props[name] : null;

    public JsonElement Require(string name) => Get(name) ?? throw PolicyErrors.Missing(At(name));

    public string RequireString(string name) => AsString(Require(name), At(name));

    public string? OptString(string name) => Get(name) is { } e ? AsString(e, At(name)) : null;

    public string RequireId(string name)
    {
        string s = RequireString(name);
        return Identifiers.IsValid(s) ? s : throw PolicyErrors.Invalid(At(name), "an id of 1-128 characters from [A-Za-z0-9._:@-]");
    }

    public long RequireLong(string name, long min, long max) => AsLong(Require(name), At(name), min, max);

    public long? OptLong(string name, long min, long max) => Get(name) is { } e ? AsLong(e, At(name), min, max) : null;

    public decimal? OptDecimal(string name, decimal min, decimal max) => Get(name) is { } e ? AsDecimal(e, At(name), min, max) : null;

    public bool? OptBool(string name) => Get(name) is { } e
        ? e.ValueKind switch { JsonValueKind.True => true, JsonValueKind.False => false, _ => throw PolicyErrors.Invalid(At(name), "true or false") }
        : null;

    public IReadOnlyList<JsonElement> OptArray(string name)
    {
        if (Get(name) is not { } e)
        {
            return [];
        }

        return e.ValueKind == JsonValueKind.Array ? [.. e.EnumerateArray()] : throw PolicyErrors.Invalid(At(name), "an array");
    }

    public IReadOnlyList<string> OptStrings(string name)
    {
        var items = OptArray(name);
        var result = new List<string>(items.Count);
        for (int i = 0; i < items.Count; i++)
        {
            result.Add(AsString(items[i], $"{At(name)}[{i}]"));
        }

        return result;
    }

    public static string AsString(JsonElement e, string path) =>
        e.ValueKind == JsonValueKind.String ? e.GetString()! : throw PolicyErrors.Invalid(path, "a string");

    public static long AsLong(JsonElement e, string path, long min, long max)
    {
        if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt64(out long v) || v < min || v > max)
        {
            throw PolicyErrors.Invalid(path, $"an integer from {min.ToString(CultureInfo.InvariantCulture)} to {max.ToString(CultureInfo.InvariantCulture)}");
        }

        return v;
    }

    public static decimal AsDecimal(JsonElement e, string path, decimal min, decimal max)
    {
        decimal v;
        bool ok = e.ValueKind switch
        {
            JsonValueKind.Number => e.TryGetDecimal(out v),
            JsonValueKind.String => decimal.TryParse(e.GetString(), NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out v),
            _ => (v = 0) != 0,
        };
        if (!ok || v < min || v > max)
        {
            throw PolicyErrors.Invalid(path, $"a number from {min.ToString(CultureInfo.InvariantCulture)} to {max.ToString(CultureInfo.InvariantCulture)}");
        }

        return v;
    }
}
