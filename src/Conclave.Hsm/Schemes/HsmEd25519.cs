using Conclave.Crypto.Signing;
using Conclave.Hsm.Internal;

namespace Conclave.Hsm.Schemes;

/// <summary>
/// <c>hsm-ed25519</c>: Ed25519 (RFC 8032 section 5.1, pure) with the key in a PKCS#11 token.
/// Key generation: CKM_EC_EDWARDS_KEY_PAIR_GEN (key type CKK_EC_EDWARDS) with CKA_EC_PARAMS = OID 1.3.101.112
/// (RFC 8410), or the PrintableString "edwards25519" for tokens that only know the name (PKCS#11 v3.0 Current
/// Mechanisms section 2.3.5). Signing: CKM_EDDSA without parameters (pure Ed25519, section 2.3.14). The token's
/// output is checked with the strict software verifier before it is returned (DESIGN.md safety rule 4: no invalid
/// signature leaves Conclave). Public key and signature: 32 and 64 bytes, as <c>ed25519</c>.
/// </summary>
public sealed class HsmEd25519 : HsmSignatureScheme
{
    public const string SchemeName = "hsm-ed25519";

    /// <summary>PKCS#11 v3.0 constants Pkcs11Interop 5.3 does not name.</summary>
    internal const ulong CKK_EC_EDWARDS = 0x40;
    internal const ulong CKM_EC_EDWARDS_KEY_PAIR_GEN = 0x1055;
    internal const ulong CKM_EDDSA = 0x1057;

    private static readonly byte[][] s_params = [Der.Ed25519Oid.ToArray(), Der.Ed25519Name.ToArray()];

    private HsmEd25519() { }

    public static HsmEd25519 Instance { get; } = new();

    public override string Name => SchemeName;

    public override SoftwareSignatureScheme SoftwareEquivalent => SignatureSchemes.Ed25519;

    internal override ulong KeyType => CKK_EC_EDWARDS;

    internal override (ulong Mechanism, string Name) GenerateMechanism => (CKM_EC_EDWARDS_KEY_PAIR_GEN, "CKM_EC_EDWARDS_KEY_PAIR_GEN on edwards25519");

    internal override (ulong Mechanism, string Name) SignMechanism => (CKM_EDDSA, "CKM_EDDSA");

    internal override IReadOnlyList<byte[]> ECParameterCandidates => s_params;

    internal override byte[]? DecodePublicKey(ReadOnlySpan<byte> ecPoint)
    {
        if (!Der.TryUnwrapEcPoint(ecPoint, [32], out ReadOnlySpan<byte> point) || !Crypto.Ed25519.Ed25519Point.TryParse(point, out _))
        {
            return null;
        }

        return point.ToArray();
    }

    internal override SignatureResult? FinishSignature(ReadOnlySpan<byte> raw, ReadOnlySpan<byte> input, ReadOnlySpan<byte> publicKey)
        => raw.Length == 64 && SoftwareEquivalent.Verify(publicKey, input, raw) ? new SignatureResult(raw.ToArray()) : null;
}
