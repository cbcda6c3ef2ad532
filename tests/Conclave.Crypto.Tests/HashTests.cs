using System.Security.Cryptography;
using System.Text;
using Conclave.Crypto.Hashing;

namespace Conclave.Crypto.Tests;

public sealed class HashTests
{
    [Fact]
    public void Keccak256_KnownAnswers()
    {
        Assert.Equal("c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470", Hex.Encode(Keccak256.HashData([])));
        Assert.Equal("4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45", Hex.Encode(Keccak256.HashData("abc"u8)));
    }

    [Fact]
    public void TaggedHash_IsSha256OfDoubledTagHash()
    {
        byte[] tag = SHA256.HashData("BIP0340/challenge"u8);
        byte[] expected = SHA256.HashData([.. tag, .. tag, .. "data"u8.ToArray()]);
        Assert.Equal(expected, TaggedHash.HashData("BIP0340/challenge", "data"u8));
    }

    // RFC 9380 Appendix K.1, expand_message_xmd(SHA-256), DST = "QUUX-V01-CS02-with-expander-SHA256-128".
    [Theory]
    [InlineData("", 32, "68a985b87eb6b46952128911f2a4412bbc302a9d759667f87f7a21d803f07235")]
    [InlineData("abc", 32, "d8ccab23b5985ccea865c6c97b6e5b8350e794e603b4b97902f53a8a0d605615")]
    [InlineData("abcdef0123456789", 32, "eff31487c770a893cfb36f912fbfcbff40d5661771ca4b2cb4eafe524333f5c1")]
    public void ExpandMessageXmd_Rfc9380Vectors(string msg, int len, string expected)
    {
        byte[] output = new byte[len];
        ExpandMessageXmd.Expand(HashAlgorithmName.SHA256, Encoding.ASCII.GetBytes(msg), "QUUX-V01-CS02-with-expander-SHA256-128"u8, output);
        Assert.Equal(expected, Hex.Encode(output));
    }

    [Fact]
    public void ExpandMessageXmd_RefusesOutOfRangeLengths()
    {
        Assert.Throws<ArgumentException>(() => ExpandMessageXmd.Expand(HashAlgorithmName.SHA256, [], "d"u8, new byte[256 * 32]));
        Assert.Throws<ArgumentException>(() => ExpandMessageXmd.Expand(HashAlgorithmName.SHA256, [], new byte[256], new byte[32]));
    }
}
