using Conclave.Crypto.Memory;

namespace Conclave.Hsm.Tests;

public sealed class KeyEncryptionKeyTests(SharedTokenFixture fixture) : IClassFixture<SharedTokenFixture>
{
    private HsmToken Token => fixture.Token;

    private HsmKeyEncryptionKey NewKek() => Token.CreateKeyEncryptionKey(fixture.TrackKey(SharedTokenFixture.NewKeyId("kek"), kek: true));

    [Fact]
    public void WrapsAndUnwrapsDataKeys()
    {
        HsmKeyEncryptionKey kek = NewKek();
        byte[] dataKey = TestSeed.Bytes(32, "data key 1");
        byte[] wrapped = kek.Wrap(dataKey);
        Assert.Equal(HsmKeyEncryptionKey.WrappedSize(32), wrapped.Length);
        Assert.Equal(62, wrapped.Length);
        Assert.False(wrapped.AsSpan().IndexOf(dataKey.AsSpan(0, 8)) >= 0);

        using SecretBuffer unwrapped = kek.Unwrap(wrapped);
        Assert.Equal(SecretMemoryKind.Guarded, unwrapped.Kind);
        Assert.True(unwrapped.FixedTimeEquals(dataKey));

        // A fresh IV per wrap: the same key wraps to different bytes, both unwrap.
        byte[] again = kek.Wrap(dataKey);
        Assert.NotEqual(wrapped, again);
        using SecretBuffer unwrappedAgain = kek.Unwrap(again);
        Assert.True(unwrappedAgain.FixedTimeEquals(dataKey));
    }

    [Fact]
    public void AnyAlteredByteIsDetected()
    {
        HsmKeyEncryptionKey kek = NewKek();
        byte[] wrapped = kek.Wrap(TestSeed.Bytes(32, "data key 2"));
        // Every IV, ciphertext and tag byte (the header bytes are checked before the token sees them).
        for (int i = 0; i < wrapped.Length; i++)
        {
            byte[] tampered = (byte[])wrapped.Clone();
            tampered[i] ^= 0x01;
            HsmException e = Assert.Throws<HsmException>(() => kek.Unwrap(tampered));
            Assert.Equal(HsmErrorKind.WrappedKeyInvalid, e.Kind);
        }

        Assert.Equal(HsmErrorKind.WrappedKeyInvalid, Assert.Throws<HsmException>(() => kek.Unwrap(wrapped.AsSpan(0, wrapped.Length - 1))).Kind);
        Assert.Equal(HsmErrorKind.WrappedKeyInvalid, Assert.Throws<HsmException>(() => kek.Unwrap(wrapped.AsSpan(0, 20))).Kind);
        Assert.Equal(HsmErrorKind.WrappedKeyInvalid, Assert.Throws<HsmException>(() => kek.Unwrap([.. wrapped, 0])).Kind);
        Assert.Equal(HsmErrorKind.WrappedKeyInvalid, Assert.Throws<HsmException>(() => kek.Unwrap([])).Kind);
    }

    [Fact]
    public void AnotherKekCannotUnwrap()
    {
        HsmKeyEncryptionKey a = NewKek();
        HsmKeyEncryptionKey b = NewKek();
        byte[] wrapped = a.Wrap(TestSeed.Bytes(32, "data key 3"));
        HsmException e = Assert.Throws<HsmException>(() => b.Unwrap(wrapped));
        Assert.Equal(HsmErrorKind.WrappedKeyInvalid, e.Kind);
        Assert.Contains(b.Id, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void GetOrCreateReturnsTheSameKey()
    {
        string id = fixture.TrackKey(SharedTokenFixture.NewKeyId("kek-goc"), kek: true);
        HsmKeyEncryptionKey first = Token.GetOrCreateKeyEncryptionKey(id);
        byte[] dataKey = TestSeed.Bytes(32, "data key 4");
        byte[] wrapped = first.Wrap(dataKey);
        HsmKeyEncryptionKey second = Token.GetOrCreateKeyEncryptionKey(id);
        HsmKeyEncryptionKey third = Token.OpenKeyEncryptionKey(id);
        using SecretBuffer a = second.Unwrap(wrapped);
        using SecretBuffer b = third.Unwrap(wrapped);
        Assert.True(a.FixedTimeEquals(dataKey));
        Assert.True(b.FixedTimeEquals(dataKey));

        Assert.Equal(HsmErrorKind.KeyExists, Assert.Throws<HsmException>(() => Token.CreateKeyEncryptionKey(id)).Kind);
        Assert.Equal(HsmErrorKind.KeyNotFound, Assert.Throws<HsmException>(() => Token.OpenKeyEncryptionKey(SharedTokenFixture.NewKeyId("none"))).Kind);
    }

    [Fact]
    public void DataKeySizesAreBounded()
    {
        HsmKeyEncryptionKey kek = NewKek();
        Assert.Throws<ArgumentException>(() => kek.Wrap([]));
        Assert.Throws<ArgumentException>(() => kek.Wrap(new byte[HsmKeyEncryptionKey.MaxDataKeySizeInBytes + 1]));
        byte[] small = TestSeed.Bytes(16, "data key 5");
        using SecretBuffer back = kek.Unwrap(kek.Wrap(small));
        Assert.True(back.FixedTimeEquals(small));
    }

    [Fact]
    public void AssociatedDataIsBound()
    {
        HsmKeyEncryptionKey kek = NewKek();
        byte[] dataKey = TestSeed.Bytes(32, "data key 6");
        byte[] wrapped = kek.Wrap(dataKey, "key/settlement-1"u8);
        using (SecretBuffer back = kek.Unwrap(wrapped, "key/settlement-1"u8))
        {
            Assert.True(back.FixedTimeEquals(dataKey));
        }

        Assert.Equal(HsmErrorKind.WrappedKeyInvalid, Assert.Throws<HsmException>(() => kek.Unwrap(wrapped, "key/settlement-2"u8)).Kind);
        Assert.Equal(HsmErrorKind.WrappedKeyInvalid, Assert.Throws<HsmException>(() => kek.Unwrap(wrapped)).Kind);
    }

    [Fact]
    public void DescriptorNamesTheKekAndToken()
    {
        HsmKeyEncryptionKey kek = NewKek();
        Assert.Equal("hsm", kek.Kind);
        Assert.True(HsmKeyEncryptionKey.TryParseDescriptor(kek.Descriptor.Span, out string id, out string token));
        Assert.Equal(kek.Id, id);
        Assert.Equal(Token.TokenLabel, token);
        Assert.False(HsmKeyEncryptionKey.TryParseDescriptor(kek.Descriptor.Span[..^1], out _, out _));
        Assert.False(HsmKeyEncryptionKey.TryParseDescriptor("XXXX"u8, out _, out _));
        kek.Dispose();
    }
}
