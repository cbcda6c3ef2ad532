using Conclave.Crypto.Secp256k1;
using Conclave.Threshold.Dkls23.Internal;
using Conclave.Threshold.Frost;

namespace Conclave.Threshold.Dkls23.ZeroSharing;

/// <summary>
/// Pairwise zero sharing (DKLs23, ePrint 2023/765, section 3, the F_Zero functionality realised by shared seeds):
/// every pair {i, j} shares a seed s_ij agreed by commit-then-open of two 32-byte contributions; in a signing session
/// sid with signer set S, ζ_i = Σ_{j∈S, j≠i} ±PRF(s_ij, sid) with + when i &lt; j and − otherwise, so Σ_{i∈S} ζ_i = 0.
/// </summary>
internal delegate ReadOnlySpan<byte> SeedLookup(Identifier peer);

internal static class ZeroShare
{
    internal const int ContributionSize = 32;

    /// <summary>The commitment to a contribution, bound to the setup session and the ordered pair.</summary>
    internal static byte[] Commit(ReadOnlySpan<byte> setupSid, Identifier from, Identifier to, ReadOnlySpan<byte> contribution)
    {
        using var h = new DklsHash("zero/commit");
        return h.Add(setupSid).Add(from).Add(to).Add(contribution).Finish();
    }

    /// <summary>s_ij from both contributions, in identifier order so both parties get the same seed.</summary>
    internal static void Seed(ReadOnlySpan<byte> setupSid, Identifier a, ReadOnlySpan<byte> ca, Identifier b, ReadOnlySpan<byte> cb, Span<byte> seed32)
    {
        bool aFirst = a.CompareTo(b) < 0;
        using var h = new DklsHash("zero/seed");
        h.Add(setupSid).Add(aFirst ? a : b).Add(aFirst ? b : a).Add(aFirst ? ca : cb).Add(aFirst ? cb : ca).Finish(seed32);
    }

    /// <summary>ζ_i for one session: the sum over the other signers of the signed pairwise PRF values.</summary>
    internal static Secp256k1Scalar Share(Identifier me, IEnumerable<Identifier> signers, SeedLookup seedOf, ReadOnlySpan<byte> sid)
    {
        Secp256k1Scalar zeta = Secp256k1Scalar.Zero;
        foreach (Identifier j in signers)
        {
            if (j.Equals(me))
            {
                continue;
            }

            using var h = new DklsHash("zero/prf");
            Secp256k1Scalar v = h.Add(seedOf(j)).Add(sid).FinishScalar();
            zeta = me.CompareTo(j) < 0 ? zeta + v : zeta - v;
        }

        return zeta;
    }
}
