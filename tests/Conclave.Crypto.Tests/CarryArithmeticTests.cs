using Conclave.Crypto.Internal;

namespace Conclave.Crypto.Tests;

/// <summary>The branch-free carry and borrow helpers of Montgomery256 against UInt128 arithmetic (issue 14 item 5).</summary>
public sealed class CarryArithmeticTests
{
    private static readonly ulong[] Edges = [0, 1, 2, 0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000, 0x8000_0000_0000_0001, ulong.MaxValue - 1, ulong.MaxValue];

    [Fact]
    public void AddWithCarryMatchesUInt128()
    {
        foreach (ulong a in Edges)
        {
            foreach (ulong b in Edges)
            {
                for (ulong c = 0; c <= 1; c++)
                {
                    UInt128 expected = (UInt128)a + b + c;
                    ulong carry = c;
                    ulong sum = Montgomery256.Adc(a, b, ref carry);
                    Assert.Equal((ulong)expected, sum);
                    Assert.Equal((ulong)(expected >> 64), carry);
                }
            }
        }
    }

    [Fact]
    public void SubtractWithBorrowMatchesUInt128()
    {
        foreach (ulong a in Edges)
        {
            foreach (ulong b in Edges)
            {
                for (ulong c = 0; c <= 1; c++)
                {
                    UInt128 expected = (UInt128)a - b - c;
                    ulong borrow = c;
                    ulong difference = Montgomery256.Sbb(a, b, ref borrow);
                    Assert.Equal((ulong)expected, difference);
                    Assert.Equal((UInt128)a < (UInt128)b + c ? 1UL : 0UL, borrow);
                }
            }
        }
    }
}
