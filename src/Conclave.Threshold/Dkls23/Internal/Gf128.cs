using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Conclave.Threshold.Dkls23.Internal;

/// <summary>
/// GF(2^128) = GF(2)[x]/(x^128 + x^7 + x^2 + x + 1), the field of the SoftSpokenOT / KOS consistency check.
/// Elements are 128-bit words (lo = coefficients of x^0..x^63). Products are accumulated unreduced in 256 bits and
/// reduced once. Constant time: carry-less multiplication by PCLMULQDQ where the CPU has it, otherwise a masked loop.
/// </summary>
internal struct Gf128Accumulator
{
    private ulong _x0, _x1, _x2, _x3;

    /// <summary>this += a·b (unreduced).</summary>
    internal void MulAdd(ulong a0, ulong a1, ulong b0, ulong b1)
    {
        Clmul(a0, b0, out ulong l0, out ulong h0);
        Clmul(a0, b1, out ulong l1, out ulong h1);
        Clmul(a1, b0, out ulong l2, out ulong h2);
        Clmul(a1, b1, out ulong l3, out ulong h3);
        _x0 ^= l0;
        _x1 ^= h0 ^ l1 ^ l2;
        _x2 ^= h1 ^ h2 ^ l3;
        _x3 ^= h3;
    }

    /// <summary>this += a (a reduced element).</summary>
    internal void Add(ulong a0, ulong a1)
    {
        _x0 ^= a0;
        _x1 ^= a1;
    }

    /// <summary>The reduced value.</summary>
    internal readonly (ulong Lo, ulong Hi) Reduce()
    {
        ulong x0 = _x0, x1 = _x1, x2 = _x2, x3 = _x3;

        // x^192·x3 ≡ x^64·x3·(x^7 + x^2 + x + 1); the part above x^127 lands in x2 and is folded next.
        x1 ^= x3 ^ (x3 << 1) ^ (x3 << 2) ^ (x3 << 7);
        x2 ^= (x3 >> 63) ^ (x3 >> 62) ^ (x3 >> 57);

        // x^128·x2 ≡ x2·(x^7 + x^2 + x + 1).
        x0 ^= x2 ^ (x2 << 1) ^ (x2 << 2) ^ (x2 << 7);
        x1 ^= (x2 >> 63) ^ (x2 >> 62) ^ (x2 >> 57);
        return (x0, x1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Clmul(ulong a, ulong b, out ulong lo, out ulong hi)
    {
        if (Pclmulqdq.IsSupported)
        {
            Vector128<ulong> r = Pclmulqdq.CarrylessMultiply(Vector128.CreateScalar(a), Vector128.CreateScalar(b), 0x00);
            lo = r.GetElement(0);
            hi = r.GetElement(1);
            return;
        }

        lo = 0;
        hi = 0;
        for (int i = 0; i < 64; i++)
        {
            ulong mask = unchecked(0UL - ((b >> i) & 1));
            lo ^= (a << i) & mask;
            hi ^= (i == 0 ? 0 : a >> (64 - i)) & mask;
        }
    }
}
