using System.Buffers.Binary;
using Conclave.Crypto.Ed25519;
using Conclave.Node.Config;

namespace Conclave.Node.Protocol;

/// <summary>
/// Rotating a node's long-term identity and agreement keys (docs/ROTATION.md "Rotating a node's identity"). The node
/// makes a new identity (<c>identity.next.sealed</c>, under its KEK) and a <see cref="NodeKeyRotationStatement"/>: the
/// new public keys, the new agreement key certified by the new identity key, and the old identity key's signature
/// handing over to the new one. Applying the statement to the cluster manifest makes the new keys current and keeps
/// the old identity key as retired, accepted on live traffic until the end of an overlap (so in-flight sessions
/// finish) and for verifying transcripts signed before it; the node switches to the new identity when it restarts on
/// the new manifest.
/// </summary>
public static class NodeKeyRotation
{
    private static ReadOnlySpan<byte> Domain => "conclave/node-key-handover/v1"u8;

    /// <summary>What the old identity key signs: domain ‖ node id ‖ old identity key ‖ new identity key ‖ new agreement key.</summary>
    public static byte[] HandoverTranscript(uint nodeId, ReadOnlySpan<byte> oldIdentityKey, ReadOnlySpan<byte> newIdentityKey, ReadOnlySpan<byte> newAgreementKey)
    {
        byte[] t = new byte[Domain.Length + 4 + oldIdentityKey.Length + newIdentityKey.Length + newAgreementKey.Length];
        Span<byte> s = t;
        Domain.CopyTo(s);
        BinaryPrimitives.WriteUInt32BigEndian(s[Domain.Length..], nodeId);
        int p = Domain.Length + 4;
        oldIdentityKey.CopyTo(s[p..]);
        p += oldIdentityKey.Length;
        newIdentityKey.CopyTo(s[p..]);
        p += newIdentityKey.Length;
        newAgreementKey.CopyTo(s[p..]);
        return t;
    }

    /// <summary>The statement a node prints when it rotates from <paramref name="current"/> to <paramref name="next"/>.</summary>
    public static NodeKeyRotationStatement CreateStatement(NodeIdentity current, NodeIdentity next)
    {
        ArgumentNullException.ThrowIfNull(current);
        ArgumentNullException.ThrowIfNull(next);
        if (current.NodeId != next.NodeId)
        {
            throw new ArgumentException("both identities must belong to the same node", nameof(next));
        }

        return new NodeKeyRotationStatement
        {
            NodeId = current.NodeId,
            IdentityKey = Convert.ToHexStringLower(current.IdentityPublicKey.Span),
            NewIdentityKey = Convert.ToHexStringLower(next.IdentityPublicKey.Span),
            NewAgreementKey = Convert.ToHexStringLower(next.AgreementPublicKey),
            NewAgreementKeySignature = Convert.ToHexStringLower(next.AgreementKeySignature),
            HandoverSignature = Convert.ToHexStringLower(current.Sign(HandoverTranscript(current.NodeId, current.IdentityPublicKey.Span, next.IdentityPublicKey.Span, next.AgreementPublicKey))),
        };
    }

    /// <summary>Checks a handover signature (hex inputs); false for malformed hex.</summary>
    public static bool VerifyHandover(uint nodeId, string oldIdentityKeyHex, string newIdentityKeyHex, string newAgreementKeyHex, string signatureHex)
    {
        try
        {
            byte[] oldKey = Convert.FromHexString(oldIdentityKeyHex);
            return oldKey.Length == 32 && Ed25519Signature.Instance.Verify(oldKey,
                HandoverTranscript(nodeId, oldKey, Convert.FromHexString(newIdentityKeyHex), Convert.FromHexString(newAgreementKeyHex)),
                Convert.FromHexString(signatureHex));
        }
        catch (FormatException)
        {
            return false;
        }
    }

    /// <summary>
    /// Applies a statement to the manifest: the node's current identity key must be the statement's old key, the new
    /// agreement key must be certified by the new identity key and the handover signed by the old one. The old key is
    /// kept as retired, accepted on live traffic until <paramref name="acceptedUntil"/>. Every refusal is a
    /// <see cref="ConfigException"/> naming the node.
    /// </summary>
    public static void Apply(ClusterManifest manifest, NodeKeyRotationStatement statement, DateTimeOffset acceptedUntil)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        ArgumentNullException.ThrowIfNull(statement);
        ClusterNode node = manifest.Node(statement.NodeId);
        if (!string.Equals(node.IdentityKey, statement.IdentityKey, StringComparison.OrdinalIgnoreCase))
        {
            throw new ConfigException(string.Equals(node.IdentityKey, statement.NewIdentityKey, StringComparison.OrdinalIgnoreCase)
                ? $"node {statement.NodeId}: the manifest already names the new identity key"
                : $"node {statement.NodeId}: the statement rotates from an identity key the manifest does not name");
        }

        byte[] newKey, newAgreement, newAgreementSignature;
        try
        {
            newKey = Convert.FromHexString(statement.NewIdentityKey);
            newAgreement = Convert.FromHexString(statement.NewAgreementKey);
            newAgreementSignature = Convert.FromHexString(statement.NewAgreementKeySignature);
        }
        catch (FormatException)
        {
            throw new ConfigException($"node {statement.NodeId}: the statement's keys are not hex");
        }

        if (newKey.Length != 32 || newAgreement.Length != 32 || newAgreementSignature.Length != 64
            || !NodeIdentity.VerifyAgreementKey(statement.NodeId, newKey, newAgreement, newAgreementSignature))
        {
            throw new ConfigException($"node {statement.NodeId}: the new agreement key is not signed by the new identity key");
        }

        if (!VerifyHandover(statement.NodeId, node.IdentityKey, statement.NewIdentityKey, statement.NewAgreementKey, statement.HandoverSignature))
        {
            throw new ConfigException($"node {statement.NodeId}: the handover is not signed by the current identity key");
        }

        node.RetiredIdentityKeys.Add(new RetiredIdentityKey
        {
            IdentityKey = node.IdentityKey,
            AgreementKey = node.AgreementKey,
            AcceptedUntilUnixMs = acceptedUntil.ToUnixTimeMilliseconds(),
            HandoverSignature = statement.HandoverSignature.ToLowerInvariant(),
        });
        node.IdentityKey = statement.NewIdentityKey.ToLowerInvariant();
        node.AgreementKey = statement.NewAgreementKey.ToLowerInvariant();
        node.AgreementKeySignature = statement.NewAgreementKeySignature.ToLowerInvariant();
    }

    /// <summary>Ends the overlap of every retired key of a node now: from then on only its current key is accepted on live traffic.</summary>
    public static int EndOverlap(ClusterManifest manifest, uint nodeId, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        int ended = 0;
        foreach (RetiredIdentityKey r in manifest.Node(nodeId).RetiredIdentityKeys.Where(r => r.AcceptedUntilUnixMs > now.ToUnixTimeMilliseconds()))
        {
            r.AcceptedUntilUnixMs = now.ToUnixTimeMilliseconds();
            ended++;
        }

        return ended;
    }
}

/// <summary>A node's signed request to rotate its identity and agreement keys (JSON, printed by <c>conclave node rotate-keys</c>).</summary>
public sealed class NodeKeyRotationStatement
{
    public uint NodeId { get; set; }

    /// <summary>The identity key being replaced.</summary>
    public string IdentityKey { get; set; } = "";

    public string NewIdentityKey { get; set; } = "";

    public string NewAgreementKey { get; set; } = "";

    /// <summary>The new identity key's signature over the new agreement key (as in the manifest).</summary>
    public string NewAgreementKeySignature { get; set; } = "";

    /// <summary>The old identity key's signature over the handover (<see cref="NodeKeyRotation.HandoverTranscript"/>).</summary>
    public string HandoverSignature { get; set; } = "";

    public string ToJson() => System.Text.Json.JsonSerializer.Serialize(this, ConfigJsonContext.Default.NodeKeyRotationStatement);

    /// <summary>Parses a statement; malformed JSON is a <see cref="ConfigException"/>.</summary>
    public static NodeKeyRotationStatement FromJson(string json)
    {
        try
        {
            return System.Text.Json.JsonSerializer.Deserialize(json, ConfigJsonContext.Default.NodeKeyRotationStatement)
                ?? throw new ConfigException("the key rotation statement is empty");
        }
        catch (System.Text.Json.JsonException e)
        {
            throw new ConfigException($"the key rotation statement is not valid JSON: {e.Message}");
        }
    }
}
