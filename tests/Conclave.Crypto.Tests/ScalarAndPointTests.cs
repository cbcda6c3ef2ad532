using System.Numerics;
using Conclave.Crypto.Ed25519;
using Conclave.Crypto.Secp256k1;

namespace Conclave.Crypto.Tests;

public sealed class ScalarAndPointTests
{
    private static readonly BigInteger N = Secp256k1Scalar.Order;

    private static BigInteger Big(Secp256k1Scalar s) => new(s.ToBytes(), isUnsigned: true, isBigEndian: true);

    private static Secp256k1Scalar FromBig(BigInteger v)
    {
        byte[] b = new byte[32];
        ((v % N + N) % N).TryWriteBytes(b.AsSpan(32 - ((v % N + N) % N).GetByteCount(isUnsigned: true)), out _, isUnsigned: true, isBigEndian: true);
        return Secp256k1Scalar.FromBytes(b);
    }

    [Fact]
    public void Secp256k1Scalar_MatchesBigIntegerArithmetic()
    {
        var rng = TestSeed.For("scalars");
        Secp256k1Scalar[] edge = [Secp256k1Scalar.Zero, Secp256k1Scalar.One, -Secp256k1Scalar.One, FromBig(N - 2), FromBig(BigInteger.Pow(2, 255)), FromBig(BigInteger.Pow(2, 128) - 1)];
        var values = edge.Concat(Enumerable.Range(0, 300).Select(_ => Secp256k1Scalar.Random(rng))).ToArray();
        for (int i = 0; i < values.Length; i++)
        {
            Secp256k1Scalar a = values[i], b = values[(i * 7 + 3) % values.Length];
            BigInteger x = Big(a), y = Big(b);
            Assert.Equal((x + y) % N, Big(a + b));
            Assert.Equal(((x - y) % N + N) % N, Big(a - b));
            Assert.Equal(x * y % N, Big(a * b));
            Assert.Equal((N - x) % N, Big(-a));
            if (!a.IsZero)
            {
                Assert.Equal(BigInteger.ModPow(x, N - 2, N), Big(a.Invert()));
                Assert.Equal(Secp256k1Scalar.One, a * a.Invert());
            }
        }
    }

    [Fact]
    public void Secp256k1ScalarMultiplierAndMultiplyByBit_EqualTheProduct()
    {
        var rng = TestSeed.For("multipliers");
        Secp256k1Scalar[] edge = [Secp256k1Scalar.Zero, Secp256k1Scalar.One, -Secp256k1Scalar.One, FromBig(N - 2), FromBig(BigInteger.Pow(2, 255))];
        var values = edge.Concat(Enumerable.Range(0, 200).Select(_ => Secp256k1Scalar.Random(rng))).ToArray();
        for (int i = 0; i < values.Length; i++)
        {
            Secp256k1Scalar a = values[i], b = values[(i * 11 + 5) % values.Length];
            Assert.Equal(a * b, a.ToMultiplier().Multiply(b));
            Assert.Equal(Big(a) * Big(b) % N, Big(a.ToMultiplier().Multiply(b)));
            Assert.Equal(Secp256k1Scalar.Zero, a.MultiplyByBit(0));
            Assert.Equal(a, a.MultiplyByBit(1));
        }

        Assert.Throws<ArgumentOutOfRangeException>(() => Secp256k1Scalar.One.MultiplyByBit(2));
        Assert.Equal("Secp256k1ScalarMultiplier(****)", Secp256k1Scalar.One.ToMultiplier().ToString());
    }

    [Fact]
    public void EcdhWithAParsedPoint_EqualsEcdhWithItsEncoding()
    {
        var rng = TestSeed.For("ecdh point");
        for (int i = 0; i < 20; i++)
        {
            Secp256k1Scalar k = Secp256k1Scalar.Random(rng), m = Secp256k1Scalar.Random(rng);
            Secp256k1Point p = Secp256k1Point.MultiplyGenerator(m);
            using var a = EcdsaSecp256k1.Ecdh(k.ToBytes(), p.ToCompressed());
            using var b = EcdsaSecp256k1.Ecdh(k.ToBytes(), p);
            Assert.Equal(a.ReadOnlySpan.ToArray(), b.ReadOnlySpan.ToArray());
        }

        Assert.ThrowsAny<Exception>(() => EcdsaSecp256k1.Ecdh(Secp256k1Scalar.One.ToBytes(), Secp256k1Point.Identity));
    }

    [Fact]
    public void Secp256k1Scalar_WideReduction()
    {
        var rng = TestSeed.For("wide values");
        for (int i = 0; i < 200; i++)
        {
            byte[] wide = new byte[i % 2 == 0 ? 48 : 64];
            rng.Fill(wide);
            BigInteger v = new(wide, isUnsigned: true, isBigEndian: true);
            Assert.Equal(v % N, Big(Secp256k1Scalar.FromBytesReduced(wide)));
        }

        byte[] max = Enumerable.Repeat((byte)0xff, 64).ToArray();
        Assert.Equal(new BigInteger(max, isUnsigned: true, isBigEndian: true) % N, Big(Secp256k1Scalar.FromBytesReduced(max)));
    }

    [Fact]
    public void Secp256k1Scalar_RefusesNonCanonicalAndWrongLength()
    {
        byte[] n = N.ToByteArray(isUnsigned: true, isBigEndian: true);
        Assert.False(Secp256k1Scalar.TryFromBytes(n, out _));
        Assert.False(Secp256k1Scalar.TryFromBytes(new byte[31], out _));
        var e = Assert.Throws<CryptoFormatException>(() => Secp256k1Scalar.FromBytes(n, "share"));
        Assert.Equal("share", e.ParameterName);
        Assert.DoesNotContain(Convert.ToHexString(n), e.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Throws<ArithmeticException>(() => Secp256k1Scalar.Zero.Invert());
        Assert.Equal("Secp256k1Scalar(****)", Secp256k1Scalar.One.ToString());
    }

    [Fact]
    public void Secp256k1Point_GroupLaws()
    {
        var rng = TestSeed.For("scalars");
        for (int i = 0; i < 20; i++)
        {
            var a = Secp256k1Scalar.Random(rng);
            var b = Secp256k1Scalar.Random(rng);
            Secp256k1Point pa = Secp256k1Point.MultiplyGenerator(a);
            Secp256k1Point pb = Secp256k1Point.MultiplyGenerator(b);
            Assert.Equal(Secp256k1Point.MultiplyGenerator(a + b), pa + pb);
            Assert.Equal(Secp256k1Point.MultiplyGenerator(a * b), pa.MultiplyPublic(b));
            Assert.Equal(Secp256k1Point.Identity, pa - pa);
            Assert.Equal(pa, pa + Secp256k1Point.Identity);
            Assert.Equal(Secp256k1Point.MultiplyGenerator(-a), -pa);
            Assert.Equal(pa + pb + pa, Secp256k1Point.Sum([pa, pb, Secp256k1Point.Identity, pa]));
            Assert.Equal(pa, Secp256k1Point.Parse(pa.ToCompressed()));
            Assert.Equal(pa, Secp256k1Point.Parse(pa.ToUncompressed()));
        }

        Assert.True(Secp256k1Point.MultiplyGenerator(Secp256k1Scalar.Zero).IsIdentity);
        Assert.Throws<CryptoFormatException>(() => Secp256k1Point.Identity.ToCompressed());
    }

    [Fact]
    public void Secp256k1Point_ParsingRejectsBadEncodings()
    {
        byte[] g = Secp256k1Point.Generator.ToCompressed();
        byte[] bad = (byte[])g.Clone();
        bad[0] = 0x05;
        Assert.False(Secp256k1Point.TryParse(bad, out _));
        Assert.False(Secp256k1Point.TryParse(g.AsSpan(0, 32), out _));
        byte[] hybrid = Secp256k1Point.Generator.ToUncompressed();
        hybrid[0] = 0x06;
        Assert.False(Secp256k1Point.TryParse(hybrid, out _));
        // x = 5 is not on the curve (5^3 + 7 = 132 is a non-residue mod p).
        byte[] offCurve = new byte[33];
        offCurve[0] = 0x02;
        offCurve[32] = 5;
        Assert.False(Secp256k1Point.TryParse(offCurve, out _));
        Assert.Throws<CryptoFormatException>(() => Secp256k1Point.Parse(offCurve));
        Assert.Throws<CryptoFormatException>(() => Secp256k1Point.Parse(new byte[7]));
        Assert.False(Secp256k1Point.TryParse(new byte[33], out _));
    }

    [Fact]
    public void Ed25519_ScalarAndPointLaws()
    {
        var rng = TestSeed.For("scalars");
        for (int i = 0; i < 20; i++)
        {
            var a = Ed25519Scalar.Random(rng);
            var b = Ed25519Scalar.Random(rng);
            Assert.Equal(Ed25519Scalar.One, a * a.Invert());
            Assert.Equal(a, a + b - b);
            Assert.Equal(Ed25519Scalar.Zero, a + -a);
            Ed25519Point pa = Ed25519Point.MultiplyGenerator(a);
            Ed25519Point pb = Ed25519Point.MultiplyGenerator(b);
            Assert.Equal(Ed25519Point.MultiplyGenerator(a + b), pa + pb);
            Assert.Equal(Ed25519Point.MultiplyGenerator(a * b), pa.Multiply(b));
            Assert.True((pa - pa).IsIdentity);
            Assert.Equal(pa, Ed25519Point.Parse(pa.ToBytes()));
        }
    }

    [Fact]
    public void Ed25519_ParsingRejectsIdentitySmallOrderAndNonCanonical()
    {
        byte[] identity = new byte[32];
        identity[0] = 1;
        Assert.False(Ed25519Point.TryParse(identity, out _));
        // A point of order 8 (RFC 8032 small-order set; from the "EdDSA for more curves" list).
        byte[] order8 = Hex.Decode("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a");
        Assert.False(Ed25519Point.TryParse(order8, out _));
        // y = p (non-canonical encoding of y = 0).
        byte[] nonCanonical = Hex.Decode("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f");
        Assert.False(Ed25519Point.TryParse(nonCanonical, out _));
        // L itself is not a canonical scalar; L - 1 is.
        byte[] l = Hex.Decode("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010");
        Assert.False(Ed25519Scalar.TryFromBytes(l, out _));
        l[0]--;
        Assert.True(Ed25519Scalar.TryFromBytes(l, out _));
    }
}
