using System.Security.Cryptography;
using Conclave.Node.Pki;

namespace Conclave.Server.Hosting;

/// <summary>
/// A bearer token made at first start: 32 random bytes, base64url. The server keeps only its SHA-256; the token
/// itself is written once to a file readable by its owner only. Two exist: the admin token (<c>cnv_…</c>, the whole
/// API) and the metrics token (<c>cnm_…</c>, GET /metrics only, for a Prometheus scraper).
/// </summary>
public sealed class AdminToken
{
    private readonly byte[] _hash;

    private AdminToken(byte[] hash) => _hash = hash;

    public static AdminToken LoadOrCreate(string serverDataDir, out string tokenFilePath) => LoadOrCreate(serverDataDir, "admin-token", "cnv_", out tokenFilePath);

    /// <summary>The token stored as <paramref name="name"/> (and its hash as name.sha256) in the server's data folder.</summary>
    public static AdminToken LoadOrCreate(string serverDataDir, string name, string prefix, out string tokenFilePath)
    {
        Conclave.Storage.OwnerOnly.CreateDirectory(serverDataDir);
        string hashPath = Path.Combine(serverDataDir, name + ".sha256");
        tokenFilePath = Path.Combine(serverDataDir, name);
        if (File.Exists(hashPath))
        {
            return new AdminToken(Convert.FromHexString(File.ReadAllText(hashPath).Trim()));
        }

        byte[] raw = RandomNumberGenerator.GetBytes(32);
        string token = prefix + Convert.ToBase64String(raw).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        CryptographicOperations.ZeroMemory(raw);
        byte[] hash = SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(token));
        PemFiles.WriteSecretFile(tokenFilePath, token + "\n");
        Conclave.Storage.OwnerOnly.WriteAllText(hashPath, Convert.ToHexStringLower(hash));
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

/// <summary>The token that may read /metrics (and nothing else); the admin token may too.</summary>
public sealed record MetricsToken(AdminToken Token);
