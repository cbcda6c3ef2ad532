using System.Text.Json;
using System.Text.Json.Serialization;

namespace Conclave.Server.Api;

/// <summary>
/// Strict request bodies for every JSON route, and the wording of their errors. The serializer options the
/// minimal-API handlers bind with are set here (the source-generated <see cref="ApiJsonContext"/> first): exact
/// property names, no unknown properties, no duplicate properties, no numbers written as strings. A failure
/// becomes a 400 problem that names the field and what it expects; it never repeats the value sent (which may be a
/// secret) nor a .NET type name.
/// </summary>
public static class ApiJson
{
    private const int MaxFieldNameLength = 64;

    /// <summary>What each request field expects, for error messages.</summary>
    private static readonly Dictionary<string, string> Expected = new(StringComparer.Ordinal)
    {
        ["name"] = "a string",
        ["scheme"] = "a string",
        ["threshold"] = "an integer from 1 to 255",
        ["participants"] = "an integer from 1 to 255",
        ["labels"] = "an object whose values are strings",
        ["message"] = "a hex string",
        ["digest"] = "a hex string",
        ["path"] = "a string such as \"0/1\"",
        ["items"] = "an array of sign requests",
        ["level"] = "one of \"normal\", \"elevated\", \"stressed\", \"lockdown\"",
        ["reason"] = "a string",
        ["samples"] = "an array of price samples",
        ["source"] = "a string",
        ["price"] = "a positive number",
        ["at"] = "an RFC 3339 time such as \"2026-11-30T12:00:00Z\"",
        ["operation"] = "a string such as \"message\" or \"raw-digest\"",
    };

    /// <summary>Makes <paramref name="options"/> strict and puts the API's generated contract first.</summary>
    public static void Configure(JsonSerializerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.TypeInfoResolverChain.Insert(0, ApiJsonContext.Default);
        options.TypeInfoResolverChain.Insert(1, Identity.IdentityJsonContext.Default);
        options.PropertyNameCaseInsensitive = false;
        options.NumberHandling = JsonNumberHandling.Strict;
        options.UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow;
        options.AllowDuplicateProperties = false;
    }

    /// <summary>The problem for a body the serializer refused.</summary>
    public static ProblemBody Problem(JsonException e)
    {
        ArgumentNullException.ThrowIfNull(e);
        string message = e.Message;
        if (message.Contains("could not be mapped to any .NET member", StringComparison.Ordinal))
        {
            string? field = Quoted(message) is { } name ? Join(Parent(e.Path), name) : Field(e.Path);
            return ProblemTypes.Make(ProblemTypes.InvalidRequest, field is null
                ? "the request body has a field this operation does not accept"
                : $"unknown field '{field}': this operation does not accept it (field names are case-sensitive camelCase; see docs/API.md)");
        }

        if (message.Contains("uplicate", StringComparison.Ordinal))
        {
            string? field = Field(e.Path) ?? (Quoted(message) is { } name ? Safe(name) : null);
            return ProblemTypes.Make(ProblemTypes.InvalidRequest, field is null
                ? "the request body gives a field more than once"
                : $"field '{field}' is given more than once");
        }

        if (message.Contains("could not be converted", StringComparison.Ordinal) || message.Contains("Cannot get the value", StringComparison.Ordinal)
            || message.Contains("was not expected", StringComparison.Ordinal))
        {
            string? field = Field(e.Path);
            if (field is null)
            {
                return ProblemTypes.Make(ProblemTypes.MalformedJson, "the request body must be a JSON object");
            }

            string last = LastName(field);
            string expected = Expected.TryGetValue(last, out string? x) ? x : field.StartsWith("labels.", StringComparison.Ordinal) ? "a string" : "another type";
            if (field.StartsWith("items[", StringComparison.Ordinal) && !field.Contains('.', StringComparison.Ordinal))
            {
                expected = "a sign request object";
            }

            return ProblemTypes.Make(ProblemTypes.MalformedJson, $"field '{field}' must be {expected}");
        }

        return ProblemTypes.Make(ProblemTypes.MalformedJson, "the request body is not valid JSON");
    }

    /// <summary>"$.items[0].message" → "items[0].message"; null for the root or a name that is not shown.</summary>
    private static string? Field(string? path)
    {
        if (string.IsNullOrEmpty(path) || path == "$" || !path.StartsWith("$.", StringComparison.Ordinal))
        {
            return null;
        }

        return Safe(path[2..]);
    }

    private static string? Parent(string? path)
    {
        string? field = Field(path);
        if (field is null)
        {
            return null;
        }

        int dot = field.LastIndexOf('.');
        return dot < 0 ? null : field[..dot];
    }

    private static string? Join(string? parent, string name) => Safe(parent is null ? name : parent + "." + name);

    private static string LastName(string field)
    {
        string last = field[(field.LastIndexOf('.') + 1)..];
        int bracket = last.IndexOf('[', StringComparison.Ordinal);
        return bracket < 0 ? last : last[..bracket];
    }

    private static string? Quoted(string message)
    {
        int a = message.IndexOf('\'', StringComparison.Ordinal);
        int b = a < 0 ? -1 : message.IndexOf('\'', a + 1);
        return b > a + 1 ? message[(a + 1)..b] : null;
    }

    /// <summary>Field names are shown only when short and plain (letters, digits, '_', '-', '.', '[', ']').</summary>
    private static string? Safe(string name) =>
        name.Length is > 0 and <= MaxFieldNameLength && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.' or '[' or ']') ? name : null;
}
