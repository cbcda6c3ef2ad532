using System.Security.Cryptography;
using Conclave.Crypto.Hashing;
using Conclave.Crypto.Memory;
using Conclave.Crypto.Secp256k1;
using Conclave.Crypto.Signing;
using Conclave.Testing;

namespace Conclave.Crypto.Tests;

public sealed class SigningTests
{
    public static TheoryData<string> Schemes() => ["ecdsa-secp256k1", "schnorr-bip340", "ed25519"];

    private static SoftwareSignatureScheme Get(string name)
    {
        Assert.True(SignatureSchemes.TryGet(name, out SoftwareSignatureScheme? s));
        return s!;
    }

    private static byte[] InputFor(SignatureScheme s, byte[] message) => s.InputKind == SignInputKind.Digest32 ? SHA256.HashData(message) : message;

    /// <summary>
    /// A software Ed25519 key signs from libsodium's 64-byte secret key computed once (no seed expansion per signature):
    /// byte for byte the signature of the seed path (RFC 8032 is deterministic), for random seeds and messages of every
    /// length up to 200 bytes; a disposed key refuses to sign. (InteropTests verifies such signatures with @noble/curves.)
    /// </summary>
    [Fact]
    public void Ed25519_key_signs_from_its_expanded_key_exactly_as_from_the_seed()
    {
        var random = TestSeed.For("ed25519-expanded@1");
        byte[] seed = new byte[32];
        for (int i = 0; i <= 200; i++)
        {
            random.Fill(seed);
            byte[] message = new byte[i];
            random.Fill(message);
            using SoftwareSigningKey key = SignatureSchemes.Ed25519.ImportPrivateKey(seed);
            byte[] expected = new byte[64];
            Conclave.Crypto.Ed25519.Ed25519Signature.Sign(seed, message, expected);
            Assert.Equal(Convert.ToHexStringLower(expected), Convert.ToHexStringLower(key.Sign(message).Signature));
            Assert.True(SignatureSchemes.Ed25519.Verify(key.PublicKey.Span, message, expected));
            Assert.Equal(SignatureSchemes.Ed25519.DerivePublicKeyCore(seed), key.PublicKey.ToArray()); // the public key read from the expanded key
        }

        SoftwareSigningKey disposed = SignatureSchemes.Ed25519.ImportPrivateKey(seed);
        disposed.Dispose();
        Assert.Throws<ObjectDisposedException>(() => disposed.Sign([1, 2, 3]));
    }

    [Theory]
    [MemberData(nameof(Schemes))]
    public void SignVerify_RoundTrip_AndTamperDetection(string name)
    {
        SoftwareSignatureScheme scheme = Get(name);
        Assert.Equal(name, scheme.Name);
        using SoftwareSigningKey key = scheme.GenerateKey(random: TestSeed.For("key@27"));
        Assert.Equal(scheme.PublicKeySizeInBytes, key.PublicKey.Length);
        byte[] input = InputFor(scheme, "liquidate position 7"u8.ToArray());
        SignatureResult sig = key.Sign(input);
        Assert.Equal(scheme.SignatureSizeInBytes, sig.Signature.Length);
        Assert.True(scheme.Verify(key.PublicKey.Span, input, sig.Signature));

        byte[] badSig = (byte[])sig.Signature.Clone();
        badSig[10] ^= 1;
        Assert.False(scheme.Verify(key.PublicKey.Span, input, badSig));
        byte[] badInput = (byte[])input.Clone();
        badInput[0] ^= 1;
        Assert.False(scheme.Verify(key.PublicKey.Span, badInput, sig.Signature));
        Assert.False(scheme.Verify(key.PublicKey.Span, input, sig.Signature.AsSpan(0, 63)));
        Assert.False(scheme.Verify(key.PublicKey.Span[..5], input, sig.Signature));
        Assert.False(scheme.Verify(new byte[scheme.PublicKeySizeInBytes], input, sig.Signature));
        Assert.False(scheme.Verify(key.PublicKey.Span, input, new byte[64]));
    }

    [Theory]
    [MemberData(nameof(Schemes))]
    public void PrivateKey_StaysInsideUnlessExportAllowed(string name)
    {
        SoftwareSignatureScheme scheme = Get(name);
        using SoftwareSigningKey locked = scheme.GenerateKey(random: TestSeed.For("key@51"));
        Assert.Throws<CryptographicException>(() => locked.ExportPrivateKey());
        Assert.DoesNotContain("****", locked.ToString(), StringComparison.Ordinal);

        using SoftwareSigningKey open = scheme.GenerateKey(KeyExportPolicy.AllowExport, TestSeed.For("exportable key"));
        using SecretBuffer exported = open.ExportPrivateKey();
        Assert.DoesNotContain(Convert.ToHexStringLower(exported.ReadOnlySpan), open.ToString(), StringComparison.Ordinal);
        using SoftwareSigningKey imported = scheme.ImportPrivateKey(exported.ReadOnlySpan);
        Assert.Equal(open.PublicKey.ToArray(), imported.PublicKey.ToArray());

        open.Dispose();
        Assert.Throws<ObjectDisposedException>(() => open.Sign(InputFor(scheme, [1])));
    }

    [Fact]
    public void Ecdsa_LowS_RecoveryId_AndDigestLength()
    {
        using SoftwareSigningKey key = SignatureSchemes.EcdsaSecp256k1.GenerateKey(random: TestSeed.For("key@68"));
        for (int i = 0; i < 50; i++)
        {
            byte[] digest = Keccak256.HashData([(byte)i]);
            SignatureResult r = key.Sign(digest);
            Assert.InRange(r.RecoveryId!.Value, 0, 3);
            Assert.True(EcdsaSecp256k1.TryRecover(digest, r.Signature, r.RecoveryId.Value, out Secp256k1Point recovered));
            Assert.Equal(key.PublicKey.ToArray(), recovered.ToCompressed());
            // low-S: s <= n/2
            var s = new System.Numerics.BigInteger(r.Signature.AsSpan(32), isUnsigned: true, isBigEndian: true);
            Assert.True(s <= Secp256k1Scalar.Order / 2);
            // The high-S twin is refused by strict verification and accepted by the lax one.
            byte[] high = (byte[])r.Signature.Clone();
            (Secp256k1Scalar.Zero - Secp256k1Scalar.FromBytes(r.Signature.AsSpan(32))).WriteTo(high.AsSpan(32));
            Assert.False(SignatureSchemes.EcdsaSecp256k1.Verify(key.PublicKey.Span, digest, high));
            Assert.True(EcdsaSecp256k1.VerifyAllowHighS(key.PublicKey.Span, digest, high));
        }

        var e = Assert.Throws<CryptoFormatException>(() => key.Sign(new byte[31]));
        Assert.Equal("digest", e.ParameterName);
    }

    [Fact]
    public void Ecdsa_Rfc6979_IsDeterministic_AndDerRoundTrips()
    {
        byte[] sk = Convert.FromHexString("C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721");
        byte[] digest = SHA256.HashData("sample"u8);
        byte[] a = new byte[64], b = new byte[64];
        EcdsaSecp256k1.SignRecoverable(sk, digest, a);
        EcdsaSecp256k1.SignRecoverable(sk, digest, b);
        Assert.Equal(a, b);
        byte[] der = EcdsaSecp256k1.SignDer(sk, digest);
        using SoftwareSigningKey key = SignatureSchemes.EcdsaSecp256k1.ImportPrivateKey(sk);
        Assert.True(EcdsaSecp256k1.VerifyDer(key.PublicKey.Span, digest, der, allowHighS: false));
        Assert.Equal(der, EcdsaSecp256k1.CompactToDer(a));
    }

    [Fact]
    public void Import_RefusesInvalidPrivateKeys()
    {
        Assert.Throws<CryptoFormatException>(() => SignatureSchemes.EcdsaSecp256k1.ImportPrivateKey(new byte[32]));
        Assert.Throws<CryptoFormatException>(() => SignatureSchemes.SchnorrBip340.ImportPrivateKey(Enumerable.Repeat((byte)0xff, 32).ToArray()));
        Assert.Throws<CryptoFormatException>(() => SignatureSchemes.Ed25519.ImportPrivateKey(new byte[31]));
        Assert.False(SignatureSchemes.TryGet("rsa-2048", out _));
    }

    [Fact]
    public void Ecdh_BothSidesAgree()
    {
        using SoftwareSigningKey a = SignatureSchemes.EcdsaSecp256k1.GenerateKey(KeyExportPolicy.AllowExport, TestSeed.For("key a"));
        using SoftwareSigningKey b = SignatureSchemes.EcdsaSecp256k1.GenerateKey(KeyExportPolicy.AllowExport, TestSeed.For("key b"));
        using SecretBuffer ask = a.ExportPrivateKey();
        using SecretBuffer bsk = b.ExportPrivateKey();
        using SecretBuffer s1 = EcdsaSecp256k1.Ecdh(ask.ReadOnlySpan, b.PublicKey.Span);
        using SecretBuffer s2 = EcdsaSecp256k1.Ecdh(bsk.ReadOnlySpan, a.PublicKey.Span);
        Assert.True(s1.FixedTimeEquals(s2.ReadOnlySpan));
    }
}
