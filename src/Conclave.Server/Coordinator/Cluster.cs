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
    private readonly TimeProvider _clock;
    private readonly CoordinatorIdentityFiles? _identityFiles;
    private readonly Lock _identityGate = new();
    private readonly List<NodeIdentity> _formerIdentities = [];
    private NodeIdentity _identity;
    private string _identityHex;
    private string _lastTriedHex;

    /// <summary>
    /// With <paramref name="manifestPath"/>, the manifest file is re-read when it changes (<see cref="ManifestWatch"/>),
    /// so a node's rotated identity key is accepted, and its retired key refused after the overlap, without a restart.
    /// </summary>
    public Cluster(ClusterManifest manifest, NodeIdentity coordinatorIdentity, X509Certificate2 clientCertificate, X509Certificate2 ca,
        TimeSpan roundTimeout, TimeProvider? clock = null, string? manifestPath = null)
        : this(manifest, coordinatorIdentity, ReloadingCertificate.Fixed(clientCertificate), ca, roundTimeout, clock, manifestPath)
    {
    }

    /// <summary>
    /// A cluster whose client certificate follows its files (<paramref name="clientCertificate"/>: new connections use a
    /// replaced certificate) and, with <paramref name="identityFiles"/>, whose coordinator identity follows the manifest:
    /// once the manifest names the next identity waiting in the server's data folder, requests are signed with it
    /// (docs/ROTATION.md "Rotating the coordinator's identity"). A connection to a node is used for new calls for at most
    /// <paramref name="connectionLifetime"/> (default <see cref="NodeClient.DefaultConnectionLifetime"/>), so a
    /// replaced certificate is presented, and a revoked one refused, within that time.
    /// </summary>
    public Cluster(ClusterManifest manifest, NodeIdentity coordinatorIdentity, ReloadingCertificate clientCertificate, X509Certificate2 ca,
        TimeSpan roundTimeout, TimeProvider? clock = null, string? manifestPath = null, CoordinatorIdentityFiles? identityFiles = null,
        TimeSpan? connectionLifetime = null)
        : this(manifest, coordinatorIdentity, clientCertificate, TrustRoots.Fixed(ca ?? throw new ArgumentNullException(nameof(ca))), roundTimeout, clock, manifestPath,
            identityFiles, connectionLifetime)
    {
    }

    /// <summary>As above, trusting the CA certificates of <paramref name="caRoots"/> (a CA file it follows: docs/ROTATION.md "Rotating the cluster CA"); the caller disposes them.</summary>
    public Cluster(ClusterManifest manifest, NodeIdentity coordinatorIdentity, ReloadingCertificate clientCertificate, TrustRoots caRoots,
        TimeSpan roundTimeout, TimeProvider? clock = null, string? manifestPath = null, CoordinatorIdentityFiles? identityFiles = null,
        TimeSpan? connectionLifetime = null)
    {
        ArgumentNullException.ThrowIfNull(caRoots);
        ArgumentNullException.ThrowIfNull(manifest);
        ArgumentNullException.ThrowIfNull(coordinatorIdentity);
        ArgumentNullException.ThrowIfNull(clientCertificate);
        if (!Convert.FromHexString(manifest.CoordinatorIdentityKey).AsSpan().SequenceEqual(coordinatorIdentity.IdentityPublicKey.Span))
        {
            throw new ConfigException("the coordinator identity does not match the cluster manifest");
        }

        Manifest = manifest;
        _identity = coordinatorIdentity;
        _identityHex = Convert.ToHexStringLower(coordinatorIdentity.IdentityPublicKey.Span);
        _lastTriedHex = _identityHex;
        _identityFiles = identityFiles;
        _clock = clock ?? TimeProvider.System;
        RoundTimeout = roundTimeout;
        ClientCertificate = clientCertificate;
        Watch = manifestPath is null ? null : new ManifestWatch(manifest, manifestPath, _clock);
        Trust = new ClusterTrust(caRoots, manifest, Watch, _clock);
        _nodes = manifest.Nodes.ToDictionary(n => n.Id, n => new NodeClient(n, clientCertificate, Trust, manifest, Watch, connectionLifetime));
    }

    /// <summary>The nodes the cluster manifest evicts (looks at the manifest file first, throttled).</summary>
    public IReadOnlyList<uint> PinnedEvictions()
    {
        Watch?.Refresh();
        List<PinnedEviction> pinned = Manifest.EvictedNodes;
        return pinned.Count == 0 ? [] : [.. pinned.Select(e => e.Id)];
    }

    /// <summary>The coordinator's TLS client certificate (follows its files when made from them).</summary>
    public ReloadingCertificate ClientCertificate { get; }

    /// <summary>How node certificates are checked: the cluster CA, and the manifest's revoked certificates.</summary>
    public ClusterTrust Trust { get; }

    /// <summary>Why the coordinator did not switch to the key the manifest names (null when it did, or nothing changed).</summary>
    public string? IdentityError { get; private set; }

    /// <summary>The coordinator identity key requests are signed with now (hex).</summary>
    public string IdentityKeyHex => Volatile.Read(ref _identityHex);

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

    /// <summary>How steps reach every node (<see cref="NodeClient.Transport"/>; server.json <c>nodeTransport</c>).</summary>
    public NodeTransport Transport
    {
        get => _nodes.Values.FirstOrDefault()?.Transport ?? NodeTransport.Frames;
        set
        {
            foreach (NodeClient n in _nodes.Values)
            {
                n.Transport = value;
            }
        }
    }

    public NodeClient Node(uint id) => _nodes.TryGetValue(id, out NodeClient? c) ? c : throw new ArgumentOutOfRangeException(nameof(id), $"no node {id}");

    /// <summary>
    /// The sender of the first of <paramref name="messages"/> that is not validly signed by the node it names (a reply
    /// taken with <see cref="ReplySignatures.Deferred"/>, so its sender is a node of this cluster); null when every one is.
    /// </summary>
    public uint? BadlySignedSender(IEnumerable<Envelope> messages)
    {
        ArgumentNullException.ThrowIfNull(messages);
        foreach (Envelope m in messages)
        {
            if (!_nodes.TryGetValue(m.Sender, out NodeClient? sender) || !sender.IsSignedByNode(m))
            {
                return m.Sender;
            }
        }

        return null;
    }

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
        => EnvelopeFactory.Create(CurrentIdentity(), sessionId, kind, round, recipients, payload, _clock);

    /// <summary>
    /// The identity to sign the next request with. When the (re-read) manifest names another coordinator key and the
    /// server's next identity is that key, it becomes current: the handover of docs/ROTATION.md "Rotating the
    /// coordinator's identity". A key the manifest names that this server does not hold is tried once; requests stay
    /// signed by the current key, which the nodes accept while its overlap lasts.
    /// </summary>
    private NodeIdentity CurrentIdentity()
    {
        Watch?.Refresh();
        NodeIdentity identity = Volatile.Read(ref _identity);
        string named = Manifest.CoordinatorIdentityKey;
        if (_identityFiles is null || string.Equals(named, Volatile.Read(ref _identityHex), StringComparison.OrdinalIgnoreCase)
            || string.Equals(named, Volatile.Read(ref _lastTriedHex), StringComparison.OrdinalIgnoreCase))
        {
            return identity;
        }

        lock (_identityGate)
        {
            if (string.Equals(named, _lastTriedHex, StringComparison.OrdinalIgnoreCase))
            {
                return _identity;
            }

            NodeIdentity? next;
            try
            {
                next = _identityFiles.TryTakeNext(named);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ConfigException or Conclave.Crypto.Aead.EnvelopeException)
            {
                // Caught mid-write by another process, say: the current key signs (accepted during its overlap); tried again next request.
                IdentityError = $"the coordinator's next identity in {_identityFiles.DataDir} could not be read ({e.GetType().Name})";
                return _identity;
            }

            Volatile.Write(ref _lastTriedHex, named);
            if (next is null)
            {
                IdentityError = "the cluster manifest names a coordinator key this server does not hold; requests stay signed by the current key";
                return _identity;
            }

            IdentityError = null;

            // Requests being signed with the former identity right now still hold it: it is disposed with the cluster.
            _formerIdentities.Add(_identity);
            Volatile.Write(ref _identity, next);
            Volatile.Write(ref _identityHex, Convert.ToHexStringLower(next.IdentityPublicKey.Span));
            return next;
        }
    }

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

    /// <summary>Disposes the node clients and the identities this cluster switched away from; the identity and certificate it was given stay its caller's.</summary>
    public void Dispose()
    {
        foreach (NodeClient n in _nodes.Values)
        {
            n.Dispose();
        }

        lock (_identityGate)
        {
            foreach (NodeIdentity former in _formerIdentities.Skip(1))
            {
                former.Dispose();
            }

            if (_formerIdentities.Count > 0)
            {
                // The last identity switched to was made here; the first one was the caller's.
                _identity.Dispose();
            }

            _formerIdentities.Clear();
        }
    }
}
