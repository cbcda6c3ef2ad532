namespace Conclave.Crypto;

/// <summary>
/// Malformed or invalid cryptographic input: a key, point, scalar, signature or length that fails validation.
/// Messages name the parameter and the expected form, never the value.
/// </summary>
public sealed class CryptoFormatException : Exception
{
    public CryptoFormatException() : base("invalid cryptographic input") { ParameterName = "input"; }

    public CryptoFormatException(string message) : base(message) { ParameterName = "input"; }

    public CryptoFormatException(string message, Exception innerException) : base(message, innerException) { ParameterName = "input"; }

    public CryptoFormatException(string parameterName, string message) : base(message)
    {
        ParameterName = parameterName;
    }

    /// <summary>The name of the offending parameter or field.</summary>
    public string ParameterName { get; } = "input";
}

/// <summary>An operation failed for a reason other than malformed input (for example a failed entropy health test).</summary>
public sealed class CryptoOperationException : Exception
{
    public CryptoOperationException() : base("cryptographic operation failed") { }

    public CryptoOperationException(string message) : base(message) { }

    public CryptoOperationException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>All exceptions of Conclave.Crypto are built here, so none carries a secret value.</summary>
internal static class CryptoErrors
{
    internal static CryptoFormatException InvalidLength(string parameter, int actual, int expected)
        => new(parameter, $"{parameter} must be {expected} bytes, got {actual}");

    internal static CryptoFormatException InvalidLength(string parameter, int actual, string expected)
        => new(parameter, $"{parameter} must be {expected}, got {actual} bytes");

    internal static CryptoFormatException InvalidScalar(string parameter, int actual, int expected)
        => actual != expected
            ? InvalidLength(parameter, actual, expected)
            : new(parameter, $"{parameter} is not a canonical scalar (it must be less than the group order)");

    internal static CryptoFormatException ZeroScalar(string parameter)
        => new(parameter, $"{parameter} must not be zero");

    internal static CryptoFormatException InvalidPoint(string parameter, string reason)
        => new(parameter, $"{parameter} is not a valid point: {reason}");

    internal static CryptoFormatException InvalidPrivateKey(string parameter)
        => new(parameter, $"{parameter} is not a valid private key (zero or not less than the group order)");

    internal static CryptoFormatException InvalidSignature(string parameter, string reason)
        => new(parameter, $"{parameter} is not a valid signature encoding: {reason}");

    internal static CryptoFormatException Identity(string parameter)
        => new(parameter, $"{parameter} is the identity element");

    internal static ObjectDisposedException Disposed(string typeName)
        => new(typeName);
}
