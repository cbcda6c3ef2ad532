using System.Text.Json;

namespace Conclave.Node.Config;

/// <summary>
/// The public description of a cluster, the same file on every host: the coordinator's identity key and, per node,
/// its id, address, identity key and certified agreement key. Nodes pin their peers' and the coordinator's keys
/// from this file, so a coordinator cannot impersonate a node or substitute keys. `conclave up` writes it;
/// on separate hosts the operator assembles it from `conclave node init` output (docs/OPERATIONS.md).
/// </summary>
public sealed class ClusterManifest
{
    public string CoordinatorIdentityKey { get; set; } = "";

    public List<ClusterNode> Nodes { get; set; } = [];

    /// <summary>
    /// The coordinator's former identity keys, oldest first, each with the end of its overlap and its signature handing
    /// over to its successor (docs/ROTATION.md "Rotating the coordinator's identity"). Requests signed by a retired key
    /// are accepted by the nodes until <see cref="RetiredCoordinatorKey.AcceptedUntilUnixMs"/>, refused after.
    /// </summary>
    public List<RetiredCoordinatorKey> RetiredCoordinatorKeys { get; set; } = [];

    /// <summary>
    /// TLS certificates of the cluster (node server certificates, coordinator client certificates) that are refused in
    /// a TLS handshake from <see cref="RevokedCertificate.RefusedFromUnixMs"/> on, although they chain to the cluster CA
    /// (docs/ROTATION.md "Rotating TLS certificates").
    /// </summary>
    public List<RevokedCertificate> RevokedCertificates { get; set; } = [];

    /// <summary>
    /// Nodes evicted by the manifest itself (docs/ROTATION.md "A manifest-pinned eviction"): every node and the
    /// coordinator refuse them as they refuse a node the coordinator told them was evicted, and no coordinator notice
    /// re-admits them (a stolen coordinator key cannot bring them back); only removing them from this list does.
    /// </summary>
    public List<PinnedEviction> EvictedNodes { get; set; } = [];

    /// <summary>True when this manifest evicts node <paramref name="id"/>.</summary>
    public bool IsEvictionPinned(uint id)
    {
        List<PinnedEviction> pinned = EvictedNodes;
        for (int i = 0; i < pinned.Count; i++)
        {
            if (pinned[i].Id == id)
            {
                return true;
            }
        }

        return false;
    }

    public static ClusterManifest Load(string path)
    {
        if (!File.Exists(path))
        {
            throw new ConfigException($"cluster manifest not found: {path}");
        }

        ClusterManifest? m;
        try
        {
            m = JsonSerializer.Deserialize(File.ReadAllText(path), ConfigJsonContext.Default.ClusterManifest);
        }
        catch (JsonException e)
        {
            throw new ConfigException($"cluster manifest {path} is not valid JSON: {e.Message}");
        }

        if (m is null)
        {
            throw new ConfigException($"cluster manifest {path} is empty");
        }

        m.Validate();
        return m;
    }

    /// <summary>
    /// Writes the manifest owner-only, through a temporary file renamed over <paramref name="path"/>, so a process
    /// re-reading it (<see cref="ManifestWatch"/>) sees the old file or the new one, never half of one.
    /// </summary>
    public void Save(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string tmp = path + ".tmp";
        Conclave.Storage.OwnerOnly.WriteAllText(tmp, JsonSerializer.Serialize(this, ConfigJsonContext.Default.ClusterManifest));
        File.Move(tmp, path, overwrite: true);
    }

    public void Validate()
    {
        RequireHex(CoordinatorIdentityKey, 32, "coordinatorIdentityKey");

        // Each retired coordinator key must have handed over to its successor (the next retired key, or the current one).
        for (int i = 0; i < RetiredCoordinatorKeys.Count; i++)
        {
            RetiredCoordinatorKey r = RetiredCoordinatorKeys[i];
            RequireHex(r.IdentityKey, 32, $"retiredCoordinatorKeys[{i}].identityKey");
            RequireHex(r.HandoverSignature, 64, $"retiredCoordinatorKeys[{i}].handoverSignature");
            string next = i + 1 < RetiredCoordinatorKeys.Count ? RetiredCoordinatorKeys[i + 1].IdentityKey : CoordinatorIdentityKey;
            if (!Protocol.CoordinatorKeyRotation.VerifyHandover(r.IdentityKey, next, r.HandoverSignature))
            {
                throw new ConfigException($"cluster manifest: retired coordinator key {i} did not sign the handover to its successor");
            }
        }

        for (int i = 0; i < RevokedCertificates.Count; i++)
        {
            RequireHex(RevokedCertificates[i].Sha256, 32, $"revokedCertificates[{i}].sha256");
        }

        if (Nodes.Count == 0)
        {
            throw new ConfigException("cluster manifest lists no nodes");
        }

        var pinnedIds = new HashSet<uint>();
        foreach (PinnedEviction e in EvictedNodes)
        {
            if (!pinnedIds.Add(e.Id) || Nodes.All(n => n.Id != e.Id))
            {
                throw new ConfigException($"cluster manifest: evictedNodes names node {e.Id}, which is not a node of the manifest or is listed twice");
            }
        }

        var ids = new HashSet<uint>();
        foreach (ClusterNode n in Nodes)
        {
            if (n.Id == 0 || n.Id > 255 || !ids.Add(n.Id))
            {
                throw new ConfigException($"cluster manifest: node id {n.Id} is zero, above 255 or listed twice");
            }

            _ = ListenEndpoint.Parse(n.Address);
            RequireHex(n.IdentityKey, 32, $"nodes[{n.Id}].identityKey");
            RequireHex(n.AgreementKey, 32, $"nodes[{n.Id}].agreementKey");
            RequireHex(n.AgreementKeySignature, 64, $"nodes[{n.Id}].agreementKeySignature");
            if (!Protocol.NodeIdentity.VerifyAgreementKey(n.Id, Convert.FromHexString(n.IdentityKey), Convert.FromHexString(n.AgreementKey), Convert.FromHexString(n.AgreementKeySignature)))
            {
                throw new ConfigException($"cluster manifest: the agreement key of node {n.Id} is not signed by its identity key");
            }

            // Each retired identity key must have handed over to its successor (the next retired key, or the current one)
            // with its own signature (docs/ROTATION.md "Rotating a node's identity").
            for (int i = 0; i < n.RetiredIdentityKeys.Count; i++)
            {
                RetiredIdentityKey r = n.RetiredIdentityKeys[i];
                RequireHex(r.IdentityKey, 32, $"nodes[{n.Id}].retiredIdentityKeys[{i}].identityKey");
                RequireHex(r.HandoverSignature, 64, $"nodes[{n.Id}].retiredIdentityKeys[{i}].handoverSignature");
                (string nextKey, string nextAgreement) = i + 1 < n.RetiredIdentityKeys.Count
                    ? (n.RetiredIdentityKeys[i + 1].IdentityKey, n.RetiredIdentityKeys[i + 1].AgreementKey)
                    : (n.IdentityKey, n.AgreementKey);
                RequireHex(r.AgreementKey, 32, $"nodes[{n.Id}].retiredIdentityKeys[{i}].agreementKey");
                if (!Protocol.NodeKeyRotation.VerifyHandover(n.Id, r.IdentityKey, nextKey, nextAgreement, r.HandoverSignature))
                {
                    throw new ConfigException($"cluster manifest: retired identity key {i} of node {n.Id} did not sign the handover to its successor");
                }
            }
        }
    }

    /// <summary>
    /// The coordinator identity keys whose signatures the nodes accept at <paramref name="nowUnixMs"/>: the current key,
    /// and each retired key whose overlap has not ended.
    /// </summary>
    public IReadOnlyList<byte[]> AcceptedCoordinatorKeys(long nowUnixMs)
    {
        string hex = CoordinatorIdentityKey;
        CoordinatorKeyCache? current = Volatile.Read(ref _coordinatorKey);
        if (current is null || !string.Equals(current.Hex, hex, StringComparison.Ordinal))
        {
            current = new CoordinatorKeyCache(hex, [Convert.FromHexString(hex)]);
            Volatile.Write(ref _coordinatorKey, current);
        }

        List<RetiredCoordinatorKey> retired = RetiredCoordinatorKeys;
        List<byte[]>? keys = null;
        for (int i = 0; i < retired.Count; i++)
        {
            if (nowUnixMs < retired[i].AcceptedUntilUnixMs)
            {
                keys ??= [current.Keys[0]];
                keys.Add(Convert.FromHexString(retired[i].IdentityKey));
            }
        }

        return keys is null ? current.Keys : keys;
    }

    private CoordinatorKeyCache? _coordinatorKey;

    private sealed record CoordinatorKeyCache(string Hex, byte[][] Keys);

    /// <summary>
    /// True when the certificate whose SHA-256 thumbprint (of its DER encoding) is <paramref name="sha256"/> is revoked in
    /// this manifest and refused at <paramref name="nowUnixMs"/>.
    /// </summary>
    public bool IsCertificateRefused(ReadOnlySpan<byte> sha256, long nowUnixMs)
    {
        List<RevokedCertificate> revoked = RevokedCertificates;
        for (int i = 0; i < revoked.Count; i++)
        {
            if (nowUnixMs >= revoked[i].RefusedFromUnixMs && Convert.FromHexString(revoked[i].Sha256).AsSpan().SequenceEqual(sha256))
            {
                return true;
            }
        }

        return false;
    }

    public ClusterNode Node(uint id) => Nodes.FirstOrDefault(n => n.Id == id) ?? throw new ConfigException($"node {id} is not in the cluster manifest");

    /// <summary>
    /// The identity keys whose signatures are accepted on live traffic from node <paramref name="id"/> at
    /// <paramref name="nowUnixMs"/>: its current key, and each retired key whose overlap has not ended. Empty for an
    /// unknown node.
    /// </summary>
    /// <remarks>
    /// On the signing path (every relayed message and every node reply) this is called per step, so a node without a
    /// retired key in its overlap answers a cached, decoded list (no hex decoding, no allocation). The arrays are
    /// public keys shared between callers: read them, never write to them.
    /// </remarks>
    public IReadOnlyList<byte[]> AcceptedIdentityKeys(uint id, long nowUnixMs)
    {
        List<ClusterNode> nodes = Nodes;
        for (int i = 0; i < nodes.Count; i++)
        {
            if (nodes[i].Id == id)
            {
                return nodes[i].AcceptedIdentityKeys(nowUnixMs);
            }
        }

        return [];
    }

    /// <summary>
    /// The identity keys that may have signed a message node <paramref name="id"/> issued at <paramref name="issuedAtUnixMs"/>
    /// (for transcripts checked later): the current key, and each retired key whose overlap ended after that time.
    /// </summary>
    public IReadOnlyList<byte[]> IdentityKeysAt(uint id, long issuedAtUnixMs) => AcceptedIdentityKeys(id, issuedAtUnixMs);

    /// <summary>
    /// Takes the node list and coordinator key of <paramref name="fresh"/> (a validated reload of the same file): every
    /// reader of this instance sees the new keys from its next look-up on.
    /// </summary>
    public void ReplaceWith(ClusterManifest fresh)
    {
        ArgumentNullException.ThrowIfNull(fresh);
        // The retired keys first, so a reader never sees the new current key without the history that accepts the old.
        RetiredCoordinatorKeys = fresh.RetiredCoordinatorKeys;
        CoordinatorIdentityKey = fresh.CoordinatorIdentityKey;
        RevokedCertificates = fresh.RevokedCertificates;
        EvictedNodes = fresh.EvictedNodes;
        Nodes = fresh.Nodes;
    }

    private static void RequireHex(string value, int bytes, string field)
    {
        if (value.Length != bytes * 2 || !NodeConfig.IsHex(value))
        {
            throw new ConfigException($"{field} must be {bytes * 2} hex characters");
        }
    }
}

public sealed class ClusterNode
{
    public uint Id { get; set; }

    public string Address { get; set; } = "";

    public string IdentityKey { get; set; } = "";

    public string AgreementKey { get; set; } = "";

    public string AgreementKeySignature { get; set; } = "";

    /// <summary>
    /// The node's former identity keys, oldest first, each with the agreement key it had, the end of its overlap and
    /// its signature handing over to its successor. Live traffic signed by a retired key is accepted until
    /// <see cref="RetiredIdentityKey.AcceptedUntilUnixMs"/>; transcripts signed before then keep verifying.
    /// </summary>
    public List<RetiredIdentityKey> RetiredIdentityKeys { get; set; } = [];

    // The decoded current identity key, keyed by the hex it was decoded from, so a changed IdentityKey is noticed.
    private CurrentKey? _current;

    /// <summary>The identity keys accepted from this node at <paramref name="nowUnixMs"/> (see <see cref="ClusterManifest.AcceptedIdentityKeys"/>).</summary>
    internal IReadOnlyList<byte[]> AcceptedIdentityKeys(long nowUnixMs)
    {
        string hex = IdentityKey;
        CurrentKey? current = Volatile.Read(ref _current);
        if (current is null || !string.Equals(current.Hex, hex, StringComparison.Ordinal))
        {
            current = new CurrentKey(hex, [Convert.FromHexString(hex)]);
            Volatile.Write(ref _current, current);
        }

        List<RetiredIdentityKey> retired = RetiredIdentityKeys;
        List<byte[]>? keys = null;
        for (int i = 0; i < retired.Count; i++)
        {
            if (nowUnixMs < retired[i].AcceptedUntilUnixMs)
            {
                keys ??= [current.Keys[0]];
                keys.Add(Convert.FromHexString(retired[i].IdentityKey));
            }
        }

        return keys is null ? current.Keys : keys;
    }

    private sealed record CurrentKey(string Hex, byte[][] Keys);
}

/// <summary>A node's former identity key in the cluster manifest (docs/ROTATION.md "Rotating a node's identity").</summary>
public sealed class RetiredIdentityKey
{
    public string IdentityKey { get; set; } = "";

    public string AgreementKey { get; set; } = "";

    /// <summary>Until when (Unix ms) live traffic signed by this key is still accepted: the overlap for in-flight sessions.</summary>
    public long AcceptedUntilUnixMs { get; set; }

    /// <summary>This key's Ed25519 signature over the handover to its successor (<see cref="Protocol.NodeKeyRotation.HandoverTranscript"/>).</summary>
    public string HandoverSignature { get; set; } = "";
}

/// <summary>A former coordinator identity key in the cluster manifest (docs/ROTATION.md "Rotating the coordinator's identity").</summary>
public sealed class RetiredCoordinatorKey
{
    public string IdentityKey { get; set; } = "";

    /// <summary>Until when (Unix ms) requests signed by this key are still accepted by the nodes.</summary>
    public long AcceptedUntilUnixMs { get; set; }

    /// <summary>This key's Ed25519 signature over the handover to its successor (<see cref="Protocol.CoordinatorKeyRotation.HandoverTranscript"/>).</summary>
    public string HandoverSignature { get; set; } = "";
}

/// <summary>A cluster TLS certificate refused from a given time on (docs/ROTATION.md "Rotating TLS certificates").</summary>
public sealed class RevokedCertificate
{
    /// <summary>SHA-256 of the certificate's DER encoding, hex.</summary>
    public string Sha256 { get; set; } = "";

    /// <summary>The certificate's subject, for the reader of the manifest (not checked).</summary>
    public string Subject { get; set; } = "";

    /// <summary>From when (Unix ms) a TLS handshake presenting this certificate is refused.</summary>
    public long RefusedFromUnixMs { get; set; }
}

/// <summary>A node the cluster manifest evicts: its id, why, and since when (Unix ms), for the reader.</summary>
public sealed class PinnedEviction
{
    public uint Id { get; set; }

    public string Reason { get; set; } = "";

    public long SinceUnixMs { get; set; }
}
