using Conclave.Crypto.Memory;
using Conclave.Node.Config;
using Conclave.Node.Hosting;
using Conclave.Node.Protocol;

namespace Conclave.Server.Coordinator;

/// <summary>
/// The coordinator's identity files in the server's data folder, sealed under the server KEK (docs/ROTATION.md
/// "Rotating the coordinator's identity"):
/// <list type="bullet">
/// <item><c>identity.sealed</c>: the server's first identity. It signs the audit log's checkpoints until that key is
/// rotated on its own (<see cref="Hosting.AuditKeys"/>) and is the coordinator identity until the first rotation.</item>
/// <item><c>coordinator-identity.sealed</c>: the coordinator identity after a rotation (requests to nodes).</item>
/// <item><c>coordinator-identity.next.sealed</c>: the next identity, made by <c>conclave coordinator rotate-keys</c>,
/// waiting for a manifest that names it.</item>
/// </list>
/// </summary>
public sealed class CoordinatorIdentityFiles(string dataDir, string kekPath)
{
    public const string FirstIdentityFile = "identity.sealed";
    public const string CurrentFile = "coordinator-identity.sealed";
    public const string NextFile = "coordinator-identity.next.sealed";

    public string DataDir { get; } = dataDir ?? throw new ArgumentNullException(nameof(dataDir));

    public string KekPath { get; } = kekPath ?? throw new ArgumentNullException(nameof(kekPath));

    /// <summary>
    /// The identity the coordinator signs with under <paramref name="manifest"/>: the rotated one if any, else the first;
    /// when the manifest names the waiting next identity instead, that one is made current first. Throws a
    /// <see cref="ConfigException"/> when none matches the manifest.
    /// </summary>
    public NodeIdentity Load(ClusterManifest manifest)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        NodeIdentity current = LoadCurrent();
        if (Names(manifest.CoordinatorIdentityKey, current))
        {
            return current;
        }

        current.Dispose();
        return TryTakeNext(manifest.CoordinatorIdentityKey)
            ?? throw new ConfigException($"the coordinator identity in {DataDir} does not match the cluster manifest");
    }

    /// <summary>The current coordinator identity (the rotated one, else the first).</summary>
    public NodeIdentity LoadCurrent()
    {
        string path = Path.Combine(DataDir, File.Exists(Path.Combine(DataDir, CurrentFile)) ? CurrentFile : FirstIdentityFile);
        if (!File.Exists(path))
        {
            throw new ConfigException($"the coordinator has no identity at {path}");
        }

        using SecretBuffer kek = KekFile.Read(KekPath);
        return NodeIdentity.Unseal(0, kek.ReadOnlySpan, File.ReadAllBytes(path));
    }

    /// <summary>
    /// When a next identity waits and its key is <paramref name="manifestKeyHex"/>, makes it the current coordinator
    /// identity (a previous rotated identity is overwritten with zeros, then replaced) and returns it; otherwise null.
    /// </summary>
    public NodeIdentity? TryTakeNext(string manifestKeyHex)
    {
        string nextPath = Path.Combine(DataDir, NextFile);
        string currentPath = Path.Combine(DataDir, CurrentFile);
        using SecretBuffer kek = KekFile.Read(KekPath);
        if (File.Exists(currentPath))
        {
            // Another coordinator sharing this data folder (a replica) may have taken the next identity already.
            NodeIdentity current = NodeIdentity.Unseal(0, kek.ReadOnlySpan, File.ReadAllBytes(currentPath));
            if (Names(manifestKeyHex, current))
            {
                return current;
            }

            current.Dispose();
        }

        if (!File.Exists(nextPath))
        {
            return null;
        }

        NodeIdentity next = NodeIdentity.Unseal(0, kek.ReadOnlySpan, File.ReadAllBytes(nextPath));
        if (!Names(manifestKeyHex, next))
        {
            next.Dispose();
            return null;
        }

        Conclave.Storage.OwnerOnly.ReplaceErasingOld(nextPath, currentPath);
        return next;
    }

    /// <summary>
    /// Makes (or, when one already waits, reuses) the next coordinator identity and returns the statement for the
    /// manifest, signed by the current identity key. The current identity stays in use until the manifest names the new key.
    /// </summary>
    public CoordinatorKeyRotationStatement PrepareRotation()
    {
        using NodeIdentity current = LoadCurrent();
        using SecretBuffer kek = KekFile.Read(KekPath);
        string path = Path.Combine(DataDir, NextFile);
        NodeIdentity next;
        if (File.Exists(path))
        {
            next = NodeIdentity.Unseal(0, kek.ReadOnlySpan, File.ReadAllBytes(path));
        }
        else
        {
            next = NodeIdentity.Generate(0);
            Conclave.Storage.OwnerOnly.WriteAllBytes(path, next.Seal(kek.ReadOnlySpan));
        }

        using (next)
        {
            return CoordinatorKeyRotation.CreateStatement(current, next);
        }
    }

    private static bool Names(string hex, NodeIdentity identity) =>
        string.Equals(hex, Convert.ToHexStringLower(identity.IdentityPublicKey.Span), StringComparison.OrdinalIgnoreCase);
}
