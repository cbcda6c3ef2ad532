using System.Security.Cryptography;
using Conclave.Crypto.Secp256k1;
using Conclave.Threshold.Dkls23;
using Conclave.Threshold.Frost;

namespace Conclave.Threshold.Tests.Dkls23;

/// <summary>
/// The combiner as the cluster coordinator uses it (DklsCombiner.Combine over the public key, R as the signers reported
/// it, the signer set and the path): the same signature as the signers' own context gives, and typed refusals for a bad
/// R, a wrong signer set or an R that is not the session's (nothing unverified is released).
/// </summary>
public sealed class DklsCoordinatorCombineTests
{
    [Fact]
    public void CombinesFromPublicDataAndRefusesABadNoncePointOrSignerSet()
    {
        var rng = TestSeed.For("coordinator-combine");
        Dictionary<Identifier, DklsKeyShare> keys = DklsHarness.Keygen(2, 3, rng);
        try
        {
            Identifier[] signers = [DklsHarness.Id(1), DklsHarness.Id(3)];
            uint[] path = [7, 9];
            byte[] sid = DklsHarness.Sid("coordinator-combine");
            byte[] digest = SHA256.HashData("coordinator"u8);
            DklsPublicKey pub = keys.Values.First().Public;
            Dictionary<Identifier, DklsPresignature> pre = DklsHarness.Presign(keys, signers, sid, rng, path);
            byte[] r = pre.Values.First().Context.NoncePoint;
            List<DklsSignatureShare> shares = [.. pre.Select(kv => DklsSigner.Sign(kv.Value, keys[kv.Key], digest, path))];

            DklsSignature sig = DklsCombiner.Combine(pub, sid, signers, path, r, digest, shares);
            byte[] child = DklsHd.DerivePublic(pub, path).PublicKey;
            Assert.True(EcdsaSecp256k1.Instance.Verify(child, digest, sig.Signature));

            DklsProtocolException bad = Assert.Throws<DklsProtocolException>(() => DklsCombiner.Combine(pub, sid, signers, path, r[..32], digest, shares));
            Assert.Equal(DklsFailure.MalformedMessage, bad.Failure);
            byte[] offCurve = (byte[])r.Clone();
            offCurve[0] = 0x05;
            Assert.Equal(DklsFailure.MalformedMessage, Assert.Throws<DklsProtocolException>(() => DklsCombiner.Combine(pub, sid, signers, path, offCurve, digest, shares)).Failure);
            Assert.Equal(DklsFailure.InvalidSignerSet, Assert.Throws<DklsProtocolException>(() => DklsCombiner.Combine(pub, sid, [signers[0]], path, r, digest, shares)).Failure);
            Assert.Equal(DklsFailure.InvalidSignerSet, Assert.Throws<DklsProtocolException>(() => DklsCombiner.Combine(pub, sid, [signers[0], signers[0]], path, r, digest, shares)).Failure);

            // An R that is a valid point but not the session's (a signer reporting the wrong one): nothing is released.
            byte[] otherR = Secp256k1Point.MultiplyGenerator(Secp256k1Scalar.One).ToCompressed();
            Assert.Equal(DklsFailure.InvalidSignature, Assert.Throws<DklsProtocolException>(() => DklsCombiner.Combine(pub, sid, signers, path, otherR, digest, shares)).Failure);
            // Another path than the one the presignatures were made for: the signature does not verify under that child.
            Assert.Equal(DklsFailure.InvalidSignature, Assert.Throws<DklsProtocolException>(() => DklsCombiner.Combine(pub, sid, signers, [7], r, digest, shares)).Failure);
        }
        finally
        {
            DklsHarness.DisposeAll(keys);
        }
    }
}
