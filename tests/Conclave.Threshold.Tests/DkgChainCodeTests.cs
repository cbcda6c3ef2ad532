using Conclave.Threshold.Frost;
using Conclave.Threshold.Frost.Ciphersuites;

namespace Conclave.Threshold.Tests;

/// <summary>
/// The chain code of a threshold key (issue 14 item 3): derived in the DKG from every dealer's secret contribution,
/// not from the group key; invisible in what the coordinator relays; agreed and confirmed by every participant;
/// kept by refresh and reshare; random for a dealer key; what HD derivation uses.
/// </summary>
public sealed class DkgChainCodeTests
{
    public static TheoryData<string> Suites => new() { "frost-ed25519", "frost-secp256k1", "frost-taproot" };

    private static FrostCiphersuite Suite(string name) => FrostCiphersuite.TryGet(name, out FrostCiphersuite? s) ? s : throw new ArgumentException(name);

    private static byte[] Fill(byte b) => [.. Enumerable.Repeat(b, 32)];

    private static bool Contains(byte[] haystack, ReadOnlySpan<byte> needle) => haystack.AsSpan().IndexOf(needle) >= 0;

    [Theory]
    [MemberData(nameof(Suites))]
    public void ChainCodeIsNotDeterminedByTheGroupKeyOrTheRelayedMessages(string name)
    {
        FrostCiphersuite suite = Suite(name);
        IReadOnlyList<Identifier> ids = TrustedDealer.Ids(suite, 3);
        var session = DkgSession.ForKeyGeneration(suite, Cluster.Sid("chain-code"), 2, ids);
        // Two runs with the same randomness everywhere except dealer 3's 32-byte contribution.
        Cluster.DkgRun a = Cluster.RunDetailed(session, null, TestSeed.For(name), contribution: id => Fill((byte)(0xA0 + ids.ToList().IndexOf(id))));
        Cluster.DkgRun b = Cluster.RunDetailed(session, null, TestSeed.For(name), contribution: id => id.Equals(ids[2]) ? Fill(0xEE) : Fill((byte)(0xA0 + ids.ToList().IndexOf(id))));
        PublicKeyPackage ka = a.Keys[ids[0]].PublicKeyPackage, kb = b.Keys[ids[0]].PublicKeyPackage;

        // Every participant agrees on its run's chain code.
        Assert.All(a.Keys.Values, k => Assert.Equal(ka.ChainCode.ToArray(), k.PublicKeyPackage.ChainCode.ToArray()));
        Assert.All(b.Keys.Values, k => Assert.Equal(kb.ChainCode.ToArray(), k.PublicKeyPackage.ChainCode.ToArray()));

        // Same group key, same verifying shares, same round-one broadcasts and committed package hashes...
        Assert.Equal(ka.GroupPublicKey, kb.GroupPublicKey);
        Assert.All(ids, id => Assert.Equal(ka.GetVerifyingShare(id), kb.GetVerifyingShare(id)));
        Assert.Equal(a.Broadcasts.Select(p => p.ToBytes()), b.Broadcasts.Select(p => p.ToBytes()));
        Assert.Equal(a.Commitments.Select(c => c.PackageHash.ToArray()), b.Commitments.Select(c => c.PackageHash.ToArray()));
        // ...yet different chain codes: neither the group key nor the relayed broadcasts determine it.
        Assert.NotEqual(ka.ChainCode.ToArray(), kb.ChainCode.ToArray());
        Assert.False(ka.HasLegacyChainCode);
        Assert.False(kb.HasLegacyChainCode);

        // Nothing the coordinator relays carries the chain code or a contribution in the clear.
        foreach (Cluster.DkgRun run in new[] { a, b })
        {
            byte[][] visible = [.. run.Commitments.Select(c => c.ToBytes()), .. run.Broadcasts.Select(p => p.ToBytes()), .. run.Confirmations.Select(c => c.ToBytes())];
            byte[] cc = run.Keys[ids[0]].PublicKeyPackage.ChainCode.ToArray();
            Assert.DoesNotContain(visible, v => Contains(v, cc) || Contains(v, Fill(0xA0)) || Contains(v, Fill(0xEE)));
            Cluster.DisposeAll(run.Keys.Values);
        }

        // A run with random contributions gets yet another chain code.
        Dictionary<Identifier, KeyPackage> c = Cluster.Run(session, null, TestSeed.For(name));
        Assert.NotEqual(ka.ChainCode.ToArray(), c[ids[0]].PublicKeyPackage.ChainCode.ToArray());
        Cluster.DisposeAll(c.Values);
    }

    /// <summary>
    /// A participant that derived another chain code (here: it accepted another contribution from dealer 1, as if
    /// it had seen another commitment, with its echo unchanged) confirms another digest: nobody's key completes.
    /// </summary>
    [Theory]
    [MemberData(nameof(Suites))]
    public void ParticipantWithAnotherContributionSetFailsConfirmation(string name)
    {
        FrostCiphersuite suite = Suite(name);
        var rng = TestSeed.For(name);
        IReadOnlyList<Identifier> ids = TrustedDealer.Ids(suite, 3);
        var session = DkgSession.ForKeyGeneration(suite, Cluster.Sid("chain-code-confirm"), 2, ids);
        var commits = ids.Select(id => Dkg.Commit(session, id, null, rng)).ToList();
        var r1 = commits.Select(c => Dkg.Round1(c, [.. commits.Where(o => o != c).Select(o => o.Commitment!)])).ToList();
        var broadcasts = r1.Select(s => s.Package!).ToList();
        var r2 = r1.Select(s => Dkg.Round2(s, [.. broadcasts.Where(b => !b.Sender.Equals(s.Self))], rng)).ToList();
        List<DkgRound2Package> Mail(Identifier to) => [.. r2.SelectMany(x => x.Outgoing).Where(p => p.Recipient.Equals(to))];

        // Participant 3's view of dealer 1: another contribution under another (test-held) signing key.
        DkgRound2Secret s3 = r2[2].Secret;
        byte[] echo = s3.EchoDigest.ToArray();
        IReadOnlyDictionary<Identifier, IReadOnlyList<Element?>> feldman = s3.Commitments;
        var dealerCommitments = s3.DealerCommitments!.ToDictionary(kv => kv.Key, kv => kv.Value);
        (Scalar? own, Scalar? old, byte[] ownContribution) = s3.Consume();
        Scalar x = suite.RandomScalar(rng);
        Element xPub = suite.BaseMul(x);
        byte[] other = Fill(0x5A);
        dealerCommitments[ids[0]] = new DkgCommitment(ids[0], dealerCommitments[ids[0]].PackageHash, Dkg.ContributionHash(session, ids[0], other), xPub);
        var altered = new DkgRound2Secret(session, ids[2], echo, feldman, own, old, ownContribution, dealerCommitments);
        DkgRound2Package from1 = Mail(ids[2]).Single(p => p.Sender.Equals(ids[0]));
        (Element sigR, Scalar sigZ) = Dkg.SignShare(session, ids[0], ids[2], x, xPub, echo, from1.Share, other, rng);
        var swapped = new DkgRound2Package(ids[0], ids[2], echo, from1.Share, other, sigR, sigZ);

        DkgPendingKey p1 = Dkg.Finish(r2[0].Secret, Mail(ids[0]), rng);
        DkgPendingKey p2 = Dkg.Finish(r2[1].Secret, Mail(ids[1]), rng);
        DkgPendingKey p3 = Dkg.Finish(altered, [swapped, Mail(ids[2]).Single(p => p.Sender.Equals(ids[1]))], rng);
        Assert.Equal(p1.PublicKeyPackage.GroupPublicKey, p3.PublicKeyPackage.GroupPublicKey);
        Assert.NotEqual(p1.PublicKeyPackage.ChainCode.ToArray(), p3.PublicKeyPackage.ChainCode.ToArray());
        DkgConfirmation[] all = [p1.Confirmation, p2.Confirmation, p3.Confirmation];
        ThresholdProtocolException ex = Assert.Throws<ThresholdProtocolException>(() => p1.Complete(all));
        Assert.Equal(ThresholdFailure.InvalidConfirmation, ex.Failure);
        Assert.Equal([ids[2]], ex.Culprits);
        ex = Assert.Throws<ThresholdProtocolException>(() => p3.Complete(all));
        Assert.Equal(ThresholdFailure.InvalidConfirmation, ex.Failure);
        Assert.Equal([ids[0], ids[1]], ex.Culprits.Order());
        p1.Dispose();
        p2.Dispose();
        p3.Dispose();
    }

    [Theory]
    [MemberData(nameof(Suites))]
    public void RefreshAndReshareKeepTheChainCodeAndTheChildren(string name)
    {
        FrostCiphersuite suite = Suite(name);
        var rng = TestSeed.For(name);
        IReadOnlyList<Identifier> ids = TrustedDealer.Ids(suite, 3);
        Dictionary<Identifier, KeyPackage> dkg = Cluster.Run(DkgSession.ForKeyGeneration(suite, Cluster.Sid("cc-keygen"), 2, ids), null, rng);
        PublicKeyPackage key = dkg[ids[0]].PublicKeyPackage;
        Dictionary<Identifier, KeyPackage> refreshed = Cluster.Run(DkgSession.ForRefresh(Cluster.Sid("cc-refresh"), key), dkg, rng);
        PublicKeyPackage afterRefresh = refreshed[ids[0]].PublicKeyPackage;
        Identifier[] newIds = [.. Enumerable.Range(2, 4).Select(i => Identifier.FromInt(suite, i))];
        Dictionary<Identifier, KeyPackage> reshared = Cluster.Run(DkgSession.ForReshare(Cluster.Sid("cc-reshare"), afterRefresh, [ids[0], ids[2]], 3, newIds), refreshed, rng);
        PublicKeyPackage afterReshare = reshared[newIds[0]].PublicKeyPackage;
        Assert.Equal(key.ChainCode.ToArray(), afterRefresh.ChainCode.ToArray());
        Assert.Equal(key.ChainCode.ToArray(), afterReshare.ChainCode.ToArray());
        Assert.All(reshared.Values, k => Assert.Equal(key.ChainCode.ToArray(), k.PublicKeyPackage.ChainCode.ToArray()));
        uint[] path = [3, 14];
        Assert.Equal(HdDerivation.DerivePath(key, path).GroupPublicKey, HdDerivation.DerivePath(afterReshare, path).GroupPublicKey);
        // The new committee signs under the same child key.
        using KeyPackage c2 = HdDerivation.DerivePath(reshared[newIds[0]], path);
        using KeyPackage c3 = HdDerivation.DerivePath(reshared[newIds[1]], path);
        using KeyPackage c5 = HdDerivation.DerivePath(reshared[newIds[3]], path);
        PublicKeyPackage child = HdDerivation.DerivePath(afterReshare, path);
        byte[] msg = "child after reshare"u8.ToArray();
        Assert.True(suite.Verify(HdDerivation.DerivePath(key, path).VerificationKey, msg, Cluster.Sign([c2, c3, c5], child, msg, rng)));
        Cluster.DisposeAll(dkg.Values.Concat(refreshed.Values).Concat(reshared.Values));
    }

    [Theory]
    [MemberData(nameof(Suites))]
    public void DealerKeysGetARandomChainCodeAndImportsKeepTheirOwn(string name)
    {
        FrostCiphersuite suite = Suite(name);
        var rng = TestSeed.For(name);
        using DealerOutput d = TrustedDealer.Generate(suite, 2, 3, rng);
        using Conclave.Crypto.Memory.SecretBuffer secret = TrustedDealer.Reconstruct([d.KeyPackages[0], d.KeyPackages[1]]);
        // The same secret split twice: same group key, different random chain codes.
        using DealerOutput again = TrustedDealer.Split(suite, secret.ReadOnlySpan, 2, TrustedDealer.Ids(suite, 3), rng);
        Assert.Equal(d.PublicKeyPackage.GroupPublicKey, again.PublicKeyPackage.GroupPublicKey);
        Assert.NotEqual(d.PublicKeyPackage.ChainCode.ToArray(), again.PublicKeyPackage.ChainCode.ToArray());
        Assert.False(d.PublicKeyPackage.HasLegacyChainCode);
        Assert.False(again.PublicKeyPackage.HasLegacyChainCode);
        byte[] own = Fill(0x33);
        using DealerOutput imported = TrustedDealer.Split(suite, secret.ReadOnlySpan, 2, TrustedDealer.Ids(suite, 3), rng, own);
        Assert.Equal(own, imported.PublicKeyPackage.ChainCode.ToArray());
    }

    [Theory]
    [MemberData(nameof(Suites))]
    public void HdDerivationUsesThePackageChainCodeAndLegacyPackagesStillLoad(string name)
    {
        FrostCiphersuite suite = Suite(name);
        var rng = TestSeed.For(name);
        IReadOnlyList<Identifier> ids = TrustedDealer.Ids(suite, 3);
        Dictionary<Identifier, KeyPackage> keys = Cluster.Run(DkgSession.ForKeyGeneration(suite, Cluster.Sid("cc-hd"), 2, ids), null, rng);
        PublicKeyPackage key = keys[ids[0]].PublicKeyPackage;
        // The same key with the legacy chain code (a function of the group key), as packages made before this change
        // carry it: the encoding is unchanged, so such a package loads as it is and keeps deriving its old children.
        var legacy = new PublicKeyPackage(suite, key.Threshold, key.GroupKey, key.Shares, PublicKeyPackage.LegacyChainCode(suite, key.GroupKey));
        PublicKeyPackage loaded = PublicKeyPackage.FromBytes(suite, legacy.ToBytes());
        Assert.True(loaded.HasLegacyChainCode);
        Assert.Equal(HdDerivation.DeriveChild(legacy, 7).GroupPublicKey, HdDerivation.DeriveChild(loaded, 7).GroupPublicKey);
        // Derivation follows the chain code: same group key, other chain code, other children.
        Assert.NotEqual(HdDerivation.DeriveChild(key, 7).GroupPublicKey, HdDerivation.DeriveChild(legacy, 7).GroupPublicKey);
        Assert.NotEqual(HdDerivation.DeriveChild(key, 7).ChainCode.ToArray(), HdDerivation.DeriveChild(legacy, 7).ChainCode.ToArray());
        // The key package carries the chain code through its secret encoding, and children sign.
        using Conclave.Crypto.Memory.SecretBuffer blob = keys[ids[1]].Export();
        using KeyPackage back = KeyPackage.Import(suite, blob.ReadOnlySpan);
        Assert.Equal(key.ChainCode.ToArray(), back.PublicKeyPackage.ChainCode.ToArray());
        using KeyPackage a = HdDerivation.DeriveChild(back, 7);
        using KeyPackage b = HdDerivation.DeriveChild(keys[ids[2]], 7);
        PublicKeyPackage child = HdDerivation.DeriveChild(key, 7);
        byte[] msg = "hd with the dkg chain code"u8.ToArray();
        Assert.True(suite.Verify(child.VerificationKey, msg, Cluster.Sign([a, b], child, msg, rng)));
        Cluster.DisposeAll(keys.Values);
    }
}
