using Conclave.Crypto.Randomness;
using Conclave.Threshold.Frost;
using Conclave.Threshold.Frost.Ciphersuites;

namespace Conclave.Threshold.Tests;

/// <summary>
/// Dkg.VerifyPublicRun: a DKG, refresh or reshare checked from its public broadcasts and resulting key package only
/// (docs/ROTATION.md "Verifying a rotation"). Honest runs pass; each kind of tampering is refused with its reason.
/// </summary>
public sealed class DkgPublicVerificationTests
{
    private static readonly FrostCiphersuite Suite = FrostCiphersuite.Secp256k1Sha256;

    [Fact]
    public void HonestKeyGenerationRefreshAndReshare_Verify()
    {
        var rng = TestSeed.For("runs");
        IReadOnlyList<Identifier> ids = TrustedDealer.Ids(Suite, 3);
        var gen = DkgSession.ForKeyGeneration(Suite, Cluster.Sid("pub-gen"), 2, ids);
        Cluster.DkgRun g = Cluster.RunDetailed(gen, null, rng);
        PublicKeyPackage key = g.Keys[ids[0]].PublicKeyPackage;
        Assert.Equal(new DkgPublicCheck(true, "ok"), Dkg.VerifyPublicRun(gen, g.Broadcasts, key));

        var refresh = DkgSession.ForRefresh(Cluster.Sid("pub-refresh"), key);
        Cluster.DkgRun r = Cluster.RunDetailed(refresh, g.Keys, rng);
        PublicKeyPackage refreshed = r.Keys[ids[0]].PublicKeyPackage;
        Assert.True(Dkg.VerifyPublicRun(refresh, r.Broadcasts, refreshed).Ok);

        IReadOnlyList<Identifier> next = TrustedDealer.Ids(Suite, 4);
        var reshare = DkgSession.ForReshare(Cluster.Sid("pub-reshare"), refreshed, [ids[0], ids[2]], 3, next);
        Cluster.DkgRun s = Cluster.RunDetailed(reshare, r.Keys, rng);
        Assert.True(Dkg.VerifyPublicRun(reshare, s.Broadcasts, s.Keys[next[0]].PublicKeyPackage).Ok);
    }

    [Fact]
    public void TamperedRuns_AreRefusedWithTheirReason()
    {
        var rng = TestSeed.For("runs");
        IReadOnlyList<Identifier> ids = TrustedDealer.Ids(Suite, 3);
        var gen = DkgSession.ForKeyGeneration(Suite, Cluster.Sid("tamper-gen"), 2, ids);
        Cluster.DkgRun g = Cluster.RunDetailed(gen, null, rng);
        PublicKeyPackage key = g.Keys[ids[0]].PublicKeyPackage;
        var refresh = DkgSession.ForRefresh(Cluster.Sid("tamper-refresh"), key);
        Cluster.DkgRun r = Cluster.RunDetailed(refresh, g.Keys, rng);
        PublicKeyPackage refreshed = r.Keys[ids[0]].PublicKeyPackage;

        // A refresh dealer whose polynomial has a constant term: a key-generation package (constant term and proof)
        // in a refresh would move the group key. Refused as such.
        DkgRound1Package withConstant = g.Broadcasts.Single(b => b.Sender.Equals(ids[1]));
        DkgPublicCheck constant = Dkg.VerifyPublicRun(refresh, [.. r.Broadcasts.Where(b => !b.Sender.Equals(ids[1])), withConstant], refreshed);
        Assert.Equal((false, $"refresh dealer {ids[1]}'s polynomial has a constant term (a refresh must add a polynomial that is zero at 0)"), (constant.Ok, constant.Reason));

        // A result that is not what the commitments define: the old package after a refresh (same group key, old shares).
        Assert.Contains("verifying share of participant", Dkg.VerifyPublicRun(refresh, r.Broadcasts, key).Reason, StringComparison.Ordinal);

        // Another key altogether: the group key changed.
        Cluster.DkgRun other = Cluster.RunDetailed(DkgSession.ForKeyGeneration(Suite, Cluster.Sid("tamper-other"), 2, ids), null, rng);
        Assert.Equal("the group key changed", Dkg.VerifyPublicRun(refresh, r.Broadcasts, other.Keys[ids[0]].PublicKeyPackage).Reason);

        // A missing or doubled broadcast; a broadcast of another run (its proof is bound to that run's session).
        Assert.Equal($"no broadcast from dealer {ids[2]}", Dkg.VerifyPublicRun(gen, [.. g.Broadcasts.Where(b => !b.Sender.Equals(ids[2]))], key).Reason);
        Assert.Equal($"two broadcasts from dealer {ids[0]}", Dkg.VerifyPublicRun(gen, [.. g.Broadcasts, g.Broadcasts[0]], key).Reason);
        DkgRound1Package foreign = other.Broadcasts.Single(b => b.Sender.Equals(ids[0]));
        Assert.Equal($"dealer {ids[0]}: wrong commitment length or invalid proof of knowledge",
            Dkg.VerifyPublicRun(gen, [.. g.Broadcasts.Where(b => !b.Sender.Equals(ids[0])), foreign], key).Reason);
    }
}
