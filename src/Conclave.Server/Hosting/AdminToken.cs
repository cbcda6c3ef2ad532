using System.Security.Cryptography;
using Conclave.Node.Pki;

namespace Conclave.Server.Hosting;

/// <summary>
/// The admin bearer token made at first start: 32 random bytes, base64url. The server keeps only its SHA-256;
/// the token itself is written once to a file readable by its owner only.
/// </summary>
public sealed class AdminToken
{
    private readonly byte[] _hash;

    private AdminToken(byte[] hash) => _hash = hash;

    public static AdminToken LoadOrCreate(string serverDataDir, out string tokenFilePath)
    {
        Directory.CreateDirectory(serverDataDir);
        string hashPath = Path.Combine(serverDataDir, "admin-token.sha256");
        tokenFilePath = Path.Combine(serverDataDir, "admin-token");
        if (File.Exists(hashPath))
        {
            return new AdminToken(Convert.FromHexString(File.ReadAllText(hashPath).Trim()));
        }

        byte[] raw = RandomNumberGenerator.GetBytes(32);
        string token = "cnv_" + Convert.ToBase64String(raw).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        CryptographicOperations.ZeroMemory(raw);
        byte[] hash = SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(token));
        PemFiles.WriteSecretFile(tokenFilePath, token + "\n");
        File.WriteAllText(hashPath, Convert.ToHexStringLower(hash));
        return new AdminToken(hash);
    }

    /// <summary>Constant-time check of a presented token.</summary>
    public bool Matches(string? presented)
    {
        if (string.IsNullOrEmpty(presented))
        {
            return false;
        }

        byte[] h = SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(presented));
        return CryptographicOperations.FixedTimeEquals(h, _hash);
    }
}
