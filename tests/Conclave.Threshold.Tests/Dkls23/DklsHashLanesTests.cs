using System.Security.Cryptography;
using Conclave.Crypto.Secp256k1;
using Conclave.Testing;
using Conclave.Threshold.Dkls23.Internal;
using Conclave.Threshold.Dkls23.Ot;

namespace Conclave.Threshold.Tests.Dkls23;

/// <summary>
/// SHA-256 in lanes (<see cref="Sha256Lanes"/>) gives exactly SHA-256 of every message, at every length around the
/// padding boundaries and for batch sizes that leave lanes empty; the batched PRG and random-OT outputs equal the
/// one-at-a-time ones they replace (the known-answer tests pin the transcripts as well).
/// </summary>
public sealed class DklsHashLanesTests
{
    [Fact]
    public void Sha256Lanes_EqualsSha256_ForEveryLengthAndBatchSize()
    {
        var rng = TestSeed.For("sha256 lanes");
        int[] counts = [1, 2, 7, 8, 9, 16, 17];
        for (int length = 1; length <= Sha256Lanes.MaxLength + 20; length++)
        {
            int count = counts[length % counts.Length];
            byte[] messages = new byte[count * length];
            rng.Fill(messages);
            byte[] digests = new byte[count * 32];
            Sha256Lanes.HashMany(messages, length, digests);
            for (int i = 0; i < count; i++)
            {
                Assert.Equal(SHA256.HashData(messages.AsSpan(i * length, length)), digests.AsSpan(i * 32, 32).ToArray());
            }
        }

        Assert.Throws<ArgumentException>(() => Sha256Lanes.HashMany(new byte[10], 3, new byte[96]));
        Assert.Throws<ArgumentException>(() => Sha256Lanes.HashMany(new byte[9], 3, new byte[64]));
    }

    [Fact]
    public void BatchedPrgAndRowOutputs_EqualOneAtATime()
    {
        var rng = TestSeed.For("batched ot hashing");
        byte[] seeds = new byte[SoftSpokenOt.Kappa * 32], ctx = new byte[32];
        rng.Fill(seeds);
        rng.Fill(ctx);
        byte[] columns = new byte[SoftSpokenOt.Kappa * SoftSpokenOt.RowBytes];
        SoftSpokenOt.PrgColumns(seeds, ctx, columns);
        byte[] one = new byte[SoftSpokenOt.RowBytes];
        for (int k = 0; k < SoftSpokenOt.Kappa; k++)
        {
            SoftSpokenOt.Prg(seeds.AsSpan(k * 32, 32), ctx, k, one);
            Assert.Equal(one, columns.AsSpan(k * SoftSpokenOt.RowBytes, SoftSpokenOt.RowBytes).ToArray());
        }

        byte[] rows = new byte[SoftSpokenOt.RowChunk * 16];
        rng.Fill(rows);
        var batched = new Secp256k1Scalar[SoftSpokenOt.RowChunk * SoftSpokenOt.Width];
        var single = new Secp256k1Scalar[SoftSpokenOt.Width];
        foreach (int n in new[] { SoftSpokenOt.RowChunk, 3, 1 })
        {
            SoftSpokenOt.RowOutputs(ctx, 40, rows.AsSpan(0, n * 16), batched.AsSpan(0, n * SoftSpokenOt.Width));
            for (int i = 0; i < n; i++)
            {
                SoftSpokenOt.RowOutput(ctx, 40 + i, rows.AsSpan(i * 16, 16), single);
                Assert.Equal(single, batched.AsSpan(i * SoftSpokenOt.Width, SoftSpokenOt.Width).ToArray());
            }
        }
    }
}
