using System.Text.Json;
using Conclave.Threshold.Frost;
using Conclave.Threshold.Frost.Ciphersuites;
using Conclave.Threshold.Frost.Internal;

namespace Conclave.Threshold.Tests;

/// <summary>
/// RFC 9591 Appendix E vectors (tests/vectors/frost/rfc9591-cfrg-poc) and the ZcashFoundation frost vectors
/// (tests/vectors/frost/zcash-frost-*), reproduced byte for byte with the vector's nonce randomness injected.
/// </summary>
public sealed class VectorTests
{
    public static TheoryData<string, string> SigningVectors => new()
    {
        { "frost-ed25519", "frost/rfc9591-cfrg-poc/frost-ed25519-sha512.json" },
        { "frost-secp256k1", "frost/rfc9591-cfrg-poc/frost-secp256k1-sha256.json" },
        { "frost-ed25519", "frost/zcash-frost-ed25519/vectors.json" },
        { "frost-ed25519", "frost/zcash-frost-ed25519/vectors-big-identifier.json" },
        { "frost-secp256k1", "frost/zcash-frost-secp256k1/vectors.json" },
        { "frost-secp256k1", "frost/zcash-frost-secp256k1/vectors-big-identifier.json" },
        { "frost-taproot", "frost/zcash-frost-secp256k1-tr/vectors.json" },
        { "frost-taproot", "frost/zcash-frost-secp256k1-tr/vectors-big-identifier.json" },
    };

    [Theory]
    [MemberData(nameof(SigningVectors))]
    public void SigningVectorReproducedByteForByte(string scheme, string path)
    {
        Assert.True(FrostCiphersuite.TryGet(scheme, out FrostCiphersuite? suite));
        using JsonDocument doc = JsonDocument.Parse(File.ReadAllText(RepoPaths.Vector(path)));
        JsonElement root = doc.RootElement;
        JsonElement cfg = root.GetProperty("config");
        int max = int.Parse(cfg.GetProperty("MAX_PARTICIPANTS").GetString()!, System.Globalization.CultureInfo.InvariantCulture);
        int min = int.Parse(cfg.GetProperty("MIN_PARTICIPANTS").GetString()!, System.Globalization.CultureInfo.InvariantCulture);
        JsonElement inputs = root.GetProperty("inputs");
        byte[] message = Hex.Decode(inputs.GetProperty("message").GetString()!);
        byte[] groupKey = Hex.Decode((inputs.TryGetProperty("group_public_key", out JsonElement gpk) ? gpk : inputs.GetProperty("verifying_key_key")).GetString()!);
        Assert.True(suite.TryReadScalar(Hex.Decode(inputs.GetProperty("group_secret_key").GetString()!), out Scalar? secret));
        var coeffs = inputs.GetProperty("share_polynomial_coefficients").EnumerateArray()
            .Select(e => { Assert.True(suite.TryReadScalar(Hex.Decode(e.GetString()!), out Scalar? s)); return s!; }).ToList();

        using DealerOutput dealt = TrustedDealer.SplitCore(suite, secret!, min, TrustedDealer.Ids(suite, max), null, coeffs, default);
        Assert.Equal(groupKey, dealt.PublicKeyPackage.GroupPublicKey);
        foreach (JsonElement ps in inputs.GetProperty("participant_shares").EnumerateArray())
        {
            int id = ps.GetProperty("identifier").GetInt32();
            KeyPackage kp = dealt.KeyPackages[id - 1];
            Assert.Equal(Hex.Decode(ps.GetProperty("participant_share").GetString()!), kp.Share.ToBytes());
        }

        // Round one with the vector's randomness: hiding then binding (RFC 9591 section 5.1).
        var nonces = new Dictionary<int, SigningNonces>();
        foreach (JsonElement o in root.GetProperty("round_one_outputs").GetProperty("outputs").EnumerateArray())
        {
            int id = o.GetProperty("identifier").GetInt32();
            var rng = new FixedRandomSource(Hex.Decode(o.GetProperty("hiding_nonce_randomness").GetString()!), Hex.Decode(o.GetProperty("binding_nonce_randomness").GetString()!));
            SigningNonces n = FrostSigner.Commit(dealt.KeyPackages[id - 1], rng);
            Assert.Equal(Hex.Decode(o.GetProperty("hiding_nonce_commitment").GetString()!), n.Commitments.HidingCommitment);
            Assert.Equal(Hex.Decode(o.GetProperty("binding_nonce_commitment").GetString()!), n.Commitments.BindingCommitment);
            nonces[id] = n;
        }

        var package = new SigningPackage(message, nonces.Values.Select(n => n.Commitments));
        SigningContext ctx = SigningContext.Compute(package, dealt.PublicKeyPackage.GroupKey);
        foreach (JsonElement o in root.GetProperty("round_one_outputs").GetProperty("outputs").EnumerateArray())
        {
            int id = o.GetProperty("identifier").GetInt32();
            Assert.Equal(Hex.Decode(o.GetProperty("binding_factor").GetString()!), ctx.BindingFactors[Identifier.FromInt(suite, id)].ToBytes());
        }

        var shares = new List<SignatureShare>();
        foreach (JsonElement o in root.GetProperty("round_two_outputs").GetProperty("outputs").EnumerateArray())
        {
            int id = o.GetProperty("identifier").GetInt32();
            SignatureShare share = FrostSigner.Sign(package, nonces[id], dealt.KeyPackages[id - 1]);
            Assert.Equal(Hex.Decode(o.GetProperty("sig_share").GetString()!), share.Value.ToBytes());
            shares.Add(SignatureShare.FromBytes(suite, share.ToBytes()));
        }

        byte[] sig = FrostAggregator.Aggregate(SigningPackage.FromBytes(suite, package.ToBytes()), shares, dealt.PublicKeyPackage);
        Assert.Equal(Hex.Decode(root.GetProperty("final_output").GetProperty("sig").GetString()!), sig);
        Assert.True(FrostAggregator.Verify(suite, dealt.PublicKeyPackage.VerificationKey, message, sig));
    }
}
