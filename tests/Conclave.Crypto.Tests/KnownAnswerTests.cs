using System.Text;
using System.Text.Json.Nodes;
using Conclave.Crypto.Aead;
using Conclave.Crypto.Kdf;
using Conclave.Crypto.Memory;
using Conclave.Crypto.Randomness;

namespace Conclave.Crypto.Tests;

/// <summary>
/// Known answers for the envelope format and Argon2id, computed outside Conclave (tests/vectors/conclave, see SOURCES.md).
/// The bare AEADs under the envelope are checked on Wycheproof in <see cref="WycheproofTests"/>.
/// </summary>
public sealed class KnownAnswerTests
{
    /// <summary>Hands out fixed bytes, so Seal uses the vector's nonce.</summary>
    private sealed class FixedRandomSource(byte[] bytes) : IRandomSource
    {
        private int _offset;

        public void Fill(Span<byte> destination)
        {
            bytes.AsSpan(_offset, destination.Length).CopyTo(destination);
            _offset += destination.Length;
        }
    }

    private static JsonNode Load(string file) => JsonNode.Parse(File.ReadAllText(RepoPaths.Vector("conclave/" + file)))!;

    [Fact]
    public void Envelope_SealsExactlyThePinnedBytes_AndOpensThem()
    {
        JsonArray vectors = Load("envelope.json")["vectors"]!.AsArray();
        Assert.Equal(5, vectors.Count);
        Assert.Equal(3, vectors.Count(v => v!["algorithm"]!.GetValue<string>() == "XChaCha20Poly1305"));
        foreach (JsonNode? v in vectors)
        {
            EnvelopeAlgorithm alg = Enum.Parse<EnvelopeAlgorithm>(v!["algorithm"]!.GetValue<string>());
            byte[] key = Hex.Decode(v["key"]!.GetValue<string>());
            byte[] nonce = Hex.Decode(v["nonce"]!.GetValue<string>());
            byte[] plaintext = Hex.Decode(v["plaintext"]!.GetValue<string>());
            byte[] context = Hex.Decode(v["context"]!.GetValue<string>());
            byte[] expected = Hex.Decode(v["envelope"]!.GetValue<string>());

            byte[] sealedBytes = Envelope.Seal(key, plaintext, context, alg, new FixedRandomSource(nonce));
            Assert.Equal(Hex.Encode(expected), Hex.Encode(sealedBytes));
            using SecretBuffer opened = Envelope.Open(key, expected, context);
            Assert.Equal(plaintext, opened.ReadOnlySpan.ToArray());
        }
    }

    [Fact]
    public void Argon2id_IndependentImplementation_ReproducesRfc9106Section5_3()
    {
        // The reference for the pinned vectors below is @noble/hashes; first show it computes RFC 9106's own vector
        // (which needs p = 4, a secret K and associated data X, none of which libsodium's crypto_pwhash accepts).
        JsonNode rfc = Load("argon2id.json")["rfc9106_5_3"]!;
        JsonArray results = NodeInterop.Run("argon2id", [new
        {
            password = rfc["password"]!.GetValue<string>(),
            salt = rfc["salt"]!.GetValue<string>(),
            secret = rfc["secret"]!.GetValue<string>(),
            associatedData = rfc["associatedData"]!.GetValue<string>(),
            t = rfc["t"]!.GetValue<int>(),
            m = rfc["m"]!.GetValue<int>(),
            p = rfc["p"]!.GetValue<int>(),
            dkLen = rfc["dkLen"]!.GetValue<int>(),
        }]);
        Assert.Equal("0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659", rfc["tag"]!.GetValue<string>());
        Assert.Equal(rfc["tag"]!.GetValue<string>(), results.Single()!["tag"]!.GetValue<string>());
    }

    [Fact]
    public void Argon2id_ConclaveGivesThePinnedTags_AndSoDoesTheIndependentImplementation()
    {
        JsonArray vectors = Load("argon2id.json")["vectors"]!.AsArray();
        Assert.Equal(5, vectors.Count);
        var cases = new List<object>();
        foreach (JsonNode? v in vectors)
        {
            string passphrase = v!["passphrase"]!.GetValue<string>();
            byte[] salt = Hex.Decode(v["salt"]!.GetValue<string>());
            var parameters = new Argon2idParameters(v["t"]!.GetValue<int>(), v["m"]!.GetValue<int>());
            int length = v["dkLen"]!.GetValue<int>();
            using SecretBuffer tag = Argon2id.DeriveKey(passphrase, salt, parameters, length);
            Assert.Equal(v["tag"]!.GetValue<string>(), Hex.Encode(tag.ReadOnlySpan));
            cases.Add(new { password = Hex.Encode(Encoding.UTF8.GetBytes(passphrase)), salt = Hex.Encode(salt), t = parameters.Iterations, m = parameters.MemoryKiB, p = 1, dkLen = length });
        }

        JsonArray results = NodeInterop.Run("argon2id", cases);
        Assert.Equal(vectors.Count, results.Count);
        for (int i = 0; i < vectors.Count; i++)
        {
            Assert.Equal(vectors[i]!["tag"]!.GetValue<string>(), results[i]!["tag"]!.GetValue<string>());
        }
    }
}
