using System.Security.Cryptography;
using Conclave.Node.Protocol;

namespace Conclave.Node.Threshold.Dkls23;

/// <summary>
/// The message kinds of DKLs23 on the cluster (docs/DKLS23.md "On the cluster"). Every DKLs23 protocol message travels
/// point to point inside an envelope signed by its sender, sealed to its recipient (bound to the session, the step, the
/// sender and the recipient): pairwise-setup messages between the run agreement keys of the run's DKG; signing rounds one
/// and two between the sender's and the recipient's session agreement keys (<see cref="SignSealContext"/>). The
/// coordinator only relays them. Payloads:
/// <list type="bullet">
/// <item>dkls.setup.start: keyId (and, for a refresh or reshare, the key's DKG session id and its epoch before the run) → one dkls.setup.message (sealed setup round one) per peer. Follows the FROST DKG of the
/// same run, which left the node its secp256k1 share.</item>
/// <item>dkls.setup.round2: relayed round-one messages → one dkls.setup.message (sealed setup round two) per peer.</item>
/// <item>dkls.setup.finish: relayed round-two messages → dkls.setup.done: version, public key (DklsPublicKey encoding);
/// the key share is stored pending under the node KEK and the run recorded Prepared first.</item>
/// <item>dkls.sign.round1: keyId, key version, signer node ids, path → dkls.sign.key (the node's session agreement key,
/// RunAgreementKey.Announcement, addressed to every peer), one dkls.sign.commit per peer (in the clear: the round-one
/// request hash and the broadcast commitment C_i, the same for every peer; DklsEquivocation). The round-one messages wait on the node.</item>
/// <item>dkls.sign.deliver: empty, relayed dkls.sign.key announcements → one dkls.sign.message (round one, sealed between
/// both session keys) per peer.</item>
/// <item>dkls.sign.round2: relayed dkls.sign.commit broadcasts and round-one messages → one
/// dkls.sign.message per peer and one dkls.sign.echo to all peers (the digest of every signer's C_j as this node holds them).</item>
/// <item>dkls.sign.round3: 32-byte digest, relayed round-two messages and echoes → dkls.share: R (33 bytes), signature share.</item>
/// <item>dkls.sign.abort: empty → nothing; the session (if this node runs it) is dropped and its per-peer slots freed.</item>
/// </list>
/// </summary>
public static class DklsMessages
{
    public const string SetupStart = "dkls.setup.start";
    public const string SetupRound2 = "dkls.setup.round2";
    public const string SetupFinish = "dkls.setup.finish";
    public const string SetupMessage = "dkls.setup.message";
    public const string SetupDone = "dkls.setup.done";
    public const string SignRound1 = "dkls.sign.round1";

    /// <summary>
    /// The delivery of round one: the peers' session agreement keys relayed, the node seals its round-one messages between
    /// its session key and each peer's (docs/DKLS23.md "Session agreement keys").
    /// </summary>
    public const string SignDeliver = "dkls.sign.deliver";
    public const string SignRound2 = "dkls.sign.round2";
    public const string SignRound3 = "dkls.sign.round3";
    public const string SignMessage = "dkls.sign.message";

    /// <summary>A signer's session agreement key (ephemeral X25519, signed by its identity key, bound to the session and key), sent in round one.</summary>
    public const string SignAgreementKey = "dkls.sign.key";

    /// <summary>A signer's round-one broadcast commitment to one peer, signed, in the clear (<see cref="DklsEquivocation"/>).</summary>
    public const string SignCommit = "dkls.sign.commit";

    /// <summary>A signer's echo in round two: the digest of every signer's broadcast commitment as it received them (DklsEcho.Digest).</summary>
    public const string SignEcho = "dkls.sign.echo";

    /// <summary>The coordinator gave up a signing attempt: the node drops the session's round state and frees its slots.</summary>
    public const string SignAbort = "dkls.sign.abort";
    public const string Share = "dkls.share";

    /// <summary>
    /// The HKDF context signing messages were sealed under static-static (long-term agreement keys) before session
    /// agreement keys; kept so tests can show a recording no longer opens that way.
    /// </summary>
    public static byte[] SealContext(ReadOnlySpan<byte> sessionId, uint round, uint from, uint to) =>
        new PayloadWriter().String("conclave/dkls23/p2p/v1").Bytes(sessionId).U32(round).U32(from).U32(to).ToArray();

    /// <summary>
    /// The message context of a signing-round message sealed with session agreement keys (the sealing adds the sender's
    /// and the recipient's public keys to it): session, round, sender and recipient.
    /// </summary>
    public static byte[] SignSealContext(ReadOnlySpan<byte> sessionId, uint round, uint from, uint to) =>
        new PayloadWriter().String("conclave/dkls23/sign/v2").Bytes(sessionId).U32(round).U32(from).U32(to).ToArray();

    /// <summary>
    /// The message context of a pairwise-setup message sealed between run agreement keys (RunAgreementKey.SealTo adds
    /// both run public keys to it): session, step, sender and recipient.
    /// </summary>
    public static byte[] RunSealContext(ReadOnlySpan<byte> sessionId, uint round, uint from, uint to) =>
        new PayloadWriter().String("conclave/dkls23/setup/v2").Bytes(sessionId).U32(round).U32(from).U32(to).ToArray();

    /// <summary>
    /// The pairwise setup's session id for the key-generation run <paramref name="runSession"/> (whose id is the DKG
    /// session id): distinct from it, fresh with every run.
    /// </summary>
    public static byte[] SetupSessionId(ReadOnlySpan<byte> runSession) =>
        SHA256.HashData([.. "conclave/dkls23/setup/v1"u8, .. runSession]);
}
