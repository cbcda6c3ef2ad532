using System.Text;

namespace Conclave.Wallets.Internal;

/// <summary>
/// NFKD normalization as BIP-39 requires it ("Wordlist" and "From mnemonic to seed": UTF-8 NFKD), made safe for
/// processes that run with <c>InvariantGlobalization</c>. In invariant mode .NET does not load ICU and
/// <see cref="string.Normalize(NormalizationForm)"/> silently returns its input unchanged, which would derive a
/// different seed for a non-ASCII mnemonic or passphrase. So normalization is probed once; when it is unavailable,
/// ASCII text (which NFKD leaves unchanged) is still accepted, and anything else is refused with a clear error
/// instead of being hashed unnormalized. The official wordlists are stored in NFKD already, so words typed in
/// NFKD form still match.
/// </summary>
internal static class UnicodeText
{
    private static readonly bool s_available = Probe();

    /// <summary>For tests: pretend normalization is unavailable on this thread.</summary>
    [ThreadStatic]
    internal static bool SimulateUnavailable;

    internal static bool NormalizationAvailable => s_available && !SimulateUnavailable;

    private static bool Probe()
    {
        try
        {
            // U+00E9 (é) decomposes to e + U+0301; U+3000 (ideographic space) to U+0020 under compatibility mapping.
            return "\u00E9\u3000".Normalize(NormalizationForm.FormKD) == "e\u0301 ";
        }
        catch (PlatformNotSupportedException)
        {
            return false;
        }
    }

    internal static bool IsAscii(string text) => Ascii.IsValid(text);

    /// <summary>NFKD of <paramref name="text"/>, or null when it is not ASCII and normalization is unavailable.</summary>
    internal static string? TryNormalizeKd(string text)
    {
        if (IsAscii(text))
        {
            return text;
        }

        return NormalizationAvailable ? text.Normalize(NormalizationForm.FormKD) : null;
    }

    /// <summary>NFKD of <paramref name="text"/>, or the input unchanged when normalization is unavailable (for lookups that fail closed anyway).</summary>
    internal static string NormalizeKdOrSame(string text) => TryNormalizeKd(text) ?? text;
}
