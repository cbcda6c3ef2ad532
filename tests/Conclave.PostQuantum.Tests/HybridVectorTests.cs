using System.Text.Json.Nodes;
using Conclave.Crypto.Signing;

namespace Conclave.PostQuantum.Tests;

/// <summary>
/// Fixed values for the hybrids: the composite-signature draft's own vector for id-MLDSA65-Ed25519-SHA512
/// (tests/vectors/composite-sigs), and pinned deterministic signatures of both Conclave hybrids (tests/vectors/conclave/hybrid.json).
/// </summary>
public sealed class HybridVectorTests
{
    private static JsonNode Load(string relative) => JsonNode.Parse(File.ReadAllText(RepoPaths.Vector(relative)))!;

    private static HybridSignatureScheme Get(string name) => (HybridSignatureScheme)(PostQuantumSchemes.TryGet(name, out var s) ? s! : throw new InvalidOperationException(name));

    private static byte[] H(JsonNode n, string field) => Hex.Decode(n[field]!.GetValue<string>());

    [Fact]
    public void DraftVector_MlDsa65Ed25519_KeyAndBothSignaturesOfTheDraft()
    {
        // lamps-wg/draft-composite-sigs testvectors.json: the draft authors' own key, message, context and signatures
        // (randomized ML-DSA, so they can be verified, not reproduced).
        JsonNode v = Load("composite-sigs/mldsa65-ed25519.json");
        Assert.Equal("id-MLDSA65-Ed25519-SHA512", v["tcId"]!.GetValue<string>());
        HybridSignatureScheme scheme = HybridSignatureScheme.Ed25519MlDsa65;
        Assert.Equal("1.3.6.1.5.5.7.6.48", scheme.ObjectIdentifier);
        byte[] pk = H(v, "pk"), sk = H(v, "sk"), m = H(v, "m"), ctx = H(v, "ctx"), s = H(v, "s"), sCtx = H(v, "sWithContext");

        // The draft's private key (ML-DSA seed ‖ Ed25519 seed) gives the draft's public key.
        using (SoftwareSigningKey key = scheme.ImportPrivateKey(sk))
        {
            Assert.Equal(Hex.Encode(pk), Hex.Encode(key.PublicKey.Span));
        }

        Assert.True(scheme.Verify(pk, m, s, []));
        Assert.True(scheme.Verify(pk, m, sCtx, ctx));
        Assert.True(scheme.WithContext(ctx).Verify(pk, m, sCtx));

        // Controls: each signature is bound to its own context, and to the message.
        Assert.False(scheme.Verify(pk, m, s, ctx));
        Assert.False(scheme.Verify(pk, m, sCtx, []));
        byte[] other = [.. m];
        other[0] ^= 1;
        Assert.False(scheme.Verify(pk, other, s, []));
    }

    [Fact]
    public void PinnedDeterministicSignatures_ConclaveReproducesEveryByte()
    {
        JsonArray rows = Load("conclave/hybrid.json")["vectors"]!.AsArray();
        Assert.Equal(4, rows.Count);
        Assert.Equal(2, rows.Count(r => r!["alg"]!.GetValue<string>() == "hybrid-ecdsa-ml-dsa-65"));
        foreach (JsonNode? r in rows)
        {
            HybridSignatureScheme scheme = Get(r!["alg"]!.GetValue<string>()).WithContext(H(r, "context")).WithDeterministicSigning();
            using SoftwareSigningKey key = scheme.ImportPrivateKey(H(r, "seed"));
            Assert.Equal(r["publicKey"]!.GetValue<string>(), Hex.Encode(key.PublicKey.Span));
            byte[] sig = key.Sign(H(r, "message")).Signature;
            Assert.Equal(r["signature"]!.GetValue<string>(), Hex.Encode(sig));
            Assert.True(scheme.Verify(key.PublicKey.Span, H(r, "message"), sig));
        }
    }

    [Fact]
    public void PinnedDeterministicSignatures_IndependentImplementationReproducesEveryByte()
    {
        JsonArray rows = Load("conclave/hybrid.json")["vectors"]!.AsArray();
        Assert.Equal(4, rows.Count);
        JsonArray results = NodeInterop.Run("pq", rows.Select(r => (object)new
        {
            op = "sign",
            deterministic = true,
            alg = r!["alg"]!.GetValue<string>(),
            seed = r["seed"]!.GetValue<string>(),
            message = r["message"]!.GetValue<string>(),
            context = r["context"]!.GetValue<string>(),
        }));
        Assert.Equal(rows.Count, results.Count);
        for (int i = 0; i < rows.Count; i++)
        {
            Assert.Equal(rows[i]!["publicKey"]!.GetValue<string>(), results[i]!["publicKey"]!.GetValue<string>());
            Assert.Equal(rows[i]!["signature"]!.GetValue<string>(), results[i]!["signature"]!.GetValue<string>());
        }
    }
}
