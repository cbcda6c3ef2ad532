using Conclave.Crypto.Ed25519;
using Conclave.Node.Config;

namespace Conclave.Node.Protocol;

/// <summary>
/// Rotating the coordinator's identity key, the key every request to a node is signed with (docs/ROTATION.md
/// "Rotating the coordinator's identity"). The server makes its next identity and a
/// <see cref="CoordinatorKeyRotationStatement"/>: the new public key and the current key's signature handing over to it.
/// Applying the statement to the cluster manifest makes the new key current and keeps the old one as retired, accepted
/// by the nodes until the end of an overlap; the server signs with the new key once its manifest names it.
/// </summary>
public static class CoordinatorKeyRotation
{
    private static ReadOnlySpan<byte> Domain => "conclave/coordinator-key-handover/v1"u8;

    /// <summary>What the old key signs: domain ‖ old identity key ‖ new identity key.</summary>
    public static byte[] HandoverTranscript(ReadOnlySpan<byte> oldIdentityKey, ReadOnlySpan<byte> newIdentityKey)
    {
        byte[] t = new byte[Domain.Length + oldIdentityKey.Length + newIdentityKey.Length];
        Domain.CopyTo(t);
        oldIdentityKey.CopyTo(t.AsSpan(Domain.Length));
        newIdentityKey.CopyTo(t.AsSpan(Domain.Length + oldIdentityKey.Length));
        return t;
    }

    /// <summary>The statement the server prints when it rotates from <paramref name="current"/> to <paramref name="next"/>.</summary>
    public static CoordinatorKeyRotationStatement CreateStatement(NodeIdentity current, NodeIdentity next)
    {
        ArgumentNullException.ThrowIfNull(current);
        ArgumentNullException.ThrowIfNull(next);
        return new CoordinatorKeyRotationStatement
        {
            IdentityKey = Convert.ToHexStringLower(current.IdentityPublicKey.Span),
            NewIdentityKey = Convert.ToHexStringLower(next.IdentityPublicKey.Span),
            HandoverSignature = Convert.ToHexStringLower(current.Sign(HandoverTranscript(current.IdentityPublicKey.Span, next.IdentityPublicKey.Span))),
        };
    }

    /// <summary>Checks a handover signature (hex inputs); false for malformed hex or wrong lengths.</summary>
    public static bool VerifyHandover(string oldIdentityKeyHex, string newIdentityKeyHex, string signatureHex)
    {
        try
        {
            byte[] oldKey = Convert.FromHexString(oldIdentityKeyHex);
            byte[] newKey = Convert.FromHexString(newIdentityKeyHex);
            byte[] signature = Convert.FromHexString(signatureHex);
            return oldKey.Length == 32 && newKey.Length == 32 && signature.Length == 64
                && Ed25519Signature.Instance.Verify(oldKey, HandoverTranscript(oldKey, newKey), signature);
        }
        catch (FormatException)
        {
            return false;
        }
    }

    /// <summary>
    /// Applies a statement to the manifest: its old key must be the manifest's coordinator key and the handover must be
    /// signed by it. The old key is kept as retired, accepted until <paramref name="acceptedUntil"/>. Every refusal is a
    /// <see cref="ConfigException"/>.
    /// </summary>
    public static void Apply(ClusterManifest manifest, CoordinatorKeyRotationStatement statement, DateTimeOffset acceptedUntil)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        ArgumentNullException.ThrowIfNull(statement);
        if (!string.Equals(manifest.CoordinatorIdentityKey, statement.IdentityKey, StringComparison.OrdinalIgnoreCase))
        {
            throw new ConfigException(string.Equals(manifest.CoordinatorIdentityKey, statement.NewIdentityKey, StringComparison.OrdinalIgnoreCase)
                ? "coordinator: the manifest already names the new identity key"
                : "coordinator: the statement rotates from an identity key the manifest does not name");
        }

        if (!VerifyHandover(manifest.CoordinatorIdentityKey, statement.NewIdentityKey, statement.HandoverSignature))
        {
            throw new ConfigException("coordinator: the handover is not signed by the current identity key");
        }

        manifest.RetiredCoordinatorKeys.Add(new RetiredCoordinatorKey
        {
            IdentityKey = manifest.CoordinatorIdentityKey,
            AcceptedUntilUnixMs = acceptedUntil.ToUnixTimeMilliseconds(),
            HandoverSignature = statement.HandoverSignature.ToLowerInvariant(),
        });
        manifest.CoordinatorIdentityKey = statement.NewIdentityKey.ToLowerInvariant();
    }

    /// <summary>Ends the overlap of every retired coordinator key now; returns how many were still accepted.</summary>
    public static int EndOverlap(ClusterManifest manifest, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        int ended = 0;
        foreach (RetiredCoordinatorKey r in manifest.RetiredCoordinatorKeys.Where(r => r.AcceptedUntilUnixMs > now.ToUnixTimeMilliseconds()))
        {
            r.AcceptedUntilUnixMs = now.ToUnixTimeMilliseconds();
            ended++;
        }

        return ended;
    }
}

/// <summary>The server's signed request to rotate the coordinator identity key (JSON, printed by <c>conclave coordinator rotate-keys</c>).</summary>
public sealed class CoordinatorKeyRotationStatement
{
    /// <summary>The coordinator identity key being replaced.</summary>
    public string IdentityKey { get; set; } = "";

    public string NewIdentityKey { get; set; } = "";

    /// <summary>The old key's signature over the handover (<see cref="CoordinatorKeyRotation.HandoverTranscript"/>).</summary>
    public string HandoverSignature { get; set; } = "";

    public string ToJson() => System.Text.Json.JsonSerializer.Serialize(this, ConfigJsonContext.Default.CoordinatorKeyRotationStatement);

    /// <summary>Parses a statement; malformed JSON is a <see cref="ConfigException"/>.</summary>
    public static CoordinatorKeyRotationStatement FromJson(string json)
    {
        try
        {
            return System.Text.Json.JsonSerializer.Deserialize(json, ConfigJsonContext.Default.CoordinatorKeyRotationStatement)
                ?? throw new ConfigException("the coordinator key rotation statement is empty");
        }
        catch (System.Text.Json.JsonException e)
        {
            throw new ConfigException($"the coordinator key rotation statement is not valid JSON: {e.Message}");
        }
    }
}
