using System.Globalization;
using Conclave.Node.Protocol;
using Conclave.Node.Rpc;
using Conclave.Node.Threshold.Dkls23;
using Conclave.Server.Coordinator;
using Conclave.Server.Threshold.Engine;

namespace Conclave.Server.Threshold.Dkls23;

/// <summary>
/// The DKLs23 presignature pool (ePrint 2023/765 §3: rounds one to three of Protocol 3.6 are message-independent). A pool
/// per (key, key version, signer set, derivation path) in the engine's <see cref="MaterialPools{TPoolKey, TItem}"/>, filled
/// in the background by running the three rounds with an empty digest (the nodes keep the presignature in memory and
/// record its id consumed in their ledger before R leaves, DklsPresignHandlers). The path is fixed in round one, before any
/// R_j is revealed (Groth and Shoup, ePrint 2021/1330): a presignature serves only its own path, and a path-less request
/// only root presignatures. Online signing with a pooled presignature is one round to its t signers; with none, or when
/// one of its signers fails, the three rounds run as before.
/// </summary>
public sealed partial class DklsCoordinator
{
    private MaterialPools<DklsPresignPoolKey, DklsPooledPresignature>? _presignatures;

    /// <summary>
    /// Presignatures kept per (key version, signer set, path); 0 turns presigning off. A pool is refilled in the background
    /// (one batch of this many) when it falls below this.
    /// </summary>
    public int PresignPoolSize { get; init; }

    private long _presignedSignatures;

    /// <summary>Signatures <see cref="SignDigestAsync"/> made in one round with a pooled presignature.</summary>
    public long PresignedSignatures => Interlocked.Read(ref _presignedSignatures);

    /// <summary>Presigning sessions one refill runs at once.</summary>
    public int PresignParallelism { get; init; } = 2;

    private MaterialPools<DklsPresignPoolKey, DklsPooledPresignature> Presignatures =>
        LazyInitializer.EnsureInitialized(ref _presignatures, () => new(FetchPresignaturesAsync, (_, _) => true) { LowWater = PresignPoolSize });

    /// <summary>Pooled presignatures for the key's current version and <paramref name="path"/>, over every signer set.</summary>
    public int PresignDepth(string keyId, IReadOnlyList<uint> path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (Find(keyId) is not { } key)
        {
            return 0;
        }

        string p = DklsPresignPoolKey.PathText(path);
        return Presignatures.PoolKeys.Where(k => k.KeyId == keyId && k.Version == key.Version && k.Path == p).Sum(Presignatures.Depth);
    }

    /// <summary>Presigns one batch for the key's current version and <paramref name="path"/> with t healthy holders (waits for it).</summary>
    public async Task PresignAsync(string keyId, IReadOnlyList<uint> path, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(path);
        DklsKeyInfo key = Find(keyId) ?? throw new ArgumentException($"unknown DKLs23 key {keyId}", nameof(keyId));
        DklsPresignPoolKey pool = DefaultPool(key, path) ?? throw new QuorumUnavailableException($"fewer than {key.Threshold} holders of key {keyId} are healthy; nothing was presigned");
        await Presignatures.RefillAsync(pool, ct).ConfigureAwait(false);
    }

    /// <summary>Takes a pooled presignature for the key's current version and exactly <paramref name="path"/> whose signers are all healthy.</summary>
    public DklsPooledPresignature? TakePresignature(DklsKeyInfo key, IReadOnlyList<uint> path)
    {
        Presignatures.Drop(k => k.KeyId == key.KeyId && k.Version != key.Version);
        string p = DklsPresignPoolKey.PathText(path);
        foreach (DklsPresignPoolKey k in Presignatures.PoolKeys.Where(k => k.KeyId == key.KeyId && k.Version == key.Version && k.Path == p))
        {
            if (k.SignerIds.Any(n => _health.IsResting(n) || _health.IsUntrusted(n)))
            {
                continue;
            }

            if (Presignatures.TryTake(k) is { } item)
            {
                return item;
            }
        }

        return null;
    }

    /// <summary>
    /// The online round: every signer of <paramref name="presignature"/> signs <paramref name="digest"/> with its half
    /// under <paramref name="path"/> (a node refuses a path other than the one fixed in round one); combined and verified
    /// with libsecp256k1 as for three rounds. A node failure is a <see cref="NodeCallException"/>, a bad share a <see cref="CulpritException"/>.
    /// </summary>
    public async Task<DklsSignatureResult> SignPresignedAsync(DklsKeyInfo key, DklsPooledPresignature presignature, byte[] digest, IReadOnlyList<uint> path, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(presignature);
        ArgumentNullException.ThrowIfNull(path);
        byte[] session = Cluster.NewSessionId();
        if (BeforeSignRound is { } record)
        {
            await record(key.KeyId, key.Version, digest, session, ct).ConfigureAwait(false);
        }

        // Each signer's half is asked in the next online step to its node (StepCoalescer: alone when the node has room,
        // else with the other presigned signatures waiting for it), under this round's own session. As before, every
        // signer answers (or fails) before the first failure is thrown.
        uint[] pathIndexes = [.. path];
        Task<DklsPresignOutcome>[] calls = [.. presignature.Signers.Select(n => _presignSteps.CallAsync(n,
            new DklsPresignItem(session, key.KeyId, key.Version, presignature.Signers, pathIndexes, presignature.Ids[n], digest), ct))];
        await Task.WhenAll(calls).ConfigureAwait(false);
        var shares = new Dictionary<uint, (byte[] R, byte[] Share)>(calls.Length);
        for (int i = 0; i < calls.Length; i++)
        {
            DklsPresignOutcome outcome = calls[i].Result;
            shares[presignature.Signers[i]] = (outcome.NoncePoint!, outcome.Share!);
        }

        return CombineShares(key, presignature.Session, presignature.Signers, path, digest, shares);
    }

    /// <summary>
    /// One online step to <paramref name="node"/> carrying every item the coalescer gathered for it (<see cref="DklsPresignBatch"/>):
    /// one envelope each way. A reply that is not one well-formed dkls.presign.shares message for exactly these items
    /// names the node; an item the node refused fails with that refusal (as a lone step's refusal would).
    /// </summary>
    private async Task<IReadOnlyList<CoalescedOutcome<DklsPresignOutcome>>> SendPresignStepAsync(uint node, IReadOnlyList<DklsPresignItem> items)
    {
        Envelope req = _cluster.Request(Cluster.NewSessionId(), DklsPresignHandlers.PresignSign, 1, [node], DklsPresignBatch.EncodeRequest(items));
        IReadOnlyList<Envelope> reply = await _cluster.Node(node).StepAsync(req, [], _cluster.RoundTimeout * 2, CancellationToken.None).ConfigureAwait(false);
        IReadOnlyList<DklsPresignOutcome> outcomes;
        try
        {
            outcomes = reply.Count == 1 && reply[0].Kind == DklsPresignHandlers.Shares
                ? DklsPresignBatch.DecodeReply(reply[0].Payload.Span, items.Count)
                : throw new ProtocolException("not one dkls.presign.shares message");
        }
        catch (ProtocolException e)
        {
            throw new CulpritException([node], $"node {node} answered the online signing request with something other than its shares: {e.Message}");
        }

        return [.. outcomes.Select(o => o.Share is not null
            ? CoalescedOutcome<DklsPresignOutcome>.Of(o)
            : CoalescedOutcome<DklsPresignOutcome>.Failed(new NodeCallException(node, Grpc.Core.StatusCode.FailedPrecondition, o.Refusal!, o.Culprit, null)))];
    }

    /// <summary>Signs with a pooled presignature when there is one; null: run the three rounds (and refill in the background).</summary>
    private async Task<DklsSignatureResult?> TrySignPresignedAsync(DklsKeyInfo key, byte[] digest, IReadOnlyList<uint> path, CancellationToken ct)
    {
        if (PresignPoolSize <= 0)
        {
            return null;
        }

        DklsPooledPresignature? presignature = TakePresignature(key, path);
        if (presignature is null)
        {
            if (DefaultPool(key, path) is { } pool)
            {
                Presignatures.StartRefill(pool);
            }

            return null;
        }

        try
        {
            DklsSignatureResult result = await SignPresignedAsync(key, presignature, digest, path, ct).ConfigureAwait(false);
            Interlocked.Increment(ref _presignedSignatures);
            return result;
        }
        catch (NodeCallException e) when (e.Culprit is null)
        {
            // Down, restarted (its pool is gone) or overloaded: forget what it presigned and sign in three rounds.
            if (e.IsTransient)
            {
                _health.MarkDown(e.NodeId);
            }

            Presignatures.Drop(k => k.KeyId == key.KeyId && k.SignerIds.Contains(e.NodeId));
            return null;
        }
        catch (NodeCallException e) when (e.Culprit is uint culprit)
        {
            throw new CulpritException([culprit], e.Message);
        }
    }

    /// <summary>The pool a refill fills: the first t holders that are neither resting nor untrusted; null when fewer are.</summary>
    private DklsPresignPoolKey? DefaultPool(DklsKeyInfo key, IReadOnlyList<uint> path)
    {
        uint[] signers = [.. key.Nodes.Order().Where(n => !_health.IsResting(n) && !_health.IsUntrusted(n)).Take(key.Threshold)];
        return signers.Length < key.Threshold ? null : new DklsPresignPoolKey(key.KeyId, key.Version, string.Join(',', signers), DklsPresignPoolKey.PathText(path));
    }

    /// <summary>One refill: <see cref="PresignPoolSize"/> presigning sessions, <see cref="PresignParallelism"/> at a time; keeps those that completed.</summary>
    private async Task<IReadOnlyList<DklsPooledPresignature>> FetchPresignaturesAsync(DklsPresignPoolKey pool, CancellationToken ct)
    {
        DklsKeyInfo key = Find(pool.KeyId) ?? throw new InvalidOperationException($"key {pool.KeyId} is not registered");
        if (key.Version != pool.Version)
        {
            return [];
        }

        var made = new List<DklsPooledPresignature>();
        Exception? first = null;
        for (int done = 0; done < Math.Max(1, PresignPoolSize); done += Math.Max(1, PresignParallelism))
        {
            Task<DklsPooledPresignature>[] batch = [.. Enumerable.Range(0, Math.Max(1, PresignParallelism)).Select(_ => PresignOnceAsync(key, pool.SignerIds, pool.PathIndexes, ct))];
            try
            {
                await Task.WhenAll(batch).ConfigureAwait(false);
            }
            catch (Exception) when (!ct.IsCancellationRequested)
            {
                // Looked at below.
            }

            made.AddRange(batch.Where(t => t.IsCompletedSuccessfully).Select(t => t.Result));
            first ??= batch.FirstOrDefault(t => t.IsFaulted)?.Exception?.InnerException;
            if (first is not null)
            {
                break;
            }
        }

        return made.Count == 0 && first is not null ? throw first : made;
    }

    /// <summary>Rounds one to three of Protocol 3.6 with an empty digest: every signer pools its presignature and answers R ‖ its id.</summary>
    private async Task<DklsPooledPresignature> PresignOnceAsync(DklsKeyInfo key, uint[] signers, uint[] path, CancellationToken ct)
    {
        byte[] session = Cluster.NewSessionId();
        byte[] start = SignerPayload(key, signers, path).ToArray();
        Dictionary<uint, IReadOnlyList<Envelope>> round1 = await StepEachAsync(signers, session, DklsMessages.SignRound1, 1, _ => start, _ => [], ct).ConfigureAwait(false);
        NamingOnlySigners(round1, () => CheckRoundOneBroadcasts(signers, round1));
        List<Envelope> keys = SessionKeys(round1);
        Dictionary<uint, IReadOnlyList<Envelope>> delivered = await StepEachAsync(signers, session, DklsMessages.SignDeliver, 1, _ => [],
            n => keys.Where(m => m.Recipients.Contains(n)), ct).ConfigureAwait(false);
        List<Envelope> messages1 = [.. round1.Values.Concat(delivered.Values).SelectMany(m => m).Where(m => m.Kind != DklsMessages.SignAgreementKey)];
        Dictionary<uint, IReadOnlyList<Envelope>> round2 = await StepEachAsync(signers, session, DklsMessages.SignRound2, 2, _ => [],
            n => messages1.Where(m => m.Recipients.Contains(n)), ct).ConfigureAwait(false);
        List<Envelope> messages2 = [.. round2.Values.SelectMany(m => m)];
        byte[] presign = new PayloadWriter().Bytes([]).ToArray();
        Dictionary<uint, IReadOnlyList<Envelope>> round3 = await StepEachAsync(signers, session, DklsMessages.SignRound3, 3, _ => presign,
            n => messages2.Where(m => m.Recipients.Contains(n)), ct).ConfigureAwait(false);

        byte[]? r = null;
        var ids = new Dictionary<uint, byte[]>();
        foreach (uint node in signers)
        {
            IReadOnlyList<Envelope> reply = round3[node];
            if (reply.Count != 1 || reply[0].Kind != DklsMessages.Share)
            {
                throw new CulpritException([node], $"node {node} answered presigning round three with something other than one presignature");
            }

            byte[] nonce;
            try
            {
                var reader = new PayloadReader(reply[0].Payload.Span);
                nonce = reader.Bytes("R", 33).ToArray();
                ids[node] = reader.Bytes("presignatureId", 16).ToArray();
                reader.End();
            }
            catch (ProtocolException e)
            {
                throw new CulpritException([node], $"node {node} sent a malformed presignature answer: {e.Message}");
            }

            if (nonce.Length != 33 || ids[node].Length != 16)
            {
                throw new CulpritException([node], $"node {node} sent a presignature answer of the wrong length");
            }

            r ??= nonce;
            if (!r.AsSpan().SequenceEqual(nonce))
            {
                throw new CulpritException(Array.Empty<uint>(), "the signers reported different nonce points R; the presignature was discarded");
            }
        }

        return new DklsPooledPresignature(session, signers, path, r!, ids);
    }

    private static PayloadWriter SignerPayload(DklsKeyInfo key, uint[] signers, IReadOnlyList<uint> path)
    {
        var w = new PayloadWriter().String(key.KeyId).U32((uint)key.Version).U32((uint)signers.Length);
        foreach (uint s in signers)
        {
            w.U32(s);
        }

        w.U32((uint)path.Count);
        foreach (uint i in path)
        {
            w.U32(i);
        }

        return w;
    }

    /// <summary>One step on every node in parallel; the first failure is thrown (as <see cref="NodeCallException"/>) once all answered.</summary>
    private async Task<Dictionary<uint, IReadOnlyList<Envelope>>> StepEachAsync(uint[] nodes, byte[] session, string kind, uint round,
        Func<uint, byte[]> payload, Func<uint, IEnumerable<Envelope>> relayed, CancellationToken ct)
    {
        var tasks = nodes.ToDictionary(n => n, n => SignStepAsync(n, session, kind, round, payload(n), relayed(n), ct));
        await Task.WhenAll(tasks.Values).ConfigureAwait(false);
        return tasks.ToDictionary(kv => kv.Key, kv => kv.Value.Result);
    }
}

/// <summary>A presignature pool: key, key version, signer set ("1,2") and derivation path ("m/0/7").</summary>
public sealed record DklsPresignPoolKey(string KeyId, int Version, string Signers, string Path)
{
    public uint[] SignerIds => [.. Signers.Split(',').Select(s => uint.Parse(s, CultureInfo.InvariantCulture))];

    public uint[] PathIndexes => Path == "m" ? [] : [.. Path[2..].Split('/').Select(s => uint.Parse(s, CultureInfo.InvariantCulture))];

    public static string PathText(IReadOnlyList<uint> path) => path.Count == 0 ? "m" : "m/" + string.Join('/', path);
}

/// <summary>
/// What the coordinator keeps of one presignature (all public): the presigning session, its signers and path, R, and the
/// id each signer pooled its half under.
/// </summary>
public sealed record DklsPooledPresignature(byte[] Session, uint[] Signers, uint[] Path, byte[] R, IReadOnlyDictionary<uint, byte[]> Ids);
