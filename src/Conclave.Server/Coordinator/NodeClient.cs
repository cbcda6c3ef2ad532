using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Conclave.Node.Config;
using Conclave.Node.Pki;
using Conclave.Node.Protocol;
using Conclave.Node.Rpc;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;

namespace Conclave.Server.Coordinator;

/// <summary>
/// The coordinator's connection to one signer node: gRPC over HTTP/2 with mutual TLS (the coordinator's client
/// certificate; the node's certificate must chain to the cluster CA). Every reply message must name this node as its
/// sender and the step's session; its signature is verified against the node's identity key from the cluster manifest
/// before anyone uses it, unless the caller defers that check (<see cref="ReplySignatures.Deferred"/>: the DKLs23 signing
/// steps, whose messages their recipients verify).
/// </summary>
public sealed class NodeClient : IDisposable
{
    private readonly GrpcChannel _channel;
    private readonly SignerNode.SignerNodeClient _client;
    private readonly byte[] _identityKey;
    private readonly ClusterManifest? _manifest;
    private readonly ManifestWatch? _watch;
    private readonly ListenEndpoint _endpoint;
    private readonly TimeSpan _connectionLifetime;
    private readonly Func<SslClientAuthenticationOptions> _tlsOptions;
    private readonly SemaphoreSlim _framesGate = new(1, 1);
    private NodeFrameConnection? _frames;

    /// <summary>
    /// A client of <paramref name="node"/>. With <paramref name="manifest"/>, replies are verified against the node's
    /// accepted identity keys in it at the time of the reply (its current key, a retired one during its overlap), so a
    /// rotated identity is learnt from a reloaded manifest (<paramref name="watch"/>); without, against the node's key only.
    /// </summary>
    public NodeClient(ClusterNode node, X509Certificate2 clientCertificate, ClusterTrust trust, ClusterManifest? manifest = null, ManifestWatch? watch = null)
        : this(node, ReloadingCertificate.Fixed(clientCertificate), trust, manifest, watch)
    {
    }

    /// <summary>
    /// A client whose TLS client certificate is taken from <paramref name="clientCertificate"/> at each handshake, so a
    /// replaced certificate is used by every connection opened after the change; a connection takes new calls for at
    /// most <paramref name="connectionLifetime"/> (default <see cref="DefaultConnectionLifetime"/>), and calls in flight
    /// on it finish (docs/ROTATION.md "Rotating TLS certificates").
    /// </summary>
    public NodeClient(ClusterNode node, ReloadingCertificate clientCertificate, ClusterTrust trust, ClusterManifest? manifest = null, ManifestWatch? watch = null,
        TimeSpan? connectionLifetime = null)
    {
        ArgumentNullException.ThrowIfNull(node);
        ArgumentNullException.ThrowIfNull(clientCertificate);
        ArgumentNullException.ThrowIfNull(trust);
        Id = node.Id;
        Address = node.Address;
        _identityKey = Convert.FromHexString(node.IdentityKey);
        _manifest = manifest;
        _watch = watch;
        _endpoint = ListenEndpoint.Parse(node.Address);
        _connectionLifetime = connectionLifetime ?? DefaultConnectionLifetime;
        // The same TLS options for the gRPC channel's connections and the frame connections.
        _tlsOptions = () => new SslClientAuthenticationOptions
        {
            TargetHost = _endpoint.Host,
            // Every connection a full handshake, its certificates chosen and checked now (docs/ROTATION.md).
            AllowTlsResume = false,
            // Chosen at each handshake: the certificate in use now.
            LocalCertificateSelectionCallback = (_, _, _, _, _) => clientCertificate.Current,
            RemoteCertificateValidationCallback = ValidateServer,
        };

        bool ValidateServer(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
        {
            bool ok = trust.ValidateServer(sender, certificate, chain, errors);
            if (ok && certificate is not null)
            {
                Volatile.Write(ref _serverCertificateSha256, Convert.ToHexStringLower(ClusterTrust.Sha256Of(certificate)));
            }

            return ok;
        }

        var handler = new SocketsHttpHandler
        {
            EnableMultipleHttp2Connections = true,
            PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
            PooledConnectionLifetime = _connectionLifetime,
            KeepAlivePingDelay = TimeSpan.FromSeconds(30),
            KeepAlivePingTimeout = TimeSpan.FromSeconds(10),
            ConnectTimeout = ConnectTimeout,
            SslOptions = _tlsOptions(),
        };
        _channel = GrpcChannel.ForAddress($"https://{_endpoint}", new GrpcChannelOptions
        {
            HttpHandler = handler,
            DisposeHttpClient = true,
            MaxReceiveMessageSize = 16 * 1024 * 1024,
        });
        _client = new SignerNode.SignerNodeClient(_channel);
    }

    /// <summary>How long a connection to a node takes new calls before a fresh one (a fresh TLS handshake) replaces it.</summary>
    public static TimeSpan DefaultConnectionLifetime { get; } = TimeSpan.FromMinutes(5);

    private string? _serverCertificateSha256;

    /// <summary>SHA-256 (hex) of the certificate the node presented in this client's latest accepted TLS handshake; null before the first.</summary>
    public string? ServerCertificateSha256 => Volatile.Read(ref _serverCertificateSha256);

    public uint Id { get; }

    public string Address { get; }

    private long _bytesSent, _bytesReceived;

    /// <summary>
    /// Whether <see cref="BytesSent"/> and <see cref="BytesReceived"/> are counted (off by default: sizing every request and
    /// reply walks the whole message again, a cost only `conclave bench` needs; issue 18).
    /// </summary>
    public bool CountBytes { get; set; }

    /// <summary>
    /// Sees every message this node returns, after its sender and session (and, unless deferred, its signature) were checked: exactly what crosses the wire and what
    /// the coordinator relays (signed broadcasts, sealed point-to-point messages). Null by default. Tests use it to play
    /// an eavesdropper that records the relayed traffic (docs/ROTATION.md "Forward secrecy of relayed shares").
    /// </summary>
    public Action<Envelope>? ReplyObserver { get; set; }

    /// <summary>Protocol bytes sent to this node in steps while <see cref="CountBytes"/> is on (protobuf size of each request, without HTTP/2 or TLS framing).</summary>
    public long BytesSent => Interlocked.Read(ref _bytesSent);

    /// <summary>Protocol bytes received from this node in step replies while <see cref="CountBytes"/> is on (protobuf size, without HTTP/2 or TLS framing).</summary>
    public long BytesReceived => Interlocked.Read(ref _bytesReceived);

    public async Task<NodeInfo> GetInfoAsync(TimeSpan timeout, CancellationToken cancellationToken)
        => await _client.GetInfoAsync(new InfoRequest(), deadline: DateTime.UtcNow.Add(timeout), cancellationToken: cancellationToken).ConfigureAwait(false);

    /// <summary>Sends one step; returns the node's messages, each verified as signed by this node for this session.</summary>
    public Task<IReadOnlyList<Envelope>> StepAsync(Envelope request, IEnumerable<Envelope> relayed, TimeSpan timeout, CancellationToken cancellationToken) =>
        StepAsync(request, relayed, timeout, ReplySignatures.Verified, cancellationToken);

    /// <summary>
    /// Sends one step; returns the node's messages, each from this node and for this session. With
    /// <see cref="ReplySignatures.Verified"/> each message's envelope signature is also verified before it is returned;
    /// with <see cref="ReplySignatures.Deferred"/> it is not (the caller relays the messages to peers that verify them,
    /// or consumes them itself over this mutually authenticated connection, and checks a signature with
    /// <see cref="IsSignedByNode"/> before it names a culprit from a message or offers one as evidence:
    /// docs/ARCHITECTURE.md "Reply signatures on the signing path").
    /// </summary>
    public async Task<IReadOnlyList<Envelope>> StepAsync(Envelope request, IEnumerable<Envelope> relayed, TimeSpan timeout, ReplySignatures signatures,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var step = new StepRequest { Request = request };
        step.Relayed.AddRange(relayed);
        StepReply reply;
        try
        {
            reply = Transport == NodeTransport.Frames
                ? await StepOverFramesAsync(step, timeout, cancellationToken).ConfigureAwait(false)
                : await _client.StepAsync(step, deadline: DateTime.UtcNow.Add(timeout), cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled && cancellationToken.IsCancellationRequested)
        {
            // The caller gave up (its request timed out or its client went away): not the node's fault, so the node is
            // not marked down and no other quorum is tried.
            throw new OperationCanceledException("the call was cancelled by its caller", e, cancellationToken);
        }
        catch (NodeFrameCallException e)
        {
            throw new NodeCallException(Id, e.Status, e.Message, e.Culprit, e);
        }
        catch (RpcException e)
        {
            uint? culprit = null;
            string? c = e.Trailers.GetValue("conclave-culprit");
            if (c is not null && uint.TryParse(c, System.Globalization.CultureInfo.InvariantCulture, out uint v))
            {
                culprit = v;
            }

            throw new NodeCallException(Id, e.StatusCode, e.Status.Detail, culprit, e);
        }

        if (CountBytes)
        {
            Interlocked.Add(ref _bytesSent, step.CalculateSize());
            Interlocked.Add(ref _bytesReceived, reply.CalculateSize());
        }

        foreach (Envelope m in reply.Messages)
        {
            if (m.Sender != Id || !m.SessionId.Equals(request.SessionId) || (signatures == ReplySignatures.Verified && !IsSignedByNode(m)))
            {
                throw new NodeCallException(Id, StatusCode.DataLoss, NotValidlySigned(Id), Id, null);
            }
        }

        if (ReplyObserver is { } observer)
        {
            foreach (Envelope m in reply.Messages)
            {
                observer(m);
            }
        }

        return reply.Messages;
    }

    /// <summary>Whether <paramref name="message"/> claims this node as its sender and is signed by one of its accepted identity keys now.</summary>
    public bool IsSignedByNode(Envelope message)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (message.Sender != Id)
        {
            return false;
        }

        _watch?.Refresh();
        IReadOnlyList<byte[]> keys = _manifest?.AcceptedIdentityKeys(Id, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()) ?? [_identityKey];
        return EnvelopeSigner.VerifyAny(message, EnvelopeSigner.Digest(message), keys);
    }

    /// <summary>What the coordinator says of a node that returned a message not validly signed by it for the step's session.</summary>
    internal static string NotValidlySigned(uint node) => $"node {node} returned a message that is not validly signed by it for this session";

    /// <summary>
    /// How steps reach the node: <see cref="NodeTransport.Frames"/> (the default: one long-lived connection carrying
    /// many steps) or <see cref="NodeTransport.Grpc"/> (an HTTP/2 request per step). Both carry the same signed
    /// envelopes to the same checks; <see cref="GetInfoAsync"/> is always gRPC.
    /// </summary>
    public NodeTransport Transport { get; set; } = NodeTransport.Frames;

    private async Task<StepReply> StepOverFramesAsync(StepRequest step, TimeSpan timeout, CancellationToken cancellationToken)
    {
        for (int attempt = 1; ; attempt++)
        {
            NodeFrameConnection connection = await FrameConnectionAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                return await connection.StepAsync(step, timeout, cancellationToken).ConfigureAwait(false);
            }
            catch (NodeFrameCallException e) when (e.NotSent && attempt == 1)
            {
                // The connection closed between being handed out and the step being written (its lifetime ended and
                // its last step finished): the step never left, so it goes on a fresh connection.
            }
        }
    }

    /// <summary>
    /// The connection new steps use: the current one while it works and is younger than the connection lifetime (so a
    /// replaced client certificate is presented, and the node's certificate checked again, within that time); else a
    /// new one, the old one closing once its steps have their answers.
    /// </summary>
    private async Task<NodeFrameConnection> FrameConnectionAsync(CancellationToken cancellationToken)
    {
        bool Usable(NodeFrameConnection? c) => c is not null && !c.Failed && TimeProvider.System.GetElapsedTime(c.OpenedAt) < _connectionLifetime;

        NodeFrameConnection? current = Volatile.Read(ref _frames);
        if (Usable(current))
        {
            return current!;
        }

        await _framesGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            current = _frames;
            if (Usable(current))
            {
                return current!;
            }

            current?.Retire();
            try
            {
                current = await NodeFrameConnection.OpenAsync(_endpoint, _tlsOptions(), ConnectTimeout, TimeProvider.System, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is SocketException or IOException or System.Security.Authentication.AuthenticationException
                || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
            {
                throw new NodeFrameCallException(StatusCode.Unavailable, $"cannot connect to {_endpoint}: {e.Message}");
            }

            Volatile.Write(ref _frames, current);
            Interlocked.Increment(ref _frameConnectionsOpened);
            return current;
        }
        finally
        {
            _framesGate.Release();
        }
    }

    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(3);

    private long _frameConnectionsOpened;

    /// <summary>How many frame connections this client has opened (tests and `conclave bench`: one per node and lifetime).</summary>
    public long FrameConnectionsOpened => Interlocked.Read(ref _frameConnectionsOpened);

    public void Dispose()
    {
        _channel.Dispose();
        Volatile.Read(ref _frames)?.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _framesGate.Dispose();
    }
}

/// <summary>How the coordinator carries protocol steps to nodes (server.json <c>nodeTransport</c>).</summary>
public enum NodeTransport
{
    /// <summary>One long-lived mutual-TLS connection per node, steps multiplexed as frames (<see cref="NodeFrames"/>).</summary>
    Frames,

    /// <summary>A gRPC call (an HTTP/2 request) per step.</summary>
    Grpc,
}

/// <summary>A call to a node failed: unreachable, timed out, refused, or answered with something invalid.</summary>
public sealed class NodeCallException : Exception
{
    public NodeCallException() { }

    public NodeCallException(string message) : base(message) { }

    public NodeCallException(string message, Exception innerException) : base(message, innerException) { }

    public NodeCallException(uint nodeId, StatusCode status, string detail, uint? culprit, Exception? inner)
        : base($"node {nodeId}: {status}: {detail}", inner)
    {
        NodeId = nodeId;
        Status = status;
        Culprit = culprit;
    }

    public uint NodeId { get; }

    public StatusCode Status { get; }

    /// <summary>The node at fault, when the failure is attributable (a bad share, a bad signature).</summary>
    public uint? Culprit { get; }

    /// <summary>True when another quorum may succeed (the node is down, slow or overloaded).</summary>
    public bool IsTransient => Status is StatusCode.Unavailable or StatusCode.DeadlineExceeded or StatusCode.ResourceExhausted or StatusCode.Cancelled;
}

internal static class EnvelopeFactory
{
    public static Envelope Create(NodeIdentity coordinator, ReadOnlySpan<byte> sessionId, string kind, uint round, IEnumerable<uint> recipients, ReadOnlySpan<byte> payload, TimeProvider clock)
    {
        var e = new Envelope
        {
            SessionId = ByteString.CopyFrom(sessionId),
            Kind = kind,
            Round = round,
            Sender = 0,
            Payload = ByteString.CopyFrom(payload),
            IssuedAtUnixMs = clock.GetUtcNow().ToUnixTimeMilliseconds(),
        };
        e.Recipients.AddRange(recipients);
        return EnvelopeSigner.Sign(e, coordinator);
    }
}

/// <summary>Whether <see cref="NodeClient.StepAsync(Envelope, IEnumerable{Envelope}, TimeSpan, ReplySignatures, CancellationToken)"/> verifies the envelope signatures of a reply.</summary>
public enum ReplySignatures
{
    /// <summary>Every reply message's signature is verified before the reply is returned.</summary>
    Verified,

    /// <summary>Only sender and session are checked; the caller verifies signatures where it needs them (<see cref="NodeClient.IsSignedByNode"/>).</summary>
    Deferred,
}
