using System.Numerics;
using System.Runtime.CompilerServices;

namespace Conclave.Crypto.Internal;

/// <summary>
/// Constant-time arithmetic modulo an odd 256-bit modulus, four 64-bit limbs, least significant first.
/// Multiplication is Montgomery's CIOS method (Koç, Acar, Kaliski, "Analyzing and comparing Montgomery
/// multiplication algorithms", 1996, section 5); no branch or memory access depends on operand values.
/// </summary>
internal sealed class Montgomery256
{
    private readonly ulong _n0, _n1, _n2, _n3;
    private readonly ulong _nInv; // -n^-1 mod 2^64
    private readonly ulong _r20, _r21, _r22, _r23; // R^2 mod n, R = 2^256

    public Montgomery256(BigInteger modulus)
    {
        if (modulus.IsEven || modulus.Sign <= 0 || modulus.GetBitLength() != 256)
        {
            throw new ArgumentException("modulus must be an odd 256-bit integer", nameof(modulus));
        }

        Modulus = modulus;
        (_n0, _n1, _n2, _n3) = ToLimbs(modulus);
        ulong inv = 1;
        unchecked
        {
            for (int i = 0; i < 7; i++)
            {
                inv *= 2 - (_n0 * inv);
            }

            _nInv = 0 - inv;
        }

        (_r20, _r21, _r22, _r23) = ToLimbs(BigInteger.ModPow(2, 512, modulus));
    }

    public BigInteger Modulus { get; }

    public static (ulong, ulong, ulong, ulong) ToLimbs(BigInteger v)
    {
        Span<byte> le = stackalloc byte[33];
        le.Clear();
        v.TryWriteBytes(le, out _, isUnsigned: true, isBigEndian: false);
        return (
            BitConverter.ToUInt64(le[..8]),
            BitConverter.ToUInt64(le[8..16]),
            BitConverter.ToUInt64(le[16..24]),
            BitConverter.ToUInt64(le[24..32]));
    }

    /// <summary>All-ones when (a0..a3) &lt; n, zero otherwise.</summary>
    public ulong LessThanModulusMask(ulong a0, ulong a1, ulong a2, ulong a3)
    {
        unchecked
        {
            ulong borrow = 0;
            Sbb(a0, _n0, ref borrow);
            Sbb(a1, _n1, ref borrow);
            Sbb(a2, _n2, ref borrow);
            Sbb(a3, _n3, ref borrow);
            return 0 - borrow;
        }
    }

    public void Add(ulong a0, ulong a1, ulong a2, ulong a3, ulong b0, ulong b1, ulong b2, ulong b3,
        out ulong r0, out ulong r1, out ulong r2, out ulong r3)
    {
        unchecked
        {
            ulong carry = 0;
            ulong s0 = Adc(a0, b0, ref carry);
            ulong s1 = Adc(a1, b1, ref carry);
            ulong s2 = Adc(a2, b2, ref carry);
            ulong s3 = Adc(a3, b3, ref carry);
            ReduceOnce(carry, s0, s1, s2, s3, out r0, out r1, out r2, out r3);
        }
    }

    public void Sub(ulong a0, ulong a1, ulong a2, ulong a3, ulong b0, ulong b1, ulong b2, ulong b3,
        out ulong r0, out ulong r1, out ulong r2, out ulong r3)
    {
        unchecked
        {
            ulong borrow = 0;
            ulong d0 = Sbb(a0, b0, ref borrow);
            ulong d1 = Sbb(a1, b1, ref borrow);
            ulong d2 = Sbb(a2, b2, ref borrow);
            ulong d3 = Sbb(a3, b3, ref borrow);
            ulong mask = 0 - borrow;
            ulong carry = 0;
            r0 = Adc(d0, _n0 & mask, ref carry);
            r1 = Adc(d1, _n1 & mask, ref carry);
            r2 = Adc(d2, _n2 & mask, ref carry);
            r3 = Adc(d3, _n3 & mask, ref carry);
        }
    }

    /// <summary>Reduces a value below 2·n (with an optional carry bit 2^256) to below n.</summary>
    public void ReduceOnce(ulong hi, ulong s0, ulong s1, ulong s2, ulong s3,
        out ulong r0, out ulong r1, out ulong r2, out ulong r3)
    {
        unchecked
        {
            ulong borrow = 0;
            ulong d0 = Sbb(s0, _n0, ref borrow);
            ulong d1 = Sbb(s1, _n1, ref borrow);
            ulong d2 = Sbb(s2, _n2, ref borrow);
            ulong d3 = Sbb(s3, _n3, ref borrow);
            Sbb(hi, 0, ref borrow);
            // borrow == 1 means s < n: keep s.
            ulong keep = 0 - borrow;
            r0 = (s0 & keep) | (d0 & ~keep);
            r1 = (s1 & keep) | (d1 & ~keep);
            r2 = (s2 & keep) | (d2 & ~keep);
            r3 = (s3 & keep) | (d3 & ~keep);
        }
    }

    /// <summary>r = a·b·R⁻¹ mod n for a, b &lt; n.</summary>
    public void MontMul(ulong a0, ulong a1, ulong a2, ulong a3, ulong b0, ulong b1, ulong b2, ulong b3,
        out ulong r0, out ulong r1, out ulong r2, out ulong r3)
    {
        unchecked
        {
            ulong t0 = 0, t1 = 0, t2 = 0, t3 = 0, t4 = 0;
            Step(b0, a0, a1, a2, a3, ref t0, ref t1, ref t2, ref t3, ref t4);
            Step(b1, a0, a1, a2, a3, ref t0, ref t1, ref t2, ref t3, ref t4);
            Step(b2, a0, a1, a2, a3, ref t0, ref t1, ref t2, ref t3, ref t4);
            Step(b3, a0, a1, a2, a3, ref t0, ref t1, ref t2, ref t3, ref t4);
            ReduceOnce(t4, t0, t1, t2, t3, out r0, out r1, out r2, out r3);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Step(ulong bi, ulong a0, ulong a1, ulong a2, ulong a3,
        ref ulong t0, ref ulong t1, ref ulong t2, ref ulong t3, ref ulong t4)
    {
        unchecked
        {
            ulong c = 0;
            t0 = MulAdd(a0, bi, t0, ref c);
            t1 = MulAdd(a1, bi, t1, ref c);
            t2 = MulAdd(a2, bi, t2, ref c);
            t3 = MulAdd(a3, bi, t3, ref c);
            ulong carry = 0;
            t4 = Adc(t4, c, ref carry);
            ulong t5 = carry;

            ulong m = t0 * _nInv;
            c = 0;
            _ = MulAdd(m, _n0, t0, ref c);
            t0 = MulAdd(m, _n1, t1, ref c);
            t1 = MulAdd(m, _n2, t2, ref c);
            t2 = MulAdd(m, _n3, t3, ref c);
            carry = 0;
            t3 = Adc(t4, c, ref carry);
            t4 = t5 + carry;
        }
    }

    /// <summary>r = a·b mod n.</summary>
    public void Mul(ulong a0, ulong a1, ulong a2, ulong a3, ulong b0, ulong b1, ulong b2, ulong b3,
        out ulong r0, out ulong r1, out ulong r2, out ulong r3)
    {
        MontMul(a0, a1, a2, a3, b0, b1, b2, b3, out ulong m0, out ulong m1, out ulong m2, out ulong m3);
        MontMul(m0, m1, m2, m3, _r20, _r21, _r22, _r23, out r0, out r1, out r2, out r3);
    }

    /// <summary>r = a·2^256 mod n for a &lt; n.</summary>
    public void MulR(ulong a0, ulong a1, ulong a2, ulong a3, out ulong r0, out ulong r1, out ulong r2, out ulong r3)
        => MontMul(a0, a1, a2, a3, _r20, _r21, _r22, _r23, out r0, out r1, out r2, out r3);

    /// <summary>r = a^(n-2) mod n (Fermat inversion; the exponent is public). a = 0 gives 0.</summary>
    public void Invert(ulong a0, ulong a1, ulong a2, ulong a3, out ulong r0, out ulong r1, out ulong r2, out ulong r3)
    {
        unchecked
        {
            // To Montgomery form.
            MontMul(a0, a1, a2, a3, _r20, _r21, _r22, _r23, out ulong x0, out ulong x1, out ulong x2, out ulong x3);
            // one in Montgomery form = R mod n
            MontMul(1, 0, 0, 0, _r20, _r21, _r22, _r23, out ulong y0, out ulong y1, out ulong y2, out ulong y3);
            ulong borrow = 0;
            ulong e0 = Sbb(_n0, 2, ref borrow);
            ulong e1 = Sbb(_n1, 0, ref borrow);
            ulong e2 = Sbb(_n2, 0, ref borrow);
            ulong e3 = Sbb(_n3, 0, ref borrow);
            ReadOnlySpan<ulong> e = [e0, e1, e2, e3];
            for (int limb = 3; limb >= 0; limb--)
            {
                for (int bit = 63; bit >= 0; bit--)
                {
                    MontMul(y0, y1, y2, y3, y0, y1, y2, y3, out y0, out y1, out y2, out y3);
                    if (((e[limb] >> bit) & 1) != 0)
                    {
                        MontMul(y0, y1, y2, y3, x0, x1, x2, x3, out y0, out y1, out y2, out y3);
                    }
                }
            }

            MontMul(y0, y1, y2, y3, 1, 0, 0, 0, out r0, out r1, out r2, out r3);
        }
    }

    // Carries and borrows are computed with explicit bitwise formulas instead of UInt128 arithmetic, whose
    // addition and subtraction compute their carries with comparisons (a ternary the JIT may or may not turn into
    // a branch). The carry out of x + y + c (c ∈ {0, 1}) with result z is the majority of the top bits,
    // ((x & y) | ((x | y) & ~z)) >> 63; the borrow out of x − y − c with result z is ((~x & y) | ((~x | y) & z)) >> 63
    // (Hacker's Delight, 2nd ed., section 2-16). Math.BigMul is a single MUL/MULX. No branch depends on the values.

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong MulAdd(ulong a, ulong b, ulong t, ref ulong carry)
    {
        unchecked
        {
            // a·b + t + carry < 2^128, so the high word cannot overflow.
            ulong hi = Math.BigMul(a, b, out ulong lo);
            ulong c1 = 0;
            lo = Adc(lo, t, ref c1);
            ulong c2 = 0;
            lo = Adc(lo, carry, ref c2);
            carry = hi + c1 + c2;
            return lo;
        }
    }

    /// <summary>a + b + carry (carry ∈ {0, 1}); carry becomes the carry out. Branch-free.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ulong Adc(ulong a, ulong b, ref ulong carry)
    {
        unchecked
        {
            ulong s = a + b + carry;
            carry = ((a & b) | ((a | b) & ~s)) >> 63;
            return s;
        }
    }

    /// <summary>a − b − borrow (borrow ∈ {0, 1}); borrow becomes the borrow out. Branch-free.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ulong Sbb(ulong a, ulong b, ref ulong borrow)
    {
        unchecked
        {
            ulong d = a - b - borrow;
            borrow = ((~a & b) | ((~a | b) & d)) >> 63;
            return d;
        }
    }
}
