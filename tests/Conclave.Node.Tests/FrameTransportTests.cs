using System.Buffers.Binary;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Conclave.Node.Config;
using Conclave.Node.Protocol;
using Conclave.Node.Rpc;
using Conclave.Server.Coordinator;
using Conclave.Server.Hosting;
using Conclave.Testing;
using Grpc.Core;

namespace Conclave.Node.Tests;

/// <summary>
/// The frame transport between coordinator and nodes (docs/ARCHITECTURE.md "Node transport"), against real node
/// processes: many steps on one connection, each reply to its caller; a node that dies and comes back; the connection
/// lifetime; and a client that speaks the protocol badly, or holds the wrong certificate, gets nothing and harms no one.
/// The envelope checks themselves run over both transports in <see cref="TransportTests"/>.
/// </summary>
public sealed class FrameTransportTests(ThreeNodeCluster fixture) : IClassFixture<ThreeNodeCluster>
{
    private readonly LocalClusterProcesses _c = fixture.Cluster;

    private async Task<byte[]> AttestAsync(NodeClient node, string label)
    {
        byte[] challenge = TestSeed.Bytes(32, label);
        Envelope req = _c.Coordinator.Request(Cluster.NewSessionId(), AttestHandler.RequestKind, 0, [node.Id], challenge);
        IReadOnlyList<Envelope> reply = await node.StepAsync(req, [], TimeSpan.FromSeconds(30), CancellationToken.None);
        Assert.Equal(AttestHandler.ReplyKind, Assert.Single(reply).Kind);
        Assert.Equal(challenge, reply[0].Payload.ToByteArray());
        return challenge;
    }

    [Fact]
    public async Task Many_steps_in_flight_share_one_connection_and_each_reply_reaches_its_caller()
    {
        using Cluster coordinator = LocalClusterProcesses.CreateCoordinator(_c.ServerConfig, _c.Manifest);
        Assert.Equal(NodeTransport.Frames, coordinator.Transport);
        NodeClient node = coordinator.Node(1);
        var calls = Enumerable.Range(0, 300).Select(async i =>
        {
            byte[] challenge = TestSeed.Bytes(32, "frames-many@" + i);
            Envelope req = coordinator.Request(Cluster.NewSessionId(), AttestHandler.RequestKind, 0, [1], challenge);
            IReadOnlyList<Envelope> reply = await node.StepAsync(req, [], TimeSpan.FromSeconds(60), CancellationToken.None);
            return Assert.Single(reply).Payload.ToByteArray().AsSpan().SequenceEqual(challenge);
        }).ToList();
        Assert.All(await Task.WhenAll(calls), Assert.True);
        Assert.Equal(1, node.FrameConnectionsOpened);
    }

    [Fact]
    public async Task A_killed_node_fails_its_calls_as_unavailable_and_is_reached_on_a_new_connection_once_back()
    {
        using Cluster coordinator = LocalClusterProcesses.CreateCoordinator(_c.ServerConfig, _c.Manifest);
        NodeClient node = coordinator.Node(3);
        await AttestAsync(node, "frames-kill@1");
        _c.KillNode(3);
        try
        {
            Envelope req = coordinator.Request(Cluster.NewSessionId(), AttestHandler.RequestKind, 0, [3], TestSeed.Bytes(32, "frames-kill@2"));
            NodeCallException e = await Assert.ThrowsAsync<NodeCallException>(() => node.StepAsync(req, [], TimeSpan.FromSeconds(30), CancellationToken.None));
            Assert.Equal(StatusCode.Unavailable, e.Status);
            Assert.True(e.IsTransient);
            Assert.Null(e.Culprit);
        }
        finally
        {
            _c.StartNode(3);
            _c.WaitForAll(TimeSpan.FromSeconds(90));
        }

        await AttestAsync(node, "frames-kill@3");
        Assert.True(node.FrameConnectionsOpened >= 2, $"{node.FrameConnectionsOpened} connections");
    }

    [Fact]
    public async Task A_connection_older_than_its_lifetime_is_replaced_and_steps_keep_working()
    {
        using Cluster coordinator = LocalClusterProcesses.CreateCoordinator(_c.ServerConfig, _c.Manifest, connectionLifetime: TimeSpan.FromMilliseconds(300));
        NodeClient node = coordinator.Node(2);
        await AttestAsync(node, "frames-life@1");
        Assert.Equal(1, node.FrameConnectionsOpened);
        await Task.Delay(500);
        await AttestAsync(node, "frames-life@2");
        Assert.Equal(2, node.FrameConnectionsOpened);

        // Sixteen callers without pause across several lifetimes: every step is answered, none fails at a replacement
        // (a step handed a connection that retires before it is written goes on the fresh one).
        var until = DateTime.UtcNow.AddSeconds(2);
        int done = 0;
        await Task.WhenAll(Enumerable.Range(0, 16).Select(async w =>
        {
            for (int i = 0; DateTime.UtcNow < until; i++)
            {
                await AttestAsync(node, $"frames-life@3.{w}.{i}");
                Interlocked.Increment(ref done);
            }
        }));
        Assert.True(node.FrameConnectionsOpened >= 4, $"{node.FrameConnectionsOpened} connections for {done} steps");
    }

    [Fact]
    public async Task Grpc_and_frames_reach_the_same_node_side_by_side()
    {
        using Cluster coordinator = LocalClusterProcesses.CreateCoordinator(_c.ServerConfig, _c.Manifest);
        coordinator.Transport = NodeTransport.Grpc;
        await AttestAsync(coordinator.Node(1), "frames-both@1");
        Assert.Equal(0, coordinator.Node(1).FrameConnectionsOpened);
        coordinator.Transport = NodeTransport.Frames;
        await AttestAsync(coordinator.Node(1), "frames-both@2");
        Assert.Equal(1, coordinator.Node(1).FrameConnectionsOpened);
    }

    /// <summary>A raw frame client holding the coordinator's certificate: what the node does with frames the protocol does not allow.</summary>
    [Fact]
    public async Task Malformed_frames_end_that_connection_only_and_a_bad_message_is_answered_invalid_argument()
    {
        // Positive control on a raw connection: a valid step is answered with a reply frame for its call id.
        await using (RawFrames raw = await RawFrames.OpenAsync(_c, CoordinatorCertificate()))
        {
            byte[] challenge = TestSeed.Bytes(32, "frames-raw@1");
            Envelope req = _c.Coordinator.Request(Cluster.NewSessionId(), AttestHandler.RequestKind, 0, [1], challenge);
            await raw.WriteAsync(NodeFrames.StepFrame(77, new StepRequest { Request = req }, TimeSpan.FromSeconds(30)));
            (uint id, byte type, byte[] body) = await raw.ReadFrameAsync();
            Assert.Equal((77u, NodeFrames.Reply), (id, type));
            Assert.Equal(challenge, Assert.Single(StepReply.Parser.ParseFrom(body).Messages).Payload.ToByteArray());

            // A body that is not a StepRequest: an error frame, and the connection goes on.
            byte[] garbage = new byte[NodeFrames.HeaderSize + 4 + 5];
            NodeFrames.WriteHeader(garbage, 9, 78, NodeFrames.Step);
            garbage.AsSpan(NodeFrames.HeaderSize + 4).Fill(0xff);
            await raw.WriteAsync(garbage);
            (id, type, body) = await raw.ReadFrameAsync();
            Assert.Equal((78u, NodeFrames.Error), (id, type));
            Assert.True(NodeFrames.TryReadError(body, out StatusCode status, out _, out uint? culprit));
            Assert.Equal(StatusCode.InvalidArgument, status);
            Assert.Null(culprit);

            // A refused envelope keeps its gRPC status: replaying the same request.
            await raw.WriteAsync(NodeFrames.StepFrame(79, new StepRequest { Request = req }, TimeSpan.FromSeconds(30)));
            (id, type, body) = await raw.ReadFrameAsync();
            Assert.Equal((79u, NodeFrames.Error), (id, type));
            Assert.True(NodeFrames.TryReadError(body, out status, out string detail, out _));
            Assert.Equal(StatusCode.AlreadyExists, status);
            Assert.Contains("replayed", detail, StringComparison.Ordinal);
        }

        // A length over the limit, an unknown frame type: the node closes that connection.
        byte[] tooLong = new byte[NodeFrames.HeaderSize];
        BinaryPrimitives.WriteUInt32BigEndian(tooLong, NodeFrames.MaxBody + 1);
        byte[] unknownType = new byte[NodeFrames.HeaderSize];
        NodeFrames.WriteHeader(unknownType, 0, 5, 9);
        foreach (byte[] bad in new[] { tooLong, unknownType })
        {
            await using RawFrames raw = await RawFrames.OpenAsync(_c, CoordinatorCertificate());
            await raw.WriteAsync(bad);
            Assert.True(await raw.ClosedByPeerAsync(), "the node closes a connection that broke the protocol");
        }

        // The node still serves the coordinator.
        Assert.Equal([1u, 2u, 3u], await _c.Coordinator.AttestAsync(CancellationToken.None));
    }

    /// <summary>
    /// A frame connection passes the same TLS checks as gRPC: a certificate from the cluster CA that does not name the
    /// coordinator (here node 2's own, which has no client-auth use either) gets no frame answered.
    /// </summary>
    [Fact]
    public async Task A_client_without_the_coordinator_certificate_gets_no_frame_answered()
    {
        // Positive control: the same raw client with the coordinator's certificate is answered (previous test too).
        await using (RawFrames ok = await RawFrames.OpenAsync(_c, CoordinatorCertificate()))
        {
            Envelope req = _c.Coordinator.Request(Cluster.NewSessionId(), AttestHandler.RequestKind, 0, [1], TestSeed.Bytes(32, "frames-cert@1"));
            await ok.WriteAsync(NodeFrames.StepFrame(1, new StepRequest { Request = req }, TimeSpan.FromSeconds(30)));
            Assert.Equal(NodeFrames.Reply, (await ok.ReadFrameAsync()).Type);
        }

        NodeConfig node2 = NodeConfig.Load(_c.Layout.NodeConfigPath(2));
        using X509Certificate2 wrong = X509Certificate2.CreateFromPemFile(node2.Resolve(node2.Tls.Certificate), node2.Resolve(node2.Tls.Key));
        bool answered;
        try
        {
            await using RawFrames raw = await RawFrames.OpenAsync(_c, wrong);
            Envelope req = _c.Coordinator.Request(Cluster.NewSessionId(), AttestHandler.RequestKind, 0, [1], TestSeed.Bytes(32, "frames-cert@2"));
            await raw.WriteAsync(NodeFrames.StepFrame(1, new StepRequest { Request = req }, TimeSpan.FromSeconds(30)));
            answered = !await raw.ClosedByPeerAsync();
        }
        catch (Exception e) when (e is IOException or System.Security.Authentication.AuthenticationException or SocketException)
        {
            answered = false; // refused in the handshake (TLS 1.3 may report it only at the first read or write)
        }

        Assert.False(answered);
    }

    private X509Certificate2 CoordinatorCertificate()
        => X509Certificate2.CreateFromPemFile(_c.ServerConfig.Resolve(_c.ServerConfig.Tls.Certificate), _c.ServerConfig.Resolve(_c.ServerConfig.Tls.Key));

    private sealed class RawFrames : IAsyncDisposable
    {
        private readonly TcpClient _tcp;
        private readonly SslStream _ssl;

        private RawFrames(TcpClient tcp, SslStream ssl)
        {
            _tcp = tcp;
            _ssl = ssl;
        }

        public static async Task<RawFrames> OpenAsync(LocalClusterProcesses c, X509Certificate2 certificate)
        {
            ListenEndpoint ep = ListenEndpoint.Parse(c.Manifest.Node(1).Address);
            var tcp = new TcpClient { NoDelay = true };
            await tcp.ConnectAsync(ep.Host, ep.Port);
            var ssl = new SslStream(tcp.GetStream());
            await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = ep.Host,
                ClientCertificates = [certificate],
                LocalCertificateSelectionCallback = (_, _, _, _, _) => certificate,
                RemoteCertificateValidationCallback = (_, _, _, _) => true, // the node's identity is not what these tests check
            });
            await ssl.WriteAsync(NodeFrames.Magic.ToArray());
            return new RawFrames(tcp, ssl);
        }

        public async Task WriteAsync(byte[] bytes) => await _ssl.WriteAsync(bytes);

        public async Task<(uint Id, byte Type, byte[] Body)> ReadFrameAsync()
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            byte[] header = new byte[NodeFrames.HeaderSize];
            await _ssl.ReadExactlyAsync(header, timeout.Token);
            Assert.True(NodeFrames.TryReadHeader(header, out int length, out uint id, out byte type));
            byte[] body = new byte[length];
            await _ssl.ReadExactlyAsync(body, timeout.Token);
            return (id, type, body);
        }

        /// <summary>True when the peer ends the connection (end of stream or reset) within 30 s without sending a frame.</summary>
        public async Task<bool> ClosedByPeerAsync()
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            byte[] one = new byte[1];
            try
            {
                return await _ssl.ReadAsync(one, timeout.Token) == 0;
            }
            catch (IOException)
            {
                return true;
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _ssl.DisposeAsync();
            _tcp.Dispose();
        }
    }
}
