using System.Text;
using Conclave.Crypto;
using Conclave.Wallets.Addresses;
using Conclave.Wallets.Codecs;

namespace Conclave.Wallets.Tests;

public sealed class EncodingAndAddressTests
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
        var rng = new DeterministicRandomSource(58);
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

    /// <summary>EIP-55's own examples (all-caps, all-lower and mixed).</summary>
    [Theory]
    [InlineData("0x52908400098527886E0F7030069857D2E4169EE7")]
    [InlineData("0x8617E340B3D01FA5F11F306F4090FD50E238070D")]
    [InlineData("0xde709f2102306220921060314715629080e2fb77")]
    [InlineData("0x27b1fdb04752bbc536007a920d24acb045561c26")]
    [InlineData("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")]
    [InlineData("0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359")]
    [InlineData("0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB")]
    [InlineData("0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb")]
    public void Eip55Checksums(string address)
    {
        Assert.Equal(address, EthereumAddress.ToChecksumString(Hex.Decode(address)));
    }

    [Fact]
    public void EthereumAddressOfAKnownKey()
    {
        // Private key 1: its address is well known.
        byte[] g = Conclave.Crypto.Secp256k1.Secp256k1Point.Generator.ToCompressed();
        Assert.Equal("0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf", EthereumAddress.ChecksumAddressOf(g));
        Assert.Throws<CryptoFormatException>(() => EthereumAddress.FromPublicKey(new byte[33]));
    }

    [Fact]
    public void SolanaAddressIsBase58OfTheKey()
    {
        // The system program's id is 32 zero bytes.
        Assert.Equal("11111111111111111111111111111111", SolanaAddress.FromPublicKey(new byte[32]));
        Assert.Throws<CryptoFormatException>(() => SolanaAddress.FromPublicKey(new byte[33]));
    }
}
