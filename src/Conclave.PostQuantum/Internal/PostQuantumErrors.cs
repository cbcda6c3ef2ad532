using Conclave.Crypto;

namespace Conclave.PostQuantum.Internal;

/// <summary>Every exception Conclave.PostQuantum throws is built here: messages name parameters, never values.</summary>
internal static class PostQuantumErrors
{
    internal static CryptoFormatException InvalidLength(string parameter, int actual, int expected)
        => new(parameter, $"{parameter} must be {expected} bytes, got {actual}");

    internal static CryptoFormatException ContextTooLong(string parameter, int actual)
        => new(parameter, $"{parameter} must be at most {MaxContextLength} bytes (FIPS 204/205 context string), got {actual}");

    internal static CryptoFormatException InvalidPrivateKey(string parameter, string component)
        => new(parameter, $"{parameter} is not a valid private key: the {component} component is invalid");

    internal static CryptoFormatException InvalidSubjectPublicKeyInfo(string reason)
        => new("subjectPublicKeyInfo", $"subjectPublicKeyInfo is not valid: {reason}");

    internal static NotSupportedException NoObjectIdentifier(string scheme)
        => new($"the scheme {scheme} has no assigned object identifier, so it has no SubjectPublicKeyInfo encoding");

    internal static CryptoOperationException SignatureFailed(string scheme)
        => new($"{scheme}: the produced signature did not verify; no signature is returned");

    internal const int MaxContextLength = 255;
}
