using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Conclave.Server.Coordinator;
using Conclave.Server.Threshold.Dkls23;
using Conclave.Server.Threshold.Engine;
using Conclave.Storage;
using Conclave.Storage.Audit;
using Conclave.Storage.Keys;
using Conclave.Storage.Nodes;
using Conclave.Threshold.Dkls23;
using Conclave.Threshold.Frost;

namespace Conclave.Server.Api;

/// <summary>
/// Evicting a suspect signer node (docs/ROTATION.md "Evicting a suspect node"). The node is marked untrusted in the
/// store (and audited) before any key moves, so the mark survives a crash and is shared by every replica; then every
/// threshold key it holds (FROST or ecdsa-dkls23) is reshared away from it as an ordinary crash-safe rotation run of its protocol. Whatever is not moved by the
/// request (a run outlived it, a holder was down, a rotation of the key was running) is moved by the background pass
/// (<see cref="ContinueEvictionsAsync"/>), which also picks up marks made by other replicas.
/// </summary>
public sealed partial class KeyService
{
    private readonly SemaphoreSlim _evicting = new(1, 1);

    /// <summary>A node id from the route: a decimal number naming a node of the cluster (400 otherwise, 404 if unknown).</summary>
    public uint ParseNode(string text, string field)
    {
        if (!uint.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out uint node) || node == 0)
        {
            throw new ApiException(ProblemTypes.InvalidRequest, $"{field} must be a signer node id (a positive integer)");
        }

        return _cluster.NodeIds.Contains(node) ? node : throw new ApiException(ProblemTypes.NotFound, $"there is no signer node {node} in the cluster");
    }

    /// <summary>
    /// The committee of a new key or a reshare: the first <paramref name="participants"/> trusted nodes by id (evicted
    /// nodes are skipped); 409 node-untrusted when fewer trusted nodes remain.
    /// </summary>
    private IReadOnlyList<uint> CommitteeOf(int participants)
    {
        IReadOnlyList<uint> trusted = _frost.Trusted(_cluster.NodeIds);
        return trusted.Count >= participants
            ? [.. trusted.Take(participants)]
            : throw new ApiException(ProblemTypes.NodeUntrusted,
                $"participants {participants} is more than the {trusted.Count} trusted signer nodes (evicted: node {string.Join(", ", _frost.Untrusted)})");
    }

    /// <summary>Reads the untrusted nodes from the store into the coordinator (at start, and by every background pass).</summary>
    public async Task<IReadOnlyList<UntrustedNode>> LoadNodeTrustAsync(CancellationToken ct)
    {
        IReadOnlyList<UntrustedNode> untrusted = await _store.NodeTrust.ListUntrustedAsync(ct).ConfigureAwait(false);
        foreach (UntrustedNode n in untrusted)
        {
            _frost.MarkUntrusted(n.NodeId);
        }

        foreach (uint n in _frost.Untrusted.Where(n => untrusted.All(u => u.NodeId != n)))
        {
            _frost.Readmit(n); // re-admitted by another replica
        }

        return untrusted;
    }

    /// <summary>Every signer node with its trust and the threshold keys (FROST and ecdsa-dkls23) whose committee includes it (by the holders the store records).</summary>
    public async Task<IReadOnlyList<NodeResponse>> NodesAsync(CancellationToken ct)
    {
        IReadOnlyList<UntrustedNode> untrusted = await LoadNodeTrustAsync(ct).ConfigureAwait(false);
        IReadOnlyList<KeyHolding> holdings = await HoldingsAsync(readUnrecorded: true, ct).ConfigureAwait(false);
        IReadOnlyDictionary<uint, string> suspects = _frost.Suspects;
        return [.. _cluster.NodeIds.Order().Select(id =>
        {
            string[] held = [.. holdings.Where(k => k.Holders.Contains(id)).Select(k => k.Key.Name).Order(StringComparer.Ordinal)];
            UntrustedNode? u = untrusted.FirstOrDefault(n => n.NodeId == id);
            string? suspect = suspects.TryGetValue(id, out string? why) ? why : null;
            if (u is null && _frost.IsPinned(id))
            {
                return new NodeResponse(id, "untrusted", held, "evicted by the cluster manifest", Suspect: suspect);
            }

            return u is null ? new NodeResponse(id, "trusted", held, Suspect: suspect) : new NodeResponse(id, "untrusted", held, u.Reason, u.Replacement, u.Since, suspect);
        })];
    }

    /// <summary>
    /// Evicts <paramref name="node"/>: refuses first (409, nothing changed) if a key it holds would be left with fewer
    /// trusted holders than its threshold and no replacement is named; then marks it untrusted durably, audits, and
    /// moves every key it holds, waiting until shortly before the request's deadline.
    /// </summary>
    public async Task<EvictionResponse> EvictAsync(uint node, uint? replacement, string? reason, CancellationToken ct)
    {
        if (replacement is { } r)
        {
            if (r == node)
            {
                throw new ApiException(ProblemTypes.InvalidRequest, "replacement must be another node than the one evicted");
            }

            _ = ParseNode(r.ToString(CultureInfo.InvariantCulture), "replacement");
        }

        string why = string.IsNullOrWhiteSpace(reason) ? "evicted by an operator" : reason.Trim();
        if (why.Length > 500 || why.Any(char.IsControl))
        {
            throw new ApiException(ProblemTypes.InvalidRequest, "reason must be at most 500 characters without control characters");
        }

        await LoadNodeTrustAsync(ct).ConfigureAwait(false);
        if (replacement is { } rep && _frost.IsUntrusted(rep))
        {
            throw new ApiException(ProblemTypes.NodeUntrusted, $"node {rep} is evicted (untrusted): it cannot replace node {node}");
        }

        // Every stored key, by the holders its row records: a key not used since start is checked like any other.
        IReadOnlyList<KeyHolding> holdings = await HoldingsAsync(readUnrecorded: true, ct).ConfigureAwait(false);
        try
        {
            _frost.CheckEvictable(holdings, node, replacement);
        }
        catch (EvictionRefusedException e)
        {
            throw new ApiException(ProblemTypes.EvictionRefused, e.Message);
        }

        UntrustedNode marked = await _store.NodeTrust.MarkUntrustedAsync(node, why, replacement, ct).ConfigureAwait(false);
        _frost.MarkUntrusted(node);
        await _store.Audit.AppendAsync(new AuditEntryInput("admin", "node.evict", null, Hash($"evict {node} {replacement}"), "allow",
            $"node {node} untrusted{(replacement is { } x ? $", replaced by node {x}" : "")}: {Shorten(why)}"), CancellationToken.None).ConfigureAwait(false);

        // The other nodes are told first (they refuse the node's messages by themselves from then on; one that is down is
        // told by the background pass), then the keys move, under the server's lifetime, not the request's: a client that
        // leaves does not stop them.
        Task<IReadOnlyList<KeyResponse>> moving = Task.Run(async () =>
        {
            await _frost.TellNodesOfTrustAsync(Lifetime).ConfigureAwait(false);
            return await MoveKeysAwayAsync(marked, wait: true, Lifetime).ConfigureAwait(false);
        }, CancellationToken.None);
        TimeSpan patience = TimeSpan.FromSeconds(Math.Max(1, _config.RequestTimeoutSeconds * 0.8));
        IReadOnlyList<KeyResponse> moved = [];
        try
        {
            moved = await moving.WaitAsync(patience, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException && !moving.IsCompleted)
        {
            // Answered 202 below; the keys go on moving.
        }

        NodeResponse now = (await NodesAsync(CancellationToken.None).ConfigureAwait(false)).Single(n => n.Id == node);
        if (moving.IsCompleted && now.Keys.Count > 0)
        {
            await moving.ConfigureAwait(false); // rethrows why a key could not move (the background pass keeps trying)
        }

        return new EvictionResponse(now, await MovedAwayAsync(holdings, node, moved).ConfigureAwait(false), now.Keys.Count == 0);
    }

    /// <summary>
    /// The keys <paramref name="node"/> held when it was evicted that it no longer holds, whoever moved them: this
    /// request's pass (<paramref name="movedHere"/>, first) or the background pass, which shares its lock and can take a
    /// key first once the node is marked (the request's pass then finds nothing left to move).
    /// </summary>
    private async Task<IReadOnlyList<KeyResponse>> MovedAwayAsync(IReadOnlyList<KeyHolding> heldAtEviction, uint node, IReadOnlyList<KeyResponse> movedHere)
    {
        var moved = new List<KeyResponse>(movedHere);
        foreach (KeyHolding held in heldAtEviction.Where(h => h.Holders.Contains(node) && movedHere.All(m => m.Id != h.Key.Id)))
        {
            KeyRecord? stored = await _store.Keys.GetAsync(held.Key.Id, CancellationToken.None).ConfigureAwait(false);
            if (stored?.Holders is { } holders && !holders.Contains(node))
            {
                moved.Add(ToResponse(stored));
            }
        }

        return moved;
    }

    /// <summary>Re-admits an evicted node: it may be chosen again for new keys and reshares (it holds no current share).</summary>
    public async Task<NodeResponse> ReadmitAsync(uint node, CancellationToken ct)
    {
        if (_frost.IsPinned(node))
        {
            // Only the manifest re-admits a node it evicts (docs/ROTATION.md "A manifest-pinned eviction").
            throw new EvictionRefusedException($"node {node} is evicted by the cluster manifest: remove it from evictedNodes there (conclave node unpin-eviction) to re-admit it");
        }

        if (await _store.NodeTrust.ReadmitAsync(node, ct).ConfigureAwait(false))
        {
            _frost.Readmit(node);
            await _store.Audit.AppendAsync(new AuditEntryInput("admin", "node.readmit", null, Hash($"readmit {node}"), "allow", $"node {node} trusted again"),
                CancellationToken.None).ConfigureAwait(false);
        }

        // The other nodes accept its messages again once told (a node that is down is told by the background pass).
        _frost.TrustNotices.Saw(node);
        await _frost.TellNodesOfTrustAsync(ct).ConfigureAwait(false);

        return (await NodesAsync(ct).ConfigureAwait(false)).Single(n => n.Id == node);
    }

    /// <summary>
    /// The background pass: every untrusted node that still holds a key has that key moved away (errors are left for the
    /// next pass). Returns the number of keys moved.
    /// </summary>
    public async Task<int> ContinueEvictionsAsync(CancellationToken ct)
    {
        int moved = 0;
        IReadOnlyList<UntrustedNode> untrusted = await LoadNodeTrustAsync(ct).ConfigureAwait(false);
        await _frost.TellNodesOfTrustAsync(ct).ConfigureAwait(false); // notices a node missed while it was down
        foreach (UntrustedNode n in untrusted)
        {
            try
            {
                moved += (await MoveKeysAwayAsync(n, wait: false, ct).ConfigureAwait(false)).Count;
            }
            catch (Exception e) when (e is ApiException or NodeCallException or CulpritException or QuorumUnavailableException or StorageException
                or NodeUntrustedException or EvictionRefusedException)
            {
                // Tried again by the next pass.
            }
#pragma warning disable CA1031 // one node's keys failing unexpectedly must not stop the moves away from the others
            catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
#pragma warning restore CA1031
            {
                Hosting.BackgroundLog.ItemFailed(Log, "evictions", $"moving the keys away from node {n.NodeId}", e.GetType().Name, e);
            }
        }

        return moved;
    }

    /// <summary>Moves every key <paramref name="node"/> holds away from it, one rotation run per key; the first failure is thrown after the others were tried.</summary>
    private async Task<IReadOnlyList<KeyResponse>> MoveKeysAwayAsync(UntrustedNode node, bool wait, CancellationToken ct)
    {
        if (!await _evicting.WaitAsync(wait ? Timeout.InfiniteTimeSpan : TimeSpan.Zero, ct).ConfigureAwait(false))
        {
            return [];
        }

        try
        {
            var moved = new List<KeyResponse>();
            Exception? first = null;
            foreach (KeyHolding held in await HoldingsAsync(readUnrecorded: true, ct).ConfigureAwait(false))
            {
                if (!held.Holders.Contains(node.NodeId))
                {
                    continue;
                }

                KeyRecord key = held.Key;
                try
                {
                    // Registered here if it was not used since start (the plan needs its checked package or DKLs23 key).
                    RotationPlan plan;
                    if (key.Scheme == DklsScheme.Name)
                    {
                        _ = await DklsKeyAsync(key, ct).ConfigureAwait(false);
                        plan = await _dkls.PlanEvictionAsync(key.Id, node.NodeId, node.Replacement, ct).ConfigureAwait(false)
                            ?? throw new InvalidOperationException("the key moved meanwhile");
                        RotationPlan dklsPlan = plan;
                        (_, Task<DklsKeyInfo> dklsRun) = StartRun(dklsPlan, session => _dkls.RotateAsync(dklsPlan, Lifetime, session));
                        _ = await dklsRun.ConfigureAwait(false);
                    }
                    else
                    {
                        _ = FrostCiphersuite.TryGet(key.Scheme, out FrostCiphersuite? suite);
                        _ = await FrostKeyAsync(key, suite!, ct).ConfigureAwait(false);
                        plan = await _frost.PlanEvictionAsync(key.Id, node.NodeId, node.Replacement, ct).ConfigureAwait(false)
                            ?? throw new InvalidOperationException("the key moved meanwhile");
                        (_, Task<FrostKeyInfo> run) = StartRun(plan);
                        _ = await run.ConfigureAwait(false);
                    }

                    // Audited by the run's retire (EvictionPlanner.MovedAudit), in the same transaction.
                    KeyRecord stored = await _store.Keys.GetAsync(key.Id, CancellationToken.None).ConfigureAwait(false) ?? key;
                    moved.Add(ToResponse(stored));
                }
                catch (Exception e) when (e is not OperationCanceledException and not InvalidOperationException)
                {
                    first ??= e is EvictionRefusedException ? new ApiException(ProblemTypes.EvictionRefused, e.Message) : e;
                }
            }

            return first is null ? moved : throw first;
        }
        finally
        {
            _evicting.Release();
        }
    }

    private static byte[] Hash(string text) => SHA256.HashData(Encoding.UTF8.GetBytes(text));

    private static string Shorten(string text) => text.Length > 160 ? text[..160] : text;
}
