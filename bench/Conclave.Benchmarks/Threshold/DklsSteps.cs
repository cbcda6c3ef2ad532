using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using Conclave.Crypto.Randomness;
using Conclave.Crypto.Secp256k1;
using Conclave.Crypto.Signing;
using Conclave.Threshold.Dkls23;
using Conclave.Threshold.Dkls23.Ot;
using Conclave.Threshold.Dkls23.Vole;
using Conclave.Threshold.Frost;

namespace Conclave.Benchmarks.Threshold;

/// <summary>
/// DKLs23 in one process, broken down by sub-protocol: wall time and process CPU per operation (a Stopwatch harness,
/// not BenchmarkDotNet, so one run prints a before/after-comparable table in a few seconds on a loaded machine).
/// Run: dotnet run -c Release --project bench/Conclave.Benchmarks -- dkls [runs]
/// </summary>
internal static class DklsSteps
{
    private static readonly FrostCiphersuite K1 = FrostCiphersuite.All.First(s => s.SchemeName == "frost-secp256k1");

    internal static int Run(string[] args)
    {
        int runs = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 40;
        s_only = args.Length > 1 ? args[1] : null;
        IRandomSource rng = SystemRandomSource.Instance;
        Console.WriteLine($"DKLs23 in process, {runs} runs per row, load average {LoadAverage()}");
        Console.WriteLine($"{"row",-58} {"wall ms",10} {"cpu ms",10}");

        using DealerOutput dealt = TrustedDealer.Generate(K1, 2, 3, rng);
        Dictionary<Identifier, DklsKeyShare> keys = Setup(dealt.KeyPackages, rng, "warm");
        Identifier[] signers = [Identifier.FromInt(K1, 1), Identifier.FromInt(K1, 3)];
        byte[] digest = SHA256.HashData("bench"u8);
        int n = 0;

        using SoftwareSigningKey baseKey = SignatureSchemes.EcdsaSecp256k1.GenerateKey();
        Row("baseline: libsecp256k1 ECDSA sign", runs * 20, () => _ = baseKey.Sign(digest));
        Row("2-of-3 signature: rounds 1-3 + sign + combine (both signers)", runs, () =>
        {
            Dictionary<Identifier, DklsPresignature> pre = Presign(keys, signers, Sid("s" + n++), rng);
            var shares = pre.Select(kv => DklsSigner.Sign(kv.Value, keys[kv.Key], digest)).ToList();
            _ = DklsCombiner.Combine(pre.Values.First().Context, digest, shares);
        });
        Row("2-of-3 pairwise setup (all three parties)", Math.Max(3, runs / 8), () =>
        {
            foreach (DklsKeyShare k in Setup(dealt.KeyPackages, rng, "s" + n++).Values)
            {
                k.Dispose();
            }
        });

        // One direction of one pair: Bob = 3, Alice = 1.
        Identifier alice = signers[0], bob = signers[1];
        ReadOnlySpan<byte> pwBob = keys[bob].Pairwise(alice);
        byte[] seeds0 = pwBob.Slice(DklsKeyShare.ReceiverSeeds0Offset, EndemicOt.Count * 32).ToArray();
        byte[] seeds1 = pwBob.Slice(DklsKeyShare.ReceiverSeeds1Offset, EndemicOt.Count * 32).ToArray();
        ReadOnlySpan<byte> pwAlice = keys[alice].Pairwise(bob);
        byte[] delta = pwAlice.Slice(DklsKeyShare.DeltaOffset, 16).ToArray();
        byte[] sseeds = pwAlice.Slice(DklsKeyShare.SenderSeedsOffset, EndemicOt.Count * 32).ToArray();
        byte[] sid = Sid("pair");
        Secp256k1Scalar[] a = [Secp256k1Scalar.Random(rng), Secp256k1Scalar.Random(rng)];
        var c = new Secp256k1Scalar[2];
        var d = new Secp256k1Scalar[2];

        Row("VOLE step 1 BobStart (OT-ext receive + b)", runs, () =>
        {
            using var st = new RandomVole.BobState();
            _ = RandomVole.BobStart(seeds0, seeds1, sid, alice, bob, rng, st);
        });
        using var bs = new RandomVole.BobState();
        byte[] bobMsg = RandomVole.BobStart(seeds0, seeds1, sid, alice, bob, rng, bs);
        Row("VOLE step 2 AliceRespond (OT-ext send + check + τ)", runs, () =>
            _ = RandomVole.AliceRespond(delta, sseeds, sid, alice, bob, bobMsg, a, rng, c));
        Row("VOLE step 3 BobFinish (check + d)", runs, () =>
        {
            using var st = new RandomVole.BobState();
            byte[] m1 = RandomVole.BobStart(seeds0, seeds1, sid, alice, bob, rng, st);
            byte[] m2 = RandomVole.AliceRespond(delta, sseeds, sid, alice, bob, m1, a, rng, c);
            _ = RandomVole.BobFinish(st, m2, alice, d);
        }, subtract: "VOLE step 1 BobStart (OT-ext receive + b)|VOLE step 2 AliceRespond (OT-ext send + check + τ)");

        byte[] ctx = RandomVole.Context(sid, alice, bob, new byte[32]);
        byte[] pad = new byte[SoftSpokenOt.PadRows / 8];
        byte[] beta = new byte[SoftSpokenOt.Xi / 8];
        Row("  OT-ext receive (PRG 2×128 columns, transpose, check)", runs, () =>
        {
            using var st = new SoftSpokenOt.ReceiverState();
            _ = SoftSpokenOt.Receive(seeds0, seeds1, ctx, beta, pad, st);
        });
        using var rs = new SoftSpokenOt.ReceiverState();
        byte[] ext = SoftSpokenOt.Receive(seeds0, seeds1, ctx, beta, pad, rs);
        byte[] rows = new byte[SoftSpokenOt.Rows * 16];
        Row("  OT-ext send (PRG 128 columns, transpose, check)", runs, () =>
            SoftSpokenOt.Send(delta, sseeds, ctx, ext, bob, rows));
        var outp = new Secp256k1Scalar[SoftSpokenOt.Width];
        Row("  random-OT outputs: 512 rows × 3 scalars (one side)", runs, () =>
        {
            for (int j = 0; j < SoftSpokenOt.Xi; j++)
            {
                SoftSpokenOt.RowOutput(ctx, j, rows.AsSpan(j * 16, 16), outp);
            }
        });
        Secp256k1Scalar x = Secp256k1Scalar.Random(rng), y = Secp256k1Scalar.Random(rng);
        Row("  1,536 scalar multiplications (managed Montgomery)", runs, () =>
        {
            for (int j = 0; j < 1536; j++)
            {
                x *= y;
            }
        });

        // What an envelope signature over a whole round-two transcript costs (issue 15's lever "sign a hash of the body"):
        // the sender signs (Ed25519 hashes the transcript twice), the coordinator and the recipient verify (once each).
        using SoftwareSigningKey identity = SignatureSchemes.Ed25519.GenerateKey();
        byte[] idPublic = identity.PublicKey.ToArray();
        foreach (int size in new[] { 49_152, 11_264, 256 })
        {
            byte[] transcript = RandomNumberGenerator.GetBytes(size);
            byte[] sig = identity.Sign(transcript).Signature;
            string label = size.ToString("N0", CultureInfo.InvariantCulture);
            Row($"envelope {label} B: Ed25519 sign (libsodium)", runs * 5, () => _ = identity.Sign(transcript));
            Row($"envelope {label} B: Ed25519 verify", runs * 5, () => _ = Conclave.Crypto.Ed25519.Ed25519Signature.Instance.Verify(idPublic, transcript, sig));
            Row($"envelope {label} B: SHA-256 of the transcript", runs * 5, () => _ = SHA256.HashData(transcript));

            // The envelope code itself (docs/ARCHITECTURE.md "Envelope signatures"): format 1 signed the transcript, format 2
            // signs a label and the transcript's SHA-256, which a node also uses as the replay guard's key.
            using var node = Conclave.Node.Protocol.NodeIdentity.Generate(1);
            var e = new Conclave.Node.Rpc.Envelope
            {
                SessionId = Google.Protobuf.ByteString.CopyFrom(new byte[32]),
                Kind = "dkls.sign.message",
                Round = 2,
                Sender = 1,
                Recipients = { 2 },
                Payload = Google.Protobuf.ByteString.CopyFrom(RandomNumberGenerator.GetBytes(size)),
                IssuedAtUnixMs = 1,
            };
            byte[] nodePublic = node.IdentityPublicKey.ToArray();
            byte[] one = node.Sign(Conclave.Node.Protocol.EnvelopeSigner.Transcript(e));
            Row($"envelope {label} B: format 1 sign (transcript, Ed25519)", runs * 5, () => _ = node.Sign(Conclave.Node.Protocol.EnvelopeSigner.Transcript(e)));
            Row($"envelope {label} B: format 1 verify and replay key", runs * 5, () =>
            {
                byte[] t = Conclave.Node.Protocol.EnvelopeSigner.Transcript(e);
                _ = Conclave.Crypto.Ed25519.Ed25519Signature.Instance.Verify(nodePublic, t, one);
                _ = SHA256.HashData(Conclave.Node.Protocol.EnvelopeSigner.Transcript(e));
            });
            Conclave.Node.Protocol.EnvelopeSigner.Sign(e, node);
            Row($"envelope {label} B: format 2 sign (EnvelopeSigner.Sign)", runs * 5, () => _ = Conclave.Node.Protocol.EnvelopeSigner.Sign(e.Clone(), node));
            Row($"envelope {label} B: format 2 verify and replay key", runs * 5, () =>
            {
                byte[] digest = Conclave.Node.Protocol.EnvelopeSigner.Digest(e);
                _ = Conclave.Node.Protocol.EnvelopeSigner.Verify(e, digest, nodePublic);
            });
        }

        foreach (DklsKeyShare k in keys.Values)
        {
            k.Dispose();
        }

        return 0;
    }

    private static readonly Dictionary<string, double> s_wall = [];

    private static string? s_only;

    private static void Row(string name, int runs, Action op, string? subtract = null)
    {
        if (s_only is not null && !name.Contains(s_only, StringComparison.Ordinal))
        {
            return;
        }

        // Warm up past tiered compilation (tier 0, OSR, tier 1) so the rows compare steady-state code.
        var warm = Stopwatch.StartNew();
        for (int i = 0; i < 3 || (i < runs && warm.ElapsedMilliseconds < 1500); i++)
        {
            op();
        }

        GC.Collect();
        TimeSpan cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < runs; i++)
        {
            op();
        }

        double wall = sw.Elapsed.TotalMilliseconds / runs;
        double cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalMilliseconds / runs;
        s_wall[name] = cpu;
        string note = "";
        if (subtract is not null)
        {
            double rest = subtract.Split('|').Sum(s => s_wall.GetValueOrDefault(s));
            note = $"   (cpu minus steps 1+2: {cpu - rest:F2})";
        }

        Console.WriteLine($"{name,-58} {wall,10:F3} {cpu,10:F3}{note}");
    }

    private static string LoadAverage()
    {
        try
        {
            return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "?";
        }
    }

    private static byte[] Sid(string name) => System.Text.Encoding.UTF8.GetBytes(("bench:" + name).PadRight(16, '.'));

    private static Dictionary<Identifier, DklsKeyShare> Setup(IEnumerable<KeyPackage> frostKeys, IRandomSource random, string label)
    {
        var states = new Dictionary<Identifier, DklsSetupState>();
        var mail1 = new List<DklsMessage>();
        foreach (KeyPackage k in frostKeys)
        {
            (DklsSetupState s, IReadOnlyList<DklsMessage> m) = DklsSetup.Start(k, Sid("dkg"), Sid("setup:" + label), random);
            states[k.Identifier] = s;
            mail1.AddRange(m);
        }

        var mail2 = new List<DklsMessage>();
        foreach ((Identifier id, DklsSetupState s) in states)
        {
            mail2.AddRange(DklsSetup.Round2(s, [.. mail1.Where(m => m.To.Equals(id))]));
        }

        return states.ToDictionary(kv => kv.Key, kv => DklsSetup.Finish(kv.Value, [.. mail2.Where(m => m.To.Equals(kv.Key))]));
    }

    private static Dictionary<Identifier, DklsPresignature> Presign(
        Dictionary<Identifier, DklsKeyShare> keys, Identifier[] signers, byte[] sid, IRandomSource random)
    {
        var r1 = new Dictionary<Identifier, DklsSignRound1State>();
        var mail1 = new List<DklsMessage>();
        foreach (Identifier i in signers)
        {
            (DklsSignRound1State s, IReadOnlyList<DklsMessage> m) = DklsSigner.Round1(keys[i], sid, signers, null, random);
            r1[i] = s;
            mail1.AddRange(m);
        }

        var r2 = new Dictionary<Identifier, DklsSignRound2State>();
        var mail2 = new List<DklsMessage>();
        foreach (Identifier i in signers)
        {
            var inbox = r1.Values.Where(s => !s.Identifier.Equals(i)).ToDictionary(s => s.Identifier, s => s.Broadcast);
            (DklsSignRound2State s, IReadOnlyList<DklsMessage> m) = DklsSigner.Round2(r1[i], [.. mail1.Where(x => x.To.Equals(i))], inbox, random);
            r2[i] = s;
            mail2.AddRange(m);
        }

        return signers.ToDictionary(i => i, i => DklsSigner.Round3(r2[i], [.. mail2.Where(x => x.To.Equals(i))]));
    }
}
