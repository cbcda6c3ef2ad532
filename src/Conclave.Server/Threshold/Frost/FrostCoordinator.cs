using Conclave.Crypto;
using Conclave.Crypto.Kdf;
using Conclave.Crypto.Memory;
using Conclave.Node.Frost;
using Conclave.Node.Protocol;
using Conclave.Node.Rpc;
using Conclave.Node.Threshold.Engine;
using Conclave.Server.Threshold.Engine;
using Conclave.Threshold;
using Conclave.Threshold.Frost;
using Conclave.Threshold.Frost.Ciphersuites;

namespace Conclave.Server.Coordinator;

/// <summary>
/// A FROST key as the coordinator knows it: public data only. <see cref="PublicKeyPackage"/> is the key the DKG (or
/// the dealer) made — for frost-taproot the BIP-341 internal key P; signatures are made under
/// <see cref="SigningKey"/> (for frost-taproot the BIP-86 output key Q, see <see cref="KeyDerivation.Signing"/>).
/// </summary>
public sealed record FrostKeyInfo(string KeyId, FrostCiphersuite Suite, PublicKeyPackage PublicKeyPackage, int Version = 1) : IThresholdKey
{
    private PublicKeyPackage? _signingKey;

    /// <summary>The node ids holding shares (node id n holds the share of identifier n).</summary>
    public IReadOnlyList<uint> Nodes { get; } = [.. PublicKeyPackage.Participants.Select(p => FrostNodeIds.ToNode(p))];

    /// <summary>How many holders a signature needs.</summary>
    public int Threshold => PublicKeyPackage.Threshold;

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

/// <summary>
/// Drives FROST across the signer nodes (RFC 9591 section 5, the coordinator's role): keeps per-node pools of
/// round-1 commitments so an online signature is one round trip to t nodes, builds the signing package, collects
/// the shares, and aggregates (every share verified, culprits named, the final signature verified). It is not
/// trusted with secrets: it never sees a share or a nonce, and every message it relays is signed by its sender.
/// A node that is down or slow is skipped for a while and the signature is retried with another quorum.
/// FROST is a protocol on the threshold engine (docs/ARCHITECTURE.md "Threshold engine"): the key registry, quorum choice
/// and retries (<see cref="QuorumCall"/>), the commitment pools (<see cref="MaterialPools{TPoolKey, TItem}"/>), the
/// rotation runs (<see cref="RotationEngine{TKey}"/>), and node health, eviction and the DKG and repair rounds
/// (<see cref="ThresholdEngine"/>, shared with the other protocols) are the engine's; this class keeps FROST's rounds and
/// its public API.
/// </summary>
public sealed partial class FrostCoordinator
{
    private readonly Cluster _cluster;
    private readonly KeyRegistry<FrostKeyInfo> _keys = new();
    /// <summary>Pooled commitments per key, key version and node: commitments issued for one version never serve another.</summary>
    private readonly MaterialPools<(string Key, int Version, uint Node), PooledCommitment> _pools;
    private readonly ThresholdEngine _engine;
    private readonly NodeHealth _health;
    private readonly RotationEngine<FrostKeyInfo> _rotation;
    private readonly StepCoalescer<FrostSignItem, byte[]> _signSteps;

    /// <summary>
    /// Called (and awaited) before the nodes of a signing round are asked for shares: the server appends its audit entry
    /// for the round here (Node.Threshold.Engine.SignAuditRecords), so every share a node gives is explained by the server's log.
    /// </summary>
    public Func<string, int, ReadOnlyMemory<byte>, byte[], CancellationToken, Task>? BeforeSignRound { get; init; }

    /// <summary>A FROST coordinator on an engine of its own (tests and tools that run FROST alone).</summary>
    public FrostCoordinator(Cluster cluster, TimeProvider? clock = null)
        : this(new ThresholdEngine(cluster, clock))
    {
    }

    /// <param name="engine">What FROST shares with the server's other protocols: node health, eviction, the DKG and repair rounds.</param>
    public FrostCoordinator(ThresholdEngine engine)
    {
        ArgumentNullException.ThrowIfNull(engine);
        _engine = engine;
        _cluster = engine.Cluster;
        _health = engine.Health;
        _pools = new(FetchCommitmentsAsync, OnBackgroundRefillFailed);
        _rotation = new RotationEngine<FrostKeyInfo>(_cluster, new FrostRotationProtocol(this), _health);
        _signSteps = new StepCoalescer<FrostSignItem, byte[]>(SendSignStepAsync) { MaxItems = FrostSignBatch.MaxItems };
    }

    /// <summary>The engine this coordinator runs on (shared with the ecdsa-dkls23 coordinator on a server).</summary>
    public ThresholdEngine Engine => _engine;

    /// <summary>
    /// Where rotation runs are recorded: the server passes its store's durable log; without one (tests, tools) runs are
    /// kept in memory and a crash of this process loses their state (the nodes still never erase without every commit).
    /// </summary>
    public Storage.Rotation.IRotationLog Runs { get => _rotation.Runs; init => _rotation.Runs = value; }

    /// <summary>This coordinator's name in the rotation log (stable across restarts of the same server replica).</summary>
    public string Owner { get => _rotation.Owner; init => _rotation.Owner = value; }

    /// <summary>How long a run stays this coordinator's after its last step before another replica may take it over.</summary>
    public TimeSpan RunLease { get => _rotation.RunLease; init => _rotation.RunLease = value; }

    /// <summary>
    /// Testing only: called at every step boundary of a rotation run (kind, boundary name); a test throws
    /// <see cref="RotationCrashException"/> there to stop the run as a crash would.
    /// </summary>
    public Func<Storage.Rotation.RotationKind, string, Task>? FaultInjection { get => _rotation.FaultInjection; set => _rotation.FaultInjection = value; }

    /// <summary>Which nodes are resting or untrusted: the engine's, shared with every other protocol's coordinator on this server.</summary>
    public NodeHealth Health => _health;

    /// <summary>
    /// Called (and awaited) when the coordinator convicts nodes in a rotation run, before the run aborts: key id, run id,
    /// the culprits and their reasons. The server appends an audit entry here. The engine's (<see cref="ThresholdEngine.OnCulprits"/>):
    /// set here, it reports the convictions of every protocol's runs on this engine.
    /// </summary>
    public Func<string, string, IReadOnlyList<CulpritReason>, CancellationToken, Task>? OnCulprits { get => _engine.OnCulprits; init => _engine.OnCulprits = value; }

    /// <summary>Nodes the coordinator proved misbehaved, with the reason of the last conviction (see <see cref="NodeHealth.MarkSuspect"/>).</summary>
    public IReadOnlyDictionary<uint, string> Suspects => _health.Suspects;

    /// <summary>Commitments fetched per pool refill.</summary>
    public int PoolBatch { get; init; } = 128;

    /// <summary>A refill starts when a node's pool for a key falls below this.</summary>
    public int PoolLowWater { get => _pools.LowWater; init => _pools.LowWater = value; }

    /// <summary>How long a node that failed with a transient error is left out of quorums.</summary>
    public TimeSpan DownTime { get => _health.DownTime; init => _health.DownTime = value; }

    public int MaxAttempts { get; init; } = 3;

    /// <summary>
    /// Sign steps outstanding per node before further signatures wait and share the next step (issue 18, coalescing;
    /// <see cref="StepCoalescer{TItem, TResult}"/>). A lone signature never waits.
    /// </summary>
    public int SignStepsInFlight { get => _signSteps.MaxStepsInFlight; init => _signSteps.MaxStepsInFlight = value; }

    /// <summary>Signature shares asked of nodes, and the sign steps that carried them (shares per step: the coalescing achieved).</summary>
    public (long Items, long Steps) SignSteps => _signSteps.Sent;

    /// <summary>
    /// How signature shares are checked (issue 18): by default the aggregate first, and each share only when it does not
    /// verify (RFC 9591 section 5.4 permits it; a bad share is still named). <see cref="AggregationMode.VerifyEachShare"/>
    /// checks every share before aggregating.
    /// </summary>
    public AggregationMode Aggregation { get; init; } = AggregationMode.VerifySignatureFirst;

    /// <summary>
    /// Registers a key (or a newer version of it). A version change drops the key's pooled commitments: they were
    /// issued for the previous version's shares.
    /// </summary>
    public void Register(FrostKeyInfo key)
    {
        ArgumentNullException.ThrowIfNull(key);
        FrostKeyInfo? previous = _keys.Register(key);
        if (previous is not null && previous.Version != key.Version)
        {
            _pools.Drop(p => p.Key == key.KeyId && p.Version != key.Version);
        }
    }

    /// <summary>Every key this coordinator has registered (public data).</summary>
    public IReadOnlyList<FrostKeyInfo> Keys => _keys.Keys;

    public FrostKeyInfo? Find(string keyId) => _keys.Find(keyId);

    public int PoolDepth(string keyId, uint node) => Find(keyId) is { } k ? _pools.Depth((keyId, k.Version, node)) : 0;

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
        return await QuorumCall.RunAsync(_health, key, Find, MaxAttempts, (k, n) => _pools.Depth((k.KeyId, k.Version, n)),
            (k, quorum, call, token) => SignAttemptAsync(k, quorum, call, message, path, token), ct).ConfigureAwait(false);
    }

    /// <summary>One signing attempt with <paramref name="quorum"/> (RFC 9591 section 5.2 and 5.3); null: try again (the failure is in <paramref name="call"/>).</summary>
    private async Task<FrostSignature?> SignAttemptAsync(FrostKeyInfo key, IReadOnlyList<uint> quorum, QuorumCall call, ReadOnlyMemory<byte> message,
        IReadOnlyList<uint> path, CancellationToken ct)
    {
        string keyId = key.KeyId;
        PublicKeyPackage signingKey = key.SigningKeyFor(path);
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
            call.MaterialUnavailable(e);
            return null;
        }

        var package = new SigningPackage(message.Span, picked.Select(p => p.C.Commitments));
        byte[] packageBytes = package.ToBytes();
        byte[] session = Cluster.NewSessionId();
        if (BeforeSignRound is { } record)
        {
            await record(keyId, key.Version, message, session, ct).ConfigureAwait(false); // issue 14 item 8
        }

        // Each share is asked in the next sign step to its node (StepCoalescer: alone when the node has room, else with
        // the other signatures waiting for it), under this round's own session.
        var calls = picked.Select(p => (p.Node, Task: _signSteps.CallAsync(p.Node,
            new FrostSignItem(session, keyId, p.C.NonceId, packageBytes, path, key.Version), ct))).ToList();

        var shares = new List<SignatureShare>(calls.Count);
        bool retry = false;
        foreach ((uint node, Task<byte[]> task) in calls)
        {
            try
            {
                shares.Add(SignatureShare.FromBytes(key.Suite, await task.ConfigureAwait(false)));
            }
            catch (NodeCallException e)
            {
                // A refusal (for example, the node restarted and lost its nonces) makes its pooled commitments stale.
                retry = true;
                call.RoundFailed(node, e, () => DropPool(keyId, node));
            }
            catch (CryptoFormatException e)
            {
                throw new CulpritException([node], $"node {node} sent a malformed signature share: {e.Message}");
            }
        }

        if (retry)
        {
            return null;
        }

        try
        {
            byte[] internalKey = !ReferenceEquals(key.Suite, FrostCiphersuite.Secp256k1Taproot) ? signingKey.VerificationKey
                : path.Count == 0 ? key.PublicKeyPackage.VerificationKey : HdDerivation.DerivePath(key.PublicKeyPackage, path).VerificationKey;
            // RFC 9591 section 5.3/5.4: the aggregate is verified first and the shares only when it fails (Aggregation
            // below); an invalid signature is never returned and a bad share still names its node (docs/FROST.md).
            var signature = new FrostSignature(FrostAggregator.Aggregate(package, shares, signingKey, Aggregation), key.Version, signingKey.VerificationKey, internalKey);
            CountSignature(keyId);
            return signature;
        }
        catch (ThresholdProtocolException e)
        {
            uint[] culprits = [.. e.Culprits.Select(FrostNodeIds.ToNode)];
            throw new CulpritException(culprits, $"signature aggregation failed: {e.Message}");
        }
    }

    /// <summary>
    /// One sign step to <paramref name="node"/> carrying every item the coalescer gathered for it (<see cref="FrostSignBatch"/>):
    /// one envelope each way. A reply that is not one well-formed frost.shares message for exactly these items names
    /// the node; an item the node refused fails with that refusal (as a lone step's refusal would).
    /// </summary>
    private async Task<IReadOnlyList<CoalescedOutcome<byte[]>>> SendSignStepAsync(uint node, IReadOnlyList<FrostSignItem> items)
    {
        Envelope req = _cluster.Request(Cluster.NewSessionId(), FrostMessages.Sign, 1, [node], FrostSignBatch.EncodeRequest(items));
        IReadOnlyList<Envelope> reply = await _cluster.Node(node).StepAsync(req, [], _cluster.RoundTimeout, CancellationToken.None).ConfigureAwait(false);
        IReadOnlyList<FrostSignOutcome> outcomes;
        try
        {
            outcomes = reply.Count == 1 && reply[0].Kind == FrostMessages.Shares
                ? FrostSignBatch.DecodeReply(reply[0].Payload.Span, items.Count)
                : throw new ProtocolException("not one frost.shares message");
        }
        catch (ProtocolException e)
        {
            throw new CulpritException([node], $"node {node} answered the signing request with something other than its shares: {e.Message}");
        }

        return [.. outcomes.Select(o => o.Share is { } share
            ? CoalescedOutcome<byte[]>.Of(share)
            : CoalescedOutcome<byte[]>.Failed(new NodeCallException(node, Grpc.Core.StatusCode.FailedPrecondition, o.Refusal!, o.Culprit, null)))];
    }

    private void DropPool(string keyId, uint node) => _pools.Drop(p => p.Key == keyId && p.Node == node);

    private async Task<PooledCommitment> TakeCommitmentAsync(FrostKeyInfo key, uint node, CancellationToken ct) =>
        await _pools.TakeAsync((key.KeyId, key.Version, node), ct).ConfigureAwait(false)
        // Empty after a refill: the refill this call waited for failed, or other calls took everything. Not a sign that
        // the node is down (Aborted is not transient): it is left out of this attempt only.
        ?? throw new NodeCallException(node, Grpc.Core.StatusCode.Aborted, "no pooled commitments after a refill", null, null);

    /// <summary>A background refill that failed in transport rests the node; a node that answered with something else is left alone.</summary>
    private bool OnBackgroundRefillFailed((string Key, int Version, uint Node) pool, Exception failure)
    {
        if (failure is NodeCallException)
        {
            _health.MarkDown(pool.Node);
            return true;
        }

        return failure is QuorumUnavailableException;
    }

    /// <summary>Fetches a batch of commitments from a node into its pool (one refill in flight per pool).</summary>
    public Task RefillAsync(FrostKeyInfo key, uint node, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(key);
        return _pools.RefillAsync((key.KeyId, key.Version, node), ct);
    }

    /// <summary>One batch of round-one commitments from a node (RFC 9591 section 5.1), each checked to be the node's own.</summary>
    private async Task<IReadOnlyList<PooledCommitment>> FetchCommitmentsAsync((string Key, int Version, uint Node) pool, CancellationToken ct)
    {
        FrostKeyInfo key = Find(pool.Key) ?? throw new QuorumUnavailableException($"unknown FROST key {pool.Key}");
        uint node = pool.Node;
        byte[] payload = new PayloadWriter().String(key.KeyId).U32((uint)PoolBatch).U32((uint)pool.Version).ToArray();
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
            byte[] id = r.Bytes("nonceId", Conclave.Node.Threshold.Engine.NonceEpochs.NonceIdSizeInBytes).ToArray();
            SigningCommitments c = SigningCommitments.FromBytes(key.Suite, r.Bytes("commitments"));
            if (!c.Identifier.Equals(expected))
            {
                throw new CulpritException([node], $"node {node} sent commitments for participant {c.Identifier}");
            }

            items.Add(new PooledCommitment(id, c));
        }

        r.End();
        return items;
    }

    private Task FaultAsync(Storage.Rotation.RotationKind kind, string boundary) => _rotation.FaultAsync(kind, boundary);

    private sealed record PooledCommitment(byte[] NonceId, SigningCommitments Commitments);
}
