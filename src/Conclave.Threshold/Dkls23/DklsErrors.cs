using Conclave.Threshold.Frost;

namespace Conclave.Threshold.Dkls23;

/// <summary>Which DKLs23 check refused to go on (docs/DKLS23.md lists each with the step that runs it).</summary>
public enum DklsFailure
{
    /// <summary>The message belongs to another session, round, sender or recipient: dropped, nobody is blamed.</summary>
    WrongSession,

    /// <summary>A message field is malformed: wrong length, a scalar not below n, a point off the curve or at infinity.</summary>
    MalformedMessage,

    /// <summary>The SoftSpokenOT consistency check failed (ePrint 2022/192 section 4): the OT state with the peer is discarded.</summary>
    OtExtensionConsistency,

    /// <summary>The random-VOLE check value does not match (DKLs23 Protocol 5.2 step "check").</summary>
    RvoleCheck,

    /// <summary>An opening of R_j does not match the commitment the party sent in round one.</summary>
    CommitmentMismatch,

    /// <summary>χ·R_j − Γ^u ≠ d^u·G (DKLs23 Protocol 3.6, round three, first consistency check).</summary>
    GammaUCheck,

    /// <summary>χ·pk_j − Γ^v ≠ d^v·G (second consistency check, with pk_j as the erratum requires).</summary>
    GammaVCheck,

    /// <summary>Σ pk_j ≠ PK: the additive key shares do not add up to the (derived) group key.</summary>
    PublicKeySum,

    /// <summary>R = Σ R_j is the point at infinity.</summary>
    NonceIsIdentity,

    /// <summary>Σ u_i = 0 when combining: the signature cannot be formed.</summary>
    ZeroDenominator,

    /// <summary>The combined signature does not verify under the key (a tampered final share).</summary>
    InvalidSignature,

    /// <summary>The signer set is of the wrong size, has duplicates, strangers, banned peers or lacks this party.</summary>
    InvalidSignerSet,

    /// <summary>A party identifier is zero (or ≡ 0 mod n), or not a participant of the key.</summary>
    InvalidParticipant,

    /// <summary>A presignature was already used, belongs to an older key epoch, or is asked to sign for another path.</summary>
    PresignatureRefused,

    /// <summary>A pairwise-setup zero-share seed opening does not match its commitment.</summary>
    SeedCommitmentMismatch,

    /// <summary>A refresh share does not match its dealer's commitments, or the commitment has the wrong length.</summary>
    InvalidRefreshShare,

    /// <summary>A peer's view of the public key package (shares, group key, chain code, epoch) differs from ours.</summary>
    PublicKeyMismatch,

    /// <summary>The peer was banned after a failed OT-extension check; a fresh pairwise setup is needed.</summary>
    PeerBanned,

    /// <summary>
    /// The signers hold different round-one broadcast data (<see cref="DklsEcho"/>): some party sent different values to
    /// different peers. From echo digests alone nobody is named; the signed copies name the author.
    /// </summary>
    Equivocation,
}

/// <summary>What a party should do about a failure.</summary>
public enum DklsDisposition
{
    /// <summary>Ignore the message (wrong session, replay, unauthenticated): nobody is banned.</summary>
    Drop,

    /// <summary>Abort the session and name the culprits (proven misbehaviour in this session).</summary>
    Abort,

    /// <summary>Abort, discard the pairwise OT state with the culprit and refuse it until a fresh pairwise setup.</summary>
    Ban,
}

/// <summary>
/// A DKLs23 step refused its input. <see cref="Failure"/> names the check, <see cref="Culprits"/> the parties it
/// proves misbehaved (empty when none can be named), <see cref="Disposition"/> what to do. Never carries a secret.
/// </summary>
public sealed class DklsProtocolException : Exception
{
    public DklsProtocolException() : base("DKLs23 protocol failure") { Culprits = []; }

    public DklsProtocolException(string message) : base(message) { Culprits = []; }

    public DklsProtocolException(string message, Exception innerException) : base(message, innerException) { Culprits = []; }

    internal DklsProtocolException(DklsFailure failure, DklsDisposition disposition, IReadOnlyList<Identifier> culprits, string message)
        : base(message)
    {
        Failure = failure;
        Disposition = disposition;
        Culprits = culprits;
    }

    public DklsFailure Failure { get; }

    public DklsDisposition Disposition { get; }

    public IReadOnlyList<Identifier> Culprits { get; }
}

/// <summary>All DKLs23 exceptions are built here: they name checks, fields and identifiers, never values.</summary>
internal static class DklsErrors
{
    internal static DklsProtocolException Drop(string what)
        => new(DklsFailure.WrongSession, DklsDisposition.Drop, [], $"message dropped: {what}");

    internal static DklsProtocolException DropInvalidParticipant(string field)
        => new(DklsFailure.InvalidParticipant, DklsDisposition.Drop, [], $"message dropped: {field} is not a valid participant identifier (zero, ≡ 0 mod n, not below n, or not 32 bytes)");

    internal static DklsProtocolException Malformed(Identifier? sender, string field, string reason)
        => new(DklsFailure.MalformedMessage, DklsDisposition.Abort, sender is null ? [] : [sender],
            $"malformed {field}: {reason}{Who(sender)}");

    internal static DklsProtocolException Check(DklsFailure failure, Identifier? culprit, string what)
        => new(failure, failure == DklsFailure.OtExtensionConsistency ? DklsDisposition.Ban : DklsDisposition.Abort,
            culprit is null ? [] : [culprit], what + Who(culprit));

    internal static DklsProtocolException Refused(DklsFailure failure, string what)
        => new(failure, DklsDisposition.Abort, [], what);

    private static string Who(Identifier? id) => id is null ? "" : $" (culprit: {id})";
}
