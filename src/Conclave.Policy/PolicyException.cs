namespace Conclave.Policy;

/// <summary>
/// A policy document, venue profile, principal, request or signed HTTP message that fails validation. <see cref="Code"/>
/// is a stable machine-readable code (for problem+json "type" and CLI exit lines), <see cref="Path"/> names the
/// offending field (a JSON path such as <c>rules[2].limits.velocity[0].window</c>); messages never carry values that
/// could be secret.
/// </summary>
public sealed class PolicyFormatException : Exception
{
    public PolicyFormatException() : base("invalid policy input") { Code = "invalid"; Path = "$"; }

    public PolicyFormatException(string message) : base(message) { Code = "invalid"; Path = "$"; }

    public PolicyFormatException(string message, Exception innerException) : base(message, innerException) { Code = "invalid"; Path = "$"; }

    public PolicyFormatException(string code, string path, string message) : base($"{path}: {message}")
    {
        Code = code;
        Path = path;
    }

    /// <summary>A stable code: <c>invalid-json</c>, <c>unknown-field</c>, <c>missing-field</c>, <c>invalid-value</c>, <c>unsupported</c>.</summary>
    public string Code { get; }

    /// <summary>The JSON path or parameter name of the offending field.</summary>
    public string Path { get; }
}

/// <summary>Every exception Conclave.Policy throws is built here; messages name fields, never their values.</summary>
internal static class PolicyErrors
{
    public static PolicyFormatException UnknownField(string path) => new("unknown-field", path, "unknown field (policy documents refuse fields they do not define)");

    public static PolicyFormatException Missing(string path) => new("missing-field", path, "required field is missing");

    public static PolicyFormatException Invalid(string path, string expected) => new("invalid-value", path, $"invalid value: expected {expected}");

    public static PolicyFormatException Json(string what, Exception inner) => new("invalid-json", "$", $"{what} is not valid JSON ({inner.GetType().Name})");

    public static PolicyFormatException Unsupported(string path, string what) => new("unsupported", path, $"unsupported {what}");
}
