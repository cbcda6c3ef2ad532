using Conclave.Node.Threshold.Sharing;
using Conclave.Threshold.Frost;

namespace Conclave.Node.FaultyNode;

/// <summary>
/// The DKG faults this test host can inject (--dkg-fault NAME), for key generation of FROST and of ecdsa-dkls23 keys (whose
/// secp256k1 shares come from the same DKG engine): each makes this dealer send something its peers' checks of the FROST
/// DKG (Komlo–Goldberg 2020, Figure 1; RFC 9591 Appendix C) must refuse, and every message stays validly signed by this
/// node, so the refusal can name it. "Node 1" below is the lowest other participant of the run.
/// </summary>
internal static class DkgFaultCatalogue
{
    public static IReadOnlyCollection<string> Names => Faults.Keys;

    public static DkgFaults? For(string name) => Faults.TryGetValue(name, out Func<DkgFaults>? make) ? make() : null;

    private static readonly Dictionary<string, Func<DkgFaults>> Faults = new(StringComparer.Ordinal)
    {
        // One Feldman commitment too many (t + 1 coefficients' worth), committed to and revealed: the exact-length check of
        // round two fails (Dkg.CheckRound1).
        ["commitment-length"] = () => new DkgFaults
        {
            Commit = (session, self, current) => Dkg.CommitCore(session, self, current, null, default,
                p => new DkgRound1Package(p.Sender, [.. p.Commitment, p.Commitment[^1]], p.ProofR, p.ProofZ)),
        },

        // The proof of knowledge of a_0 with μ + 1, committed to and revealed: μ·G ≠ R + c·C_0 (FROST paper Figure 1, round 2 step 1).
        ["proof"] = () => new DkgFaults
        {
            Commit = (session, self, current) => Dkg.CommitCore(session, self, current, null, default,
                p => new DkgRound1Package(p.Sender, p.Commitment, p.ProofR, p.ProofZ! + p.Suite.ScalarOne)),
        },

        // Node 1's share one more than the polynomial gives, signed: a Feldman mismatch node 1 complains about with the
        // dealer's signed message as evidence (vss_verify, RFC 9591 Appendix C.2).
        ["feldman"] = () => new DkgFaults
        {
            Round2 = (round1, received) => Dkg.Round2Core(round1, received, null,
                (recipient, share) => recipient.Equals(Lowest(round1)) ? share + round1.Session.Suite.ScalarOne : share),
        },

        // Node 1's chain-code contribution differs from the one committed to (signed): a different chain-code share to one
        // peer, which node 1 complains about with the signed message as evidence.
        ["chain-code"] = () => new DkgFaults
        {
            Round2 = (round1, received) => Dkg.Round2Core(round1, received, null, null,
                (recipient, contribution) => recipient.Equals(Lowest(round1)) ? Flipped(contribution) : contribution),
        },

        // The real commitment to node 1, another (package hash one bit off) to every other participant.
        ["two-commitments"] = () => new DkgFaults
        {
            Commitments = (c, others) =>
            [
                ([others[0]], c),
                (others[1..], new DkgCommitment(c.Sender, Flipped(c.PackageHash.ToArray()), c.ContributionHash, c.SigningKey)),
            ],
        },

        // The real round-one package to node 1, another (proof μ + 1) to every other participant.
        ["two-packages"] = () => new DkgFaults
        {
            Round1 = (p, others) =>
            [
                ([others[0]], p),
                (others[1..], new DkgRound1Package(p.Sender, p.Commitment, p.ProofR, p.ProofZ! + p.Suite.ScalarOne)),
            ],
        },
    };

    /// <summary>The lowest receiver of the run other than this dealer.</summary>
    private static Identifier Lowest(DkgRound1Secret round1) =>
        round1.Session.Receivers.First(r => !r.Equals(round1.Self));

    private static byte[] Flipped(byte[] value)
    {
        byte[] copy = (byte[])value.Clone();
        copy[0] ^= 0x01;
        return copy;
    }
}
