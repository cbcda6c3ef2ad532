using Conclave.Crypto.Memory;
using Conclave.Node.Config;
using Conclave.Node.Hosting;
using Conclave.Node.Protocol;
using Conclave.Storage;
using Conclave.Storage.Audit;

namespace Conclave.Server.Hosting;

/// <summary>
/// The server audit log's checkpoint key and its rotation (docs/ROTATION.md "Rotating the audit log's checkpoint key").
/// Files in the server's data folder, sealed under the server KEK:
/// <list type="bullet">
/// <item><c>identity.sealed</c>: the server's first identity; the checkpoint key until the first rotation, and the
/// root key <c>GET /v1/audit/verify</c> pins (the log's key schedule starts with it).</item>
/// <item><c>audit-key.sealed</c>: the checkpoint key after a rotation.</item>
/// <item><c>audit-key.next.sealed</c>: the key a rotation hands over to, written before the handover and made current
/// after it; a server stopped in between finishes the rotation at its next start.</item>
/// </list>
/// Every key this process loaded stays alive until it stops (the store may still hold one in a commit).
/// </summary>
public sealed class AuditKeys : IDisposable
{
    public const string CurrentFile = "audit-key.sealed";
    public const string NextFile = "audit-key.next.sealed";

    private readonly string _dataDir;
    private readonly string _kekPath;
    private readonly List<NodeIdentity> _loaded = [];
    private readonly SemaphoreSlim _rotation = new(1, 1);

    private AuditKeys(string dataDir, string kekPath, NodeIdentity current, bool owned)
    {
        _dataDir = dataDir;
        _kekPath = kekPath;
        if (owned)
        {
            _loaded.Add(current);
        }

        Current = current;
    }

    /// <summary>The key that signs checkpoints now (the one to open the store with, until <see cref="FinishAsync"/>).</summary>
    public NodeIdentity Current { get; private set; }

    /// <summary>The current checkpoint key: <c>audit-key.sealed</c>, or the first identity <paramref name="first"/> (not owned).</summary>
    public static AuditKeys Load(string dataDir, string kekPath, NodeIdentity first)
    {
        ArgumentNullException.ThrowIfNull(first);
        string path = Path.Combine(dataDir, CurrentFile);
        if (!File.Exists(path))
        {
            return new AuditKeys(dataDir, kekPath, first, owned: false); // the first identity is the caller's
        }

        using SecretBuffer kek = KekFile.Read(kekPath);
        return new AuditKeys(dataDir, kekPath, NodeIdentity.Unseal(0, kek.ReadOnlySpan, File.ReadAllBytes(path)), owned: true);
    }

    /// <summary>Finishes a rotation a stopped server left (a next key on disk): hands over to it, then makes it current.</summary>
    public async Task FinishAsync(IConclaveStore store, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(store);
        string next = Path.Combine(_dataDir, NextFile);
        if (File.Exists(next))
        {
            NodeIdentity key;
            using (SecretBuffer kek = KekFile.Read(_kekPath))
            {
                key = NodeIdentity.Unseal(0, kek.ReadOnlySpan, File.ReadAllBytes(next));
            }

            _loaded.Add(key);
            await store.Audit.HandOverCheckpointKeyAsync(key.SigningKey, "server", ct).ConfigureAwait(false);
            Promote(key);
        }
    }

    /// <summary>
    /// Rotates the checkpoint key: a fresh key is written (as the next key) before the log hands over to it, and becomes
    /// the current key file after. One rotation at a time in this process. Returns the handover entry.
    /// </summary>
    public async Task<AuditEntry> RotateAsync(IConclaveStore store, string actor, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(store);
        await _rotation.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            NodeIdentity key = NodeIdentity.Generate(0);
            _loaded.Add(key);
            using (SecretBuffer kek = KekFile.Read(_kekPath))
            {
                OwnerOnly.WriteAllBytes(Path.Combine(_dataDir, NextFile), key.Seal(kek.ReadOnlySpan));
            }

            // Not cancelled by the request from here: the log and the files must end in the same place.
            AuditEntry? entry = await store.Audit.HandOverCheckpointKeyAsync(key.SigningKey, actor, CancellationToken.None).ConfigureAwait(false);
            Promote(key);
            return entry ?? throw new InvalidOperationException("a fresh checkpoint key cannot have been handed over to already");
        }
        finally
        {
            _rotation.Release();
        }
    }

    /// <summary>The next key file replaces the current one (overwritten with zeros first; the first identity is never touched).</summary>
    private void Promote(NodeIdentity key)
    {
        OwnerOnly.ReplaceErasingOld(Path.Combine(_dataDir, NextFile), Path.Combine(_dataDir, CurrentFile));
        Current = key;
    }

    public void Dispose()
    {
        foreach (NodeIdentity k in _loaded)
        {
            k.Dispose();
        }

        _loaded.Clear();
        _rotation.Dispose();
    }
}
