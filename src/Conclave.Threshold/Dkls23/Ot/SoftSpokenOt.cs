using System.Buffers.Binary;
using System.Security.Cryptography;
using Conclave.Crypto.Secp256k1;
using Conclave.Threshold.Dkls23.Internal;
using Conclave.Threshold.Frost;

namespace Conclave.Threshold.Dkls23.Ot;

/// <summary>
/// Correlated OT extension after SoftSpokenOT (Roy, ePrint 2022/192) with parameter k = 1, where the small-field
/// subspace VOLE of section 3 is one base OT per bit of Δ (the IKNP shape), and the malicious-security consistency
/// check of section 4 (a random linear combination over GF(2^128) of the extended rows, with the challenges derived
/// from the hash of the whole receiver message and the session context, checked in constant time).
/// <para>Roles follow the extension, not the base OTs: the extension <b>sender</b> holds Δ ∈ {0,1}^κ and the base-OT
/// seeds s^{Δ_k}_k; the extension <b>receiver</b> holds both seeds s^0_k, s^1_k (it was the base-OT sender).</para>
/// <para>One extension: the receiver expands t^b_k = PRG(s^b_k, ctx, k) ∈ {0,1}^M, sends u_k = t^0_k ⊕ t^1_k ⊕ x′ with
/// x′ = x ‖ pad (M = <see cref="Rows"/> = ξ + <see cref="PadRows"/> random pad rows that hide x in the check), and
/// (x̃, t̃) = (Σ χ_i·x′_i, Σ χ_i·T_i). The sender forms q_k = t^{Δ_k}_k ⊕ Δ_k·u_k, i.e. rows Q_i = T_i ⊕ x′_i·Δ, and
/// checks Σ χ_i·Q_i = t̃ + x̃·Δ. Random-OT outputs are v^b_i = H(ctx′, i, Q_i ⊕ b·Δ) and the receiver's w_i = H(ctx′, i, T_i),
/// each expanded to <see cref="Width"/> scalars. ctx′ adds the sender's fresh nonce, so a receiver replaying an old
/// message still gets fresh outputs.</para>
/// </summary>
internal static class SoftSpokenOt
{
    internal const int Kappa = EndemicOt.Count;

    /// <summary>ξ = |q| + 2·λ_s with λ_s = 128: the OTs one random VOLE consumes (DKLs23 section 5).</summary>
    internal const int Xi = 512;

    internal const int PadRows = 192;

    internal const int Rows = Xi + PadRows;

    internal const int RowBytes = Rows / 8;

    internal const int Width = 3;

    internal const int MessageSize = (Kappa * RowBytes) + 32;

    /// <summary>Receiver's secret state after its message: transposed rows T_i (16 bytes each) and x′.</summary>
    internal sealed class ReceiverState : IDisposable
    {
        internal readonly byte[] Rows16 = GC.AllocateArray<byte>(Rows * 16, pinned: true);
        internal readonly byte[] Choices = GC.AllocateArray<byte>(RowBytes, pinned: true);

        public void Dispose()
        {
            CryptographicOperations.ZeroMemory(Rows16);
            CryptographicOperations.ZeroMemory(Choices);
        }
    }

    /// <summary>
    /// Receiver: the extension message for choice bits <paramref name="choices"/> (ξ bits, 64 bytes).
    /// <paramref name="seeds0"/>/<paramref name="seeds1"/> are the κ base-OT seed pairs.
    /// </summary>
    internal static byte[] Receive(ReadOnlySpan<byte> seeds0, ReadOnlySpan<byte> seeds1, ReadOnlySpan<byte> ctx, ReadOnlySpan<byte> choices, ReadOnlySpan<byte> pad, ReceiverState state)
    {
        choices.CopyTo(state.Choices);
        pad.CopyTo(state.Choices.AsSpan(Xi / 8));
        byte[] msg = new byte[MessageSize];
        byte[] t0 = GC.AllocateArray<byte>(Kappa * RowBytes, pinned: true);
        byte[] t1 = GC.AllocateArray<byte>(Kappa * RowBytes, pinned: true);
        try
        {
            PrgColumns(seeds0, ctx, t0);
            PrgColumns(seeds1, ctx, t1);
            for (int k = 0; k < Kappa; k++)
            {
                ReadOnlySpan<byte> c0 = t0.AsSpan(k * RowBytes, RowBytes), c1 = t1.AsSpan(k * RowBytes, RowBytes);
                Span<byte> u = msg.AsSpan(k * RowBytes, RowBytes);
                for (int b = 0; b < RowBytes; b++)
                {
                    u[b] = (byte)(c0[b] ^ c1[b] ^ state.Choices[b]);
                }
            }

            Transpose(t0, state.Rows16);
            var chi = Challenges(ctx, msg.AsSpan(0, Kappa * RowBytes));
            Gf128Accumulator xt = default, tt = default;
            for (int i = 0; i < Rows; i++)
            {
                (ulong c0, ulong c1) = chi[i];
                ulong mask = unchecked(0UL - (ulong)((state.Choices[i >> 3] >> (i & 7)) & 1));
                xt.Add(c0 & mask, c1 & mask);
                tt.MulAdd(c0, c1, Lo(state.Rows16, i), Hi(state.Rows16, i));
            }

            Write(msg.AsSpan(Kappa * RowBytes, 16), xt.Reduce());
            Write(msg.AsSpan((Kappa * RowBytes) + 16, 16), tt.Reduce());
            return msg;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(t0);
            CryptographicOperations.ZeroMemory(t1);
        }
    }

    /// <summary>
    /// Sender: the rows Q_i (into <paramref name="rows16"/>) after the consistency check. A failed check throws
    /// <see cref="DklsFailure.OtExtensionConsistency"/> (disposition Ban) naming <paramref name="receiver"/>.
    /// </summary>
    internal static void Send(ReadOnlySpan<byte> delta, ReadOnlySpan<byte> seeds, ReadOnlySpan<byte> ctx, ReadOnlySpan<byte> message, Identifier receiver, Span<byte> rows16)
    {
        if (message.Length != MessageSize)
        {
            throw DklsErrors.Malformed(receiver, "otExtension", $"length {message.Length}, expected {MessageSize}");
        }

        byte[] q = GC.AllocateArray<byte>(Kappa * RowBytes, pinned: true);
        try
        {
            PrgColumns(seeds, ctx, q);
            for (int k = 0; k < Kappa; k++)
            {
                Span<byte> col = q.AsSpan(k * RowBytes, RowBytes);
                byte mask = unchecked((byte)(0 - ((delta[k >> 3] >> (k & 7)) & 1)));
                ReadOnlySpan<byte> u = message.Slice(k * RowBytes, RowBytes);
                for (int b = 0; b < RowBytes; b++)
                {
                    col[b] ^= (byte)(u[b] & mask);
                }
            }

            Transpose(q, rows16);
            var chi = Challenges(ctx, message[..(Kappa * RowBytes)]);
            Gf128Accumulator qt = default;
            for (int i = 0; i < Rows; i++)
            {
                (ulong c0, ulong c1) = chi[i];
                qt.MulAdd(c0, c1, Lo(rows16, i), Hi(rows16, i));
            }

            Gf128Accumulator expected = default;
            ReadOnlySpan<byte> xt = message.Slice(Kappa * RowBytes, 16), tt = message.Slice((Kappa * RowBytes) + 16, 16);
            expected.Add(BinaryPrimitives.ReadUInt64LittleEndian(tt), BinaryPrimitives.ReadUInt64LittleEndian(tt[8..]));
            expected.MulAdd(
                BinaryPrimitives.ReadUInt64LittleEndian(xt), BinaryPrimitives.ReadUInt64LittleEndian(xt[8..]),
                BinaryPrimitives.ReadUInt64LittleEndian(delta), BinaryPrimitives.ReadUInt64LittleEndian(delta[8..]));
            Span<byte> a = stackalloc byte[16];
            Span<byte> b2 = stackalloc byte[16];
            Write(a, qt.Reduce());
            Write(b2, expected.Reduce());
            if (!CryptographicOperations.FixedTimeEquals(a, b2))
            {
                throw DklsErrors.Check(DklsFailure.OtExtensionConsistency, receiver, "the OT-extension consistency check failed");
            }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(q);
        }
    }

    /// <summary>H(ctx′, i, row) expanded to <see cref="Width"/> scalars: the random-OT output of row i.</summary>
    internal static void RowOutput(ReadOnlySpan<byte> ctx2, int i, ReadOnlySpan<byte> row16, Span<Secp256k1Scalar> output)
    {
        Span<byte> input = stackalloc byte[1 + 32 + 4 + 1 + 16];
        Span<byte> digest = stackalloc byte[32];
        input[0] = 0x4F; // 'O': output domain
        ctx2.CopyTo(input.Slice(1, 32));
        BinaryPrimitives.WriteInt32BigEndian(input.Slice(33, 4), i);
        row16.CopyTo(input[38..]);
        for (int k = 0; k < Width; k++)
        {
            input[37] = (byte)k;
            SHA256.HashData(input, digest);

            // A digest ≥ n (probability below 2^-127) takes the slower reduction; the value is the same either way.
            if (!Secp256k1Scalar.TryFromBytes(digest, out output[k]))
            {
                output[k] = Secp256k1Scalar.FromBytesReduced(digest);
            }
        }

        CryptographicOperations.ZeroMemory(input);
        CryptographicOperations.ZeroMemory(digest);
    }

    /// <summary>The rows hashed together by <see cref="RowOutputs"/>: eight rows, three full lanes of SHA-256.</summary>
    internal const int RowChunk = 8;

    private const int RowInputSize = 1 + 32 + 4 + 1 + 16;

    /// <summary>
    /// <see cref="RowOutput"/> for the rows <paramref name="first"/>, <paramref name="first"/> + 1, … (at most
    /// <see cref="RowChunk"/> rows of 16 bytes in <paramref name="rows16"/>), <see cref="Width"/> scalars per row into
    /// <paramref name="output"/>: the same values, the SHA-256 calls made eight at a time (<see cref="Sha256Lanes"/>).
    /// </summary>
    internal static void RowOutputs(ReadOnlySpan<byte> ctx2, int first, ReadOnlySpan<byte> rows16, Span<Secp256k1Scalar> output)
    {
        int n = rows16.Length / 16;
        if (n > RowChunk || rows16.Length != n * 16 || output.Length != n * Width || ctx2.Length != 32)
        {
            throw new ArgumentException("at most eight 16-byte rows, Width scalars each, and a 32-byte context");
        }

        Span<byte> inputs = stackalloc byte[RowChunk * Width * RowInputSize];
        Span<byte> digests = stackalloc byte[RowChunk * Width * 32];
        inputs = inputs[..(n * Width * RowInputSize)];
        digests = digests[..(n * Width * 32)];
        try
        {
            for (int i = 0; i < n; i++)
            {
                for (int k = 0; k < Width; k++)
                {
                    Span<byte> input = inputs.Slice(((i * Width) + k) * RowInputSize, RowInputSize);
                    input[0] = 0x4F; // 'O': output domain
                    ctx2.CopyTo(input.Slice(1, 32));
                    BinaryPrimitives.WriteInt32BigEndian(input.Slice(33, 4), first + i);
                    input[37] = (byte)k;
                    rows16.Slice(i * 16, 16).CopyTo(input[38..]);
                }
            }

            Sha256Lanes.HashMany(inputs, RowInputSize, digests);
            for (int m = 0; m < n * Width; m++)
            {
                ReadOnlySpan<byte> digest = digests.Slice(m * 32, 32);

                // A digest ≥ n (probability below 2^-127) takes the slower reduction; the value is the same either way.
                if (!Secp256k1Scalar.TryFromBytes(digest, out output[m]))
                {
                    output[m] = Secp256k1Scalar.FromBytesReduced(digest);
                }
            }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(inputs);
            CryptographicOperations.ZeroMemory(digests);
        }
    }

    internal static ulong Lo(ReadOnlySpan<byte> rows16, int i) => BinaryPrimitives.ReadUInt64LittleEndian(rows16.Slice(i * 16, 8));

    internal static ulong Hi(ReadOnlySpan<byte> rows16, int i) => BinaryPrimitives.ReadUInt64LittleEndian(rows16.Slice((i * 16) + 8, 8));

    private static void Write(Span<byte> dst16, (ulong Lo, ulong Hi) v)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(dst16, v.Lo);
        BinaryPrimitives.WriteUInt64LittleEndian(dst16[8..], v.Hi);
    }

    /// <summary>PRG(seed, ctx, k): SHA-256 in counter mode, <see cref="RowBytes"/> bytes.</summary>
    internal static void Prg(ReadOnlySpan<byte> seed, ReadOnlySpan<byte> ctx, int k, Span<byte> output)
    {
        Span<byte> input = stackalloc byte[1 + 32 + 32 + 4 + 1];
        Span<byte> block = stackalloc byte[32];
        input[0] = 0x50; // 'P': PRG domain
        seed.CopyTo(input.Slice(1, 32));
        ctx.CopyTo(input.Slice(33, 32));
        BinaryPrimitives.WriteInt32BigEndian(input.Slice(65, 4), k);
        for (int blk = 0, off = 0; off < output.Length; blk++, off += 32)
        {
            input[69] = (byte)blk;
            SHA256.HashData(input, block);
            block[..Math.Min(32, output.Length - off)].CopyTo(output[off..]);
        }

        CryptographicOperations.ZeroMemory(input);
        CryptographicOperations.ZeroMemory(block);
    }

    private const int PrgInputSize = 1 + 32 + 32 + 4 + 1;

    private const int PrgBlocks = (RowBytes + 31) / 32;

    /// <summary>
    /// <see cref="Prg"/> for every column k &lt; κ with seed k of <paramref name="seeds"/>, column k at
    /// <c>k·RowBytes</c> of <paramref name="columns"/>: the same bytes, the SHA-256 blocks of eight columns hashed together.
    /// </summary>
    internal static void PrgColumns(ReadOnlySpan<byte> seeds, ReadOnlySpan<byte> ctx, Span<byte> columns)
    {
        const int Chunk = 8;
        Span<byte> inputs = stackalloc byte[Chunk * PrgBlocks * PrgInputSize];
        Span<byte> digests = stackalloc byte[Chunk * PrgBlocks * 32];
        try
        {
            for (int k0 = 0; k0 < Kappa; k0 += Chunk)
            {
                for (int c = 0; c < Chunk; c++)
                {
                    for (int blk = 0; blk < PrgBlocks; blk++)
                    {
                        Span<byte> input = inputs.Slice(((c * PrgBlocks) + blk) * PrgInputSize, PrgInputSize);
                        input[0] = 0x50; // 'P': PRG domain
                        seeds.Slice((k0 + c) * 32, 32).CopyTo(input.Slice(1, 32));
                        ctx.CopyTo(input.Slice(33, 32));
                        BinaryPrimitives.WriteInt32BigEndian(input.Slice(65, 4), k0 + c);
                        input[69] = (byte)blk;
                    }
                }

                Sha256Lanes.HashMany(inputs, PrgInputSize, digests);
                for (int c = 0; c < Chunk; c++)
                {
                    Span<byte> col = columns.Slice((k0 + c) * RowBytes, RowBytes);
                    for (int blk = 0, off = 0; off < RowBytes; blk++, off += 32)
                    {
                        digests.Slice(((c * PrgBlocks) + blk) * 32, Math.Min(32, RowBytes - off)).CopyTo(col[off..]);
                    }
                }
            }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(inputs);
            CryptographicOperations.ZeroMemory(digests);
        }
    }

    /// <summary>χ_1..χ_M ∈ GF(2^128) from SHA-256(ctx ‖ H(whole u matrix)) in counter mode (Fiat–Shamir).</summary>
    private static (ulong, ulong)[] Challenges(ReadOnlySpan<byte> ctx, ReadOnlySpan<byte> u)
    {
        byte[] seed;
        using (var h = new DklsHash("softspoken/challenge"))
        {
            seed = h.Add(ctx).Add(u).Finish();
        }

        var chi = new (ulong, ulong)[Rows];
        byte[] inputs = new byte[Rows / 2 * 36];
        byte[] blocks = new byte[Rows / 2 * 32];
        for (int i = 0; i < Rows; i += 2)
        {
            Span<byte> input = inputs.AsSpan(i / 2 * 36, 36);
            seed.CopyTo(input);
            BinaryPrimitives.WriteInt32BigEndian(input[32..], i);
        }

        Sha256Lanes.HashMany(inputs, 36, blocks);
        for (int i = 0; i < Rows; i += 2)
        {
            ReadOnlySpan<byte> block = blocks.AsSpan(i / 2 * 32, 32);
            chi[i] = (BinaryPrimitives.ReadUInt64LittleEndian(block), BinaryPrimitives.ReadUInt64LittleEndian(block[8..]));
            chi[i + 1] = (BinaryPrimitives.ReadUInt64LittleEndian(block[16..]), BinaryPrimitives.ReadUInt64LittleEndian(block[24..]));
        }

        return chi;
    }

    /// <summary>
    /// κ columns of M bits into M rows of κ = 128 bits (row i, bit k = column k, bit i): per 64 columns and 64 rows, a
    /// 64 × 64 bit-matrix transpose by six rounds of masked swaps (Hacker's Delight, 2nd ed., section 7-3), instead of
    /// one shift per bit. No branch or memory access depends on the bits.
    /// </summary>
    private static void Transpose(ReadOnlySpan<byte> columns, Span<byte> rows16)
    {
        Span<ulong> block = stackalloc ulong[64];
        try
        {
            for (int half = 0; half < Kappa / 64; half++)
            {
                for (int w = 0; w < RowBytes / 8; w++)
                {
                    for (int k = 0; k < 64; k++)
                    {
                        block[k] = BinaryPrimitives.ReadUInt64LittleEndian(columns.Slice((((half * 64) + k) * RowBytes) + (w * 8), 8));
                    }

                    Transpose64(block);
                    for (int b = 0; b < 64; b++)
                    {
                        BinaryPrimitives.WriteUInt64LittleEndian(rows16.Slice((((w * 64) + b) * 16) + (half * 8), 8), block[b]);
                    }
                }
            }
        }
        finally
        {
            block.Clear();
        }
    }

    /// <summary>In place: bit b of a[k] becomes bit k of a[b].</summary>
    private static void Transpose64(Span<ulong> a)
    {
        ReadOnlySpan<ulong> masks = [0x00000000FFFFFFFFUL, 0x0000FFFF0000FFFFUL, 0x00FF00FF00FF00FFUL, 0x0F0F0F0F0F0F0F0FUL, 0x3333333333333333UL, 0x5555555555555555UL];
        for (int round = 0, j = 32; round < 6; round++, j >>= 1)
        {
            ulong m = masks[round];
            for (int k = 0; k < 64; k++)
            {
                if ((k & j) != 0)
                {
                    continue;
                }

                ulong t = ((a[k] >> j) ^ a[k + j]) & m;
                a[k + j] ^= t;
                a[k] ^= t << j;
            }
        }
    }
}
