using System.Security.Cryptography;
using System.Text.Json;
using Conclave.Policy.HttpSignatures;

namespace Conclave.Keeper;

/// <summary>
/// The agent's credential file as <c>conclave agents add --key-out FILE</c> writes it (docs/POLICY.md "Clients"):
/// <c>principal</c>, <c>keyId</c>, <c>algorithm</c> (<c>ed25519</c> or <c>ecdsa-p256-sha256</c>) and <c>privateKey</c>
/// (the Ed25519 seed or the P-256 PKCS#8 key, base64). The private key bytes are zeroed once the signing key holds them.
/// </summary>
internal static class AgentCredential
{
    public static (HttpSigningKey Key, string KeyId, string Principal) Load(string path)
    {
        byte[] file;
        try
        {
            file = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new KeeperUsageException($"--credential {path}: cannot be read ({e.GetType().Name}); make it with `conclave agents add ID --key-out FILE`");
        }

        byte[]? secret = null;
        try
        {
            using JsonDocument doc = JsonDocument.Parse(file);
            JsonElement root = doc.RootElement;
            string principal = Text(root, "principal", path);
            string keyId = Text(root, "keyId", path);
            string algorithm = Text(root, "algorithm", path);
            try
            {
                secret = Convert.FromBase64String(Text(root, "privateKey", path));
            }
            catch (FormatException)
            {
                throw new KeeperUsageException($"--credential {path}: privateKey is not base64");
            }

            HttpSigningKey key = algorithm switch
            {
                "ed25519" when secret.Length == 32 => HttpSigningKey.Ed25519FromSeed(secret),
                "ecdsa-p256-sha256" => P256(secret, path),
                _ => throw new KeeperUsageException($"--credential {path}: algorithm must be ed25519 (a 32-byte seed) or ecdsa-p256-sha256"),
            };
            return (key, keyId, principal);
        }
        catch (JsonException)
        {
            throw new KeeperUsageException($"--credential {path}: not a JSON credential file");
        }
        finally
        {
            CryptographicOperations.ZeroMemory(file);
            if (secret is not null)
            {
                CryptographicOperations.ZeroMemory(secret);
            }
        }
    }

    private static HttpSigningKey P256(byte[] pkcs8, string path)
    {
        var ecdsa = ECDsa.Create();
        try
        {
            ecdsa.ImportPkcs8PrivateKey(pkcs8, out _);
            return HttpSigningKey.EcdsaP256(ecdsa);
        }
        catch (CryptographicException)
        {
            ecdsa.Dispose();
            throw new KeeperUsageException($"--credential {path}: privateKey is not a P-256 PKCS#8 key");
        }
        catch
        {
            ecdsa.Dispose(); // not on P-256
            throw;
        }
    }

    private static string Text(JsonElement root, string member, string path) =>
        root.ValueKind == JsonValueKind.Object && root.TryGetProperty(member, out JsonElement e) && e.ValueKind == JsonValueKind.String && e.GetString() is { Length: > 0 } s
            ? s
            : throw new KeeperUsageException($"--credential {path}: member {member} is missing");
}
