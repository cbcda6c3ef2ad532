using System.Text.Json;
using System.Text.Json.Serialization;
using Conclave.Node.Config;

namespace Conclave.Server.Config;

/// <summary>
/// The server's configuration file (JSON); relative paths resolve against the file's folder.
/// <code>
/// { "listen": "127.0.0.1:8080", "dataDir": "server", "cluster": "cluster.json", "kekFile": "server.kek",
///   "threshold": 2,
///   "tls": { "certificate": "coordinator.crt", "key": "coordinator.key", "ca": "ca.crt" } }
/// </code>
/// </summary>
public sealed class ServerConfig
{
    public string Listen { get; set; } = "127.0.0.1:8080";

    public string DataDir { get; set; } = "";

    public string Cluster { get; set; } = "";

    public string KekFile { get; set; } = "";

    /// <summary>Default threshold for new threshold keys.</summary>
    public int Threshold { get; set; } = 2;

    /// <summary>Coordinator client certificate (CN=conclave-coordinator) and the cluster CA.</summary>
    public TlsFiles Tls { get; set; } = new();

    /// <summary>Deadline for one protocol round with one node.</summary>
    public int RoundTimeoutMilliseconds { get; set; } = 2000;

    /// <summary>
    /// How the coordinator carries protocol steps to the nodes: "frames" (default: one long-lived mutual-TLS connection per
    /// node, steps multiplexed on it) or "grpc" (an HTTP/2 request per step). Same envelopes and checks either way
    /// (docs/ARCHITECTURE.md "Node transport").
    /// </summary>
    public string NodeTransport { get; set; } = "frames";

    /// <summary>
    /// FROST sign steps, and DKLs23 online steps of presigned signatures, outstanding per node before further signatures
    /// wait and share the next step (issues 18 and 15, coalescing; docs/ARCHITECTURE.md "Coalescing"). 1..512; a lone signature never waits. 512 in practice turns
    /// coalescing off (every signature its own step, as many in flight as the frame connection carries).
    /// </summary>
    public int SignStepsInFlight { get; set; } = 2;

    /// <summary>PostgreSQL connection string for the server store; null or empty: SQLite in <see cref="DataDir"/>.</summary>
    public string? PostgresConnectionString { get; set; }

    /// <summary>Largest accepted request body.</summary>
    public long MaxRequestBodyBytes { get; set; } = 1024 * 1024;

    /// <summary>Per-client rate limit (token bucket refilled every second; client = bearer token, else IP address).</summary>
    public int RateLimitPerSecond { get; set; } = 5000;

    /// <summary>Burst size of the per-client token bucket.</summary>
    public int RateLimitBurst { get; set; } = 10000;

    /// <summary>Deadline for one API request.</summary>
    public int RequestTimeoutSeconds { get; set; } = 30;

    /// <summary>
    /// Serve GET /metrics without a token. Off by default: metrics carry key names and node health, so a scraper
    /// presents the metrics token (server data folder, file metrics-token), which can read nothing else.
    /// </summary>
    public bool OpenMetrics { get; set; }

    /// <summary>Audit appends the API may have in flight; a request beyond waits for a slot (backpressure).</summary>
    public int AuditMaxInFlight { get; set; } = 4096;

    /// <summary>Window over which repeated refused requests (same client address and action) are counted into one audit entry.</summary>
    public int DenialAuditWindowSeconds { get; set; } = 5;

    /// <summary>
    /// How long a policy decision may use the documents an earlier one read (PolicyEngine.Refresh): a change made through
    /// this server applies to its next request, one made by another replica within this time. 0: read at every decision.
    /// </summary>
    public int PolicyRefreshMilliseconds { get; set; } = 1000;

    /// <summary>
    /// The EIP-155 chain id /rpc reports for <c>eth_chainId</c> (and assumes for a transaction that names none).
    /// Default 1 (Ethereum mainnet): set the venue's chain.
    /// </summary>
    public long ChainId { get; set; } = 1;

    /// <summary>
    /// Let <c>eth_signTransaction</c> sign a legacy transaction without a chain id (pre-EIP-155, valid on every EVM
    /// chain). Off by default.
    /// </summary>
    public bool AllowUnprotectedTransactions { get; set; }

    /// <summary>
    /// JSON-RPC nodes per chain (decimal chain id → http(s) URL), for /rpc's forwarded read methods, eth_sendTransaction and
    /// POST /v1/keys/{name}/ethereum/transactions (docs/VENUE.md). Absent: nothing is forwarded or sent.
    /// </summary>
    public Dictionary<string, string>? Upstreams { get; set; }

    /// <summary>Seconds an upstream JSON-RPC call may take.</summary>
    public int UpstreamTimeoutSeconds { get; set; } = 10;

    /// <summary>The validated <see cref="Upstreams"/>.</summary>
    public IReadOnlyDictionary<long, Uri> UpstreamUrls()
    {
        var result = new Dictionary<long, Uri>();
        foreach ((string chain, string url) in Upstreams ?? [])
        {
            if (!long.TryParse(chain, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long id) || id is < 1 or > 0xFFFF_FFFF_FFFF
                || id.ToString(System.Globalization.CultureInfo.InvariantCulture) != chain)
            {
                throw new ConfigException("upstreams: each key must be a decimal chain id between 1 and 281474976710655");
            }

            if (!Uri.TryCreate(url, UriKind.Absolute, out Uri? u) || (u.Scheme != Uri.UriSchemeHttp && u.Scheme != Uri.UriSchemeHttps) || !string.IsNullOrEmpty(u.UserInfo))
            {
                throw new ConfigException($"upstreams: the URL for chain {chain} must be an absolute http or https URL without credentials");
            }

            result[id] = u;
        }

        return result;
    }

    /// <summary>
    /// Safe 1.4.1 contracts per chain (decimal chain id → <c>singleton</c>, <c>proxyFactory</c> and optionally
    /// <c>fallbackHandler</c>, each a 0x address), used when <c>POST /v1/safes</c> deploys a Safe (docs/VENUE.md
    /// "Deploying a Safe"). Absent: a deployment request must name the singleton and the factory itself.
    /// </summary>
    public Dictionary<string, SafeContracts>? SafeContracts { get; set; }

    /// <summary>The validated <see cref="SafeContracts"/>: chain id → (singleton, proxy factory, fallback handler or zero), 20 bytes each.</summary>
    public IReadOnlyDictionary<long, (byte[] Singleton, byte[] ProxyFactory, byte[] FallbackHandler)> SafeContractAddresses()
    {
        var result = new Dictionary<long, (byte[], byte[], byte[])>();
        foreach ((string chain, var c) in SafeContracts ?? [])
        {
            if (!long.TryParse(chain, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long id) || id is < 1 or > 0xFFFF_FFFF_FFFF
                || id.ToString(System.Globalization.CultureInfo.InvariantCulture) != chain)
            {
                throw new ConfigException("safeContracts: each key must be a decimal chain id between 1 and 281474976710655");
            }

            byte[] Address(string? text, string member, bool required)
            {
                if (text is null && !required)
                {
                    return new byte[20];
                }

                return Conclave.Chains.Ethereum.EthereumAddress.TryParse(text, out byte[] a) ? a
                    : throw new ConfigException($"safeContracts.{chain}.{member} must be a 0x-prefixed 20-byte address (a mixed-case one with a valid EIP-55 checksum)");
            }

            result[id] = (Address(c.Singleton, "singleton", true), Address(c.ProxyFactory, "proxyFactory", true), Address(c.FallbackHandler, "fallbackHandler", false));
        }

        return result;
    }

    [JsonIgnore]
    /// <summary>
    /// The PKCS#11 token the server holds a session to, for <c>hsm-ecdsa-secp256k1</c> and <c>hsm-ed25519</c> keys
    /// (docs/HSM.md "Keys through the server"): modulePath, tokenLabel, pinFile or pinEnvironmentVariable, sessionPoolSize.
    /// </summary>
    public Conclave.Node.Config.HsmSettings? Hsm { get; set; }

    /// <summary>HTTPS for the API: the server certificate and its key (PEM). Without it the API speaks plain HTTP.</summary>
    public ApiTlsFiles? ApiTls { get; set; }

    /// <summary>
    /// Plain HTTP on a listen address that is not loopback is refused unless this is true (for a TLS-terminating proxy on
    /// the same private network): bearer tokens and signatures would otherwise cross the network in clear.
    /// </summary>
    public bool AllowInsecureHttp { get; set; }

    /// <summary>
    /// DKLs23 presignatures the coordinator keeps per (key version, signer set, derivation path), refilled in the background
    /// (docs/DKLS23.md "Presignature pool"); 0 (the default) turns presigning off and every signature runs three rounds.
    /// </summary>
    public int DklsPresignPoolSize { get; set; }

    /// <summary>Entries between signed audit checkpoints of a new audit log (a log keeps the interval it was first signed with).</summary>
    public int AuditCheckpointInterval { get; set; } = 1000;

    /// <summary>Risk-level thresholds, cool-down, lockdown-exit approvers (docs/OPERATIONS.md "Risk levels"); absent: the defaults.</summary>
    public Conclave.Server.Risk.RiskSettings? Risk { get; set; }

    /// <summary>
    /// Whether the admin token's signing requests are decided by policy like anyone's (true, the default) or always
    /// refused (false): docs/POLICY.md "Enforcement".
    /// </summary>
    public bool AdminSigning { get; set; } = true;

    /// <summary>
    /// A policy document (file, relative to server.json) installed into the store at start when the store has no policy
    /// with its id: `conclave up` writes server/starter-policy.json, which lets the admin sign. A production server.json
    /// names none, so the server starts with no policy and denies every signature until one is put.
    /// </summary>
    public string? StarterPolicy { get; set; }

    /// <summary>Who approves policy changes, the loosening quorum and time lock (docs/POLICY.md "Changing policies").</summary>
    public Conclave.Server.Policy.PolicyChangeSettings? PolicyChanges { get; set; }

    /// <summary>Venue profile files (JSON, docs/POLICY.md "Venue profiles"), relative to server.json.</summary>
    public List<string>? VenueProfiles { get; set; }

    public string BaseDirectory { get; private set; } = "";

    public string Resolve(string path) => Path.IsPathRooted(path) ? path : Path.GetFullPath(Path.Combine(BaseDirectory, path));

    public static ServerConfig Load(string path)
    {
        if (!File.Exists(path))
        {
            throw new ConfigException($"server config file not found: {path}");
        }

        ServerConfig? config;
        try
        {
            config = JsonSerializer.Deserialize(File.ReadAllText(path), ServerConfigJsonContext.Default.ServerConfig);
        }
        catch (JsonException e)
        {
            throw new ConfigException($"server config {path} is not valid JSON: {e.Message}");
        }

        if (config is null)
        {
            throw new ConfigException($"server config {path} is empty");
        }

        config.BaseDirectory = Path.GetDirectoryName(Path.GetFullPath(path)) ?? ".";
        config.Validate();
        return config;
    }

    public void Save(string path) => Conclave.Storage.OwnerOnly.WriteAllText(path, JsonSerializer.Serialize(this, ServerConfigJsonContext.Default.ServerConfig));

    public void Validate()
    {
        _ = ListenEndpoint.Parse(Listen);
        if (string.IsNullOrWhiteSpace(DataDir) || string.IsNullOrWhiteSpace(Cluster) || string.IsNullOrWhiteSpace(KekFile))
        {
            throw new ConfigException("dataDir, cluster and kekFile are required");
        }

        if (Threshold < 1)
        {
            throw new ConfigException("threshold must be at least 1");
        }

        if (DklsPresignPoolSize is < 0 or > 1024)
        {
            throw new ConfigException("dklsPresignPoolSize must be between 0 and 1024");
        }

        if (SignStepsInFlight is < 1 or > 512)
        {
            throw new ConfigException("signStepsInFlight must be between 1 and 512");
        }

        if (NodeTransport is not ("frames" or "grpc"))
        {
            throw new ConfigException("nodeTransport must be \"frames\" or \"grpc\"");
        }

        if (RoundTimeoutMilliseconds is < 10 or > 600_000)
        {
            throw new ConfigException("roundTimeoutMilliseconds must be between 10 and 600000");
        }

        if (MaxRequestBodyBytes is < 1024 or > 64L * 1024 * 1024)
        {
            throw new ConfigException("maxRequestBodyBytes must be between 1024 and 67108864");
        }

        if (RateLimitPerSecond < 1 || RateLimitBurst < 1)
        {
            throw new ConfigException("rateLimitPerSecond and rateLimitBurst must be at least 1");
        }

        if (RequestTimeoutSeconds is < 1 or > 3600)
        {
            throw new ConfigException("requestTimeoutSeconds must be between 1 and 3600");
        }

        if (AuditMaxInFlight is < 1 or > 1_000_000)
        {
            throw new ConfigException("auditMaxInFlight must be between 1 and 1000000");
        }

        if (PolicyRefreshMilliseconds is < 0 or > 60_000)
        {
            throw new ConfigException("policyRefreshMilliseconds must be between 0 and 60000");
        }

        if (DenialAuditWindowSeconds is < 1 or > 3600)
        {
            throw new ConfigException("denialAuditWindowSeconds must be between 1 and 3600");
        }

        if (ChainId is < 1 or > 0xFFFF_FFFF_FFFF)
        {
            throw new ConfigException("chainId must be between 1 and 281474976710655");
        }

        _ = UpstreamUrls();
        _ = SafeContractAddresses();
        if (UpstreamTimeoutSeconds is < 1 or > 300)
        {
            throw new ConfigException("upstreamTimeoutSeconds must be between 1 and 300");
        }

        Tls.Validate();
        if (AuditCheckpointInterval is < 1 or > 1_000_000)
        {
            throw new ConfigException("auditCheckpointInterval must be between 1 and 1000000");
        }

        Risk?.Validate();
        _ = Conclave.Server.Risk.PriceFeed.FromSettings(Risk?.PriceFeeds, UpstreamUrls());
        PolicyChanges?.Validate();
        if (ApiTls is not null && (string.IsNullOrWhiteSpace(ApiTls.Certificate) || string.IsNullOrWhiteSpace(ApiTls.Key)))
        {
            throw new ConfigException("apiTls.certificate and apiTls.key are required when apiTls is given");
        }
    }
}

/// <summary>A chain's Safe 1.4.1 contracts (server.json <c>safeContracts</c>): the singleton, the proxy factory and an optional fallback handler.</summary>
public sealed class SafeContracts
{
    public string? Singleton { get; set; }

    public string? ProxyFactory { get; set; }

    public string? FallbackHandler { get; set; }
}

/// <summary>The API's HTTPS certificate and key (PEM files, relative to server.json).</summary>
public sealed class ApiTlsFiles
{
    public string Certificate { get; set; } = "";

    public string Key { get; set; } = "";

    /// <summary>
    /// The CA (PEM, normally the cluster CA <c>../pki/ca.crt</c>) whose client certificates authenticate agents: when set,
    /// the listener requests (does not require) a client certificate (docs/POLICY.md "Mutual TLS").
    /// </summary>
    public string? ClientCa { get; set; }
}

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, ReadCommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true)]
[JsonSerializable(typeof(ServerConfig))]
internal sealed partial class ServerConfigJsonContext : JsonSerializerContext;
