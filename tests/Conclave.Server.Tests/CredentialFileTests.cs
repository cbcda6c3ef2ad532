using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Conclave.Client;
using Conclave.Policy.HttpSignatures;

namespace Conclave.Server.Tests;

/// <summary>
/// The credential file format written by <c>conclave agents add --key-out</c>, <c>conclave up</c> and the demo
/// (<see cref="CredentialFile.Encode"/>) and read by the CLI's <c>--credential</c> and the keeper example
/// (<see cref="CredentialFile.Load"/>): what is written reads back as the same key, as plain JSON a reader of the
/// documented format takes.
/// </summary>
public sealed class CredentialFileTests
{
    [Theory]
    [InlineData("ed25519")]
    [InlineData("ecdsa-p256-sha256")]
    public void An_encoded_credential_is_the_documented_JSON_and_loads_as_the_same_key(string algorithm)
    {
        (byte[] privateKey, byte[] publicKey) = CredentialFile.NewKeyPair(algorithm);
        byte[] encoded = CredentialFile.Encode("agent-7", "key.1:x@y", algorithm, privateKey, publicKey);
        string dir = Directory.CreateTempSubdirectory("conclave-cred-").FullName;
        try
        {
            JsonObject doc = JsonNode.Parse(encoded)!.AsObject();
            Assert.Equal(["principal", "keyId", "algorithm", "privateKey", "publicKey"], doc.Select(p => p.Key).ToArray());
            Assert.Equal("agent-7", doc["principal"]!.GetValue<string>());
            Assert.Equal("key.1:x@y", doc["keyId"]!.GetValue<string>());
            Assert.Equal(algorithm, doc["algorithm"]!.GetValue<string>());
            Assert.Equal(privateKey, Convert.FromBase64String(doc["privateKey"]!.GetValue<string>()));
            Assert.Equal(publicKey, Convert.FromBase64String(doc["publicKey"]!.GetValue<string>()));
            Assert.EndsWith("}\n", Encoding.UTF8.GetString(encoded), StringComparison.Ordinal);

            string path = Path.Combine(dir, "c.json");
            Conclave.Storage.OwnerOnly.WriteAllBytes(path, encoded);
            (HttpSigningKey key, string keyId, string principal) = CredentialFile.Load(path, "--credential");
            using (key)
            {
                Assert.Equal(("key.1:x@y", "agent-7"), (keyId, principal));
                Assert.Equal(publicKey, key.PublicKey.PublicKey.ToArray());
            }

            // The file is refused once others may read it, with one line naming it and never its contents.
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead);
                CredentialFileException e = Assert.Throws<CredentialFileException>(() => CredentialFile.Load(path, "--credential"));
                Assert.StartsWith($"--credential {path}: is accessible by users other than its owner", e.Message, StringComparison.Ordinal);
                Assert.DoesNotContain(doc["privateKey"]!.GetValue<string>(), e.Message, StringComparison.Ordinal);
                Assert.DoesNotContain('\n', e.Message);
            }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(privateKey);
            CryptographicOperations.ZeroMemory(encoded);
            Directory.Delete(dir, recursive: true);
        }
    }
}
