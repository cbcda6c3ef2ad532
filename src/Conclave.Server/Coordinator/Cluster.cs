using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Conclave.Node.Config;
using Conclave.Node.Pki;
using Conclave.Node.Protocol;
using Conclave.Node.Rpc;

namespace Conclave.Server.Coordinator;

/// <summary>
/// The coordinator's view of the cluster: one client per node, the coordinator's identity, and the per-round deadline.
/// Stateless with respect to secrets: it relays and aggregates, and verifies everything it relays.
/// </summary>
public sealed class Cluster : IDisposable
{
    private readonly Dictionary<uint, NodeClient> _nodes;
    private readonly NodeIdentity _identity;
    private readonly TimeProvider _clock;

    /// <summary>
    /// With <paramref name="manifestPath"/>, the manifest file is re-read when it changes (<see cref="ManifestWatch"/>),
    /// so a node's rotated identity key is accepted, and its retired key refused after the overlap, without a restart.
    /// </summary>
    public Cluster(ClusterManifest manifest, NodeIdentity coordinatorIdentity, X509Certificate2 clientCertificate, X509Certificate2 ca,
        TimeSpan roundTimeout, TimeProvider? clock = null, string? manifestPath = null)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        ArgumentNullException.ThrowIfNull(coordinatorIdentity);
        if (!Convert.FromHexString(manifest.CoordinatorIdentityKey).AsSpan().SequenceEqual(coordinatorIdentity.IdentityPublicKey.Span))
        {
            throw new ConfigException("the coordinator identity does not match the cluster manifest");
        }

        Manifest = manifest;
        _identity = coordinatorIdentity;
        _clock = clock ?? TimeProvider.System;
        RoundTimeout = roundTimeout;
        var trust = new ClusterTrust(ca);
        Watch = manifestPath is null ? null : new ManifestWatch(manifest, manifestPath, _clock);
        _nodes = manifest.Nodes.ToDictionary(n => n.Id, n => new NodeClient(n, clientCertificate, trust, manifest, Watch));
    }

    public ClusterManifest Manifest { get; }

    /// <summary>The watch on the manifest file (null when the cluster was built from a manifest without its path).</summary>
    public ManifestWatch? Watch { get; }

    public TimeSpan RoundTimeout { get; }

    public IReadOnlyCollection<uint> NodeIds => _nodes.Keys;

    /// <summary>Switches byte counting on or off on every node client (<see cref="NodeClient.CountBytes"/>; `conclave bench` turns it on).</summary>
    public bool CountBytes
    {
        get => _nodes.Values.All(n => n.CountBytes);
        set
        {
            foreach (NodeClient n in _nodes.Values)
            {
                n.CountBytes = value;
            }
        }
    }

    public NodeClient Node(uint id) => _nodes.TryGetValue(id, out NodeClient? c) ? c : throw new ArgumentOutOfRangeException(nameof(id), $"no node {id}");

    /// <summary>Sets (or with null removes) the observer of every node's verified replies (<see cref="NodeClient.ReplyObserver"/>).</summary>
    public void ObserveReplies(Action<Envelope>? observer)
    {
        foreach (NodeClient n in _nodes.Values)
        {
            n.ReplyObserver = observer;
        }
    }

    public static byte[] NewSessionId() => RandomNumberGenerator.GetBytes(EnvelopeSigner.SessionIdSizeInBytes);

    /// <summary>A request envelope signed by the coordinator.</summary>
    public Envelope Request(ReadOnlySpan<byte> sessionId, string kind, uint round, IEnumerable<uint> recipients, ReadOnlySpan<byte> payload)
        => EnvelopeFactory.Create(_identity, sessionId, kind, round, recipients, payload, _clock);

    /// <summary>Asks every node to prove liveness and identity; returns the ids that answered correctly.</summary>
    public async Task<IReadOnlyList<uint>> AttestAsync(CancellationToken cancellationToken)
    {
        byte[] session = NewSessionId();
        byte[] challenge = RandomNumberGenerator.GetBytes(32);
        var tasks = _nodes.Values.Select(async n =>
        {
            try
            {
                Envelope req = Request(session, AttestHandler.RequestKind, 0, [n.Id], challenge);
                IReadOnlyList<Envelope> reply = await n.StepAsync(req, [], RoundTimeout, cancellationToken).ConfigureAwait(false);
                return reply.Count == 1 && reply[0].Kind == AttestHandler.ReplyKind && reply[0].Payload.Span.SequenceEqual(challenge) ? n.Id : 0u;
            }
            catch (NodeCallException)
            {
                return 0u;
            }
        }).ToList();
        uint[] results = await Task.WhenAll(tasks).ConfigureAwait(false);
        return results.Where(id => id != 0).Order().ToList();
    }

    public void Dispose()
    {
        foreach (NodeClient n in _nodes.Values)
        {
            n.Dispose();
        }
    }
}
