using Conclave.Crypto.Secp256k1;
using Conclave.Crypto.Signing;
using Conclave.Hsm.Internal;
using Net.Pkcs11Interop.Common;

namespace Conclave.Hsm.Schemes;

/// <summary>
/// <c>hsm-ecdsa-secp256k1</c>: ECDSA over secp256k1 (SEC 1 section 4.1) with the key in a PKCS#11 token.
/// Key generation: CKM_EC_KEY_PAIR_GEN with CKA_EC_PARAMS = OID 1.3.132.0.10. Signing: CKM_ECDSA over the caller's
/// 32-byte digest (PKCS#11 v3.0 Current Mechanisms section 2.3.6: raw ECDSA, output r ‖ s), then low-S
/// normalisation (BIP-146; s ← n − s when s &gt; n/2) and the recovery id Ethereum needs (found by public key
/// recovery, SEC 1 section 4.1.6). The output is byte-for-byte the form of <c>ecdsa-secp256k1</c>: 64-byte compact
/// r ‖ s with <see cref="SignatureResult.RecoveryId"/>; the public key is the 33-byte SEC1 compressed point.
/// The token's nonce is its own (random, not RFC 6979).
/// </summary>
public sealed class HsmEcdsaSecp256k1 : HsmSignatureScheme
{
    public const string SchemeName = "hsm-ecdsa-secp256k1";

    /// <summary>n/2 for secp256k1, big-endian: s above it is "high".</summary>
    private static ReadOnlySpan<byte> HalfOrder =>
    [
        0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0x5D, 0x57, 0x6E, 0x73, 0x57, 0xA4, 0x50, 0x1D, 0xDF, 0xE9, 0x2F, 0x46, 0x68, 0x1B, 0x20, 0xA0,
    ];

    private static readonly byte[][] s_params = [Der.Secp256k1Oid.ToArray()];

    private HsmEcdsaSecp256k1() { }

    public static HsmEcdsaSecp256k1 Instance { get; } = new();

    public override string Name => SchemeName;

    public override SoftwareSignatureScheme SoftwareEquivalent => SignatureSchemes.EcdsaSecp256k1;

    internal override ulong KeyType => (ulong)CKK.CKK_EC;

    internal override (ulong Mechanism, string Name) GenerateMechanism => ((ulong)CKM.CKM_EC_KEY_PAIR_GEN, "CKM_EC_KEY_PAIR_GEN on secp256k1");

    internal override (ulong Mechanism, string Name) SignMechanism => ((ulong)CKM.CKM_ECDSA, "CKM_ECDSA");

    internal override IReadOnlyList<byte[]> ECParameterCandidates => s_params;

    internal override byte[]? DecodePublicKey(ReadOnlySpan<byte> ecPoint)
    {
        if (!Der.TryUnwrapEcPoint(ecPoint, [65, 33], out ReadOnlySpan<byte> point) || !Secp256k1Point.TryParse(point, out Secp256k1Point parsed))
        {
            return null;
        }

        return parsed.ToCompressed();
    }

    internal override SignatureResult? FinishSignature(ReadOnlySpan<byte> raw, ReadOnlySpan<byte> input, ReadOnlySpan<byte> publicKey)
    {
        if (raw.Length != 64
            || !Secp256k1Scalar.TryFromBytes(raw[..32], out Secp256k1Scalar r) || r.IsZero
            || !Secp256k1Scalar.TryFromBytes(raw[32..], out Secp256k1Scalar s) || s.IsZero)
        {
            return null;
        }

        byte[] signature = new byte[64];
        raw[..32].CopyTo(signature);
        if (raw[32..].SequenceCompareTo(HalfOrder) > 0)
        {
            (-s).WriteTo(signature.AsSpan(32));
        }
        else
        {
            raw[32..].CopyTo(signature.AsSpan(32));
        }

        int? recoveryId = FindRecoveryId(input, signature, publicKey);
        return recoveryId is null ? null : new SignatureResult(signature, recoveryId);
    }

    /// <summary>
    /// The v (0..3) for which public key recovery (SEC 1 section 4.1.6) gives back <paramref name="publicKey"/>.
    /// Finding one also proves the signature valid for that key, so no separate verification is needed.
    /// </summary>
    internal static int? FindRecoveryId(ReadOnlySpan<byte> digest32, ReadOnlySpan<byte> signature64, ReadOnlySpan<byte> publicKey)
    {
        if (!Secp256k1Point.TryParse(publicKey, out Secp256k1Point expected))
        {
            return null;
        }

        for (int v = 0; v < 4; v++)
        {
            if (EcdsaSecp256k1.TryRecover(digest32, signature64, v, out Secp256k1Point recovered) && recovered == expected)
            {
                return v;
            }
        }

        return null;
    }
}
