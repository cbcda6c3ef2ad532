using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text.Json;
using Conclave.Policy.HttpSignatures;

namespace Conclave.Client;

/// <summary>
/// A principal's credential file, as <c>conclave agents add --key-out FILE</c> writes it (docs/POLICY.md "CLI"), read
/// by the CLI's <c>--credential</c> and by agents built on this client (examples/keeper): a JSON
/// object with <c>principal</c>, <c>keyId</c>, <c>algorithm</c> (<c>ed25519</c> or <c>ecdsa-p256-sha256</c>),
/// <c>privateKey</c> (the 32-byte Ed25519 seed or the P-256 PKCS#8 key, base64) and optionally <c>publicKey</c> (the
/// registered public key, base64; when present it must match the private key). The file must be readable by its owner
/// only. The file's bytes and the decoded private key are zeroed once the signing key holds it; no error names them.
/// </summary>
public static class CredentialFile
{
    /// <summary>A credential file is a few hundred bytes; anything over this is not one.</summary>
    private const int MaxFileBytes = 16 * 1024;

    /// <summary>
    /// Reads the credential at <paramref name="path"/>; <paramref name="source"/> names where the path came from
    /// (<c>--credential</c> or the environment variable) and starts every error line.
    /// </summary>
    public static (HttpSigningKey Key, string KeyId, string Principal) Load(string path, string source)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentException.ThrowIfNullOrEmpty(source);
        string where = $"{source} {path}";
        CheckFile(path, where);
        byte[] file = Read(path, where);
        byte[]? secret = null;
        try
        {
            using JsonDocument doc = Parse(file, where);
            JsonElement root = doc.RootElement;
            string principal = Id(root, "principal", where);
            string keyId = Id(root, "keyId", where);
            string algorithm = Member(root, "algorithm", where).GetString()!;
            if (!HttpSignatureAlgorithms.TryParse(algorithm, out HttpSignatureAlgorithm alg))
            {
                throw new CredentialFileException($"{where}: algorithm must be ed25519 or ecdsa-p256-sha256");
            }

            // Decoded straight from the file's bytes: the private key never becomes a string.
            if (!Member(root, "privateKey", where).TryGetBytesFromBase64(out secret))
            {
                throw new CredentialFileException($"{where}: privateKey is not base64");
            }

            HttpSigningKey key = alg == HttpSignatureAlgorithm.Ed25519 ? Ed25519(secret, where) : P256(secret, where);
            try
            {
                CheckPublicKey(root, key, where);
                return (key, keyId, principal);
            }
            catch
            {
                key.Dispose();
                throw;
            }
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

    /// <summary>Exists, is a file, and (on Unix) no one but its owner may read, write or run it.</summary>
    private static void CheckFile(string path, string where)
    {
        if (Directory.Exists(path))
        {
            throw new CredentialFileException($"{where}: is a folder, not a credential file");
        }

        if (!File.Exists(path))
        {
            throw new CredentialFileException($"{where}: not found; make one with 'conclave agents add ID --key-out FILE'");
        }

        if (!OperatingSystem.IsWindows())
        {
            UnixFileMode mode = File.GetUnixFileMode(path);
            const UnixFileMode others = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
                | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;
            if ((mode & others) != 0)
            {
                throw new CredentialFileException($"{where}: is accessible by users other than its owner (mode {Convert.ToString((int)mode & 0x1FF, 8)}); restrict it with chmod 600");
            }
        }
    }

    private static byte[] Read(string path, string where)
    {
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1);
            if (stream.Length > MaxFileBytes)
            {
                throw new CredentialFileException($"{where}: {stream.Length} bytes is too large for a credential file");
            }

            byte[] bytes = new byte[stream.Length];
            stream.ReadExactly(bytes);
            return bytes;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CredentialFileException($"{where}: cannot be read ({(e is UnauthorizedAccessException ? "permission denied" : e.GetType().Name)})");
        }
    }

    private static JsonDocument Parse(byte[] file, string where)
    {
        try
        {
            // Parsed in place: JsonDocument keeps offsets into the caller's bytes, not a copy of them.
            JsonDocument doc = JsonDocument.Parse(file.AsMemory());
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                doc.Dispose();
                throw new CredentialFileException($"{where}: not a credential file (a JSON object as 'conclave agents add --key-out' writes)");
            }

            return doc;
        }
        catch (JsonException)
        {
            throw new CredentialFileException($"{where}: not a credential file (a JSON object as 'conclave agents add --key-out' writes)");
        }
    }

    private static JsonElement Member(JsonElement root, string name, string where) =>
        root.TryGetProperty(name, out JsonElement e) && e.ValueKind == JsonValueKind.String && e.GetString() is { Length: > 0 }
            ? e
            : throw new CredentialFileException($"{where}: member {name} is missing or not a string");

    /// <summary>A principal id or key id: 1-128 characters from [A-Za-z0-9._:@-], as the server takes them.</summary>
    private static string Id(JsonElement root, string name, string where)
    {
        string value = Member(root, name, where).GetString()!;
        return value.Length <= 128 && value.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or ':' or '@' or '-')
            ? value
            : throw new CredentialFileException($"{where}: {name} must be 1-128 characters from [A-Za-z0-9._:@-]");
    }

    private static HttpSigningKey Ed25519(byte[] seed, string where) =>
        seed.Length == 32 ? HttpSigningKey.Ed25519FromSeed(seed) : throw new CredentialFileException($"{where}: privateKey must be a 32-byte Ed25519 seed");

    private static HttpSigningKey P256(byte[] pkcs8, string where)
    {
        var ecdsa = ECDsa.Create();
        try
        {
            ecdsa.ImportPkcs8PrivateKey(pkcs8, out int read);
            if (read != pkcs8.Length)
            {
                throw new CryptographicException();
            }

            return HttpSigningKey.EcdsaP256(ecdsa);
        }
        catch (Exception e) when (e is CryptographicException or Conclave.Policy.PolicyFormatException)
        {
            ecdsa.Dispose();
            throw new CredentialFileException($"{where}: privateKey must be a P-256 private key (PKCS#8)");
        }
        catch
        {
            ecdsa.Dispose();
            throw;
        }
    }

    /// <summary>A <c>publicKey</c> in the file must be the private key's: a file pieced together from two credentials is refused here, not by the server.</summary>
    private static void CheckPublicKey(JsonElement root, HttpSigningKey key, string where)
    {
        if (!root.TryGetProperty("publicKey", out JsonElement e))
        {
            return;
        }

        if (e.ValueKind != JsonValueKind.String || !e.TryGetBytesFromBase64(out byte[]? publicKey))
        {
            throw new CredentialFileException($"{where}: publicKey is not base64");
        }

        if (!publicKey.AsSpan().SequenceEqual([.. key.PublicKey.PublicKey]))
        {
            throw new CredentialFileException($"{where}: publicKey is not the public key of privateKey");
        }
    }

    /// <summary>A new key pair for a credential: the private key as the file holds it (Ed25519 seed, P-256 PKCS#8; the caller zeroes it) and the public key as the server registers it.</summary>
    public static (byte[] PrivateKey, byte[] PublicKey) NewKeyPair(string algorithm)
    {
        if (algorithm == "ed25519")
        {
            byte[] seed = RandomNumberGenerator.GetBytes(32);
            using HttpSigningKey k = HttpSigningKey.Ed25519FromSeed(seed);
            return (seed, [.. k.PublicKey.PublicKey]);
        }

        using var ecdsa = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        ECParameters p = ecdsa.ExportParameters(false);
        return (ecdsa.ExportPkcs8PrivateKey(), [0x04, .. p.Q.X!, .. p.Q.Y!]);
    }

    /// <summary>
    /// The bytes of a credential file in the format <see cref="Load"/> reads (UTF-8 JSON, indented, a final newline).
    /// The private key is base64-encoded straight into the returned buffer, never through a string; the caller writes
    /// the buffer to a file only its owner can read and zeroes it.
    /// </summary>
    public static byte[] Encode(string principal, string keyId, string algorithm, ReadOnlySpan<byte> privateKey, ReadOnlySpan<byte> publicKey)
    {
        ArgumentException.ThrowIfNullOrEmpty(principal);
        ArgumentException.ThrowIfNullOrEmpty(keyId);
        ArgumentException.ThrowIfNullOrEmpty(algorithm);
        byte[] head = System.Text.Encoding.UTF8.GetBytes("{\n"
            + $"  \"principal\": {JsonSerializer.Serialize(principal)},\n"
            + $"  \"keyId\": {JsonSerializer.Serialize(keyId)},\n"
            + $"  \"algorithm\": {JsonSerializer.Serialize(algorithm)},\n");
        byte[] publicText = System.Text.Encoding.ASCII.GetBytes(Convert.ToBase64String(publicKey));
        ReadOnlySpan<byte> beforeSecret = "  \"privateKey\": \""u8;
        ReadOnlySpan<byte> beforePublic = "\",\n  \"publicKey\": \""u8;
        ReadOnlySpan<byte> tail = "\"\n}\n"u8;
        int secretLength = Base64.GetMaxEncodedToUtf8Length(privateKey.Length);
        byte[] file = new byte[head.Length + beforeSecret.Length + secretLength + beforePublic.Length + publicText.Length + tail.Length];
        Span<byte> rest = file;
        Append(ref rest, head);
        Append(ref rest, beforeSecret);
        if (Base64.EncodeToUtf8(privateKey, rest, out _, out int written) != System.Buffers.OperationStatus.Done || written != secretLength)
        {
            CryptographicOperations.ZeroMemory(file);
            throw new InvalidOperationException("base64 encoding of the private key did not complete");
        }

        rest = rest[written..];
        Append(ref rest, beforePublic);
        Append(ref rest, publicText);
        Append(ref rest, tail);
        return file;

        static void Append(ref Span<byte> to, ReadOnlySpan<byte> bytes)
        {
            bytes.CopyTo(to);
            to = to[bytes.Length..];
        }
    }
}

/// <summary>A credential file that cannot be used; the message is one line naming the file and what is wrong, never its contents.</summary>
public sealed class CredentialFileException(string message) : Exception(message);
