using Conclave.Crypto;

namespace Conclave.Chains;

/// <summary>Every exception Conclave.Chains throws is built here; messages name parameters, never values.</summary>
internal static class ChainErrors
{
    public static CryptoFormatException Format(string parameterName, string message) => new(parameterName, $"{parameterName}: {message}");

    public static CryptoFormatException Hardened(string parameterName) =>
        new(parameterName, $"{parameterName}: hardened derivation needs the private key; only non-hardened indexes (below 2^31) can be derived from a public key");
}
