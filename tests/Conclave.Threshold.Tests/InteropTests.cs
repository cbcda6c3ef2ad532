using System.Text.Json.Nodes;
using Conclave.Threshold.Frost;

namespace Conclave.Threshold.Tests;

/// <summary>
/// FROST signatures checked by independent verifiers (tests/interop/checks/frost.mjs, @noble/curves 2):
/// frost-ed25519 with ed25519.verify, frost-taproot with schnorr.verify (BIP-340) under internal, key-path-only
/// and script-tree tweaked keys, frost-secp256k1 with an RFC 9591 verifier written on noble's curve.
/// Also a corrupted signature per scheme, which the verifier must reject.
/// </summary>
public sealed class InteropTests
{
    [Theory]
    [InlineData("frost-ed25519")]
    [InlineData("frost-secp256k1")]
    [InlineData("frost-taproot")]
    public void IndependentVerifiersAccept(string name)
    {
        Assert.True(FrostCiphersuite.TryGet(name, out FrostCiphersuite? suite));
        var rng = TestSeed.For(name);
        var cases = new List<object>();
        var expected = new List<bool>();
        for (int i = 0; i < 24; i++)
        {
            int n = 3 + (i % 4), t = 2 + (i % (n - 1));
            using DealerOutput d = TrustedDealer.Generate(suite, t, n, rng);
            PublicKeyPackage key = d.PublicKeyPackage;
            IReadOnlyList<KeyPackage> signers = d.KeyPackages;
            var owned = new List<KeyPackage>();
            if (suite.SchemeName == "frost-taproot" && i % 3 != 0)
            {
                byte[] root = i % 3 == 1 ? [] : System.Security.Cryptography.SHA256.HashData([(byte)i]);
                key = TaprootTweak.Apply(key, root);
                owned.AddRange(signers.Select(k => TaprootTweak.Apply(k, root)));
                signers = owned;
            }
            else if (i % 5 == 4)
            {
                key = HdDerivation.DerivePath(key, [(uint)i, 3]);
                owned.AddRange(signers.Select(k => HdDerivation.DerivePath(k, [(uint)i, 3])));
                signers = owned;
            }

            byte[] msg = new byte[(i * 13) % 70];
            rng.Fill(msg);
            byte[] sig = Cluster.Sign([.. signers.Skip(i % (n - t + 1)).Take(t)], key, msg, rng);
            cases.Add(new { scheme = name, publicKey = Hex.Encode(key.VerificationKey), message = Hex.Encode(msg), signature = Hex.Encode(sig) });
            expected.Add(true);
            if (i % 8 == 0)
            {
                byte[] bad = (byte[])sig.Clone();
                bad[^1] ^= 0x01;
                cases.Add(new { scheme = name, publicKey = Hex.Encode(key.VerificationKey), message = Hex.Encode(msg), signature = Hex.Encode(bad) });
                expected.Add(false);
            }

            Cluster.DisposeAll(owned);
        }

        JsonArray results = NodeInterop.Run("frost", cases);
        Assert.Equal(24 + 3, expected.Count); // 24 good signatures and 3 corrupted ones (i = 0, 8, 16)
        Assert.Equal(3, expected.Count(e => !e));
        Assert.Equal(expected.Count, results.Count);
        for (int i = 0; i < results.Count; i++)
        {
            // A refused signature carries the verifier's reason; a verifier crash would have failed NodeInterop.Run instead.
            JsonNode r = results[i]!;
            Assert.True(expected[i] == r["ok"]!.GetValue<bool>(), $"{name} case {i}: expected {expected[i]}, got {r.ToJsonString()}");
            Assert.Equal(expected[i], r["reason"] is null);
        }
    }
}
