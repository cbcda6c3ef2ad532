using System.Buffers.Binary;
using System.Text;
using Conclave.Node.Threshold.Engine;
using Conclave.Node.Threshold.Sharing;

namespace Conclave.Node.Frost;

/// <summary>Message kinds of the FROST protocols between the coordinator and the nodes, and shared encodings.</summary>
public static class FrostMessages
{
    /// <summary>Coordinator → node: a dealer-split key package sealed to the node's agreement key (key import).</summary>
    public const string Import = "frost.import";

    /// <summary>Node → coordinator: the public key package the node stored.</summary>
    public const string Imported = "frost.imported";

    /// <summary>Coordinator → node: make a batch of round-1 commitments for a key (nonce pool).</summary>
    public const string Commit = "frost.commit";

    /// <summary>Node → coordinator: nonce ids and their public commitments.</summary>
    public const string Commitments = "frost.commitments";

    /// <summary>Coordinator → node: 1..256 signing packages, each with one pooled nonce (<see cref="FrostSignBatch"/>).</summary>
    public const string Sign = "frost.sign";

    /// <summary>Node → coordinator: a signature share or a refusal per item of the sign step (<see cref="FrostSignBatch"/>).</summary>
    public const string Shares = "frost.shares";

    /// <summary>Coordinator → node: start a DKG, refresh or reshare run (the commit step).</summary>
    public const string DkgStart = "frost.dkg.start";

    /// <summary>
    /// Dealer → every participant (broadcast): its <c>DkgCommitment</c> (hashes of its round-one package and chain-code
    /// contribution, and its per-run signing key); empty from a participant that only receives.
    /// </summary>
    public const string DkgCommitment = "frost.dkg.commitment";

    /// <summary>
    /// Coordinator → every dealer and receiver, relaying every other dealer's commitment: reveal the round-one package
    /// (refused unless exactly one commitment from every other dealer arrived, each sent by the dealer it names).
    /// </summary>
    public const string DkgReveal = "frost.dkg.reveal";

    /// <summary>
    /// Dealer or receiver → every participant (broadcast), with its commitment: its ephemeral X25519 agreement key for
    /// this run, signed by its identity key and bound to the run, the key and the node (<see cref="Protocol.RunAgreementKey"/>).
    /// </summary>
    public const string DkgAgreementKey = "frost.dkg.agreement-key";

    /// <summary>Node → every participant (broadcast): the round-one package (Feldman commitments and proof of knowledge), after the reveal step.</summary>
    public const string DkgRound1 = "frost.dkg.round1";

    /// <summary>Coordinator → node, relaying every round-one package: compute round two.</summary>
    public const string DkgRound2 = "frost.dkg.round2";

    /// <summary>Node → one receiver: a round-two share, sealed from the dealer's run agreement key to the receiver's.</summary>
    public const string DkgShare = "frost.dkg.share";

    /// <summary>Coordinator → receiver, relaying the shares addressed to it: verify and compute the new key.</summary>
    public const string DkgFinish = "frost.dkg.finish";

    /// <summary>Receiver → everyone: the confirmation (and the public key package it computed).</summary>
    public const string DkgConfirm = "frost.dkg.confirm";

    /// <summary>
    /// Receiver → coordinator, in place of a confirmation: verifiable complaints (<c>DkgComplaint</c>, each carrying the
    /// accused dealer's signed round-two message) about shares or chain-code contributions that do not match what their
    /// dealers committed to. Payload: count (u32), then each encoded complaint. The coordinator judges them with
    /// <c>Dkg.VerifyComplaint</c> and aborts the run.
    /// </summary>
    public const string DkgComplaint = "frost.dkg.complaint";

    /// <summary>Most complaints one complaint message may carry (one per other dealer at most).</summary>
    public const int MaxComplaints = 255;

    /// <summary>Coordinator → receiver, relaying every confirmation: store the new key (first phase).</summary>
    public const string DkgComplete = "frost.dkg.complete";

    /// <summary>Node → coordinator: the new key is stored (at the returned version).</summary>
    public const string DkgDone = "frost.dkg.done";

    /// <summary>Coordinator → node, after every node stored the new key: erase the old share (second phase).</summary>
    public const string DkgRetire = "frost.dkg.retire";

    /// <summary>Node → coordinator: the old share is erased.</summary>
    public const string DkgRetired = "frost.dkg.retired";

    /// <summary>
    /// Coordinator → receiver of a prepared run (same session id as the run): make the pending version current.
    /// Idempotent; the node answers <see cref="RotationCommitted"/> again for a run it already committed.
    /// </summary>
    public const string RotationCommit = RotationMessages.Commit;

    /// <summary>Receiver → everyone: signed evidence that it made the run's new version current (key id, version, package hash).</summary>
    public const string RotationCommitted = RotationMessages.Committed;

    /// <summary>
    /// Coordinator → every old and new holder, relaying every receiver's <see cref="RotationCommitted"/>: erase the old
    /// version (a leaving dealer: the key). A node erases only with a signed commit from every receiver of the same run.
    /// </summary>
    public const string RotationRetire = RotationMessages.Retire;

    /// <summary>Node → coordinator: the run is retired on this node.</summary>
    public const string RotationRetired = RotationMessages.Retired;

    /// <summary>Coordinator → every participant of a run that was not prepared: discard the pending version.</summary>
    public const string RotationAbort = RotationMessages.Abort;

    /// <summary>Node → coordinator: the run is aborted on this node (or was never known).</summary>
    public const string RotationAborted = RotationMessages.Aborted;

    /// <summary>Coordinator → node: report the key's current version and unfinished run (recovery and convergence checks).</summary>
    public const string RotationStatus = RotationMessages.Status;

    /// <summary>Node → coordinator: current version, key state, unfinished run id and state.</summary>
    public const string RotationStatusReply = RotationMessages.StatusReply;

    /// <summary>Coordinator → every helper and the lost node: announce a run agreement key for this repair.</summary>
    public const string RepairAgreement = "frost.repair.agreement";

    /// <summary>Helper or lost node → the other participants: its signed run agreement key (<see cref="Protocol.RunAgreementKey"/>).</summary>
    public const string RepairAgreementKey = "frost.repair.agreement-key";

    /// <summary>Coordinator → helper, relaying the other participants' run keys: start repairing a lost participant's share (step one, δ pieces).</summary>
    public const string RepairStart = "frost.repair.start";

    /// <summary>Helper → helper: one δ piece, sealed between their run agreement keys.</summary>
    public const string RepairDelta = "frost.repair.delta";

    /// <summary>Coordinator → helper, relaying the δ pieces addressed to it: compute σ (step two).</summary>
    public const string RepairSigma = "frost.repair.sigma";

    /// <summary>Helper → lost participant: σ, sealed between their run agreement keys.</summary>
    public const string RepairSigmaShare = "frost.repair.sigma-share";

    /// <summary>
    /// Helper → everyone (public, kept in the repair transcript): that it took part in the repair run and which sealed σ
    /// it sent (<see cref="RepairEvidence"/>).
    /// </summary>
    public const string RepairContributed = "frost.repair.contributed";

    /// <summary>Coordinator → lost participant, relaying the σ values: rebuild and store the share (step three).</summary>
    public const string RepairFinish = "frost.repair.finish";

    /// <summary>
    /// Lost participant → coordinator: the share is rebuilt, verified and stored as pending; the payload is public
    /// evidence for the repair transcript (<see cref="RepairEvidence"/>).
    /// </summary>
    public const string RepairDone = "frost.repair.done";

    /// <summary>
    /// Message context of a sealed DKG share: session, sender and recipient (<see cref="Protocol.RunAgreementKey.SealingContext"/>
    /// appends both run keys). v2: sealed between run keys; v1 was static-static between long-term agreement keys.
    /// </summary>
    public static byte[] DkgShareContext(ReadOnlySpan<byte> sessionId, uint sender, uint recipient)
        => PointToPointContext("conclave/dkg-share/v2"u8, sessionId, sender, recipient);

    /// <summary>Message context of a sealed repair message (v2: between run keys).</summary>
    public static byte[] RepairContext(ReadOnlySpan<byte> sessionId, uint sender, uint recipient)
        => PointToPointContext("conclave/repair/v2"u8, sessionId, sender, recipient);

    private static byte[] PointToPointContext(ReadOnlySpan<byte> domain, ReadOnlySpan<byte> sessionId, uint sender, uint recipient)
    {
        byte[] label = domain.ToArray();
        byte[] r = new byte[label.Length + 4 + sessionId.Length + 8];
        label.CopyTo(r, 0);
        BinaryPrimitives.WriteUInt32BigEndian(r.AsSpan(label.Length), (uint)sessionId.Length);
        sessionId.CopyTo(r.AsSpan(label.Length + 4));
        BinaryPrimitives.WriteUInt32BigEndian(r.AsSpan(label.Length + 4 + sessionId.Length), sender);
        BinaryPrimitives.WriteUInt32BigEndian(r.AsSpan(label.Length + 8 + sessionId.Length), recipient);
        return r;
    }

    /// <summary>Most commitments one request may ask for.</summary>
    public const int MaxBatch = 1024;

    /// <summary>The HKDF info (and AEAD context) a sealed key package is bound to: session, recipient node and key id.</summary>
    public static byte[] ImportContext(ReadOnlySpan<byte> sessionId, uint nodeId, string keyId)
    {
        byte[] label = "conclave/frost-import/v1"u8.ToArray();
        byte[] key = Encoding.UTF8.GetBytes(keyId);
        byte[] r = new byte[label.Length + 4 + sessionId.Length + 4 + 4 + key.Length];
        var span = r.AsSpan();
        label.CopyTo(span);
        int p = label.Length;
        BinaryPrimitives.WriteUInt32BigEndian(span[p..], (uint)sessionId.Length);
        p += 4;
        sessionId.CopyTo(span[p..]);
        p += sessionId.Length;
        BinaryPrimitives.WriteUInt32BigEndian(span[p..], nodeId);
        p += 4;
        BinaryPrimitives.WriteUInt32BigEndian(span[p..], (uint)key.Length);
        p += 4;
        key.CopyTo(span[p..]);
        return r;
    }
}
