using System.Net;
using System.Security.Cryptography.X509Certificates;
using Conclave.Node.Config;
using Conclave.Node.Hosting;
using Conclave.Node.Pki;
using Conclave.Node.Protocol;
using Conclave.Server.Config;

namespace Conclave.Server.Hosting;

/// <summary>
/// The files of a local cluster in one data folder, as `conclave up` creates them on first start:
/// <code>
/// DIR/pki/ca.crt, ca.key, coordinator.crt, coordinator.key, node-N.crt, node-N.key
/// DIR/cluster.json                 public identities of the coordinator and every node
/// DIR/node-N/node.json, node.kek   node config and key-encryption key; DIR/node-N/data/ its store
/// DIR/server/server.json, server.kek, data/
/// </code>
/// Every folder is created 0700 and every file 0600 (issue 14 item 11); a cluster folder others can write is refused. The CA key stays in DIR/pki: this is a development setup.
/// </summary>
public sealed class LocalClusterLayout
{
    public LocalClusterLayout(string dataDir) => DataDir = Path.GetFullPath(dataDir);

    public string DataDir { get; }

    /// <summary>
    /// The audit checkpoint interval of a development cluster's logs: short, so that `audit verify` checks signed
    /// checkpoints after a few requests rather than warning that none exists yet (production default 1000).
    /// </summary>
    public const int DevelopmentCheckpointInterval = 16;

    /// <summary>The starter policy's file in DIR/server, named by server.json <c>starterPolicy</c>.</summary>
    public const string StarterPolicyFileName = "starter-policy.json";

    /// <summary>
    /// The development cluster's starter policy (docs/POLICY.md "Starter policy"): the admin may sign messages, typed data
    /// and the typed operations with any key, and raw digests with keys of the schemes that sign digests. Visible in
    /// DIR/server/starter-policy.json and through GET /v1/policies/starter; change it with PUT /v1/policies/starter
    /// (a higher version).
    /// </summary>
    public const string StarterPolicyJson = """
        {
          "id": "starter",
          "version": 1,
          "rules": [
            {
              "id": "admin-signs",
              "effect": "allow",
              "match": {
                "principals": ["admin"],
                "operations": ["message", "typed-data", "transfer", "liquidate", "settle", "exercise", "margin-call", "release-collateral", "hedge"]
              }
            },
            {
              "id": "admin-raw-digests",
              "effect": "allow",
              "match": {
                "principals": ["admin"],
                "operations": ["raw-digest"],
                "labels": ["scheme:ecdsa-secp256k1", "scheme:ecdsa-dkls23", "scheme:schnorr-bip340", "scheme:hsm-ecdsa-secp256k1"]
              }
            }
          ]
        }

        """;

    public string PkiDir => Path.Combine(DataDir, "pki");

    public string ManifestPath => Path.Combine(DataDir, "cluster.json");

    public string ServerConfigPath => Path.Combine(DataDir, "server", "server.json");

    public string NodeConfigPath(uint id) => Path.Combine(DataDir, $"node-{id}", "node.json");

    public string LogDir => Path.Combine(DataDir, "logs");

    public bool Exists => File.Exists(ManifestPath) && File.Exists(ServerConfigPath);

    /// <summary>Creates CA, certificates, KEKs, identities, configs and the manifest, if the folder has none yet.</summary>
    public void EnsureCreated(int nodes, int threshold, int apiPort, int firstNodePort, HsmSettings? hsm = null)
    {
        if (nodes is < 1 or > 255)
        {
            throw new ConfigException("--nodes must be between 1 and 255");
        }

        if (threshold < 1 || threshold > nodes)
        {
            throw new ConfigException($"--threshold must be between 1 and the number of nodes ({nodes})");
        }

        // The cluster folder holds every node's store, KEK and identity: created 0700, refused if others can write it.
        Conclave.Storage.OwnerOnly.CreateDirectory(DataDir);
        if (Conclave.Storage.OwnerOnly.WritableByOthers(DataDir) is { } refused)
        {
            throw new ConfigException(refused);
        }

        if (Exists)
        {
            ClusterManifest existing = ClusterManifest.Load(ManifestPath);
            if (existing.Nodes.Count != nodes)
            {
                throw new ConfigException($"{DataDir} holds a cluster of {existing.Nodes.Count} nodes; use another --data folder for {nodes}");
            }

            if (hsm is not null && NodeConfig.Load(NodeConfigPath(1)).Hsm is null)
            {
                throw new ConfigException($"{DataDir} was created without an HSM; its stores stay under their key files (use a new --data folder for an HSM cluster)");
            }

            return;
        }

        Conclave.Storage.OwnerOnly.CreateDirectory(PkiDir);
        Conclave.Storage.OwnerOnly.CreateDirectory(LogDir);
        using DevelopmentCertificateAuthority ca = DevelopmentCertificateAuthority.Create();
        ca.Save(Path.Combine(PkiDir, "ca.crt"), Path.Combine(PkiDir, "ca.key"));
        using (X509Certificate2 coord = ca.Issue(NodeHost.CoordinatorCommonName, serverAuth: false, clientAuth: true))
        {
            PemFiles.Write(coord, Path.Combine(PkiDir, "coordinator.crt"), Path.Combine(PkiDir, "coordinator.key"));
        }

        var manifest = new ClusterManifest();
        string serverDir = Path.Combine(DataDir, "server");
        using (NodeIdentity coordinator = NodeHost.InitializeIdentity(0, Path.Combine(serverDir, "data"), Path.Combine(serverDir, "server.kek")))
        {
            manifest.CoordinatorIdentityKey = Convert.ToHexStringLower(coordinator.IdentityPublicKey.Span);
        }

        for (uint id = 1; id <= nodes; id++)
        {
            string nodeDir = Path.Combine(DataDir, $"node-{id}");
            using (X509Certificate2 cert = ca.Issue($"conclave-node-{id}", serverAuth: true, clientAuth: true, ["localhost"], [IPAddress.Loopback]))
            {
                PemFiles.Write(cert, Path.Combine(PkiDir, $"node-{id}.crt"), Path.Combine(PkiDir, $"node-{id}.key"));
            }

            using NodeIdentity identity = NodeHost.InitializeIdentity(id, Path.Combine(nodeDir, "data"), Path.Combine(nodeDir, "node.kek"));
            string address = $"127.0.0.1:{firstNodePort + (int)id - 1}";
            manifest.Nodes.Add(new ClusterNode
            {
                Id = id,
                Address = address,
                IdentityKey = Convert.ToHexStringLower(identity.IdentityPublicKey.Span),
                AgreementKey = Convert.ToHexStringLower(identity.AgreementPublicKey),
                AgreementKeySignature = Convert.ToHexStringLower(identity.AgreementKeySignature),
            });
            new NodeConfig
            {
                NodeId = id,
                Listen = address,
                DataDir = "data",
                KekFile = "node.kek",
                Cluster = "../cluster.json",
                Tls = new TlsFiles { Certificate = $"../pki/node-{id}.crt", Key = $"../pki/node-{id}.key", Ca = "../pki/ca.crt" },
                AuditCheckpointInterval = DevelopmentCheckpointInterval,
                Hsm = hsm is null ? null : new HsmSettings
                {
                    ModulePath = hsm.ModulePath,
                    TokenLabel = hsm.TokenLabel,
                    PinFile = hsm.PinFile,
                    PinEnvironmentVariable = hsm.PinEnvironmentVariable,
                    SessionPoolSize = hsm.SessionPoolSize,
                    // A caller's KekId is a prefix (tests use a run-unique one in a persistent token).
                    KekId = string.IsNullOrEmpty(hsm.KekId) ? $"conclave-node-{id}-kek" : $"{hsm.KekId}-node-{id}",
                },
            }.Save(NodeConfigPath(id));
        }

        manifest.Save(ManifestPath);
        new ServerConfig
        {
            Listen = $"127.0.0.1:{apiPort}",
            DataDir = "data",
            Cluster = "../cluster.json",
            KekFile = "server.kek",
            Threshold = threshold,
            Tls = new TlsFiles { Certificate = "../pki/coordinator.crt", Key = "../pki/coordinator.key", Ca = "../pki/ca.crt" },
            AuditCheckpointInterval = DevelopmentCheckpointInterval,
            StarterPolicy = StarterPolicyFileName,
        }.Save(ServerConfigPath);
        Conclave.Storage.OwnerOnly.WriteAllText(Path.Combine(serverDir, StarterPolicyFileName), StarterPolicyJson);
    }

    /// <summary>The development cluster's approver of policy changes (<c>conclave up</c>): its principal id.</summary>
    public const string DevelopmentApprover = "dev-approver";

    /// <summary>Its credential file in DIR/server (readable by its owner only; the CLI's <c>--credential</c>).</summary>
    public string DevelopmentApproverCredentialPath => Path.Combine(DataDir, "server", DevelopmentApprover + ".json");

    /// <summary>
    /// Makes the starter policy editable on a development cluster (<c>conclave up</c>, docs/POLICY.md "Starter policy"):
    /// when server.json names no policy-change approvers, names <see cref="DevelopmentApprover"/> alone, a loosening
    /// taking effect on its one vote with no time lock. A production server names its own approvers, quorum and time
    /// lock (docs/OPERATIONS.md "Policy changes"); an existing <c>policyChanges</c> section is left as it is.
    /// </summary>
    public void EnsureDevelopmentPolicyApprover()
    {
        ServerConfig config = ServerConfig.Load(ServerConfigPath);
        if (config.PolicyChanges is null)
        {
            config.PolicyChanges = new Conclave.Server.Policy.PolicyChangeSettings { Approvers = [DevelopmentApprover], LooseningQuorum = 1, TimeLockSeconds = 0 };
            config.Save(ServerConfigPath);
        }
    }

    /// <summary>
    /// Makes the API serve HTTPS with a certificate from the development CA (<c>conclave up --tls</c>): issues
    /// pki/api.crt and pki/api.key (server auth, SAN localhost and 127.0.0.1) once and names them in server.json.
    /// Clients trust it through pki/ca.crt. Returns the CA certificate's path.
    /// </summary>
    public string EnsureApiTls()
    {
        string caPath = Path.Combine(PkiDir, "ca.crt");
        ServerConfig config = ServerConfig.Load(ServerConfigPath);
        if (config.ApiTls is null)
        {
            using DevelopmentCertificateAuthority ca = DevelopmentCertificateAuthority.Load(caPath, Path.Combine(PkiDir, "ca.key"));
            using (X509Certificate2 cert = ca.Issue("conclave-api", serverAuth: true, clientAuth: false, ["localhost"], [IPAddress.Loopback]))
            {
                PemFiles.Write(cert, Path.Combine(PkiDir, "api.crt"), Path.Combine(PkiDir, "api.key"));
            }

            config.ApiTls = new ApiTlsFiles { Certificate = "../pki/api.crt", Key = "../pki/api.key" };
            config.Save(ServerConfigPath);
        }

        return caPath;
    }
}
