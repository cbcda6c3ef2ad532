using Conclave.Crypto.Randomness;
using Conclave.Threshold.Frost;
using Conclave.Threshold.Frost.Ciphersuites;
using Conclave.Threshold.Frost.Internal;

namespace Conclave.Threshold.Tests;

/// <summary>A dishonest dealer for tests: deals round two itself, with altered shares or contributions, signed with its committed key.</summary>
internal static class DkgCheat
{
    internal static IReadOnlyList<DkgRound2Package> Deal(
        DkgRound1Secret dealer,
        IEnumerable<DkgRound1Package> othersBroadcasts,
        IRandomSource random,
        Func<Identifier, Scalar, Scalar>? shareFor = null,
        Func<Identifier, byte[], byte[]>? contributionFor = null)
    {
        DkgSession session = dealer.Session;
        IReadOnlyDictionary<Identifier, DkgCommitment> commitments = dealer.Commitments!;
        DkgRound1Package own = dealer.Package!;
        (Scalar[]? coeffs, _, byte[] contribution, Scalar? x) = dealer.Consume();
        Element signingPublic = session.Suite.BaseMul(x!);
        byte[] echo = Dkg.EchoDigest(session, commitments.Values, [own, .. othersBroadcasts]);
        var list = new List<DkgRound2Package>();
        foreach (Identifier r in session.Receivers.Where(r => !r.Equals(dealer.Self)))
        {
            Scalar share = Polynomials.Evaluate(coeffs!, r.Value);
            share = shareFor?.Invoke(r, share) ?? share;
            byte[] c = contributionFor?.Invoke(r, contribution) ?? contribution;
            (Element sigR, Scalar sigZ) = Dkg.SignShare(session, dealer.Self, r, x!, signingPublic, echo, share, c, random);
            list.Add(new DkgRound2Package(dealer.Self, r, echo, share, c, sigR, sigZ));
        }

        return list;
    }
}
