using Conclave.Node.Threshold.Engine;
using Conclave.Node.Threshold.Sharing;
using Conclave.Storage;
using Conclave.Storage.Nonces;
using Conclave.Threshold.Frost;
using Conclave.Threshold.Frost.Ciphersuites;

namespace Conclave.Node.Frost;

/// <summary>
/// What a node holds for FROST: its key packages (sealed in its own store, cached opened in memory) and its
/// nonce pools. Pooled nonces live only in memory: their ids are recorded consumed in the durable ledger
/// before their commitments leave the node, and each is removed from the pool atomically when it signs,
/// so a nonce signs at most once and a restart can lose nonces but never reuse one (safety rule 1).
/// </summary>
public sealed class FrostNodeState : IDisposable
{
    private readonly KeyVersions<KeyPackage> _shares;

    public FrostNodeState(IConclaveStore store, uint nodeId, NonceEpochs epochs)
    {
        ArgumentNullException.ThrowIfNull(epochs);
        Store = store;
        NodeId = nodeId;
        Epochs = epochs;
        _shares = new KeyVersions<KeyPackage>(store, nodeId, "FROST",
            (scheme, material) => FrostCiphersuite.TryGet(scheme, out FrostCiphersuite? suite) ? KeyPackage.Import(suite, material) : null);
        Nonces = new MaterialPool<int, SigningNonces>(store.Nonces, epochs, NonceKind.Nonce);
    }

    public IConclaveStore Store { get; }

    public uint NodeId { get; }

    /// <summary>Testing only: alter every signature share (see NodeConfig.FaultInjection).</summary>
    public bool CorruptShares { get; init; }

    /// <summary>Testing only: DKG misbehaviour (<see cref="Frost.DkgFaults"/>); internal, set only by the test node host.</summary>
    internal DkgFaults? DkgFaults { get; init; }

    /// <summary>The nonce epochs of this node's ledger (opened at start; owned and disposed by this state; NonceEpochs).</summary>
    public NonceEpochs Epochs { get; }

    /// <summary>Upper bound of pooled nonces per key, to bound memory.</summary>
    public int MaxPoolPerKey { get; init; } = 100_000;

    /// <summary>
    /// The opened key package of the current version and that version, for a glance at public data only (the key
    /// status report reads its public key package, which a disposal does not erase). Anything that computes with the
    /// share holds a lease instead (<see cref="LeaseKeyAtVersionAsync"/>).
    /// </summary>
    public Task<(KeyPackage Key, int Version)> GetKeyWithVersionAsync(string keyId, CancellationToken ct) => _shares.GetCurrentAsync(keyId, ct);

    /// <summary>
    /// The key package of <paramref name="version"/>, held open until the lease is disposed (KeyVersions.LeaseAtVersionAsync).
    /// Refuses unless this node can sign with the key at that version: the current version, or an older one whose share
    /// is still held because the rotation that replaced it is not yet retired. A node restored from a backup taken before
    /// a refresh holds a stale share at its current version and refuses the newer one; a pending version never signs.
    /// </summary>
    public Task<KeyVersions<KeyPackage>.ShareLease> LeaseKeyAtVersionAsync(string keyId, int version, CancellationToken ct) => _shares.LeaseAtVersionAsync(keyId, version, ct);

    /// <summary>Forgets an opened key (after refresh or reshare replaced it) and drops its pool.</summary>
    public void Evict(string keyId)
    {
        _shares.Evict(keyId);
        Nonces.Evict(keyId);
    }

    /// <summary>
    /// A rotation committed a new version: opened shares are forgotten, and so are pooled nonces of every version but
    /// <paramref name="previousVersion"/>, which keeps signing (with its own share and its own nonces) until the run's
    /// retire erases it and drops the rest (<see cref="Evict"/>). Dropping them at commit refused every signature a
    /// coordinator had begun on the previous version in the moment between the nodes' commit and the coordinator
    /// registering the new version, and signatures racing back-to-back refreshes ended in 503 quorum-unavailable.
    /// </summary>
    public void Committed(string keyId, int previousVersion)
    {
        _shares.Evict(keyId);
        Nonces.EvictExcept(keyId, previousVersion);
    }

    /// <summary>
    /// The pooled signing nonces, per key and key version (RFC 9591 section 5.1 round one): ids recorded consumed in the
    /// durable ledger before their commitments leave the node, each nonce taken out atomically by the one sign step that uses it.
    /// </summary>
    internal MaterialPool<int, SigningNonces> Nonces { get; }

    public int PoolSize(string keyId) => Nonces.Count(keyId);

    public void Dispose()
    {
        _shares.Dispose();
        Nonces.Dispose();
        Epochs.Dispose();
    }
}
