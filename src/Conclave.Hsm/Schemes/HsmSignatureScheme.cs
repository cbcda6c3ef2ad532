using Conclave.Crypto.Signing;

namespace Conclave.Hsm.Schemes;

/// <summary>
/// A scheme whose private key is generated inside a PKCS#11 token and never leaves it (DESIGN.md key schemes:
/// <c>hsm-ecdsa-secp256k1</c>, <c>hsm-ed25519</c>). Signatures have exactly the form of the software scheme of the
/// same curve (<see cref="SoftwareEquivalent"/>), so verification delegates to it; only signing differs
/// (<see cref="HsmSigningKey"/>). Not designed for extension outside this library.
/// </summary>
public abstract class HsmSignatureScheme : SignatureScheme
{
    private protected HsmSignatureScheme() { }

    /// <summary>The software scheme whose public keys and signatures this scheme shares (and whose verifier it uses).</summary>
    public abstract SoftwareSignatureScheme SoftwareEquivalent { get; }

    public override SignInputKind InputKind => SoftwareEquivalent.InputKind;

    public override int PublicKeySizeInBytes => SoftwareEquivalent.PublicKeySizeInBytes;

    public override int SignatureSizeInBytes => SoftwareEquivalent.SignatureSizeInBytes;

    /// <summary>Verifies exactly as the software scheme does (strict; never throws for bad data).</summary>
    public override bool Verify(ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> input, ReadOnlySpan<byte> signature)
        => SoftwareEquivalent.Verify(publicKey, input, signature);

    /// <summary>PKCS#11 key type of the key pair (CKK_EC or CKK_EC_EDWARDS).</summary>
    internal abstract ulong KeyType { get; }

    /// <summary>The key-pair generation mechanism and its name, for errors.</summary>
    internal abstract (ulong Mechanism, string Name) GenerateMechanism { get; }

    /// <summary>The signing mechanism and its name, for errors.</summary>
    internal abstract (ulong Mechanism, string Name) SignMechanism { get; }

    /// <summary>CKA_EC_PARAMS encodings to try at generation, preferred first.</summary>
    internal abstract IReadOnlyList<byte[]> ECParameterCandidates { get; }

    /// <summary>Whether a key's CKA_EC_PARAMS names this scheme's curve.</summary>
    internal bool MatchesParameters(ReadOnlySpan<byte> ecParams)
    {
        foreach (byte[] candidate in ECParameterCandidates)
        {
            if (ecParams.SequenceEqual(candidate))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Decodes CKA_EC_POINT into the canonical public key encoding, or returns null when malformed.</summary>
    internal abstract byte[]? DecodePublicKey(ReadOnlySpan<byte> ecPoint);

    /// <summary>
    /// Turns the token's raw signature output into Conclave's signature form and checks it against the public key;
    /// returns null if the token's output is malformed or does not verify.
    /// </summary>
    internal abstract SignatureResult? FinishSignature(ReadOnlySpan<byte> raw, ReadOnlySpan<byte> input, ReadOnlySpan<byte> publicKey);
}
