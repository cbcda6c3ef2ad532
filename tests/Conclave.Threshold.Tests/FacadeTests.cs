using Conclave.Crypto.Memory;
using Conclave.Threshold.Frost;

namespace Conclave.Threshold.Tests;

/// <summary>The byte-level facade, as the node and coordinator use it: DKG, pooled nonces, sign, aggregate, derive.</summary>
public sealed class FacadeTests
{
    [Theory]
    [InlineData("frost-ed25519")]
    [InlineData("frost-secp256k1")]
    [InlineData("frost-taproot")]
    public void DkgThenPooledSigningThroughBytes(string name)
    {
        FrostScheme scheme = FrostScheme.Get(name);
        var rng = TestSeed.For(name);
        int[] ids = [1, 2, 3];
        DkgSession session = scheme.KeyGenerationSession(Cluster.Sid("facade"), 2, ids);
        var c = ids.ToDictionary(i => i, i => scheme.DkgCommit(session, i, null, rng));
        var r1 = ids.ToDictionary(i => i, i => scheme.DkgRound1(c[i].Secret, ids.Where(j => j != i).Select(j => c[j].Commitment!)));
        var r2 = ids.ToDictionary(i => i, i => scheme.DkgRound2(r1[i].Secret, ids.Where(j => j != i).Select(j => r1[j].Broadcast!), rng));
        var fin = ids.ToDictionary(i => i, i => scheme.DkgFinish(r2[i].Secret, r2.Values.SelectMany(x => x.Outgoing).Where(o => o.Recipient == i).Select(o => o.Package), rng));
        var sealedKeys = ids.ToDictionary(i => i, i => { using KeyPackage k = scheme.DkgComplete(fin[i].Pending, fin.Values.Select(f => f.Confirmation)); return k.Export(); });

        // Nodes load their key once; the coordinator holds the public key package.
        var keys = ids.ToDictionary(i => i, i => scheme.LoadKeyPackage(sealedKeys[i].ReadOnlySpan));
        PublicKeyPackage pub = scheme.LoadPublicKeyPackage(keys[1].PublicKeyPackage.ToBytes());
        var derivation = new KeyDerivation([5, 9], name == "frost-taproot" ? [] : null);
        var derived = ids.ToDictionary(i => i, i => scheme.Derive(keys[i], derivation));
        PublicKeyPackage derivedPub = scheme.Derive(pub, derivation);
        Assert.True(derived[1].PublicKeyPackage.PublicEquals(derivedPub));

        // Nonce pools made ahead of time; node 3 keeps its pool sealed as bytes.
        var pool1 = scheme.Commit(keys[1], 4, rng);
        var pool3 = scheme.Commit(keys[3], 4, rng).Select(n => (Commitments: n.Commitments.ToBytes(), Sealed: n.Export())).ToList();
        for (int round = 0; round < 4; round++)
        {
            byte[] msg = [(byte)round, 42];
            byte[] package = scheme.CreateSigningPackage(msg, [pool1[round].Commitments.ToBytes(), pool3[round].Commitments]);
            byte[] s1 = scheme.Sign(derived[1], pool1[round], package);
            byte[] s3 = scheme.Sign(derived[3], pool3[round].Sealed.ReadOnlySpan, package);
            pool3[round].Sealed.Dispose();
            byte[] sig = scheme.Aggregate(derivedPub, package, [s1, s3]);
            Assert.Equal(scheme.SignatureSizeInBytes, sig.Length);
            Assert.Equal(scheme.PublicKeySizeInBytes, derivedPub.VerificationKey.Length);
            Assert.True(scheme.Verify(derivedPub.VerificationKey, msg, sig));
            Assert.False(scheme.Verify(pub.VerificationKey, msg, sig));
            Assert.False(scheme.Verify(derivedPub.VerificationKey, msg, sig[..^1]));
        }

        foreach (KeyPackage k in keys.Values.Concat(derived.Values))
        {
            k.Dispose();
        }

        foreach (SecretBuffer b in sealedKeys.Values)
        {
            b.Dispose();
        }
    }

    [Fact]
    public void DealerThroughBytesAndUnknownSchemeRefused()
    {
        FrostScheme scheme = FrostScheme.Get("frost-secp256k1");
        (byte[] pub, IReadOnlyList<SecretBuffer> secrets) = scheme.GenerateWithDealer(2, 3, TestSeed.For("dealer"));
        Assert.Equal(3, secrets.Count);
        Assert.Equal(2, scheme.LoadPublicKeyPackage(pub).Threshold);
        Assert.Throws<ArgumentException>(() => FrostScheme.Get("frost-p256"));
        Assert.Throws<Conclave.Crypto.CryptoFormatException>(() => FrostScheme.Ed25519.LoadPublicKeyPackage(pub));
        foreach (SecretBuffer s in secrets)
        {
            s.Dispose();
        }
    }
}
