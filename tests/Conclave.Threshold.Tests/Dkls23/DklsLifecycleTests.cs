using System.Security.Cryptography;
using Conclave.Crypto.Secp256k1;
using Conclave.Threshold.Dkls23;
using Conclave.Threshold.Frost;

namespace Conclave.Threshold.Tests.Dkls23;

/// <summary>Key generation from the FROST DKG, pairwise-setup checks, refresh, HD children and reshare.</summary>
public sealed class DklsLifecycleTests
{
    private static readonly Identifier P1 = DklsHarness.Id(1), P2 = DklsHarness.Id(2), P3 = DklsHarness.Id(3);

    private static void Verify(byte[] publicKey, byte[] digest, DklsSignature sig)
    {
        Assert.True(EcdsaSecp256k1.Instance.Verify(publicKey, digest, sig.Signature));
        Assert.True(EcdsaSecp256k1.TryRecover(digest, sig.Signature, sig.RecoveryId, out Secp256k1Point rec));
        Assert.Equal(publicKey, rec.ToCompressed());
    }

    [Fact]
    public void KeyFromTheFrostDkgSigns()
    {
        var rng = TestSeed.For("dkg");
        Identifier[] ids = [P1, P2, P3];
        byte[] dkgSid = DklsHarness.Sid("frost-dkg");
        Dictionary<Identifier, KeyPackage> frost = Cluster.Run(DkgSession.ForKeyGeneration(DklsHarness.K1, dkgSid, 2, ids), null, rng);
        Dictionary<Identifier, DklsKeyShare> keys = DklsHarness.Setup(frost.Values, dkgSid, DklsHarness.Sid("setup-after-dkg"), rng);
        try
        {
            byte[] pk = frost[P1].PublicKeyPackage.GroupPublicKey;
            Assert.Equal(pk, keys[P2].Public.GroupPublicKey);
            Assert.Equal(dkgSid, keys[P3].Public.DkgSessionId);
            Assert.Equal(frost[P1].PublicKeyPackage.ChainCode.ToArray(), keys[P1].Public.ChainCode.ToArray());
            byte[] digest = SHA256.HashData("after dkg"u8);
            Verify(pk, digest, DklsHarness.Sign(keys, [P2, P3], DklsHarness.Sid("dkg-sign"), digest, rng));
        }
        finally
        {
            DklsHarness.DisposeAll(keys);
            Cluster.DisposeAll(frost.Values);
        }
    }

    [Fact]
    public void PairwiseSetupChecksOpeningsDigestsAndPoints()
    {
        var rng = TestSeed.For("setup-checks");
        using DealerOutput d = TrustedDealer.Generate(DklsHarness.K1, 2, 3, rng);
        byte[] dkg = DklsHarness.Sid("dkg"), setup = DklsHarness.Sid("setup");

        DklsProtocolException e = Assert.Throws<DklsProtocolException>(() => DklsHarness.Setup(d.KeyPackages, dkg, setup, rng,
            tamper2: m => m.From.Equals(P3) && m.To.Equals(P1) ? m.WithBody([(byte)(m.Body[0] ^ 1), .. m.Body[1..]]) : m));
        Assert.Equal(DklsFailure.SeedCommitmentMismatch, e.Failure);
        Assert.Equal([P3], e.Culprits);

        e = Assert.Throws<DklsProtocolException>(() => DklsHarness.Setup(d.KeyPackages, dkg, setup, rng,
            tamper1: m => m.From.Equals(P2) && m.To.Equals(P1) ? m.WithBody([.. m.Body[..^1], (byte)(m.Body[^1] ^ 1)]) : m));
        Assert.Equal(DklsFailure.PublicKeyMismatch, e.Failure);
        Assert.Equal([P2], e.Culprits);

        e = Assert.Throws<DklsProtocolException>(() => DklsHarness.Setup(d.KeyPackages, dkg, setup, rng,
            tamper1: m =>
            {
                if (!m.From.Equals(P1) || !m.To.Equals(P2))
                {
                    return m;
                }

                byte[] b = (byte[])m.Body.Clone();
                b[0] = 0x05; // not a point encoding
                return m.WithBody(b);
            }));
        Assert.Equal(DklsFailure.MalformedMessage, e.Failure);
        Assert.Equal([P1], e.Culprits);

        // A DKLs23 key needs a frost-secp256k1 key.
        using DealerOutput ed = TrustedDealer.Generate(FrostCiphersuite.All.First(s => s.SchemeName == "frost-ed25519"), 2, 3, rng);
        Assert.Equal(DklsFailure.InvalidParticipant, Assert.Throws<DklsProtocolException>(() => DklsSetup.Start(ed.KeyPackages[0], dkg, setup, rng)).Failure);
    }

    private static Dictionary<Identifier, DklsKeyShare> Refresh(Dictionary<Identifier, DklsKeyShare> keys, string label, Func<DklsMessage, DklsMessage>? tamper = null)
    {
        var rng = TestSeed.For(label, "Refresh");
        var starts = keys.ToDictionary(kv => kv.Key, kv => DklsRefresh.Start(kv.Value, DklsHarness.Sid("refresh:" + label), rng));
        List<DklsMessage> mail = [.. starts.Values.SelectMany(s => s.Messages).Select(m => tamper is null ? m : tamper(m))];
        var setup = new Dictionary<Identifier, DklsSetupState>();
        var mail1 = new List<DklsMessage>();
        foreach ((Identifier id, (DklsRefreshState state, _)) in starts)
        {
            (DklsSetupState s, IReadOnlyList<DklsMessage> m) = DklsRefresh.Finish(state, DklsHarness.For(mail, id), DklsHarness.Sid("refresh-setup:" + label), rng);
            setup[id] = s;
            mail1.AddRange(m);
        }

        return DklsHarness.FinishSetup(setup, mail1);
    }

    [Fact]
    public void RefreshKeepsTheGroupKeyAndRefusesOlderPresignatures()
    {
        var rng = TestSeed.For("refresh");
        Dictionary<Identifier, DklsKeyShare> keys = DklsHarness.Keygen(2, 3, rng);
        Dictionary<Identifier, DklsKeyShare>? fresh = null;
        try
        {
            Dictionary<Identifier, DklsPresignature> old = DklsHarness.Presign(keys, [P1, P2], DklsHarness.Sid("before"), rng);
            fresh = Refresh(keys, "ok");
            byte[] pk = keys[P1].Public.GroupPublicKey;
            Assert.Equal(pk, fresh[P2].Public.GroupPublicKey);
            Assert.Equal(1u, fresh[P1].Public.Epoch);
            Assert.NotEqual(keys[P1].Public.GetVerifyingShare(P1), fresh[P1].Public.GetVerifyingShare(P1));
            Assert.Equal(fresh[P1].Public.GetVerifyingShare(P3), fresh[P3].Public.GetVerifyingShare(P3));

            byte[] digest = SHA256.HashData("after refresh"u8);
            Verify(pk, digest, DklsHarness.Sign(fresh, [P1, P3], DklsHarness.Sid("after"), digest, rng));
            DklsProtocolException e = Assert.Throws<DklsProtocolException>(() => DklsSigner.Sign(old[P1], fresh[P1], digest));
            Assert.Equal(DklsFailure.PresignatureRefused, e.Failure);

            // Old and new shares do not mix: a presignature of one pairwise setup is refused by another's key share.
            Dictionary<Identifier, DklsPresignature> other = DklsHarness.Presign(fresh, [P1, P2], DklsHarness.Sid("new"), rng);
            Assert.Equal(DklsFailure.PresignatureRefused, Assert.Throws<DklsProtocolException>(() => DklsSigner.Sign(other[P2], keys[P2], digest)).Failure);
        }
        finally
        {
            DklsHarness.DisposeAll(keys);
            if (fresh is not null)
            {
                DklsHarness.DisposeAll(fresh);
            }
        }
    }

    [Fact]
    public void RefreshRefusesBadSharesAndEquivocatedCommitments()
    {
        Dictionary<Identifier, DklsKeyShare> keys = DklsHarness.Keygen(2, 3, TestSeed.For("refresh-bad"));
        try
        {
            DklsProtocolException e = Assert.Throws<DklsProtocolException>(() => Refresh(keys, "bad-share",
                m => m.From.Equals(P2) && m.To.Equals(P3) ? m.WithBody([.. m.Body[..^1], (byte)(m.Body[^1] ^ 1)]) : m));
            Assert.Equal(DklsFailure.InvalidRefreshShare, e.Failure);
            Assert.Equal([P2], e.Culprits);

            // P2 sends P3 a different (self-consistent) polynomial: P3's share check passes, the setup digests differ.
            var other = Secp256k1Scalar.Random(TestSeed.For("equivocate"));
            e = Assert.Throws<DklsProtocolException>(() => Refresh(keys, "equivocate",
                m => m.From.Equals(P2) && m.To.Equals(P3)
                    ? m.WithBody([.. Secp256k1Point.MultiplyGenerator(other).ToCompressed(), .. (other * Secp256k1Scalar.FromUInt64(3)).ToBytes()])
                    : m));
            Assert.Equal(DklsFailure.PublicKeyMismatch, e.Failure);

            e = Assert.Throws<DklsProtocolException>(() => Refresh(keys, "short", m => m.From.Equals(P1) && m.To.Equals(P2) ? m.WithBody(m.Body[33..]) : m));
            Assert.Equal(DklsFailure.MalformedMessage, e.Failure);
            Assert.Equal([P1], e.Culprits);
        }
        finally
        {
            DklsHarness.DisposeAll(keys);
        }
    }

    [Fact]
    public void ChildSignaturesVerifyUnderTheCkdPubChildKey()
    {
        var rng = TestSeed.For("hd");
        using DealerOutput dealer = TrustedDealer.Generate(DklsHarness.K1, 2, 3, rng);
        Dictionary<Identifier, DklsKeyShare> keys = DklsHarness.Setup(dealer.KeyPackages, DklsHarness.Sid("hd-dkg"), DklsHarness.Sid("hd-setup"), rng);
        try
        {
            uint[] path = [0, 44, 60, 7];
            (byte[] child, byte[] chainCode) = DklsHd.DerivePublic(keys[P1].Public, path);

            // The same CKDpub as the FROST secp256k1 keys (whose derivation is checked against BIP-32 vectors).
            PublicKeyPackage frostChild = HdDerivation.DerivePath(dealer.PublicKeyPackage, path);
            Assert.Equal(frostChild.GroupPublicKey, child);
            Assert.Equal(frostChild.ChainCode.ToArray(), chainCode);

            byte[] digest = SHA256.HashData("child"u8);
            DklsSignature sig = DklsHarness.Sign(keys, [P3, P1], DklsHarness.Sid("hd-sign"), digest, rng, path);
            Verify(child, digest, sig);
            Assert.False(EcdsaSecp256k1.Instance.Verify(keys[P1].Public.GroupPublicKey, digest, sig.Signature));

            Assert.Equal(DklsFailure.PresignatureRefused, Assert.Throws<DklsProtocolException>(
                () => DklsSigner.Round1(keys[P1], DklsHarness.Sid("hardened"), [P1, P2], [HdDerivation.HardenedOffset], rng)).Failure);
        }
        finally
        {
            DklsHarness.DisposeAll(keys);
        }
    }

    [Fact]
    public void Reshare2Of3To3Of5ThroughTheFrostDkgEngine()
    {
        var rng = TestSeed.For("reshare");
        Dictionary<Identifier, DklsKeyShare> keys = DklsHarness.Keygen(2, 3, rng);
        Dictionary<Identifier, KeyPackage> old = keys.ToDictionary(kv => kv.Key, kv => kv.Value.ToFrostKeyPackage());
        Dictionary<Identifier, KeyPackage>? resharedFrost = null;
        Dictionary<Identifier, DklsKeyShare>? reshared = null;
        try
        {
            Identifier[] newIds = [.. Enumerable.Range(1, 5).Select(DklsHarness.Id)];
            byte[] sid = DklsHarness.Sid("reshare-dkg");
            var session = DkgSession.ForReshare(sid, old[P1].PublicKeyPackage, [P1, P3], 3, newIds);
            resharedFrost = Cluster.Run(session, old, rng);
            var setup = new Dictionary<Identifier, DklsSetupState>();
            var mail = new List<DklsMessage>();
            foreach ((Identifier id, KeyPackage k) in resharedFrost)
            {
                (DklsSetupState s, IReadOnlyList<DklsMessage> m) = DklsSetup.Start(k, sid, DklsHarness.Sid("reshare-setup"), rng, keys[P1].Public.Epoch + 1);
                setup[id] = s;
                mail.AddRange(m);
            }

            reshared = DklsHarness.FinishSetup(setup, mail);
            byte[] pk = keys[P1].Public.GroupPublicKey;
            Assert.Equal(pk, reshared[DklsHarness.Id(5)].Public.GroupPublicKey);
            Assert.Equal(3, reshared[P1].Public.Threshold);
            Assert.Equal(5, reshared[P1].Public.ParticipantCount);
            byte[] digest = SHA256.HashData("reshared"u8);
            Verify(pk, digest, DklsHarness.Sign(reshared, [DklsHarness.Id(2), DklsHarness.Id(4), DklsHarness.Id(5)], DklsHarness.Sid("reshared-sign"), digest, rng));

            Dictionary<Identifier, DklsPresignature> before = DklsHarness.Presign(keys, [P1, P2], DklsHarness.Sid("before-reshare"), rng);
            Assert.Equal(DklsFailure.PresignatureRefused, Assert.Throws<DklsProtocolException>(() => DklsSigner.Sign(before[P1], reshared[P1], digest)).Failure);
        }
        finally
        {
            DklsHarness.DisposeAll(keys);
            Cluster.DisposeAll(old.Values);
            if (resharedFrost is not null)
            {
                Cluster.DisposeAll(resharedFrost.Values);
            }

            if (reshared is not null)
            {
                DklsHarness.DisposeAll(reshared);
            }
        }
    }

    [Fact]
    public void KeySharesAndPublicKeysRoundTripAndRefuseTampering()
    {
        var rng = TestSeed.For("export");
        Dictionary<Identifier, DklsKeyShare> keys = DklsHarness.Keygen(2, 3, rng);
        Dictionary<Identifier, DklsKeyShare>? imported = null;
        try
        {
            DklsPublicKey pub = keys[P1].Public;
            byte[] pubBytes = pub.ToBytes();
            Assert.Equal(pubBytes, DklsPublicKey.FromBytes(pubBytes).ToBytes());

            imported = keys.ToDictionary(kv => kv.Key, kv =>
            {
                using Conclave.Crypto.Memory.SecretBuffer b = kv.Value.Export();
                return DklsKeyShare.Import(b.ReadOnlySpan);
            });
            byte[] digest = SHA256.HashData("imported"u8);
            Verify(pub.GroupPublicKey, digest, DklsHarness.Sign(imported, [P1, P3], DklsHarness.Sid("imported"), digest, rng));
            Assert.Equal(keys[P2].SetupSessionId, imported[P2].SetupSessionId);

            DklsFailure Refused(Action a) => Assert.Throws<DklsProtocolException>(a).Failure;

            // Public key: a verifying share moved off the polynomial, a truncation, a trailing byte.
            byte[] moved = (byte[])pubBytes.Clone();
            (Secp256k1Point.Parse(moved.AsSpan(9 + 32, 33)) + Secp256k1Point.Generator).ToCompressed().CopyTo(moved, 9 + 32);
            Assert.Equal(DklsFailure.MalformedMessage, Refused(() => DklsPublicKey.FromBytes(moved)));
            Assert.Equal(DklsFailure.MalformedMessage, Refused(() => DklsPublicKey.FromBytes(pubBytes.AsSpan(0, pubBytes.Length - 1))));
            Assert.Equal(DklsFailure.MalformedMessage, Refused(() => DklsPublicKey.FromBytes([.. pubBytes, 0])));

            using Conclave.Crypto.Memory.SecretBuffer exported = keys[P2].Export();
            byte[] bytes = exported.ReadOnlySpan.ToArray();
            int shareOffset = 1 + 4 + pubBytes.Length + 32;
            byte[] wrongShare = (byte[])bytes.Clone();
            wrongShare[shareOffset + 31] ^= 1;
            Assert.Equal(DklsFailure.MalformedMessage, Refused(() => DklsKeyShare.Import(wrongShare)));
            Assert.Equal(DklsFailure.MalformedMessage, Refused(() => DklsKeyShare.Import(bytes.AsSpan(0, bytes.Length - DklsKeyShare.PairwiseSize - 32))));
            Assert.Equal(DklsFailure.MalformedMessage, Refused(() => DklsKeyShare.Import([.. bytes, 0])));
        }
        finally
        {
            DklsHarness.DisposeAll(keys);
            if (imported is not null)
            {
                DklsHarness.DisposeAll(imported);
            }
        }
    }
}
