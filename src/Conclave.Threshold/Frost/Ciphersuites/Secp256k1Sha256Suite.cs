using System.Security.Cryptography;
using System.Text;
using Conclave.Crypto.Hashing;
using Conclave.Crypto.Randomness;
using Conclave.Crypto.Secp256k1;

namespace Conclave.Threshold.Frost.Ciphersuites;

/// <summary>
/// FROST(secp256k1, SHA-256), RFC 9591 section 6.5: contextString "FROST-secp256k1-SHA256-v1", scalars 32-byte
/// big-endian, elements SEC1 compressed, H1/H2/H3 = hash_to_field (RFC 9380, expand_message_xmd SHA-256, L = 48)
/// with DST contextString ‖ tag, H4/H5 = SHA-256(contextString ‖ tag ‖ m).
/// </summary>
internal class Secp256k1Sha256Suite : FrostCiphersuite
{
    private static readonly Element s_identity = new K1Element(Secp256k1Point.Identity);
    private static readonly Element s_generator = new K1Element(Secp256k1Point.Generator);
    private readonly byte[] _ctx;

    internal Secp256k1Sha256Suite() : this("FROST-secp256k1-SHA256-v1") { }

    private protected Secp256k1Sha256Suite(string context) => _ctx = Encoding.ASCII.GetBytes(context);

    public override string SchemeName => "frost-secp256k1";

    public override string ContextString => "FROST-secp256k1-SHA256-v1";

    public override int ScalarSizeInBytes => 32;

    public override int ElementSizeInBytes => 33;

    public override int SignatureSizeInBytes => 65;

    internal override byte WireId => 2;

    internal override Scalar ScalarFromUInt64(ulong value) => new K1Scalar(Secp256k1Scalar.FromUInt64(value));

    internal override Scalar RandomScalar(IRandomSource random) => new K1Scalar(Secp256k1Scalar.Random(random));

    internal override bool TryReadScalar(ReadOnlySpan<byte> encoded, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Scalar? scalar)
    {
        scalar = null;
        if (!Secp256k1Scalar.TryFromBytes(encoded, out Secp256k1Scalar s))
        {
            return false;
        }

        scalar = new K1Scalar(s);
        return true;
    }

    internal override bool TryReadElement(ReadOnlySpan<byte> encoded, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Element? element)
    {
        element = null;
        // Compressed form only: one encoding per point.
        if (encoded.Length != 33 || !Secp256k1Point.TryParse(encoded, out Secp256k1Point p) || p.IsIdentity)
        {
            return false;
        }

        element = new K1Element(p);
        return true;
    }

    internal override Element Identity => s_identity;

    internal override Element Generator => s_generator;

    internal override Element BaseMul(Scalar k) => new K1Element(Secp256k1Point.MultiplyGenerator(((K1Scalar)k).Value));

    internal override Element Sum(IReadOnlyList<Element> elements)
    {
        var pts = new Secp256k1Point[elements.Count];
        for (int i = 0; i < pts.Length; i++)
        {
            pts[i] = ((K1Element)elements[i]).Value;
        }

        return new K1Element(Secp256k1Point.Sum(pts));
    }

    /// <summary>
    /// a·P + b·G for public values through libsecp256k1's variable-time Strauss multiplication, reached with the
    /// public API by ECDSA public-key recovery: recover(r, s, e) = r⁻¹·(s·R − e·G) with R = P (r = x(P) mod n,
    /// recovery id from the parity of y and x ≥ n), s = a·r, e = −b·r. About a third cheaper than
    /// tweak_mul + base multiplication + addition. Falls back to the generic path when a = 0 or the result is
    /// the identity.
    /// </summary>
    internal override Element MulAddBasePublic(Element p, Scalar a, Scalar b)
    {
        Secp256k1Point point = ((K1Element)p).Value;
        if (a.IsZero || point.IsIdentity)
        {
            return base.MulAddBasePublic(p, a, b);
        }

        Span<byte> c = stackalloc byte[33];
        point.WriteCompressed(c);
        System.Numerics.BigInteger x = new(c[1..], isUnsigned: true, isBigEndian: true);
        bool high = x >= Secp256k1Scalar.Order;
        int recid = (c[0] == 0x03 ? 1 : 0) | (high ? 2 : 0);
        Secp256k1Scalar r;
        if (high)
        {
            Span<byte> rb = stackalloc byte[32];
            System.Numerics.BigInteger xr = x - Secp256k1Scalar.Order;
            _ = xr.TryWriteBytes(rb[(32 - xr.GetByteCount(isUnsigned: true))..], out _, isUnsigned: true, isBigEndian: true);
            r = Secp256k1Scalar.FromBytes(rb);
        }
        else
        {
            r = Secp256k1Scalar.FromBytes(c[1..]);
        }

        Secp256k1Scalar sr = ((K1Scalar)a).Value * r;
        Secp256k1Scalar e = -(((K1Scalar)b).Value * r);
        Span<byte> sig = stackalloc byte[64];
        Span<byte> msg = stackalloc byte[32];
        r.WriteTo(sig[..32]);
        sr.WriteTo(sig[32..]);
        e.WriteTo(msg);
        return !r.IsZero && EcdsaSecp256k1.TryRecover(msg, sig, recid, out Secp256k1Point q)
            ? new K1Element(q)
            : base.MulAddBasePublic(p, a, b);
    }

    private protected Scalar HashToField(string tag, ReadOnlySpan<byte> m)
    {
        byte[] dst = [.. _ctx, .. Encoding.ASCII.GetBytes(tag)];
        return new K1Scalar(Crypto.Hashing.HashToField.Secp256k1Scalar(m, dst));
    }

    internal override Scalar H1(ReadOnlySpan<byte> m) => HashToField("rho", m);

    internal override Scalar H2(ReadOnlySpan<byte> m) => HashToField("chal", m);

    internal override Scalar H3(ReadOnlySpan<byte> m) => HashToField("nonce", m);

    internal override byte[] H4(ReadOnlySpan<byte> m) => Hash(HashAlgorithmName.SHA256, _ctx, "msg"u8, m);

    internal override byte[] H5(ReadOnlySpan<byte> m) => Hash(HashAlgorithmName.SHA256, _ctx, "com"u8, m);

    internal override Scalar HDkg(ReadOnlySpan<byte> m) => HashToField("dkg", m);

    internal override Scalar HId(ReadOnlySpan<byte> m) => HashToField("id", m);

    internal override Scalar HashToScalar(string tag, ReadOnlySpan<byte> m) => HashToField(tag, m);

    /// <summary>z·G == R + c·PK (RFC 9591 section 6), checked as R == z·G − c·PK.</summary>
    internal override bool VerifyAggregate(PublicKeyPackage key, ReadOnlySpan<byte> message, byte[] signature, Internal.SigningContext ctx, Element zG)
    {
        // R == z·G − c·PK, in one variable-time multiplication (public values).
        if (!TryReadScalar(signature.AsSpan(33), out Scalar? z))
        {
            return false;
        }

        Scalar c = Challenge(ctx.GroupCommitment, key.GroupKey, message);
        return MulAddBasePublic(key.GroupKey, -c, z).ValueEquals(ctx.GroupCommitment);
    }

    public override bool Verify(ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> message, ReadOnlySpan<byte> signature)
    {
        if (signature.Length != SignatureSizeInBytes
            || !TryReadElement(publicKey, out Element? pk)
            || !TryReadElement(signature[..33], out Element? r)
            || !TryReadScalar(signature[33..], out Scalar? z))
        {
            return false;
        }

        return VerifyElements(r, z, pk, message);
    }
}

/// <summary>
/// frost-taproot: FROST(secp256k1, SHA-256) made BIP-340 compatible, as the ZcashFoundation frost-secp256k1-tr
/// suite: contextString "FROST-secp256k1-SHA256-TR-v1"; the challenge is the BIP-340 tagged hash
/// "BIP0340/challenge"(x(R) ‖ x(PK) ‖ m) reduced mod n; keys with odd Y are negated (shares and verifying shares
/// too, which is linear); when the group commitment R has odd Y every signer negates its nonces; the signature
/// is x(R) ‖ z and verifies as BIP-340 under x(PK).
/// </summary>
internal sealed class Secp256k1TaprootSuite : Secp256k1Sha256Suite
{
    internal Secp256k1TaprootSuite() : base("FROST-secp256k1-SHA256-TR-v1") { }

    public override string SchemeName => "frost-taproot";

    public override string ContextString => "FROST-secp256k1-SHA256-TR-v1";

    public override int SignatureSizeInBytes => 64;

    public override int PublicKeySizeInBytes => 32;

    internal override byte WireId => 3;

    internal override bool RequiresEvenY => true;

    internal override Scalar H2(ReadOnlySpan<byte> m)
        => new K1Scalar(Secp256k1Scalar.FromBytesReduced(TaggedHash.HashData("BIP0340/challenge", m)));

    internal override Scalar Challenge(Element groupCommitment, Element groupPublicKey, ReadOnlySpan<byte> message)
    {
        byte[] buf = [.. groupCommitment.XOnly(), .. groupPublicKey.XOnly(), .. message];
        return H2(buf);
    }

    internal override byte[] EncodeSignature(Element r, Scalar z)
    {
        byte[] sig = new byte[64];
        r.XOnly().CopyTo(sig, 0);
        z.WriteTo(sig.AsSpan(32));
        return sig;
    }

    internal override byte[] EncodePublicKey(Element groupPublicKey) => groupPublicKey.XOnly();

    /// <summary>The encoded signature checked by libsecp256k1's BIP-340 verifier under x(PK).</summary>
    internal override bool VerifyAggregate(PublicKeyPackage key, ReadOnlySpan<byte> message, byte[] signature, Internal.SigningContext ctx, Element zG)
        => Verify(key.VerificationKey, message, signature);

    public override bool Verify(ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> message, ReadOnlySpan<byte> signature)
        => SchnorrBip340.Instance.Verify(publicKey, message, signature);
}
