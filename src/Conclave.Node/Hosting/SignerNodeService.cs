using Conclave.Node.Config;
using Conclave.Node.Protocol;
using Conclave.Node.Rpc;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace Conclave.Node.Hosting;

/// <summary>
/// The gRPC face of a signer node. Every request must be signed by the coordinator identity pinned in the cluster
/// manifest (or by a retired coordinator key during its overlap); every relayed message by the node it claims to come
/// from, for the same session, addressed to this node.
/// Anything unsigned, replayed, stale, misaddressed or of an unknown kind is refused with a typed status, except that a
/// handler may ask for relayed messages of another session, for other nodes, replayed or stale to be dropped instead
/// (<see cref="StrayRelayed.Drop"/>: DKLs23, docs/DKLS23.md "Stray relayed messages").
/// </summary>
internal sealed partial class SignerNodeService : SignerNode.SignerNodeBase
{
    private readonly NodeIdentity _identity;
    private readonly ClusterManifest _cluster;
    private readonly ReplayGuard _replay;
    private readonly Dictionary<string, IProtocolHandler> _handlers;
    private readonly ManifestWatch? _watch;
    private readonly ILogger<SignerNodeService> _log;
    private readonly TimeProvider _clock;
    private readonly PeerTrust _trust;

    public SignerNodeService(NodeIdentity identity, ClusterManifest cluster, ReplayGuard replay, IEnumerable<IProtocolHandler> handlers,
        ILogger<SignerNodeService> log, TimeProvider clock, PeerTrust trust, ManifestWatch? watch = null)
    {
        _watch = watch;
        _trust = trust;
        _identity = identity;
        _cluster = cluster;
        _replay = replay;
        _log = log;
        _clock = clock;
        _handlers = [];
        foreach (IProtocolHandler h in handlers)
        {
            foreach (string kind in h.Kinds)
            {
                _handlers.Add(kind, h);
            }
        }
    }

    /// <summary>Testing only: edits each envelope this node signed before it leaves (the test node host's DklsFaults.SignedEnvelope); null otherwise.</summary>
    internal Func<Envelope, Envelope>? EditSigned { get; set; }

    public override Task<NodeInfo> GetInfo(InfoRequest request, ServerCallContext context) => Task.FromResult(new NodeInfo
    {
        NodeId = _identity.NodeId,
        IdentityPublicKey = ByteString.CopyFrom(_identity.IdentityPublicKey.Span),
        AgreementPublicKey = ByteString.CopyFrom(_identity.AgreementPublicKey),
        AgreementKeySignature = ByteString.CopyFrom(_identity.AgreementKeySignature),
        Version = typeof(SignerNodeService).Assembly.GetName().Version?.ToString() ?? "0",
    });

    public override Task<StepReply> Step(StepRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return StepAsync(request, context.CancellationToken);
    }

    /// <summary>
    /// One protocol step, whichever transport carried it (gRPC <c>Step</c> or a frame: <see cref="NodeFrameServer"/>).
    /// A refusal is an <see cref="RpcException"/> with its status and, when attributable, a <c>conclave-culprit</c> trailer.
    /// </summary>
    public async Task<StepReply> StepAsync(StepRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        Envelope req = request.Request ?? throw Refuse(StatusCode.InvalidArgument, "request envelope is missing");
        if (req.Sender != 0)
        {
            throw Refuse(StatusCode.PermissionDenied, "requests must come from the coordinator (sender 0)");
        }

        // A rotated coordinator or peer identity is learnt from the manifest file (docs/ROTATION.md "Rotating a node's
        // identity", "Rotating the coordinator's identity"): the current key, and a retired one until its overlap ends.
        _watch?.Refresh();
        long now = _clock.GetUtcNow().ToUnixTimeMilliseconds();
        IReadOnlyList<byte[]> coordinatorKeys = _cluster.AcceptedCoordinatorKeys(now);
        byte[] requestDigest = EnvelopeSigner.Digest(req);
        bool signed = EnvelopeSigner.VerifyAny(req, requestDigest, coordinatorKeys);
        if (!signed && _watch is not null && _watch.RefreshIfChanged())
        {
            // The coordinator may have switched to a key that a manifest written within the last second names: look
            // at the file now rather than after the watch's interval (a file that did not change costs one stat).
            coordinatorKeys = _cluster.AcceptedCoordinatorKeys(now);
        }

        CheckEnvelope(req, requestDigest, coordinatorKeys, signatureVerified: signed);
        if (req.Recipients.Count > 0 && !req.Recipients.Contains(_identity.NodeId))
        {
            throw Refuse(StatusCode.InvalidArgument, $"request is not addressed to node {_identity.NodeId}");
        }

        // A handler may ask for stray relayed messages to be dropped rather than refuse the step (StrayRelayed): one of
        // another session or for other nodes is dropped unread, and a replayed or stale one once its signature verified.
        _handlers.TryGetValue(req.Kind, out IProtocolHandler? handler);
        bool dropStrays = handler?.StrayRelayed == StrayRelayed.Drop;
        var relayed = new List<Envelope>(request.Relayed.Count);
        int dropped = 0;
        foreach (Envelope e in request.Relayed)
        {
            IReadOnlyList<byte[]> keys = _cluster.AcceptedIdentityKeys(e.Sender, now);
            if (keys.Count == 0 || e.Sender == _identity.NodeId)
            {
                throw Refuse(StatusCode.InvalidArgument, $"relayed message claims unknown sender {e.Sender}");
            }

            // An evicted peer is refused by this node itself (docs/ROTATION.md "What the other nodes do"), whatever the
            // coordinator relays: its round messages, run-key announcements and signed commits alike.
            if (_trust.IsUntrusted(e.Sender))
            {
                throw RefuseUntrusted(e);
            }

            string? stray = !e.SessionId.Equals(req.SessionId) ? "belongs to another session"
                : e.Recipients.Count > 0 && !e.Recipients.Contains(_identity.NodeId) ? "is not addressed to this node"
                : null;
            if (stray is null)
            {
                byte[] digest = EnvelopeSigner.Digest(e);
                VerifySignature(e, digest, keys);
                (StatusCode Code, string Reason)? stale = Stale(e, digest);
                if (stale is { } s && !dropStrays)
                {
                    throw Refuse(s.Code, $"message '{e.Kind}' from {e.Sender} {s.Reason}");
                }

                stray = stale?.Reason;
            }
            else if (!dropStrays)
            {
                throw Refuse(StatusCode.InvalidArgument, $"relayed message from node {e.Sender} {stray}");
            }

            if (stray is not null)
            {
                dropped++;
                LogDropped(_log, e.Kind, e.Sender, req.Kind, stray);
                continue;
            }

            relayed.Add(e);
        }

        if (handler is null)
        {
            throw Refuse(StatusCode.Unimplemented, $"unknown message kind '{req.Kind}'");
        }

        IReadOnlyList<OutgoingMessage> outgoing;
        try
        {
            outgoing = await handler.HandleAsync(new StepContext { Request = req, Relayed = relayed, Identity = _identity, DroppedRelayed = dropped }, cancellationToken).ConfigureAwait(false);
        }
        catch (ProtocolException e)
        {
            LogRefused(_log, req.Kind, e.Message);
            var status = new Status(StatusCode.FailedPrecondition, e.Message);
            var trailers = new Metadata();
            if (e.Culprit is uint culprit)
            {
                trailers.Add("conclave-culprit", culprit.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }

            throw new RpcException(status, trailers);
        }

        var reply = new StepReply();
        now = _clock.GetUtcNow().ToUnixTimeMilliseconds();
        foreach (OutgoingMessage m in outgoing)
        {
            var env = new Envelope
            {
                SessionId = req.SessionId,
                Kind = m.Kind,
                Round = m.Round,
                Sender = _identity.NodeId,
                Payload = ByteString.CopyFrom(m.Payload),
                IssuedAtUnixMs = now,
            };
            env.Recipients.AddRange(m.Recipients);
            Envelope signedReply = EnvelopeSigner.Sign(env, _identity);
            reply.Messages.Add(EditSigned is { } edit ? edit(signedReply) : signedReply); // testing only (DklsFaults.SignedEnvelope)
        }

        return reply;
    }

    /// <summary>The signature (unless already verified) and the replay window of an envelope, given its <see cref="EnvelopeSigner.Digest"/>, which also keys the replay guard.</summary>
    private void CheckEnvelope(Envelope e, byte[] digest, IReadOnlyList<byte[]> senderKeys, bool signatureVerified = false)
    {
        if (!signatureVerified)
        {
            VerifySignature(e, digest, senderKeys);
        }

        if (Stale(e, digest) is { } stale)
        {
            throw Refuse(stale.Code, $"message '{e.Kind}' from {e.Sender} {stale.Reason}");
        }
    }

    private void VerifySignature(Envelope e, byte[] digest, IReadOnlyList<byte[]> senderKeys)
    {
        if (!EnvelopeSigner.VerifyAny(e, digest, senderKeys))
        {
            throw Refuse(StatusCode.Unauthenticated, $"message '{e.Kind}' from {e.Sender} has no valid signature");
        }
    }

    /// <summary>The replay guard's verdict on an envelope (which records it when fresh): null when fresh, else the status and reason of a refusal.</summary>
    private (StatusCode Code, string Reason)? Stale(Envelope e, byte[] digest) => _replay.Check(digest, e.IssuedAtUnixMs) switch
    {
        ReplayGuard.Verdict.Replayed => (StatusCode.AlreadyExists, "was replayed"),
        ReplayGuard.Verdict.Expired or ReplayGuard.Verdict.FromTheFuture => (StatusCode.InvalidArgument, "is outside the validity window"),
        _ => null,
    };

    /// <summary>A relayed message signed by (or claiming) an evicted peer: PermissionDenied, naming the peer as the culprit.</summary>
    private RpcException RefuseUntrusted(Envelope e)
    {
        string message = $"relayed message '{e.Kind}' from node {e.Sender} is refused: node {e.Sender} is evicted (untrusted on node {_identity.NodeId}"
            + (_trust.IsPinned(e.Sender) ? ", by the cluster manifest)" : ")");
        LogRefused(_log, nameof(StatusCode.PermissionDenied), message);
        var trailers = new Metadata { { "conclave-culprit", e.Sender.ToString(System.Globalization.CultureInfo.InvariantCulture) } };
        return new RpcException(new Status(StatusCode.PermissionDenied, message), trailers);
    }

    private RpcException Refuse(StatusCode code, string message)
    {
        LogRefused(_log, code.ToString(), message);
        return new RpcException(new Status(code, message));
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "dropped relayed message '{Kind}' from node {Sender} in step '{Step}': it {Reason}")]
    private static partial void LogDropped(ILogger logger, string kind, uint sender, string step, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "refused {What}: {Reason}")]
    private static partial void LogRefused(ILogger logger, string what, string reason);
}
