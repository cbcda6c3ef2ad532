using System.Globalization;
using System.Security.Cryptography;
using Conclave.Storage;
using Conclave.Storage.Audit;

namespace Conclave.Node.Threshold.Engine;

/// <summary>
/// What the coordinator and the nodes write to their own audit logs about each FROST signing round (issue 14 item 8),
/// so <c>conclave audit reconcile</c> can match every signature share a node gave to a round the server's log records:
/// <code>
/// server: actor "coordinator", action "frost.sign",       key id, request_hash = SHA-256(message), result "v{version} session {hex}"
/// node:   actor "node-{id}",   action "frost.sign-share", key id, request_hash = SHA-256(message), result "v{version} session {hex} nonce {hex}"
/// </code>
/// The coordinator appends its entry (durably) before it asks any node for a share; a node appends its entry (durably,
/// group-committed with concurrent appends) before it returns the share. No secret is written: the message is hashed.
/// DKLs23 (ecdsa-dkls23) rounds are recorded the same way under their own actions, the message being the 32-byte digest
/// and the session the one of the round that hands the nodes the digest (round three, or the one online round of a
/// pooled presignature, whose node entry adds the presignature id):
/// <code>
/// server: actor "coordinator", action "dkls.sign",       key id, request_hash = SHA-256(digest), result "v{version} session {hex}"
/// node:   actor "node-{id}",   action "dkls.sign-share", key id, request_hash = SHA-256(digest), result "v{version} session {hex}[ presignature {hex}]"
/// </code>
/// </summary>
public static class SignAuditRecords
{
    public const string CoordinatorAction = "frost.sign";
    public const string NodeAction = "frost.sign-share";

    /// <summary>The server's entry for a DKLs23 signing round.</summary>
    public const string DklsCoordinatorAction = "dkls.sign";

    /// <summary>A node's entry for a DKLs23 signature share.</summary>
    public const string DklsNodeAction = "dkls.sign-share";

    /// <summary>The coordinator's entry for one DKLs23 signing round (the session that hands the nodes <paramref name="digest"/>).</summary>
    public static AuditEntryInput DklsCoordinatorEntry(string keyId, int version, ReadOnlySpan<byte> digest, ReadOnlySpan<byte> sessionId) =>
        new("coordinator", DklsCoordinatorAction, keyId, SHA256.HashData(digest), "allow", Round(version, sessionId));

    /// <summary>
    /// Appends the node's record of a DKLs23 share (durable before it returns; the share must not leave the node before).
    /// <paramref name="presignatureId"/> is empty for a three-round signature.
    /// </summary>
    public static Task RecordDklsShareAsync(IConclaveStore store, uint nodeId, string keyId, int version, ReadOnlySpan<byte> digest,
        ReadOnlySpan<byte> sessionId, ReadOnlySpan<byte> presignatureId, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(store);
        string result = Round(version, sessionId) + (presignatureId.IsEmpty ? "" : " presignature " + Convert.ToHexStringLower(presignatureId));
        return store.Audit.AppendAsync(new AuditEntryInput("node-" + nodeId.ToString(CultureInfo.InvariantCulture), DklsNodeAction, keyId, SHA256.HashData(digest), "allow", result), ct);
    }

    /// <summary>The protocol family of a sign-audit action ("frost" or "dkls"), null for any other action.</summary>
    public static string? FamilyOf(string action) => action switch
    {
        CoordinatorAction or NodeAction => "frost",
        DklsCoordinatorAction or DklsNodeAction => "dkls",
        _ => null,
    };

    /// <summary>The coordinator's entry for one signing round (one session).</summary>
    public static AuditEntryInput CoordinatorEntry(string keyId, int version, ReadOnlySpan<byte> message, ReadOnlySpan<byte> sessionId) =>
        new("coordinator", CoordinatorAction, keyId, SHA256.HashData(message), "allow", Round(version, sessionId));

    /// <summary>
    /// Appends the node's record of a share to the node's own hash-chained log and waits until it is durable; the
    /// share must not leave the node before this returns (a failed append fails the signing step).
    /// </summary>
    public static Task RecordShareAsync(IConclaveStore store, uint nodeId, string keyId, int version, ReadOnlySpan<byte> message,
        ReadOnlySpan<byte> nonceId, ReadOnlySpan<byte> sessionId, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(store);
        var entry = new AuditEntryInput("node-" + nodeId.ToString(CultureInfo.InvariantCulture), NodeAction, keyId, SHA256.HashData(message), "allow",
            Round(version, sessionId) + " nonce " + Convert.ToHexStringLower(nonceId));
        return store.Audit.AppendAsync(entry, ct);
    }

    /// <summary>The round a coordinator or node entry names: "v{version} session {hex}" (the node's nonce or presignature suffix dropped).</summary>
    public static string? RoundOf(AuditEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        int suffix = entry.Result.IndexOf(" nonce ", StringComparison.Ordinal);
        if (suffix < 0)
        {
            suffix = entry.Result.IndexOf(" presignature ", StringComparison.Ordinal);
        }

        string round = suffix < 0 ? entry.Result : entry.Result[..suffix];
        return round.StartsWith('v') && round.Contains(" session ", StringComparison.Ordinal) ? round : null;
    }

    private static string Round(int version, ReadOnlySpan<byte> sessionId) =>
        "v" + version.ToString(CultureInfo.InvariantCulture) + " session " + Convert.ToHexStringLower(sessionId);
}
