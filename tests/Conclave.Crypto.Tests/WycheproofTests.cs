using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Conclave.Crypto.Aead;
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

    /// <summary>
    /// Runs every case of <paramref name="file"/> and asserts the exact number of cases per result, so a vector file that
    /// shrinks or a reader that skips cases fails. "acceptable" cases need a decision: <paramref name="acceptableOutcome"/>
    /// gives the outcome Conclave commits to for each one (a file with acceptable cases and no decision fails).
    /// </summary>
    private static void Check(string file, Func<JsonNode, JsonNode, bool> verify, int valid, int invalid, int acceptable,
        Func<JsonNode, bool>? acceptableOutcome = null)
    {
        var wrong = new List<string>();
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach ((JsonNode g, JsonNode t) in Cases(file))
        {
            string expected = t["result"]!.GetValue<string>();
            counts[expected] = counts.GetValueOrDefault(expected) + 1;
            bool got;
            try
            {
                got = verify(g, t);
            }
            catch (CryptoFormatException)
            {
                got = false;
            }

            bool want = expected switch
            {
                "valid" => true,
                "invalid" => false,
                "acceptable" => acceptableOutcome is not null ? acceptableOutcome(t) : throw new InvalidOperationException($"{file}: tcId {t["tcId"]} is acceptable and no decision was given"),
                _ => throw new InvalidOperationException($"{file}: unknown result {expected}"),
            };
            if (got != want)
            {
                wrong.Add($"tcId {t["tcId"]} ({t["comment"]}): expected {expected} ({want}), got {got}");
            }
        }

        Assert.Equal(valid + invalid + acceptable, Load(file)["numberOfTests"]!.GetValue<int>());
        Assert.Equal(valid, counts.GetValueOrDefault("valid"));
        Assert.Equal(invalid, counts.GetValueOrDefault("invalid"));
        Assert.Equal(acceptable, counts.GetValueOrDefault("acceptable"));
        Assert.True(wrong.Count == 0, $"{file}: {wrong.Count} wrong\n" + string.Join('\n', wrong.Take(20)));
    }

    private static bool HasFlag(JsonNode t, string flag) => t["flags"]!.AsArray().Any(f => f!.GetValue<string>() == flag);

    private static byte[] PublicKey(JsonNode g) => Hex.Decode(g["publicKey"]!["uncompressed"]!.GetValue<string>());

    [Fact]
    public void EcdsaSecp256k1Sha256_Der_PlainEcdsa() => Check("ecdsa_secp256k1_sha256_test.json", (g, t) =>
        EcdsaSecp256k1.VerifyDer(PublicKey(g), SHA256.HashData(Hex.Decode(t["msg"]!.GetValue<string>())), Hex.Decode(t["sig"]!.GetValue<string>()), allowHighS: true), valid: 168, invalid: 308, acceptable: 0);

    [Fact]
    public void EcdsaSecp256k1Sha256_Bitcoin_LowSOnly() => Check("ecdsa_secp256k1_sha256_bitcoin_test.json", (g, t) =>
        EcdsaSecp256k1.VerifyDer(PublicKey(g), SHA256.HashData(Hex.Decode(t["msg"]!.GetValue<string>())), Hex.Decode(t["sig"]!.GetValue<string>()), allowHighS: false), valid: 162, invalid: 301, acceptable: 0);

    [Fact]
    public void EcdsaSecp256k1Sha256_P1363() => Check("ecdsa_secp256k1_sha256_p1363_test.json", (g, t) =>
        EcdsaSecp256k1.VerifyAllowHighS(PublicKey(g), SHA256.HashData(Hex.Decode(t["msg"]!.GetValue<string>())), Hex.Decode(t["sig"]!.GetValue<string>())), valid: 167, invalid: 85, acceptable: 0);

    [Fact]
    public void Ed25519_StrictVerification() => Check("ed25519_test.json", (g, t) =>
        Ed25519Signature.Instance.Verify(Hex.Decode(g["publicKey"]!["pk"]!.GetValue<string>()), Hex.Decode(t["msg"]!.GetValue<string>()), Hex.Decode(t["sig"]!.GetValue<string>())), valid: 88, invalid: 63, acceptable: 0);

    [Fact]
    public void X25519_SharedSecrets()
    {
        // Decision for the 254 "acceptable" cases: the 31 whose shared secret is zero (low-order public keys) are refused,
        // as RFC 7748 section 6.1 allows and the protocol needs (a zero secret is known to everyone); the other 223 (public
        // keys on the twist, non-canonical u >= p, edge-case multiplications) give exactly the listed secret, which is what
        // RFC 7748 section 5 computes (the top bit of u is masked, u is reduced mod p).
        int zero = 0;
        Check("x25519_test.json", (g, t) =>
        {
            byte[] priv = Hex.Decode(t["private"]!.GetValue<string>());
            byte[] pub = Hex.Decode(t["public"]!.GetValue<string>());
            if (HasFlag(t, "ZeroSharedSecret"))
            {
                zero++;
                CryptoFormatException e = Assert.Throws<CryptoFormatException>(() => X25519.SharedSecret(priv, pub));
                Assert.Contains("low-order", e.Message, StringComparison.Ordinal);
                return false;
            }

            using var shared = X25519.SharedSecret(priv, pub);
            return shared.ReadOnlySpan.SequenceEqual(Hex.Decode(t["shared"]!.GetValue<string>()));
        }, valid: 264, invalid: 0, acceptable: 254, acceptableOutcome: t => !HasFlag(t, "ZeroSharedSecret"));
        Assert.Equal(31, zero);
    }

    [Fact]
    public void HkdfSha256()
    {
        // The 3 invalid cases ask for 8161 bytes, above RFC 5869's limit L <= 255·HashLen = 8160: HKDF must refuse them.
        int tooLarge = 0;
        Check("hkdf_sha256_test.json", (g, t) =>
        {
            int size = t["size"]!.GetValue<int>();
            byte[] okm = new byte[size];
            byte[] ikm = Hex.Decode(t["ikm"]!.GetValue<string>());
            byte[] salt = Hex.Decode(t["salt"]!.GetValue<string>());
            byte[] info = Hex.Decode(t["info"]!.GetValue<string>());
            if (t["result"]!.GetValue<string>() == "invalid")
            {
                Assert.Equal(255 * 32 + 1, size);
                Assert.ThrowsAny<ArgumentException>(() => HKDF.DeriveKey(HashAlgorithmName.SHA256, ikm, okm, salt, info));
                tooLarge++;
                return false;
            }

            HKDF.DeriveKey(HashAlgorithmName.SHA256, ikm, okm, salt, info);
            return okm.AsSpan().SequenceEqual(Hex.Decode(t["okm"]!.GetValue<string>()));
        }, valid: 83, invalid: 3, acceptable: 0);
        Assert.Equal(3, tooLarge);
    }

    /// <summary>
    /// Runs a Wycheproof AEAD file through the envelope's own AEAD code (Envelope.EncryptAead / DecryptAead, what
    /// Envelope.Seal and Open call). Cases with the envelope's sizes (256-bit key, its nonce size, 128-bit tag) must give
    /// the expected result, counted exactly; every other case must be refused by the envelope's size check.
    /// </summary>
    private static void CheckEnvelopeAead(string file, EnvelopeAlgorithm algorithm, int nonceBits, int valid, int invalid, int refusedSizes)
    {
        int gotValid = 0, gotInvalid = 0, gotRefused = 0;
        var wrong = new List<string>();
        foreach ((JsonNode g, JsonNode t) in Cases(file))
        {
            byte[] key = Hex.Decode(t["key"]!.GetValue<string>());
            byte[] iv = Hex.Decode(t["iv"]!.GetValue<string>());
            byte[] aad = Hex.Decode(t["aad"]!.GetValue<string>());
            byte[] msg = Hex.Decode(t["msg"]!.GetValue<string>());
            byte[] ctTag = [.. Hex.Decode(t["ct"]!.GetValue<string>()), .. Hex.Decode(t["tag"]!.GetValue<string>())];
            string result = t["result"]!.GetValue<string>();
            if (g["keySize"]!.GetValue<int>() != 256 || g["ivSize"]!.GetValue<int>() != nonceBits || g["tagSize"]!.GetValue<int>() != 128)
            {
                CryptoFormatException e = Assert.Throws<CryptoFormatException>(() => Envelope.DecryptAead(algorithm, key, iv, ctTag, aad, new byte[Math.Max(0, ctTag.Length - 16)]));
                Assert.True(e.Message.Contains("key", StringComparison.Ordinal) || e.Message.Contains("nonce", StringComparison.Ordinal), e.Message);
                gotRefused++;
                continue;
            }

            byte[] plain = new byte[ctTag.Length - 16];
            bool opened;
            try
            {
                Envelope.DecryptAead(algorithm, key, iv, ctTag, aad, plain);
                opened = plain.AsSpan().SequenceEqual(msg);
            }
            catch (EnvelopeException)
            {
                opened = false;
            }

            if (result == "valid")
            {
                gotValid++;
                byte[] sealedBody = new byte[msg.Length + 16];
                Envelope.EncryptAead(algorithm, key, iv, msg, aad, sealedBody);
                if (!opened || !sealedBody.AsSpan().SequenceEqual(ctTag))
                {
                    wrong.Add($"tcId {t["tcId"]} ({t["comment"]}): valid case not reproduced");
                }
            }
            else
            {
                Assert.Equal("invalid", result);
                gotInvalid++;
                if (opened)
                {
                    wrong.Add($"tcId {t["tcId"]} ({t["comment"]}): invalid case opened");
                }
            }
        }

        Assert.True(wrong.Count == 0, $"{file}: {wrong.Count} wrong\n" + string.Join('\n', wrong.Take(20)));
        Assert.Equal(valid, gotValid);
        Assert.Equal(invalid, gotInvalid);
        Assert.Equal(refusedSizes, gotRefused);
        Assert.Equal(valid + invalid + refusedSizes, Load(file)["numberOfTests"]!.GetValue<int>());
    }

    [Fact]
    public void AesGcm_ThroughTheEnvelopeAead()
        // 66 cases have the envelope's sizes (AES-256, 96-bit nonce, 128-bit tag): 39 valid, 27 invalid; the other 250
        // (AES-128/192 keys, other nonce sizes) are refused by the size check before any decryption.
        => CheckEnvelopeAead("aes_gcm_test.json", EnvelopeAlgorithm.Aes256Gcm, 96, valid: 39, invalid: 27, refusedSizes: 250);

    [Fact]
    public void XChaCha20Poly1305_ThroughTheEnvelopeAead()
        // The envelope's default cipher: 306 cases with 192-bit nonces (246 valid, including draft-irtf-cfrg-xchacha
        // A.3 as tcId 1; 60 with modified tags), and 9 with other nonce sizes that must be refused.
        => CheckEnvelopeAead("xchacha20_poly1305_test.json", EnvelopeAlgorithm.XChaCha20Poly1305, 192, valid: 246, invalid: 60, refusedSizes: 9);
}
