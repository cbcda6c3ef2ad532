using Conclave.Crypto.Signing;

namespace Conclave.PostQuantum.Tests;

public sealed class SlhDsaSchemeTests
{
    [Fact]
    public void Shake128f_SignVerify_HedgedDeterministicAndContext()
    {
        SlhDsaSignatureScheme scheme = PostQuantumSchemes.SlhDsaShake_128f;
        byte[] seeds = TestSeed.Bytes(48, "seeds");
        byte[] msg = "release-collateral"u8.ToArray();
        using SoftwareSigningKey key = scheme.ImportPrivateKey(seeds);
        Assert.Equal(32, key.PublicKey.Length);
        Assert.Equal(seeds[32..], key.PublicKey.Span[..16].ToArray()); // PK.seed is the last stored seed

        byte[] hedged = key.Sign(msg).Signature;
        Assert.Equal(17088, hedged.Length);
        Assert.True(scheme.Verify(key.PublicKey.Span, msg, hedged));
        Assert.NotEqual(hedged, key.Sign(msg).Signature);

        using SoftwareSigningKey det = scheme.WithDeterministicSigning().ImportPrivateKey(seeds);
        byte[] d = det.Sign(msg).Signature;
        Assert.Equal(d, det.Sign(msg).Signature);
        // FIPS 205 §9.2: deterministic = hedged with opt_rand = PK.seed.
        Assert.Equal(d, key.Sign(msg, new FixedRandomSource(seeds[32..])).Signature);

        byte[] tampered = (byte[])d.Clone();
        tampered[^1] ^= 0x80;
        Assert.False(scheme.Verify(key.PublicKey.Span, msg, tampered));
        Assert.False(scheme.Verify(key.PublicKey.Span, msg, d, "ctx"u8));

        using SoftwareSigningKey withCtx = scheme.WithContext("ctx"u8).ImportPrivateKey(seeds);
        byte[] c = withCtx.Sign(msg).Signature;
        Assert.True(scheme.Verify(key.PublicKey.Span, msg, c, "ctx"u8));
        Assert.False(scheme.Verify(key.PublicKey.Span, msg, c));
    }

    [Fact]
    public void Registry_HasEveryNameOnce()
    {
        string[] expected =
        [
            "ml-dsa-44", "ml-dsa-65", "ml-dsa-87",
            "slh-dsa-sha2-128s", "slh-dsa-sha2-128f", "slh-dsa-sha2-192s", "slh-dsa-sha2-192f", "slh-dsa-sha2-256s", "slh-dsa-sha2-256f",
            "slh-dsa-shake-128s", "slh-dsa-shake-128f", "slh-dsa-shake-192s", "slh-dsa-shake-192f", "slh-dsa-shake-256s", "slh-dsa-shake-256f",
            "hybrid-ed25519-ml-dsa-65", "hybrid-ecdsa-ml-dsa-65",
        ];
        Assert.Equal(expected, PostQuantumSchemes.All.Select(s => s.Name));
        foreach (string name in expected)
        {
            Assert.True(PostQuantumSchemes.TryGet(name, out SoftwareSignatureScheme? s));
            Assert.Equal(name, s!.Name);
            Assert.Equal(SignInputKind.Message, s.InputKind);
        }

        Assert.False(PostQuantumSchemes.TryGet("ML-DSA-65", out _));
        Assert.False(PostQuantumSchemes.TryGet("ed25519", out _));
    }
}
