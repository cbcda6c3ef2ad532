using System.Security.Cryptography;

namespace Conclave.Policy.HttpSignatures;

/// <summary>
/// RFC 9530 Content-Digest (section 2): a Dictionary of algorithm keys to byte sequences of the digest of the content.
/// Conclave writes <c>sha-256</c>; a verifier requires <c>sha-256</c> and checks <c>sha-512</c> too when present
/// (section 5 "Hash Algorithm Considerations" registers both); other keys are ignored.
/// </summary>
public static class ContentDigest
{
    public static string Create(ReadOnlySpan<byte> content) => "sha-256=:" + Convert.ToBase64String(SHA256.HashData(content)) + ":";

    /// <summary>True when the header parses, carries sha-256, and every sha-256/sha-512 member matches the content.</summary>
    public static bool Verify(string? header, ReadOnlySpan<byte> content)
    {
        if (string.IsNullOrEmpty(header))
        {
            return false;
        }

        IReadOnlyList<KeyValuePair<string, SfMember>> dict;
        try
        {
            dict = StructuredFields.ParseDictionary(header);
        }
        catch (FormatException)
        {
            return false;
        }

        bool sawSha256 = false;
        foreach (var (alg, member) in dict)
        {
            byte[]? expected = alg switch
            {
                "sha-256" => SHA256.HashData(content),
                "sha-512" => SHA512.HashData(content),
                _ => null,
            };
            if (expected is null)
            {
                continue;
            }

            if (member.Item?.Bytes is not { } given || !CryptographicOperations.FixedTimeEquals(given, expected))
            {
                return false;
            }

            sawSha256 |= alg == "sha-256";
        }

        return sawSha256;
    }
}
