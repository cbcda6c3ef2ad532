using Conclave.Crypto;

namespace Conclave.Wallets;

/// <summary>
/// Every exception Conclave.Wallets throws for bad input is built here. Messages name the parameter, the position
/// and what is wrong, never a value: a mnemonic word, a seed or a private key is a secret, and even a mistyped
/// word is part of one. Bad input is a <see cref="CryptoFormatException"/>, so callers (and the CLI) handle
/// wallet input errors like any other malformed cryptographic input.
/// </summary>
internal static class WalletErrors
{
    internal static CryptoFormatException WordCount(int actual)
        => new("mnemonic", $"mnemonic must have 12, 15, 18, 21 or 24 words, got {actual}");

    private const string NoNormalizationHint = " (Unicode NFKD normalization is unavailable in this process because it runs with InvariantGlobalization; enter the words in NFKD form or run with ICU)";

    internal static CryptoFormatException UnknownWord(int position, string wordlist, bool normalizationUnavailable)
        => new("mnemonic", $"mnemonic word {position} is not in the {wordlist} wordlist" + (normalizationUnavailable ? NoNormalizationHint : string.Empty));

    internal static CryptoFormatException NoWordlist(int position, bool normalizationUnavailable)
        => new("mnemonic", $"mnemonic word {position} is not in any BIP-39 wordlist" + (normalizationUnavailable ? NoNormalizationHint : string.Empty));

    internal static CryptoFormatException Checksum()
        => new("mnemonic", "mnemonic checksum does not match (a word is wrong or the words are out of order)");

    internal static CryptoFormatException EntropyLength(int actual)
        => new("entropy", $"entropy must be 16, 20, 24, 28 or 32 bytes, got {actual}");

    internal static CryptoFormatException NormalizationUnavailable(string parameter)
        => new(parameter, $"{parameter} contains non-ASCII characters but Unicode NFKD normalization is unavailable in this process (InvariantGlobalization is on); run with ICU to use it");

    internal static CryptoFormatException Wordlist(string reason)
        => new("words", $"wordlist is invalid: {reason}");

    internal static CryptoFormatException UnknownLanguage()
        => new("language", "unknown BIP-39 wordlist language (expected one of: " + string.Join(", ", Bip39.Bip39Wordlist.LanguageNames) + ")");

    internal static CryptoFormatException SeedLength(int actual)
        => new("seed", $"seed must be 16 to 64 bytes, got {actual}");

    internal static CryptoFormatException Path(string reason)
        => new("path", $"invalid key path: {reason}");

    internal static CryptoFormatException HardenedOnly(string curve, int depth)
        => Path($"{curve} (SLIP-10) derives hardened children only; the index at depth {depth} is not hardened");

    internal static CryptoFormatException HardenedFromPublic(int depth)
        => Path($"a hardened child cannot be derived from a public key (index at depth {depth} is hardened); use the private key");

    internal static CryptoFormatException DepthOverflow()
        => Path("derivation deeper than 255 levels cannot be serialized (BIP-32 depth is one byte)");

    internal static CryptoFormatException ExtendedKey(string reason)
        => new("extendedKey", $"invalid extended key: {reason}");

    internal static CryptoFormatException Base58(string reason)
        => new("base58", $"invalid Base58 text: {reason}");

    internal static CryptoFormatException UnsupportedCurve(string curve, string operation)
        => new("curve", $"{operation} is not defined for {curve}");

    internal static CryptoFormatException UnknownCurve()
        => new("curve", "unknown curve (expected secp256k1, nist256p1, ed25519 or curve25519)");

    internal static CryptoFormatException PublicKey(string parameter, string reason)
        => new(parameter, $"{parameter} is not a valid public key: {reason}");

    internal static ObjectDisposedException Disposed(string typeName) => new(typeName);
}
