using System.Text.Json;
using Conclave.Threshold.Frost;
using Conclave.Threshold.Frost.Ciphersuites;
using Conclave.Threshold.Frost.Internal;

namespace Conclave.Threshold.Tests;

/// <summary>
/// ZcashFoundation DKG vectors (vectors_dkg.json): coefficients → commitments, shares f_i(j), the proofs of
/// knowledge (checked with the reference implementation's transcript HDKG(id ‖ φ_0 ‖ R), kept internal for this
/// purpose; Conclave's own proofs use the session-bound transcript), combined signing shares, verifying shares and
/// the group key. Also the repair-share arithmetic vectors (repair-share.json).
/// </summary>
public sealed class DkgVectorTests
{
    [Theory]
    [InlineData("frost-ed25519", "zcash-frost-ed25519")]
    [InlineData("frost-secp256k1", "zcash-frost-secp256k1")]
    [InlineData("frost-taproot", "zcash-frost-secp256k1-tr")]
    public void ZcashDkgVector(string scheme, string dir)
    {
        Assert.True(FrostCiphersuite.TryGet(scheme, out FrostCiphersuite? suite));
        using JsonDocument doc = JsonDocument.Parse(File.ReadAllText(RepoPaths.Vector($"frost/{dir}/vectors_dkg.json")));
        JsonElement inputs = doc.RootElement.GetProperty("inputs");
        int n = doc.RootElement.GetProperty("config").GetProperty("MAX_PARTICIPANTS").GetInt32();
        Scalar S(string hex) { Assert.True(suite.TryReadScalar(Hex.Decode(hex), out Scalar? s)); return s!; }
        Element E(string hex) { Assert.True(suite.TryReadElement(Hex.Decode(hex), out Element? e)); return e!; }

        var polys = new Dictionary<int, Scalar[]>();
        var phi0 = new List<Element>();
        for (int i = 1; i <= n; i++)
        {
            JsonElement p = inputs.GetProperty(i.ToString(System.Globalization.CultureInfo.InvariantCulture));
            Identifier id = Identifier.FromInt(suite, i);
            Scalar[] coeffs = [S(p.GetProperty("signing_key").GetString()!), S(p.GetProperty("coefficient").GetString()!)];
            polys[i] = coeffs;
            string[] comm = [.. p.GetProperty("vss_commitments").EnumerateArray().Select(e => e.GetString()!)];
            Assert.Equal(comm.Length, coeffs.Length);
            for (int k = 0; k < coeffs.Length; k++)
            {
                Assert.Equal(Hex.Decode(comm[k]), suite.BaseMul(coeffs[k]).ToBytes());
            }

            phi0.Add(suite.BaseMul(coeffs[0]));
            byte[] pok = Hex.Decode(p.GetProperty("proof_of_knowledge").GetString()!);
            Element r = suite.RequiresEvenY ? E("02" + Hex.Encode(pok.AsSpan(0, 32))) : E(Hex.Encode(pok.AsSpan(0, suite.ElementSizeInBytes)));
            Scalar mu = S(Hex.Encode(pok.AsSpan(pok.Length - 32)));
            Scalar c = suite.HDkg([.. id.ToBytes(), .. phi0[^1].ToBytes(), .. r.ToBytes()]);
            Assert.True(suite.BaseMul(mu).ValueEquals(r + (phi0[^1] * c)), $"proof of knowledge of participant {i}");
            // Tampering with the proof breaks it.
            Assert.False(suite.BaseMul(mu + suite.ScalarOne).ValueEquals(r + (phi0[^1] * c)));
        }

        // signing_shares of participant i are the shares it received: f_j(i) from each other dealer j.
        for (int i = 1; i <= n; i++)
        {
            JsonElement p = inputs.GetProperty(i.ToString(System.Globalization.CultureInfo.InvariantCulture));
            foreach (JsonProperty sh in p.GetProperty("signing_shares").EnumerateObject())
            {
                int j = int.Parse(sh.Name, System.Globalization.CultureInfo.InvariantCulture);
                Assert.Equal(Hex.Decode(sh.Value.GetString()!), Polynomials.Evaluate(polys[j], Identifier.FromInt(suite, i).Value).ToBytes());
            }
        }

        Element groupKey = suite.Sum(phi0);
        // The -tr suite applies the BIP-341 key-path-only tweak (empty merkle root) after DKG, as its post_dkg does.
        var shares = Enumerable.Range(1, n).Select(i => new KeyValuePair<Identifier, Element>(Identifier.FromInt(suite, i), suite.BaseMul(polys.Values.Aggregate(suite.ScalarZero, (acc, poly) => acc + Polynomials.Evaluate(poly, Identifier.FromInt(suite, i).Value)))));
        var pkp = new PublicKeyPackage(suite, 2, groupKey, shares, new byte[32]);
        PublicKeyPackage published = suite.RequiresEvenY ? TaprootTweak.Apply(pkp, []) : pkp;
        Assert.Equal(Hex.Decode(inputs.GetProperty("verifying_key").GetString()!), published.GroupPublicKey);
        for (int i = 1; i <= n; i++)
        {
            JsonElement p = inputs.GetProperty(i.ToString(System.Globalization.CultureInfo.InvariantCulture));
            Scalar x = Identifier.FromInt(suite, i).Value;
            Scalar share = suite.ScalarZero;
            foreach (Scalar[] poly in polys.Values)
            {
                share += Polynomials.Evaluate(poly, x);
            }

            using var kp = new KeyPackage(Identifier.FromInt(suite, i), share, pkp);
            // The export is held (and disposed) here: a buffer left unreachable while Import reads its span could be
            // finalized, and zeroed, mid-read by a garbage collection (seen once: "identifier zero is not allowed").
            using Conclave.Crypto.Memory.SecretBuffer exported = kp.Export();
            using KeyPackage pub = suite.RequiresEvenY ? TaprootTweak.Apply(kp, []) : KeyPackage.Import(suite, exported.ReadOnlySpan);
            Assert.Equal(Hex.Decode(p.GetProperty("signing_share").GetString()!), pub.Share.ToBytes());
            Assert.Equal(Hex.Decode(p.GetProperty("verifying_share").GetString()!), pub.PublicKeyPackage.GetVerifyingShare(pub.Identifier));
        }
    }

    [Theory]
    [InlineData("frost-ed25519", "zcash-frost-ed25519")]
    [InlineData("frost-secp256k1", "zcash-frost-secp256k1")]
    [InlineData("frost-taproot", "zcash-frost-secp256k1-tr")]
    public void ZcashRepairShareArithmetic(string scheme, string dir)
    {
        Assert.True(FrostCiphersuite.TryGet(scheme, out FrostCiphersuite? suite));
        using JsonDocument doc = JsonDocument.Parse(File.ReadAllText(RepoPaths.Vector($"frost/{dir}/repair-share.json")));
        Scalar S(string hex) { Assert.True(suite.TryReadScalar(Hex.Decode(hex), out Scalar? s)); return s!; }
        JsonElement gen = doc.RootElement.GetProperty("scalar_generation");
        Scalar[] randoms = [.. Enumerable.Range(1, 3).Select(i => S(gen.GetProperty($"random_scalar_{i}").GetString()!))];
        Assert.Equal(Hex.Decode(gen.GetProperty("random_scalar_sum").GetString()!), Repair.SumScalars(suite, randoms).ToBytes());
        JsonElement sig = doc.RootElement.GetProperty("sigma_generation");
        Scalar[] sigmas = [.. Enumerable.Range(1, 4).Select(i => S(sig.GetProperty($"sigma_{i}").GetString()!))];
        Assert.Equal(Hex.Decode(sig.GetProperty("sigma_sum").GetString()!), Repair.SumScalars(suite, sigmas).ToBytes());
    }
}
