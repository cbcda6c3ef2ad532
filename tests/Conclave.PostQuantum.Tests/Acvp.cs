using System.Text.Json.Nodes;

namespace Conclave.PostQuantum.Tests;

/// <summary>Reads the ACVP / Wycheproof JSON files copied under tests/vectors.</summary>
internal static class Acvp
{
    internal static JsonObject Load(string relative) =>
        JsonNode.Parse(File.ReadAllText(RepoPaths.Vector(relative)))!.AsObject();

    internal static IEnumerable<(JsonObject Group, JsonObject Test)> Tests(JsonObject file)
    {
        foreach (JsonNode? g in file["testGroups"]!.AsArray())
        {
            foreach (JsonNode? t in g!["tests"]!.AsArray())
            {
                yield return (g.AsObject(), t!.AsObject());
            }
        }
    }

    internal static byte[] Bytes(JsonObject node, string field) =>
        node[field] is JsonNode v ? Hex.Decode(v.GetValue<string>()) : [];

    internal static string Str(JsonObject node, string field) => node[field]!.GetValue<string>();

    /// <summary>"ML-DSA-65" -> "ml-dsa-65"; "SLH-DSA-SHA2-128s" -> "slh-dsa-sha2-128s".</summary>
    internal static string SchemeName(string parameterSet) => parameterSet.ToLowerInvariant();
}
