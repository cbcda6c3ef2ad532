using Conclave.Chains.Derivation;
using Conclave.Threshold.Frost;

namespace Conclave.Server.Tests;

/// <summary>
/// The API derives single keys with Conclave.Chains and threshold keys with the FROST library: for the same public key
/// and chain code both must give the same child (one definition per curve, Ed25519HdDerivation and BIP-32 CKDpub).
/// </summary>
public sealed class DerivationConsistencyTests
{
    [Theory]
    [InlineData("frost-ed25519")]
    [InlineData("frost-secp256k1")]
    public void ChainsAndFrost_DeriveTheSameChild(string scheme)
    {
        FrostCiphersuite suite = FrostCiphersuite.All.Single(s => s.SchemeName == scheme);
        using DealerOutput dealt = TrustedDealer.Generate(suite, 2, 3, TestSeed.For(scheme));
        PublicKeyPackage parent = dealt.PublicKeyPackage;
        uint[] path = [0, 7, 2_147_483_647];
        byte[] frostChild = HdDerivation.DerivePath(parent, path).VerificationKey;
        byte[] chainsChild = scheme == "frost-ed25519"
            ? PublicDerivation.Ed25519(parent.VerificationKey, parent.ChainCode, path).PublicKey
            : PublicDerivation.Secp256k1(parent.VerificationKey, parent.ChainCode, path).PublicKey;
        Assert.Equal(frostChild, chainsChild);
    }
}
