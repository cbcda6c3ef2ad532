using System.Security.Cryptography;
using Conclave.Crypto.Secp256k1;
using Conclave.Threshold.Dkls23;
using Conclave.Threshold.Dkls23.Vole;
using Conclave.Threshold.Frost;
using static Conclave.Testing.DklsTamper;

namespace Conclave.Threshold.Tests.Dkls23;

/// <summary>One real 2-of-3 DKLs23 key for the attack tests that do not change it.</summary>
public sealed class DklsKeyFixture : IDisposable
{
    public DklsKeyFixture() => Keys = DklsHarness.Keygen(2, 3, TestSeed.For("fixture", "DklsKeyFixture"));

    internal Dictionary<Identifier, DklsKeyShare> Keys { get; }

    public void Dispose() => DklsHarness.DisposeAll(Keys);
}

/// <summary>
/// A negative test per DKLs23 check, each by tampering with a real protocol message in flight (or a real final share),
/// asserting the typed failure, the culprit and the disposition.
/// </summary>
public sealed class DklsAttackTests(DklsKeyFixture fixture) : IClassFixture<DklsKeyFixture>
{
    // Signing round-one body: commitment ‖ Bob nonce ‖ u (κ × 88) ‖ x̃ ‖ t̃.
    private const int UOffset = 64;
    private const int XTildeOffset = 64 + (128 * 88);

    // Signing round-two body: R ‖ salt ‖ pk ‖ ψ ‖ Γ^u ‖ Γ^v ‖ Alice nonce ‖ τ ‖ μ ‖ ρ̃ (offsets in Conclave.Testing.DklsTamper).
    private static readonly Identifier P1 = DklsHarness.Id(1), P2 = DklsHarness.Id(2), P3 = DklsHarness.Id(3);
    private static readonly byte[] Digest = SHA256.HashData("attack"u8);

    private Dictionary<Identifier, DklsKeyShare> Keys => fixture.Keys;

    private static Func<DklsMessage, DklsMessage> From(Identifier culprit, Identifier victim, Action<byte[]> edit)
        => m =>
        {
            if (!m.From.Equals(culprit) || !m.To.Equals(victim))
            {
                return m;
            }

            byte[] body = (byte[])m.Body.Clone();
            edit(body);
            return m.WithBody(body);
        };

    private static DklsProtocolException Expect(DklsFailure failure, Identifier? culprit, Action run)
    {
        DklsProtocolException e = Assert.Throws<DklsProtocolException>(run);
        Assert.Equal(failure, e.Failure);
        if (culprit is null)
        {
            Assert.Empty(e.Culprits);
        }
        else
        {
            Assert.Equal([culprit], e.Culprits);
            Assert.Contains(culprit.ToString(), e.Message, StringComparison.Ordinal);
        }

        return e;
    }

    private void Presign(string sid, Func<DklsMessage, DklsMessage>? t1 = null, Func<DklsMessage, DklsMessage>? t2 = null, IReadOnlyList<Identifier>? signers = null, Dictionary<Identifier, DklsKeyShare>? keys = null,
        Func<DklsSignRound1State, Identifier, byte[], byte[]>? tb = null)
        => DklsHarness.Presign(keys ?? Keys, signers ?? [P1, P2], DklsHarness.Sid(sid), TestSeed.For(sid), null, t1, t2, tb);

    /// <summary>Every other signer's round-one broadcast commitment, as an honest relay delivers them.</summary>
    private static Dictionary<Identifier, byte[]> B(params DklsSignRound1State[] from) => from.ToDictionary(s => s.Identifier, s => s.Broadcast);

    [Fact]
    public void OtExtensionCheckValueFlipBansThePeer()
    {
        Dictionary<Identifier, DklsKeyShare> keys = DklsHarness.Keygen(2, 3, TestSeed.For("ban-key"));
        try
        {
            DklsProtocolException e = Expect(DklsFailure.OtExtensionConsistency, P2,
                () => Presign("ot-flip", t1: From(P2, P1, b => b[XTildeOffset] ^= 0x01), keys: keys));
            Assert.Equal(DklsDisposition.Ban, e.Disposition);
            Assert.Equal([P2], keys[P1].BannedPeers);
            Expect(DklsFailure.PeerBanned, null, () => DklsSigner.Round1(keys[P1], DklsHarness.Sid("after-ban"), [P1, P2], null, TestSeed.For("x")));

            // Other pairs still sign.
            DklsSignature sig = DklsHarness.Sign(keys, [P1, P3], DklsHarness.Sid("other-pair"), Digest, TestSeed.For("y"));
            Assert.True(EcdsaSecp256k1.Instance.Verify(keys[P1].Public.GroupPublicKey, Digest, sig.Signature));
        }
        finally
        {
            DklsHarness.DisposeAll(keys);
        }
    }

    [Fact]
    public void OtExtensionInconsistentChoiceColumnsAreCaught()
    {
        // Bob flips row 5 in half of the κ columns: a choice bit that is not the same across columns.
        Dictionary<Identifier, DklsKeyShare> keys = DklsHarness.Keygen(2, 3, TestSeed.For("ban-key-2"));
        try
        {
            Expect(DklsFailure.OtExtensionConsistency, P1, () => Presign("ot-columns", t1: From(P1, P2, b =>
            {
                for (int k = 0; k < 64; k++)
                {
                    b[UOffset + (k * 88)] ^= 0x20;
                }
            }), keys: keys));
        }
        finally
        {
            DklsHarness.DisposeAll(keys);
        }
    }

    [Fact]
    public void TamperedRvoleCheckValueOrValuesAreCaught()
    {
        Expect(DklsFailure.RvoleCheck, P2, () => Presign("rvole-rho", t2: From(P2, P1, b => b[^1] ^= 0x80)));
        Expect(DklsFailure.RvoleCheck, P1, () => Presign("rvole-tau", t2: From(P1, P2, b => b[TauOffset + 31] ^= 0x01)));
        Expect(DklsFailure.RvoleCheck, P2, () => Presign("rvole-mu", t2: From(P2, P1, b => b[^33] ^= 0x01)));
    }

    [Fact]
    public void EquivocatedRoundOneData_IsCaughtByTheEcho_AndItsSignedCopiesNameOnlyItsAuthor() => WithKeys(3, 3, "echo", keys =>
    {
        // P3 shows two faces: round one run twice under the same session, A to P1 and B to P2, each self-consistent.
        // Without the echo both honest parties finish round three with different R (the attack of issue 15).
        var rng = TestSeed.For("echo");
        byte[] sid = DklsHarness.Sid("echo");
        Identifier[] set = [P1, P2, P3];
        (DklsSignRound1State s1, IReadOnlyList<DklsMessage> m1) = DklsSigner.Round1(keys[P1], sid, set, null, rng);
        (DklsSignRound1State s2, IReadOnlyList<DklsMessage> m2) = DklsSigner.Round1(keys[P2], sid, set, null, rng);
        (DklsSignRound1State a, IReadOnlyList<DklsMessage> ma) = DklsSigner.Round1(keys[P3], sid, set, null, rng);
        (DklsSignRound1State b, IReadOnlyList<DklsMessage> mb) = DklsSigner.Round1(keys[P3], sid, set, null, rng);
        List<DklsMessage> toP3 = DklsHarness.For([.. m1, .. m2], P3);
        (DklsSignRound2State t1, IReadOnlyList<DklsMessage> r1) = DklsSigner.Round2(s1, DklsHarness.For([.. m2, .. ma], P1), B(s2, a), rng);
        (DklsSignRound2State t2, IReadOnlyList<DklsMessage> r2) = DklsSigner.Round2(s2, DklsHarness.For([.. m1, .. mb], P2), B(s1, b), rng);
        (DklsSignRound2State ta, IReadOnlyList<DklsMessage> ra) = DklsSigner.Round2(a, toP3, B(s1, s2), rng);
        (DklsSignRound2State tb, IReadOnlyList<DklsMessage> rb) = DklsSigner.Round2(b, toP3, B(s1, s2), rng);

        // The echo: each honest party's digest differs from the other's; the check names nobody and bans nobody.
        DklsProtocolException e1 = Expect(DklsFailure.Equivocation, null, () => DklsEcho.CheckEchoes(t1.Echo, new Dictionary<Identifier, byte[]> { [P2] = t2.Echo, [P3] = ta.Echo }));
        Assert.Equal(DklsDisposition.Abort, e1.Disposition);
        Expect(DklsFailure.Equivocation, null, () => DklsEcho.CheckEchoes(t2.Echo, new Dictionary<Identifier, byte[]> { [P1] = t1.Echo, [P3] = tb.Echo }));
        DklsEcho.CheckEchoes(t1.Echo, new Dictionary<Identifier, byte[]> { [P3] = ta.Echo }); // P3's face A agrees with P1
        Assert.Empty(keys[P1].BannedPeers);
        Assert.Empty(keys[P2].BannedPeers);

        // The copies each author sent (signed by it on the cluster) name P3 alone.
        Assert.Equal([P3], DklsEcho.Equivocators([(P1, s1.Broadcast), (P1, s1.Broadcast), (P2, s2.Broadcast), (P2, s2.Broadcast), (P3, a.Broadcast), (P3, b.Broadcast)]));
        Assert.Empty(DklsEcho.Equivocators([(P1, s1.Broadcast), (P1, s1.Broadcast), (P3, a.Broadcast), (P3, a.Broadcast)]));

        // What the echo prevents: without it, both honest parties would hold presignatures under different R.
        using DklsPresignature p1 = DklsSigner.Round3(t1, DklsHarness.For([.. r2, .. ra], P1));
        using DklsPresignature p2 = DklsSigner.Round3(t2, DklsHarness.For([.. r1, .. rb], P2));
        Assert.NotEqual(p1.Context.NoncePoint, p2.Context.NoncePoint);
        ta.Dispose();
        tb.Dispose();
    });

    /// <summary>Runs <paramref name="run"/> with a fresh t-of-n key (seeded from <paramref name="label"/>), disposed afterwards.</summary>
    private static void WithKeys(int t, int n, string label, Action<Dictionary<Identifier, DklsKeyShare>> run)
    {
        Dictionary<Identifier, DklsKeyShare> keys = DklsHarness.Keygen(t, n, TestSeed.For(label + "-key"));
        try
        {
            run(keys);
        }
        finally
        {
            DklsHarness.DisposeAll(keys);
        }
    }

    [Fact]
    public void AnOpeningThatDoesNotMatchTheBroadcastCommitment_NamesItsSender()
    {
        // P2 sends P1 a broadcast commitment that is not the one its opening matches (the pairwise commitment is honest).
        Expect(DklsFailure.CommitmentMismatch, P2, () => Presign("broadcast-flip", tb: (s, _, b) => s.Identifier.Equals(P2) ? [.. b[..^1], (byte)(b[^1] ^ 1)] : b));
        DklsProtocolException e = Assert.Throws<DklsProtocolException>(() => Presign("broadcast-short", tb: (s, _, b) => s.Identifier.Equals(P2) ? b[..31] : b));
        Assert.Equal(DklsFailure.MalformedMessage, e.Failure);
    }

    [Fact]
    public void ROpeningMustMatchItsCommitment()
    {
        Expect(DklsFailure.CommitmentMismatch, P2, () => Presign("open-salt", t2: From(P2, P1, b => b[SaltOffset] ^= 0x01)));
        Expect(DklsFailure.CommitmentMismatch, P2, () => Presign("open-r", t2: From(P2, P1, b => Secp256k1Point.Generator.ToCompressed().CopyTo(b, 0))));
    }

    [Fact]
    public void CommitmentReplayedFromAnotherSessionOrPairIsCaught()
    {
        // Replay P2's round-one commitment of an earlier session into a new one.
        byte[]? old = null;
        Presign("replay-src", t1: m =>
        {
            if (m.From.Equals(P2) && m.To.Equals(P1))
            {
                old = m.Body[..32];
            }

            return m;
        });
        Assert.NotNull(old);
        Expect(DklsFailure.CommitmentMismatch, P2, () => Presign("replay-dst", t1: From(P2, P1, b => old.CopyTo(b, 0))));

        // Another pair, in a 3-of-3 key.
        Dictionary<Identifier, DklsKeyShare> keys = DklsHarness.Keygen(3, 3, TestSeed.For("pair-key"));
        try
        {
            // P2's commitment made for P1 is delivered to P3 (P2 writes to P1 first).
            byte[]? toP1 = null;
            Expect(DklsFailure.CommitmentMismatch, P2, () => DklsHarness.Presign(keys, [P1, P2, P3], DklsHarness.Sid("pair"), TestSeed.For("pair"), null, m =>
            {
                if (m.From.Equals(P2) && m.To.Equals(P1))
                {
                    toP1 = m.Body[..32];
                }

                if (m.From.Equals(P2) && m.To.Equals(P3) && toP1 is not null)
                {
                    byte[] b = (byte[])m.Body.Clone();
                    toP1.CopyTo(b, 0);
                    return m.WithBody(b);
                }

                return m;
            }));
        }
        finally
        {
            DklsHarness.DisposeAll(keys);
        }
    }

    [Fact]
    public void GammaInconsistentWithRjIsCaught()
    {
        // P2 commits to, and opens, R' = R_2 + G: the opening check passes, the first Γ check cannot.
        var rng = TestSeed.For("gamma-u");
        byte[] sid = DklsHarness.Sid("gamma-u");
        (DklsSignRound1State s1, IReadOnlyList<DklsMessage> m1) = DklsSigner.Round1(Keys[P1], sid, [P1, P2], null, rng);
        (DklsSignRound1State s2, IReadOnlyList<DklsMessage> m2) = DklsSigner.Round1(Keys[P2], sid, [P1, P2], null, rng);
        Secp256k1Point shifted = s2.Peek().BigR + Secp256k1Point.Generator;
        byte[] salt = s2.Peek().Salt;
        DklsMessage forged1 = m2[0].WithBody([.. DklsSigner.Commit(s2.Peek().Bound, P2, P1, shifted, salt), .. m2[0].Body[32..]]);
        (DklsSignRound2State t1, _) = DklsSigner.Round2(s1, [forged1], new Dictionary<Identifier, byte[]> { [P2] = DklsSigner.CommitToAll(s2.Peek().Bound, P2, shifted, s2.Peek().Pk, salt) }, rng);
        (_, IReadOnlyList<DklsMessage> r2) = DklsSigner.Round2(s2, m1, B(s1), rng);
        byte[] body = (byte[])r2[0].Body.Clone();
        shifted.ToCompressed().CopyTo(body, 0);
        Expect(DklsFailure.GammaUCheck, P2, () => DklsSigner.Round3(t1, [r2[0].WithBody(body)]));
    }

    [Fact]
    public void GammaChecksRefuseTamperedGammaAndShiftedPk()
    {
        Expect(DklsFailure.GammaUCheck, P2, () => Presign("gamma-u2", t2: From(P2, P1, b => AddG(b, GammaUOffset))));
        Expect(DklsFailure.GammaVCheck, P2, () => Presign("gamma-v", t2: From(P2, P1, b => AddG(b, GammaVOffset))));
        // A party that shifts pk_j commits to the shifted value in its round-one broadcast (else the opening check catches it).
        Expect(DklsFailure.GammaVCheck, P1, () => Presign("shift-pk", t2: From(P1, P2, b => AddG(b, PkOffset)), tb: (s, _, b) => s.Identifier.Equals(P1)
            ? DklsSigner.CommitToAll(s.Peek().Bound, P1, s.Peek().BigR, s.Peek().Pk + Secp256k1Point.Generator, s.Peek().Salt) : b));
        Expect(DklsFailure.CommitmentMismatch, P1, () => Presign("shift-pk-open", t2: From(P1, P2, b => AddG(b, PkOffset))));
    }

    [Fact]
    public void PublicKeySharesMustAddUpToTheGroupKey()
    {
        // A party whose additive share is wrong but self-consistent (its zero-share seed with P2 is corrupted):
        // every Γ check passes, Σ pk_j ≠ PK does not.
        Dictionary<Identifier, DklsKeyShare> keys = DklsHarness.Keygen(2, 3, TestSeed.For("sum-key"));
        try
        {
            ReadOnlySpan<byte> seed = keys[P1].Pairwise(P2).Slice(DklsKeyShare.SeedOffset, 32);
            System.Runtime.InteropServices.MemoryMarshal.CreateSpan(ref System.Runtime.InteropServices.MemoryMarshal.GetReference(seed), 32)[0] ^= 1;
            Expect(DklsFailure.PublicKeySum, null, () => Presign("sum", keys: keys));
        }
        finally
        {
            DklsHarness.DisposeAll(keys);
        }
    }

    [Fact]
    public void SignersGivenDifferentPathsFailTheKeySumWithoutAFalseCulprit()
    {
        var rng = TestSeed.For("paths");
        byte[] sid = DklsHarness.Sid("paths");
        (DklsSignRound1State s1, IReadOnlyList<DklsMessage> m1) = DklsSigner.Round1(Keys[P1], sid, [P1, P2], [1], rng);
        (DklsSignRound1State s2, IReadOnlyList<DklsMessage> m2) = DklsSigner.Round1(Keys[P2], sid, [P1, P2], [2], rng);
        (DklsSignRound2State t1, IReadOnlyList<DklsMessage> r1) = DklsSigner.Round2(s1, m2, B(s2), rng);
        (DklsSignRound2State t2, IReadOnlyList<DklsMessage> r2) = DklsSigner.Round2(s2, m1, B(s1), rng);
        // The lowest signer adds its own path's tweak, so its view is consistent; the other's is not, and nobody is blamed.
        using DklsPresignature p1 = DklsSigner.Round3(t1, r2);
        Expect(DklsFailure.PublicKeySum, null, () => DklsSigner.Round3(t2, r1));
    }

    [Fact]
    public void NonceAtInfinityIsRefused()
    {
        // P2 commits to and opens R' = −R_1, so R = O.
        var rng = TestSeed.For("r-infinity");
        byte[] sid = DklsHarness.Sid("r-infinity");
        (DklsSignRound1State s1, IReadOnlyList<DklsMessage> m1) = DklsSigner.Round1(Keys[P1], sid, [P1, P2], null, rng);
        (DklsSignRound1State s2, IReadOnlyList<DklsMessage> m2) = DklsSigner.Round1(Keys[P2], sid, [P1, P2], null, rng);
        Secp256k1Point negR1 = -s1.Peek().BigR;
        byte[] salt = s2.Peek().Salt;
        (DklsSignRound2State t1, _) = DklsSigner.Round2(s1, [m2[0].WithBody([.. DklsSigner.Commit(s2.Peek().Bound, P2, P1, negR1, salt), .. m2[0].Body[32..]])],
            new Dictionary<Identifier, byte[]> { [P2] = DklsSigner.CommitToAll(s2.Peek().Bound, P2, negR1, s2.Peek().Pk, salt) }, rng);
        (_, IReadOnlyList<DklsMessage> r2) = DklsSigner.Round2(s2, m1, B(s1), rng);
        byte[] body = (byte[])r2[0].Body.Clone();
        negR1.ToCompressed().CopyTo(body, 0);
        Expect(DklsFailure.NonceIsIdentity, null, () => DklsSigner.Round3(t1, [r2[0].WithBody(body)]));
    }

    [Fact]
    public void MalformedFieldsAreTypedRefusalsNamingTheSender()
    {
        byte[] big = Enumerable.Repeat((byte)0xFF, 32).ToArray();
        Expect(DklsFailure.MalformedMessage, P2, () => Presign("psi-n", t2: From(P2, P1, b => big.CopyTo(b, PsiOffset))));
        byte[] order = Secp256k1Scalar.Order.ToByteArray(isUnsigned: true, isBigEndian: true);
        Expect(DklsFailure.MalformedMessage, P2, () => Presign("tau-n", t2: From(P2, P1, b => order.CopyTo(b, TauOffset))));
        Expect(DklsFailure.MalformedMessage, P2, () => Presign("infinity", t2: From(P2, P1, b => Array.Clear(b, GammaUOffset, 33))));
        byte[] offCurve = OffCurvePoint();
        Expect(DklsFailure.MalformedMessage, P2, () => Presign("off-curve", t2: From(P2, P1, b => offCurve.CopyTo(b, GammaVOffset))));
        Expect(DklsFailure.MalformedMessage, P2, () => Presign("short-1", t1: m => m.From.Equals(P2) && m.To.Equals(P1) ? m.WithBody(m.Body[..^1]) : m));
        Expect(DklsFailure.MalformedMessage, P2, () => Presign("long-2", t2: m => m.From.Equals(P2) && m.To.Equals(P1) ? m.WithBody([.. m.Body, 0]) : m));
        Expect(DklsFailure.MalformedMessage, P1, () => Presign("short-vole", t2: m => m.From.Equals(P1) && m.To.Equals(P2) ? m.WithBody(m.Body[..(VoleOffset + RandomVole.AliceMessageSize - 32)]) : m));
    }

    [Fact]
    public void WrongSessionOrReplayedMessagesAreDroppedAndTheSessionStillCompletes()
    {
        var rng = TestSeed.For("drop");
        byte[] sid = DklsHarness.Sid("drop");
        (DklsSignRound1State s1, IReadOnlyList<DklsMessage> m1) = DklsSigner.Round1(Keys[P1], sid, [P1, P2], null, rng);
        (DklsSignRound1State s2, IReadOnlyList<DklsMessage> m2) = DklsSigner.Round1(Keys[P2], sid, [P1, P2], null, rng);
        (_, IReadOnlyList<DklsMessage> stale) = DklsSigner.Round1(Keys[P2], DklsHarness.Sid("other"), [P1, P2], null, rng);

        DklsProtocolException e = Expect(DklsFailure.WrongSession, null, () => DklsSigner.Round2(s1, stale, B(s2), rng));
        Assert.Equal(DklsDisposition.Drop, e.Disposition);
        Assert.Equal(DklsDisposition.Drop, Assert.Throws<DklsProtocolException>(() => DklsSigner.Round2(s1, [m2[0], m2[0]], B(s2), rng)).Disposition);
        Assert.Equal(DklsDisposition.Drop, Assert.Throws<DklsProtocolException>(() => DklsSigner.Round2(s1, m1, B(s2), rng)).Disposition);

        // Nothing was consumed: the right messages complete the session.
        (DklsSignRound2State t1, IReadOnlyList<DklsMessage> r1) = DklsSigner.Round2(s1, m2, B(s2), rng);
        (DklsSignRound2State t2, IReadOnlyList<DklsMessage> r2) = DklsSigner.Round2(s2, m1, B(s1), rng);
        Assert.Equal(DklsDisposition.Drop, Assert.Throws<DklsProtocolException>(() => DklsSigner.Round3(t1, r1)).Disposition);
        var pre = new Dictionary<Identifier, DklsPresignature> { [P1] = DklsSigner.Round3(t1, r2), [P2] = DklsSigner.Round3(t2, r1) };
        DklsSignature sig = DklsHarness.Combine(Keys, pre, Digest);
        Assert.True(EcdsaSecp256k1.Instance.Verify(Keys[P1].Public.GroupPublicKey, Digest, sig.Signature));
    }

    [Fact]
    public void AMissingPeerMessageLeavesTheStateUsable()
    {
        Dictionary<Identifier, DklsKeyShare> keys = DklsHarness.Keygen(3, 3, TestSeed.For("missing-key"));
        try
        {
            var rng = TestSeed.For("missing");
            byte[] sid = DklsHarness.Sid("missing");
            var r1 = new[] { P1, P2, P3 }.ToDictionary(i => i, i => DklsSigner.Round1(keys[i], sid, [P1, P2, P3], null, rng));
            List<DklsMessage> toP1 = DklsHarness.For(r1.Values.SelectMany(x => x.Messages), P1);
            DklsProtocolException e = Expect(DklsFailure.InvalidSignerSet, null, () => DklsSigner.Round2(r1[P1].State, toP1.Take(1).ToList(), B(r1[P2].State, r1[P3].State), rng));
            Assert.Contains("no SignRound1 message yet from 3", e.Message, StringComparison.Ordinal);
            (_, IReadOnlyList<DklsMessage> out1) = DklsSigner.Round2(r1[P1].State, toP1, B(r1[P2].State, r1[P3].State), rng);
            Assert.Equal(2, out1.Count);
        }
        finally
        {
            DklsHarness.DisposeAll(keys);
        }
    }

    [Fact]
    public void ZeroOrOutOfRangeIdentifiersInHeadersAreDropped()
    {
        var rng = TestSeed.For("ids");
        (_, IReadOnlyList<DklsMessage> m) = DklsSigner.Round1(Keys[P2], DklsHarness.Sid("ids"), [P1, P2], null, rng);
        byte[] wire = m[0].ToBytes();
        int fromOffset = 3 + wire[2];
        Assert.Equal(P2, DklsMessage.FromBytes(wire).From);
        foreach (byte[] bad in new[] { new byte[32], Secp256k1Scalar.Order.ToByteArray(isUnsigned: true, isBigEndian: true), (Secp256k1Scalar.Order + 2).ToByteArray(isUnsigned: true, isBigEndian: true) })
        {
            byte[] w = (byte[])wire.Clone();
            bad.CopyTo(w, fromOffset);
            DklsProtocolException e = Assert.Throws<DklsProtocolException>(() => DklsMessage.FromBytes(w));
            Assert.Equal(DklsFailure.InvalidParticipant, e.Failure);
            Assert.Equal(DklsDisposition.Drop, e.Disposition);
        }

        Assert.Equal(DklsDisposition.Drop, Assert.Throws<DklsProtocolException>(() => DklsMessage.FromBytes(wire.AsSpan(0, 40))).Disposition);
        Assert.Throws<ArgumentException>(() => Identifier.FromInt(DklsHarness.K1, 0));
    }

    [Fact]
    public void SignerSetsOfTheWrongShapeAreRefused()
    {
        var rng = TestSeed.For("sets");
        byte[] sid = DklsHarness.Sid("sets");
        Expect(DklsFailure.InvalidSignerSet, null, () => DklsSigner.Round1(Keys[P1], sid, [P1], null, rng));
        Expect(DklsFailure.InvalidSignerSet, null, () => DklsSigner.Round1(Keys[P1], sid, [P1, P2, P3], null, rng));
        Expect(DklsFailure.InvalidSignerSet, null, () => DklsSigner.Round1(Keys[P1], sid, [P1, P1], null, rng));
        Expect(DklsFailure.InvalidSignerSet, null, () => DklsSigner.Round1(Keys[P1], sid, [P2, P3], null, rng));
        Expect(DklsFailure.InvalidSignerSet, null, () => DklsSigner.Round1(Keys[P1], sid, [P1, DklsHarness.Id(9)], null, rng));
        Identifier ed = Identifier.FromInt(FrostCiphersuite.All.First(s => s.SchemeName == "frost-ed25519"), 2);
        Expect(DklsFailure.InvalidParticipant, null, () => DklsSigner.Round1(Keys[P1], sid, [P1, ed], null, rng));
        Expect(DklsFailure.WrongSession, null, () => DklsSigner.Round1(Keys[P1], new byte[8], [P1, P2], null, rng));
    }

    [Fact]
    public void PresignaturesAreUsedOnceAndNeverRetargeted()
    {
        Dictionary<Identifier, DklsPresignature> pre = DklsHarness.Presign(Keys, [P1, P2], DklsHarness.Sid("once"), TestSeed.For("once"), [7]);
        _ = DklsSigner.Sign(pre[P1], Keys[P1], Digest, [7]);
        Expect(DklsFailure.PresignatureRefused, null, () => DklsSigner.Sign(pre[P1], Keys[P1], Digest, [7]));
        Expect(DklsFailure.PresignatureRefused, null, () => DklsSigner.Sign(pre[P2], Keys[P2], Digest, [8]));
        Assert.True(pre[P2].IsConsumed); // consumed whatever the outcome
        Expect(DklsFailure.PresignatureRefused, null, () => DklsSigner.Sign(pre[P2], Keys[P2], Digest, [7]));
    }

    [Fact]
    public void TamperedFinalSharesAreRefusedAndNoSignatureIsReleased()
    {
        Dictionary<Identifier, DklsPresignature> pre = DklsHarness.Presign(Keys, [P1, P2], DklsHarness.Sid("final-w"), TestSeed.For("final-w"));
        Expect(DklsFailure.InvalidSignature, null, () => DklsHarness.Combine(Keys, pre, Digest, null, s => s.From.Equals(P2) ? s.With(s.U, s.W + Secp256k1Scalar.One) : s));

        pre = DklsHarness.Presign(Keys, [P1, P2], DklsHarness.Sid("final-u"), TestSeed.For("final-u"));
        Expect(DklsFailure.InvalidSignature, null, () => DklsHarness.Combine(Keys, pre, Digest, null, s => s.From.Equals(P1) ? s.With(s.U + Secp256k1Scalar.One, s.W) : s));

        pre = DklsHarness.Presign(Keys, [P1, P2], DklsHarness.Sid("final-zero"), TestSeed.For("final-zero"));
        var shares = pre.Select(kv => DklsSigner.Sign(kv.Value, Keys[kv.Key], Digest)).ToList();
        shares[1] = shares[1].With(-shares[0].U, shares[1].W);
        Expect(DklsFailure.ZeroDenominator, null, () => DklsCombiner.Combine(pre[P1].Context, Digest, shares));

        // Encoded shares: a scalar ≥ n is a typed refusal naming the sender.
        byte[] enc = shares[0].ToBytes();
        Assert.Equal(shares[0].From, DklsSignatureShare.FromBytes(enc).From);
        Array.Fill(enc, (byte)0xFF, enc.Length - 32, 32);
        Expect(DklsFailure.MalformedMessage, shares[0].From, () => DklsSignatureShare.FromBytes(enc));
    }
}
