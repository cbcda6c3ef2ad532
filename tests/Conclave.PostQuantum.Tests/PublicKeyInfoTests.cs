using System.Formats.Asn1;
using Conclave.Crypto.Signing;
using Org.BouncyCastle.Asn1.Nist;
using Org.BouncyCastle.Crypto.Parameters;
using Org.BouncyCastle.X509;
using Conclave.Testing;

namespace Conclave.PostQuantum.Tests;

public sealed class PublicKeyInfoTests
{
    [Fact]
    public void ObjectIdentifiers_MatchNistCsorAsBouncyCastleLists()
    {
        Assert.Equal(NistObjectIdentifiers.id_ml_dsa_44.Id, PostQuantumSchemes.MlDsa44.ObjectIdentifier);
        Assert.Equal(NistObjectIdentifiers.id_ml_dsa_65.Id, PostQuantumSchemes.MlDsa65.ObjectIdentifier);
        Assert.Equal(NistObjectIdentifiers.id_ml_dsa_87.Id, PostQuantumSchemes.MlDsa87.ObjectIdentifier);
        Assert.Equal("2.16.840.1.101.3.4.3.20", NistObjectIdentifiers.id_slh_dsa_sha2_128s.Id);
        Assert.Equal(NistObjectIdentifiers.id_slh_dsa_sha2_128s.Id, SlhDsaSignatureScheme.Sha2_128s.ObjectIdentifier);
        Assert.Equal(NistObjectIdentifiers.id_slh_dsa_sha2_128f.Id, SlhDsaSignatureScheme.Sha2_128f.ObjectIdentifier);
        Assert.Equal(NistObjectIdentifiers.id_slh_dsa_sha2_192s.Id, SlhDsaSignatureScheme.Sha2_192s.ObjectIdentifier);
        Assert.Equal(NistObjectIdentifiers.id_slh_dsa_sha2_192f.Id, SlhDsaSignatureScheme.Sha2_192f.ObjectIdentifier);
        Assert.Equal(NistObjectIdentifiers.id_slh_dsa_sha2_256s.Id, SlhDsaSignatureScheme.Sha2_256s.ObjectIdentifier);
        Assert.Equal(NistObjectIdentifiers.id_slh_dsa_sha2_256f.Id, SlhDsaSignatureScheme.Sha2_256f.ObjectIdentifier);
        Assert.Equal(NistObjectIdentifiers.id_slh_dsa_shake_128s.Id, SlhDsaSignatureScheme.Shake_128s.ObjectIdentifier);
        Assert.Equal(NistObjectIdentifiers.id_slh_dsa_shake_128f.Id, SlhDsaSignatureScheme.Shake_128f.ObjectIdentifier);
        Assert.Equal(NistObjectIdentifiers.id_slh_dsa_shake_192s.Id, SlhDsaSignatureScheme.Shake_192s.ObjectIdentifier);
        Assert.Equal(NistObjectIdentifiers.id_slh_dsa_shake_192f.Id, SlhDsaSignatureScheme.Shake_192f.ObjectIdentifier);
        Assert.Equal(NistObjectIdentifiers.id_slh_dsa_shake_256s.Id, SlhDsaSignatureScheme.Shake_256s.ObjectIdentifier);
        Assert.Equal(NistObjectIdentifiers.id_slh_dsa_shake_256f.Id, SlhDsaSignatureScheme.Shake_256f.ObjectIdentifier);
    }

    [Fact]
    public void MlDsaAndSlhDsa_SpkiEqualsBouncyCastleEncoder_AndRoundTrips()
    {
        var random = TestSeed.For("keys");
        foreach (MlDsaSignatureScheme scheme in PostQuantumSchemes.MlDsa)
        {
            using SoftwareSigningKey key = scheme.GenerateKey(random: random);
            byte[] spki = PostQuantumPublicKeys.ExportSubjectPublicKeyInfo(scheme, key.PublicKey.Span);
            byte[] bc = SubjectPublicKeyInfoFactory.CreateSubjectPublicKeyInfo(MLDsaPublicKeyParameters.FromEncoding(scheme.Parameters, key.PublicKey.ToArray())).GetEncoded();
            Assert.Equal(bc, spki);
            AssertRoundTrip(scheme, key.PublicKey.ToArray(), spki);
        }

        foreach (SlhDsaSignatureScheme scheme in new[] { SlhDsaSignatureScheme.Shake_128f, SlhDsaSignatureScheme.Sha2_128f })
        {
            using SoftwareSigningKey key = scheme.GenerateKey(random: random);
            byte[] spki = PostQuantumPublicKeys.ExportSubjectPublicKeyInfo(scheme, key.PublicKey.Span);
            byte[] bc = SubjectPublicKeyInfoFactory.CreateSubjectPublicKeyInfo(SlhDsaPublicKeyParameters.FromEncoding(scheme.Parameters, key.PublicKey.ToArray())).GetEncoded();
            Assert.Equal(bc, spki);
            AssertRoundTrip(scheme, key.PublicKey.ToArray(), spki);
        }

        // Every SLH-DSA set round-trips (an arbitrary 2n-byte key is a well-formed encoding).
        foreach (SlhDsaSignatureScheme scheme in PostQuantumSchemes.SlhDsa)
        {
            byte[] pk = Enumerable.Range(0, scheme.PublicKeySizeInBytes).Select(i => (byte)i).ToArray();
            AssertRoundTrip(scheme, pk, PostQuantumPublicKeys.ExportSubjectPublicKeyInfo(scheme, pk));
        }
    }

    [Fact]
    public void Hybrids_DraftOidForEd25519_NoneForSecp256k1()
    {
        using SoftwareSigningKey ed = PostQuantumSchemes.HybridEd25519MlDsa65.GenerateKey(random: TestSeed.For("key@65"));
        byte[] spki = PostQuantumPublicKeys.ExportSubjectPublicKeyInfo(PostQuantumSchemes.HybridEd25519MlDsa65, ed.PublicKey.Span);
        AssertRoundTrip(PostQuantumSchemes.HybridEd25519MlDsa65, ed.PublicKey.ToArray(), spki);
        Assert.Equal("1.3.6.1.5.5.7.6.48", PostQuantumPublicKeys.ObjectIdentifierOf(PostQuantumSchemes.HybridEd25519MlDsa65));

        using SoftwareSigningKey ec = PostQuantumSchemes.HybridEcdsaMlDsa65.GenerateKey(random: TestSeed.For("key@70"));
        Assert.Null(PostQuantumPublicKeys.ObjectIdentifierOf(PostQuantumSchemes.HybridEcdsaMlDsa65));
        Assert.Throws<NotSupportedException>(() => PostQuantumPublicKeys.ExportSubjectPublicKeyInfo(PostQuantumSchemes.HybridEcdsaMlDsa65, ec.PublicKey.Span));
        Assert.Throws<NotSupportedException>(() => PostQuantumPublicKeys.ExportSubjectPublicKeyInfo(SignatureSchemes.Ed25519, new byte[32]));
    }

    [Fact]
    public void MalformedSpki_IsRejected()
    {
        byte[] pk = new byte[1312];
        byte[] good = PostQuantumPublicKeys.ExportSubjectPublicKeyInfo(PostQuantumSchemes.MlDsa44, pk);
        Assert.True(PostQuantumPublicKeys.TryImportSubjectPublicKeyInfo(good, out _, out _));
        Assert.False(PostQuantumPublicKeys.TryImportSubjectPublicKeyInfo([.. good, 0], out _, out _)); // trailing data
        Assert.False(PostQuantumPublicKeys.TryImportSubjectPublicKeyInfo(good[..^1], out _, out _)); // truncated
        Assert.False(PostQuantumPublicKeys.TryImportSubjectPublicKeyInfo([], out _, out _));
        Assert.False(PostQuantumPublicKeys.TryImportSubjectPublicKeyInfo(Spki("2.16.840.1.101.3.4.3.17", pk, withNullParameters: true), out _, out _));
        Assert.False(PostQuantumPublicKeys.TryImportSubjectPublicKeyInfo(Spki("2.16.840.1.101.3.4.3.17", new byte[1311], false), out _, out _));
        Assert.False(PostQuantumPublicKeys.TryImportSubjectPublicKeyInfo(Spki("1.3.101.112", new byte[32], false), out _, out _)); // Ed25519 OID
        Assert.Throws<Conclave.Crypto.CryptoFormatException>(() => PostQuantumPublicKeys.ExportSubjectPublicKeyInfo(PostQuantumSchemes.MlDsa44, new byte[10]));
    }

    private static void AssertRoundTrip(SoftwareSignatureScheme scheme, byte[] pk, byte[] spki)
    {
        Assert.True(PostQuantumPublicKeys.TryImportSubjectPublicKeyInfo(spki, out SoftwareSignatureScheme? parsed, out byte[]? key));
        Assert.Equal(scheme.Name, parsed!.Name);
        Assert.Equal(pk, key);
    }

    private static byte[] Spki(string oid, byte[] key, bool withNullParameters)
    {
        var w = new AsnWriter(AsnEncodingRules.DER);
        using (w.PushSequence())
        {
            using (w.PushSequence())
            {
                w.WriteObjectIdentifier(oid);
                if (withNullParameters)
                {
                    w.WriteNull();
                }
            }

            w.WriteBitString(key);
        }

        return w.Encode();
    }
}
