using System.Numerics;
using System.Text.Json;
using Conclave.Crypto;
using Conclave.Crypto.Memory;
using Conclave.Wallets.Hd;
using Conclave.Wallets.Internal;

namespace Conclave.Wallets.Tests;

/// <summary>SLIP-0010 test vectors for secp256k1, nist256p1 (with the derivation-retry and seed-retry cases), ed25519 and curve25519.</summary>
public sealed class Slip10Tests
{
    private static readonly Lazy<JsonElement> s_file = new(() =>
        JsonDocument.Parse(File.ReadAllText(RepoPaths.Vector("slip10/slip10-test-vectors.json"))).RootElement);

    public static TheoryData<string> VectorNames()
    {
        var data = new TheoryData<string>();
        foreach (JsonElement v in s_file.Value.GetProperty("vectors").EnumerateArray())
        {
            data.Add(v.GetProperty("name").GetString()!);
        }

        return data;
    }

    [Fact]
    public void FileHasTheRetryCases()
    {
        string[] names = s_file.Value.GetProperty("vectors").EnumerateArray().Select(v => v.GetProperty("name").GetString()!).ToArray();
        Assert.Equal(10, names.Length);
        Assert.Contains("Test derivation retry for nist256p1", names);
        Assert.Contains("Test seed retry for nist256p1", names);
    }

    [Theory]
    [MemberData(nameof(VectorNames))]
    public void Vector(string name)
    {
        JsonElement v = s_file.Value.GetProperty("vectors").EnumerateArray().Single(e => e.GetProperty("name").GetString() == name);
        HdCurve curve = HdCurve.Get(v.GetProperty("curve").GetString()!);
        using ExtendedPrivateKey master = ExtendedPrivateKey.FromSeed(Hex.Decode(v.GetProperty("seed_hex").GetString()!), curve);
        foreach (JsonElement chain in v.GetProperty("chains").EnumerateArray())
        {
            using ExtendedPrivateKey key = master.Derive(chain.GetProperty("path").GetString()!);
            using SecretBuffer sk = key.ExportPrivateKey();
            Assert.Equal(chain.GetProperty("private").GetString(), Hex.Encode(sk.Span));
            Assert.Equal(chain.GetProperty("chain_code").GetString(), Hex.Encode(key.GetChainCode()));
            string expectedPublic = chain.GetProperty("public").GetString()!;
            string publicHex = Hex.Encode(key.PublicKey);
            Assert.Equal(expectedPublic, curve.PublicKeySizeInBytes == 32 ? "00" + publicHex : publicHex);
            Assert.Equal(chain.GetProperty("fingerprint").GetString(), key.ParentFingerprint.ToString("x8"));
        }
    }

    [Fact]
    public void Ed25519RefusesNonHardenedChildren()
    {
        using ExtendedPrivateKey master = ExtendedPrivateKey.FromSeed(Hex.Decode("000102030405060708090a0b0c0d0e0f"), HdCurve.Ed25519);
        var e = Assert.Throws<CryptoFormatException>(() => master.Derive("m/44'/501'/0'/0"));
        Assert.Equal("invalid key path: ed25519 (SLIP-10) derives hardened children only; the index at depth 4 is not hardened", e.Message);
        Assert.Throws<CryptoFormatException>(() => master.DeriveChild(1));
        Assert.Throws<CryptoFormatException>(() => master.ToExtendedPublicKey());
        Assert.Throws<CryptoFormatException>(() => master.ToExtendedKeyString());
    }

    [Fact]
    public void Nist256p1NonHardenedPrivateDerivationWorks()
    {
        // Covered by the vectors (m/0H/1 etc.); here: the constant-time modular addition against BigInteger.
        var order = BigInteger.Parse("0FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551", System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture);
        var mod = new Modular256(order.ToByteArray(isUnsigned: true, isBigEndian: true));
        var rng = TestSeed.For("operands");
        byte[] a = new byte[32], b = new byte[32], r = new byte[32];
        for (int i = 0; i < 2000; i++)
        {
            rng.Fill(a);
            rng.Fill(b);
            if (i % 7 == 0)
            {
                (order - 1 - (i % 3)).ToByteArray(isUnsigned: true, isBigEndian: true).CopyTo(a, 0);
            }

            var ba = new BigInteger(a, isUnsigned: true, isBigEndian: true);
            var bb = new BigInteger(b, isUnsigned: true, isBigEndian: true);
            bool aOk = ba > 0 && ba < order;
            Assert.Equal(aOk, mod.IsInRangeNonZero(a));
            if (ba >= order || bb >= order)
            {
                continue;
            }

            bool nonZero = mod.AddMod(a, b, r);
            BigInteger expected = (ba + bb) % order;
            Assert.Equal(expected, new BigInteger(r, isUnsigned: true, isBigEndian: true));
            Assert.Equal(!expected.IsZero, nonZero);
        }

        Assert.False(mod.IsInRangeNonZero(new byte[32]));
        Assert.False(mod.IsInRangeNonZero(order.ToByteArray(isUnsigned: true, isBigEndian: true)));
        byte[] one = new byte[32];
        one[31] = 1;
        Assert.False(mod.AddMod((order - 1).ToByteArray(isUnsigned: true, isBigEndian: true), one, r));
    }

    [Fact]
    public void CurveNamesResolve()
    {
        foreach (HdCurve c in HdCurve.All)
        {
            Assert.Same(c, HdCurve.Get(c.Name));
            Assert.Equal(c.Name, c.ToString());
        }

        Assert.Same(HdCurve.Nist256p1, HdCurve.Get("P256"));
        Assert.Throws<CryptoFormatException>(() => HdCurve.Get("ed448"));
    }
}
