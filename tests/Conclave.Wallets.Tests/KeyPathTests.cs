using Conclave.Crypto;

namespace Conclave.Wallets.Tests;

public sealed class KeyPathTests
{
    [Theory]
    [InlineData("m", new uint[0])]
    [InlineData("m/44'/60'/0'/0/0", new uint[] { 0x8000002C, 0x8000003C, 0x80000000, 0, 0 })]
    [InlineData("m/44h/60h/0h/0/0", new uint[] { 0x8000002C, 0x8000003C, 0x80000000, 0, 0 })]
    [InlineData("m/44H/501H/0H/0H", new uint[] { 0x8000002C, 0x800001F5, 0x80000000, 0x80000000 })]
    [InlineData("m/0/2147483647'/1/2147483646'/2", new uint[] { 0, 0xFFFFFFFF, 1, 0xFFFFFFFE, 2 })]
    [InlineData("m/2147483647", new uint[] { 0x7FFFFFFF })]
    public void ParsesValidPaths(string text, uint[] indices)
    {
        KeyPath path = KeyPath.Parse(text);
        Assert.Equal(indices, path.Indices.ToArray());
        Assert.Equal(indices.Length, path.Depth);
        Assert.True(KeyPath.TryParse(text, out KeyPath again));
        Assert.Equal(path, again);
        Assert.Equal(path, KeyPath.Parse(path.ToString()));
        Assert.Equal(path, KeyPath.Parse(path.ToString('h')));
        Assert.Equal(path.GetHashCode(), again.GetHashCode());
    }

    [Fact]
    public void FormatsWithEitherMarker()
    {
        KeyPath p = KeyPath.Parse("m/44h/60H/0'/0/7");
        Assert.Equal("m/44'/60'/0'/0/7", p.ToString());
        Assert.Equal("m/44h/60h/0h/0/7", p.ToString('h'));
        Assert.Equal("m/44H/60H/0H/0/7", p.ToString('H'));
        Assert.Equal("m", KeyPath.Root.ToString());
        Assert.Equal("m", default(KeyPath).ToString());
        Assert.Throws<ArgumentOutOfRangeException>(() => p.ToString('x'));
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("M/0", "must start with 'm'")]
    [InlineData("44'/60'", "must start with 'm'")]
    [InlineData("m/", "component 1 is empty")]
    [InlineData("m//1", "component 1 is empty")]
    [InlineData("m/1/", "component 2 is empty")]
    [InlineData("m0", "'m' must be followed by '/'")]
    [InlineData("m/-1", "component 1 is not a number")]
    [InlineData("m/+1", "component 1 is not a number")]
    [InlineData("m/ 1", "component 1 is not a number")]
    [InlineData("m/1 ", "component 1 is not a number")]
    [InlineData("m/0x10", "component 1 is not a number")]
    [InlineData("m/1''", "component 1 is not a number")]
    [InlineData("m/1h'", "component 1 is not a number")]
    [InlineData("m/'", "component 1 has no number before the hardened marker")]
    [InlineData("m/01", "component 1 has a leading zero")]
    [InlineData("m/2147483648", "component 1 is out of range")]
    [InlineData("m/2147483648'", "component 1 is out of range")]
    [InlineData("m/99999999999999999999", "component 1 is out of range")]
    [InlineData("m/1/x", "component 2 is not a number")]
    [InlineData("m/\u0661", "component 1 is not a number")]
    public void RejectsMalformedPaths(string text, string reason)
    {
        var e = Assert.Throws<CryptoFormatException>(() => KeyPath.Parse(text));
        Assert.StartsWith("invalid key path: ", e.Message, StringComparison.Ordinal);
        Assert.Contains(reason, e.Message, StringComparison.Ordinal);
        Assert.Equal("path", e.ParameterName);
        Assert.False(KeyPath.TryParse(text, out _));
    }

    [Fact]
    public void DepthIsLimitedTo255()
    {
        string ok = "m" + string.Concat(Enumerable.Repeat("/1", 255));
        Assert.Equal(255, KeyPath.Parse(ok).Depth);
        Assert.Throws<CryptoFormatException>(() => KeyPath.Parse(ok + "/1"));
        Assert.Throws<CryptoFormatException>(() => KeyPath.Parse(ok).Append(1));
    }

    [Fact]
    public void HelpersAndEquality()
    {
        KeyPath p = KeyPath.Root.Append(KeyPath.Hardened(44)).Append(KeyPath.Hardened(60));
        Assert.Equal(KeyPath.Parse("m/44'/60'"), p);
        Assert.True(p.IsHardenedOnly);
        Assert.False(p.Append(0).IsHardenedOnly);
        Assert.Equal(KeyPath.Parse("m/44'"), p.Parent);
        Assert.Equal(KeyPath.Parse("m/44'/60'/0/1"), p.Append(KeyPath.Parse("m/0/1")));
        Assert.True(KeyPath.Root.IsRoot);
        Assert.Throws<InvalidOperationException>(() => KeyPath.Root.Parent);
        Assert.Throws<ArgumentOutOfRangeException>(() => KeyPath.Hardened(KeyPath.HardenedOffset));
        Assert.True(KeyPath.Parse("m/1") != KeyPath.Parse("m/1'"));
        Assert.False(KeyPath.TryParse(null, out _));
    }
}
