using System.Collections.Concurrent;
using Conclave.Crypto;
using Conclave.Crypto.Kdf;
using Conclave.Crypto.Memory;
using Conclave.Node.Frost;
using Conclave.Node.Protocol;
using Conclave.Node.Rpc;
using Conclave.Threshold;
using Conclave.Threshold.Frost;
using Conclave.Threshold.Frost.Ciphersuites;

namespace Conclave.Server.Coordinator;

/// <summary>
/// A FROST key as the coordinator knows it: public data only. <see cref="PublicKeyPackage"/> is the key the DKG (or
/// the dealer) made — for frost-taproot the BIP-341 internal key P; signatures are made under
/// <see cref="SigningKey"/> (for frost-taproot the BIP-86 output key Q, see <see cref="KeyDerivation.Signing"/>).
/// </summary>
public sealed record FrostKeyInfo(string KeyId, FrostCiphersuite Suite, PublicKeyPackage PublicKeyPackage, int Version = 1)
{
    private PublicKeyPackage? _signingKey;

    /// <summary>The node ids holding shares (node id n holds the share of identifier n).</summary>
    public IReadOnlyList<uint> Nodes { get; } = [.. PublicKeyPackage.Participants.Select(p => FrostNodeIds.ToNode(p))];

    /// <summary>
    /// The public key package signatures of the key itself are made and verified under: the key for frost-ed25519 and
    /// frost-secp256k1, the BIP-86 tweaked output key for frost-taproot (computed once).
    /// </summary>
    public PublicKeyPackage SigningKey => _signingKey ??= SigningKeyFor([]);

    /// <summary>The public key package a signature at <paramref name="path"/> is made and verified under (HD child, then for frost-taproot the tweak).</summary>
    public PublicKeyPackage SigningKeyFor(IReadOnlyList<uint> path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (path.Count == 0 && _signingKey is not null)
        {
            return _signingKey;
        }

        return FrostScheme.Get(Suite.SchemeName).Derive(PublicKeyPackage, KeyDerivation.Signing(Suite, path));
    }
}

/// <summary>
/// A FROST signature, the key version that made it, the (child) verification key it verifies under and that key
/// before the taproot tweak (<see cref="InternalKey"/>: for frost-taproot the BIP-341 internal key of the (child)
/// key, whose BIP-86 output key is <see cref="VerificationKey"/>; for the other schemes equal to it).
/// </summary>
public sealed record FrostSignature(byte[] Signature, int KeyVersion, byte[] VerificationKey, byte[] InternalKey);

/// <summary>A signing attempt failed because of a node that misbehaved (a bad share): the culprit is named.</summary>
public sealed class CulpritException : Exception
{
    public CulpritException() { }

    public CulpritException(string message) : base(message) { }

    public CulpritException(string message, Exception innerException) : base(message, innerException) { }

    public CulpritException(IReadOnlyList<uint> culprits, string message) : base(message) => Culprits = culprits;

    public IReadOnlyList<uint> Culprits { get; } = [];
}

/// <summary>No quorum of healthy nodes could complete the operation.</summary>
public sealed class QuorumUnavailableException : Exception
{
    public QuorumUnavailableException() { }

    public QuorumUnavailableException(string message) : base(message) { }

    public QuorumUnavailableException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>
/// Drives FROST across the signer nodes (RFC 9591 section 5, the coordinator's role): keeps per-node pools of
/// round-1 commitments so an online signature is one round trip to t nodes, builds the signing package, collects
/// the shares, and aggregates (every share verified, culprits named, the final signature verified). It is not
/// trusted with secrets: it never sees a share or a nonce, and every message it relays is signed by its sender.
/// A node that is down or slow is skipped for a while and the signature is retried with another quorum.
/// </summary>
public sealed partial class FrostCoordinator
{
    private readonly Cluster _cluster;
    private readonly ConcurrentDictionary<string, FrostKeyInfo> _keys = new(StringComparer.Ordinal);
    /// <summary>Pooled commitments per key, key version and node: commitments issued for one version never serve another.</summary>
    private readonly ConcurrentDictionary<(string Key, int Version, uint Node), NoncePool> _pools = new();
    private readonly ConcurrentDictionary<uint, long> _downUntil = new();
    private readonly TimeProvider _clock;

    /// <summary>
    /// Called (and awaited) before the nodes of a signing round are asked for shares: the server appends its audit entry
    /// for the round here (Node.Frost.SignAuditRecords), so every share a node gives is explained by the server's log.
    /// </summary>
    public Func<string, int, ReadOnlyMemory<byte>, byte[], CancellationToken, Task>? BeforeSignRound { get; init; }

    public FrostCoordinator(Cluster cluster, TimeProvider? clock = null)
    {
        _cluster = cluster;
        _clock = clock ?? TimeProvider.System;
    }

    /// <summary>
    /// Where rotation runs are recorded: the server passes its store's durable log; without one (tests, tools) runs are
    /// kept in memory and a crash of this process loses their state (the nodes still never erase without every commit).
    /// </summary>
    public Storage.Rotation.IRotationLog Runs { get; init; } = new InMemoryRotationLog();

    /// <summary>This coordinator's name in the rotation log (stable across restarts of the same server replica).</summary>
    public string Owner { get; init; } = "coordinator-" + Guid.NewGuid().ToString("N")[..12];

    /// <summary>How long a run stays this coordinator's after its last step before another replica may take it over.</summary>
    public TimeSpan RunLease { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>
    /// Testing only: called at every step boundary of a rotation run (kind, boundary name); a test throws
    /// <see cref="RotationCrashException"/> there to stop the run as a crash would.
    /// </summary>
    public Func<Storage.Rotation.RotationKind, string, Task>? FaultInjection { get; set; }

    /// <summary>Commitments fetched per pool refill.</summary>
    public int PoolBatch { get; init; } = 128;

    /// <summary>A refill starts when a node's pool for a key falls below this.</summary>
    public int PoolLowWater { get; init; } = 32;

    /// <summary>How long a node that failed with a transient error is left out of quorums.</summary>
    public TimeSpan DownTime { get; init; } = TimeSpan.FromSeconds(5);

    public int MaxAttempts { get; init; } = 3;

    /// <summary>
    /// Registers a key (or a newer version of it). A version change drops the key's pooled commitments: they were
    /// issued for the previous version's shares.
    /// </summary>
    public void Register(FrostKeyInfo key)
    {
        ArgumentNullException.ThrowIfNull(key);
        FrostKeyInfo? previous = null;
        _keys.AddOrUpdate(key.KeyId, key, (_, old) =>
        {
            previous = old;
            return key;
        });
        if (previous is not null && previous.Version != key.Version)
        {
            foreach ((string Key, int Version, uint Node) pool in _pools.Keys.Where(p => p.Key == key.KeyId && p.Version != key.Version))
            {
                _pools.TryRemove(pool, out _);
            }
        }
    }

    /// <summary>Every key this coordinator has registered (public data).</summary>
    public IReadOnlyList<FrostKeyInfo> Keys => [.. _keys.Values];

    public FrostKeyInfo? Find(string keyId) => _keys.TryGetValue(keyId, out FrostKeyInfo? k) ? k : null;

    public int PoolDepth(string keyId, uint node) =>
        Find(keyId) is { } k && _pools.TryGetValue((keyId, k.Version, node), out NoncePool? p) ? p.Count : 0;

    /// <summary>
    /// Key import: splits are made by a trusted dealer (an offline ceremony or a test) and each key package is
    /// sealed to its node's X25519 agreement key (pinned in the cluster manifest); the coordinator relays only
    /// ciphertexts. Every node must store the key and report the same public key package.
    /// </summary>
    public async Task<FrostKeyInfo> ImportAsync(string keyId, DealerOutput dealt, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(dealt);
        FrostCiphersuite suite = dealt.PublicKeyPackage.Suite;
        byte[] session = Cluster.NewSessionId();
        var tasks = new List<Task<IReadOnlyList<Envelope>>>();
        foreach (KeyPackage kp in dealt.KeyPackages)
        {
            uint nodeId = FrostNodeIds.ToNode(kp.Identifier);
            Node.Config.ClusterNode node = _cluster.Manifest.Node(nodeId);
            byte[] context = FrostMessages.ImportContext(session, nodeId, keyId);
            (SecretBuffer ephSecret, byte[] ephPublic) = X25519.GenerateKeyPair();
            byte[] sealedPackage;
            using (ephSecret)
            using (SecretBuffer wrap = X25519.DeriveKey(ephSecret.ReadOnlySpan, Convert.FromHexString(node.AgreementKey), context))
            using (SecretBuffer plain = kp.Export())
            {
                sealedPackage = Conclave.Crypto.Aead.Envelope.Seal(wrap.ReadOnlySpan, plain.ReadOnlySpan, context);
            }

            byte[] payload = new PayloadWriter().String(keyId).String(suite.SchemeName).Bytes(ephPublic).Bytes(sealedPackage).ToArray();
            Envelope req = _cluster.Request(session, FrostMessages.Import, 0, [nodeId], payload);
            tasks.Add(_cluster.Node(nodeId).StepAsync(req, [], _cluster.RoundTimeout * 5, ct));
        }

        IReadOnlyList<Envelope>[] replies = await Task.WhenAll(tasks).ConfigureAwait(false);
        foreach (IReadOnlyList<Envelope> reply in replies)
        {
            if (reply.Count != 1 || reply[0].Kind != FrostMessages.Imported
                || !PublicKeyPackage.FromBytes(suite, reply[0].Payload.Span).PublicEquals(dealt.PublicKeyPackage))
            {
                throw new CulpritException([reply.Count > 0 ? reply[0].Sender : 0], "a node reported a different public key package after import");
            }
        }

        var info = new FrostKeyInfo(keyId, suite, dealt.PublicKeyPackage);
        Register(info);
        return info;
    }

    /// <summary>Signs a message with a FROST key: one round trip to t nodes when their pools have commitments.</summary>
    public async Task<byte[]> SignAsync(string keyId, ReadOnlyMemory<byte> message, CancellationToken ct) =>
        (await SignAsync(keyId, message, [], ct).ConfigureAwait(false)).Signature;


    /// <summary>
    /// Signs with the non-hardened child of a FROST key at <paramref name="path"/> (empty: the key itself). Every node
    /// derives its share of the child (HdDerivation) and, for frost-taproot, tweaks it to the child's BIP-86 output
    /// key (<see cref="KeyDerivation.Signing"/>); the shares are verified and aggregated under that same public key
    /// package (<see cref="FrostKeyInfo.SigningKeyFor"/>), so the signature verifies under the key that
    /// POST /v1/keys/{name}/derive reports as the verifying key (frost-taproot: the output key of the P2TR address).
    /// </summary>
    public async Task<FrostSignature> SignAsync(string keyId, ReadOnlyMemory<byte> message, IReadOnlyList<uint> path, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(path);
        FrostKeyInfo key = Find(keyId) ?? throw new ArgumentException($"unknown FROST key {keyId}", nameof(keyId));
        PublicKeyPackage signingKey = key.SigningKeyFor(path);
        var pathWriter = new PayloadWriter().U32((uint)path.Count);
        foreach (uint index in path)
        {
            pathWriter.U32(index);
        }

        byte[] pathBytes = pathWriter.ToArray();
        var failures = new List<string>();
        var excluded = new HashSet<uint>();
        var poolDropped = new HashSet<uint>();
        for (int attempt = 0; attempt < MaxAttempts; attempt++)
        {
            // A refresh or reshare may have registered a newer version meanwhile: sign with the newest one.
            if (Find(keyId) is { } newest && newest.Version != key.Version)
            {
                key = newest;
                signingKey = key.SigningKeyFor(path);
                excluded.Clear();
                poolDropped.Clear();
            }

            List<uint> quorum = ChooseQuorum(key, excluded);
            if (quorum.Count < key.PublicKeyPackage.Threshold)
            {
                break;
            }

            var picked = new List<(uint Node, PooledCommitment C)>(quorum.Count);
            try
            {
                foreach (uint n in quorum)
                {
                    picked.Add((n, await TakeCommitmentAsync(key, n, ct).ConfigureAwait(false)));
                }
            }
            catch (NodeCallException e)
            {
                // Down, slow or overloaded: rest it. A refusal (for example a key version this coordinator does not
                // hold yet) is about this call only.
                if (e.IsTransient)
                {
                    MarkDown(e.NodeId);
                }

                excluded.Add(e.NodeId);
                failures.Add(e.Message);
                continue;
            }

            var package = new SigningPackage(message.Span, picked.Select(p => p.C.Commitments));
            byte[] packageBytes = package.ToBytes();
            byte[] session = Cluster.NewSessionId();
            if (BeforeSignRound is { } record)
            {
                await record(keyId, key.Version, message, session, ct).ConfigureAwait(false); // issue 14 item 8
            }

            var calls = picked.Select(p =>
            {
                byte[] payload = [.. new PayloadWriter().String(keyId).Bytes(p.C.NonceId).Bytes(packageBytes).ToArray(), .. pathBytes,
                    .. new PayloadWriter().U32((uint)key.Version).ToArray()];
                Envelope req = _cluster.Request(session, FrostMessages.Sign, 1, [p.Node], payload);
                return (p.Node, Task: _cluster.Node(p.Node).StepAsync(req, [], _cluster.RoundTimeout, ct));
            }).ToList();

            var shares = new List<SignatureShare>(calls.Count);
            bool retry = false;
            foreach ((uint node, Task<IReadOnlyList<Envelope>> task) in calls)
            {
                try
                {
                    IReadOnlyList<Envelope> reply = await task.ConfigureAwait(false);
                    if (reply.Count != 1 || reply[0].Kind != FrostMessages.Share)
                    {
                        throw new CulpritException([node], $"node {node} answered the signing request with something other than one share");
                    }

                    shares.Add(SignatureShare.FromBytes(key.Suite, reply[0].Payload.Span));
                }
                catch (NodeCallException e)
                {
                    retry = true;
                    failures.Add(e.Message);
                    if (e.IsTransient)
                    {
                        MarkDown(node);
                        excluded.Add(node);
                    }
                    else
                    {
                        // The node refused (for example, it restarted and lost its nonces): its pooled commitments are
                        // stale. Drop them and give it one more chance with fresh ones; a second refusal leaves it out.
                        DropPool(keyId, node);
                        if (!poolDropped.Add(node))
                        {
                            excluded.Add(node);
                        }
                    }
                }
                catch (CryptoFormatException e)
                {
                    throw new CulpritException([node], $"node {node} sent a malformed signature share: {e.Message}");
                }
            }

            if (retry)
            {
                continue;
            }

            try
            {
                byte[] internalKey = !ReferenceEquals(key.Suite, FrostCiphersuite.Secp256k1Taproot) ? signingKey.VerificationKey
                    : path.Count == 0 ? key.PublicKeyPackage.VerificationKey : HdDerivation.DerivePath(key.PublicKeyPackage, path).VerificationKey;
                var signature = new FrostSignature(FrostAggregator.Aggregate(package, shares, signingKey), key.Version, signingKey.VerificationKey, internalKey);
                CountSignature(keyId);
                return signature;
            }
            catch (ThresholdProtocolException e)
            {
                uint[] culprits = [.. e.Culprits.Select(FrostNodeIds.ToNode)];
                throw new CulpritException(culprits, $"signature aggregation failed: {e.Message}");
            }
        }

        long now = _clock.GetUtcNow().ToUnixTimeMilliseconds();
        uint[] resting = [.. key.Nodes.Where(n => _downUntil.TryGetValue(n, out long until) && until > now)];
        throw new QuorumUnavailableException($"no quorum of {key.PublicKeyPackage.Threshold} nodes could sign with key {keyId}" +
            (failures.Count > 0 ? ": " + string.Join("; ", failures.Distinct().Take(4)) : "") +
            (resting.Length > 0 ? $" (resting after transport failures: node {string.Join(", ", resting)})" : ""));
    }

    private List<uint> ChooseQuorum(FrostKeyInfo key, HashSet<uint> excluded)
    {
        long now = _clock.GetUtcNow().ToUnixTimeMilliseconds();
        return key.Nodes
            .Where(n => !excluded.Contains(n) && !IsUntrusted(n) && (!_downUntil.TryGetValue(n, out long until) || until <= now))
            .OrderByDescending(n => PoolDepth(key.KeyId, n))
            .ThenBy(_ => Random.Shared.Next())
            .Take(key.PublicKeyPackage.Threshold)
            .ToList();
    }

    private void MarkDown(uint node) => _downUntil[node] = _clock.GetUtcNow().Add(DownTime).ToUnixTimeMilliseconds();

    private void DropPool(string keyId, uint node)
    {
        foreach ((string Key, int Version, uint Node) pool in _pools.Keys.Where(p => p.Key == keyId && p.Node == node))
        {
            _pools.TryRemove(pool, out _);
        }
    }

    private async Task<PooledCommitment> TakeCommitmentAsync(FrostKeyInfo key, uint node, CancellationToken ct)
    {
        NoncePool pool = _pools.GetOrAdd((key.KeyId, key.Version, node), _ => new NoncePool());
        if (pool.TryTake(out PooledCommitment? c))
        {
            if (pool.Count < PoolLowWater)
            {
                _ = RefillInBackground(key, node, pool);
            }

            return c!;
        }

        await RefillAsync(key, node, pool, ct).ConfigureAwait(false);
        // Empty after a refill: the refill this call waited for failed, or other calls took everything. Not a sign that
        // the node is down (Aborted is not transient): it is left out of this attempt only.
        return pool.TryTake(out c) ? c! : throw new NodeCallException(node, Grpc.Core.StatusCode.Aborted, "no pooled commitments after a refill", null, null);
    }

    private async Task RefillInBackground(FrostKeyInfo key, uint node, NoncePool pool)
    {
        try
        {
            await RefillAsync(key, node, pool, CancellationToken.None).ConfigureAwait(false);
        }
        catch (NodeCallException)
        {
            MarkDown(node);
        }
        catch (QuorumUnavailableException)
        {
        }
    }

    /// <summary>Fetches a batch of commitments from a node into its pool (one refill in flight per pool).</summary>
    public async Task RefillAsync(FrostKeyInfo key, uint node, CancellationToken ct)
        => await RefillAsync(key, node, _pools.GetOrAdd((key.KeyId, key.Version, node), _ => new NoncePool()), ct).ConfigureAwait(false);

    private async Task RefillAsync(FrostKeyInfo key, uint node, NoncePool pool, CancellationToken ct)
    {
        if (!await pool.RefillGate.WaitAsync(0, ct).ConfigureAwait(false))
        {
            // Another refill is in flight: wait for it.
            await pool.RefillGate.WaitAsync(ct).ConfigureAwait(false);
            pool.RefillGate.Release();
            return;
        }

        try
        {
            byte[] payload = new PayloadWriter().String(key.KeyId).U32((uint)PoolBatch).U32((uint)key.Version).ToArray();
            Envelope req = _cluster.Request(Cluster.NewSessionId(), FrostMessages.Commit, 0, [node], payload);
            IReadOnlyList<Envelope> reply = await _cluster.Node(node).StepAsync(req, [], _cluster.RoundTimeout * 5, ct).ConfigureAwait(false);
            if (reply.Count != 1 || reply[0].Kind != FrostMessages.Commitments)
            {
                throw new QuorumUnavailableException($"node {node} answered a commit request with something else");
            }

            var r = new PayloadReader(reply[0].Payload.Span);
            uint count = r.U32("count");
            Identifier expected = Identifier.FromInt(key.Suite, (int)node);
            var items = new List<PooledCommitment>((int)Math.Min(count, FrostMessages.MaxBatch));
            for (uint i = 0; i < count; i++)
            {
                byte[] id = r.Bytes("nonceId", FrostMessages.NonceIdSizeInBytes).ToArray();
                SigningCommitments c = SigningCommitments.FromBytes(key.Suite, r.Bytes("commitments"));
                if (!c.Identifier.Equals(expected))
                {
                    throw new CulpritException([node], $"node {node} sent commitments for participant {c.Identifier}");
                }

                items.Add(new PooledCommitment(id, c));
            }

            r.End();
            pool.AddRange(items);
        }
        finally
        {
            pool.RefillGate.Release();
        }
    }

    private sealed record PooledCommitment(byte[] NonceId, SigningCommitments Commitments);

    private sealed class NoncePool
    {
        private readonly ConcurrentQueue<PooledCommitment> _queue = new();

        public SemaphoreSlim RefillGate { get; } = new(1, 1);

        public int Count => _queue.Count;

        public bool TryTake(out PooledCommitment? c) => _queue.TryDequeue(out c);

        public void AddRange(IEnumerable<PooledCommitment> items)
        {
            foreach (PooledCommitment i in items)
            {
                _queue.Enqueue(i);
            }
        }
    }
}
