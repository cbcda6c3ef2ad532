using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using System.Security.Cryptography;

namespace Conclave.Threshold.Dkls23.Internal;

/// <summary>
/// SHA-256 (FIPS 180-4) of many short messages of one length, eight at a time: each 32-bit lane of a 256-bit vector
/// carries one message through the same compression function, so the digests are exactly SHA-256 of each message. The
/// OT extension and the random-OT outputs hash thousands of independent 36–70 byte inputs per signature, where a call
/// into the platform's SHA-256 costs more than the compression itself. No branch or memory access depends on the
/// message bytes (SHA-256 has neither), and the scratch buffers are zeroed: the messages may be secret (PRG seeds,
/// extended OT rows). Without hardware vectors, or for messages longer than <see cref="MaxLength"/>, every message goes
/// to <see cref="SHA256.HashData(ReadOnlySpan{byte}, Span{byte})"/> one by one.
/// </summary>
internal static class Sha256Lanes
{
    internal const int Lanes = 8;

    /// <summary>The longest message hashed in lanes (four blocks with the padding).</summary>
    internal const int MaxLength = (4 * 64) - 9;

    private static readonly uint[] s_k =
    [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ];

    private static readonly uint[] s_h0 = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

    /// <summary>
    /// SHA-256 of each of the <c>messages.Length / length</c> messages laid end to end in <paramref name="messages"/>,
    /// the digests end to end in <paramref name="digests"/> (32 bytes each, exactly that many).
    /// </summary>
    internal static void HashMany(ReadOnlySpan<byte> messages, int length, Span<byte> digests)
    {
        if (length <= 0 || messages.Length % length != 0 || digests.Length != messages.Length / length * 32)
        {
            throw new ArgumentException("messages must be whole messages of the given length and digests 32 bytes per message");
        }

        int count = messages.Length / length;
        if (!Vector256.IsHardwareAccelerated || length > MaxLength)
        {
            for (int i = 0; i < count; i++)
            {
                SHA256.HashData(messages.Slice(i * length, length), digests.Slice(i * 32, 32));
            }

            return;
        }

        int blocks = (length + 9 + 63) / 64;
        int laneBytes = blocks * 64;
        Span<byte> padded = stackalloc byte[Lanes * 4 * 64];
        Span<Vector256<uint>> w = stackalloc Vector256<uint>[64];
        Span<Vector256<uint>> state = stackalloc Vector256<uint>[8];
        try
        {
            for (int first = 0; first < count; first += Lanes)
            {
                int n = Math.Min(Lanes, count - first);
                padded.Clear();
                for (int lane = 0; lane < n; lane++)
                {
                    Span<byte> p = padded.Slice(lane * laneBytes, laneBytes);
                    messages.Slice((first + lane) * length, length).CopyTo(p);
                    p[length] = 0x80;
                    BinaryPrimitives.WriteUInt64BigEndian(p[^8..], (ulong)length * 8);
                }

                for (int i = 0; i < 8; i++)
                {
                    state[i] = Vector256.Create(s_h0[i]);
                }

                for (int b = 0; b < blocks; b++)
                {
                    for (int t = 0; t < 16; t++)
                    {
                        int o = (b * 64) + (t * 4);
                        w[t] = Vector256.Create(
                            Word(padded, o), Word(padded, laneBytes + o), Word(padded, (2 * laneBytes) + o), Word(padded, (3 * laneBytes) + o),
                            Word(padded, (4 * laneBytes) + o), Word(padded, (5 * laneBytes) + o), Word(padded, (6 * laneBytes) + o), Word(padded, (7 * laneBytes) + o));
                    }

                    Compress(state, w);
                }

                for (int lane = 0; lane < n; lane++)
                {
                    Span<byte> d = digests.Slice((first + lane) * 32, 32);
                    for (int i = 0; i < 8; i++)
                    {
                        BinaryPrimitives.WriteUInt32BigEndian(d.Slice(i * 4, 4), state[i].GetElement(lane));
                    }
                }
            }
        }
        finally
        {
            padded.Clear();
            w.Clear();
            state.Clear();
        }
    }

    private static uint Word(ReadOnlySpan<byte> padded, int offset) => BinaryPrimitives.ReadUInt32BigEndian(padded.Slice(offset, 4));

    private static void Compress(Span<Vector256<uint>> state, Span<Vector256<uint>> w)
    {
        for (int t = 16; t < 64; t++)
        {
            Vector256<uint> w15 = w[t - 15], w2 = w[t - 2];
            w[t] = w[t - 16] + Small0(w15) + w[t - 7] + Small1(w2);
        }

        Vector256<uint> a = state[0], b = state[1], c = state[2], d = state[3], e = state[4], f = state[5], g = state[6], h = state[7];
        for (int t = 0; t < 64; t++)
        {
            Vector256<uint> t1 = h + Big1(e) + Vector256.ConditionalSelect(e, f, g) + Vector256.Create(s_k[t]) + w[t];
            Vector256<uint> t2 = Big0(a) + Vector256.ConditionalSelect(a ^ b, c, a);
            h = g;
            g = f;
            f = e;
            e = d + t1;
            d = c;
            c = b;
            b = a;
            a = t1 + t2;
        }

        state[0] += a;
        state[1] += b;
        state[2] += c;
        state[3] += d;
        state[4] += e;
        state[5] += f;
        state[6] += g;
        state[7] += h;
    }

    // Σ0, Σ1, σ0, σ1 of FIPS 180-4 section 4.1.2, one rotate instruction each where AVX-512VL has it.

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<uint> Big0(Vector256<uint> x) => Avx512F.VL.IsSupported
        ? Avx512F.VL.RotateRight(x, 2) ^ Avx512F.VL.RotateRight(x, 13) ^ Avx512F.VL.RotateRight(x, 22)
        : Rotr(x, 2) ^ Rotr(x, 13) ^ Rotr(x, 22);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<uint> Big1(Vector256<uint> x) => Avx512F.VL.IsSupported
        ? Avx512F.VL.RotateRight(x, 6) ^ Avx512F.VL.RotateRight(x, 11) ^ Avx512F.VL.RotateRight(x, 25)
        : Rotr(x, 6) ^ Rotr(x, 11) ^ Rotr(x, 25);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<uint> Small0(Vector256<uint> x) => (Avx512F.VL.IsSupported
        ? Avx512F.VL.RotateRight(x, 7) ^ Avx512F.VL.RotateRight(x, 18)
        : Rotr(x, 7) ^ Rotr(x, 18)) ^ Vector256.ShiftRightLogical(x, 3);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<uint> Small1(Vector256<uint> x) => (Avx512F.VL.IsSupported
        ? Avx512F.VL.RotateRight(x, 17) ^ Avx512F.VL.RotateRight(x, 19)
        : Rotr(x, 17) ^ Rotr(x, 19)) ^ Vector256.ShiftRightLogical(x, 10);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<uint> Rotr(Vector256<uint> x, int n) => Vector256.ShiftRightLogical(x, n) | Vector256.ShiftLeft(x, 32 - n);
}
