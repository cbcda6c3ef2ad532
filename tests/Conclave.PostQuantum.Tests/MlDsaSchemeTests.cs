using System.Security.Cryptography;
using Conclave.Crypto;
using Conclave.Crypto.Signing;
using Conclave.Testing;

namespace Conclave.PostQuantum.Tests;

public sealed class MlDsaSchemeTests
{
    public static TheoryData<string> Names => new() { "ml-dsa-44", "ml-dsa-65", "ml-dsa-87" };

    private static MlDsaSignatureScheme Get(string name) => (MlDsaSignatureScheme)(PostQuantumSchemes.TryGet(name, out var s) ? s! : throw new InvalidOperationException());

    [Theory]
    [MemberData(nameof(Names))]
    public void SignVerify_RoundTrip_AndRejectsTampering(string name)
    {
        MlDsaSignatureScheme scheme = Get(name);
        using SoftwareSigningKey key = scheme.GenerateKey(random: TestSeed.For("key " + name));
        byte[] msg = "liquidate position 42"u8.ToArray();
        byte[] sig = key.Sign(msg).Signature;
        Assert.Equal(scheme.SignatureSizeInBytes, sig.Length);
        Assert.Equal(scheme.PublicKeySizeInBytes, key.PublicKey.Length);
        Assert.True(scheme.Verify(key.PublicKey.Span, msg, sig));

        byte[] bad = (byte[])sig.Clone();
        bad[10] ^= 1;
        Assert.False(scheme.Verify(key.PublicKey.Span, msg, bad));
        Assert.False(scheme.Verify(key.PublicKey.Span, "liquidate position 43"u8, sig));
        Assert.False(scheme.Verify(key.PublicKey.Span, msg, sig.AsSpan(1)));
        Assert.False(scheme.Verify(key.PublicKey.Span[1..], msg, sig));
        Assert.False(scheme.Verify([], msg, []));
    }

    [Fact]
    public void HedgedByDefault_DeterministicOnRequest()
    {
        byte[] seed = TestSeed.Bytes(32, "seed");
        byte[] msg = "settle"u8.ToArray();
        using SoftwareSigningKey hedged = PostQuantumSchemes.MlDsa65.ImportPrivateKey(seed);
        Assert.NotEqual(hedged.Sign(msg).Signature, hedged.Sign(msg).Signature);

        // The hedged rnd comes from the injected source: the same 32 bytes give the same signature.
        byte[] rnd = TestSeed.Bytes(32, "rnd");
        Assert.Equal(hedged.Sign(msg, new FixedRandomSource(rnd)).Signature, hedged.Sign(msg, new FixedRandomSource(rnd)).Signature);

        MlDsaSignatureScheme deterministic = PostQuantumSchemes.MlDsa65.WithDeterministicSigning();
        Assert.True(deterministic.Deterministic);
        Assert.Equal("ml-dsa-65", deterministic.Name);
        using SoftwareSigningKey det = deterministic.ImportPrivateKey(seed);
        byte[] a = det.Sign(msg).Signature;
        Assert.Equal(a, det.Sign(msg).Signature);
        // FIPS 204 §3.4: deterministic = hedged with rnd = {0}^32.
        Assert.Equal(a, hedged.Sign(msg, new FixedRandomSource(new byte[32])).Signature);
        Assert.True(PostQuantumSchemes.MlDsa65.Verify(det.PublicKey.Span, msg, a));
    }

    [Fact]
    public void ContextString_BindsTheSignature()
    {
        byte[] ctx = "conclave/venue-a"u8.ToArray();
        MlDsaSignatureScheme withCtx = PostQuantumSchemes.MlDsa44.WithContext(ctx);
        Assert.Equal(ctx, withCtx.Context.ToArray());
        using SoftwareSigningKey key = withCtx.GenerateKey(random: TestSeed.For("key@63"));
        byte[] msg = "hedge"u8.ToArray();
        byte[] sig = key.Sign(msg).Signature;
        Assert.True(withCtx.Verify(key.PublicKey.Span, msg, sig));
        Assert.True(PostQuantumSchemes.MlDsa44.Verify(key.PublicKey.Span, msg, sig, ctx));
        Assert.False(PostQuantumSchemes.MlDsa44.Verify(key.PublicKey.Span, msg, sig));
        Assert.False(PostQuantumSchemes.MlDsa44.Verify(key.PublicKey.Span, msg, sig, "conclave/venue-b"u8));
        Assert.False(PostQuantumSchemes.MlDsa44.Verify(key.PublicKey.Span, msg, sig, new byte[256]));

        Assert.NotNull(PostQuantumSchemes.MlDsa44.WithContext(new byte[255]));
        var e = Assert.Throws<CryptoFormatException>(() => PostQuantumSchemes.MlDsa44.WithContext(new byte[256]));
        Assert.Equal("context", e.ParameterName);
    }

    [Fact]
    public void PrivateKeyIsTheSeed_ExportOnlyWhenAllowed()
    {
        using SoftwareSigningKey key = PostQuantumSchemes.MlDsa87.GenerateKey(KeyExportPolicy.AllowExport, TestSeed.For("key"));
        using var exported = key.ExportPrivateKey();
        Assert.Equal(32, exported.Length);
        using SoftwareSigningKey again = PostQuantumSchemes.MlDsa87.ImportPrivateKey(exported.ReadOnlySpan);
        Assert.Equal(key.PublicKey.ToArray(), again.PublicKey.ToArray());
        Assert.Throws<CryptographicException>(() => again.ExportPrivateKey());
        Assert.Throws<CryptoFormatException>(() => PostQuantumSchemes.MlDsa87.ImportPrivateKey(new byte[31]));
        key.Dispose();
        Assert.Throws<ObjectDisposedException>(() => key.Sign("x"u8));
        Assert.DoesNotContain(Convert.ToHexStringLower(exported.ReadOnlySpan), key.ToString(), StringComparison.Ordinal);
    }

    /// <summary>Skipped, with the reason in the test report, where .NET's MLDsa is unavailable (OpenSSL below 3.5).</summary>
    private sealed class FactWhereDotNetMLDsaIsSupportedAttribute : FactAttribute
    {
        public FactWhereDotNetMLDsaIsSupportedAttribute()
        {
            if (!MLDsa.IsSupported)
            {
                Skip = "System.Security.Cryptography.MLDsa is not supported on this machine (it needs OpenSSL 3.5 or later): the cross-check with .NET's ML-DSA did not run";
            }
        }
    }

    /// <summary>Whatever the platform, .NET's MLDsa says truthfully whether it works (Conclave never depends on it).</summary>
    [Fact]
    public void DotNetMLDsa_ReportsItsSupportTruthfully()
    {
        byte[] seed = TestSeed.Bytes(32, "seed");
        if (MLDsa.IsSupported)
        {
            using MLDsa dotnet = MLDsa.ImportMLDsaPrivateSeed(MLDsaAlgorithm.MLDsa65, seed);
            Assert.Equal(1952, dotnet.ExportMLDsaPublicKey().Length);
        }
        else
        {
            Assert.Throws<PlatformNotSupportedException>(() => MLDsa.ImportMLDsaPrivateSeed(MLDsaAlgorithm.MLDsa65, seed));
        }
    }

    /// <summary>
    /// .NET's own System.Security.Cryptography.MLDsa needs OpenSSL 3.5. Where it is supported it must agree with
    /// Conclave (same public key from the seed, each verifies the other's signatures); where it is not (Debian 12,
    /// OpenSSL 3.0) this test is reported as skipped, with the reason.
    /// </summary>
    [FactWhereDotNetMLDsaIsSupported]
    public void DotNetMLDsa_AgreesWithConclave()
    {
        byte[] seed = TestSeed.Bytes(32, "seed");
        byte[] msg = "agree"u8.ToArray();
        byte[] ctx = "c"u8.ToArray();
        using SoftwareSigningKey key = PostQuantumSchemes.MlDsa65.ImportPrivateKey(seed);
        using MLDsa dotnet = MLDsa.ImportMLDsaPrivateSeed(MLDsaAlgorithm.MLDsa65, seed);
        Assert.Equal(key.PublicKey.ToArray(), dotnet.ExportMLDsaPublicKey());
        byte[] theirs = dotnet.SignData(msg, ctx);
        Assert.True(PostQuantumSchemes.MlDsa65.Verify(key.PublicKey.Span, msg, theirs, ctx));
        byte[] ours = PostQuantumSchemes.MlDsa65.WithContext(ctx).ImportPrivateKey(seed).Sign(msg).Signature;
        Assert.True(dotnet.VerifyData(msg, ours, ctx));
    }
}
