namespace Conclave.Storage.Audit;

/// <summary>
/// What a caller appends. Never put a secret here (DESIGN.md safety rule 5): <paramref name="RequestHash"/> is a
/// 32-byte hash of the request, not the request; the text fields are short identifiers (at most 256 characters,
/// no control characters), checked on append.
/// </summary>
public sealed record AuditEntryInput(string Actor, string Action, string? KeyId, byte[]? RequestHash, string Decision, string Result);

/// <summary>A committed entry: <c>Hash = SHA-256(canonical encoding of all fields ‖ PrevHash)</c>.</summary>
public sealed record AuditEntry(
    long Seq,
    DateTimeOffset Time,
    string Actor,
    string Action,
    string? KeyId,
    byte[]? RequestHash,
    string Decision,
    string Result,
    byte[] PrevHash,
    byte[] Hash);

/// <summary>The last committed entry (seq 0 and a zero hash for an empty log).</summary>
public sealed record AuditHead(long Seq, byte[] Hash);

/// <summary>A signed checkpoint: the node identity key signs (seq, hash) of the entry at <paramref name="Seq"/>.</summary>
public sealed record AuditCheckpoint(long Seq, byte[] Hash, string Scheme, byte[] PublicKey, byte[] Signature, DateTimeOffset Time);

/// <summary>The kind of tampering verification found (as far as the evidence tells).</summary>
public enum AuditTamperKind
{
    /// <summary>No problem.</summary>
    None,

    /// <summary>An entry's content no longer matches its hash, or a checkpoint's signed hash.</summary>
    Changed,

    /// <summary>An entry is missing (gap in seq, renumbered tail, or entries missing after the head or a checkpoint).</summary>
    Deleted,

    /// <summary>An entry was added that the chain or the head does not account for.</summary>
    Inserted,

    /// <summary>Entries appear out of their chained order.</summary>
    Reordered,

    /// <summary>A checkpoint signature is invalid or by an unexpected key, or the signed head does not verify.</summary>
    BadCheckpoint,

    /// <summary>A signed checkpoint required at a multiple of the checkpoint interval is absent (deleted).</summary>
    MissingCheckpoint,

    /// <summary>The head of a non-empty log carries no signature (the log was written without a checkpoint signer, or it was removed).</summary>
    Unsigned,

    /// <summary>The log no longer contains the entry an external anchor recorded, or the anchor itself does not verify.</summary>
    AnchorMismatch,
}

/// <summary>The outcome of <see cref="IAuditLog.VerifyAsync"/>.</summary>
public sealed record AuditVerificationResult(
    bool Ok,
    long EntriesChecked,
    long CheckpointsChecked,
    AuditHead Head,
    long? FirstBadSeq,
    AuditTamperKind Kind,
    string Detail)
{
    /// <summary>One readable line, as <c>conclave audit verify</c> prints it.</summary>
    public override string ToString() => Ok
        ? $"audit log ok: {EntriesChecked} entries, {CheckpointsChecked} signed checkpoints, head seq {Head.Seq} hash {Convert.ToHexStringLower(Head.Hash)}"
          + (HeadSigned ? ", head signed" : ", head NOT signed")
          + (AnchorSeq is long a ? $", contains anchor seq {a}" : "")
        : $"audit log FAILED at seq {FirstBadSeq}: {KindName(Kind)} ({Detail})";

    /// <summary>True when the head's signature verified.</summary>
    public bool HeadSigned { get; init; }

    /// <summary>The seq of the external anchor the log was shown to contain, if one was given.</summary>
    public long? AnchorSeq { get; init; }

    private static string KindName(AuditTamperKind kind) => kind switch
    {
        AuditTamperKind.BadCheckpoint => "bad checkpoint",
        AuditTamperKind.MissingCheckpoint => "missing checkpoint",
        AuditTamperKind.AnchorMismatch => "anchor mismatch",
        _ => kind.ToString().ToLowerInvariant(),
    };
}

/// <summary>Options for verification.</summary>
public sealed record AuditVerifyOptions
{
    /// <summary>If set, every checkpoint must be signed by this public key (the node's identity key).</summary>
    public byte[]? TrustedCheckpointKey { get; init; }

    /// <summary>
    /// An anchor exported earlier (<see cref="IAuditLog.GetAnchorAsync"/>, <c>conclave audit anchor</c>): its signature
    /// must verify, and the log must still contain the entry it names with the same hash. Unless
    /// <see cref="TrustedCheckpointKey"/> is set, the anchor's public key is then required of every checkpoint and the head.
    /// </summary>
    public AuditAnchor? Anchor { get; init; }

    /// <summary>Accept a non-empty log whose head was never signed (written without a checkpoint signer). Off by default.</summary>
    public bool AllowUnsigned { get; init; }
}
