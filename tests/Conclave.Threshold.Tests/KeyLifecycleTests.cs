using Conclave.Threshold.Frost;

namespace Conclave.Threshold.Tests;

/// <summary>DKG, refresh, reshare and repair end to end, per ciphersuite.</summary>
public sealed class KeyLifecycleTests
{
    public static TheoryData<string> Suites => new() { "frost-ed25519", "frost-secp256k1", "frost-taproot" };

    private static FrostCiphersuite Suite(string name) => FrostCiphersuite.TryGet(name, out FrostCiphersuite? s) ? s : throw new ArgumentException(name);

    [Theory]
    [MemberData(nameof(Suites))]
    public void DkgThenSignWithEveryQuorum(string name)
    {
        FrostCiphersuite suite = Suite(name);
        var rng = TestSeed.For(name);
        IReadOnlyList<Identifier> ids = TrustedDealer.Ids(suite, 4);
        var session = DkgSession.ForKeyGeneration(suite, Cluster.Sid("dkg"), 3, ids);
        Dictionary<Identifier, KeyPackage> keys = Cluster.Run(session, null, rng);
        PublicKeyPackage pkp = keys[ids[0]].PublicKeyPackage;
        Assert.All(keys.Values, k => Assert.True(k.PublicKeyPackage.PublicEquals(pkp)));
        byte[] msg = "dkg message"u8.ToArray();
        foreach (int[] q in new[] { new[] { 0, 1, 2 }, [1, 2, 3], [0, 1, 2, 3] })
        {
            byte[] sig = Cluster.Sign([.. q.Select(i => keys[ids[i]])], pkp, msg, rng);
            Assert.True(suite.Verify(pkp.VerificationKey, msg, sig));
        }

        // The key package survives its secret encoding.
        using Conclave.Crypto.Memory.SecretBuffer blob = keys[ids[0]].Export();
        using KeyPackage back = KeyPackage.Import(suite, blob.ReadOnlySpan);
        Assert.True(back.PublicKeyPackage.PublicEquals(pkp));
        Cluster.DisposeAll(keys.Values);
    }

    [Theory]
    [MemberData(nameof(Suites))]
    public void RefreshKeepsKeyAndThresholdAndOldAndNewSharesDoNotCombine(string name)
    {
        FrostCiphersuite suite = Suite(name);
        var rng = TestSeed.For(name);
        using DealerOutput dealt = TrustedDealer.Generate(suite, 2, 3, rng);
        var old = dealt.KeyPackages.ToDictionary(k => k.Identifier);
        var session = DkgSession.ForRefresh(Cluster.Sid("refresh"), dealt.PublicKeyPackage);
        Dictionary<Identifier, KeyPackage> fresh = Cluster.Run(session, old, rng);
        PublicKeyPackage newKey = fresh.Values.First().PublicKeyPackage;
        Assert.Equal(dealt.PublicKeyPackage.GroupPublicKey, newKey.GroupPublicKey);
        Assert.Equal(2, newKey.Threshold);
        Assert.False(newKey.PublicEquals(dealt.PublicKeyPackage));
        IReadOnlyList<Identifier> ids = newKey.Participants;
        byte[] msg = "after refresh"u8.ToArray();
        Assert.True(suite.Verify(newKey.VerificationKey, msg, Cluster.Sign([fresh[ids[0]], fresh[ids[2]]], newKey, msg, rng)));

        // Old share of 1 with new share of 3 do not interpolate to the key.
        using Conclave.Crypto.Memory.SecretBuffer mixed = TrustedDealer.Reconstruct([old[ids[0]], fresh[ids[2]]]);
        using Conclave.Crypto.Memory.SecretBuffer real = TrustedDealer.Reconstruct([old[ids[0]], old[ids[2]]]);
        Assert.False(mixed.FixedTimeEquals(real.ReadOnlySpan));
        // Nor can an old-share signer sign with new-share signers: its share fails verification against the new key.
        var n1 = FrostSigner.Commit(old[ids[0]], rng);
        var n3 = FrostSigner.Commit(fresh[ids[2]], rng);
        var pkg = new SigningPackage(msg, [n1.Commitments, n3.Commitments]);
        var shares = new[] { FrostSigner.Sign(pkg, n1, old[ids[0]]), FrostSigner.Sign(pkg, n3, fresh[ids[2]]) };
        ThresholdProtocolException ex = Assert.Throws<ThresholdProtocolException>(() => FrostAggregator.Aggregate(pkg, shares, newKey));
        Assert.Equal([ids[0]], ex.Culprits);
        Cluster.DisposeAll(fresh.Values);
    }

    [Theory]
    [MemberData(nameof(Suites))]
    public void ReshareToNewCommitteeKeepsKeyAndRetiresOldShares(string name)
    {
        FrostCiphersuite suite = Suite(name);
        var rng = TestSeed.For(name);
        using DealerOutput dealt = TrustedDealer.Generate(suite, 2, 3, rng);
        var old = dealt.KeyPackages.ToDictionary(k => k.Identifier);
        IReadOnlyList<Identifier> oldIds = dealt.PublicKeyPackage.Participants;
        // New committee 3-of-5: ids 2..6 (2 and 3 were in the old committee).
        Identifier[] newIds = [.. Enumerable.Range(2, 5).Select(i => Identifier.FromInt(suite, i))];
        var session = DkgSession.ForReshare(Cluster.Sid("reshare"), dealt.PublicKeyPackage, [oldIds[0], oldIds[2]], 3, newIds);
        Dictionary<Identifier, KeyPackage> fresh = Cluster.Run(session, old, rng);
        PublicKeyPackage newKey = fresh.Values.First().PublicKeyPackage;
        Assert.Equal(dealt.PublicKeyPackage.GroupPublicKey, newKey.GroupPublicKey);
        Assert.Equal(3, newKey.Threshold);
        Assert.Equal(5, newKey.ParticipantCount);
        byte[] msg = "after reshare"u8.ToArray();
        Assert.True(suite.Verify(newKey.VerificationKey, msg, Cluster.Sign([fresh[newIds[0]], fresh[newIds[2]], fresh[newIds[4]]], newKey, msg, rng)));
        // Old shares no longer interpolate with new ones to the key.
        using Conclave.Crypto.Memory.SecretBuffer real = TrustedDealer.Reconstruct([old[oldIds[0]], old[oldIds[1]]]);
        using Conclave.Crypto.Memory.SecretBuffer mixed = TrustedDealer.Reconstruct([old[oldIds[0]], fresh[newIds[2]], fresh[newIds[3]]]);
        Assert.False(mixed.FixedTimeEquals(real.ReadOnlySpan));
        Cluster.DisposeAll(fresh.Values);
    }

    [Theory]
    [MemberData(nameof(Suites))]
    public void RepairRebuildsLostShare(string name)
    {
        FrostCiphersuite suite = Suite(name);
        var rng = TestSeed.For(name);
        using DealerOutput dealt = TrustedDealer.Generate(suite, 3, 5, rng);
        IReadOnlyList<Identifier> ids = dealt.PublicKeyPackage.Participants;
        Identifier lost = ids[1];
        Identifier[] helpers = [ids[0], ids[3], ids[4]];
        var byId = dealt.KeyPackages.ToDictionary(k => k.Identifier);
        var step1 = helpers.SelectMany(h => Repair.Step1(byId[h], helpers, lost, rng)).ToList();
        var sigmas = helpers.Select(h => Repair.Step2(byId[h], helpers, lost, [.. step1.Where(m => m.Recipient.Equals(h)).Select(m =>
        {
            using Conclave.Crypto.Memory.SecretBuffer exported = m.Export(); // held while Import reads it (DkgVectorTests.ZcashDkgVector)
            return RepairMessage.Import(suite, exported.ReadOnlySpan);
        })])).ToList();
        using KeyPackage repaired = Repair.Step3(dealt.PublicKeyPackage, helpers, lost, sigmas);
        Assert.Equal(byId[lost].Share.ToBytes(), repaired.Share.ToBytes());
        // A tampered sigma is caught against the verifying share.
        var bad = sigmas.Take(2).Append(new RepairMessage(true, helpers[2], lost, lost, sigmas[2].Value + suite.ScalarOne)).ToList();
        ThresholdProtocolException ex = Assert.Throws<ThresholdProtocolException>(() => Repair.Step3(dealt.PublicKeyPackage, helpers, lost, bad));
        Assert.Equal(ThresholdFailure.InvalidRepairedShare, ex.Failure);
    }

    /// <summary>
    /// The repaired participant's public proof (docs/ROTATION.md "Verifying a rotation"): it verifies for the run it was
    /// made for, and is refused for another run, another participant, another key, too few or bad helpers, and a share
    /// that is not the participant's.
    /// </summary>
    [Theory]
    [MemberData(nameof(Suites))]
    public void RepairProof_VerifiesForItsRunOnly(string name)
    {
        FrostCiphersuite suite = Suite(name);
        var rng = TestSeed.For(name);
        using DealerOutput dealt = TrustedDealer.Generate(suite, 2, 4, rng);
        using DealerOutput other = TrustedDealer.Generate(suite, 2, 4, rng);
        IReadOnlyList<Identifier> ids = dealt.PublicKeyPackage.Participants;
        var byId = dealt.KeyPackages.ToDictionary(k => k.Identifier);
        Identifier lost = ids[1];
        Identifier[] helpers = [ids[0], ids[2]];
        byte[] run = new byte[32];
        run[0] = 7;
        byte[] proof = Repair.ProveRepaired(byId[lost], run, rng);
        Assert.Equal(DkgPublicCheck.Pass, Repair.VerifyPublicRun(dealt.PublicKeyPackage, helpers, lost, run, proof));

        byte[] otherRun = (byte[])run.Clone();
        otherRun[31] = 1;
        Assert.Contains("does not match its verifying share", Repair.VerifyPublicRun(dealt.PublicKeyPackage, helpers, lost, otherRun, proof).Reason, StringComparison.Ordinal);
        Assert.Contains("does not match its verifying share", Repair.VerifyPublicRun(dealt.PublicKeyPackage, [ids[0], ids[1]], ids[2], run, proof).Reason, StringComparison.Ordinal);
        Assert.Contains("does not match its verifying share", Repair.VerifyPublicRun(other.PublicKeyPackage, helpers, lost, run, proof).Reason, StringComparison.Ordinal);
        Assert.Contains("does not match its verifying share",
            Repair.VerifyPublicRun(dealt.PublicKeyPackage, helpers, lost, run, Repair.ProveRepaired(byId[ids[3]], run, rng)).Reason,
            StringComparison.Ordinal);
        Assert.Contains("at least 2 distinct helpers", Repair.VerifyPublicRun(dealt.PublicKeyPackage, [ids[0]], lost, run, proof).Reason, StringComparison.Ordinal);
        Assert.Contains("at least 2 distinct helpers", Repair.VerifyPublicRun(dealt.PublicKeyPackage, [ids[0], ids[0]], lost, run, proof).Reason, StringComparison.Ordinal);
        Assert.Contains("is the repaired participant", Repair.VerifyPublicRun(dealt.PublicKeyPackage, [ids[0], lost], lost, run, proof).Reason, StringComparison.Ordinal);
        Assert.Contains("is malformed", Repair.VerifyPublicRun(dealt.PublicKeyPackage, helpers, lost, run, proof[..^1]).Reason, StringComparison.Ordinal);
    }
}
