using System.Security.Cryptography;
using System.Text;
using Conclave.Crypto.Secp256k1;
using Conclave.Threshold.Dkls23;
using Conclave.Threshold.Dkls23.Ot;
using Conclave.Threshold.Dkls23.Vole;
using Conclave.Threshold.Dkls23.ZeroSharing;
using Conclave.Threshold.Frost;

namespace Conclave.Threshold.Tests.Dkls23;

/// <summary>
/// Known-answer tests from fixed seeds (independent of CONCLAVE_TEST_SEED): each sub-protocol's transcript and outputs
/// are hashed and pinned, so a refactor that changes a transcript is caught; each also checks the sub-protocol's
/// correctness relation, so the pinned value is a correct run and not just any run.
/// </summary>
public sealed class DklsKnownAnswerTests
{
    // Not TestSeed: a pinned vector (the transcript hashes pinned below are what these fixed seeds produce).
    private static DeterministicRandomSource Fixed(string label) => new(Encoding.UTF8.GetBytes("conclave-dkls23-kat:" + label));

    private static string Pin(params byte[][] parts)
    {
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (byte[] p in parts)
        {
            h.AppendData(BitConverter.GetBytes(p.Length));
            h.AppendData(p);
        }

        return Convert.ToHexStringLower(h.GetHashAndReset());
    }

    private static bool Bit(ReadOnlySpan<byte> bits, int i) => ((bits[i >> 3] >> (i & 7)) & 1) == 1;

    [Fact]
    public void EndemicBaseOt()
    {
        var rng = Fixed("base-ot");
        byte[] ctx = SHA256.HashData("base-ot ctx"u8);
        byte[] choices = new byte[16];
        rng.Fill(choices);
        byte[] sks = new byte[EndemicOt.Count * 32];
        byte[] msg = EndemicOt.ReceiverMessage(ctx, choices, rng, sks);
        var s = Secp256k1Scalar.Random(rng);
        byte[] seeds0 = new byte[EndemicOt.Count * 32], seeds1 = new byte[EndemicOt.Count * 32], chosen = new byte[EndemicOt.Count * 32];
        EndemicOt.SenderSeeds(ctx, s, msg, DklsHarness.Id(2), seeds0, seeds1);
        EndemicOt.ReceiverSeeds(ctx, choices, sks, Secp256k1Point.MultiplyGenerator(s), chosen);
        for (int k = 0; k < EndemicOt.Count; k++)
        {
            byte[] mine = chosen[(k * 32)..((k + 1) * 32)];
            byte[] want = (Bit(choices, k) ? seeds1 : seeds0)[(k * 32)..((k + 1) * 32)];
            byte[] other = (Bit(choices, k) ? seeds0 : seeds1)[(k * 32)..((k + 1) * 32)];
            Assert.Equal(want, mine);
            Assert.NotEqual(other, mine);
        }

        Assert.Equal("4c8120357874717aec8376e9eab2b7805a4ed2b0fcfc303d7527c6ca91dbf476", Pin(msg, Secp256k1Point.MultiplyGenerator(s).ToCompressed(), seeds0, seeds1));
    }

    private sealed record OtSetup(byte[] Seeds0, byte[] Seeds1, byte[] Delta, byte[] Chosen);

    private static OtSetup RandomOtSetup(DeterministicRandomSource rng)
    {
        byte[] s0 = new byte[SoftSpokenOt.Kappa * 32], s1 = new byte[SoftSpokenOt.Kappa * 32], delta = new byte[16], chosen = new byte[SoftSpokenOt.Kappa * 32];
        rng.Fill(s0);
        rng.Fill(s1);
        rng.Fill(delta);
        for (int k = 0; k < SoftSpokenOt.Kappa; k++)
        {
            (Bit(delta, k) ? s1 : s0).AsSpan(k * 32, 32).CopyTo(chosen.AsSpan(k * 32));
        }

        return new OtSetup(s0, s1, delta, chosen);
    }

    [Fact]
    public void SoftSpokenExtension()
    {
        var rng = Fixed("softspoken");
        OtSetup setup = RandomOtSetup(rng);
        byte[] ctx = SHA256.HashData("ote ctx"u8);
        byte[] x = new byte[SoftSpokenOt.Xi / 8], pad = new byte[SoftSpokenOt.PadRows / 8];
        rng.Fill(x);
        rng.Fill(pad);
        using var state = new SoftSpokenOt.ReceiverState();
        byte[] msg = SoftSpokenOt.Receive(setup.Seeds0, setup.Seeds1, ctx, x, pad, state);
        byte[] q = new byte[SoftSpokenOt.Rows * 16];
        SoftSpokenOt.Send(setup.Delta, setup.Chosen, ctx, msg, DklsHarness.Id(1), q);
        for (int i = 0; i < SoftSpokenOt.Rows; i++)
        {
            bool xi = Bit(state.Choices, i);
            for (int b = 0; b < 16; b++)
            {
                Assert.Equal(q[(i * 16) + b], (byte)(state.Rows16[(i * 16) + b] ^ (xi ? setup.Delta[b] : 0)));
            }
        }

        Assert.Equal("bc036264d42a9eefa85d4e8b62b0b10f9a2eb394064c200a06f5ce5e278fb974", Pin(msg, q));
    }

    [Fact]
    public void RandomVoleProtocol52()
    {
        var rng = Fixed("rvole");
        OtSetup setup = RandomOtSetup(rng);
        byte[] sid = DklsHarness.Sid("kat-rvole");
        Identifier alice = DklsHarness.Id(1), bob = DklsHarness.Id(2);
        using var state = new RandomVole.BobState();
        byte[] bobMsg = RandomVole.BobStart(setup.Seeds0, setup.Seeds1, sid, alice, bob, rng, state);
        Secp256k1Scalar[] a = [Secp256k1Scalar.Random(rng), Secp256k1Scalar.Random(rng)];
        var c = new Secp256k1Scalar[2];
        var d = new Secp256k1Scalar[2];
        byte[] aliceMsg = RandomVole.AliceRespond(setup.Delta, setup.Chosen, sid, alice, bob, bobMsg, a, rng, c);
        Secp256k1Scalar b = RandomVole.BobFinish(state, aliceMsg, alice, d);
        Assert.Equal(b * a[0], c[0] + d[0]);
        Assert.Equal(b * a[1], c[1] + d[1]);
        Assert.Equal("5beb0333e775cbd33dfc1be04ce61d835e32267510c8b52d3de675f7980a6dce", Pin(bobMsg, aliceMsg, c[0].ToBytes(), c[1].ToBytes(), d[0].ToBytes(), d[1].ToBytes(), b.ToBytes()));
    }

    [Fact]
    public void ZeroSharing()
    {
        var rng = Fixed("zero");
        Identifier[] ids = [DklsHarness.Id(1), DklsHarness.Id(2), DklsHarness.Id(4)];
        var seeds = new Dictionary<(int, int), byte[]>();
        byte[] setupSid = DklsHarness.Sid("kat-zero-setup");
        for (int i = 0; i < 3; i++)
        {
            for (int j = i + 1; j < 3; j++)
            {
                byte[] ci = new byte[32], cj = new byte[32], seed = new byte[32];
                rng.Fill(ci);
                rng.Fill(cj);
                ZeroShare.Seed(setupSid, ids[i], ci, ids[j], cj, seed);
                byte[] again = new byte[32];
                ZeroShare.Seed(setupSid, ids[j], cj, ids[i], ci, again);
                Assert.Equal(seed, again);
                seeds[(i, j)] = seeds[(j, i)] = seed;
            }
        }

        byte[] sid = DklsHarness.Sid("kat-zero-sign");
        var zetas = Enumerable.Range(0, 3).Select(i => ZeroShare.Share(ids[i], ids, p => seeds[(i, Array.IndexOf(ids, p))], sid)).ToArray();
        Assert.Equal(Secp256k1Scalar.Zero, zetas[0] + zetas[1] + zetas[2]);
        Assert.All(zetas, z => Assert.False(z.IsZero));
        Assert.Equal("92e01650e8fc85426a1214ce7c8813c872055e47261dae4c0e0b1d82d8f8f3b8", Pin([.. zetas.Select(z => z.ToBytes())]));
    }

    [Fact]
    public void FullSignatureTranscript()
    {
        var rng = Fixed("full");
        var transcript = new List<byte[]>();
        DklsMessage Record(DklsMessage m)
        {
            transcript.Add(m.ToBytes());
            return m;
        }

        using DealerOutput dealer = TrustedDealer.Generate(DklsHarness.K1, 2, 3, rng);
        Dictionary<Identifier, DklsKeyShare> keys = DklsHarness.Setup(dealer.KeyPackages, DklsHarness.Sid("kat-dkg"), DklsHarness.Sid("kat-setup"), rng, Record, Record);
        try
        {
            Identifier[] signers = [DklsHarness.Id(1), DklsHarness.Id(3)];
            byte[] digest = SHA256.HashData("DKLs23 known answer"u8);
            Dictionary<Identifier, DklsPresignature> pre = DklsHarness.Presign(keys, signers, DklsHarness.Sid("kat-sign"), rng, [0, 5], Record, Record);
            DklsSignature sig = DklsHarness.Combine(keys, pre, digest, [0, 5], s =>
            {
                transcript.Add(s.ToBytes());
                return s;
            });
            (byte[] child, _) = DklsHd.DerivePublic(keys[signers[0]].Public, [0, 5]);
            Assert.True(EcdsaSecp256k1.Instance.Verify(child, digest, sig.Signature));
            transcript.Add(sig.Signature);
            transcript.Add([(byte)sig.RecoveryId]);
            Assert.Equal("5b3c31cd150aa1e70a244bbcdd183d5658abd80b98c69fc4901a83134fdd13ab", Pin([.. transcript]));
        }
        finally
        {
            DklsHarness.DisposeAll(keys);
        }
    }
}
