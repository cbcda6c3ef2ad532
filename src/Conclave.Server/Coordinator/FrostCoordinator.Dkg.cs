using Conclave.Node.Frost;
using Conclave.Node.Protocol;
using Conclave.Node.Rpc;
using Conclave.Threshold.Frost;
using Conclave.Threshold.Frost.Ciphersuites;

namespace Conclave.Server.Coordinator;

/// <summary>
/// Distributed key generation, refresh and reshare across the nodes, relayed by the coordinator, which sees only
/// signed broadcasts, ciphertexts sealed to recipients, and confirmations (see FrostDkgHandlers on the node side).
/// </summary>
public sealed partial class FrostCoordinator
{
    /// <summary>Creates a new t-of-n key by DKG among <paramref name="nodes"/> (every node deals and receives).</summary>
    public async Task<FrostKeyInfo> CreateKeyAsync(string keyId, FrostCiphersuite suite, int threshold, IReadOnlyList<uint> nodes, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(suite);
        FrostKeyInfo info = await RunAsync(DkgRunKind.KeyGeneration, keyId, suite, threshold, nodes, nodes, 0, null, ct).ConfigureAwait(false);
        Register(info);
        return info;
    }

    /// <summary>
    /// Proactive refresh: new shares of the same key (same group key, threshold and participants); every node
    /// must take part. The old shares are erased only after every node stored its new share.
    /// </summary>
    public async Task<FrostKeyInfo> RefreshAsync(string keyId, CancellationToken ct)
    {
        FrostKeyInfo key = Find(keyId) ?? throw new ArgumentException($"unknown FROST key {keyId}", nameof(keyId));
        PublicKeyPackage old = key.PublicKeyPackage;
        FrostKeyInfo next = await RunAsync(DkgRunKind.Refresh, keyId, key.Suite, old.Threshold, key.Nodes, key.Nodes, key.Version, old, ct).ConfigureAwait(false);
        return await RetireAsync(key, next, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Reshare: t current holders deal the key to a new committee with a new threshold; the group key stays and the
    /// old shares become useless (erased on every old holder once the new committee stored its shares).
    /// </summary>
    public async Task<FrostKeyInfo> ReshareAsync(string keyId, int threshold, IReadOnlyList<uint> participants, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(participants);
        FrostKeyInfo key = Find(keyId) ?? throw new ArgumentException($"unknown FROST key {keyId}", nameof(keyId));
        PublicKeyPackage old = key.PublicKeyPackage;
        IReadOnlyList<uint> up = await _cluster.AttestAsync(ct).ConfigureAwait(false);
        uint[] dealers = [.. key.Nodes.Where(up.Contains).Take(old.Threshold)];
        if (dealers.Length < old.Threshold)
        {
            throw new QuorumUnavailableException($"resharing needs {old.Threshold} current holders of key {keyId} online; {dealers.Length} are");
        }

        FrostKeyInfo next = await RunAsync(DkgRunKind.Reshare, keyId, key.Suite, threshold, dealers, participants, key.Version, old, ct).ConfigureAwait(false);
        return await RetireAsync(key, next, ct).ConfigureAwait(false);
    }

    private async Task<FrostKeyInfo> RetireAsync(FrostKeyInfo old, FrostKeyInfo next, CancellationToken ct)
    {
        // Second phase: every node stored the new share; now the old ones go.
        foreach (uint n in old.Nodes.Union(next.Nodes))
        {
            DropPool(old.KeyId, n);
        }

        Register(next);
        byte[] session = Cluster.NewSessionId();
        IEnumerable<Task<IReadOnlyList<Envelope>>> calls = old.Nodes.Union(next.Nodes).Select(n =>
        {
            byte[] payload = new PayloadWriter().String(old.KeyId).U32((uint)old.Version).U32(next.Nodes.Contains(n) ? 1u : 0u).ToArray();
            return _cluster.Node(n).StepAsync(_cluster.Request(session, FrostMessages.DkgRetire, 5, [n], payload), [], _cluster.RoundTimeout * 5, ct);
        });
        await Task.WhenAll(calls).ConfigureAwait(false);
        return next;
    }

    private async Task<FrostKeyInfo> RunAsync(DkgRunKind kind, string keyId, FrostCiphersuite suite, int threshold, IReadOnlyList<uint> dealers,
        IReadOnlyList<uint> receivers, int version, PublicKeyPackage? oldKey, CancellationToken ct)
    {
        uint[] everyone = [.. dealers.Union(receivers).Order()];
        byte[] session = Cluster.NewSessionId();
        TimeSpan timeout = _cluster.RoundTimeout * 5;
        var start = new PayloadWriter().U32((uint)kind).String(keyId).String(suite.SchemeName).U32((uint)threshold).U32((uint)dealers.Count);
        foreach (uint d in dealers)
        {
            start.U32(d);
        }

        start.U32((uint)receivers.Count);
        foreach (uint r in receivers)
        {
            start.U32(r);
        }

        byte[] startPayload = start.U32((uint)version).Bytes(oldKey?.ToBytes() ?? []).ToArray();

        // Round one: everyone starts; dealers broadcast commitments and proofs.
        Dictionary<uint, IReadOnlyList<Envelope>> round1 = await AllAsync(everyone,
            n => _cluster.Node(n).StepAsync(_cluster.Request(session, FrostMessages.DkgStart, 1, [n], startPayload), [], timeout, ct)).ConfigureAwait(false);
        List<Envelope> broadcasts = [.. round1.Values.SelectMany(m => m).Where(e => e.Kind == FrostMessages.DkgRound1 && e.Payload.Length > 0)];

        // Round two: each participant gets every other dealer's broadcast and deals sealed shares.
        Dictionary<uint, IReadOnlyList<Envelope>> round2 = await AllAsync(everyone,
            n => _cluster.Node(n).StepAsync(_cluster.Request(session, FrostMessages.DkgRound2, 2, [n], []), broadcasts.Where(b => b.Sender != n), timeout, ct)).ConfigureAwait(false);
        List<Envelope> shares = [.. round2.Values.SelectMany(m => m).Where(e => e.Kind == FrostMessages.DkgShare)];

        // Finish: each receiver gets the shares addressed to it, checks them and its echo, and confirms.
        Dictionary<uint, IReadOnlyList<Envelope>> confirms = await AllAsync(receivers,
            n => _cluster.Node(n).StepAsync(_cluster.Request(session, FrostMessages.DkgFinish, 3, [n], []), shares.Where(s => s.Recipients.Contains(n)), timeout, ct)).ConfigureAwait(false);
        List<Envelope> confirmations = [.. confirms.Values.SelectMany(m => m).Where(e => e.Kind == FrostMessages.DkgConfirm)];
        if (confirmations.Count != receivers.Count)
        {
            throw new QuorumUnavailableException("not every receiver confirmed the new key");
        }

        // Complete: every receiver checks every confirmation, then stores the new share (first phase).
        Dictionary<uint, IReadOnlyList<Envelope>> done = await AllAsync(receivers,
            n => _cluster.Node(n).StepAsync(_cluster.Request(session, FrostMessages.DkgComplete, 4, [n], []), confirmations.Where(c => c.Sender != n), timeout, ct)).ConfigureAwait(false);

        PublicKeyPackage? result = null;
        int newVersion = 0;
        foreach ((uint node, IReadOnlyList<Envelope> reply) in done)
        {
            if (reply.Count != 1 || reply[0].Kind != FrostMessages.DkgDone)
            {
                throw new CulpritException([node], $"node {node} did not report the stored key");
            }

            var r = new PayloadReader(reply[0].Payload.Span);
            int v = (int)r.U32("version");
            var pkp = PublicKeyPackage.FromBytes(suite, r.Bytes("publicKeyPackage"));
            r.End();
            if (result is null)
            {
                (result, newVersion) = (pkp, v);
            }
            else if (!result.PublicEquals(pkp) || v != newVersion)
            {
                throw new CulpritException([node], $"node {node} stored a different key or version than the others");
            }
        }

        if (result is null || (oldKey is not null && !result.GroupPublicKey.AsSpan().SequenceEqual(oldKey.GroupPublicKey)))
        {
            throw new QuorumUnavailableException("the run did not produce the expected group key");
        }

        return new FrostKeyInfo(keyId, suite, result, newVersion);
    }

    /// <summary>Runs one step on several nodes in parallel; a failure names the node.</summary>
    private static async Task<Dictionary<uint, IReadOnlyList<Envelope>>> AllAsync(IEnumerable<uint> nodes, Func<uint, Task<IReadOnlyList<Envelope>>> call)
    {
        var tasks = nodes.ToDictionary(n => n, call);
        try
        {
            await Task.WhenAll(tasks.Values).ConfigureAwait(false);
        }
        catch (NodeCallException)
        {
            NodeCallException first = tasks.Values.Where(t => t.IsFaulted).Select(t => t.Exception!.InnerException).OfType<NodeCallException>().First();
            if (first.Culprit is uint culprit)
            {
                throw new CulpritException([culprit], first.Message);
            }

            throw;
        }

        return tasks.ToDictionary(kv => kv.Key, kv => kv.Value.Result);
    }
}
