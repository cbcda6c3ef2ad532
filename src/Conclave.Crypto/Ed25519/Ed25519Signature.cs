using System.Security.Cryptography;
using Conclave.Crypto.Interop;
using Conclave.Crypto.Randomness;
using Conclave.Crypto.Signing;

namespace Conclave.Crypto.Ed25519;

/// <summary>
/// <c>ed25519</c>: RFC 8032 Ed25519 (pure) through libsodium. Private key: the 32-byte seed. Public key: 32 bytes.
/// Verification is strict (RFC 8032 section 5.1.7, cofactorless equation): it refuses a non-canonical S (≥ L)
/// and non-canonical or small-order A and R.
/// </summary>
public sealed class Ed25519Signature : SoftwareSignatureScheme
{
    public const string SchemeName = "ed25519";

    private Ed25519Signature() { }

    public static Ed25519Signature Instance { get; } = new();

    public override string Name => SchemeName;

    public override SignInputKind InputKind => SignInputKind.Message;

    public override int PublicKeySizeInBytes => 32;

    public override int SignatureSizeInBytes => 64;

    public override int PrivateKeySizeInBytes => 32;

    protected override bool IsValidPrivateKeyCore(ReadOnlySpan<byte> privateKey) => privateKey.Length == 32;

    protected internal override byte[] DerivePublicKeyCore(ReadOnlySpan<byte> privateKey)
    {
        Span<byte> sk = stackalloc byte[64];
        try
        {
            SecretKeyFromSeed(privateKey, sk);
            return sk[32..].ToArray();
        }
        finally
        {
            CryptographicOperations.ZeroMemory(sk);
        }
    }

    protected internal override SignatureResult SignCore(ReadOnlySpan<byte> privateKey, ReadOnlySpan<byte> input, IRandomSource random)
    {
        byte[] sig = new byte[64];
        Sign(privateKey, input, sig);
        return new SignatureResult(sig);
    }

    /// <summary>libsodium's 64-byte secret key (the seed and the public key, RFC 8032 section 5.1.5 done once).</summary>
    protected internal override int ExpandedKeySizeInBytes => 64;

    protected internal override void ExpandKeyCore(ReadOnlySpan<byte> privateKey, Span<byte> expanded) => SecretKeyFromSeed(privateKey, expanded);

    /// <summary>libsodium's secret key ends with the public key (RFC 8032 section 5.1.5's A).</summary>
    protected internal override byte[]? PublicKeyFromExpandedCore(ReadOnlySpan<byte> expanded) => expanded.Length == 64 ? expanded[32..].ToArray() : null;

    /// <summary>RFC 8032 section 5.1.6 from the expanded key: no key derivation per signature.</summary>
    protected internal override SignatureResult SignExpandedCore(ReadOnlySpan<byte> expanded, ReadOnlySpan<byte> input, IRandomSource random)
    {
        if (expanded.Length != 64)
        {
            throw CryptoErrors.InvalidLength("expanded key", expanded.Length, 64);
        }

        byte[] sig = new byte[64];
        SignWithSecretKey(expanded, input, sig);
        return new SignatureResult(sig);
    }

    /// <summary>RFC 8032 section 5.1.6 signing from a 32-byte seed.</summary>
    public static void Sign(ReadOnlySpan<byte> seed32, ReadOnlySpan<byte> message, Span<byte> signature64)
    {
        if (seed32.Length != 32)
        {
            throw CryptoErrors.InvalidLength("privateKey", seed32.Length, 32);
        }

        if (signature64.Length != 64)
        {
            throw new ArgumentException("destination must be exactly 64 bytes", nameof(signature64));
        }

        Span<byte> sk = stackalloc byte[64];
        try
        {
            SecretKeyFromSeed(seed32, sk);
            SignWithSecretKey(sk, message, signature64);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(sk);
        }
    }

    /// <summary>RFC 8032 section 5.1.5 through libsodium: the 64-byte secret key (seed ‖ public key A) of a 32-byte seed.</summary>
    private static unsafe void SecretKeyFromSeed(ReadOnlySpan<byte> seed32, Span<byte> secretKey64)
    {
        Sodium.EnsureInitialized();
        Span<byte> pk = stackalloc byte[32];
        fixed (byte* seed = seed32)
        fixed (byte* p = pk)
        fixed (byte* s = secretKey64)
        {
            _ = Sodium.crypto_sign_ed25519_seed_keypair(p, s, seed);
        }
    }

    /// <summary>RFC 8032 section 5.1.6 through libsodium from its 64-byte secret key.</summary>
    private static unsafe void SignWithSecretKey(ReadOnlySpan<byte> secretKey64, ReadOnlySpan<byte> message, Span<byte> signature64)
    {
        fixed (byte* s = secretKey64)
        fixed (byte* m = message)
        fixed (byte* o = signature64)
        {
            byte dummy = 0;
            byte* mp = message.Length == 0 ? &dummy : m;
            ulong len = 0;
            if (Sodium.crypto_sign_ed25519_detached(o, &len, mp, (ulong)message.Length, s) != 0)
            {
                throw new CryptoOperationException("Ed25519 signing failed");
            }
        }
    }

    public override unsafe bool Verify(ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> input, ReadOnlySpan<byte> signature)
    {
        if (publicKey.Length != 32 || signature.Length != 64)
        {
            return false;
        }

        // libsodium (1.0.18+, built without ED25519_COMPAT) refuses non-canonical A and R, small-order A and R,
        // and S >= L; the S check is repeated here so the rule does not depend on how libsodium was built.
        if (!Ed25519Scalar.IsCanonical(signature[32..]))
        {
            return false;
        }

        Sodium.EnsureInitialized();
        fixed (byte* s = signature)
        fixed (byte* m = input)
        fixed (byte* p = publicKey)
        {
            byte dummy = 0;
            byte* mp = input.Length == 0 ? &dummy : m;
            return Sodium.crypto_sign_ed25519_verify_detached(s, mp, (ulong)input.Length, p) == 0;
        }
    }
}
