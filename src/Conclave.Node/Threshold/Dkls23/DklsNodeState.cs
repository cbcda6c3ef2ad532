using System.Collections.Concurrent;
using Conclave.Node.Threshold.Engine;
using Conclave.Storage;
using Conclave.Storage.Nonces;
using Conclave.Threshold.Dkls23;

namespace Conclave.Node.Threshold.Dkls23;

/// <summary>
/// What a node holds for DKLs23: its key shares with their pairwise OT state (sealed in its own store under the node
/// KEK as <see cref="DklsKeyShare.Export"/>, opened by key version through <see cref="KeyVersions{TShare}"/>), and the
/// count of signing sessions it runs with each peer right now (the per-pair limit).
/// </summary>
public sealed class DklsNodeState : IDisposable
{
    private readonly ConcurrentDictionary<uint, int> _sessionsWith = new();

    /// <param name="epochs">The node's nonce epochs (shared with FROST), naming the pooled presignatures' ids.</param>
    public DklsNodeState(IConclaveStore store, uint nodeId, NonceEpochs epochs)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(epochs);
        Store = store;
        Presignatures = new MaterialPool<string, DklsPresignature>(store.Nonces, epochs, NonceKind.Presignature);
        NodeId = nodeId;
        Shares = new KeyVersions<DklsKeyShare>(store, nodeId, "DKLs23",
            (scheme, material) => scheme == DklsScheme.Name ? DklsKeyShare.Import(material) : null);
    }

    public IConclaveStore Store { get; }

    /// <summary>
    /// When this node's DKLs23 state was made (process start), Unix ms: a signing round-one request issued earlier is
    /// refused, since the replay guard that stops a node answering one request twice does not outlive a restart, and two
    /// answers to one request would be two signed round-one broadcasts under one request hash (DklsEquivocation).
    /// </summary>
    public long StartedAtUnixMs { get; init; } = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    /// <summary>
    /// Presignatures made ahead of time (DklsPresignHandlers), in memory only, per key and scope (key version, signer set,
    /// derivation path: DklsPresignHandlers.Scope); their ids are recorded consumed in the nonce ledger before R leaves.
    /// </summary>
    internal MaterialPool<string, DklsPresignature> Presignatures { get; }

    public uint NodeId { get; }

    /// <summary>The node's DKLs23 key shares by key version.</summary>
    public KeyVersions<DklsKeyShare> Shares { get; }

    /// <summary>
    /// How long a relayed message stays valid (NodeConfig.MessageValiditySeconds, the replay guard's window): signing
    /// session ids are remembered for the session lifetime plus twice this (<see cref="SessionIds"/>), so no message of a
    /// first session under an id is still valid when a second could start under it.
    /// </summary>
    public TimeSpan MessageValidity { get; init; } = TimeSpan.FromSeconds(120);

    /// <summary>The signing and presigning session ids this node started sessions under; a second session under one is refused.</summary>
    internal UsedSessionIds SessionIds => LazyInitializer.EnsureInitialized(ref _sessionIds, () => new UsedSessionIds(SignSessionLifetime + 2 * MessageValidity));

    private UsedSessionIds? _sessionIds;

    /// <summary>How long a signing session's round state lives before it is swept.</summary>
    internal static readonly TimeSpan SignSessionLifetime = TimeSpan.FromMinutes(2);

    /// <summary>How many signing sessions this node runs at once with any one peer; more are refused until one ends.</summary>
    public int MaxSessionsPerPeer { get; init; } = 16;

    /// <summary>Testing only: fault hooks (DklsFaults.FromConfig for NodeConfig.FaultInjection, or the test node host's).</summary>
    internal DklsFaults? Faults { get; init; }

    /// <summary>An encoded signature share as it leaves the node: unchanged, except under a test host's fault hook (DklsFaults.Share).</summary>
    internal byte[] EditShare(byte[] share) => Faults?.Share is { } edit ? edit(share) : share;

    /// <summary>
    /// Testing only: send every peer but the lowest a round-one broadcast commitment one bit off the real one, each
    /// validly signed, i.e. equivocate on round-one data (NodeConfig.FaultInjection "dkls-equivocate").
    /// </summary>
    public bool EquivocateRound1 { get; init; }

    /// <summary>
    /// Makes a ban durable (docs/DKLS23.md "Bans"): <paramref name="share"/>, the opened share whose pairwise OT state with
    /// <paramref name="peer"/> the library has just discarded, is sealed under the node KEK in place of the stored share
    /// of that version (the encoding lists banned peers), so after a restart signing with the peer is still refused; the
    /// node's audit log gets a <c>dkls.peer-banned</c> entry. A fresh pairwise setup, i.e. a refresh or reshare of the
    /// key (a new version), is what lifts it.
    /// </summary>
    public async Task RecordBanAsync(string keyId, int version, DklsKeyShare share, uint peer, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(share);
        using (Conclave.Crypto.Memory.SecretBuffer material = share.Export())
        {
            if (!await Store.Keys.ReplaceMaterialAsync(keyId, version, material, ct).ConfigureAwait(false))
            {
                throw new Conclave.Node.Protocol.ProtocolException($"key {keyId} v{version} has no stored share to record the ban of node {peer} in");
            }
        }

        await Store.Audit.AppendAsync(new Conclave.Storage.Audit.AuditEntryInput("node-" + NodeId.ToString(System.Globalization.CultureInfo.InvariantCulture), "dkls.peer-banned", keyId, null, "deny",
            $"v{version.ToString(System.Globalization.CultureInfo.InvariantCulture)} node {peer.ToString(System.Globalization.CultureInfo.InvariantCulture)} banned after a failed OT-extension check; a refresh or reshare of the key lifts it"), ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Takes one session slot with each of <paramref name="peers"/>; false (and nothing taken) when one of them has
    /// <see cref="MaxSessionsPerPeer"/> sessions with this node already (<paramref name="busy"/> names it).
    /// </summary>
    public bool TryEnter(IReadOnlyList<uint> peers, out uint busy)
    {
        ArgumentNullException.ThrowIfNull(peers);
        var taken = new List<uint>(peers.Count);
        foreach (uint p in peers)
        {
            if (_sessionsWith.AddOrUpdate(p, 1, (_, n) => n + 1) > MaxSessionsPerPeer)
            {
                _sessionsWith.AddOrUpdate(p, 0, (_, n) => n - 1);
                Leave(taken);
                busy = p;
                return false;
            }

            taken.Add(p);
        }

        busy = 0;
        return true;
    }

    /// <summary>Gives back the slots <see cref="TryEnter"/> took.</summary>
    public void Leave(IReadOnlyList<uint> peers)
    {
        ArgumentNullException.ThrowIfNull(peers);
        foreach (uint p in peers)
        {
            _sessionsWith.AddOrUpdate(p, 0, (_, n) => n - 1);
        }
    }

    /// <summary>Sessions this node runs with <paramref name="peer"/> right now.</summary>
    public int SessionsWith(uint peer) => _sessionsWith.TryGetValue(peer, out int n) ? n : 0;

    /// <summary>Forgets the key's opened shares and drops its pooled presignatures (its version changed or it was erased).</summary>
    public void Evict(string keyId)
    {
        Shares.Evict(keyId);
        Presignatures.Evict(keyId);
    }

    public void Dispose()
    {
        Presignatures.Dispose();
        Shares.Dispose();
    }
}
