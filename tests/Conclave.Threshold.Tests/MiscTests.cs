using Conclave.Threshold.Frost;

namespace Conclave.Threshold.Tests;

public sealed class MiscTests
{
    [Theory]
    [InlineData("frost-ed25519")]
    [InlineData("frost-secp256k1")]
    [InlineData("frost-taproot")]
    public void NonceBatchesAreDistinctAndDerivedIdentifiersWork(string name)
    {
        Assert.True(FrostCiphersuite.TryGet(name, out FrostCiphersuite? suite));
        var rng = TestSeed.For(name);
        // Identifiers derived from node names sign like small ones.
        Identifier[] ids = [.. new[] { "node-a", "node-b", "node-c" }.Select(n => Identifier.Derive(suite, System.Text.Encoding.UTF8.GetBytes(n)))];
        Assert.Equal(3, ids.Distinct().Count());
        Assert.Equal(ids[0], Identifier.Read(suite, ids[0].ToBytes()));
        using DealerOutput d = TrustedDealer.Split(suite, suite.RandomScalar(rng).ToBytes(), 2, ids, rng);
        byte[] msg = "derived ids"u8.ToArray();
        Assert.True(suite.Verify(d.PublicKeyPackage.VerificationKey, msg, Cluster.Sign([d.KeyPackages[0], d.KeyPackages[2]], d.PublicKeyPackage, msg, rng)));

        // A batch of 50 nonce pairs: all commitments distinct; each usable once.
        IReadOnlyList<SigningNonces> batch = FrostSigner.CommitBatch(d.KeyPackages[0], 50, rng);
        Assert.Equal(50, batch.Select(n => Convert.ToHexString(n.Commitments.HidingCommitment)).Distinct().Count());
        Assert.Equal(50, batch.Select(n => Convert.ToHexString(n.Commitments.BindingCommitment)).Distinct().Count());
        Assert.All(batch, n => Assert.Equal(d.KeyPackages[0].Identifier, n.Identifier));
        foreach (SigningNonces n in batch)
        {
            n.Dispose();
            Assert.True(n.IsConsumed);
        }
    }

    [Fact]
    public void IdentifiersOrderNumericallyAcrossEndianness()
    {
        foreach (FrostCiphersuite suite in FrostCiphersuite.All)
        {
            Identifier[] ids = [.. new[] { 257, 2, 256, 1, 129 }.Select(i => Identifier.FromInt(suite, i))];
            Assert.Equal(["1", "2", "129", "256", "257"], ids.Order().Select(i => i.ToString()));
        }
    }
}
