using System.Text.Json.Nodes;
using Conclave.Crypto.Ed25519;
using Conclave.Crypto.Signing;

namespace Conclave.Crypto.Tests;

/// <summary>Signing with non-hardened children of a single ed25519 key (Ed25519HdDerivation.SignWithChild).</summary>
public sealed class Ed25519ChildSigningTests
{
    [Fact]
    public void EmptyPath_IsTheKeyItself_AndItsSignaturesVerify()
    {
        var rng = TestSeed.For("key and chain code");
        using SoftwareSigningKey key = SignatureSchemes.Ed25519.GenerateKey(KeyExportPolicy.AllowExport, rng);
        using var seed = key.ExportPrivateKey();
        byte[] chainCode = new byte[32];
        rng.Fill(chainCode);
        (byte[] sig, byte[] pub) = Ed25519HdDerivation.SignWithChild(seed.ReadOnlySpan, chainCode, [], "m"u8);
        Assert.Equal(key.PublicKey.ToArray(), pub);
        Assert.True(SignatureSchemes.Ed25519.Verify(pub, "m"u8, sig));
    }

    [Fact]
    public void ChildKeys_AreTheTweakedKeys_SignDeterministically_AndNobleAccepts()
    {
        var rng = TestSeed.For("keys, chain codes and messages");
        var cases = new List<object>();
        for (int i = 0; i < 40; i++)
        {
            using SoftwareSigningKey key = SignatureSchemes.Ed25519.GenerateKey(KeyExportPolicy.AllowExport, rng);
            using var seed = key.ExportPrivateKey();
            byte[] chainCode = new byte[32];
            rng.Fill(chainCode);
            uint[] path = [(uint)i, 7, 2_147_483_647u - (uint)i];
            byte[] message = new byte[i * 3];
            rng.Fill(message);

            // The child public key is A + Σ t·B with the tweaks of Ed25519HdDerivation.Tweak (what POST /derive reports).
            Ed25519Point expected = Ed25519Point.Parse(key.PublicKey.Span);
            byte[] c = chainCode;
            foreach (uint index in path)
            {
                (Ed25519Scalar t, byte[] next) = Ed25519HdDerivation.Tweak(expected.ToBytes(), c, index);
                expected += Ed25519Point.MultiplyGenerator(t);
                c = next;
            }

            (byte[] sig, byte[] pub) = Ed25519HdDerivation.SignWithChild(seed.ReadOnlySpan, chainCode, path, message);
            Assert.Equal(expected.ToBytes(), pub);
            Assert.True(SignatureSchemes.Ed25519.Verify(pub, message, sig));
            Assert.False(SignatureSchemes.Ed25519.Verify(key.PublicKey.Span, message, sig));
            Assert.Equal(sig, Ed25519HdDerivation.SignWithChild(seed.ReadOnlySpan, chainCode, path, message).Signature);
            cases.Add(new { scheme = "ed25519", publicKey = Hex.Encode(pub), input = Hex.Encode(message), signature = Hex.Encode(sig) });
        }

        JsonArray results = NodeInterop.Run("signatures", cases);
        Assert.Equal(40, cases.Count);
        Assert.Equal(cases.Count, results.Count);
        Assert.Equal(40, results.Count(r => r!["ok"]!.GetValue<bool>()));
    }

    [Fact]
    public void BadInput_IsRefused()
    {
        Assert.Throws<CryptoFormatException>(() => Ed25519HdDerivation.SignWithChild(new byte[31], new byte[32], [1], []));
        Assert.Throws<CryptoFormatException>(() => Ed25519HdDerivation.SignWithChild(new byte[32], new byte[31], [1], []));
        Assert.Throws<CryptoFormatException>(() => Ed25519HdDerivation.SignWithChild(new byte[32], new byte[32], [0x8000_0000u], []));
    }
}
