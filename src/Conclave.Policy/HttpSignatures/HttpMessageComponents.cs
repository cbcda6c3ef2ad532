using System.Globalization;
using System.Text;

namespace Conclave.Policy.HttpSignatures;

/// <summary>
/// The parts of an HTTP message a signature can cover: the method and target URI of a request (or the status of a
/// response) and its header fields. Header names are compared case-insensitively.
/// </summary>
public sealed class HttpMessageComponents
{
    private readonly List<KeyValuePair<string, string>> _fields = [];

    public HttpMessageComponents(string method, string targetUri)
    {
        ArgumentException.ThrowIfNullOrEmpty(method);
        ArgumentException.ThrowIfNullOrEmpty(targetUri);
        Method = method;
        TargetUri = targetUri;
    }

    private HttpMessageComponents(int status)
    {
        Status = status;
    }

    public static HttpMessageComponents Response(int status) => new(status);

    public string? Method { get; }

    public string? TargetUri { get; }

    public int? Status { get; }

    public HttpMessageComponents Add(string name, string value)
    {
        _fields.Add(new(name.ToLowerInvariant(), value));
        return this;
    }

    public string? Field(string name)
    {
        var values = _fields.Where(f => f.Key == name).Select(f => f.Value.Trim(' ', '\t')).ToList();
        return values.Count == 0 ? null : string.Join(", ", values);
    }

    /// <summary>
    /// The value of one component (RFC 9421 section 2.1 for fields, 2.2 for the derived <c>@method</c>,
    /// <c>@target-uri</c>, <c>@authority</c>, <c>@scheme</c>, <c>@path</c>, <c>@query</c>, <c>@status</c>); null when
    /// the message does not have it.
    /// </summary>
    public string? Value(string component)
    {
        if (!component.StartsWith('@'))
        {
            return Field(component);
        }

        if (component == "@status")
        {
            return Status?.ToString("000", CultureInfo.InvariantCulture);
        }

        if (TargetUri is null || Method is null || !Uri.TryCreate(TargetUri, UriKind.Absolute, out var uri))
        {
            return null;
        }

        return component switch
        {
            "@method" => Method,
            "@target-uri" => TargetUri,
            "@authority" => uri.IsDefaultPort ? uri.Host.ToLowerInvariant() : $"{uri.Host.ToLowerInvariant()}:{uri.Port.ToString(CultureInfo.InvariantCulture)}",
            "@scheme" => uri.Scheme.ToLowerInvariant(),
            "@path" => uri.AbsolutePath.Length == 0 ? "/" : uri.AbsolutePath,
            "@query" => uri.Query.Length == 0 ? "?" : uri.Query,
            _ => null,
        };
    }
}

/// <summary>RFC 9421 section 2.5 "Creating the Signature Base".</summary>
public static class SignatureBase
{
    /// <summary>
    /// The signature base: one line <c>"component": value</c> per covered component, then
    /// <c>"@signature-params": </c> and the serialised inner list; lines joined by LF, no trailing LF. Null when a
    /// covered component is missing from the message (section 2.5 step 2.4: the signer must fail).
    /// </summary>
    public static string? Create(HttpMessageComponents message, IReadOnlyList<string> components, string signatureParams)
    {
        ArgumentNullException.ThrowIfNull(message);
        ArgumentNullException.ThrowIfNull(components);
        var sb = new StringBuilder();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (string c in components)
        {
            if (!seen.Add(c) || c == "@signature-params")
            {
                return null;
            }

            string? v = message.Value(c);
            if (v is null || v.Any(ch => ch < 0x20 || ch > 0x7e))
            {
                return null;
            }

            sb.Append(StructuredFields.SerializeString(c)).Append(": ").Append(v).Append('\n');
        }

        sb.Append("\"@signature-params\": ").Append(signatureParams);
        return sb.ToString();
    }
}
