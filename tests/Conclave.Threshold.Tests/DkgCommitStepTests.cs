using Conclave.Crypto;
using Conclave.Threshold.Frost;

namespace Conclave.Threshold.Tests;

/// <summary>The commit step's own inputs: which commitments round one accepts, and strict encodings of the new messages.</summary>
public sealed class DkgCommitStepTests
{
    public static TheoryData<string> Suites => new() { "frost-ed25519", "frost-secp256k1", "frost-taproot" };

    private static FrostCiphersuite Suite(string name) => FrostCiphersuite.TryGet(name, out FrostCiphersuite? s) ? s : throw new ArgumentException(name);

    [Theory]
    [MemberData(nameof(Suites))]
    public void RoundOneNeedsExactlyOneCommitmentFromEveryOtherDealer(string name)
    {
        FrostCiphersuite suite = Suite(name);
        var rng = TestSeed.For(name);
        IReadOnlyList<Identifier> ids = TrustedDealer.Ids(suite, 3);
        var session = DkgSession.ForKeyGeneration(suite, Cluster.Sid("commit-set"), 2, ids);
        var other = DkgSession.ForKeyGeneration(suite, Cluster.Sid("commit-set-other"), 2, ids);
        DkgCommitment c2 = Dkg.Commit(session, ids[1], null, rng).Commitment!;
        DkgCommitment c3 = Dkg.Commit(session, ids[2], null, rng).Commitment!;
        DkgCommitment outsider = Dkg.Commit(DkgSession.ForKeyGeneration(suite, Cluster.Sid("commit-set-4"), 2, TrustedDealer.Ids(suite, 4)), Identifier.FromInt(suite, 4), null, rng).Commitment!;

        // Missing: the package is not released, the missing dealer is named, and the state is consumed.
        DkgCommitSecret mine = Dkg.Commit(session, ids[0], null, rng);
        ThresholdProtocolException ex = Assert.Throws<ThresholdProtocolException>(() => Dkg.Round1(mine, [c2]));
        Assert.Equal(ThresholdFailure.UnexpectedParticipant, ex.Failure);
        Assert.Equal([ids[2]], ex.Culprits);
        Assert.Throws<InvalidOperationException>(() => Dkg.Round1(mine, [c2, c3]));

        // Duplicated, own echoed back, or from outside the session: named.
        ex = Assert.Throws<ThresholdProtocolException>(() => Dkg.Round1(Dkg.Commit(session, ids[0], null, rng), [c2, c2, c3]));
        Assert.Equal([ids[1]], ex.Culprits);
        DkgCommitSecret again = Dkg.Commit(session, ids[0], null, rng);
        ex = Assert.Throws<ThresholdProtocolException>(() => Dkg.Round1(again, [again.Commitment!, c2, c3]));
        Assert.Equal([ids[0]], ex.Culprits);
        ex = Assert.Throws<ThresholdProtocolException>(() => Dkg.Round1(Dkg.Commit(session, ids[0], null, rng), [c2, c3, outsider]));
        Assert.Equal([Identifier.FromInt(suite, 4)], ex.Culprits);

        // A commitment made for another session does not match the package revealed in this one.
        DkgCommitment c2Other = Dkg.Commit(other, ids[1], null, rng).Commitment!;
        Assert.Equal(c2.PackageHash.Length, c2Other.PackageHash.Length);
        Assert.False(c2.PackageHash.SequenceEqual(c2Other.PackageHash));

        // Complete set: the package comes out.
        DkgRound1Secret r1 = Dkg.Round1(Dkg.Commit(session, ids[0], null, rng), [c3, c2]);
        Assert.NotNull(r1.Package);
        r1.Dispose();
    }

    [Theory]
    [MemberData(nameof(Suites))]
    public void NewMessagesHaveStrictEncodings(string name)
    {
        FrostCiphersuite suite = Suite(name);
        var rng = TestSeed.For(name);
        IReadOnlyList<Identifier> ids = TrustedDealer.Ids(suite, 2);
        var session = DkgSession.ForKeyGeneration(suite, Cluster.Sid("commit-encoding"), 2, ids);
        DkgCommitSecret a = Dkg.Commit(session, ids[0], null, rng), b = Dkg.Commit(session, ids[1], null, rng);
        byte[] commitment = a.Commitment!.ToBytes();
        DkgCommitment parsed = DkgCommitment.FromBytes(suite, commitment);
        Assert.Equal(commitment, parsed.ToBytes());
        Assert.Throws<CryptoFormatException>(() => DkgCommitment.FromBytes(suite, commitment[..^1]));
        Assert.Throws<CryptoFormatException>(() => DkgCommitment.FromBytes(suite, [.. commitment, 0]));
        Assert.Throws<CryptoFormatException>(() => DkgCommitment.FromBytes(suite, b.Commitment!.ToBytes().AsSpan(0, 3)));
        // The signing key must be a valid group element.
        byte[] badKey = [.. commitment];
        badKey.AsSpan(badKey.Length - suite.ElementSizeInBytes).Fill(0xFF);
        Assert.Throws<CryptoFormatException>(() => DkgCommitment.FromBytes(suite, badKey));

        DkgRound1Secret ra = Dkg.Round1(a, [b.Commitment!]);
        DkgRound1Secret rb = Dkg.Round1(b, [parsed]);
        var (_, outgoing) = Dkg.Round2(ra, [rb.Package!], rng);
        using Conclave.Crypto.Memory.SecretBuffer share = Assert.Single(outgoing).Export();
        byte[] bytes = share.ReadOnlySpan.ToArray();
        using (DkgRound2Package back = DkgRound2Package.Import(suite, bytes))
        {
            using Conclave.Crypto.Memory.SecretBuffer again = back.Export();
            Assert.True(again.ReadOnlySpan.SequenceEqual(bytes));
        }

        // The contribution length byte sits after header, two ids, echo and share: only 0 or 32 is accepted.
        int lengthAt = 3 + (3 * suite.ScalarSizeInBytes) + 32;
        Assert.Equal(32, bytes[lengthAt]);
        byte[] badLength = [.. bytes];
        badLength[lengthAt] = 31;
        Assert.Throws<CryptoFormatException>(() => DkgRound2Package.Import(suite, badLength));
        Assert.Throws<CryptoFormatException>(() => DkgRound2Package.Import(suite, bytes[..^1]));
        rb.Dispose();
    }
}
