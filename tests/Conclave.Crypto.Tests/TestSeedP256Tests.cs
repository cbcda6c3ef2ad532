using System.Security.Cryptography;
using Org.BouncyCastle.Asn1.X9;
using Org.BouncyCastle.Math;

namespace Conclave.Crypto.Tests;

/// <summary>TestSeed.P256 (tests/Conclave.Testing): a valid P-256 key per (test, label), replayable from the run seed.</summary>
public sealed class TestSeedP256Tests
{
    [Fact]
    public void The_key_has_a_scalar_in_range_its_public_point_is_d_times_G_and_it_signs_and_verifies()
    {
        using ECDsa key = TestSeed.P256("key");
        ECParameters p = key.ExportExplicitParameters(includePrivateParameters: true);
        var d = new BigInteger(1, p.D);
        var n = new BigInteger(1, p.Curve.Order);
        Assert.True(d.SignValue > 0 && d.CompareTo(n) < 0, "1 <= d < n");

        // Q is d·G, computed independently by BouncyCastle.
        X9ECParameters curve = ECNamedCurveTable.GetByName("P-256");
        Assert.Equal(curve.N, n);
        Org.BouncyCastle.Math.EC.ECPoint q = curve.G.Multiply(d).Normalize();
        Assert.Equal(q.AffineXCoord.GetEncoded(), p.Q.X);
        Assert.Equal(q.AffineYCoord.GetEncoded(), p.Q.Y);

        // A signature verifies under the public key alone, and not for another message.
        byte[] message = TestSeed.Bytes(48, "message");
        byte[] signature = key.SignData(message, HashAlgorithmName.SHA256);
        using ECDsa verifier = ECDsa.Create(new ECParameters { Curve = ECCurve.NamedCurves.nistP256, Q = p.Q });
        Assert.True(verifier.VerifyData(message, signature, HashAlgorithmName.SHA256));
        message[0] ^= 1;
        Assert.False(verifier.VerifyData(message, signature, HashAlgorithmName.SHA256));
    }

    [Fact]
    public void The_same_test_and_label_replay_the_same_key_and_other_labels_or_tests_give_other_keys()
    {
        using ECDsa a = TestSeed.P256("a");
        using ECDsa again = TestSeed.P256("a");
        using ECDsa b = TestSeed.P256("b");
        using ECDsa otherTest = TestSeed.P256("a", "another test");
        byte[] spkiA = a.ExportSubjectPublicKeyInfo();
        Assert.Equal(spkiA, again.ExportSubjectPublicKeyInfo());
        Assert.Equal(a.ExportECPrivateKey(), again.ExportECPrivateKey());
        Assert.NotEqual(spkiA, b.ExportSubjectPublicKeyInfo());
        Assert.NotEqual(spkiA, otherTest.ExportSubjectPublicKeyInfo());
    }
}
