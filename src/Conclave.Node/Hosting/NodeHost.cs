using System.Net;
using System.Security.Cryptography.X509Certificates;
using Conclave.Crypto.Memory;
using Conclave.Node.Config;
using Conclave.Node.Frost;
using Conclave.Storage;
using Conclave.Storage.Encryption;
using Conclave.Hsm;
using Conclave.Node.Pki;
using Conclave.Node.Protocol;
using Conclave.Node.Threshold.Dkls23;
using Conclave.Node.Threshold.Engine;
using Conclave.Node.Threshold.Sharing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Conclave.Node.Hosting;

/// <summary>
/// Runs a signer node: loads its key-encryption key and identity, then serves the gRPC protocol over HTTP/2 with
/// mutual TLS. Only the coordinator's client certificate (issued by the cluster CA, CN=conclave-coordinator) is accepted.
/// </summary>
public static class NodeHost
{
    public const string CoordinatorCommonName = "conclave-coordinator";

    public static Task<WebApplication> BuildAsync(NodeConfig config, LogLevel minimumLevel = LogLevel.Warning, CancellationToken cancellationToken = default)
        => BuildAsync(config, minimumLevel, dkgFaults: null, dklsFaults: null, cancellationToken);

    /// <summary>
    /// <see cref="BuildAsync(NodeConfig, LogLevel, CancellationToken)"/> with DKG and DKLs23 fault hooks: internal, for the
    /// test node host only (<see cref="DkgFaults"/>, <see cref="DklsFaults"/>); a node built with hooks says so in a
    /// warning at start.
    /// </summary>
    internal static async Task<WebApplication> BuildAsync(NodeConfig config, LogLevel minimumLevel, DkgFaults? dkgFaults, DklsFaults? dklsFaults, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(config);
        ClusterManifest cluster = ClusterManifest.Load(config.Resolve(config.Cluster));
        string dataDir = config.Resolve(config.DataDir);
        OwnerOnly.CreateDirectory(dataDir);
        if (OwnerOnly.WritableByOthers(dataDir) is { } refused)
        {
            throw new ConfigException(refused);
        }

        NodeIdentity identity = LoadIdentity(config, dataDir);
        ClusterNode self = cluster.Node(config.NodeId);
        NodeIdentity? next = null;
        if (!Convert.FromHexString(self.IdentityKey).AsSpan().SequenceEqual(identity.IdentityPublicKey.Span))
        {
            // A rotation applied to the manifest (docs/ROTATION.md "Rotating a node's identity"): the next identity made by
            // `conclave node rotate-keys` becomes this node's identity once the audit log handed its checkpoint key over to
            // it (below), and the old one is erased from the data folder.
            next = LoadNextIdentity(config, dataDir, self);
            if (next is null)
            {
                identity.Dispose();
                throw new ConfigException($"node {config.NodeId}: the identity in {dataDir} does not match the cluster manifest");
            }
        }

        // The node's own store (SQLite in its data folder), sealed under its key file, or under an AES key in an HSM.
        HsmToken? hsm = null;
        IKeyEncryptionKeySource kek = KeyFileKek.Source(config.Resolve(config.KekFile));
        if (config.Hsm is not null)
        {
            hsm = HsmToken.Open(config.Hsm.ToOptions(config.Resolve));
            kek = new HsmKekSource(hsm, string.IsNullOrEmpty(config.Hsm.KekId) ? $"conclave-node-{config.NodeId}-kek" : config.Hsm.KekId);
        }

        IConclaveStore store = await ConclaveStore.OpenSqliteAsync(dataDir, new StoreOptions
        {
            Kek = kek,
            CheckpointSigner = identity.SigningKey,
            CheckpointInterval = config.AuditCheckpointInterval is >= 1 and <= 1_000_000 ? config.AuditCheckpointInterval
                : throw new ConfigException("auditCheckpointInterval must be between 1 and 1000000"),
        }, cancellationToken).ConfigureAwait(false);
        if (next is not null)
        {
            // The old identity key signs the handover to the new one in the node's own audit log, so the log verifies
            // pinned to either key (docs/STORAGE.md "Rotating the checkpoint key"); only then is the old identity erased.
            // A node stopped between the two hands over again at its next start, which only switches its signer.
            await store.Audit.HandOverCheckpointKeyAsync(next.SigningKey, $"node-{config.NodeId}", cancellationToken).ConfigureAwait(false);
            PromoteNextIdentity(dataDir);
            identity.Dispose();
            identity = next;
        }

        NonceEpochs epochs = await NonceEpochs.OpenAsync(store.Nonces, ct: cancellationToken).ConfigureAwait(false);
        // The peers this node was told were evicted, from its own store (docs/ROTATION.md "What the other nodes do").
        // The manifest is watched: rotated peer and coordinator keys, certificates it revokes and nodes it evicts are
        // learnt without a restart.
        var watch = new ManifestWatch(cluster, config.Resolve(config.Cluster));
        PeerTrust peerTrust = await PeerTrust.LoadAsync(store, cancellationToken, cluster, watch).ConfigureAwait(false);
        var frost = new FrostNodeState(store, config.NodeId, epochs) { CorruptShares = config.FaultInjection == "bad-share", DkgFaults = dkgFaults };

        // The CA file is followed too: during a CA rotation it holds both CAs (docs/ROTATION.md "Rotating the cluster CA").
        var caRoots = TrustRoots.FromFile(config.Resolve(config.Tls.Ca));
        var trust = new ClusterTrust(caRoots, cluster, watch);
        // The node's certificate follows its files: a certificate replaced on disk (`conclave node rotate-tls`) is served
        // from the next TLS handshake on, without a restart (docs/ROTATION.md "Rotating TLS certificates").
        ReloadingCertificate cert = ReloadingCertificate.FromFiles(config.Resolve(config.Tls.Certificate), config.Resolve(config.Tls.Key), trust, ClusterTrust.ServerAuthEku);
        ListenEndpoint listen = ListenEndpoint.Parse(config.Listen);

        WebApplicationBuilder builder = HostBuilders.CreateSlim();
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
        builder.Logging.SetMinimumLevel(minimumLevel);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Listen(IPAddress.Parse(listen.Host == "localhost" ? "127.0.0.1" : listen.Host), listen.Port, l =>
            {
                l.Protocols = HttpProtocols.Http2;
                l.UseHttps(new HttpsConnectionAdapterOptions
                {
                    ServerCertificateSelector = (_, _) => cert.Current,
                    ClientCertificateMode = ClientCertificateMode.RequireCertificate,
                    ClientCertificateValidation = (c, _, _) =>
                        trust.Validate(c, ClusterTrust.ClientAuthEku) && c.GetNameInfo(X509NameType.SimpleName, false) == CoordinatorCommonName,
                    CheckCertificateRevocation = false,
                    // No TLS resumption: every connection is a full handshake whose client certificate is checked now
                    // (a revoked certificate must not come back through a session ticket issued before).
                    OnAuthenticate = (_, ssl) => ssl.AllowTlsResume = false,
                });
                // After the handshake: a connection that opens with the frame protocol's magic is served by the frame
                // server, any other goes on to HTTP/2 (docs/ARCHITECTURE.md "Node transport").
                l.Use(next => connection => l.ApplicationServices.GetRequiredService<NodeFrameServer>().HandleAsync(connection, next));
            });
        });
        builder.Services.AddGrpc(o =>
        {
            o.EnableDetailedErrors = false;
            o.MaxReceiveMessageSize = 16 * 1024 * 1024;
        });
        builder.Services.AddSingleton(identity);
        builder.Services.AddSingleton(cluster);
        builder.Services.AddSingleton(watch);
        builder.Services.AddSingleton(config);
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton(new ReplayGuard(TimeSpan.FromSeconds(config.MessageValiditySeconds)));
        builder.Services.AddSingleton(store);
        builder.Services.AddSingleton(frost);
        builder.Services.AddSingleton<IProtocolHandler, AttestHandler>();
        // One instance serves gRPC steps and framed steps alike (it keeps no per-call state).
        builder.Services.AddSingleton<SignerNodeService>();
        builder.Services.AddSingleton<NodeFrameServer>();
        builder.Services.AddSingleton(peerTrust);
        builder.Services.AddSingleton<IProtocolHandler, NodeTrustHandler>();

        // The threshold engine: each protocol's handlers and the rotation steps they share (docs/ARCHITECTURE.md "Threshold engine").
        var dkls = new DklsNodeState(store, config.NodeId, epochs)
        {
            Faults = dklsFaults ?? DklsFaults.FromConfig(config.FaultInjection),
            EquivocateRound1 = config.FaultInjection == "dkls-equivocate",
            MessageValidity = TimeSpan.FromSeconds(config.MessageValiditySeconds),
        };
        var dklsProtocol = new DklsNodeProtocol(dkls, cluster);
        var engine = new NodeEngine(store, config.NodeId, [new FrostNodeProtocol(frost, cluster, [dklsProtocol.DkgFollowUp]), dklsProtocol]);
        foreach (IProtocolHandler handler in engine.Handlers)
        {
            builder.Services.AddSingleton<IProtocolHandler>(handler);
        }

        WebApplication app = builder.Build();
        if (dkls.Faults?.SignedEnvelope is { } editSigned)
        {
            app.Services.GetRequiredService<SignerNodeService>().EditSigned = editSigned; // testing only (DklsFaults)
        }
        if (config.FaultInjection is not null)
        {
            app.Logger.LogWarning("node {NodeId} runs with fault injection '{Fault}': for tests only", config.NodeId, config.FaultInjection);
        }

        if (dkgFaults is not null || dklsFaults is not null)
        {
            app.Logger.LogWarning("node {NodeId} runs with DKG or DKLs23 fault hooks: a test host only", config.NodeId);
        }

        app.MapGrpcService<SignerNodeService>();
        app.Lifetime.ApplicationStopped.Register(() =>
        {
            frost.Dispose();
            dkls.Dispose();
            store.DisposeAsync().AsTask().GetAwaiter().GetResult();
            hsm?.Dispose();
            identity.Dispose();
            cert.Dispose();
            caRoots.Dispose();
        });
        return app;
    }

    /// <summary>Reads the 32-byte KEK file and opens (or on first start creates) the sealed identity.</summary>
    internal static NodeIdentity LoadIdentity(NodeConfig config, string dataDir)
    {
        using SecretBuffer kek = KekFile.Read(config.Resolve(config.KekFile));
        string path = Path.Combine(dataDir, "identity.sealed");
        if (!File.Exists(path))
        {
            throw new ConfigException($"node {config.NodeId} has no identity at {path}; run 'conclave node init' first");
        }

        return NodeIdentity.Unseal(config.NodeId, kek.ReadOnlySpan, File.ReadAllBytes(path));
    }

    /// <summary>The file <c>conclave node rotate-keys</c> writes the next identity to (sealed under the KEK like the current one).</summary>
    public const string NextIdentityFile = "identity.next.sealed";

    /// <summary>
    /// Makes (or, when one is already waiting, reuses) the node's next identity and returns the statement for the
    /// manifest: the new public keys signed over by the current identity key. The current identity stays in use until
    /// the node starts on a manifest that names the new key.
    /// </summary>
    public static NodeKeyRotationStatement PrepareKeyRotation(NodeConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        string dataDir = config.Resolve(config.DataDir);
        using NodeIdentity current = LoadIdentity(config, dataDir);
        using SecretBuffer kek = KekFile.Read(config.Resolve(config.KekFile));
        string path = Path.Combine(dataDir, NextIdentityFile);
        NodeIdentity next;
        if (File.Exists(path))
        {
            next = NodeIdentity.Unseal(config.NodeId, kek.ReadOnlySpan, File.ReadAllBytes(path));
        }
        else
        {
            next = NodeIdentity.Generate(config.NodeId);
            OwnerOnly.WriteAllBytes(path, next.Seal(kek.ReadOnlySpan));
        }

        using (next)
        {
            return NodeKeyRotation.CreateStatement(current, next);
        }
    }

    /// <summary>The waiting next identity when the manifest names it; null when there is none or the manifest names another key.</summary>
    private static NodeIdentity? LoadNextIdentity(NodeConfig config, string dataDir, ClusterNode self)
    {
        string nextPath = Path.Combine(dataDir, NextIdentityFile);
        if (!File.Exists(nextPath))
        {
            return null;
        }

        using SecretBuffer kek = KekFile.Read(config.Resolve(config.KekFile));
        NodeIdentity next = NodeIdentity.Unseal(config.NodeId, kek.ReadOnlySpan, File.ReadAllBytes(nextPath));
        if (!Convert.FromHexString(self.IdentityKey).AsSpan().SequenceEqual(next.IdentityPublicKey.Span))
        {
            next.Dispose();
            return null;
        }

        return next;
    }

    /// <summary>The next identity file replaces the sealed identity (the old file is overwritten with zeros first).</summary>
    private static void PromoteNextIdentity(string dataDir) =>
        OwnerOnly.ReplaceErasingOld(Path.Combine(dataDir, NextIdentityFile), Path.Combine(dataDir, "identity.sealed"));

    /// <summary>Creates a node's identity and KEK file if absent; returns the identity (caller disposes).</summary>
    public static NodeIdentity InitializeIdentity(uint nodeId, string dataDir, string kekPath)
    {
        OwnerOnly.CreateDirectory(dataDir);
        if (!File.Exists(kekPath))
        {
            KekFile.Create(kekPath);
        }

        using SecretBuffer kek = KekFile.Read(kekPath);
        string path = Path.Combine(dataDir, "identity.sealed");
        if (File.Exists(path))
        {
            return NodeIdentity.Unseal(nodeId, kek.ReadOnlySpan, File.ReadAllBytes(path));
        }

        NodeIdentity identity = NodeIdentity.Generate(nodeId);
        OwnerOnly.WriteAllBytes(path, identity.Seal(kek.ReadOnlySpan));
        return identity;
    }
}

/// <summary>
/// A 32-byte key file with owner-only permissions: the raw key bytes, the same format as
/// <c>Conclave.Storage.Encryption.KeyFileKek</c>, so one file seals both the node's identity and its store.
/// </summary>
public static class KekFile
{
    public static void Create(string path)
    {
        using Conclave.Storage.Encryption.KeyFileKek k = Conclave.Storage.Encryption.KeyFileKek.CreateFile(path);
    }

    public static SecretBuffer Read(string path)
    {
        if (!File.Exists(path))
        {
            throw new ConfigException($"key file not found: {path}");
        }

        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        if (fs.Length != 32)
        {
            throw new ConfigException($"key file {path} must hold exactly 32 bytes");
        }

        var buffer = SecretBuffer.Allocate(32, SecretMemoryKind.Guarded);
        try
        {
            fs.ReadExactly(buffer.Span);
            return buffer;
        }
        catch
        {
            buffer.Dispose();
            throw;
        }
    }
}
