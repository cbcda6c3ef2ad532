using Conclave.Crypto.Aead;
using Conclave.Crypto.Kdf;
using Conclave.Crypto.Memory;

namespace Conclave.Crypto.Tests;

public sealed class EnvelopeAndMemoryTests
{
    private static readonly byte[] Key = Enumerable.Range(0, 32).Select(i => (byte)i).ToArray();

    [Theory]
    [InlineData(EnvelopeAlgorithm.XChaCha20Poly1305)]
    [InlineData(EnvelopeAlgorithm.Aes256Gcm)]
    public void Envelope_SealAndOpenAgreeOnTheEmptyPlaintext(EnvelopeAlgorithm alg)
    {
        // Open refuses an envelope without plaintext, so Seal refuses to make one (issue 14 item 5).
        CryptoFormatException e = Assert.Throws<CryptoFormatException>(() => Envelope.Seal(Key, [], "ad"u8, alg));
        Assert.Contains("plaintext", e.Message, StringComparison.Ordinal);
        using SecretBuffer one = Envelope.Open(Key, Envelope.Seal(Key, [7], "ad"u8, alg), "ad"u8);
        Assert.Equal(1, one.Length);
    }

    [Theory]
    [InlineData(EnvelopeAlgorithm.XChaCha20Poly1305)]
    [InlineData(EnvelopeAlgorithm.Aes256Gcm)]
    public void Envelope_RoundTripsAndRefusesEveryChange(EnvelopeAlgorithm alg)
    {
        byte[] secret = "a private key, say"u8.ToArray();
        byte[] ad = "key:42:v1"u8.ToArray();
        byte[] sealedBytes = Envelope.Seal(Key, secret, ad, alg);
        Assert.Equal(Envelope.SealedSize(secret.Length, alg), sealedBytes.Length);
        using (SecretBuffer opened = Envelope.Open(Key, sealedBytes, ad))
        {
            Assert.True(opened.FixedTimeEquals(secret));
        }

        for (int i = 0; i < sealedBytes.Length; i++)
        {
            byte[] tampered = (byte[])sealedBytes.Clone();
            tampered[i] ^= 0x01;
            Assert.Throws<EnvelopeException>(() => Envelope.Open(Key, tampered, ad));
        }

        Assert.Throws<EnvelopeException>(() => Envelope.Open(Key, sealedBytes, "key:43:v1"u8));
        byte[] wrongKey = (byte[])Key.Clone();
        wrongKey[0] ^= 1;
        Assert.Throws<EnvelopeException>(() => Envelope.Open(wrongKey, sealedBytes, ad));
        Assert.Throws<EnvelopeException>(() => Envelope.Open(Key, sealedBytes.AsSpan(0, 20), ad));
        Assert.Throws<EnvelopeException>(() => Envelope.Open(Key, [], ad));
        Assert.Throws<CryptoFormatException>(() => Envelope.Seal(new byte[16], secret, ad));
    }

    [Fact]
    public void Envelope_NoncesAreFresh()
    {
        byte[] a = Envelope.Seal(Key, [1, 2, 3], []);
        byte[] b = Envelope.Seal(Key, [1, 2, 3], []);
        Assert.NotEqual(a, b);
    }

    [Theory]
    [InlineData(SecretMemoryKind.Pinned)]
    [InlineData(SecretMemoryKind.Guarded)]
    public void SecretBuffer_ZeroesOnDispose_AndRefusesUseAfter(SecretMemoryKind kind)
    {
        var b = SecretBuffer.CopyFrom([1, 2, 3, 4], kind);
        Assert.Equal(4, b.Length);
        Assert.Equal("SecretBuffer(4 bytes)", b.ToString());
        Assert.True(b.FixedTimeEquals([1, 2, 3, 4]));
        b.Dispose();
        b.Dispose();
        Assert.True(b.IsDisposed);
        Assert.Throws<ObjectDisposedException>(() => b.Span.Length);
    }

    [Fact]
    public void Argon2id_IsDeterministicAndPassphraseSensitive()
    {
        byte[] salt = new byte[16];
        using SecretBuffer a = Argon2id.DeriveKey("correct horse", salt, Argon2idParameters.ForTests);
        using SecretBuffer b = Argon2id.DeriveKey("correct horse", salt, Argon2idParameters.ForTests);
        using SecretBuffer c = Argon2id.DeriveKey("correct horsf", salt, Argon2idParameters.ForTests);
        Assert.True(a.FixedTimeEquals(b.ReadOnlySpan));
        Assert.False(a.FixedTimeEquals(c.ReadOnlySpan));
        Assert.Throws<CryptoFormatException>(() => Argon2id.DeriveKey("x", new byte[8], Argon2idParameters.ForTests));
    }

    [Fact]
    public void X25519_BothSidesAgree()
    {
        (SecretBuffer aSk, byte[] aPk) = X25519.GenerateKeyPair();
        (SecretBuffer bSk, byte[] bPk) = X25519.GenerateKeyPair();
        using (aSk)
        using (bSk)
        {
            using SecretBuffer k1 = X25519.DeriveKey(aSk.ReadOnlySpan, bPk, "info"u8);
            using SecretBuffer k2 = X25519.DeriveKey(bSk.ReadOnlySpan, aPk, "info"u8);
            Assert.True(k1.FixedTimeEquals(k2.ReadOnlySpan));
            Assert.Throws<CryptoFormatException>(() => X25519.SharedSecret(aSk.ReadOnlySpan, new byte[32]));
        }
    }
}
