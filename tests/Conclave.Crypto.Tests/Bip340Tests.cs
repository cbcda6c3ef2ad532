using Conclave.Crypto.Secp256k1;

namespace Conclave.Crypto.Tests;

/// <summary>Every row of BIP-340 test-vectors.csv (tests/vectors/bip340, bitcoin/bips).</summary>
public sealed class Bip340Tests
{
    public static TheoryData<int> Rows()
    {
        var data = new TheoryData<int>();
        int n = File.ReadAllLines(RepoPaths.Vector("bip340/test-vectors.csv")).Skip(1).Count(l => l.Length > 0);
        for (int i = 0; i < n; i++)
        {
            data.Add(i);
        }

        return data;
    }

    [Fact]
    public void File_HasExactlyTheRowsOfBip340()
    {
        // bitcoin/bips test-vectors.csv: rows 0-18, 9 valid, 8 with a secret key (signing rows). A shorter file fails here.
        string[][] rows = [.. File.ReadAllLines(RepoPaths.Vector("bip340/test-vectors.csv")).Skip(1).Where(l => l.Length > 0).Select(l => l.Split(','))];
        Assert.Equal(19, rows.Length);
        Assert.Equal(Enumerable.Range(0, 19).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)), rows.Select(r => r[0]));
        Assert.Equal(9, rows.Count(r => r[6] == "TRUE"));
        Assert.Equal(10, rows.Count(r => r[6] == "FALSE"));
        Assert.Equal(8, rows.Count(r => r[1].Length > 0));
        Assert.Equal(19, ((IEnumerable<object[]>)Rows()).Count());
    }

    [Theory]
    [MemberData(nameof(Rows))]
    public void Row(int index)
    {
        string[] f = File.ReadAllLines(RepoPaths.Vector("bip340/test-vectors.csv")).Skip(1).Where(l => l.Length > 0).ElementAt(index).Split(',');
        byte[] pk = Hex.Decode(f[2]);
        byte[] msg = Hex.Decode(f[4]);
        byte[] sig = Hex.Decode(f[5]);
        bool expected = f[6] == "TRUE";
        if (f[1].Length > 0)
        {
            byte[] sk = Hex.Decode(f[1]);
            byte[] produced = new byte[64];
            SchnorrBip340.Sign(sk, msg, Hex.Decode(f[3]), produced);
            Assert.Equal(Hex.Encode(sig), Hex.Encode(produced));
            using var key = SchnorrBip340.Instance.ImportPrivateKey(sk);
            Assert.Equal(Hex.Encode(pk), Hex.Encode(key.PublicKey.Span));
        }

        Assert.Equal(expected, SchnorrBip340.Instance.Verify(pk, msg, sig));
    }
}
