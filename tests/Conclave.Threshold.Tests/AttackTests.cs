using Conclave.Crypto;
using Conclave.Crypto.Randomness;
using Conclave.Threshold.Frost;
using Conclave.Threshold.Frost.Ciphersuites;
using Conclave.Threshold.Frost.Internal;

namespace Conclave.Threshold.Tests;

/// <summary>
/// One test per applicable row of ATTACKS.md: each mounts the attack against the library and sees it refused.
/// Not applicable here: OT/KOS and Paillier rows (no OT or Paillier in FROST), client request replay (server).
/// </summary>
public sealed class AttackTests
{
    public static TheoryData<string> Suites => new() { "frost-ed25519", "frost-secp256k1", "frost-taproot" };

    private static FrostCiphersuite Suite(string name) => FrostCiphersuite.TryGet(name, out FrostCiphersuite? s) ? s : throw new ArgumentException(name);

    private static readonly byte[] s_msg = "transfer 100"u8.ToArray();

    // Row: Nonce / presignature reuse.
    [Theory]
    [MemberData(nameof(Suites))]
    public void NonceReuseIsRefused(string name)
    {
        FrostCiphersuite suite = Suite(name);
        var rng = TestSeed.For(name);
        using DealerOutput d = TrustedDealer.Generate(suite, 2, 3, rng);
        KeyPackage a = d.KeyPackages[0], b = d.KeyPackages[1];
        SigningNonces na = FrostSigner.Commit(a, rng), nb = FrostSigner.Commit(b, rng);
        var package = new SigningPackage(s_msg, [na.Commitments, nb.Commitments]);
        _ = FrostSigner.Sign(package, na, a);
        Assert.True(na.IsConsumed);
        // Same nonces, second message: refused.
        var other = new SigningPackage("transfer 999"u8, [na.Commitments, nb.Commitments]);
        Assert.Throws<InvalidOperationException>(() => FrostSigner.Sign(other, na, a));
        Assert.Throws<InvalidOperationException>(() => na.Export());
        // A failed attempt also consumes: nonces offered with a package that lacks their commitments are burnt.
        SigningNonces fresh = FrostSigner.Commit(a, rng);
        Assert.Throws<ArgumentException>(() => FrostSigner.Sign(package, fresh, a));
        Assert.Throws<InvalidOperationException>(() => FrostSigner.Sign(new SigningPackage(s_msg, [fresh.Commitments, nb.Commitments]), fresh, a));
    }

    // Row: Zero or duplicate participant identifier.
    [Theory]
    [MemberData(nameof(Suites))]
    public void ZeroAndDuplicateIdentifiersAreRefused(string name)
    {
        FrostCiphersuite suite = Suite(name);
        Assert.Throws<ArgumentException>(() => Identifier.FromInt(suite, 0));
        Assert.Throws<CryptoFormatException>(() => Identifier.Read(suite, new byte[suite.ScalarSizeInBytes]));
        // The group order itself (≡ 0 mod q) is not a canonical scalar.
        byte[] q = suite is Ed25519Sha512Suite
            ? Hex.Decode("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010")
            : Hex.Decode("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141");
        Assert.Throws<CryptoFormatException>(() => Identifier.Read(suite, q));
        Identifier one = Identifier.FromInt(suite, 1);
        Assert.Throws<ArgumentException>(() => TrustedDealer.Split(suite, suite.ScalarOne.ToBytes(), 2, [one, Identifier.FromInt(suite, 2), one]));
        Assert.Throws<ArgumentException>(() => Polynomials.Lagrange(suite, [one, one], one));

        var rng = TestSeed.For(name);
        using DealerOutput d = TrustedDealer.Generate(suite, 2, 3, rng);
        SigningNonces n = FrostSigner.Commit(d.KeyPackages[0], rng);
        Assert.Throws<CryptoFormatException>(() => new SigningPackage(s_msg, [n.Commitments, n.Commitments]));
        // The same duplicate smuggled in a serialized package.
        byte[] enc = new SigningPackage(s_msg, [n.Commitments, FrostSigner.Commit(d.KeyPackages[1], rng).Commitments]).ToBytes();
        int entry = suite.ScalarSizeInBytes + (2 * suite.ElementSizeInBytes);
        Array.Copy(enc, enc.Length - (2 * entry), enc, enc.Length - entry, entry);
        Assert.Throws<CryptoFormatException>(() => SigningPackage.FromBytes(suite, enc));
        Assert.Throws<ArgumentException>(() => DkgSession.ForKeyGeneration(suite, Cluster.Sid("dup"), 2, [one, one, Identifier.FromInt(suite, 3)]));
    }

    private static DkgRound1Package Forge(DkgSession session, Identifier sender, IReadOnlyList<Element> commitment, Scalar a0, IRandomSource rng)
    {
        // A dealer that knows a_0 can always prove it for whatever vector it likes: the length check must still refuse.
        FrostCiphersuite suite = session.Suite;
        Scalar k = suite.RandomScalar(rng);
        Element r = suite.BaseMul(k);
        Scalar c = Dkg.ProofChallenge(session, sender, commitment, r);
        return new DkgRound1Package(sender, commitment, r, k + (a0 * c));
    }

    /// <summary>A malicious dealer commits, with a key of its own, to whatever package it will reveal (here a forged one).</summary>
    private static DkgCommitment CommitTo(DkgSession session, DkgRound1Package package, IRandomSource rng)
    {
        Element x = session.Suite.BaseMul(session.Suite.RandomScalar(rng));
        return new DkgCommitment(package.Sender, Dkg.PackageHash(session, package, x), Dkg.ContributionHash(session, package.Sender, new byte[32]), x);
    }

    /// <summary>
    /// A dealer's honest round-one package and its commitment, through the commit step (round one revealed against
    /// placeholder commitments of the other dealers: only this package and commitment are used).
    /// </summary>
    private static (DkgRound1Package Package, DkgCommitment Commitment) Dealt(DkgSession session, Identifier self, KeyPackage? current, IRandomSource rng)
    {
        DkgCommitSecret c = Dkg.Commit(session, self, current, rng);
        DkgCommitment[] others = [.. session.Dealers.Where(d => !d.Equals(self)).Select(d => new DkgCommitment(d, new byte[32], new byte[32], session.Suite.Generator))];
        DkgCommitment mine = c.Commitment!;
        using DkgRound1Secret r1 = Dkg.Round1(c, others);
        return (r1.Package!, mine);
    }

    /// <summary>Round one of <paramref name="self"/> through the commit step, given the other dealers' commitments.</summary>
    private static DkgRound1Secret Revealed(DkgSession session, Identifier self, IRandomSource rng, params DkgCommitment[] others)
        => Dkg.Round1(Dkg.Commit(session, self, null, rng), others);

    // Row: Oversized VSS commitment vector.
    [Theory]
    [MemberData(nameof(Suites))]
    public void OversizedCommitmentVectorIsRefused(string name)
    {
        FrostCiphersuite suite = Suite(name);
        var rng = TestSeed.For(name);
        IReadOnlyList<Identifier> ids = TrustedDealer.Ids(suite, 3);
        var session = DkgSession.ForKeyGeneration(suite, Cluster.Sid("oversize"), 2, ids);
        Scalar a0 = suite.RandomScalar(rng);
        Element[] big = [suite.BaseMul(a0), suite.BaseMul(suite.RandomScalar(rng)), suite.BaseMul(suite.RandomScalar(rng))];
        DkgRound1Package evil = Forge(session, ids[0], big, a0, rng);
        Assert.True(suite.BaseMul(evil.ProofZ!).ValueEquals(evil.ProofR! + (big[0] * Dkg.ProofChallenge(session, ids[0], big, evil.ProofR!))));
        DkgCommitment evilCommitment = CommitTo(session, evil, rng);
        DkgCommitSecret c2 = Dkg.Commit(session, ids[1], null, rng);
        DkgCommitSecret c3 = Dkg.Commit(session, ids[2], null, rng);
        DkgCommitment c2Commitment = c2.Commitment!;
        DkgRound1Secret me = Dkg.Round1(c2, [evilCommitment, c3.Commitment!]);
        DkgRound1Secret third = Dkg.Round1(c3, [evilCommitment, c2Commitment]);
        ThresholdProtocolException ex = Assert.Throws<ThresholdProtocolException>(() => Dkg.Round2(me, [DkgRound1Package.FromBytes(suite, evil.ToBytes()), third.Package!]));
        Assert.Equal(ThresholdFailure.InvalidProofOfKnowledge, ex.Failure);
        Assert.Equal([ids[0]], ex.Culprits);
    }

    // Rows: Rogue-key in DKG; Ambiguous Fiat–Shamir transcripts; Missing commitment in a challenge hash.
    [Theory]
    [MemberData(nameof(Suites))]
    public void RogueKeyAndProofTamperingAreRefused(string name)
    {
        FrostCiphersuite suite = Suite(name);
        var rng = TestSeed.For(name);
        IReadOnlyList<Identifier> ids = TrustedDealer.Ids(suite, 3);
        var session = DkgSession.ForKeyGeneration(suite, Cluster.Sid("rogue"), 2, ids);
        var other = DkgSession.ForKeyGeneration(suite, Cluster.Sid("rogue-2"), 2, ids);
        (DkgRound1Package honest2, DkgCommitment honest2Commitment) = Dealt(session, ids[1], null, rng);
        DkgRound1Package honest3 = Dealt(session, ids[2], null, rng).Package;
        DkgRound1Package inOther = Dealt(other, ids[0], null, rng).Package;

        // Rogue key: C_0 = X − C_0(2) − C_0(3) for a target X, without knowing its discrete log; proof forged.
        Element target = suite.BaseMul(suite.RandomScalar(rng));
        Element rogue = target - honest2.Commitment[0] - honest3.Commitment[0];
        var rogueKey = new DkgRound1Package(ids[0], [rogue, suite.BaseMul(suite.RandomScalar(rng))], honest2.ProofR, honest2.ProofZ);
        // Replay of another dealer's valid proof under a different prover id.
        var replayed = new DkgRound1Package(ids[0], honest2.Commitment, honest2.ProofR, honest2.ProofZ);
        // A valid proof from another session (only the session id differs).
        var otherSession = inOther;
        // Swapped commitment order (α-shuffle) and a changed non-constant commitment (missing commitment).
        DkgRound1Package mine = Dealt(session, ids[0], null, rng).Package;
        var shuffled = new DkgRound1Package(ids[0], [mine.Commitment[1], mine.Commitment[0]], mine.ProofR, mine.ProofZ);
        var changedC1 = new DkgRound1Package(ids[0], [mine.Commitment[0], mine.Commitment[1] + suite.Generator], mine.ProofR, mine.ProofZ);
        // A proof with the challenge reduced/altered: z off by one.
        var badZ = new DkgRound1Package(ids[0], mine.Commitment, mine.ProofR, mine.ProofZ! + suite.ScalarOne);

        foreach (DkgRound1Package attack in new[] { rogueKey, replayed, otherSession, shuffled, changedC1, badZ })
        {
            Assert.False(Dkg.CheckRound1(session, attack));
            // The dealer committed to the attack package itself: only the proof-of-knowledge check can catch it.
            DkgRound1Secret receiver = Revealed(session, ids[2], rng, CommitTo(session, attack, rng), honest2Commitment);
            ThresholdProtocolException ex = Assert.Throws<ThresholdProtocolException>(() => Dkg.Round2(receiver, [attack, honest2]));
            Assert.Equal(ThresholdFailure.InvalidProofOfKnowledge, ex.Failure);
            Assert.Equal([ids[0]], ex.Culprits);
        }

        Assert.True(Dkg.CheckRound1(session, mine));

        // Length-prefixed transcripts: moving a byte between adjacent items changes the encoding.
        byte[] t1 = new Transcript("d").Append("a", [1, 2]).Append("b", [3]).ToArray();
        byte[] t2 = new Transcript("d").Append("a", [1]).Append("b", [2, 3]).ToArray();
        Assert.NotEqual(t1, t2);
    }

    // Row: Inconsistent broadcast in DKG (equivocation) → echo check. The echo covers the commitments too: dealer 1
    // shows participant 3 another commitment (same package, another contribution hash) than everyone else.
    [Theory]
    [MemberData(nameof(Suites))]
    public void EquivocatingDealerIsCaughtByEcho(string name)
    {
        FrostCiphersuite suite = Suite(name);
        var rng = TestSeed.For(name);
        IReadOnlyList<Identifier> ids = TrustedDealer.Ids(suite, 3);
        var session = DkgSession.ForKeyGeneration(suite, Cluster.Sid("equivocate"), 2, ids);
        ThresholdProtocolException ex = Assert.Throws<ThresholdProtocolException>(() =>
            Cluster.Run(session, null, rng, tamperCommitment: (from, to, c) => from.Equals(ids[0]) && to.Equals(ids[2])
                ? new DkgCommitment(c.Sender, c.PackageHash, new byte[32], c.SigningKey)
                : c));
        Assert.Equal(ThresholdFailure.BroadcastMismatch, ex.Failure);
        Assert.NotEmpty(ex.Culprits);
    }

    // Row: Inconsistent broadcast, full equivocation: dealer 1 commits twice and shows each honest participant one
    // consistent (commitment, package, shares) world. Each check passes locally; the echo digests differ.
    [Theory]
    [MemberData(nameof(Suites))]
    public void DifferentCommitmentSetsAreDetected(string name)
    {
        FrostCiphersuite suite = Suite(name);
        var rng = TestSeed.For(name);
        IReadOnlyList<Identifier> ids = TrustedDealer.Ids(suite, 3);
        var session = DkgSession.ForKeyGeneration(suite, Cluster.Sid("equivocate-commit"), 2, ids);
        DkgCommitSecret a = Dkg.Commit(session, ids[0], null, rng), b = Dkg.Commit(session, ids[0], null, rng);
        DkgCommitSecret c2 = Dkg.Commit(session, ids[1], null, rng), c3 = Dkg.Commit(session, ids[2], null, rng);
        DkgRound1Secret a1 = Dkg.Round1(a, [c2.Commitment!, c3.Commitment!]);
        DkgRound1Secret b1 = Dkg.Round1(b, [c2.Commitment!, c3.Commitment!]);
        DkgRound1Secret p2 = Dkg.Round1(c2, [a.Commitment!, c3.Commitment!]); // participant 2 sees world A
        DkgRound1Secret p3 = Dkg.Round1(c3, [b.Commitment!, c2.Commitment!]); // participant 3 sees world B
        DkgRound1Package pk2 = p2.Package!, pk3 = p3.Package!;
        var (_, outA) = Dkg.Round2(a1, [pk2, pk3], rng);
        var (_, outB) = Dkg.Round2(b1, [pk2, pk3], rng);
        var (s2, out2) = Dkg.Round2(p2, [a1.Package!, pk3], rng);
        var (s3, out3) = Dkg.Round2(p3, [b1.Package!, pk2], rng);
        ThresholdProtocolException ex = Assert.Throws<ThresholdProtocolException>(() => Dkg.Finish(s2, [outA.Single(p => p.Recipient.Equals(ids[1])), out3.Single(p => p.Recipient.Equals(ids[1]))], rng));
        Assert.Equal(ThresholdFailure.BroadcastMismatch, ex.Failure);
        Assert.Equal([ids[2]], ex.Culprits);
        ex = Assert.Throws<ThresholdProtocolException>(() => Dkg.Finish(s3, [outB.Single(p => p.Recipient.Equals(ids[2])), out2.Single(p => p.Recipient.Equals(ids[2]))], rng));
        Assert.Equal(ThresholdFailure.BroadcastMismatch, ex.Failure);
        Assert.Equal([ids[1]], ex.Culprits);
    }

    // Row: Rushing dealer (choosing its contribution after seeing the others'): every run commits first, and a
    // revealed round-one package that differs from the dealer's commitment is refused and the dealer named.
    [Theory]
    [MemberData(nameof(Suites))]
    public void DealerRevealingAnotherPackageThanItCommittedToIsRefusedAndNamed(string name)
    {
        FrostCiphersuite suite = Suite(name);
        var rng = TestSeed.For(name);
        IReadOnlyList<Identifier> ids = TrustedDealer.Ids(suite, 3);
        using DealerOutput d = TrustedDealer.Generate(suite, 2, 3, rng);
        var current = d.KeyPackages.ToDictionary(k => k.Identifier);
        DkgSession[] sessions =
        [
            DkgSession.ForKeyGeneration(suite, Cluster.Sid("rush-keygen"), 2, ids),
            DkgSession.ForRefresh(Cluster.Sid("rush-refresh"), d.PublicKeyPackage),
            DkgSession.ForReshare(Cluster.Sid("rush-reshare"), d.PublicKeyPackage, [ids[0], ids[1]], 2, ids),
        ];
        foreach (DkgSession session in sessions)
        {
            // Dealer 1's second, fully valid package (valid proof, for reshare the right constant term), drawn after
            // its commitment was sent: what a rushing dealer would reveal after seeing the others' packages.
            DkgCommitSecret other = Dkg.Commit(session, ids[0], session.Kind == DkgKind.KeyGeneration ? null : current[ids[0]], rng);
            DkgRound1Package late = Dkg.Round1(other, [.. session.Dealers.Where(x => !x.Equals(ids[0])).Select(x => Dkg.Commit(session, x, session.Kind == DkgKind.KeyGeneration ? null : current[x], rng).Commitment!)]).Package!;
            if (session.Kind != DkgKind.Refresh)
            {
                Assert.True(Dkg.CheckRound1(session, late));
            }

            ThresholdProtocolException ex = Assert.Throws<ThresholdProtocolException>(() =>
                Cluster.Run(session, current, rng, (from, to, p) => from.Equals(ids[0]) ? late : p));
            Assert.Equal(ThresholdFailure.CommitmentMismatch, ex.Failure);
            Assert.Equal([ids[0]], ex.Culprits);
        }
    }

    // Row: Refresh that changes t.
    [Theory]
    [MemberData(nameof(Suites))]
    public void RefreshCommitmentsThatChangeTheThresholdAreRefused(string name)
    {
        FrostCiphersuite suite = Suite(name);
        var rng = TestSeed.For(name);
        using DealerOutput d = TrustedDealer.Generate(suite, 3, 4, rng);
        var session = DkgSession.ForRefresh(Cluster.Sid("refresh-t"), d.PublicKeyPackage);
        IReadOnlyList<Identifier> ids = d.PublicKeyPackage.Participants;
        DkgRound1Package honest = Dealt(session, ids[0], d.KeyPackages[0], rng).Package;
        Assert.Equal(2, honest.CommitmentCount); // t − 1: the zero constant term is implicit, never sent.
        Element extra = suite.BaseMul(suite.RandomScalar(rng));
        var nonZeroConstant = new DkgRound1Package(ids[0], [extra, .. honest.Commitment], null, null);   // t commitments: a non-zero constant
        var higherDegree = new DkgRound1Package(ids[0], [.. honest.Commitment, extra], null, null);      // degree t: raises the threshold
        var lowerDegree = new DkgRound1Package(ids[0], [honest.Commitment[0]], null, null);              // degree t−2: lowers it
        foreach (DkgRound1Package attack in new[] { nonZeroConstant, higherDegree, lowerDegree })
        {
            Assert.False(Dkg.CheckRound1(session, attack));
        }

        Assert.True(Dkg.CheckRound1(session, honest));
    }

    // Row: Premature deletion during refresh / reshare (two-phase).
    [Theory]
    [MemberData(nameof(Suites))]
    public void NewKeyIsUnusableUntilEveryoneConfirmedAndOldKeyStillSigns(string name)
    {
        FrostCiphersuite suite = Suite(name);
        var rng = TestSeed.For(name);
        using DealerOutput d = TrustedDealer.Generate(suite, 2, 3, rng);
        var session = DkgSession.ForRefresh(Cluster.Sid("two-phase"), d.PublicKeyPackage);
        var commits = d.KeyPackages.Select(k => Dkg.Commit(session, k.Identifier, k, rng)).ToList();
        var r1 = commits.Select(c => Dkg.Round1(c, [.. commits.Where(o => o != c).Select(o => o.Commitment!)])).ToList();
        var r2 = r1.Select(s => Dkg.Round2(s, [.. r1.Where(o => o != s).Select(o => o.Package!)])).ToList();
        var pending = r2.Select(x => Dkg.Finish(x.Secret, [.. r2.SelectMany(o => o.Outgoing).Where(p => p.Recipient.Equals(x.Secret.Self))], rng)).ToList();
        // Participant 3's confirmation is lost: nobody's new key becomes usable.
        ThresholdProtocolException ex = Assert.Throws<ThresholdProtocolException>(() => pending[0].Complete([pending[0].Confirmation, pending[1].Confirmation]));
        Assert.Equal(ThresholdFailure.InvalidConfirmation, ex.Failure);
        Assert.Equal([d.KeyPackages[2].Identifier], ex.Culprits);
        // A confirmation with a forged digest is refused and named.
        var forged = new DkgConfirmation(pending[2].Self, new byte[32], pending[2].Confirmation.ProofR, pending[2].Confirmation.ProofZ);
        ex = Assert.Throws<ThresholdProtocolException>(() => pending[0].Complete([pending[1].Confirmation, forged]));
        Assert.Equal([pending[2].Self], ex.Culprits);
        // The old key still signs meanwhile.
        Assert.True(suite.Verify(d.PublicKeyPackage.VerificationKey, s_msg, Cluster.Sign([d.KeyPackages[0], d.KeyPackages[2]], d.PublicKeyPackage, s_msg, rng)));
        // With every confirmation the new key completes.
        var all = pending.Select(p => DkgConfirmation.FromBytes(suite, p.Confirmation.ToBytes())).ToList();
        using KeyPackage k1 = pending[0].Complete(all);
        Assert.Throws<InvalidOperationException>(() => pending[0].Complete(all));
    }

    // Row: Points off the curve, small-order points, identity.
    [Theory]
    [MemberData(nameof(Suites))]
    public void InvalidPointsAreRefused(string name)
    {
        FrostCiphersuite suite = Suite(name);
        var rng = TestSeed.For(name);
        using DealerOutput d = TrustedDealer.Generate(suite, 2, 3, rng);
        byte[] good = FrostSigner.Commit(d.KeyPackages[0], rng).Commitments.ToBytes();
        int hidingAt = 3 + suite.ScalarSizeInBytes;
        string[] bad = suite is Ed25519Sha512Suite
            ? [
                "0100000000000000000000000000000000000000000000000000000000000000", // identity
                "0000000000000000000000000000000000000000000000000000000000000000", // order 4
                "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // order 2
                "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05", // order 8
                "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // y = p: non-canonical
                "123456f9e9d319cad973b84cc4c835c8ee73281f5e2638d2d2b352c09edccbfb", // Zcash elements.json invalid_element
              ]
            : [
                "020000000000000000000000000000000000000000000000000000000000000005", // x = 5: not on the curve
                "000000000000000000000000000000000000000000000000000000000000000000", // SEC1 identity encoding padded
                "04" + new string('1', 64) + "00",                                    // bad prefix
                "02fffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2f", // x = p: non-canonical
              ];
        foreach (string b in bad)
        {
            byte[] enc = (byte[])good.Clone();
            Hex.Decode(b).CopyTo(enc, hidingAt);
            Assert.Throws<CryptoFormatException>(() => SigningCommitments.FromBytes(suite, enc));
            Assert.False(suite.TryReadElement(Hex.Decode(b), out _));
        }

        // A verifying share that is not on the curve in a public key package.
        byte[] pkp = d.PublicKeyPackage.ToBytes();
        Hex.Decode(bad[0]).CopyTo(pkp, pkp.Length - suite.ElementSizeInBytes);
        Assert.Throws<CryptoFormatException>(() => PublicKeyPackage.FromBytes(suite, pkp));
        // A valid point that does not belong there: verifying share swapped for another valid point.
        byte[] pkp2 = d.PublicKeyPackage.ToBytes();
        suite.Generator.ToBytes().CopyTo(pkp2, pkp2.Length - suite.ElementSizeInBytes);
        Assert.Throws<CryptoFormatException>(() => PublicKeyPackage.FromBytes(suite, pkp2));
    }

    // Row: Non-canonical scalars.
    [Theory]
    [MemberData(nameof(Suites))]
    public void NonCanonicalScalarsAreRefused(string name)
    {
        FrostCiphersuite suite = Suite(name);
        var rng = TestSeed.For(name);
        using DealerOutput d = TrustedDealer.Generate(suite, 2, 3, rng);
        byte[] share = new SignatureShare(d.KeyPackages[0].Identifier, suite.ScalarOne).ToBytes();
        byte[] q = suite is Ed25519Sha512Suite
            ? Hex.Decode("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010")
            : Hex.Decode("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141");
        q.CopyTo(share, share.Length - 32);
        Assert.Throws<CryptoFormatException>(() => SignatureShare.FromBytes(suite, share));
        Array.Fill(share, (byte)0xff, share.Length - 32, 32);
        Assert.Throws<CryptoFormatException>(() => SignatureShare.FromBytes(suite, share));
        // Final signatures with s ≥ q do not verify (malleability).
        byte[] msg = s_msg;
        byte[] sig = Cluster.Sign([d.KeyPackages[0], d.KeyPackages[1]], d.PublicKeyPackage, msg, rng);
        Assert.True(suite.Verify(d.PublicKeyPackage.VerificationKey, msg, sig));
        byte[] mall = (byte[])sig.Clone();
        Assert.True(suite.TryReadScalar(sig.AsSpan(sig.Length - 32), out Scalar? z));
        // Non-canonical z: encodings at or above the group order are refused, never reduced. For ed25519 the order is
        // about 2^252, so z + L fits in 32 bytes and is the same residue: a signature that would verify if the verifier
        // reduced. For secp256k1 the order is about 2^256 − 2^128, so z + q fits only when z < 2^256 − q (a valid signature
        // with such a z cannot be made: that would be a forgery), and the case is constructed directly instead: z := q
        // (a non-canonical 0), q + 1 and 2^256 − 1, each placed in a signature whose R is valid.
        bool ed = suite is Ed25519Sha512Suite;
        System.Numerics.BigInteger order = new(q, isUnsigned: true, isBigEndian: !ed);
        var nonCanonical = new List<System.Numerics.BigInteger> { order, order + 1, (System.Numerics.BigInteger.One << 256) - 1 };
        if (ed)
        {
            nonCanonical.Add(new System.Numerics.BigInteger(z!.ToBytes(), isUnsigned: true) + order);
        }

        foreach (System.Numerics.BigInteger value in nonCanonical)
        {
            byte[] zb = value.ToByteArray(isUnsigned: true, isBigEndian: !ed);
            Assert.True(zb.Length <= 32);
            byte[] padded = new byte[32];
            zb.CopyTo(padded, ed ? 0 : 32 - zb.Length);
            Assert.False(suite.TryReadScalar(padded, out _));
            padded.CopyTo(mall, sig.Length - 32);
            Assert.False(suite.Verify(d.PublicKeyPackage.VerificationKey, msg, mall));
        }

        Assert.Equal(ed ? 4 : 3, nonCanonical.Count);

        // A DKG proof with a non-canonical z is refused at parse.
        var session = DkgSession.ForKeyGeneration(suite, Cluster.Sid("scalar"), 2, TrustedDealer.Ids(suite, 3));
        byte[] r1 = Dealt(session, Identifier.FromInt(suite, 1), null, rng).Package.ToBytes();
        q.CopyTo(r1, r1.Length - 32);
        Assert.Throws<CryptoFormatException>(() => DkgRound1Package.FromBytes(suite, r1));
    }

    // Rows: Bad signature share; Coordinator tampering (altered message to one signer).
    [Theory]
    [MemberData(nameof(Suites))]
    public void BadSharesAreNamedAndNoInvalidSignatureIsReturned(string name)
    {
        FrostCiphersuite suite = Suite(name);
        var rng = TestSeed.For(name);
        using DealerOutput d = TrustedDealer.Generate(suite, 3, 5, rng);
        KeyPackage[] signers = [d.KeyPackages[0], d.KeyPackages[2], d.KeyPackages[4]];
        var nonces = signers.Select(k => FrostSigner.Commit(k, rng)).ToList();
        var package = new SigningPackage(s_msg, nonces.Select(n => n.Commitments));
        var tampered = new SigningPackage("transfer 1000000"u8, nonces.Select(n => n.Commitments));
        SignatureShare s0 = FrostSigner.Sign(package, nonces[0], signers[0]);
        SignatureShare s1 = FrostSigner.Sign(tampered, nonces[1], signers[1]); // the coordinator showed signer 3 another message
        SignatureShare s2 = FrostSigner.Sign(package, nonces[2], signers[2]);
        var corrupted = new SignatureShare(s2.Identifier, s2.Value + suite.ScalarOne); // signer 5 sends garbage
        ThresholdProtocolException ex = Assert.Throws<ThresholdProtocolException>(() => FrostAggregator.Aggregate(package, [s0, s1, corrupted], d.PublicKeyPackage));
        Assert.Equal(ThresholdFailure.InvalidSignatureShare, ex.Failure);
        Assert.Equal([signers[1].Identifier, signers[2].Identifier], ex.Culprits);
        ex = Assert.Throws<ThresholdProtocolException>(() => FrostAggregator.Aggregate(package, [s0, s1, corrupted], d.PublicKeyPackage, AggregationMode.VerifySignatureFirst));
        Assert.Equal([signers[1].Identifier, signers[2].Identifier], ex.Culprits);
        // Public multiply-add (variable time) agrees with the constant-time path.
        for (int i = 0; i < 20; i++)
        {
            Scalar x = suite.RandomScalar(rng), y = suite.RandomScalar(rng);
            Element p = suite.BaseMul(suite.RandomScalar(rng));
            Assert.True(suite.MulAddBasePublic(p, x, y).ValueEquals(suite.Sum([p * x, suite.BaseMul(y)])));
            Assert.True(suite.MulAddBasePublic(p, x, suite.ScalarZero).ValueEquals(p * x));
        }
        // Missing, duplicate and foreign shares are named too.
        ex = Assert.Throws<ThresholdProtocolException>(() => FrostAggregator.Aggregate(package, [s0, s2], d.PublicKeyPackage));
        Assert.Equal([signers[1].Identifier], ex.Culprits);
        ex = Assert.Throws<ThresholdProtocolException>(() => FrostAggregator.Aggregate(package, [s0, s0, s2], d.PublicKeyPackage));
        Assert.Equal([s0.Identifier], ex.Culprits);
        // Fewer than t signers: refused before anything is computed.
        SigningNonces a = FrostSigner.Commit(d.KeyPackages[0], rng), b = FrostSigner.Commit(d.KeyPackages[1], rng);
        Assert.Throws<ArgumentException>(() => FrostSigner.Sign(new SigningPackage(s_msg, [a.Commitments, b.Commitments]), a, d.KeyPackages[0]));
    }

    // Row: HD path chosen after presigning — shares are bound to the exact (child) key they were made for.
    [Theory]
    [MemberData(nameof(Suites))]
    public void SharesForOneChildKeyDoNotAggregateUnderAnother(string name)
    {
        FrostCiphersuite suite = Suite(name);
        var rng = TestSeed.For(name);
        using DealerOutput d = TrustedDealer.Generate(suite, 2, 3, rng);
        using KeyPackage c1a = HdDerivation.DeriveChild(d.KeyPackages[0], 1), c1b = HdDerivation.DeriveChild(d.KeyPackages[1], 1);
        PublicKeyPackage child2 = HdDerivation.DeriveChild(d.PublicKeyPackage, 2);
        // Nonces were committed before the path was known (presigned pool).
        SigningNonces na = FrostSigner.Commit(d.KeyPackages[0], rng), nb = FrostSigner.Commit(d.KeyPackages[1], rng);
        var package = new SigningPackage(s_msg, [na.Commitments, nb.Commitments]);
        var shares = new[] { FrostSigner.Sign(package, na, c1a), FrostSigner.Sign(package, nb, c1b) };
        ThresholdProtocolException ex = Assert.Throws<ThresholdProtocolException>(() => FrostAggregator.Aggregate(package, shares, child2));
        Assert.Equal(2, ex.Culprits.Count);
        // Under the right child key, they aggregate (binding factors hash the child key, RFC 9591 section 4.4).
        byte[] sig = FrostAggregator.Aggregate(package, shares, c1a.PublicKeyPackage);
        Assert.True(suite.Verify(c1a.PublicKeyPackage.VerificationKey, s_msg, sig));
    }

    // DESIGN.md safety rule 3 for complaints: an honest complaint convicts the accused, a false or forged one does not.
    [Theory]
    [MemberData(nameof(Suites))]
    public void BadDkgShareYieldsVerifiableComplaint(string name)
    {
        FrostCiphersuite suite = Suite(name);
        var rng = TestSeed.For(name);
        IReadOnlyList<Identifier> ids = TrustedDealer.Ids(suite, 3);
        var session = DkgSession.ForKeyGeneration(suite, Cluster.Sid("complaint"), 2, ids);
        var commits = ids.Select(id => Dkg.Commit(session, id, null, rng)).ToList();
        var r1 = commits.Select(c => Dkg.Round1(c, [.. commits.Where(o => o != c).Select(o => o.Commitment!)])).ToList();
        var broadcasts = r1.Select(s => s.Package!).ToList();
        // Dealer 1 cheats: it sends participant 3 a wrong share, signed with its committed key.
        IReadOnlyList<DkgRound2Package> fromCheat = DkgCheat.Deal(r1[0], broadcasts.Skip(1), rng, shareFor: (to, share) => to.Equals(ids[2]) ? share + suite.ScalarOne : share);
        var r2 = r1.Skip(1).Select(s => Dkg.Round2(s, [.. broadcasts.Where(b => !b.Sender.Equals(s.Self))], rng)).ToList();
        DkgRound2Package honestFrom2 = r2[0].Outgoing.Single(p => p.Recipient.Equals(ids[2]));
        DkgComplaint honestEvidence = DkgComplaint.About(honestFrom2);
        var mail = new List<DkgRound2Package> { fromCheat.Single(p => p.Recipient.Equals(ids[2])), honestFrom2 };
        ThresholdProtocolException ex = Assert.Throws<ThresholdProtocolException>(() => Dkg.Finish(r2[1].Secret, mail, rng));
        Assert.Equal(ThresholdFailure.InvalidSecretShare, ex.Failure);
        Assert.Equal([ids[0]], ex.Culprits);
        DkgComplaint complaint = DkgComplaint.FromBytes(suite, Assert.Single(ex.Complaints).ToBytes());
        Assert.True(Dkg.VerifyComplaint(session, complaint, commits[0].Commitment!, broadcasts[0]));

        // A complaint against an honest dealer, with the share it really sent (and signed), does not convict.
        Assert.False(Dkg.VerifyComplaint(session, honestEvidence, commits[1].Commitment!, broadcasts[1]));
        // Nor does one with a made-up share: the accused never signed it (before the fix, any wrong scalar convicted).
        var forged = new DkgComplaint(ids[2], ids[1], honestEvidence.EchoDigest, honestEvidence.Evidence + suite.ScalarOne, honestEvidence.Contribution, honestEvidence.SignatureR, honestEvidence.SignatureZ);
        Assert.False(Dkg.VerifyComplaint(session, forged, commits[1].Commitment!, broadcasts[1]));
        // Nor the cheater's signed message replayed by another receiver: the signature binds the recipient.
        var replayed = new DkgComplaint(ids[1], ids[0], complaint.EchoDigest, complaint.Evidence, complaint.Contribution, complaint.SignatureR, complaint.SignatureZ);
        Assert.False(Dkg.VerifyComplaint(session, replayed, commits[0].Commitment!, broadcasts[0]));
        // Inputs that do not belong together are refused, not judged.
        Assert.Throws<ArgumentException>(() => Dkg.VerifyComplaint(session, complaint, commits[1].Commitment!, broadcasts[0]));
        Assert.Throws<ArgumentException>(() => Dkg.VerifyComplaint(session, complaint, commits[0].Commitment!, broadcasts[1]));
    }

    // Complaints about the chain-code contribution, and round-two messages whose signature fails.
    [Theory]
    [MemberData(nameof(Suites))]
    public void BadContributionAndUnsignedSharesAreNamed(string name)
    {
        FrostCiphersuite suite = Suite(name);
        var rng = TestSeed.For(name);
        IReadOnlyList<Identifier> ids = TrustedDealer.Ids(suite, 3);
        var session = DkgSession.ForKeyGeneration(suite, Cluster.Sid("complaint-cc"), 2, ids);
        var commits = ids.Select(id => Dkg.Commit(session, id, null, rng)).ToList();
        var r1 = commits.Select(c => Dkg.Round1(c, [.. commits.Where(o => o != c).Select(o => o.Commitment!)])).ToList();
        var broadcasts = r1.Select(s => s.Package!).ToList();
        // Dealer 1 sends participant 3 a contribution other than the one it committed to, signed.
        IReadOnlyList<DkgRound2Package> fromCheat = DkgCheat.Deal(r1[0], broadcasts.Skip(1), rng, contributionFor: (to, c) => to.Equals(ids[2]) ? [.. c.Select(x => (byte)(x ^ 1))] : c);
        var r2 = r1.Skip(1).Select(s => Dkg.Round2(s, [.. broadcasts.Where(b => !b.Sender.Equals(s.Self))], rng)).ToList();
        DkgRound2Package honestFrom2 = r2[0].Outgoing.Single(p => p.Recipient.Equals(ids[2]));
        DkgRound2Package toThree = fromCheat.Single(p => p.Recipient.Equals(ids[2]));
        ThresholdProtocolException ex = Assert.Throws<ThresholdProtocolException>(() => Dkg.Finish(r2[1].Secret, [toThree, honestFrom2], rng));
        Assert.Equal(ThresholdFailure.CommitmentMismatch, ex.Failure);
        Assert.Equal([ids[0]], ex.Culprits);
        Assert.True(Dkg.VerifyComplaint(session, Assert.Single(ex.Complaints), commits[0].Commitment!, broadcasts[0]));

        // A message whose signature fails is refused naming its sender (no complaint: nothing attributable).
        var again = ids.Select(id => Dkg.Commit(session, id, null, rng)).ToList();
        var a1 = again.Select(c => Dkg.Round1(c, [.. again.Where(o => o != c).Select(o => o.Commitment!)])).ToList();
        var ab = a1.Select(s => s.Package!).ToList();
        var a2 = a1.Select(s => Dkg.Round2(s, [.. ab.Where(b => !b.Sender.Equals(s.Self))], rng)).ToList();
        DkgRound2Package good = a2[0].Outgoing.Single(p => p.Recipient.Equals(ids[2]));
        var badSig = new DkgRound2Package(good.Sender, good.Recipient, good.EchoDigest, good.Share, good.Contribution, good.SignatureR, good.SignatureZ + suite.ScalarOne);
        ex = Assert.Throws<ThresholdProtocolException>(() => Dkg.Finish(a2[2].Secret, [badSig, a2[1].Outgoing.Single(p => p.Recipient.Equals(ids[2]))], rng));
        Assert.Equal(ThresholdFailure.InvalidShareSignature, ex.Failure);
        Assert.Equal([ids[0]], ex.Culprits);
        Assert.Empty(ex.Complaints);
    }
}
