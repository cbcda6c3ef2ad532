using System.Security.Cryptography;
using Conclave.Client;
using Conclave.Policy.HttpSignatures;

namespace Conclave.Cli.Commands;

/// <summary>
/// The CLI's use of a principal's credential file (<see cref="CredentialFile"/>, the format <c>conclave agents add
/// --key-out FILE</c> writes): a file that cannot be used is one readable line and exit 2.
/// </summary>
internal static class PrincipalCredential
{
    /// <inheritdoc cref="CredentialFile.Load"/>
    public static (HttpSigningKey Key, string KeyId, string Principal) Load(string path, string source)
    {
        try
        {
            return CredentialFile.Load(path, source);
        }
        catch (CredentialFileException e)
        {
            throw new CliUsageException(e.Message);
        }
    }

    /// <summary>Writes a credential file readable by its owner only; the encoded bytes are zeroed once written.</summary>
    public static void Write(string file, string principal, string keyId, string algorithm, ReadOnlySpan<byte> privateKey, ReadOnlySpan<byte> publicKey)
    {
        byte[] bytes = CredentialFile.Encode(principal, keyId, algorithm, privateKey, publicKey);
        try
        {
            Conclave.Storage.OwnerOnly.WriteAllBytes(file, bytes);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(bytes);
        }
    }
}
