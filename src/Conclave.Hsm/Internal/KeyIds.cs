using System.Text;

namespace Conclave.Hsm.Internal;

/// <summary>
/// Conclave key ids as stored on the token: CKA_LABEL and CKA_ID both carry the id's ASCII bytes, so operators see
/// the same name in vendor tools and Conclave finds keys by it after a restart.
/// </summary>
internal static class KeyIds
{
    internal const int MaxLength = 64;

    /// <summary>1 to 64 characters from [A-Za-z0-9._:/-], starting with a letter or digit.</summary>
    internal static void Validate(string keyId, string parameterName)
    {
        ArgumentNullException.ThrowIfNull(keyId, parameterName);
        if (keyId.Length is 0 or > MaxLength)
        {
            throw new ArgumentException($"{parameterName} must be 1 to {MaxLength} characters, got {keyId.Length}", parameterName);
        }

        if (!char.IsAsciiLetterOrDigit(keyId[0]))
        {
            throw new ArgumentException($"{parameterName} must start with an ASCII letter or digit", parameterName);
        }

        foreach (char c in keyId)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c is not ('.' or '_' or ':' or '/' or '-'))
            {
                throw new ArgumentException($"{parameterName} may contain only ASCII letters, digits and . _ : / -", parameterName);
            }
        }
    }

    internal static byte[] ToBytes(string keyId) => Encoding.ASCII.GetBytes(keyId);
}
