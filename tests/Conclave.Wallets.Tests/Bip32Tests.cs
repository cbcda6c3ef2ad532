using System.Text.Json;
using Conclave.Crypto;
using Conclave.Crypto.Memory;
using Conclave.Crypto.Secp256k1;
using Conclave.Wallets.Hd;

namespace Conclave.Wallets.Tests;

/// <summary>BIP-32 test vectors 1–4 (derivation and serialization) and 5 (every invalid key refused).</summary>
public sealed class Bip32Tests
{
    private static readonly Lazy<JsonElement> s_file = new(() =>
        JsonDocument.Parse(File.ReadAllText(RepoPaths.Vector("bip32/bip32-test-vectors.json"))).RootElement);

    public static TheoryData<int> VectorNumbers()
    {
        var data = new TheoryData<int>();
        for (int i = 0; i < s_file.Value.GetProperty("vectors").GetArrayLength(); i++)
        {
            data.Add(i);
        }

        return data;
    }

    [Fact]
    public void FileHasVectorsOneToFour() => Assert.Equal(4, s_file.Value.GetProperty("vectors").GetArrayLength());

    [Theory]
    [MemberData(nameof(VectorNumbers))]
    public void PrivateDerivationAndSerialization(int vector)
    {
        JsonElement v = s_file.Value.GetProperty("vectors")[vector];
        byte[] seed = Hex.Decode(v.GetProperty("seed_hex").GetString()!);
        using ExtendedPrivateKey master = ExtendedPrivateKey.FromSeed(seed);
        foreach (JsonElement chain in v.GetProperty("chains").EnumerateArray())
        {
            KeyPath path = KeyPath.Parse(chain.GetProperty("path").GetString()!);
            uint[] expectedIndices = chain.GetProperty("path_indices").EnumerateArray().Select(e => e.GetUInt32()).ToArray();
            Assert.Equal(expectedIndices, path.Indices.ToArray());

            using ExtendedPrivateKey key = master.Derive(path);
            JsonElement d = chain.GetProperty("decoded");
            Assert.Equal(chain.GetProperty("ext_prv").GetString(), key.ToExtendedKeyString());
            Assert.Equal(chain.GetProperty("ext_pub").GetString(), key.ToExtendedPublicKey().ToExtendedKeyString());
            Assert.Equal(d.GetProperty("depth").GetInt32(), key.Depth);
            Assert.Equal(d.GetProperty("parent_fingerprint").GetString(), key.ParentFingerprint.ToString("x8"));
            Assert.Equal(d.GetProperty("child_number").GetUInt32(), key.ChildNumber);
            Assert.Equal(d.GetProperty("chain_code").GetString(), Hex.Encode(key.GetChainCode()));
            Assert.Equal(d.GetProperty("public_key_compressed").GetString(), Hex.Encode(key.PublicKey));
            using SecretBuffer sk = key.ExportPrivateKey();
            Assert.Equal(d.GetProperty("private_key").GetString(), Hex.Encode(sk.Span));
        }
    }

    /// <summary>
    /// Bip32NonHardenedPrivateDerivation (k + Σ IL) gives the same child private keys as BIP-32's CKDpriv for every
    /// non-hardened step the vectors take, and with an even-Y parent the child of lift_x(P).
    /// </summary>
    [Theory]
    [MemberData(nameof(VectorNumbers))]
    public void NonHardenedPrivateDerivation_MatchesCkdPriv(int vector)
    {
        JsonElement v = s_file.Value.GetProperty("vectors")[vector];
        using ExtendedPrivateKey master = ExtendedPrivateKey.FromSeed(Hex.Decode(v.GetProperty("seed_hex").GetString()!));
        int steps = 0;
        foreach (JsonElement chain in v.GetProperty("chains").EnumerateArray())
        {
            KeyPath path = KeyPath.Parse(chain.GetProperty("path").GetString()!);
            if (path.IsRoot || KeyPath.IsHardened(path.Indices[^1]))
            {
                continue;
            }

            using ExtendedPrivateKey parent = master.Derive(path.Parent);
            using SecretBuffer parentKey = parent.ExportPrivateKey();
            using SecretBuffer child = Bip32NonHardenedPrivateDerivation.DeriveChild(parentKey.ReadOnlySpan, parent.GetChainCode(), KeyPath.FromIndices([path.Indices[^1]]));
            Assert.Equal(chain.GetProperty("decoded").GetProperty("private_key").GetString(), Hex.Encode(child.ReadOnlySpan));
            steps++;

            // As an x-only (BIP-340) parent: the child's public key is CKDpub of 02 ‖ x.
            using SecretBuffer xChild = Bip32NonHardenedPrivateDerivation.DeriveChild(parentKey.ReadOnlySpan, parent.GetChainCode(), KeyPath.FromIndices([path.Indices[^1], 3]), evenYParent: true);
            Secp256k1Point evenParent = Secp256k1Point.Parse([0x02, .. parent.PublicKey[1..]]);
            Bip32PathTweak expected = Bip32PublicDerivation.ComputeTweak(evenParent, parent.GetChainCode(), KeyPath.FromIndices([path.Indices[^1], 3]));
            Assert.True(Secp256k1Scalar.TryFromBytes(xChild.ReadOnlySpan, out Secp256k1Scalar xk));
            Assert.Equal(expected.ChildPublicKey.ToCompressed(), Secp256k1Point.MultiplyGenerator(xk).ToCompressed());
        }

        Assert.True(steps > 0 || vector >= 2, $"vector {vector + 1} has no non-hardened step"); // vectors 3 and 4 are hardened only
    }

    [Theory]
    [MemberData(nameof(VectorNumbers))]
    public void ParsingRoundTripsAndPublicDerivationAgrees(int vector)
    {
        JsonElement[] chains = s_file.Value.GetProperty("vectors")[vector].GetProperty("chains").EnumerateArray().ToArray();
        for (int c = 0; c < chains.Length; c++)
        {
            string xprv = chains[c].GetProperty("ext_prv").GetString()!;
            string xpub = chains[c].GetProperty("ext_pub").GetString()!;
            using ExtendedPrivateKey prv = ExtendedPrivateKey.Parse(xprv, out Bip32Network network);
            Assert.Same(Bip32Network.Mainnet, network);
            Assert.Equal(xprv, prv.ToExtendedKeyString());
            ExtendedPublicKey pub = ExtendedPublicKey.Parse(xpub);
            Assert.Equal(xpub, pub.ToExtendedKeyString());
            Assert.Equal(xpub, pub.ToString());
            Assert.Equal(pub, prv.ToExtendedPublicKey());

            // Testnet versions round-trip too.
            string tprv = prv.ToExtendedKeyString(Bip32Network.Testnet);
            string tpub = pub.ToExtendedKeyString(Bip32Network.Testnet);
            Assert.StartsWith("tprv", tprv, StringComparison.Ordinal);
            Assert.StartsWith("tpub", tpub, StringComparison.Ordinal);
            using ExtendedPrivateKey fromT = ExtendedPrivateKey.Parse(tprv, out Bip32Network tn);
            Assert.Same(Bip32Network.Testnet, tn);
            Assert.Equal(xprv, fromT.ToExtendedKeyString());
            Assert.Equal(xpub, ExtendedPublicKey.Parse(tpub).ToExtendedKeyString());

            // Each non-hardened step of the chain, from the previous node's xpub (CKDpub).
            if (c > 0 && chains[c].GetProperty("path_indices").EnumerateArray().Last().GetUInt32() < KeyPath.HardenedOffset)
            {
                ExtendedPublicKey parent = ExtendedPublicKey.Parse(chains[c - 1].GetProperty("ext_pub").GetString()!);
                uint index = chains[c].GetProperty("path_indices").EnumerateArray().Last().GetUInt32();
                Assert.Equal(xpub, parent.DeriveChild(index).ToExtendedKeyString());
            }
        }
    }

    [Fact]
    public void Vector5EveryInvalidKeyIsRefused()
    {
        JsonElement[] invalid = s_file.Value.GetProperty("invalid_extended_keys").EnumerateArray().ToArray();
        Assert.Equal(16, invalid.Length);
        foreach (JsonElement item in invalid)
        {
            string key = item.GetProperty("key").GetString()!;
            string reason = item.GetProperty("reason").GetString()!;
            var e1 = Assert.Throws<CryptoFormatException>(() => ExtendedPublicKey.Parse(key));
            var e2 = Assert.Throws<CryptoFormatException>(() => ExtendedPrivateKey.Parse(key));
            Assert.StartsWith("invalid extended key: ", e1.Message, StringComparison.Ordinal);
            Assert.StartsWith("invalid extended key: ", e2.Message, StringComparison.Ordinal);
            Assert.False(ExtendedPublicKey.TryParse(key, out _), reason);
            Assert.False(ExtendedPrivateKey.TryParse(key, out _), reason);
        }
    }

    [Fact]
    public void Vector5ReasonsAreReported()
    {
        string Reason(int i) => s_file.Value.GetProperty("invalid_extended_keys")[i].GetProperty("key").GetString()!;
        Assert.Contains("prefix 02 or 03", Assert.Throws<CryptoFormatException>(() => ExtendedPublicKey.Parse(Reason(0))).Message, StringComparison.Ordinal);
        Assert.Contains("must start with 0x00", Assert.Throws<CryptoFormatException>(() => ExtendedPrivateKey.Parse(Reason(1))).Message, StringComparison.Ordinal);
        Assert.Contains("parent fingerprint", Assert.Throws<CryptoFormatException>(() => ExtendedPrivateKey.Parse(Reason(6))).Message, StringComparison.Ordinal);
        Assert.Contains("child number", Assert.Throws<CryptoFormatException>(() => ExtendedPrivateKey.Parse(Reason(8))).Message, StringComparison.Ordinal);
        Assert.Contains("unknown version", Assert.Throws<CryptoFormatException>(() => ExtendedPrivateKey.Parse(Reason(10))).Message, StringComparison.Ordinal);
        Assert.Contains("1..n-1", Assert.Throws<CryptoFormatException>(() => ExtendedPrivateKey.Parse(Reason(12))).Message, StringComparison.Ordinal);
        Assert.Contains("not a point", Assert.Throws<CryptoFormatException>(() => ExtendedPublicKey.Parse(Reason(14))).Message, StringComparison.Ordinal);
        Assert.Contains("checksum", Assert.Throws<CryptoFormatException>(() => ExtendedPrivateKey.Parse(Reason(15))).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void HardenedPublicDerivationIsRefused()
    {
        using ExtendedPrivateKey master = ExtendedPrivateKey.FromSeed(Hex.Decode("000102030405060708090a0b0c0d0e0f"));
        ExtendedPublicKey xpub = master.ToExtendedPublicKey();
        var e = Assert.Throws<CryptoFormatException>(() => xpub.DeriveChild(KeyPath.Hardened(0)));
        Assert.Contains("hardened child cannot be derived from a public key", e.Message, StringComparison.Ordinal);
        var p = Assert.Throws<CryptoFormatException>(() => xpub.Derive("m/0/1'/2"));
        Assert.Contains("depth 2", p.Message, StringComparison.Ordinal);
        Assert.Throws<CryptoFormatException>(() => Bip32PublicDerivation.ComputeTweak(xpub.Point, xpub.ChainCode, KeyPath.Parse("m/1h")));
    }

    [Fact]
    public void TweakMatchesPrivateDerivation()
    {
        var rng = TestSeed.For("seed");
        byte[] seed = new byte[32];
        rng.Fill(seed);
        using ExtendedPrivateKey master = ExtendedPrivateKey.FromSeed(seed);
        using ExtendedPrivateKey account = master.Derive("m/44'/60'/0'");
        ExtendedPublicKey accountPub = account.ToExtendedPublicKey();
        KeyPath relative = KeyPath.Parse("m/0/7/123456");
        Bip32PathTweak tweak = Bip32PublicDerivation.ComputeTweak(accountPub.Point, accountPub.ChainCode, relative);

        using ExtendedPrivateKey child = account.Derive(relative);
        using SecretBuffer parentSk = account.ExportPrivateKey();
        using SecretBuffer childSk = child.ExportPrivateKey();
        Secp256k1Scalar expected = Secp256k1Scalar.FromBytes(parentSk.Span) + tweak.Tweak;
        Assert.Equal(Hex.Encode(childSk.Span), Hex.Encode(expected.ToBytes()));
        Assert.Equal(Hex.Encode(child.PublicKey), Hex.Encode(tweak.ChildPublicKey.ToCompressed()));
        Assert.Equal(Hex.Encode(child.GetChainCode()), Hex.Encode(tweak.ChildChainCode.Span));
        Assert.Equal(child.ToExtendedPublicKey().ToExtendedKeyString(), accountPub.Derive(relative).ToExtendedKeyString());

        Bip32ChildTweak one = Bip32PublicDerivation.ComputeTweak(accountPub.Point, accountPub.ChainCode, 0);
        Assert.Equal(accountPub.DeriveChild(0).Point, one.ChildPublicKey);
        Assert.Equal(accountPub.Point + Secp256k1Point.MultiplyGenerator(one.Tweak), one.ChildPublicKey);
    }

    [Fact]
    public void PrivateKeysAreDisposableAndNeverPrinted()
    {
        var key = ExtendedPrivateKey.FromSeed(Hex.Decode("000102030405060708090a0b0c0d0e0f"));
        string privateHex;
        using (SecretBuffer sk = key.ExportPrivateKey())
        {
            privateHex = Hex.Encode(sk.Span);
        }

        string text = key.ToString();
        Assert.DoesNotContain(privateHex, text, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(Hex.Encode(key.GetChainCode()), text, StringComparison.OrdinalIgnoreCase);
        Assert.Equal("ExtendedPrivateKey(secp256k1, depth 0, child 0, fingerprint 3442193e)", text);

        key.Dispose();
        key.Dispose();
        Assert.True(key.IsDisposed);
        Assert.Throws<ObjectDisposedException>(() => key.DeriveChild(0));
        Assert.Throws<ObjectDisposedException>(() => key.ExportPrivateKey());
        Assert.Throws<ObjectDisposedException>(() => key.ToExtendedKeyString());
        Assert.Throws<ObjectDisposedException>(() => key.GetChainCode());
    }

    [Fact]
    public void DeriveOfTheEmptyPathIsAnIndependentCopy()
    {
        using ExtendedPrivateKey master = ExtendedPrivateKey.FromSeed(Hex.Decode("000102030405060708090a0b0c0d0e0f"));
        ExtendedPrivateKey copy = master.Derive(KeyPath.Root);
        Assert.NotSame(master, copy);
        copy.Dispose();
        Assert.False(master.IsDisposed);
        Assert.Equal("xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtRBeJgk33yuGBxrMPHi", master.ToExtendedKeyString());
    }

    [Fact]
    public void SeedLengthIsChecked()
    {
        Assert.Throws<CryptoFormatException>(() => ExtendedPrivateKey.FromSeed(new byte[15]));
        Assert.Throws<CryptoFormatException>(() => ExtendedPrivateKey.FromSeed(new byte[65]));
    }
}
