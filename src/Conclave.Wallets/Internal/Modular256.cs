using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Conclave.Wallets.Internal;

/// <summary>
/// Constant-time arithmetic on 256-bit big-endian integers modulo a fixed odd modulus n &lt; 2^256 (no branches or
/// memory accesses that depend on the values). Used for the NIST P-256 group order, which Conclave.Crypto does not
/// provide: SLIP-10 needs only "is 0 &lt; x &lt; n" and "(a + b) mod n" on secret scalars.
/// </summary>
internal sealed class Modular256
{
    private readonly ulong _n0, _n1, _n2, _n3;

    internal Modular256(ReadOnlySpan<byte> modulusBigEndian32)
    {
        Read(modulusBigEndian32, out _n0, out _n1, out _n2, out _n3);
    }

    private static void Read(ReadOnlySpan<byte> be, out ulong l0, out ulong l1, out ulong l2, out ulong l3)
    {
        l3 = BinaryPrimitives.ReadUInt64BigEndian(be[..8]);
        l2 = BinaryPrimitives.ReadUInt64BigEndian(be[8..16]);
        l1 = BinaryPrimitives.ReadUInt64BigEndian(be[16..24]);
        l0 = BinaryPrimitives.ReadUInt64BigEndian(be[24..32]);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Sub(ulong a, ulong b, ulong borrowIn, out ulong borrowOut)
    {
        unchecked
        {
            ulong d = a - b - borrowIn;
            // Borrow out of the top bit, computed without comparisons (Hacker's Delight 2-13).
            borrowOut = ((~a & b) | (~(a ^ b) & d)) >> 63;
            return d;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Add(ulong a, ulong b, ulong carryIn, out ulong carryOut)
    {
        unchecked
        {
            ulong s = a + b + carryIn;
            carryOut = ((a & b) | ((a | b) & ~s)) >> 63;
            return s;
        }
    }

    /// <summary>1 when 0 &lt; x &lt; n, else 0 (as a bool; the computation itself is branch-free).</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.NoOptimization)]
    internal bool IsInRangeNonZero(ReadOnlySpan<byte> x32)
    {
        Read(x32, out ulong x0, out ulong x1, out ulong x2, out ulong x3);
        _ = Sub(x0, _n0, 0, out ulong b);
        _ = Sub(x1, _n1, b, out b);
        _ = Sub(x2, _n2, b, out b);
        _ = Sub(x3, _n3, b, out b);
        ulong any = x0 | x1 | x2 | x3;
        ulong nonZero = (any | unchecked(0 - any)) >> 63;
        return (b & nonZero) != 0;
    }

    /// <summary>
    /// destination = (a + b) mod n for a, b already below n. Returns false when the result is zero.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.NoOptimization)]
    internal bool AddMod(ReadOnlySpan<byte> a32, ReadOnlySpan<byte> b32, Span<byte> destination32)
    {
        Read(a32, out ulong a0, out ulong a1, out ulong a2, out ulong a3);
        Read(b32, out ulong b0, out ulong b1, out ulong b2, out ulong b3);
        ulong s0 = Add(a0, b0, 0, out ulong c);
        ulong s1 = Add(a1, b1, c, out c);
        ulong s2 = Add(a2, b2, c, out c);
        ulong s3 = Add(a3, b3, c, out c);
        ulong t0 = Sub(s0, _n0, 0, out ulong bw);
        ulong t1 = Sub(s1, _n1, bw, out bw);
        ulong t2 = Sub(s2, _n2, bw, out bw);
        ulong t3 = Sub(s3, _n3, bw, out bw);

        // Keep s (the sum) only when it did not overflow 2^256 and s < n (the subtraction borrowed).
        ulong keepSum = unchecked(0 - (bw & (c ^ 1)));
        ulong r0 = (s0 & keepSum) | (t0 & ~keepSum);
        ulong r1 = (s1 & keepSum) | (t1 & ~keepSum);
        ulong r2 = (s2 & keepSum) | (t2 & ~keepSum);
        ulong r3 = (s3 & keepSum) | (t3 & ~keepSum);
        BinaryPrimitives.WriteUInt64BigEndian(destination32[..8], r3);
        BinaryPrimitives.WriteUInt64BigEndian(destination32[8..16], r2);
        BinaryPrimitives.WriteUInt64BigEndian(destination32[16..24], r1);
        BinaryPrimitives.WriteUInt64BigEndian(destination32[24..32], r0);
        return (r0 | r1 | r2 | r3) != 0;
    }
}
