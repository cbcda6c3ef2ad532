using System.Security.Cryptography;
using System.Text.Json;
using Conclave.Client;
using Conclave.Server.Hosting;

namespace Conclave.Cli.Commands;

/// <summary>
/// The development cluster's approver of policy changes (<c>conclave up</c>, <see cref="LocalClusterLayout.DevelopmentApprover"/>):
/// a person principal with the role approver, created through the API as the admin (so it is audited like any
/// principal), with an Ed25519 credential whose file sits in DIR/server beside the admin token. Each start renews the
/// credential's lease (the longest the server allows); a file whose credential the server no longer knows, or no
/// file, gets a fresh credential.
/// </summary>
internal static class DevelopmentApprover
{
    private const long LeaseSeconds = 90L * 24 * 3600;

    /// <summary>Ensures the principal and a live credential in <paramref name="credentialFile"/>; returns its path.</summary>
    public static async Task<string> EnsureAsync(Uri api, string adminTokenFile, string? caFile, string credentialFile, CancellationToken ct)
    {
        string token = (await File.ReadAllTextAsync(adminTokenFile, ct).ConfigureAwait(false)).Trim();
        using System.Security.Cryptography.X509Certificates.X509Certificate2? ca = caFile is null ? null : Conclave.Node.Pki.PemFiles.LoadCertificate(caFile);
        using ConclaveClient client = ca is null ? new ConclaveClient(api, token) : new ConclaveClient(api, token, ca);
        string id = LocalClusterLayout.DevelopmentApprover;
        try
        {
            _ = await client.GetPrincipalAsync(id, ct).ConfigureAwait(false);
        }
        catch (ConclaveApiException e) when (e.Status == 404)
        {
            _ = await client.CreatePrincipalAsync(new CreatePrincipalRequest(id, "person", ["approver"]), ct).ConfigureAwait(false);
        }

        if (File.Exists(credentialFile) && KeyIdIn(credentialFile) is { } keyId)
        {
            try
            {
                _ = await client.RenewCredentialAsync(id, keyId, LeaseSeconds, ct).ConfigureAwait(false);
                return credentialFile;
            }
            catch (ConclaveApiException e) when (e.Status is 404 or 409 or 410)
            {
                // Revoked, lapsed or unknown (a new store): a fresh credential below.
            }
        }

        (byte[] privateKey, byte[] publicKey) = CredentialFile.NewKeyPair("ed25519");
        try
        {
            CredentialInfo c = await client.AddCredentialAsync(id, new AddCredentialRequest("ed25519", Convert.ToBase64String(publicKey), null, LeaseSeconds), ct).ConfigureAwait(false);
            File.Delete(credentialFile);
            PrincipalCredential.Write(credentialFile, id, c.KeyId, "ed25519", privateKey, publicKey);
            return credentialFile;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(privateKey);
        }
    }

    /// <summary>The key id a credential file names; null if it cannot be read as one.</summary>
    private static string? KeyIdIn(string file)
    {
        try
        {
            using JsonDocument doc = JsonDocument.Parse(File.ReadAllBytes(file));
            return doc.RootElement.TryGetProperty("keyId", out JsonElement k) && k.ValueKind == JsonValueKind.String ? k.GetString() : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
