using Conclave.Server.Hosting;
using System.Security.Cryptography.X509Certificates;
using Conclave.Node.Pki;
using Conclave.Node.Protocol;
using Conclave.Node.Rpc;
using Conclave.Server.Coordinator;
using Google.Protobuf;
using Grpc.Core;
using Conclave.Testing;

namespace Conclave.Node.Tests;

/// <summary>One 3-node cluster of real processes shared by the transport tests.</summary>
public sealed class ThreeNodeCluster : IDisposable
{
    public LocalClusterProcesses Cluster { get; } = new(RepoPaths.CliDll, 3, 2);

    public void Dispose() => Cluster.Dispose();
}

/// <summary>
/// The nodes' checks of what reaches them, over both transports (the frame protocol, the default, and gRPC: the same
/// signed envelopes to the same checks, docs/ARCHITECTURE.md "Node transport"), and mutual TLS.
/// </summary>
public sealed class TransportTests : IClassFixture<ThreeNodeCluster>
{
    private readonly LocalClusterProcesses _c;

    public TransportTests(ThreeNodeCluster fixture)
    {
        _c = fixture.Cluster;
        _c.Coordinator.Transport = NodeTransport.Frames; // a test that changes it changes it for itself
    }

    [Fact]
    public async Task AllNodesAttestOverMutualTls()
    {
        IReadOnlyList<uint> up = await _c.Coordinator.AttestAsync(CancellationToken.None);
        Assert.Equal([1u, 2u, 3u], up);
        NodeInfo info = await _c.Coordinator.Node(2).GetInfoAsync(TimeSpan.FromSeconds(5), CancellationToken.None);
        Assert.Equal(2u, info.NodeId);
        Assert.True(NodeIdentity.VerifyAgreementKey(2, info.IdentityPublicKey.Span, info.AgreementPublicKey.Span, info.AgreementKeySignature.Span));
    }

    [Theory]
    [InlineData(NodeTransport.Frames)]
    [InlineData(NodeTransport.Grpc)]
    public async Task ReplayedRequestIsRefused(NodeTransport transport)
    {
        _c.Coordinator.Transport = transport;
        NodeClient node = _c.Coordinator.Node(1);
        Envelope req = _c.Coordinator.Request(Cluster.NewSessionId(), AttestHandler.RequestKind, 0, [1], TestSeed.Bytes(32, "data@39"));
        _ = await node.StepAsync(req, [], TimeSpan.FromSeconds(5), CancellationToken.None);
        NodeCallException e = await Assert.ThrowsAsync<NodeCallException>(() => node.StepAsync(req, [], TimeSpan.FromSeconds(5), CancellationToken.None));
        Assert.Equal(StatusCode.AlreadyExists, e.Status);
    }

    [Theory]
    [InlineData(NodeTransport.Frames)]
    [InlineData(NodeTransport.Grpc)]
    public async Task TamperedRequestIsRefused(NodeTransport transport)
    {
        _c.Coordinator.Transport = transport;
        NodeClient node = _c.Coordinator.Node(1);
        Envelope req = _c.Coordinator.Request(Cluster.NewSessionId(), AttestHandler.RequestKind, 0, [1], TestSeed.Bytes(32, "data@49"));
        req.Round = 7; // altered in flight after signing
        NodeCallException e = await Assert.ThrowsAsync<NodeCallException>(() => node.StepAsync(req, [], TimeSpan.FromSeconds(5), CancellationToken.None));
        Assert.Equal(StatusCode.Unauthenticated, e.Status);
    }

    [Theory]
    [InlineData(NodeTransport.Frames)]
    [InlineData(NodeTransport.Grpc)]
    public async Task TamperedRelayedMessageIsRefused(NodeTransport transport)
    {
        _c.Coordinator.Transport = transport;
        byte[] session = Cluster.NewSessionId();
        NodeClient node2 = _c.Coordinator.Node(2);
        // Node 2 produces a signed message; the coordinator alters it before relaying it to node 1.
        IReadOnlyList<Envelope> from2 = await node2.StepAsync(_c.Coordinator.Request(session, AttestHandler.RequestKind, 0, [2], TestSeed.Bytes(32, "data@61")), [], TimeSpan.FromSeconds(5), CancellationToken.None);
        Envelope relayed = from2[0].Clone();
        relayed.Recipients.Clear();
        relayed.Payload = ByteString.CopyFrom(TestSeed.Bytes(32, "data@64"));
        Envelope req = _c.Coordinator.Request(session, AttestHandler.RequestKind, 0, [1], TestSeed.Bytes(32, "data@65"));
        NodeCallException e = await Assert.ThrowsAsync<NodeCallException>(() => _c.Coordinator.Node(1).StepAsync(req, [relayed], TimeSpan.FromSeconds(5), CancellationToken.None));
        Assert.Equal(StatusCode.Unauthenticated, e.Status);
    }

    [Theory]
    [InlineData(NodeTransport.Frames)]
    [InlineData(NodeTransport.Grpc)]
    public async Task RequestSignedByAnotherKeyIsRefused(NodeTransport transport)
    {
        _c.Coordinator.Transport = transport;
        using NodeIdentity impostor = NodeIdentity.Generate(0);
        var req = new Envelope
        {
            SessionId = ByteString.CopyFrom(Cluster.NewSessionId()),
            Kind = AttestHandler.RequestKind,
            Sender = 0,
            Payload = ByteString.CopyFrom(TestSeed.Bytes(32, "data@79")),
            IssuedAtUnixMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
        };
        EnvelopeSigner.Sign(req, impostor);
        NodeCallException e = await Assert.ThrowsAsync<NodeCallException>(() => _c.Coordinator.Node(3).StepAsync(req, [], TimeSpan.FromSeconds(5), CancellationToken.None));
        Assert.Equal(StatusCode.Unauthenticated, e.Status);
    }

    [Theory]
    [InlineData(NodeTransport.Frames)]
    [InlineData(NodeTransport.Grpc)]
    public async Task StaleRequestIsRefused(NodeTransport transport)
    {
        _c.Coordinator.Transport = transport;
        // Correctly signed, but issued ten minutes ago: outside the nodes' validity window.
        using Cluster late = LocalClusterProcesses.CreateCoordinator(_c.ServerConfig, _c.Manifest, clock: new ShiftedClock(TimeSpan.FromMinutes(-10)));
        Envelope req = late.Request(Cluster.NewSessionId(), AttestHandler.RequestKind, 0, [1], TestSeed.Bytes(32, "data@92"));
        NodeCallException e = await Assert.ThrowsAsync<NodeCallException>(() => _c.Coordinator.Node(1).StepAsync(req, [], TimeSpan.FromSeconds(5), CancellationToken.None));
        Assert.Equal(StatusCode.InvalidArgument, e.Status);
    }

    private sealed class ShiftedClock(TimeSpan shift) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => DateTimeOffset.UtcNow.Add(shift);
    }

    [Theory]
    [InlineData(NodeTransport.Frames)]
    [InlineData(NodeTransport.Grpc)]
    public async Task UnknownKindIsRefused(NodeTransport transport)
    {
        _c.Coordinator.Transport = transport;
        Envelope req = _c.Coordinator.Request(Cluster.NewSessionId(), "no.such.kind", 0, [], [1, 2, 3]);
        NodeCallException e = await Assert.ThrowsAsync<NodeCallException>(() => _c.Coordinator.Node(1).StepAsync(req, [], TimeSpan.FromSeconds(5), CancellationToken.None));
        Assert.Equal(StatusCode.Unimplemented, e.Status);
    }

    /// <summary>Every message in an exception's chain (inner exceptions included), for asserting why a call failed.</summary>
    private static string Chain(Exception e)
    {
        var parts = new List<string>();
        for (Exception? x = e; x is not null; x = x.InnerException)
        {
            parts.Add($"{x.GetType().Name}: {x.Message}");
        }

        return string.Join(" <- ", parts);
    }

    [Fact]
    public async Task CoordinatorWithCertificateFromAnotherCaIsRefused()
    {
        // Positive control: a second coordinator built the same way with the real certificate reaches every node.
        using (Cluster genuine = LocalClusterProcesses.CreateCoordinator(_c.ServerConfig, _c.Manifest))
        {
            Assert.Equal([1u, 2u, 3u], await genuine.AttestAsync(CancellationToken.None));
            Assert.Equal(1u, (await genuine.Node(1).GetInfoAsync(TimeSpan.FromSeconds(30), CancellationToken.None)).NodeId);
        }

        string dir = Path.Combine(_c.DataDir, "rogue");
        Directory.CreateDirectory(dir);
        using DevelopmentCertificateAuthority rogueCa = DevelopmentCertificateAuthority.Create("rogue CA");
        using (X509Certificate2 cert = rogueCa.Issue("conclave-coordinator", serverAuth: false, clientAuth: true))
        {
            PemFiles.Write(cert, Path.Combine(dir, "c.crt"), Path.Combine(dir, "c.key"));
        }

        // The rogue coordinator trusts the real CA for the nodes' certificates, but presents its own client certificate.
        // It differs from the control above only in that certificate, and the node drops the connection inside the TLS
        // handshake (TLS 1.3 checks the client certificate after the client's Finished), before a single HTTP/2 frame:
        // the call fails while starting, never with a status from the node's gRPC service.
        using Cluster rogue = LocalClusterProcesses.CreateCoordinator(_c.ServerConfig, _c.Manifest, Path.Combine(dir, "c.crt"), Path.Combine(dir, "c.key"));
        Assert.Empty(await rogue.AttestAsync(CancellationToken.None));
        RpcException e = await Assert.ThrowsAsync<RpcException>(() => rogue.Node(1).GetInfoAsync(TimeSpan.FromSeconds(30), CancellationToken.None));
        // How the dropped handshake surfaces depends on timing: the client may see the connection fail while starting
        // the call (Unavailable) or right after its own Finished (Internal, reading the first frame). Either way it is
        // a transport failure raised by the client, never a status the node's gRPC service chose.
        string why = Chain(e);
        Assert.True(e.StatusCode is StatusCode.Unavailable or StatusCode.Internal, $"{e.StatusCode}: {why}");
        Assert.DoesNotContain("conclave-", e.Trailers.Select(t => t.Key));
    }

    [Fact]
    public async Task NodeWithCertificateFromAnotherCaIsRefused()
    {
        // The coordinator trusts only a different CA: no node certificate validates, so nothing answers.
        string dir = Path.Combine(_c.DataDir, "other-ca");
        Directory.CreateDirectory(dir);
        using DevelopmentCertificateAuthority otherCa = DevelopmentCertificateAuthority.Create("other CA");
        otherCa.Save(Path.Combine(dir, "ca.crt"), Path.Combine(dir, "ca.key"));

        // Positive control: the same construction with the real CA file reaches every node.
        using (Cluster genuine = LocalClusterProcesses.CreateCoordinator(_c.ServerConfig, _c.Manifest, ca: _c.ServerConfig.Resolve(_c.ServerConfig.Tls.Ca)))
        {
            Assert.Equal([1u, 2u, 3u], await genuine.AttestAsync(CancellationToken.None));
        }

        using Cluster c = LocalClusterProcesses.CreateCoordinator(_c.ServerConfig, _c.Manifest, ca: Path.Combine(dir, "ca.crt"));
        Assert.Empty(await c.AttestAsync(CancellationToken.None));

        // The reason is the coordinator's own certificate check of the node (the validation callback refused it).
        RpcException e = await Assert.ThrowsAsync<RpcException>(() => c.Node(1).GetInfoAsync(TimeSpan.FromSeconds(30), CancellationToken.None));
        string why = Chain(e);
        Assert.StartsWith("Error starting gRPC call", e.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("AuthenticationException", why, StringComparison.Ordinal);
        Assert.Contains("RemoteCertificateValidationCallback", why, StringComparison.Ordinal);
    }
}
