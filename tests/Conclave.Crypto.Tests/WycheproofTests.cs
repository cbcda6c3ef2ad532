using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Conclave.Crypto.Ed25519;
using Conclave.Crypto.Kdf;
using Conclave.Crypto.Secp256k1;

namespace Conclave.Crypto.Tests;

/// <summary>Every Wycheproof vector the foundation uses gives its expected result (tests/vectors/wycheproof, C2SP/wycheproof).</summary>
public sealed class WycheproofTests
{
    private static JsonNode Load(string file) => JsonNode.Parse(File.ReadAllText(RepoPaths.Vector("wycheproof/" + file)))!;

    private static IEnumerable<(JsonNode Group, JsonNode Test)> Cases(string file)
    {
        foreach (JsonNode? g in Load(file)["testGroups"]!.AsArray())
        {
            foreach (JsonNode? t in g!["tests"]!.AsArray())
            {
                yield return (g, t!);
            }
        }
    }

    private static void Check(string file, Func<JsonNode, JsonNode, bool> verify, int minimumCases)
    {
        var wrong = new List<string>();
        int count = 0;
        foreach ((JsonNode g, JsonNode t) in Cases(file))
        {
            count++;
            string expected = t["result"]!.GetValue<string>();
            bool got;
            try
            {
                got = verify(g, t);
            }
            catch (CryptoFormatException)
            {
                got = false;
            }

            if ((expected == "valid" && !got) || (expected == "invalid" && got))
            {
                wrong.Add($"tcId {t["tcId"]} ({t["comment"]}): expected {expected}, got {got}");
            }
        }

        Assert.True(count >= minimumCases, $"{file}: only {count} cases read");
        Assert.True(wrong.Count == 0, $"{file}: {wrong.Count} wrong\n" + string.Join('\n', wrong.Take(20)));
    }

    private static byte[] PublicKey(JsonNode g) => Hex.Decode(g["publicKey"]!["uncompressed"]!.GetValue<string>());

    [Fact]
    public void EcdsaSecp256k1Sha256_Der_PlainEcdsa() => Check("ecdsa_secp256k1_sha256_test.json", (g, t) =>
        EcdsaSecp256k1.VerifyDer(PublicKey(g), SHA256.HashData(Hex.Decode(t["msg"]!.GetValue<string>())), Hex.Decode(t["sig"]!.GetValue<string>()), allowHighS: true), 400);

    [Fact]
    public void EcdsaSecp256k1Sha256_Bitcoin_LowSOnly() => Check("ecdsa_secp256k1_sha256_bitcoin_test.json", (g, t) =>
        EcdsaSecp256k1.VerifyDer(PublicKey(g), SHA256.HashData(Hex.Decode(t["msg"]!.GetValue<string>())), Hex.Decode(t["sig"]!.GetValue<string>()), allowHighS: false), 400);

    [Fact]
    public void EcdsaSecp256k1Sha256_P1363() => Check("ecdsa_secp256k1_sha256_p1363_test.json", (g, t) =>
        EcdsaSecp256k1.VerifyAllowHighS(PublicKey(g), SHA256.HashData(Hex.Decode(t["msg"]!.GetValue<string>())), Hex.Decode(t["sig"]!.GetValue<string>())), 200);

    [Fact]
    public void Ed25519_StrictVerification() => Check("ed25519_test.json", (g, t) =>
        Ed25519Signature.Instance.Verify(Hex.Decode(g["publicKey"]!["pk"]!.GetValue<string>()), Hex.Decode(t["msg"]!.GetValue<string>()), Hex.Decode(t["sig"]!.GetValue<string>())), 100);

    [Fact]
    public void X25519_SharedSecrets()
    {
        // "acceptable" cases (twists, non-canonical u) may go either way; low-order results must be refused.
        Check("x25519_test.json", (g, t) =>
        {
            using var shared = X25519.SharedSecret(Hex.Decode(t["private"]!.GetValue<string>()), Hex.Decode(t["public"]!.GetValue<string>()));
            return shared.ReadOnlySpan.SequenceEqual(Hex.Decode(t["shared"]!.GetValue<string>()));
        }, 100);
    }

    [Fact]
    public void HkdfSha256()
    {
        Check("hkdf_sha256_test.json", (g, t) =>
        {
            int size = t["size"]!.GetValue<int>();
            if (size > 255 * 32)
            {
                return false; // RFC 5869: L must be at most 255·HashLen
            }

            byte[] okm = new byte[size];
            HKDF.DeriveKey(HashAlgorithmName.SHA256, Hex.Decode(t["ikm"]!.GetValue<string>()), okm,
                Hex.Decode(t["salt"]!.GetValue<string>()), Hex.Decode(t["info"]!.GetValue<string>()));
            return okm.AsSpan().SequenceEqual(Hex.Decode(t["okm"]!.GetValue<string>()));
        }, 50);
    }

    [Fact]
    public void AesGcm_AsTheEnvelopeUsesIt()
    {
        // The envelope uses 96-bit nonces and 128-bit tags only; other sizes must be refused.
        Check("aes_gcm_test.json", (g, t) =>
        {
            int ivSize = g["ivSize"]!.GetValue<int>();
            int tagSize = g["tagSize"]!.GetValue<int>();
            if (ivSize != 96 || tagSize != 128)
            {
                // Outside what the envelope uses: .NET's AesGcm must refuse these sizes outright.
                bool refused = false;
                try
                {
                    using var other = new AesGcm(Hex.Decode(t["key"]!.GetValue<string>()), tagSize / 8);
                    other.Decrypt(Hex.Decode(t["iv"]!.GetValue<string>()), Array.Empty<byte>(), Hex.Decode(t["tag"]!.GetValue<string>()), Array.Empty<byte>(), null);
                }
                catch (ArgumentException)
                {
                    refused = true;
                }
                catch (CryptographicException)
                {
                    refused = true;
                }

                Assert.True(refused, $"tcId {t["tcId"]}: unsupported sizes were not refused");
                return t["result"]!.GetValue<string>() == "valid"; // not applicable to the envelope: refusal asserted above
            }

            byte[] ct = Hex.Decode(t["ct"]!.GetValue<string>());
            byte[] pt = new byte[ct.Length];
            using var gcm = new AesGcm(Hex.Decode(t["key"]!.GetValue<string>()), 16);
            try
            {
                gcm.Decrypt(Hex.Decode(t["iv"]!.GetValue<string>()), ct, Hex.Decode(t["tag"]!.GetValue<string>()), pt, Hex.Decode(t["aad"]!.GetValue<string>()));
            }
            catch (AuthenticationTagMismatchException)
            {
                return false;
            }

            return pt.AsSpan().SequenceEqual(Hex.Decode(t["msg"]!.GetValue<string>()));
        }, 100);
    }
}
