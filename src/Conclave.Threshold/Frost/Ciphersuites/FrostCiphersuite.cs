using System.Security.Cryptography;
using Conclave.Crypto.Randomness;

using Conclave.Threshold.Frost.Ciphersuites;

namespace Conclave.Threshold.Frost;

/// <summary>
/// A FROST ciphersuite (RFC 9591 section 6): a prime-order group, its encodings and the hash functions H1..H5,
/// plus HDKG and HID used by key generation (as in the FROST reference implementation). The generic FROST core
/// (signing, aggregation, DKG, refresh, repair, reshare, HD) is written once against this class; the suites are
/// thin. The class cannot be extended outside this library: its members that compute are internal.
/// </summary>
public abstract class FrostCiphersuite
{
    private protected FrostCiphersuite() { }

    /// <summary>FROST(Ed25519, SHA-512), RFC 9591 section 6.1, scheme <c>frost-ed25519</c>.</summary>
    public static FrostCiphersuite Ed25519Sha512 { get; } = new Ed25519Sha512Suite();

    /// <summary>FROST(secp256k1, SHA-256), RFC 9591 section 6.5, scheme <c>frost-secp256k1</c>.</summary>
    public static FrostCiphersuite Secp256k1Sha256 { get; } = new Secp256k1Sha256Suite();

    /// <summary>
    /// FROST(secp256k1, SHA-256) with BIP-340 challenges and even-Y handling (the ZcashFoundation
    /// frost-secp256k1-tr suite), scheme <c>frost-taproot</c>: signatures verify as BIP-340 Schnorr.
    /// </summary>
    public static FrostCiphersuite Secp256k1Taproot { get; } = new Secp256k1TaprootSuite();

    /// <summary>All suites, in wire-id order.</summary>
    public static IReadOnlyList<FrostCiphersuite> All { get; } = [Ed25519Sha512, Secp256k1Sha256, Secp256k1Taproot];

    /// <summary>Finds a suite by its scheme name (<c>frost-ed25519</c>, <c>frost-secp256k1</c>, <c>frost-taproot</c>).</summary>
    public static bool TryGet(string schemeName, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out FrostCiphersuite? suite)
    {
        suite = All.FirstOrDefault(s => string.Equals(s.SchemeName, schemeName, StringComparison.Ordinal));
        return suite is not null;
    }

    /// <summary>The Conclave scheme name (part of the API).</summary>
    public abstract string SchemeName { get; }

    /// <summary>The RFC 9591 contextString (domain separation prefix of every hash).</summary>
    public abstract string ContextString { get; }

    public abstract int ScalarSizeInBytes { get; }

    public abstract int ElementSizeInBytes { get; }

    /// <summary>Size of a final signature: 64 (ed25519, BIP-340 taproot) or 65 (secp256k1: 33-byte R ‖ z).</summary>
    public abstract int SignatureSizeInBytes { get; }

    /// <summary>Size of the group public key as published (ed25519 32, secp256k1 33 compressed, taproot 32 x-only).</summary>
    public virtual int PublicKeySizeInBytes => ElementSizeInBytes;

    /// <summary>One byte naming the suite in every serialized package.</summary>
    internal abstract byte WireId { get; }

    /// <summary>True for BIP-340: keys and group commitments are normalised to even Y.</summary>
    internal virtual bool RequiresEvenY => false;

    internal abstract Scalar ScalarFromUInt64(ulong value);

    internal Scalar ScalarZero => ScalarFromUInt64(0);

    internal Scalar ScalarOne => ScalarFromUInt64(1);

    /// <summary>A uniformly random non-zero scalar.</summary>
    internal abstract Scalar RandomScalar(IRandomSource random);

    /// <summary>DeserializeScalar: canonical encodings only (less than the group order).</summary>
    internal abstract bool TryReadScalar(ReadOnlySpan<byte> encoded, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Scalar? scalar);

    /// <summary>DeserializeElement: on the curve, in the prime-order subgroup, canonical, not the identity.</summary>
    internal abstract bool TryReadElement(ReadOnlySpan<byte> encoded, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Element? element);

    internal abstract Element Identity { get; }

    internal abstract Element Generator { get; }

    /// <summary>ScalarBaseMult (RFC 9591 section 3.1).</summary>
    internal abstract Element BaseMul(Scalar k);

    /// <summary>
    /// a·P + b·G for PUBLIC inputs only (verification equations): suites may use variable-time code here.
    /// </summary>
    internal virtual Element MulAddBasePublic(Element p, Scalar a, Scalar b) => Sum([p * a, BaseMul(b)]);

    /// <summary>The sum of many elements (one native call for secp256k1).</summary>
    internal abstract Element Sum(IReadOnlyList<Element> elements);

    /// <summary>H1: binding factors ("rho").</summary>
    internal abstract Scalar H1(ReadOnlySpan<byte> m);

    /// <summary>H2: the signature challenge.</summary>
    internal abstract Scalar H2(ReadOnlySpan<byte> m);

    /// <summary>H3: nonce generation ("nonce").</summary>
    internal abstract Scalar H3(ReadOnlySpan<byte> m);

    /// <summary>H4: message hash ("msg").</summary>
    internal abstract byte[] H4(ReadOnlySpan<byte> m);

    /// <summary>H5: commitment-list hash ("com").</summary>
    internal abstract byte[] H5(ReadOnlySpan<byte> m);

    /// <summary>HDKG: challenge of the DKG proof of knowledge ("dkg").</summary>
    internal abstract Scalar HDkg(ReadOnlySpan<byte> m);

    /// <summary>HID: identifiers derived from arbitrary bytes ("id").</summary>
    internal abstract Scalar HId(ReadOnlySpan<byte> m);

    /// <summary>A hash-to-scalar under a Conclave-specific tag (HD tweaks, transcripts); same construction as H1 with another tag.</summary>
    internal abstract Scalar HashToScalar(string tag, ReadOnlySpan<byte> m);

    /// <summary>compute_challenge (RFC 9591 section 4.6): H2(SerializeElement(R) ‖ SerializeElement(PK) ‖ msg).</summary>
    internal virtual Scalar Challenge(Element groupCommitment, Element groupPublicKey, ReadOnlySpan<byte> message)
    {
        int e = ElementSizeInBytes;
        byte[] buf = new byte[(2 * e) + message.Length];
        groupCommitment.WriteTo(buf.AsSpan(0, e));
        groupPublicKey.WriteTo(buf.AsSpan(e, e));
        message.CopyTo(buf.AsSpan(2 * e));
        return H2(buf);
    }

    /// <summary>Encodes a final signature (R, z): SerializeElement(R) ‖ SerializeScalar(z) (RFC 9591 section 5.3).</summary>
    internal virtual byte[] EncodeSignature(Element r, Scalar z)
    {
        byte[] sig = new byte[SignatureSizeInBytes];
        r.WriteTo(sig.AsSpan(0, ElementSizeInBytes));
        z.WriteTo(sig.AsSpan(ElementSizeInBytes));
        return sig;
    }

    /// <summary>The group public key as published (x-only for taproot).</summary>
    internal virtual byte[] EncodePublicKey(Element groupPublicKey) => groupPublicKey.ToBytes();

    /// <summary>Verifies a final signature under an encoded group public key; false for any malformed input.</summary>
    public abstract bool Verify(ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> message, ReadOnlySpan<byte> signature);

    /// <summary>
    /// Prime-order Schnorr verification z·G == R + c·PK (RFC 9591 section 6 "Verify"); the generic check the
    /// suites share. secp256k1 has cofactor 1 and the ed25519 elements here are validated to the prime-order
    /// subgroup, so no cofactor clearing is needed.
    /// </summary>
    internal bool VerifyElements(Element r, Scalar z, Element publicKey, ReadOnlySpan<byte> message)
    {
        Scalar c = Challenge(r, publicKey, message);
        Element lhs = BaseMul(z);
        Element rhs = r + (publicKey * c);
        return lhs.ValueEquals(rhs);
    }

    /// <summary>
    /// The aggregator's final check (RFC 9591 section 5.3, "SHOULD verify"): by default the suite's own verifier on
    /// the encoded signature (libsodium Ed25519, libsecp256k1 BIP-340), so what is returned is exactly what an
    /// outside verifier accepts. <paramref name="zG"/> = Σ z_i·G, already computed while checking the shares.
    /// </summary>
    internal virtual bool VerifyAggregate(PublicKeyPackage key, ReadOnlySpan<byte> message, byte[] signature, Internal.SigningContext ctx, Element zG)
        => Verify(key.VerificationKey, message, signature);

    public override string ToString() => SchemeName;

    /// <summary>SHA-512 or SHA-256 of the concatenation of the parts.</summary>
    private protected static byte[] Hash(HashAlgorithmName alg, ReadOnlySpan<byte> a, ReadOnlySpan<byte> b, ReadOnlySpan<byte> c)
    {
        using var h = IncrementalHash.CreateHash(alg);
        h.AppendData(a);
        h.AppendData(b);
        h.AppendData(c);
        return h.GetHashAndReset();
    }
}
