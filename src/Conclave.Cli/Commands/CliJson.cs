using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Conclave.Cli.Commands;

/// <summary>JSON on standard output for commands whose output is data: indented, non-ASCII text kept readable.</summary>
internal static class CliJson
{
    private static readonly JsonSerializerOptions s_options = new()
    {
        WriteIndented = true,
        // Terminal output, not HTML: keep Japanese, Korean and accented words as themselves rather than \u escapes.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static void Write(JsonObject value) => Console.Out.WriteLine(value.ToJsonString(s_options));

    /// <summary>For API results: web naming (camelCase), indented, nulls left out, non-ASCII kept readable.</summary>
    public static JsonSerializerOptions Options { get; } = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };
}
