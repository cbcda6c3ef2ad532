using Conclave.Node.Frost;
using Conclave.Threshold.Frost;

namespace Conclave.Node.Threshold.Sharing;

/// <summary>
/// Testing only: makes a node misbehave in DKG, refresh and reshare runs so that tests can watch the coordinator judge
/// complaints (docs/FROST.md "Complaints on the cluster"). There is no configuration key, environment variable or command
/// option for it: the type and <see cref="FrostNodeState.DkgFaults"/> are internal, and the only assemblies that may set
/// them are the test projects named in Conclave.Node's InternalsVisibleTo (the test host tests/Conclave.Node.FaultyNode).
/// `conclave node run` never sets them, so a release build cannot be made to misbehave by configuration.
/// </summary>
internal sealed class DkgFaults
{
    /// <summary>
    /// Replaces <see cref="Dkg.Commit"/> on this node (for example: commit to, and later reveal, a round-one package with a
    /// wrong commitment length or a bad proof of knowledge, which matches its commitment and fails the peers' round-two checks).
    /// </summary>
    public Func<DkgSession, Identifier, KeyPackage?, DkgCommitSecret>? Commit { get; init; }

    /// <summary>
    /// The commitments this dealer broadcasts in the commit step instead of its one real commitment, given that one and
    /// the run's other participants, each with the nodes it is addressed to (for example: different commitments to
    /// different peers).
    /// </summary>
    public Func<DkgCommitment, uint[], IReadOnlyList<(uint[] To, DkgCommitment Commitment)>>? Commitments { get; init; }

    /// <summary>
    /// The round-one packages this dealer reveals instead of its one real package, given that one and the run's other
    /// participants, each with the nodes it is addressed to.
    /// </summary>
    public Func<DkgRound1Package, uint[], IReadOnlyList<(uint[] To, DkgRound1Package Package)>>? Round1 { get; init; }

    /// <summary>Replaces <see cref="Dkg.Round2"/> on this node (for example: deal one receiver a wrong share, signed).</summary>
    public Func<DkgRound1Secret, IReadOnlyCollection<DkgRound1Package>, (DkgRound2Secret Secret, IReadOnlyList<DkgRound2Package> Outgoing)>? Round2 { get; init; }

    /// <summary>
    /// Makes this receiver complain in the finish step whatever it received: given the received shares (still open), the
    /// encoded complaints to send in place of a confirmation (a false complaint when the shares are good).
    /// </summary>
    public Func<IReadOnlyList<DkgRound2Package>, IReadOnlyList<byte[]>>? Complain { get; init; }
}
