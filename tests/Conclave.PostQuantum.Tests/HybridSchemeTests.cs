using System.Security.Cryptography;
using Conclave.Crypto.Ed25519;
using Conclave.Crypto.Secp256k1;
using Conclave.Crypto.Signing;
using Conclave.Testing;

namespace Conclave.PostQuantum.Tests;

public sealed class HybridSchemeTests
{
    public static TheoryData<string> Names => new() { "hybrid-ed25519-ml-dsa-65", "hybrid-ecdsa-ml-dsa-65" };

    private static HybridSignatureScheme Get(string name) => (HybridSignatureScheme)(PostQuantumSchemes.TryGet(name, out var s) ? s! : throw new InvalidOperationException());

    [Theory]
    [MemberData(nameof(Names))]
    public void Layout_IsComposite_AndBothComponentsVerifyIndependently(string name)
    {
        HybridSignatureScheme scheme = Get(name);
        using SoftwareSigningKey key = scheme.GenerateKey(KeyExportPolicy.AllowExport, TestSeed.For("key " + name));
        using var secret = key.ExportPrivateKey();
        byte[] msg = "margin-call"u8.ToArray();
        byte[] sig = key.Sign(msg).Signature;
        Assert.Equal(3309 + 64, sig.Length);
        Assert.Equal(64, secret.Length);
        Assert.True(scheme.Verify(key.PublicKey.Span, msg, sig));

        // Public key = ML-DSA-65 pk ‖ classical pk, each derived from its half of the stored key.
        byte[] pqPk = PostQuantumSchemes.MlDsa65.ImportPrivateKey(secret.ReadOnlySpan[..32]).PublicKey.ToArray();
        SoftwareSignatureScheme classical = name.Contains("ed25519", StringComparison.Ordinal) ? Ed25519Signature.Instance : EcdsaSecp256k1.Instance;
        byte[] tradPk = classical.ImportPrivateKey(secret.ReadOnlySpan[32..]).PublicKey.ToArray();
        Assert.Equal([.. pqPk, .. tradPk], key.PublicKey.ToArray());

        // M' = "CompositeAlgorithmSignatures2025" ‖ Label ‖ len(ctx) ‖ ctx ‖ SHA-512(M), rebuilt here independently.
        byte[] mPrime = [.. "CompositeAlgorithmSignatures2025"u8, .. scheme.Label.Span, 0, .. SHA512.HashData(msg)];
        Assert.Equal(mPrime, scheme.MessageRepresentative(msg, []));
        Assert.True(PostQuantumSchemes.MlDsa65.Verify(pqPk, mPrime, sig[..3309], scheme.Label.Span));
        bool tradOk = classical is Ed25519Signature
            ? classical.Verify(tradPk, mPrime, sig[3309..])
            : classical.Verify(tradPk, SHA256.HashData(mPrime), sig[3309..]);
        Assert.True(tradOk);

        // Stripping: the ML-DSA component is not a valid plain ML-DSA signature on the message (label as context, M').
        Assert.False(PostQuantumSchemes.MlDsa65.Verify(pqPk, msg, sig[..3309]));
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void VerificationNeedsBothComponents(string name)
    {
        HybridSignatureScheme scheme = Get(name);
        using SoftwareSigningKey key = scheme.GenerateKey(random: TestSeed.For("key@51"));
        using SoftwareSigningKey other = scheme.GenerateKey(random: TestSeed.For("key@52"));
        byte[] msg = "liquidate"u8.ToArray();
        byte[] sig = key.Sign(msg).Signature;
        byte[] otherSig = other.Sign(msg).Signature;

        byte[] pqBroken = (byte[])sig.Clone();
        pqBroken[100] ^= 1;
        byte[] tradBroken = (byte[])sig.Clone();
        tradBroken[^5] ^= 1;
        Assert.False(scheme.Verify(key.PublicKey.Span, msg, pqBroken));
        Assert.False(scheme.Verify(key.PublicKey.Span, msg, tradBroken));

        // Mixing halves of two valid signatures, or of two public keys, fails.
        byte[] mixedSig = [.. sig[..3309], .. otherSig[3309..]];
        Assert.False(scheme.Verify(key.PublicKey.Span, msg, mixedSig));
        byte[] mixedPk = [.. key.PublicKey.Span[..1952], .. other.PublicKey.Span[1952..]];
        Assert.False(scheme.Verify(mixedPk, msg, sig));
        Assert.False(scheme.Verify(key.PublicKey.Span, msg, sig.AsSpan(..^1)));
    }

    [Fact]
    public void SignaturesDoNotTransferBetweenHybrids_OrContexts()
    {
        byte[] seed = TestSeed.Bytes(32, "seed");
        byte[] msg = "settle"u8.ToArray();
        // Same ML-DSA seed under both hybrids: the label (ML-DSA context and M' prefix) keeps the components apart.
        byte[] edSecret = [.. seed, .. TestSeed.Bytes(32, "ed25519 secret")];
        using SoftwareSigningKey ed = PostQuantumSchemes.HybridEd25519MlDsa65.ImportPrivateKey(edSecret);
        byte[] sig = ed.Sign(msg).Signature;
        Assert.NotEqual(PostQuantumSchemes.HybridEd25519MlDsa65.Label.ToArray(), PostQuantumSchemes.HybridEcdsaMlDsa65.Label.ToArray());
        Assert.False(PostQuantumSchemes.MlDsa65.Verify(ed.PublicKey.Span[..1952], PostQuantumSchemes.HybridEcdsaMlDsa65.MessageRepresentative(msg, []), sig[..3309], PostQuantumSchemes.HybridEcdsaMlDsa65.Label.Span));

        HybridSignatureScheme withCtx = PostQuantumSchemes.HybridEd25519MlDsa65.WithContext("venue"u8);
        using SoftwareSigningKey ctxKey = withCtx.ImportPrivateKey(edSecret);
        byte[] ctxSig = ctxKey.Sign(msg).Signature;
        Assert.True(withCtx.Verify(ctxKey.PublicKey.Span, msg, ctxSig));
        Assert.True(PostQuantumSchemes.HybridEd25519MlDsa65.Verify(ctxKey.PublicKey.Span, msg, ctxSig, "venue"u8));
        Assert.False(PostQuantumSchemes.HybridEd25519MlDsa65.Verify(ctxKey.PublicKey.Span, msg, ctxSig));

        using SoftwareSigningKey det = PostQuantumSchemes.HybridEd25519MlDsa65.WithDeterministicSigning().ImportPrivateKey(edSecret);
        Assert.Equal(det.Sign(msg).Signature, det.Sign(msg).Signature);
    }

    [Fact]
    public void EcdsaHybrid_RejectsInvalidScalar()
    {
        byte[] bad = [.. new byte[32], .. new byte[32]]; // secp256k1 scalar 0
        Assert.Throws<Conclave.Crypto.CryptoFormatException>(() => PostQuantumSchemes.HybridEcdsaMlDsa65.ImportPrivateKey(bad));
        byte[] overOrder = [.. new byte[32], .. Enumerable.Repeat((byte)0xff, 32)];
        Assert.Throws<Conclave.Crypto.CryptoFormatException>(() => PostQuantumSchemes.HybridEcdsaMlDsa65.ImportPrivateKey(overOrder));
    }
}
