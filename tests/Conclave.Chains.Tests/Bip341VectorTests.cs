using System.Text.Json;
using Conclave.Chains.Bitcoin;
using Conclave.Crypto.Hashing;
using Conclave.Crypto.Secp256k1;
using Conclave.Crypto.Signing;

namespace Conclave.Chains.Tests;

/// <summary>
/// BIP-341 wallet-test-vectors.json, both sections, counted exactly: the 7 scriptPubKey cases (in ChainVectorTests) and
/// the 7 inputs of keyPathSpending here. Conclave has no Bitcoin transaction serializer, so SigMsg itself (BIP-341
/// "Common signature message") is taken from the vector; everything after it is Conclave's: the TapTweak, the tweaked
/// output key, the TapSighash and the BIP-340 signature in the witness.
/// </summary>
public sealed class Bip341VectorTests
{
    [Fact]
    public void KeyPathSpending_EveryInput_TweakSighashAndWitnessSignature()
    {
        using JsonDocument d = JsonDocument.Parse(File.ReadAllText(RepoPaths.Vector("bip341/wallet-test-vectors.json")));
        JsonElement[] sections = [.. d.RootElement.GetProperty("keyPathSpending").EnumerateArray()];
        Assert.Single(sections);
        JsonElement[] inputs = [.. sections[0].GetProperty("inputSpending").EnumerateArray()];
        Assert.Equal(7, inputs.Length);
        byte[] zeroAux = new byte[32];
        int withHashTypeByte = 0;
        foreach (JsonElement input in inputs)
        {
            JsonElement given = input.GetProperty("given");
            JsonElement mid = input.GetProperty("intermediary");
            byte[] internalPrivate = Convert.FromHexString(given.GetProperty("internalPrivkey").GetString()!);
            JsonElement root = given.GetProperty("merkleRoot");
            byte[] merkleRoot = root.ValueKind == JsonValueKind.Null ? [] : Convert.FromHexString(root.GetString()!);
            int hashType = given.GetProperty("hashType").GetInt32();

            // Internal key P = x(d·G).
            using SoftwareSigningKey internalKey = SchnorrBip340.Instance.ImportPrivateKey(internalPrivate);
            byte[] p = internalKey.PublicKey.ToArray();
            Assert.Equal(mid.GetProperty("internalPubkey").GetString(), Convert.ToHexStringLower(p));

            // t = hash_TapTweak(P ‖ merkle root), Q = P + t·G (BIP-341 taproot_tweak_pubkey), and Q is the key of the tweaked private key.
            Assert.Equal(mid.GetProperty("tweak").GetString(), Convert.ToHexStringLower(TaggedHash.HashData("TapTweak", [.. p, .. merkleRoot])));
            (byte[] q, _) = merkleRoot.Length == 0 ? TaprootAddress.Bip86OutputKey(p) : TaprootAddress.TweakPublicKey(p, merkleRoot);
            byte[] tweakedPrivate = Convert.FromHexString(mid.GetProperty("tweakedPrivkey").GetString()!);
            using (SoftwareSigningKey tweaked = SchnorrBip340.Instance.ImportPrivateKey(tweakedPrivate))
            {
                Assert.Equal(Convert.ToHexStringLower(q), Convert.ToHexStringLower(tweaked.PublicKey.Span));
            }

            // sigHash = hash_TapSighash(SigMsg) (the vector's SigMsg already starts with the epoch byte 0x00).
            byte[] sigHash = TaggedHash.HashData("TapSighash", Convert.FromHexString(mid.GetProperty("sigMsg").GetString()!));
            Assert.Equal(mid.GetProperty("sigHash").GetString(), Convert.ToHexStringLower(sigHash));

            // The witness: BIP-340 signature with 32 zero bytes of aux_rand, then the hash type byte unless it is SIGHASH_DEFAULT.
            byte[] witness = Convert.FromHexString(input.GetProperty("expected").GetProperty("witness")[0].GetString()!);
            byte[] sig = new byte[64];
            SchnorrBip340.Sign(tweakedPrivate, sigHash, zeroAux, sig);
            Assert.Equal(Convert.ToHexStringLower(witness.AsSpan(0, 64)), Convert.ToHexStringLower(sig));
            if (hashType == 0)
            {
                Assert.Equal(64, witness.Length);
            }
            else
            {
                Assert.Equal(65, witness.Length);
                Assert.Equal(hashType, witness[64]);
                withHashTypeByte++;
            }

            Assert.True(SchnorrBip340.Instance.Verify(q, sigHash, sig));
        }

        Assert.True(withHashTypeByte is > 0 and < 7, "the vector mixes SIGHASH_DEFAULT and explicit hash types");
    }
}
