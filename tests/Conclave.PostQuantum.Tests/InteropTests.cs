using System.Text.Json.Nodes;
using Conclave.Crypto.Signing;

namespace Conclave.PostQuantum.Tests;

/// <summary>
/// Both directions with @noble/post-quantum 0.7 (tests/interop/checks/pq.mjs): signatures made here verify there, and
/// signatures noble makes from a stored-format seed verify here (with the public key Conclave derives from the same seed).
/// The single SLH-DSA-SHA2-128s signature of the test suite is made here (the "s" sets sign slowly).
/// </summary>
public sealed class InteropTests
{
    private static readonly string[] s_algorithms =
    [
        "ml-dsa-44", "ml-dsa-65", "ml-dsa-87", "slh-dsa-sha2-128s", "slh-dsa-shake-128f",
        "hybrid-ed25519-ml-dsa-65", "hybrid-ecdsa-ml-dsa-65",
    ];

    private static SoftwareSignatureScheme WithContext(SoftwareSignatureScheme scheme, byte[] ctx) => scheme switch
    {
        MlDsaSignatureScheme m => m.WithContext(ctx),
        SlhDsaSignatureScheme s => s.WithContext(ctx),
        HybridSignatureScheme h => h.WithContext(ctx),
        _ => throw new InvalidOperationException(),
    };

    private static bool VerifyWithContext(SoftwareSignatureScheme scheme, byte[] pk, byte[] msg, byte[] sig, byte[] ctx) => scheme switch
    {
        MlDsaSignatureScheme m => m.Verify(pk, msg, sig, ctx),
        SlhDsaSignatureScheme s => s.Verify(pk, msg, sig, ctx),
        HybridSignatureScheme h => h.Verify(pk, msg, sig, ctx),
        _ => throw new InvalidOperationException(),
    };

    [Fact]
    public void ConclaveSigns_NobleVerifies_AndTheReverse()
    {
        var cases = new List<object>();
        var local = new List<(string Alg, byte[] Pk, byte[] Msg, byte[] Sig, byte[] Ctx)>();
        var seeds = new Dictionary<string, byte[]>();
        foreach (string alg in s_algorithms)
        {
            Assert.True(PostQuantumSchemes.TryGet(alg, out SoftwareSignatureScheme? scheme));
            byte[] ctx = alg.StartsWith("slh", StringComparison.Ordinal) ? [] : TestSeed.Bytes(alg.Length, $"context {alg}");
            byte[] msg = TestSeed.Bytes(100, $"message {alg}");
            using SoftwareSigningKey key = WithContext(scheme!, ctx).GenerateKey(KeyExportPolicy.AllowExport, TestSeed.For($"key {alg}"));
            byte[] sig = key.Sign(msg).Signature;
            byte[] pk = key.PublicKey.ToArray();
            Assert.True(VerifyWithContext(scheme!, pk, msg, sig, ctx));
            byte[] wrongMsg = [.. msg[..^1], (byte)(msg[^1] ^ 1)];
            cases.Add(new { op = "verify", alg, publicKey = Hex.Encode(pk), message = Hex.Encode(msg), context = Hex.Encode(ctx), signature = Hex.Encode(sig) });
            cases.Add(new { op = "verify", alg, publicKey = Hex.Encode(pk), message = Hex.Encode(wrongMsg), context = Hex.Encode(ctx), signature = Hex.Encode(sig) });

            using var secret = key.ExportPrivateKey();
            seeds[alg] = secret.ReadOnlySpan.ToArray();
            byte[] msg2 = TestSeed.Bytes(33, $"message 2 {alg}");
            byte[] ctx2 = alg.StartsWith("slh", StringComparison.Ordinal) ? "interop"u8.ToArray() : [];
            cases.Add(new { op = "sign", alg, seed = Hex.Encode(seeds[alg]), message = Hex.Encode(msg2), context = Hex.Encode(ctx2) });
            local.Add((alg, pk, msg2, [], ctx2));
        }

        JsonArray results = NodeInterop.Run("pq", cases, TimeSpan.FromMinutes(5));
        Assert.Equal(cases.Count, results.Count);
        for (int i = 0; i < s_algorithms.Length; i++)
        {
            string alg = s_algorithms[i];
            Assert.True(results[3 * i]!["ok"]!.GetValue<bool>(), $"{alg}: noble rejected Conclave's signature");
            Assert.False(results[3 * i + 1]!["ok"]!.GetValue<bool>(), $"{alg}: noble accepted a signature on another message");

            JsonNode signed = results[3 * i + 2]!;
            byte[] noblePk = Hex.Decode(signed["publicKey"]!.GetValue<string>());
            byte[] nobleSig = Hex.Decode(signed["signature"]!.GetValue<string>());
            (_, byte[] pk, byte[] msg2, _, byte[] ctx2) = local[i];
            Assert.True(PostQuantumSchemes.TryGet(alg, out SoftwareSignatureScheme? scheme));
            Assert.Equal(pk, noblePk); // same seed, same public key
            Assert.True(VerifyWithContext(scheme!, pk, msg2, nobleSig, ctx2), $"{alg}: Conclave rejected noble's signature");
            Assert.False(scheme!.Verify(pk, [.. msg2, 0], nobleSig));
        }
    }
}
