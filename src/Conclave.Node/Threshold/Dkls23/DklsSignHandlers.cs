using System.Security.Cryptography;
using Conclave.Node.Config;
using Conclave.Node.Protocol;
using Conclave.Node.Threshold.Engine;
using Conclave.Threshold.Dkls23;
using Conclave.Threshold.Frost;

namespace Conclave.Node.Threshold.Dkls23;

/// <summary>
/// DKLs23 signing on a node, the three rounds of Protocol 3.6 (ePrint 2023/765) relayed by the coordinator
/// (<see cref="DklsSigner"/>): round one commits to R_i and starts the random VOLE with every peer as Bob; round two
/// checks each peer's OT extension, answers its VOLE as Alice and opens R_i; round three checks every opening, VOLE and Γ
/// check and Σ pk_j = PK, then signs the digest (the online step) and answers R and the share (u_i, w_i). Every message
/// is sealed to its peer and bound to the session (the envelope's session id is the protocol's session id). Each node
/// makes a session agreement key in round one (<see cref="RunAgreementKey"/>: ephemeral X25519, announced to its peers
/// signed by its identity key and bound to the session and key, as the rotation runs do; docs/ROTATION.md "Forward
/// secrecy of relayed shares"). Round one's messages wait on the node until the coordinator relays the peers' session
/// keys (<see cref="DklsMessages.SignDeliver"/>, one extra relay before round two); every signing message, of round one
/// and of round two, is then sealed between both session keys, which are erased once round three opened its messages (or
/// the session ends otherwise): a recording of a session never opens with a long-term key taken later. The round state
/// lives only in memory and is consumed by the step that uses it, so a restart can lose a session but never reuse one.
/// A node runs at most <see cref="DklsNodeState.MaxSessionsPerPeer"/> sessions at once with any one peer.
/// </summary>
public sealed class DklsSignHandlers(DklsNodeState state, ClusterManifest manifest) : IProtocolHandler
{
    private readonly SessionTable<SignSession> _sessions = new(DklsNodeState.SignSessionLifetime);

    public IReadOnlyCollection<string> Kinds { get; } = [DklsMessages.SignRound1, DklsMessages.SignDeliver, DklsMessages.SignRound2, DklsMessages.SignRound3, DklsMessages.SignAbort];

    /// <summary>A relayed message of another session, for other nodes, replayed or stale is dropped, not the step (docs/DKLS23.md "Stray relayed messages").</summary>
    public StrayRelayed StrayRelayed => StrayRelayed.Drop;

    public async ValueTask<IReadOnlyList<OutgoingMessage>> HandleAsync(StepContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        _sessions.Sweep();
        return await DklsTransport.Refuse<IReadOnlyList<OutgoingMessage>>(async () => context.Request.Kind switch
        {
            DklsMessages.SignRound1 => await Round1Async(context, cancellationToken).ConfigureAwait(false),
            DklsMessages.SignDeliver => Deliver(context),
            DklsMessages.SignRound2 => await Round2Async(context, cancellationToken).ConfigureAwait(false),
            DklsMessages.SignRound3 => await Round3Async(context, cancellationToken).ConfigureAwait(false),
            DklsMessages.SignAbort => Abort(context),
            _ => throw new ProtocolException($"unknown kind {context.Request.Kind}"),
        }, () => _sessions.Drop(SessionTable<SignSession>.RunId(context.SessionId))).ConfigureAwait(false);
    }

    /// <summary>The coordinator gave the session up: its round state is dropped now, which frees its per-peer slots.</summary>
    private List<OutgoingMessage> Abort(StepContext ctx)
    {
        new PayloadReader(ctx.Request.Payload.Span).End();
        _sessions.Drop(SessionTable<SignSession>.RunId(ctx.SessionId));
        return [];
    }

    private async Task<IReadOnlyList<OutgoingMessage>> Round1Async(StepContext ctx, CancellationToken ct)
    {
        var r = new PayloadReader(ctx.Request.Payload.Span);
        string keyId = r.String("keyId");
        int version = (int)r.U32("keyVersion");
        uint[] signers = r.NodeIds("signers");
        uint[] path = r.NonHardenedPath();
        r.End();
        if (!signers.Contains(state.NodeId) || signers.Distinct().Count() != signers.Length)
        {
            throw new ProtocolException($"the signer set must name distinct nodes and include node {state.NodeId}");
        }

        if (ctx.Request.IssuedAtUnixMs < state.StartedAtUnixMs)
        {
            // Answered before a restart, perhaps: a node answers a round-one request once (docs/DKLS23.md "Echo of round-one data").
            throw new ProtocolException($"this round-one request was issued before node {state.NodeId} started; send a new one");
        }

        // The coordinator names the key version it combines under; a pending version never signs (KeyVersions).
        // Held for the whole session: a rotation committing or retiring meanwhile evicts the share from the cache but
        // cannot erase it under the session's later rounds (KeyVersions.LeaseAtVersionAsync).
        KeyVersions<DklsKeyShare>.ShareLease lease = await state.Shares.LeaseAtVersionAsync(keyId, version, ct).ConfigureAwait(false);
        DklsKeyShare key = lease.Share;
        uint[] peers = [.. signers.Where(s => s != state.NodeId)];
        string runId = SessionTable<SignSession>.RunId(ctx.SessionId);
        // A second session under an id this node used lately (a live one included: its id is remembered longer than it
        // lives) is refused, so no coordinator can make it sign two different round messages for one session id
        // (docs/DKLS23.md "Stray relayed messages").
        if (!state.SessionIds.TryUse(runId))
        {
            lease.Dispose();
            throw new ProtocolException($"node {state.NodeId} ran a session under this session id already; a new attempt takes a new session id");
        }

        if (!state.TryEnter(peers, out uint busy))
        {
            lease.Dispose();
            throw new ProtocolException($"node {state.NodeId} already runs {state.MaxSessionsPerPeer} signing sessions with node {busy}; retry later");
        }

        var session = new SignSession(state, keyId, version, lease, path, peers);
        if (!_sessions.TryAdd(runId, session))
        {
            session.Dispose();
            throw new ProtocolException("this signing session already started");
        }

        (DklsSignRound1State round1, IReadOnlyList<DklsMessage> messages) =
            DklsSigner.Round1(key, ctx.SessionId, [.. signers.Order().Select(DklsTransport.ToIdentifier)], path);
        session.Round1 = round1;
        RunAgreementKey agreement = RunAgreementKey.Generate(ctx.Identity, ctx.SessionId, keyId);
        session.Agreement = agreement;
        List<OutgoingMessage> outgoing = [new OutgoingMessage(DklsMessages.SignAgreementKey, 1, peers, agreement.Announcement)];

        // The round-one broadcast commitment C_i, the same to every peer, signed in the clear with the request it answers
        // (DklsEquivocation; docs/DKLS23.md "Echo of round-one data").
        byte[] requestHash = DklsEquivocation.RequestHash(ctx.Request);
        byte[] broadcast = state.Faults?.Broadcast is { } editBroadcast ? editBroadcast(round1, round1.Broadcast) : round1.Broadcast; // testing only (DklsFaults)
        foreach (uint peer in peers)
        {
            byte[] sent = broadcast;
            if (state.EquivocateRound1 && peer != peers.Min())
            {
                sent = [.. broadcast[..^1], (byte)(broadcast[^1] ^ 1)]; // testing only (NodeConfig.FaultInjection "dkls-equivocate")
            }

            outgoing.Add(new OutgoingMessage(DklsMessages.SignCommit, 1, [peer], DklsEquivocation.CommitPayload(requestHash, sent)));
        }

        session.Round1Messages = state.Faults?.Round1 is { } edit1 ? [.. messages.Select(m => edit1(round1, m))] : messages; // testing only (DklsFaults)
        return outgoing;
    }

    /// <summary>
    /// Delivery of round one (docs/DKLS23.md "Session agreement keys"): checks the peers' session agreement keys the
    /// coordinator relays from round one and seals this node's round-one messages (the commitment to R_i and the
    /// OT-extension receiver message) from its session key to each peer's (ephemeral-ephemeral), so that no round-one
    /// message is sealed to a long-term key. The messages were computed in round one and are sealed once.
    /// </summary>
    private List<OutgoingMessage> Deliver(StepContext ctx)
    {
        new PayloadReader(ctx.Request.Payload.Span).End();
        SignSession session = _sessions.Get(ctx.SessionId);
        IReadOnlyList<DklsMessage> messages = Interlocked.Exchange(ref session.Round1Messages, null) ?? throw new ProtocolException("round one was already delivered");
        RunAgreementKey agreement = session.Agreement ?? throw new ProtocolException("this node's session agreement key is erased");
        Dictionary<uint, byte[]> peerKeys = PeerSessionKeys(ctx, session);
        session.PeerKeys = peerKeys;
        byte[] sessionId = ctx.SessionId;
        return DklsTransport.SealToRun(agreement, peerKeys, state.NodeId, DklsMessages.SignMessage, 1, messages,
            (from, to) => DklsMessages.SignSealContext(sessionId, 1, from, to), state.Faults?.Wire);
    }

    /// <summary>
    /// Checks the peers' session agreement keys relayed with the delivery of round one: each signed by its sender's identity key for this
    /// session and key, one from every peer. Two different ones from a peer abort the session naming nobody: an honest node
    /// that restarted mid-session makes a second one when given round one again under the session's id (without a restart
    /// it refuses a used id: UsedSessionIds), so
    /// two announcements are no proof against their sender (naming it would let a coordinator frame an honest node).
    /// Announcements from non-signers are dropped.
    /// </summary>
    private Dictionary<uint, byte[]> PeerSessionKeys(StepContext ctx, SignSession session)
    {
        var keys = new Dictionary<uint, byte[]>();
        foreach (Rpc.Envelope e in ctx.Relayed.Where(e => e.Kind == DklsMessages.SignAgreementKey && session.Peers.Contains(e.Sender)))
        {
            if (e.Round != 1 || e.Recipients.Count == 0 || !e.Recipients.Contains(state.NodeId))
            {
                throw new ProtocolException($"node {e.Sender} sent a session agreement key for another round or recipient", e.Sender);
            }

            if (!keys.TryAdd(e.Sender, RunAgreementKey.VerifyAnnouncement(e.Payload.Span, manifest, e.Sender, ctx.SessionId, session.KeyId)))
            {
                throw new ProtocolException($"two session agreement keys from node {e.Sender} were relayed for this session (round one run twice?)");
            }
        }

        foreach (uint peer in session.Peers)
        {
            if (!keys.ContainsKey(peer))
            {
                throw new ProtocolException($"no session agreement key from node {peer} was relayed");
            }
        }

        return keys;
    }

    /// <summary>
    /// The peers' round-one broadcast commitments relayed in round two: one <see cref="DklsMessages.SignCommit"/> from
    /// every peer, addressed to this node alone. Two that disagree for the same request are signed proof against their
    /// sender (<see cref="DklsEquivocation.Conflict"/>); anything else that is not one well-formed broadcast per peer is
    /// refused naming nobody (answers to two requests under one session id; a byte-identical copy never gets here: the
    /// service drops it, docs/DKLS23.md "Stray relayed messages").
    /// </summary>
    private Dictionary<Identifier, byte[]> PeerBroadcasts(StepContext ctx, SignSession session)
    {
        var got = new Dictionary<uint, Rpc.Envelope>();
        var broadcasts = new Dictionary<Identifier, byte[]>();
        foreach (Rpc.Envelope e in ctx.Relayed.Where(e => e.Kind == DklsMessages.SignCommit && session.Peers.Contains(e.Sender)))
        {
            if (e.Round != 1 || e.Recipients.Count != 1 || e.Recipients[0] != state.NodeId)
            {
                throw new ProtocolException($"node {e.Sender} sent a round-one broadcast for another round or recipient", e.Sender);
            }

            byte[] broadcast;
            try
            {
                broadcast = DklsEquivocation.ReadCommit(e.Payload.Span).Broadcast;
            }
            catch (ProtocolException)
            {
                throw new ProtocolException($"node {e.Sender} sent a malformed round-one broadcast", e.Sender);
            }

            if (got.TryGetValue(e.Sender, out Rpc.Envelope? first))
            {
                throw DklsEquivocation.Conflict(first, e, e.Sender)
                    ? new ProtocolException($"node {e.Sender} signed two different round-one broadcast commitments for this session", e.Sender)
                    : new ProtocolException($"two round-one broadcasts from node {e.Sender} were relayed");
            }

            got[e.Sender] = e;
            broadcasts[DklsTransport.ToIdentifier(e.Sender)] = broadcast;
        }

        uint[] missing = [.. session.Peers.Where(p => !got.ContainsKey(p))];
        return missing.Length == 0 ? broadcasts : throw new ProtocolException($"no round-one broadcast from node {string.Join(", ", missing)} was relayed");
    }

    /// <summary>
    /// The peers' echoes relayed in round three, one per peer (<see cref="DklsMessages.SignEcho"/>), each compared with this
    /// node's own (DklsEcho.CheckEchoes) before any opening is used: a disagreement ends the session naming nobody.
    /// </summary>
    private void CheckEchoes(StepContext ctx, SignSession session)
    {
        var echoes = new Dictionary<Identifier, byte[]>();
        foreach (Rpc.Envelope e in ctx.Relayed.Where(e => e.Kind == DklsMessages.SignEcho && session.Peers.Contains(e.Sender)))
        {
            if (e.Round != 2 || !e.Recipients.Contains(state.NodeId))
            {
                throw new ProtocolException($"node {e.Sender} sent an echo for another round or recipient", e.Sender);
            }

            if (!echoes.TryAdd(DklsTransport.ToIdentifier(e.Sender), e.Payload.ToByteArray()))
            {
                throw new ProtocolException($"two echoes from node {e.Sender} were relayed");
            }
        }

        uint[] missing = [.. session.Peers.Where(p => !echoes.ContainsKey(DklsTransport.ToIdentifier(p)))];
        if (missing.Length > 0)
        {
            throw new ProtocolException($"no echo from node {string.Join(", ", missing)} was relayed");
        }

        DklsEcho.CheckEchoes(session.Echo ?? throw new ProtocolException("round two was not computed here"), echoes);
    }

    /// <summary>
    /// Round two's payload: empty (the digest comes with round three, as when presigning) or the 32-byte digest to sign,
    /// named early so the node's record of the share can commit meanwhile (docs/DKLS23.md "Sign audit").
    /// </summary>
    private static byte[]? Round2Digest(ReadOnlySpan<byte> payload)
    {
        if (payload.IsEmpty)
        {
            return null;
        }

        var r = new PayloadReader(payload);
        byte[] digest = r.Bytes("digest").ToArray();
        r.End();
        return digest.Length == 32 ? digest : throw new ProtocolException("round two names a digest that is not 32 bytes");
    }

    private async Task<IReadOnlyList<OutgoingMessage>> Round2Async(StepContext ctx, CancellationToken ct)
    {
        byte[]? digest = Round2Digest(ctx.Request.Payload.Span);
        SignSession session = _sessions.Get(ctx.SessionId);
        DklsSignRound1State round1 = Interlocked.Exchange(ref session.Round1, null) ?? throw new ProtocolException("round two was already computed");
        using (round1)
        {
            if (digest is not null)
            {
                // The coordinator named the digest already (its own entry for the round is durable before it does): the
                // node's record of the share starts now, so its commit runs while this node computes round two and
                // the round trip to round three, instead of inside round three. Round three sends the share only once
                // it is durable (Round3Async). This runs at most once per session (round one's state was just taken),
                // so a session still has at most one record; not tied to this step's cancellation, which ends with
                // this step (a failed record fails round three and nothing leaves).
                session.Digest = digest;
                session.Recorded = SignAuditRecords.RecordDklsShareAsync(state.Store, state.NodeId, session.KeyId, session.Version, digest, ctx.SessionId, [], CancellationToken.None);
                // Observed here too: a session that never reaches round three must not leave an unobserved failure.
                _ = session.Recorded.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            }

            RunAgreementKey agreement = session.Agreement ?? throw new ProtocolException("this node's session agreement key is erased");
            IReadOnlyDictionary<uint, byte[]> peerKeys = session.PeerKeys ?? throw new ProtocolException("round one was not delivered here");
            Dictionary<Identifier, byte[]> broadcasts = PeerBroadcasts(ctx, session);
            byte[] sessionId = ctx.SessionId;
            List<DklsMessage> incoming = DklsTransport.OpenFromRun(ctx.Relayed, agreement, peerKeys, state.NodeId, DklsMessages.SignMessage, 1,
                (from, to) => DklsMessages.SignSealContext(sessionId, 1, from, to), session.Peers, ctx.DroppedRelayed);
            DklsSignRound2State round2;
            IReadOnlyList<DklsMessage> messages;
            try
            {
                (round2, messages) = DklsSigner.Round2(round1, incoming, broadcasts);
            }
            catch (DklsProtocolException e) when (e.Disposition == DklsDisposition.Ban && e.Culprits.Count > 0)
            {
                // The library discarded the pairwise OT state with the culprit in the opened share; seal the share
                // without it in place of the stored one, so the ban outlives a restart (docs/DKLS23.md "Bans").
                uint culprit = FrostNodeIds.ToNode(e.Culprits[0]);
                try
                {
                    await state.RecordBanAsync(session.KeyId, session.Version, session.Key, culprit, ct).ConfigureAwait(false);
                }
                catch (Conclave.Storage.StorageException failed)
                {
                    throw new ProtocolException($"DKLs23 {e.Failure}: {e.Message} (the ban holds until this node restarts: recording it failed: {failed.Message})", culprit);
                }
                finally
                {
                    // Every other session this node runs with the banned peer under the key is cancelled now (SoftSpokenOT,
                    // ePrint 2022/192 section 4: after a failed consistency check nothing more of the OT state with that
                    // peer may be used): its round state and slots are dropped, and its next step is refused naming nobody.
                    _sessions.DropWhere(s => !ReferenceEquals(s, session) && s.KeyId == session.KeyId && s.Peers.Contains(culprit));
                }

                throw;
            }

            session.Echo = round2.Echo;
            Volatile.Write(ref session.Round2, round2); // after Digest and Recorded, which round three reads once it took Round2
            if (state.Faults?.Round2 is { } edit2)
            {
                messages = [.. messages.Select(edit2)]; // testing only (DklsFaults)
            }

            List<OutgoingMessage> outgoing = DklsTransport.SealToRun(agreement, peerKeys, state.NodeId, DklsMessages.SignMessage, 2, messages,
                (from, to) => DklsMessages.SignSealContext(sessionId, 2, from, to));
            outgoing.Add(new OutgoingMessage(DklsMessages.SignEcho, 2, session.Peers, round2.Echo));
            return outgoing;
        }
    }

    private async Task<IReadOnlyList<OutgoingMessage>> Round3Async(StepContext ctx, CancellationToken ct)
    {
        var r = new PayloadReader(ctx.Request.Payload.Span);
        byte[] digest = r.Bytes("digest").ToArray();
        r.End();
        if (digest.Length is not (32 or 0))
        {
            throw new ProtocolException("the digest must be 32 bytes (or empty, to presign)");
        }

        string runId = SessionTable<SignSession>.RunId(ctx.SessionId);
        SignSession session = _sessions.Get(ctx.SessionId);
        DklsSignRound2State round2 = Interlocked.Exchange(ref session.Round2, null) ?? throw new ProtocolException("round three was already computed");

        // The node's own durable record of the share (as for FROST, issue 14 item 8) must be durable before the share
        // leaves. It names only public values known before the share (key, version, digest, session), so its commit
        // runs while the node works, instead of after: from round two when the coordinator named the digest there
        // (Round2Async started it), else from here, while this step opens the peers' messages and computes the share.
        // Either way the share is returned only once the record is durable. A session has at most one record (round
        // two and round three each run once per session); if opening or a check fails, the record stays (the session
        // was asked to sign that digest) and nothing leaves, as for a pooled presignature (DklsPresignHandlers).
        Task recorded;
        if (Volatile.Read(ref session.Digest) is { } named)
        {
            if (digest.Length != named.Length || !CryptographicOperations.FixedTimeEquals(digest, named))
            {
                round2.Dispose();
                throw new ProtocolException("round three names another digest than round two did");
            }

            recorded = session.Recorded ?? throw new InvalidOperationException("round two named a digest but started no record");
        }
        else
        {
            recorded = digest.Length == 0 ? Task.CompletedTask
                : SignAuditRecords.RecordDklsShareAsync(state.Store, state.NodeId, session.KeyId, session.Version, digest, ctx.SessionId, [], ct);
        }

        return await RecordedRelease.ComputeAsync(recorded, () => Round3CoreAsync(ctx, session, runId, round2, digest, ct)).ConfigureAwait(false);
    }

    /// <summary>Round three proper: the echo, opening the peers' round-two messages, the checks, and the share (or a pooled presignature).</summary>
    private async Task<IReadOnlyList<OutgoingMessage>> Round3CoreAsync(StepContext ctx, SignSession session, string runId, DklsSignRound2State round2, byte[] digest, CancellationToken ct)
    {
        List<DklsMessage> incoming;
        try
        {
            CheckEchoes(ctx, session);
            RunAgreementKey agreement = session.Agreement ?? throw new ProtocolException("this node's session agreement key is erased");
            IReadOnlyDictionary<uint, byte[]> peerKeys = session.PeerKeys ?? throw new ProtocolException("round two was not computed here");
            byte[] sessionId = ctx.SessionId;
            incoming = DklsTransport.OpenFromRun(ctx.Relayed, agreement, peerKeys, state.NodeId, DklsMessages.SignMessage, 2,
                (from, to) => DklsMessages.SignSealContext(sessionId, 2, from, to), session.Peers, ctx.DroppedRelayed);
        }
        catch
        {
            round2.Dispose();
            throw;
        }
        finally
        {
            // Everything this node had to seal and open in the session is done: erase its session agreement key.
            session.EraseAgreement();
        }

        if (digest.Length == 0)
        {
            // Presigning (DklsPresignHandlers): pool the presignature instead of signing.
            DklsPresignature made = DklsSigner.Round3(round2, incoming);
            _sessions.Drop(runId);
            return await DklsPresignHandlers.PoolAsync(state, session.KeyId, session.Version, [.. session.Peers, state.NodeId], session.Path, made, ct).ConfigureAwait(false);
        }

        byte[] payload;
        using (DklsPresignature presignature = DklsSigner.Round3(round2, incoming))
        {
            DklsSignatureShare share = DklsSigner.Sign(presignature, session.Key, digest, session.Path);
            payload = new PayloadWriter().Bytes(presignature.Context.NoncePoint).Bytes(state.EditShare(share.ToBytes())).ToArray();
        }

        // Returned by Round3Async only once the node's record of the share is durable.
        _sessions.Drop(runId);
        return [new OutgoingMessage(DklsMessages.Share, 3, [0], payload)];
    }

    private sealed class SignSession(DklsNodeState owner, string keyId, int version, KeyVersions<DklsKeyShare>.ShareLease lease, uint[] path, uint[] peers) : IDisposable
    {
        private int _disposed;

        public string KeyId { get; } = keyId;

        public int Version { get; } = version;

        /// <summary>The opened share, held open by the session's lease until the session ends.</summary>
        public DklsKeyShare Key { get; } = lease.Share;

        public uint[] Path { get; } = path;

        public uint[] Peers { get; } = peers;

        public DklsSignRound1State? Round1;

        /// <summary>This node's round-one messages, computed in round one and sealed once the peers' session keys arrive (Deliver).</summary>
        public IReadOnlyList<DklsMessage>? Round1Messages;

        public DklsSignRound2State? Round2;

        /// <summary>The digest the coordinator named in round two (null when it names it in round three only, or presigns).</summary>
        public byte[]? Digest;

        /// <summary>The node's record of the share for <see cref="Digest"/>, started in round two; awaited before the share leaves.</summary>
        public Task? Recorded;

        /// <summary>This node's session agreement key, erased once round three opened its messages.</summary>
        public RunAgreementKey? Agreement;

        /// <summary>This node's echo digest of every signer's round-one broadcast commitment, from round two on.</summary>
        public byte[]? Echo;

        /// <summary>The peers' session agreement public keys (verified announcements), from the delivery of round one on.</summary>
        public IReadOnlyDictionary<uint, byte[]>? PeerKeys;

        public void EraseAgreement() => Interlocked.Exchange(ref Agreement, null)?.Dispose();

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) != 0)
            {
                return;
            }

            Interlocked.Exchange(ref Round1, null)?.Dispose();
            Interlocked.Exchange(ref Round1Messages, null); // not delivered: never sealed, dropped with the session
            Interlocked.Exchange(ref Round2, null)?.Dispose();
            EraseAgreement();
            owner.Leave(Peers);
            lease.Dispose();
        }
    }
}
