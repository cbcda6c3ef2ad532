using System.Globalization;
using System.Security.Cryptography;
using Conclave.Node.Config;
using Conclave.Node.Protocol;
using Conclave.Node.Threshold.Engine;
using Conclave.Storage.Audit;
using Conclave.Threshold.Dkls23;
using Conclave.Threshold.Frost;

namespace Conclave.Node.Threshold.Dkls23;

/// <summary>
/// DKLs23 signing on a node, the three rounds of Protocol 3.6 (ePrint 2023/765) relayed by the coordinator
/// (<see cref="DklsSigner"/>): round one commits to R_i and starts the random VOLE with every peer as Bob; round two
/// checks each peer's OT extension, answers its VOLE as Alice and opens R_i; round three checks every opening, VOLE and Γ
/// check and Σ pk_j = PK, then signs the digest (the online step) and answers R and the share (u_i, w_i). Every message
/// is sealed to its peer and bound to the session (the envelope's session id is the protocol's session id). The round
/// state lives only in memory and is consumed by the step that uses it, so a restart can lose a session but never
/// reuse one. A node runs at most <see cref="DklsNodeState.MaxSessionsPerPeer"/> sessions at once with any one peer.
/// </summary>
public sealed class DklsSignHandlers(DklsNodeState state, ClusterManifest manifest) : IProtocolHandler
{
    private static readonly TimeSpan SessionLifetime = TimeSpan.FromMinutes(2);
    private readonly SessionTable<SignSession> _sessions = new(SessionLifetime);

    public IReadOnlyCollection<string> Kinds { get; } = [DklsMessages.SignRound1, DklsMessages.SignRound2, DklsMessages.SignRound3, DklsMessages.SignAbort];

    public async ValueTask<IReadOnlyList<OutgoingMessage>> HandleAsync(StepContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        _sessions.Sweep();
        return await DklsTransport.Refuse<IReadOnlyList<OutgoingMessage>>(async () => context.Request.Kind switch
        {
            DklsMessages.SignRound1 => await Round1Async(context, cancellationToken).ConfigureAwait(false),
            DklsMessages.SignRound2 => Round2(context),
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
        uint[] path = ReadPath(ref r);
        r.End();
        if (!signers.Contains(state.NodeId) || signers.Distinct().Count() != signers.Length)
        {
            throw new ProtocolException($"the signer set must name distinct nodes and include node {state.NodeId}");
        }

        // The coordinator names the key version it combines under; a pending version never signs (KeyVersions).
        DklsKeyShare key = await state.Shares.GetAtVersionAsync(keyId, version, ct).ConfigureAwait(false);
        uint[] peers = [.. signers.Where(s => s != state.NodeId)];
        string runId = SessionTable<SignSession>.RunId(ctx.SessionId);
        if (_sessions.ContainsKey(runId))
        {
            throw new ProtocolException("this signing session already started");
        }

        if (!state.TryEnter(peers, out uint busy))
        {
            throw new ProtocolException($"node {state.NodeId} already runs {state.MaxSessionsPerPeer} signing sessions with node {busy}; retry later");
        }

        var session = new SignSession(state, keyId, version, key, path, peers);
        if (!_sessions.TryAdd(runId, session))
        {
            session.Dispose();
            throw new ProtocolException("this signing session already started");
        }

        (DklsSignRound1State round1, IReadOnlyList<DklsMessage> messages) =
            DklsSigner.Round1(key, ctx.SessionId, [.. signers.Order().Select(DklsTransport.ToIdentifier)], path);
        session.Round1 = round1;
        return DklsTransport.Seal(ctx, manifest, state.NodeId, DklsMessages.SignMessage, 1, messages);
    }

    private List<OutgoingMessage> Round2(StepContext ctx)
    {
        SignSession session = _sessions.Get(ctx.SessionId);
        DklsSignRound1State round1 = Interlocked.Exchange(ref session.Round1, null) ?? throw new ProtocolException("round two was already computed");
        using (round1)
        {
            List<DklsMessage> incoming = DklsTransport.Open(ctx, manifest, state.NodeId, DklsMessages.SignMessage, 1);
            (DklsSignRound2State round2, IReadOnlyList<DklsMessage> messages) = DklsSigner.Round2(round1, incoming);
            session.Round2 = round2;
            return DklsTransport.Seal(ctx, manifest, state.NodeId, DklsMessages.SignMessage, 2, messages, state.CorruptRound2);
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
        List<DklsMessage> incoming;
        try
        {
            incoming = DklsTransport.Open(ctx, manifest, state.NodeId, DklsMessages.SignMessage, 2);
        }
        catch
        {
            round2.Dispose();
            throw;
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
            payload = new PayloadWriter().Bytes(presignature.Context.NoncePoint).Bytes(share.ToBytes()).ToArray();
        }

        // The node's own durable record of the share, before the share leaves (as for FROST, issue 14 item 8).
        await state.Store.Audit.AppendAsync(new AuditEntryInput("node-" + state.NodeId.ToString(CultureInfo.InvariantCulture), "dkls.sign-share", session.KeyId,
            SHA256.HashData(digest), "allow", $"v{session.Version.ToString(CultureInfo.InvariantCulture)} session {runId}"), ct).ConfigureAwait(false);
        _sessions.Drop(runId);
        return [new OutgoingMessage(DklsMessages.Share, 3, [0], payload)];
    }

    /// <summary>The derivation path of a sign request: a count (0 = the key itself, at most 255) and that many non-hardened indexes.</summary>
    private static uint[] ReadPath(ref PayloadReader r)
    {
        uint count = r.U32("pathLength");
        if (count > 255)
        {
            throw new ProtocolException("a derivation path has at most 255 levels");
        }

        uint[] path = new uint[count];
        for (int i = 0; i < path.Length; i++)
        {
            path[i] = r.U32("pathIndex");
            if (path[i] >= DklsHd.HardenedOffset)
            {
                throw new ProtocolException("threshold keys derive non-hardened children only");
            }
        }

        return path;
    }

    private sealed class SignSession(DklsNodeState owner, string keyId, int version, DklsKeyShare key, uint[] path, uint[] peers) : IDisposable
    {
        private int _disposed;

        public string KeyId { get; } = keyId;

        public int Version { get; } = version;

        /// <summary>The opened share (owned by the node's KeyVersions cache, not by the session).</summary>
        public DklsKeyShare Key { get; } = key;

        public uint[] Path { get; } = path;

        public uint[] Peers { get; } = peers;

        public DklsSignRound1State? Round1;

        public DklsSignRound2State? Round2;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) != 0)
            {
                return;
            }

            Interlocked.Exchange(ref Round1, null)?.Dispose();
            Interlocked.Exchange(ref Round2, null)?.Dispose();
            owner.Leave(Peers);
        }
    }
}
