using System.Net;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Conclave.Policy.HttpSignatures;
using Conclave.Testing;

namespace Conclave.Server.Tests;

/// <summary>
/// People (approvers) with a credential, for the CLI's <c>--credential FILE</c>: the principal is made through the API,
/// its key pair here, and the private key written to a credential file in the format <c>conclave agents add --key-out</c>
/// writes (principal, keyId, algorithm, privateKey, publicKey; mode 600).
/// </summary>
internal static class PrincipalCredentialFiles
{
    /// <summary>A credential file and the key it holds (the caller disposes the key).</summary>
    internal sealed record Made(string Path, string KeyId, HttpSigningKey Key);

    /// <summary>
    /// Makes person <paramref name="id"/> with <paramref name="roles"/> (a JSON array) through <paramref name="admin"/>,
    /// registers a key of <paramref name="algorithm"/> (ed25519 from the run seed, or a fresh ecdsa-p256-sha256 key), and
    /// writes its credential file as <paramref name="dir"/>/<paramref name="id"/>.json.
    /// </summary>
    internal static async Task<Made> PersonAsync(HttpClient admin, string dir, string id, string roles = """["approver"]""", string algorithm = "ed25519",
        [CallerMemberName] string test = "")
    {
        using (var made = await admin.PostAsync("/v1/principals", Json($$$"""{"id":"{{{id}}}","kind":"person","roles":{{{roles}}},"scope":{"keys":["*"],"operations":["*"]}}""")))
        {
            Assert.True(made.StatusCode == HttpStatusCode.Created, await made.Content.ReadAsStringAsync());
        }

        byte[] privateKey;
        HttpSigningKey key;
        if (algorithm == "ed25519")
        {
            privateKey = TestSeed.Bytes(32, "credential " + id, test);
            key = HttpSigningKey.Ed25519FromSeed(privateKey);
        }
        else
        {
            var ecdsa = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            privateKey = ecdsa.ExportPkcs8PrivateKey();
            key = HttpSigningKey.EcdsaP256(ecdsa);
        }

        string publicKey = Convert.ToBase64String([.. key.PublicKey.PublicKey]);
        using var cred = await admin.PostAsync($"/v1/principals/{id}/credentials", Json($$"""{"algorithm":"{{algorithm}}","publicKey":"{{publicKey}}"}"""));
        string text = await cred.Content.ReadAsStringAsync();
        Assert.True(cred.StatusCode == HttpStatusCode.Created, text);
        string keyId = JsonNode.Parse(text)!["keyId"]!.GetValue<string>();
        string path = System.IO.Path.Combine(dir, id + ".json");
        var doc = new JsonObject
        {
            ["principal"] = id,
            ["keyId"] = keyId,
            ["algorithm"] = algorithm,
            ["privateKey"] = Convert.ToBase64String(privateKey),
            ["publicKey"] = publicKey,
        };
        Conclave.Storage.OwnerOnly.WriteAllText(path, doc.ToJsonString() + "\n");
        return new Made(path, keyId, key);
    }

    /// <summary>Writes <paramref name="text"/> as a credential file readable by its owner only.</summary>
    internal static string Write(string dir, string name, string text)
    {
        string path = System.IO.Path.Combine(dir, name);
        Conclave.Storage.OwnerOnly.WriteAllText(path, text);
        return path;
    }

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");
}
