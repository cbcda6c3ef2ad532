using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Conclave.Crypto.Secp256k1;
using Conclave.Threshold.Dkls23;
using Conclave.Threshold.Frost;
using Xunit.Abstractions;

namespace Conclave.Threshold.Tests.Dkls23;

/// <summary>DKLs23 end to end in process: many signatures verified by libsecp256k1 and by @noble/curves.</summary>
public sealed class DklsSigningTests(ITestOutputHelper output)
{
    [Fact]
    public void OneSignatureVerifies()
    {
        var rng = TestSeed.For("one");
        Dictionary<Identifier, DklsKeyShare> keys = DklsHarness.Keygen(2, 3, rng);
        try
        {
            byte[] digest = SHA256.HashData("hello"u8);
            Identifier[] signers = [DklsHarness.Id(1), DklsHarness.Id(3)];
            DklsSignature sig = DklsHarness.Sign(keys, signers, DklsHarness.Sid("one"), digest, rng);
            Assert.True(EcdsaSecp256k1.Instance.Verify(keys[DklsHarness.Id(1)].Public.GroupPublicKey, digest, sig.Signature));

            // Informal timing (printed, never asserted): presign (rounds 1-3 of both signers) and online (sign + combine).
            const int runs = 20;
            TimeSpan presign = TimeSpan.Zero, online = TimeSpan.Zero;
            TimeSpan cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
            for (int k = 0; k < runs; k++)
            {
                var sw = Stopwatch.StartNew();
                Dictionary<Identifier, DklsPresignature> pre = DklsHarness.Presign(keys, signers, DklsHarness.Sid($"one-{k}"), rng);
                presign += sw.Elapsed;
                sw.Restart();
                _ = DklsHarness.Combine(keys, pre, digest);
                online += sw.Elapsed;
            }

            double cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalMilliseconds / runs;
            output.WriteLine($"2-of-3 in one process, both signers on one thread: wall presign {presign.TotalMilliseconds / runs:F2} ms, online {online.TotalMilliseconds / runs:F3} ms; process CPU {cpu:F2} ms per signature");
        }
        finally
        {
            DklsHarness.DisposeAll(keys);
        }
    }

    [Theory]
    [InlineData(2, 3, 1000)]
    [InlineData(3, 5, 1000)]
    public void ThousandSignaturesVerify(int t, int n, int count)
    {
        var rng = TestSeed.For($"{t}-of-{n}");
        Dictionary<Identifier, DklsKeyShare> keys = DklsHarness.Keygen(t, n, rng);
        try
        {
            byte[] pk = keys.Values.First().Public.GroupPublicKey;
            Identifier[] all = [.. keys.Keys.Order()];
            var cases = new List<object>();
            var seenR = new HashSet<string>();
            var sw = Stopwatch.StartNew();
            for (int k = 0; k < count; k++)
            {
                // Rotate through signer sets: every party signs with every other over the run.
                Identifier[] signers = [.. Enumerable.Range(0, t).Select(x => all[(k + (x * (1 + (k % (n - 1))))) % n]).Distinct()];
                if (signers.Length != t)
                {
                    signers = [.. all.Skip(k % (n - t + 1)).Take(t)];
                }

                byte[] digest = SHA256.HashData(BitConverter.GetBytes(k));
                DklsSignature sig = DklsHarness.Sign(keys, signers, DklsHarness.Sid($"sig-{t}-{n}-{k}"), digest, rng);
                Assert.True(EcdsaSecp256k1.Instance.Verify(pk, digest, sig.Signature));
                Assert.True(EcdsaSecp256k1.TryRecover(digest, sig.Signature, sig.RecoveryId, out Secp256k1Point rec) && rec.ToCompressed().AsSpan().SequenceEqual(pk));
                Assert.True(seenR.Add(Convert.ToHexString(sig.Signature, 0, 32)));
                cases.Add(new { publicKey = Convert.ToHexStringLower(pk), digest = Convert.ToHexStringLower(digest), signature = Convert.ToHexStringLower(sig.Signature), recoveryId = sig.RecoveryId });
            }

            sw.Stop();
            output.WriteLine($"{count} DKLs23 signatures {t}-of-{n} in process: {sw.Elapsed.TotalMilliseconds / count:F2} ms each (informal, not a benchmark)");
            JsonArray results = NodeInterop.Run("dkls23", cases);
            Assert.Equal(count, results.Count);
            foreach (JsonNode? r in results)
            {
                Assert.True(r!["ok"]!.GetValue<bool>(), r.ToJsonString());
                Assert.True(r["recovered"]!.GetValue<bool>(), r.ToJsonString());
            }
        }
        finally
        {
            DklsHarness.DisposeAll(keys);
        }
    }
}
