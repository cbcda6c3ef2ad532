using System.Text.Json.Nodes;
using Conclave.Crypto.Hashing;
using Conclave.Crypto.Secp256k1;
using Conclave.Crypto.Signing;

namespace Conclave.Crypto.Tests;

/// <summary>
/// Conclave's signatures checked by independent verifiers (tests/interop: @noble/curves and ethers v6):
/// 200 random key/message pairs per scheme; for ECDSA, the address ethers recovers equals Conclave's.
/// </summary>
public sealed class InteropTests
{
    private const int PairsPerScheme = 200;

    [Theory]
    [InlineData("ecdsa-secp256k1")]
    [InlineData("schnorr-bip340")]
    [InlineData("ed25519")]
    public void IndependentVerifiersAccept(string name)
    {
        Assert.True(SignatureSchemes.TryGet(name, out SoftwareSignatureScheme? scheme));
        var rng = TestSeed.For(name);
        var cases = new List<object>();
        var addresses = new List<string>();
        for (int i = 0; i < PairsPerScheme; i++)
        {
            using SoftwareSigningKey key = scheme!.GenerateKey(random: rng);
            byte[] message = new byte[i % 97];
            rng.Fill(message);
            byte[] input = scheme.InputKind == SignInputKind.Digest32 ? Keccak256.HashData(message) : message;
            SignatureResult sig = key.Sign(input);
            cases.Add(new { scheme = name, publicKey = Hex.Encode(key.PublicKey.Span), input = Hex.Encode(input), signature = Hex.Encode(sig.Signature), recoveryId = sig.RecoveryId });
            if (name == EcdsaSecp256k1.SchemeName)
            {
                byte[] uncompressed = Secp256k1Point.Parse(key.PublicKey.Span).ToUncompressed();
                addresses.Add("0x" + Hex.Encode(Keccak256.HashData(uncompressed.AsSpan(1))[12..]));
            }
        }

        JsonArray results = NodeInterop.Run("signatures", cases);
        Assert.Equal(PairsPerScheme, results.Count);
        for (int i = 0; i < results.Count; i++)
        {
            Assert.True(results[i]!["ok"]!.GetValue<bool>(), $"{name} case {i} rejected by the independent verifier");
            if (addresses.Count > 0)
            {
                Assert.Equal(addresses[i], results[i]!["address"]!.GetValue<string>());
            }
        }
    }
}
