using System.Text;
using Conclave.Crypto;
using Conclave.Wallets.Codecs;

namespace Conclave.Wallets.Tests;

public sealed class EncodingTests
{
    [Theory]
    [InlineData("", "")]
    [InlineData("00", "1")]
    [InlineData("0000", "11")]
    [InlineData("61", "2g")]
    [InlineData("626262", "a3gV")]
    [InlineData("636363", "aPEr")]
    [InlineData("516b6fcd0f", "ABnLTmg")]
    [InlineData("572e4794", "3EFU7m")]
    [InlineData("10c8511e", "Rt5zm")]
    [InlineData("00000000000000000000", "1111111111")]
    [InlineData("00eb15231dfceb60925886b67d065299925915aeb172c06647", "1NS17iag9jJgTHD1VXjvLCEnZuQ3rJDE9L")]
    [InlineData("73696d706c792061206c6f6e6720737472696e67", "2cFupjhnEsSn59qHXstmK2ffpLv2")]
    public void Base58KnownValues(string hex, string text)
    {
        byte[] data = Hex.Decode(hex);
        Assert.Equal(text, Base58.Encode(data));
        if (text.Length > 0)
        {
            Assert.Equal(hex, Hex.Encode(Base58.Decode(text)));
        }
    }

    [Fact]
    public void Base58RoundTripsRandomData()
    {
        var rng = TestSeed.For("data");
        for (int len = 0; len < 100; len++)
        {
            byte[] data = new byte[len];
            rng.Fill(data);
            if (len > 3)
            {
                data[0] = 0;
            }

            string text = Base58.Encode(data);
            if (len > 0)
            {
                Assert.Equal(data, Base58.Decode(text));
            }

            byte[] checkedData = Base58Check.Decode(Base58Check.Encode(data));
            Assert.Equal(data, checkedData);
        }
    }

    [Theory]
    [InlineData("0OIl")]
    [InlineData("abc!")]
    [InlineData("é")]
    public void Base58RejectsCharactersOutsideTheAlphabet(string text)
    {
        var e = Assert.Throws<CryptoFormatException>(() => Base58.Decode(text));
        Assert.Contains("is not in the Base58 alphabet", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Base58CheckRejectsABadChecksum()
    {
        string good = Base58Check.Encode(Encoding.ASCII.GetBytes("conclave"));
        char last = good[^1] == 'z' ? 'y' : 'z';
        Assert.Throws<CryptoFormatException>(() => Base58Check.Decode(good[..^1] + last));
        Assert.Throws<CryptoFormatException>(() => Base58Check.Decode("1"));
        Assert.Throws<CryptoFormatException>(() => Base58.Decode(""));
    }
}
