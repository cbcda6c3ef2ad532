using System.Security.Cryptography;
using System.Text;
using Conclave.Crypto.Ed25519;
using Conclave.Crypto.Randomness;
using Conclave.Crypto.Secp256k1;
using Conclave.Crypto.Signing;
using Conclave.PostQuantum.Internal;

namespace Conclave.PostQuantum;

/// <summary>The traditional half of a hybrid scheme.</summary>
public enum HybridClassicalAlgorithm
{
    /// <summary>Ed25519 (RFC 8032) over M'.</summary>
    Ed25519,

    /// <summary>ECDSA on secp256k1 (RFC 6979 nonces, low-S) over SHA-256(M').</summary>
    EcdsaSecp256k1,
}

/// <summary>
/// A PQ/T hybrid: ML-DSA-65 and a traditional signature over the same message, built as Composite ML-DSA
/// (draft-ietf-lamps-pq-composite-sigs, §4 "Composite ML-DSA Functions"; see docs/POST-QUANTUM.md):
/// <code>
/// M'        = Prefix ‖ Label ‖ len(ctx) (1 byte) ‖ ctx ‖ SHA-512(M)      Prefix = "CompositeAlgorithmSignatures2025"
/// mldsaSig  = ML-DSA-65.Sign(ξ, M', ctx = Label)                         (FIPS 204 Algorithm 2)
/// tradSig   = Ed25519.Sign(seed, M')  |  ECDSA-secp256k1.Sign(d, SHA-256(M'))
/// signature = mldsaSig (3309 bytes) ‖ tradSig (64 bytes)
/// </code>
/// Verification needs both components. Public key = ML-DSA-65 pk (1952 bytes) ‖ Ed25519 pk (32) or SEC1 compressed
/// secp256k1 point (33). Private key (what the store keeps) = ξ (32 bytes) ‖ Ed25519 seed (32) or secp256k1 scalar (32, big-endian).
/// </summary>
/// <remarks>
/// <c>hybrid-ed25519-ml-dsa-65</c> follows the draft's id-MLDSA65-Ed25519-SHA512 byte for byte.
/// <c>hybrid-ecdsa-ml-dsa-65</c> uses the same construction with secp256k1, which the draft does not define, so it carries
/// a Conclave label and has no object identifier. The label binds each signature to its hybrid (no stripping or
/// cross-scheme reuse); the user's context string goes into M'.
/// </remarks>
public sealed class HybridSignatureScheme : SoftwareSignatureScheme
{
    /// <summary>The draft's fixed prefix: ASCII "CompositeAlgorithmSignatures2025".</summary>
    internal static ReadOnlySpan<byte> Prefix => "CompositeAlgorithmSignatures2025"u8;

    private const int SeedSize = 32;
    private const int ClassicalSignatureSize = 64;

    private readonly byte[] _label;
    private readonly byte[] _context;

    public static HybridSignatureScheme Ed25519MlDsa65 { get; } = new(
        "hybrid-ed25519-ml-dsa-65", HybridClassicalAlgorithm.Ed25519, "COMPSIG-MLDSA65-Ed25519-SHA512", "1.3.6.1.5.5.7.6.48", [], false);

    public static HybridSignatureScheme EcdsaSecp256k1MlDsa65 { get; } = new(
        "hybrid-ecdsa-ml-dsa-65", HybridClassicalAlgorithm.EcdsaSecp256k1, "Conclave-COMPSIG-MLDSA65-ECDSA-secp256k1-SHA512", null, [], false);

    private HybridSignatureScheme(
        string name, HybridClassicalAlgorithm classical, string label, string? oid, byte[] context, bool deterministic)
    {
        Name = name;
        Classical = classical;
        _label = Encoding.ASCII.GetBytes(label);
        ObjectIdentifier = oid;
        _context = context;
        Deterministic = deterministic;
    }

    public override string Name { get; }

    public override SignInputKind InputKind => SignInputKind.Message;

    public HybridClassicalAlgorithm Classical { get; }

    /// <summary>The post-quantum component: ML-DSA-65.</summary>
    public static MlDsaSignatureScheme PostQuantum => MlDsaSignatureScheme.MlDsa65;

    /// <summary>The traditional component scheme (its public key and signature encodings are used unchanged).</summary>
    public SoftwareSignatureScheme ClassicalScheme => Classical == HybridClassicalAlgorithm.Ed25519
        ? Ed25519Signature.Instance
        : EcdsaSecp256k1.Instance;

    public override int PublicKeySizeInBytes => PostQuantum.PublicKeySizeInBytes + ClassicalScheme.PublicKeySizeInBytes;

    public override int SignatureSizeInBytes => PostQuantum.SignatureSizeInBytes + ClassicalSignatureSize;

    /// <summary>ξ (32 bytes) ‖ classical secret (32 bytes).</summary>
    public override int PrivateKeySizeInBytes => SeedSize + 32;

    /// <summary>The domain label (ASCII), also the ML-DSA context string of the post-quantum component.</summary>
    public ReadOnlyMemory<byte> Label => _label;

    /// <summary>The draft's composite OID for <c>hybrid-ed25519-ml-dsa-65</c> (draft, not yet final); null for the secp256k1 hybrid.</summary>
    public string? ObjectIdentifier { get; }

    /// <summary>The application context string placed in M' (empty by default, at most 255 bytes).</summary>
    public ReadOnlyMemory<byte> Context => _context;

    /// <summary>True when the ML-DSA component signs deterministically (the traditional components are deterministic anyway).</summary>
    public bool Deterministic { get; }

    public HybridSignatureScheme WithContext(ReadOnlySpan<byte> context)
    {
        if (context.Length > PostQuantumErrors.MaxContextLength)
        {
            throw PostQuantumErrors.ContextTooLong(nameof(context), context.Length);
        }

        return new(Name, Classical, Encoding.ASCII.GetString(_label), ObjectIdentifier, context.ToArray(), Deterministic);
    }

    public HybridSignatureScheme WithDeterministicSigning(bool deterministic = true)
        => new(Name, Classical, Encoding.ASCII.GetString(_label), ObjectIdentifier, _context, deterministic);

    /// <summary>M' = Prefix ‖ Label ‖ len(ctx) ‖ ctx ‖ SHA-512(M) (draft-ietf-lamps-pq-composite-sigs, Composite-ML-DSA.Sign step 1–2).</summary>
    public byte[] MessageRepresentative(ReadOnlySpan<byte> message, ReadOnlySpan<byte> context)
    {
        if (context.Length > PostQuantumErrors.MaxContextLength)
        {
            throw PostQuantumErrors.ContextTooLong(nameof(context), context.Length);
        }

        byte[] mPrime = new byte[Prefix.Length + _label.Length + 1 + context.Length + SHA512.HashSizeInBytes];
        var w = mPrime.AsSpan();
        Prefix.CopyTo(w);
        w = w[Prefix.Length..];
        _label.CopyTo(w);
        w = w[_label.Length..];
        w[0] = (byte)context.Length;
        w = w[1..];
        context.CopyTo(w);
        w = w[context.Length..];
        SHA512.HashData(message, w);
        return mPrime;
    }

    public override bool Verify(ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> input, ReadOnlySpan<byte> signature)
        => Verify(publicKey, input, signature, _context);

    /// <summary>Composite-ML-DSA.Verify: true only if both component signatures verify over M'.</summary>
    public bool Verify(ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> message, ReadOnlySpan<byte> signature, ReadOnlySpan<byte> context)
    {
        if (publicKey.Length != PublicKeySizeInBytes || signature.Length != SignatureSizeInBytes
            || context.Length > PostQuantumErrors.MaxContextLength)
        {
            return false;
        }

        int pqPk = PostQuantum.PublicKeySizeInBytes;
        int pqSig = PostQuantum.SignatureSizeInBytes;
        byte[] mPrime = MessageRepresentative(message, context);
        bool pqOk = PostQuantum.Verify(publicKey[..pqPk], mPrime, signature[..pqSig], _label);
        bool classicalOk = VerifyClassical(publicKey[pqPk..], mPrime, signature[pqSig..]);
        return pqOk & classicalOk;
    }

    private bool VerifyClassical(ReadOnlySpan<byte> publicKey, byte[] mPrime, ReadOnlySpan<byte> signature)
    {
        if (Classical == HybridClassicalAlgorithm.Ed25519)
        {
            return Ed25519Signature.Instance.Verify(publicKey, mPrime, signature);
        }

        Span<byte> digest = stackalloc byte[32];
        SHA256.HashData(mPrime, digest);
        return EcdsaSecp256k1.Instance.Verify(publicKey, digest, signature);
    }

    protected override bool IsValidPrivateKeyCore(ReadOnlySpan<byte> privateKey)
    {
        if (privateKey.Length != PrivateKeySizeInBytes)
        {
            return false;
        }

        if (Classical == HybridClassicalAlgorithm.Ed25519)
        {
            return true;
        }

        return Secp256k1Scalar.TryFromBytes(privateKey[SeedSize..], out Secp256k1Scalar d) && !d.IsZero;
    }

    protected override byte[] DerivePublicKeyCore(ReadOnlySpan<byte> privateKey)
    {
        byte[] pq = MlDsaCore.DerivePublicKey(PostQuantum.Parameters, privateKey[..SeedSize]);
        byte[] classical;
        using (SoftwareSigningKey key = ClassicalScheme.ImportPrivateKey(privateKey[SeedSize..]))
        {
            classical = key.PublicKey.ToArray();
        }

        return [.. pq, .. classical];
    }

    protected override SignatureResult SignCore(ReadOnlySpan<byte> privateKey, ReadOnlySpan<byte> input, IRandomSource random)
    {
        byte[] mPrime = MessageRepresentative(input, _context);
        byte[] pqSignature = MlDsaCore.SignWithSeed(PostQuantum.Parameters, privateKey[..SeedSize], mPrime, _label, Deterministic, random);
        byte[] signature = new byte[SignatureSizeInBytes];
        pqSignature.CopyTo(signature, 0);
        Span<byte> classical = signature.AsSpan(pqSignature.Length);
        if (Classical == HybridClassicalAlgorithm.Ed25519)
        {
            Ed25519Signature.Sign(privateKey[SeedSize..], mPrime, classical);
        }
        else
        {
            Span<byte> digest = stackalloc byte[32];
            SHA256.HashData(mPrime, digest);
            EcdsaSecp256k1.SignRecoverable(privateKey[SeedSize..], digest, classical);
        }

        return new(signature);
    }
}
