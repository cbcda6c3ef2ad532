using Conclave.Client;
using Conclave.Policy.HttpSignatures;

namespace Conclave.Keeper;

/// <summary>
/// The agent's credential file as <c>conclave agents add --key-out FILE</c> writes it (docs/POLICY.md "Clients"), read
/// with the client library's <see cref="CredentialFile"/> (owner-only file, key bytes zeroed once the signing key holds
/// them); a file that cannot be used is one line naming it and what is wrong.
/// </summary>
internal static class AgentCredential
{
    public static (HttpSigningKey Key, string KeyId, string Principal) Load(string path)
    {
        try
        {
            return CredentialFile.Load(path, "--credential");
        }
        catch (CredentialFileException e)
        {
            throw new KeeperUsageException(e.Message);
        }
    }
}
