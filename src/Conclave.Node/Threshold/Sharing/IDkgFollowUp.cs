using Conclave.Node.Protocol;
using Conclave.Node.Threshold.Engine;
using Conclave.Threshold.Frost;
using Conclave.Threshold.Frost.Ciphersuites;

namespace Conclave.Node.Threshold.Sharing;

/// <summary>
/// A protocol whose key generation starts with the FROST DKG (Feldman commitments after commit-before-reveal, proofs of
/// knowledge, echo, confirmations, agreed chain code) and goes on with rounds of its own: DKLs23 makes its secp256k1
/// shares this way, then runs its pairwise setup. The DKG handlers run the run's DKG rounds as for a FROST key of
/// <see cref="Suite"/>, but at the complete step they store nothing: they hand the completed share to <see cref="Hold"/>
/// (in memory only, for the follow-up rounds of the same run) and report the public key package as usual. The run stays
/// Started on the node until the protocol's own last round stores its share as pending and records the run Prepared.
/// </summary>
public interface IDkgFollowUp
{
    /// <summary>True when runs of <paramref name="scheme"/> continue after the DKG with this protocol's rounds.</summary>
    bool Handles(string scheme);

    /// <summary>The FROST ciphersuite whose DKG makes the shares.</summary>
    FrostCiphersuite Suite { get; }

    /// <summary>
    /// Takes ownership of the share the DKG of run <paramref name="runId"/> completed (disposes it when done with it).
    /// <paramref name="kind"/> and <paramref name="fromVersion"/> say what the run makes: a new key, or the next version
    /// of a refreshed or reshared one.
    /// <paramref name="agreement"/> is this node's run agreement key of the run's DKG and <paramref name="peerKeys"/> the
    /// other participants' (each checked against its identity-key signature in the DKG's reveal step): the follow-up rounds
    /// seal their point-to-point messages between them, never to the long-term keys, and erase the private key (it
    /// owns it from here) once its last message is opened.
    /// <paramref name="rejoining"/>: this node, re-admitted after an eviction, joins a reshare of a key whose older version
    /// it still holds (docs/ROTATION.md "Re-admitting"): its new share is stored above that stale version, which the run's
    /// commit erases.
    /// </summary>
    void Hold(string runId, string keyId, DkgRunKind kind, int fromVersion, int toVersion, KeyPackage share, RunAgreementKey agreement, IReadOnlyDictionary<uint, byte[]> peerKeys,
        bool rejoining);

    /// <summary>
    /// This node's share of <paramref name="keyId"/> at <paramref name="version"/> as a key package of <see cref="Suite"/>,
    /// which a dealer of a refresh or reshare deals from (the caller disposes it).
    /// </summary>
    Task<KeyPackage> CurrentShareAsync(string keyId, int version, CancellationToken ct);
}
