using Conclave.Crypto.Randomness;
using Conclave.Crypto.Signing;
using Conclave.PostQuantum.Internal;
using Org.BouncyCastle.Crypto.Parameters;

namespace Conclave.PostQuantum;

/// <summary>
/// ML-DSA (FIPS 204), pure mode with a context string. The stored private key is the 32-byte key-generation seed ξ
/// (FIPS 204 Algorithm 1 draws ξ; Algorithm 6 expands it), so the encrypted key store holds 32 bytes whatever the
/// parameter set; signing expands the seed each time. Signing is hedged by default (rnd drawn from the injected
/// <see cref="IRandomSource"/>, FIPS 204 §3.4) and deterministic on request (<see cref="WithDeterministicSigning"/>).
/// Public keys are FIPS 204 pkEncode (Algorithm 22) bytes; signatures sigEncode (Algorithm 26) bytes.
/// </summary>
/// <remarks>
/// The scheme instances in <see cref="PostQuantumSchemes"/> sign with the empty context and hedged randomness.
/// <see cref="WithContext"/> and <see cref="WithDeterministicSigning"/> return configured instances with the same
/// <see cref="Name"/>; a key imported or generated through such an instance signs (and its scheme verifies) with that context.
/// </remarks>
public sealed class MlDsaSignatureScheme : SoftwareSignatureScheme
{
    private readonly MLDsaParameters _parameters;
    private readonly byte[] _context;

    public static MlDsaSignatureScheme MlDsa44 { get; } = new("ml-dsa-44", MLDsaParameters.ml_dsa_44, "2.16.840.1.101.3.4.3.17", 1312, 2420, [], false);

    public static MlDsaSignatureScheme MlDsa65 { get; } = new("ml-dsa-65", MLDsaParameters.ml_dsa_65, "2.16.840.1.101.3.4.3.18", 1952, 3309, [], false);

    public static MlDsaSignatureScheme MlDsa87 { get; } = new("ml-dsa-87", MLDsaParameters.ml_dsa_87, "2.16.840.1.101.3.4.3.19", 2592, 4627, [], false);

    private MlDsaSignatureScheme(
        string name, MLDsaParameters parameters, string oid, int publicKeySize, int signatureSize, byte[] context, bool deterministic)
    {
        Name = name;
        _parameters = parameters;
        ObjectIdentifier = oid;
        PublicKeySizeInBytes = publicKeySize;
        SignatureSizeInBytes = signatureSize;
        _context = context;
        Deterministic = deterministic;
    }

    public override string Name { get; }

    public override SignInputKind InputKind => SignInputKind.Message;

    public override int PublicKeySizeInBytes { get; }

    public override int SignatureSizeInBytes { get; }

    /// <summary>The seed ξ: 32 bytes.</summary>
    public override int PrivateKeySizeInBytes => 32;

    /// <summary>The NIST CSOR object identifier (id-ml-dsa-44/65/87), used in SubjectPublicKeyInfo (RFC 9881).</summary>
    public string ObjectIdentifier { get; }

    /// <summary>The FIPS 204 context string this instance signs and verifies with (empty by default).</summary>
    public ReadOnlyMemory<byte> Context => _context;

    /// <summary>True when this instance signs deterministically (rnd = 32 zero bytes).</summary>
    public bool Deterministic { get; }

    internal MLDsaParameters Parameters => _parameters;

    /// <summary>An instance of the same parameter set that signs and verifies with <paramref name="context"/> (at most 255 bytes).</summary>
    public MlDsaSignatureScheme WithContext(ReadOnlySpan<byte> context)
    {
        if (context.Length > PostQuantumErrors.MaxContextLength)
        {
            throw PostQuantumErrors.ContextTooLong(nameof(context), context.Length);
        }

        return new(Name, _parameters, ObjectIdentifier, PublicKeySizeInBytes, SignatureSizeInBytes, context.ToArray(), Deterministic);
    }

    /// <summary>An instance that signs deterministically (FIPS 204 §3.4: rnd = {0}^32), or hedged again with <c>false</c>.</summary>
    public MlDsaSignatureScheme WithDeterministicSigning(bool deterministic = true)
        => new(Name, _parameters, ObjectIdentifier, PublicKeySizeInBytes, SignatureSizeInBytes, _context, deterministic);

    /// <summary>Verifies with this instance's context string (empty unless set with <see cref="WithContext"/>).</summary>
    public override bool Verify(ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> input, ReadOnlySpan<byte> signature)
        => Verify(publicKey, input, signature, _context);

    /// <summary>ML-DSA.Verify(pk, M, σ, ctx) (FIPS 204 Algorithm 3) with an explicit context; false for any malformed input.</summary>
    public bool Verify(ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> message, ReadOnlySpan<byte> signature, ReadOnlySpan<byte> context)
        => MlDsaCore.Verify(_parameters, PublicKeySizeInBytes, SignatureSizeInBytes, publicKey, message, signature, context);

    /// <summary>Any 32 bytes are a valid seed ξ.</summary>
    protected override bool IsValidPrivateKeyCore(ReadOnlySpan<byte> privateKey) => privateKey.Length == 32;

    protected override byte[] DerivePublicKeyCore(ReadOnlySpan<byte> privateKey) => MlDsaCore.DerivePublicKey(_parameters, privateKey);

    protected override SignatureResult SignCore(ReadOnlySpan<byte> privateKey, ReadOnlySpan<byte> input, IRandomSource random)
        => new(MlDsaCore.SignWithSeed(_parameters, privateKey, input, _context, Deterministic, random));
}
