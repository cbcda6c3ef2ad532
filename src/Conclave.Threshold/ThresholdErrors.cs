using Conclave.Crypto;
using Conclave.Threshold.Frost;
using Conclave.Threshold.Frost.Ciphersuites;

namespace Conclave.Threshold;

/// <summary>Why a threshold protocol step refused to go on.</summary>
public enum ThresholdFailure
{
    /// <summary>A signature share does not verify against its sender's verifying share (RFC 9591 section 5.4).</summary>
    InvalidSignatureShare,

    /// <summary>The aggregate signature does not verify under the group key.</summary>
    InvalidAggregateSignature,

    /// <summary>A DKG proof of knowledge does not verify (rogue-key attempt or tampering).</summary>
    InvalidProofOfKnowledge,

    /// <summary>A secret share received in DKG / refresh / reshare does not match its sender's commitments.</summary>
    InvalidSecretShare,

    /// <summary>The echo check failed: a participant saw different broadcasts from this party.</summary>
    BroadcastMismatch,

    /// <summary>A confirmation is missing, does not match, or its proof fails.</summary>
    InvalidConfirmation,

    /// <summary>A reshare dealer's constant-term commitment is not its weighted verifying share.</summary>
    InvalidReshareCommitment,

    /// <summary>A repaired share does not match the verifying share on record.</summary>
    InvalidRepairedShare,

    /// <summary>A message is missing, duplicated or from an unexpected participant.</summary>
    UnexpectedParticipant,

    /// <summary>
    /// A DKG dealer revealed a round-one package or a chain-code contribution that does not match the commitment it
    /// broadcast first (<see cref="Frost.Dkg.Commit"/>).
    /// </summary>
    CommitmentMismatch,

    /// <summary>A DKG round-two message does not carry a valid signature under its dealer's committed signing key.</summary>
    InvalidShareSignature,
}

/// <summary>
/// A protocol step refused its input because one or more participants misbehaved; <see cref="Culprits"/> names them.
/// The message names identifiers and the failure, never a secret value.
/// </summary>
public sealed class ThresholdProtocolException : Exception
{
    public ThresholdProtocolException() : base("threshold protocol failure") { Culprits = []; }

    public ThresholdProtocolException(string message) : base(message) { Culprits = []; }

    public ThresholdProtocolException(string message, Exception innerException) : base(message, innerException) { Culprits = []; }

    internal ThresholdProtocolException(ThresholdFailure failure, IReadOnlyList<Identifier> culprits, string message, IReadOnlyList<DkgComplaint>? complaints = null) : base(message)
    {
        Failure = failure;
        Culprits = culprits;
        Complaints = complaints ?? [];
    }

    /// <summary>Verifiable complaints to broadcast (DKG, refresh and reshare share failures); empty otherwise.</summary>
    public IReadOnlyList<DkgComplaint> Complaints { get; } = [];

    public ThresholdFailure Failure { get; }

    /// <summary>The participants responsible (empty when none can be named).</summary>
    public IReadOnlyList<Identifier> Culprits { get; }
}

/// <summary>All exceptions of Conclave.Threshold are built here: they name parameters and identifiers, never values.</summary>
internal static class ThresholdErrors
{
    internal static CryptoFormatException Format(string parameter, string reason) => new(parameter, $"{parameter}: {reason}");

    internal static CryptoFormatException IdentityElement(string parameter) => new(parameter, $"{parameter} is the identity element");

    internal static CryptoFormatException InvalidElement(string parameter)
        => new(parameter, $"{parameter} is not a valid group element (malformed, off the curve, small order, non-canonical or the identity)");

    internal static CryptoFormatException InvalidScalar(string parameter)
        => new(parameter, $"{parameter} is not a canonical scalar (it must be less than the group order)");

    internal static CryptoFormatException Truncated(string parameter) => new(parameter, $"{parameter} is truncated");

    internal static CryptoFormatException TrailingBytes(string parameter) => new(parameter, $"{parameter} has trailing bytes");

    internal static CryptoFormatException WrongKind(string parameter, string expected) => new(parameter, $"{parameter} is not a {expected} (wrong type tag or version)");

    internal static CryptoFormatException WrongSuite(string parameter, FrostCiphersuite expected)
        => new(parameter, $"{parameter} belongs to another ciphersuite than {expected.SchemeName}");

    internal static ArgumentException Argument(string parameter, string reason) => new($"{parameter}: {reason}", parameter);

    internal static InvalidOperationException Consumed(string what) => new($"{what} was already consumed; one-time secrets are never reused");

    internal static ThresholdProtocolException Protocol(ThresholdFailure failure, IReadOnlyList<Identifier> culprits, string what, IReadOnlyList<DkgComplaint>? complaints = null)
    {
        string who = culprits.Count == 0 ? "" : " (culprits: " + string.Join(", ", culprits.Select(c => c.ToString())) + ")";
        return new ThresholdProtocolException(failure, culprits, $"{what}{who}", complaints);
    }
}
