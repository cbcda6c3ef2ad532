using Conclave.Node.Protocol;
using Conclave.Node.Rpc;
using Conclave.Node.Threshold.Dkls23;
using Conclave.Node.Threshold.Engine;
using Conclave.Server.Coordinator;
using Conclave.Server.Threshold.Engine;
using Conclave.Server.Threshold.Sharing;
using Conclave.Threshold.Dkls23;
using Conclave.Threshold.Frost;
using Google.Protobuf;

namespace Conclave.Server.Threshold.Dkls23;

/// <summary>
/// Drives DKLs23 threshold ECDSA (scheme ecdsa-dkls23; Doerner, Kondi, Lee and shelat, ePrint 2023/765) across the
/// signer nodes, as the second protocol of the threshold engine (docs/ARCHITECTURE.md "Threshold engine"): key
/// generation is a rotation run of the engine (<see cref="RotationEngine{TKey}"/>, crash-safe) whose rounds are the
/// engine's DKG rounds on secp256k1 (<see cref="DkgRounds"/>) followed by the DKLs23 pairwise setup (DklsCoordinator.Setup); signing runs Protocol 3.6's three
/// rounds with t holders inside <see cref="QuorumCall"/> (retries with another quorum when a node is down), relaying the
/// sealed point-to-point messages, and combines the shares with <see cref="DklsCombiner"/>, which releases a signature
/// only once libsecp256k1 verified it and recovered the key. It never sees a secret: every message it relays is sealed
/// to its recipient and signed by its sender. Node health (resting, untrusted) is the engine's (<see cref="ThresholdEngine"/>),
/// shared with the FROST coordinator.
/// </summary>
public sealed partial class DklsCoordinator
{
    private readonly Cluster _cluster;
    private readonly ThresholdEngine _engine;
    private readonly KeyRegistry<DklsKeyInfo> _keys = new();
    private readonly NodeHealth _health;
    private readonly RotationEngine<DklsKeyInfo> _rotation;

    /// <param name="engine">
    /// The engine shared with the server's other protocols (the FROST coordinator's <see cref="FrostCoordinator.Engine"/> on
    /// a server): its DKG and repair rounds make and rebuild the secp256k1 shares, and its node health and eviction planner
    /// are every protocol's.
    /// </param>
    public DklsCoordinator(ThresholdEngine engine)
    {
        ArgumentNullException.ThrowIfNull(engine);
        _cluster = engine.Cluster;
        _engine = engine;
        _health = engine.Health;
        _rotation = new RotationEngine<DklsKeyInfo>(_cluster, new DklsRotationProtocol(this), _health);
        _presignSteps = new StepCoalescer<DklsPresignItem, DklsPresignOutcome>(SendPresignStepAsync) { MaxItems = DklsPresignBatch.MaxItems };
    }

    private readonly StepCoalescer<DklsPresignItem, DklsPresignOutcome> _presignSteps;

    /// <summary>
    /// Online steps (presigned signatures) outstanding per node before further presigned signatures wait and share the
    /// next step (<see cref="StepCoalescer{TItem, TResult}"/>, as FROST's sign steps; server.json signStepsInFlight). A
    /// lone signature never waits.
    /// </summary>
    public int PresignStepsInFlight { get => _presignSteps.MaxStepsInFlight; init => _presignSteps.MaxStepsInFlight = value; }

    /// <summary>Presigned halves asked of nodes, and the online steps that carried them (halves per step: the coalescing achieved).</summary>
    public (long Items, long Steps) PresignSteps => _presignSteps.Sent;

    /// <summary>Where rotation runs are recorded (the server's durable log; in memory for tests and tools).</summary>
    public Storage.Rotation.IRotationLog Runs { get => _rotation.Runs; init => _rotation.Runs = value; }

    /// <summary>This coordinator's name in the rotation log.</summary>
    public string Owner { get => _rotation.Owner; init => _rotation.Owner = value; }

    /// <summary>How long a run stays this coordinator's after its last step before another replica may take it over.</summary>
    public TimeSpan RunLease { get => _rotation.RunLease; init => _rotation.RunLease = value; }

    /// <summary>Testing only: called at every step boundary of a run (kind, boundary name).</summary>
    public Func<Storage.Rotation.RotationKind, string, Task>? FaultInjection { get => _rotation.FaultInjection; set => _rotation.FaultInjection = value; }

    public int MaxAttempts { get; init; } = 3;

    /// <summary>
    /// Called (and awaited) before the nodes are handed the digest to sign (round three, or the online round of a pooled
    /// presignature) with the key id, key version, digest and that round's session id: the server appends its "dkls.sign"
    /// audit entry here (Node.Threshold.Engine.SignAuditRecords), so <c>conclave audit reconcile</c> explains every DKLs23 share a node
    /// records, as for FROST. A failure stops the round before any node signs. For the three rounds it is started with
    /// round two (it names only the digest and the session, both known by then) and awaited before round three is sent.
    /// </summary>
    public Func<string, int, ReadOnlyMemory<byte>, byte[], CancellationToken, Task>? BeforeSignRound { get; set; }

    /// <summary>Registers a key (or a newer version of it).</summary>
    public void Register(DklsKeyInfo key)
    {
        ArgumentNullException.ThrowIfNull(key);
        _keys.Register(key);
    }

    public IReadOnlyList<DklsKeyInfo> Keys => _keys.Keys;

    public DklsKeyInfo? Find(string keyId) => _keys.Find(keyId);

    /// <summary>Creates a new t-of-n key among <paramref name="nodes"/>: the FROST DKG on secp256k1, then the DKLs23 pairwise setup.</summary>
    public Task<DklsKeyInfo> CreateKeyAsync(string keyId, int threshold, IReadOnlyList<uint> nodes, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(nodes);
        uint[] committee = [.. nodes.Order()];
        return RotateAsync(new RotationPlan(Storage.Rotation.RotationKind.KeyGeneration, keyId, DklsScheme.Name, threshold, committee, committee, [], 0), ct);
    }

    /// <summary>Runs a plan as one rotation run (key generation only, for now).</summary>
    public Task<DklsKeyInfo> RotateAsync(RotationPlan plan, CancellationToken ct, byte[]? runSession = null) => _rotation.RotateAsync(plan, ct, runSession);

    /// <summary>True while this coordinator is driving the run itself.</summary>
    public bool IsLive(string runId) => _rotation.IsLive(runId);

    /// <summary>Drives an unfinished run to its end (see <see cref="RotationEngine{TKey}.ResumeAsync"/>).</summary>
    public Task<DklsKeyInfo?> ResumeAsync(string runId, CancellationToken ct) => _rotation.ResumeAsync(runId, ct);

    /// <summary>
    /// Signs a 32-byte digest with the key, or with its non-hardened BIP-32 child at <paramref name="path"/> (CKDpub on the
    /// group key; the path is fixed in round one, before any R_j is revealed): the three rounds of DKLs23 Protocol 3.6
    /// with t healthy holders, another quorum when a node fails in transport. A node that sent a bad value is named in
    /// a <see cref="CulpritException"/>; no signature is returned unless libsecp256k1 verified it (low s, recovery id).
    /// With a presignature pool (<see cref="PresignPoolSize"/>) a pooled presignature for this key version and path signs in
    /// one round (DklsCoordinator.Presign); the three rounds run when there is none or its signers fail in transport.
    /// </summary>
    public async Task<DklsSignatureResult> SignDigestAsync(string keyId, byte[] digest, IReadOnlyList<uint> path, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(digest);
        ArgumentNullException.ThrowIfNull(path);
        if (digest.Length != 32)
        {
            throw new ArgumentException("the digest must be 32 bytes", nameof(digest));
        }

        if (path.Any(i => i >= DklsHd.HardenedOffset) || path.Count > 255)
        {
            throw new ArgumentException("threshold keys derive non-hardened children only (at most 255 levels)", nameof(path));
        }

        DklsKeyInfo key = Find(keyId) ?? throw new ArgumentException($"unknown DKLs23 key {keyId}", nameof(keyId));
        if (await TrySignPresignedAsync(key, digest, path, ct).ConfigureAwait(false) is { } presigned)
        {
            CountSignature(keyId);
            return presigned;
        }

        DklsSignatureResult result = await QuorumCall.RunAsync(_health, key, Find, MaxAttempts, (_, _) => 0,
            (k, quorum, call, token) => SignOrAbortAsync(k, quorum, call, digest, path, token), ct).ConfigureAwait(false);
        CountSignature(keyId);
        return result;
    }

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, long> _signed = new(StringComparer.Ordinal);

    private void CountSignature(string keyId) => _signed.AddOrUpdate(keyId, 1, (_, n) => n + 1);

    /// <summary>Signatures made per key since the last call (drained): the continuous rotator's "after N signatures" count, as for FROST keys.</summary>
    public IReadOnlyList<(string KeyId, long Count)> TakeSignatureCounts()
    {
        var taken = new List<(string, long)>();
        foreach (string key in _signed.Keys)
        {
            if (_signed.TryRemove(key, out long n) && n > 0)
            {
                taken.Add((key, n));
            }
        }

        return taken;
    }

    /// <summary>One signing attempt with <paramref name="quorum"/>; null: try again (the failure is recorded in <paramref name="call"/>).</summary>
    private async Task<DklsSignatureResult?> SignAttemptAsync(DklsKeyInfo key, IReadOnlyList<uint> quorum, QuorumCall call, byte[] session, byte[] digest, IReadOnlyList<uint> path, CancellationToken ct)
    {
        uint[] signers = [.. quorum.Order()];
        var start = new PayloadWriter().String(key.KeyId).U32((uint)key.Version).U32((uint)signers.Length);
        foreach (uint s in signers)
        {
            start.U32(s);
        }

        start.U32((uint)path.Count);
        foreach (uint i in path)
        {
            start.U32(i);
        }

        byte[] startPayload = start.ToArray();

        // The server's "dkls.sign" entry must be durable before the nodes are handed the digest, which round two names
        // (so each node's own record of its share commits while it computes round two and waits for round three, not
        // inside round three: docs/DKLS23.md "Sign audit"). The entry names only what is known now (key, version,
        // digest, session), so its commit runs while the nodes answer round one and the delivery step; round two is
        // sent only once it is durable, and a failed append stops the attempt before any node sees the digest. An
        // attempt that ends before round three leaves an entry for a round whose nodes made no share, as one that fails
        // in round three always did (conclave audit reconcile explains shares by rounds).
        Task recorded = BeforeSignRound is { } record ? record(key.KeyId, key.Version, digest, session, ct) : Task.CompletedTask;
        Dictionary<uint, IReadOnlyList<Envelope>>? round1;
        Dictionary<uint, IReadOnlyList<Envelope>>? delivered = null;
        try
        {
            round1 = await StepAllAsync(signers, session, DklsMessages.SignRound1, 1, _ => startPayload, _ => [], call, ct).ConfigureAwait(false);
            if (round1 is not null)
            {
                NamingOnlySigners(round1, () => CheckRoundOneBroadcasts(signers, round1));
                List<Envelope> keys = SessionKeys(round1);
                delivered = await StepAllAsync(signers, session, DklsMessages.SignDeliver, 1, _ => [],
                    n => keys.Where(m => m.Recipients.Contains(n)), call, ct).ConfigureAwait(false);
            }
        }
        catch
        {
            await recorded.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            throw;
        }

        if (round1 is null || delivered is null)
        {
            await recorded.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            return null;
        }

        List<Envelope> messages1 = [.. round1.Values.Concat(delivered.Values).SelectMany(m => m).Where(m => m.Kind != DklsMessages.SignAgreementKey)];
        await recorded.ConfigureAwait(false);

        byte[] digestPayload = new PayloadWriter().Bytes(digest).ToArray();
        Dictionary<uint, IReadOnlyList<Envelope>>? round2 = await StepAllAsync(signers, session, DklsMessages.SignRound2, 2, _ => digestPayload,
            n => messages1.Where(m => m.Recipients.Contains(n)), call, ct).ConfigureAwait(false);
        if (round2 is null)
        {
            return null;
        }

        List<Envelope> messages2 = [.. round2.Values.SelectMany(m => m)];
        Dictionary<uint, IReadOnlyList<Envelope>>? round3 = await StepAllAsync(signers, session, DklsMessages.SignRound3, 3, _ => digestPayload,
            n => messages2.Where(m => m.Recipients.Contains(n)), call, ct).ConfigureAwait(false);
        if (round3 is null)
        {
            return null;
        }

        return Combine(key, session, signers, path, digest, round3);
    }

    /// <summary>
    /// One DKLs23 signing or presigning step to <paramref name="node"/> (docs/ARCHITECTURE.md "Reply signatures on the
    /// signing path"). The replies of rounds one, two and the delivery step are relayed to peers, so their envelope
    /// signatures are not verified on arrival (<see cref="ReplySignatures.Deferred"/>): every relayed message is verified
    /// by its recipient, which refuses one not validly signed by its sender naming nobody. Such a refusal is answered here:
    /// when a message relayed in this step is not validly signed by the node it names, that node is the culprit (it sent it
    /// over its own authenticated connection), not the recipient. Round three's reply (the signature share, or R and the
    /// pooled id of a presignature) is consumed by the coordinator itself and verified on arrival.
    /// </summary>
    private async Task<IReadOnlyList<Envelope>> SignStepAsync(uint node, byte[] session, string kind, uint round, byte[] payload, IEnumerable<Envelope> relayed,
        CancellationToken ct)
    {
        Envelope[] sent = [.. relayed];
        try
        {
            return await _cluster.Node(node).StepAsync(_cluster.Request(session, kind, round, [node], payload), sent, _cluster.RoundTimeout * 2,
                    kind == DklsMessages.SignRound3 ? ReplySignatures.Verified : ReplySignatures.Deferred, ct)
                .ConfigureAwait(false);
        }
        catch (NodeCallException e) when (e.Culprit is null && _cluster.BadlySignedSender(sent) is uint sender)
        {
            throw new NodeCallException(node, Grpc.Core.StatusCode.DataLoss, NodeClient.NotValidlySigned(sender), sender, e);
        }
    }

    /// <summary>
    /// Runs a check of replies taken with deferred signatures (<see cref="SignStepAsync"/>) that may name a culprit from
    /// their content: before a culprit is named (or a message offered as evidence), every reply's signature is verified,
    /// and a reply not validly signed by its node names that node instead.
    /// </summary>
    private void NamingOnlySigners(IReadOnlyDictionary<uint, IReadOnlyList<Envelope>> replies, Action check)
    {
        try
        {
            check();
        }
        catch (CulpritException) when (_cluster.BadlySignedSender(replies.Values.SelectMany(m => m)) is uint sender)
        {
            throw new CulpritException([sender], NodeClient.NotValidlySigned(sender));
        }
    }

    /// <summary>
    /// The relay's side of the echo of round-one data (docs/DKLS23.md "Echo of round-one data"): every signer must have
    /// sent each peer exactly one round-one broadcast (<see cref="DklsMessages.SignCommit"/>), all naming the same request
    /// and carrying one commitment C_i (ePrint 2023/765 Protocol 3.6 round one; <see cref="DklsEcho.Equivocators"/>).
    /// The envelopes are signed by their sender (verified before a culprit is named: <see cref="NamingOnlySigners"/>), so a node that sent different
    /// commitments to different peers is named with two of them as evidence (<see cref="DklsEquivocation.Proves"/> checks
    /// it offline) before any peer sees them. The signers echo the commitments among themselves as well, so a relay that
    /// hides an equivocation only makes them abort.
    /// </summary>
    internal static void CheckRoundOneBroadcasts(uint[] signers, IReadOnlyDictionary<uint, IReadOnlyList<Envelope>> round1)
    {
        foreach (uint node in signers)
        {
            Envelope[] commits = [.. round1[node].Where(e => e.Kind == DklsMessages.SignCommit)];
            uint[] peers = [.. signers.Where(s => s != node)];
            if (commits.Length != peers.Length || !peers.All(p => commits.Count(e => e.Recipients.Count == 1 && e.Recipients[0] == p) == 1))
            {
                throw new CulpritException([node], $"node {node} did not send exactly one round-one broadcast to each peer");
            }

            (byte[] RequestHash, byte[] Broadcast)[] read;
            try
            {
                read = [.. commits.Select(e => DklsEquivocation.ReadCommit(e.Payload.Span))];
            }
            catch (ProtocolException e)
            {
                throw new CulpritException([node], $"node {node} sent a malformed round-one broadcast: {e.Message}");
            }

            if (read.Any(r => !r.RequestHash.AsSpan().SequenceEqual(read[0].RequestHash)))
            {
                throw new CulpritException([node], $"node {node} answered one round-one request with broadcasts naming different requests");
            }

            Identifier author = Identifier.FromInt(FrostCiphersuite.Secp256k1Sha256, (int)node);
            if (DklsEcho.Equivocators(read.Select(r => (From: author, r.Broadcast))).Count > 0)
            {
                Envelope first = commits[0];
                Envelope other = commits.First(e => DklsEquivocation.Conflict(first, e, node));
                throw new CulpritException([new CulpritReason(node, CulpritReason.RoundOneEquivocation)],
                    $"node {node} sent different round-one broadcast commitments to different peers (nodes {first.Recipients[0]} and {other.Recipients[0]})")
                {
                    Evidence = [first.ToByteArray(), other.ToByteArray()],
                };
            }
        }
    }

    /// <summary>
    /// The session agreement keys the signers announced in round one, relayed with the delivery step so every signer
    /// seals its round-one messages between session keys (docs/DKLS23.md "Session agreement keys").
    /// </summary>
    internal static List<Envelope> SessionKeys(IReadOnlyDictionary<uint, IReadOnlyList<Envelope>> round1) =>
        [.. round1.Values.SelectMany(m => m).Where(m => m.Kind == DklsMessages.SignAgreementKey)];

    private static DklsSignatureResult Combine(DklsKeyInfo key, byte[] session, uint[] signers, IReadOnlyList<uint> path, byte[] digest, Dictionary<uint, IReadOnlyList<Envelope>> replies)
    {
        var shares = new Dictionary<uint, (byte[] R, byte[] Share)>(signers.Length);
        foreach (uint node in signers)
        {
            IReadOnlyList<Envelope> reply = replies[node];
            if (reply.Count != 1 || reply[0].Kind != DklsMessages.Share)
            {
                throw new CulpritException([node], $"node {node} answered round three with something other than one signature share");
            }

            try
            {
                var reader = new PayloadReader(reply[0].Payload.Span);
                byte[] nonce = reader.Bytes("R", 33).ToArray();
                byte[] share = reader.Bytes("share", 256).ToArray();
                reader.End();
                shares[node] = (nonce, share);
            }
            catch (ProtocolException e)
            {
                throw new CulpritException([node], $"node {node} sent a malformed signature share: {e.Message}");
            }
        }

        return CombineShares(key, session, signers, path, digest, shares);
    }

    /// <summary>
    /// DKLs23 Protocol 3.6 combine (ePrint 2023/765 §3): every signer's R must be the same, each share is its sender's,
    /// and <see cref="DklsCombiner"/> releases the signature only once libsecp256k1 verified it and recovered the key.
    /// </summary>
    private static DklsSignatureResult CombineShares(DklsKeyInfo key, byte[] session, uint[] signers, IReadOnlyList<uint> path, byte[] digest,
        Dictionary<uint, (byte[] R, byte[] Share)> replies)
    {
        byte[]? r = null;
        var shares = new List<DklsSignatureShare>(signers.Length);
        foreach (uint node in signers)
        {
            (byte[] nonce, byte[] encoded) = replies[node];
            DklsSignatureShare share;
            try
            {
                if (nonce.Length != 33)
                {
                    throw new ProtocolException("R must be 33 bytes");
                }

                share = DklsSignatureShare.FromBytes(encoded);
            }
            catch (Exception e) when (e is ProtocolException or DklsProtocolException)
            {
                throw new CulpritException([node], $"node {node} sent a malformed signature share: {e.Message}");
            }

            if (FrostNodeIds.ToNode(share.From) != node)
            {
                throw new CulpritException([node], $"node {node} sent a signature share in another participant's name");
            }

            if (r is null)
            {
                r = nonce;
            }
            else if (!r.AsSpan().SequenceEqual(nonce))
            {
                // R is Σ R_j over openings only the signers saw: which of them reports it wrong cannot be told from here.
                throw new CulpritException(Array.Empty<uint>(), "the signers reported different nonce points R; no signature was formed");
            }

            shares.Add(share);
        }

        try
        {
            DklsSignature sig = DklsCombiner.Combine(key.PublicKey, session, [.. signers.Select(n => Identifier.FromInt(FrostCiphersuite.Secp256k1Sha256, (int)n))],
                path, r!, digest, shares);
            return new DklsSignatureResult(sig.Signature, sig.RecoveryId, key.Version, DklsHd.DerivePublic(key.PublicKey, path).PublicKey);
        }
        catch (DklsProtocolException e)
        {
            throw new CulpritException([.. e.Culprits.Select(FrostNodeIds.ToNode)], $"combining the signature shares failed ({e.Failure}): {e.Message}");
        }
    }

    /// <summary>
    /// One step on every signer in parallel. A node that names a culprit ends the call (<see cref="CulpritException"/>); a
    /// node that failed otherwise is recorded in <paramref name="call"/> and the attempt is given up (null), once every
    /// node answered or failed.
    /// </summary>
    private async Task<Dictionary<uint, IReadOnlyList<Envelope>>?> StepAllAsync(uint[] nodes, byte[] session, string kind, uint round,
        Func<uint, byte[]> payload, Func<uint, IEnumerable<Envelope>> relayed, QuorumCall call, CancellationToken ct)
    {
        var tasks = nodes.ToDictionary(n => n, n => SignStepAsync(n, session, kind, round, payload(n), relayed(n), ct));
        try
        {
            await Task.WhenAll(tasks.Values).ConfigureAwait(false);
        }
        catch (NodeCallException)
        {
            // Looked at below, node by node.
        }

        bool failed = false;
        foreach ((uint node, Task<IReadOnlyList<Envelope>> task) in tasks)
        {
            if (task.IsCompletedSuccessfully)
            {
                continue;
            }

            Exception? e = task.Exception?.InnerException;
            if (e is OperationCanceledException || task.IsCanceled)
            {
                throw e ?? new OperationCanceledException(ct);
            }

            if (e is not NodeCallException failure)
            {
                throw e ?? new InvalidOperationException($"node {node}: the step failed");
            }

            if (failure.Culprit is uint culprit)
            {
                throw new CulpritException([culprit], failure.Message);
            }

            call.RoundFailed(node, failure, () => { });
            failed = true;
        }

        return failed ? null : tasks.ToDictionary(kv => kv.Key, kv => kv.Value.Result);
    }
}
