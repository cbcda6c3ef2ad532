using System.Text.Json;
using Conclave.Chains.Bitcoin;
using Conclave.Crypto;
using Conclave.Crypto.Memory;
using Conclave.Crypto.Secp256k1;
using Conclave.Crypto.Signing;

namespace Conclave.Chains.Tests;

/// <summary>BIP-341 taproot_tweak_seckey (<see cref="TaprootPrivateKey"/>) against the BIP-341 wallet test vectors.</summary>
public sealed class TaprootKeyPathTests
{
    private static byte[] H(string hex) => Convert.FromHexString(hex);

    [Fact]
    public void Bip341_KeyPathSpending_TweakedPrivateKeys_AndSignatures()
    {
        using JsonDocument d = JsonDocument.Parse(File.ReadAllText(RepoPaths.Vector("bip341/wallet-test-vectors.json")));
        int checkedInputs = 0;
        foreach (JsonElement spending in d.RootElement.GetProperty("keyPathSpending").EnumerateArray())
        {
            foreach (JsonElement input in spending.GetProperty("inputSpending").EnumerateArray())
            {
                JsonElement given = input.GetProperty("given");
                JsonElement intermediary = input.GetProperty("intermediary");
                byte[] internalPrivateKey = H(given.GetProperty("internalPrivkey").GetString()!);
                JsonElement root = given.GetProperty("merkleRoot");
                byte[] merkleRoot = root.ValueKind == JsonValueKind.Null ? [] : H(root.GetString()!);
                using SecretBuffer tweaked = root.ValueKind == JsonValueKind.Null
                    ? TaprootPrivateKey.Bip86Tweak(internalPrivateKey)
                    : TaprootPrivateKey.Tweak(internalPrivateKey, merkleRoot);
                Assert.Equal(intermediary.GetProperty("tweakedPrivkey").GetString(), Convert.ToHexStringLower(tweaked.ReadOnlySpan));

                // The witness signature: BIP-340 with the tweaked key over the sighash (aux_rand = 32 zero bytes), then
                // the hash type byte unless it is SIGHASH_DEFAULT. It verifies under the output key TweakPublicKey gives.
                byte[] sigHash = H(intermediary.GetProperty("sigHash").GetString()!);
                byte[] witness = H(input.GetProperty("expected").GetProperty("witness")[0].GetString()!);
                var signature = new byte[64];
                SchnorrBip340.Sign(tweaked.ReadOnlySpan, sigHash, new byte[32], signature);
                Assert.Equal(witness[..64], signature);
                (byte[] outputKey, _) = TaprootAddress.TweakPublicKey(H(intermediary.GetProperty("internalPubkey").GetString()!), merkleRoot);
                Assert.True(SignatureSchemes.SchnorrBip340.Verify(outputKey, sigHash, signature));
                checkedInputs++;
            }
        }

        Assert.Equal(7, checkedInputs);
    }

    [Fact]
    public void Bip86Tweak_OfAnOddYKey_NegatesFirst_AndMatchesTheOutputKey()
    {
        // Keys with both parities of P: the signature verifies under Bip86OutputKey(x(P)) either way.
        int odd = 0;
        for (byte i = 1; i < 12; i++)
        {
            byte[] d0 = new byte[32];
            d0[31] = i;
            d0[0] = 0x42;
            using SoftwareSigningKey schnorr = SignatureSchemes.SchnorrBip340.ImportPrivateKey(d0);
            using SoftwareSigningKey ecdsa = SignatureSchemes.EcdsaSecp256k1.ImportPrivateKey(d0);
            byte[] px = schnorr.PublicKey.ToArray();
            odd += ecdsa.PublicKey.Span[0] == 0x03 ? 1 : 0;
            using SecretBuffer tweaked = TaprootPrivateKey.Bip86Tweak(d0);
            byte[] msg = [i];
            var sig = new byte[64];
            SchnorrBip340.Sign(tweaked.ReadOnlySpan, msg, new byte[32], sig);
            Assert.True(SignatureSchemes.SchnorrBip340.Verify(TaprootAddress.Bip86OutputKey(px).OutputKey, msg, sig));
            Assert.False(SignatureSchemes.SchnorrBip340.Verify(px, msg, sig));
        }

        Assert.InRange(odd, 1, 10);
    }

    [Fact]
    public void BadInputs_AreFormatErrors()
    {
        Assert.Throws<CryptoFormatException>(() => TaprootPrivateKey.Bip86Tweak(new byte[31]));
        Assert.Throws<CryptoFormatException>(() => TaprootPrivateKey.Bip86Tweak(new byte[32]));
        Assert.Throws<CryptoFormatException>(() => TaprootPrivateKey.Bip86Tweak(Enumerable.Repeat((byte)0xff, 32).ToArray()));
        byte[] one = new byte[32];
        one[31] = 1;
        Assert.Throws<CryptoFormatException>(() => TaprootPrivateKey.Tweak(one, new byte[31]));
    }
}
