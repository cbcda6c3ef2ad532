using System.Security.Cryptography;
using System.Text;
using Conclave.Crypto.Ed25519;
using Conclave.Crypto.Randomness;

namespace Conclave.Threshold.Frost.Ciphersuites;

/// <summary>
/// FROST(Ed25519, SHA-512), RFC 9591 section 6.1. contextString "FROST-ED25519-SHA512-v1"; H2 is plain SHA-512
/// (no context) so that signatures are RFC 8032 Ed25519 signatures; scalars little-endian mod L.
/// </summary>
internal sealed class Ed25519Sha512Suite : FrostCiphersuite
{
    private static readonly byte[] s_ctx = Encoding.ASCII.GetBytes("FROST-ED25519-SHA512-v1");
    private static readonly Element s_identity = new EdElement(Ed25519Point.Identity);
    private static readonly Element s_generator = new EdElement(Ed25519Point.Generator);

    public override string SchemeName => "frost-ed25519";

    public override string ContextString => "FROST-ED25519-SHA512-v1";

    public override int ScalarSizeInBytes => 32;

    public override int ElementSizeInBytes => 32;

    public override int SignatureSizeInBytes => 64;

    internal override byte WireId => 1;

    internal override Scalar ScalarFromUInt64(ulong value) => new EdScalar(Ed25519Scalar.FromUInt64(value));

    internal override Scalar RandomScalar(IRandomSource random) => new EdScalar(Ed25519Scalar.Random(random));

    internal override bool TryReadScalar(ReadOnlySpan<byte> encoded, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Scalar? scalar)
    {
        scalar = null;
        if (!Ed25519Scalar.TryFromBytes(encoded, out Ed25519Scalar s))
        {
            return false;
        }

        scalar = new EdScalar(s);
        return true;
    }

    internal override bool TryReadElement(ReadOnlySpan<byte> encoded, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Element? element)
    {
        element = null;
        if (!Ed25519Point.TryParse(encoded, out Ed25519Point p))
        {
            return false;
        }

        element = new EdElement(p);
        return true;
    }

    internal override Element Identity => s_identity;

    internal override Element Generator => s_generator;

    internal override Element BaseMul(Scalar k) => new EdElement(Ed25519Point.MultiplyGenerator(((EdScalar)k).Value));

    internal override Element Sum(IReadOnlyList<Element> elements)
    {
        Ed25519Point acc = Ed25519Point.Identity;
        foreach (Element e in elements)
        {
            acc += ((EdElement)e).Value;
        }

        return new EdElement(acc);
    }

    private static Scalar Reduce(byte[] digest64)
    {
        try
        {
            return new EdScalar(Ed25519Scalar.FromBytesReduced(digest64));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(digest64);
        }
    }

    private static Scalar HashTagged(string tag, ReadOnlySpan<byte> m) => Reduce(Hash(HashAlgorithmName.SHA512, s_ctx, Encoding.ASCII.GetBytes(tag), m));

    internal override Scalar H1(ReadOnlySpan<byte> m) => HashTagged("rho", m);

    internal override Scalar H2(ReadOnlySpan<byte> m) => Reduce(SHA512.HashData(m));

    internal override Scalar H3(ReadOnlySpan<byte> m) => HashTagged("nonce", m);

    internal override byte[] H4(ReadOnlySpan<byte> m) => Hash(HashAlgorithmName.SHA512, s_ctx, "msg"u8, m);

    internal override byte[] H5(ReadOnlySpan<byte> m) => Hash(HashAlgorithmName.SHA512, s_ctx, "com"u8, m);

    internal override Scalar HDkg(ReadOnlySpan<byte> m) => HashTagged("dkg", m);

    internal override Scalar HId(ReadOnlySpan<byte> m) => HashTagged("id", m);

    internal override Scalar HashToScalar(string tag, ReadOnlySpan<byte> m) => HashTagged(tag, m);

    public override bool Verify(ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> message, ReadOnlySpan<byte> signature)
        => Ed25519Signature.Instance.Verify(publicKey, message, signature);
}
