using Conclave.Crypto.Randomness;
using Conclave.Crypto.Signing;
using Conclave.PostQuantum.Internal;
using Org.BouncyCastle.Crypto.Parameters;

namespace Conclave.PostQuantum;

/// <summary>
/// SLH-DSA (FIPS 205), pure mode with a context string, all twelve parameter sets of FIPS 205 Table 2.
/// The stored private key is the 3n-byte seed string SK.seed ‖ SK.prf ‖ PK.seed (the inputs of slh_keygen_internal,
/// Algorithm 18); PK.root is recomputed from it, so every sign rebuilds the top XMSS tree (about one key generation).
/// Public keys are PK.seed ‖ PK.root (2n bytes). Signing is hedged by default (opt_rand from the injected source) and
/// deterministic on request (opt_rand = PK.seed, FIPS 205 §9.2).
/// </summary>
/// <remarks>The "s" (small) sets sign slowly (hundreds of milliseconds); the "f" (fast) sets have larger signatures.</remarks>
public sealed class SlhDsaSignatureScheme : SoftwareSignatureScheme
{
    private readonly SlhDsaParameters _parameters;
    private readonly byte[] _context;
    private readonly int _n;

    public static SlhDsaSignatureScheme Sha2_128s { get; } = Create("slh-dsa-sha2-128s", SlhDsaParameters.slh_dsa_sha2_128s, 20, 16, 7856);

    public static SlhDsaSignatureScheme Sha2_128f { get; } = Create("slh-dsa-sha2-128f", SlhDsaParameters.slh_dsa_sha2_128f, 21, 16, 17088);

    public static SlhDsaSignatureScheme Sha2_192s { get; } = Create("slh-dsa-sha2-192s", SlhDsaParameters.slh_dsa_sha2_192s, 22, 24, 16224);

    public static SlhDsaSignatureScheme Sha2_192f { get; } = Create("slh-dsa-sha2-192f", SlhDsaParameters.slh_dsa_sha2_192f, 23, 24, 35664);

    public static SlhDsaSignatureScheme Sha2_256s { get; } = Create("slh-dsa-sha2-256s", SlhDsaParameters.slh_dsa_sha2_256s, 24, 32, 29792);

    public static SlhDsaSignatureScheme Sha2_256f { get; } = Create("slh-dsa-sha2-256f", SlhDsaParameters.slh_dsa_sha2_256f, 25, 32, 49856);

    public static SlhDsaSignatureScheme Shake_128s { get; } = Create("slh-dsa-shake-128s", SlhDsaParameters.slh_dsa_shake_128s, 26, 16, 7856);

    public static SlhDsaSignatureScheme Shake_128f { get; } = Create("slh-dsa-shake-128f", SlhDsaParameters.slh_dsa_shake_128f, 27, 16, 17088);

    public static SlhDsaSignatureScheme Shake_192s { get; } = Create("slh-dsa-shake-192s", SlhDsaParameters.slh_dsa_shake_192s, 28, 24, 16224);

    public static SlhDsaSignatureScheme Shake_192f { get; } = Create("slh-dsa-shake-192f", SlhDsaParameters.slh_dsa_shake_192f, 29, 24, 35664);

    public static SlhDsaSignatureScheme Shake_256s { get; } = Create("slh-dsa-shake-256s", SlhDsaParameters.slh_dsa_shake_256s, 30, 32, 29792);

    public static SlhDsaSignatureScheme Shake_256f { get; } = Create("slh-dsa-shake-256f", SlhDsaParameters.slh_dsa_shake_256f, 31, 32, 49856);

    private static SlhDsaSignatureScheme Create(string name, SlhDsaParameters parameters, int oidArc, int n, int signatureSize)
        => new(name, parameters, $"2.16.840.1.101.3.4.3.{oidArc}", n, signatureSize, [], false);

    private SlhDsaSignatureScheme(
        string name, SlhDsaParameters parameters, string oid, int n, int signatureSize, byte[] context, bool deterministic)
    {
        Name = name;
        _parameters = parameters;
        ObjectIdentifier = oid;
        _n = n;
        SignatureSizeInBytes = signatureSize;
        _context = context;
        Deterministic = deterministic;
    }

    public override string Name { get; }

    public override SignInputKind InputKind => SignInputKind.Message;

    /// <summary>PK.seed ‖ PK.root: 2n bytes.</summary>
    public override int PublicKeySizeInBytes => 2 * _n;

    public override int SignatureSizeInBytes { get; }

    /// <summary>SK.seed ‖ SK.prf ‖ PK.seed: 3n bytes.</summary>
    public override int PrivateKeySizeInBytes => 3 * _n;

    /// <summary>The security parameter n in bytes (16, 24 or 32).</summary>
    public int N => _n;

    /// <summary>The NIST CSOR object identifier (id-slh-dsa-*), used in SubjectPublicKeyInfo (RFC 9909).</summary>
    public string ObjectIdentifier { get; }

    /// <summary>The FIPS 205 context string this instance signs and verifies with (empty by default).</summary>
    public ReadOnlyMemory<byte> Context => _context;

    /// <summary>True when this instance signs deterministically (opt_rand = PK.seed).</summary>
    public bool Deterministic { get; }

    internal SlhDsaParameters Parameters => _parameters;

    /// <summary>An instance of the same parameter set that signs and verifies with <paramref name="context"/> (at most 255 bytes).</summary>
    public SlhDsaSignatureScheme WithContext(ReadOnlySpan<byte> context)
    {
        if (context.Length > PostQuantumErrors.MaxContextLength)
        {
            throw PostQuantumErrors.ContextTooLong(nameof(context), context.Length);
        }

        return new(Name, _parameters, ObjectIdentifier, _n, SignatureSizeInBytes, context.ToArray(), Deterministic);
    }

    /// <summary>An instance that signs deterministically (opt_rand = PK.seed), or hedged again with <c>false</c>.</summary>
    public SlhDsaSignatureScheme WithDeterministicSigning(bool deterministic = true)
        => new(Name, _parameters, ObjectIdentifier, _n, SignatureSizeInBytes, _context, deterministic);

    public override bool Verify(ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> input, ReadOnlySpan<byte> signature)
        => Verify(publicKey, input, signature, _context);

    /// <summary>slh_verify(M, SIG, ctx, PK) (FIPS 205 Algorithm 24) with an explicit context; false for any malformed input.</summary>
    public bool Verify(ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> message, ReadOnlySpan<byte> signature, ReadOnlySpan<byte> context)
        => SlhDsaCore.Verify(_parameters, PublicKeySizeInBytes, SignatureSizeInBytes, publicKey, message, signature, context);

    /// <summary>Any 3n bytes are valid seeds.</summary>
    protected override bool IsValidPrivateKeyCore(ReadOnlySpan<byte> privateKey) => privateKey.Length == 3 * _n;

    protected override byte[] DerivePublicKeyCore(ReadOnlySpan<byte> privateKey) => SlhDsaCore.DerivePublicKey(_parameters, privateKey);

    protected override SignatureResult SignCore(ReadOnlySpan<byte> privateKey, ReadOnlySpan<byte> input, IRandomSource random)
        => new(SlhDsaCore.Sign(SlhDsaCore.ExpandSeeds(_parameters, privateKey), input, _context, Deterministic, random));
}
