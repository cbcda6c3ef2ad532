using Conclave.Threshold.Frost;
using Conclave.Threshold.Frost.Ciphersuites;

namespace Conclave.Node.Threshold.Engine;

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

    /// <summary>Takes ownership of the share the DKG of run <paramref name="runId"/> completed (disposes it when done with it).</summary>
    void Hold(string runId, string keyId, int toVersion, KeyPackage share);
}
