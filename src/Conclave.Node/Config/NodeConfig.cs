using System.Text.Json;
using System.Text.Json.Serialization;

namespace Conclave.Node.Config;

/// <summary>
/// A signer node's configuration file (JSON). Relative paths are resolved against the file's folder.
/// <code>
/// {
///   "nodeId": 1,
///   "listen": "127.0.0.1:7101",
///   "dataDir": "node-1",
///   "tls": { "certificate": "node-1.crt", "key": "node-1.key", "ca": "ca.crt" },
///   "kekFile": "node-1.kek",
///   "cluster": "cluster.json"
/// }
/// </code>
/// </summary>
public sealed class NodeConfig
{
    public uint NodeId { get; set; }

    public string Listen { get; set; } = "127.0.0.1:7101";

    public string DataDir { get; set; } = "";

    public TlsFiles Tls { get; set; } = new();

    /// <summary>A 32-byte key-encryption key file (owner-only permissions) that seals the node's secrets.</summary>
    public string KekFile { get; set; } = "";

    /// <summary>The cluster manifest: the coordinator's and every node's public identity (see <see cref="ClusterManifest"/>).</summary>
    public string Cluster { get; set; } = "";

    /// <summary>
    /// Optional: seal the node's store under an AES key inside this PKCS#11 token (the node's identity stays sealed
    /// under <see cref="KekFile"/>). The PIN comes from a file or an environment variable, never from this file.
    /// </summary>
    public HsmSettings? Hsm { get; set; }

    /// <summary>
    /// Testing only: makes this node misbehave so that tests can watch the coordinator catch it: "bad-share"
    /// (every FROST signature share is altered after it is computed), "bad-dkls-round1" (the last bit of every DKLs23
    /// signing round-one message, in the OT-extension check value, is flipped before it is sealed) or "bad-dkls-round2"
    /// (a bit of every DKLs23 signing round-two message is flipped before it is sealed to its peer). Never set it in production; a node
    /// with it set says so in a warning at start.
    /// </summary>
    public string? FaultInjection { get; set; }

    /// <summary>How far a message's timestamp may lie from the node's clock.</summary>
    public int MessageValiditySeconds { get; set; } = 120;

    /// <summary>Entries between signed audit checkpoints of a new audit log (1 to 1,000,000; a log keeps the interval it was first signed with).</summary>
    public int AuditCheckpointInterval { get; set; } = 1000;

    [JsonIgnore]
    public string BaseDirectory { get; private set; } = "";

    public string Resolve(string path) => Path.IsPathRooted(path) ? path : Path.GetFullPath(Path.Combine(BaseDirectory, path));

    public static NodeConfig Load(string path)
    {
        if (!File.Exists(path))
        {
            throw new ConfigException($"node config file not found: {path}");
        }

        NodeConfig? config;
        try
        {
            config = JsonSerializer.Deserialize(File.ReadAllText(path), ConfigJsonContext.Default.NodeConfig);
        }
        catch (JsonException e)
        {
            throw new ConfigException($"node config {path} is not valid JSON: {e.Message}");
        }

        if (config is null)
        {
            throw new ConfigException($"node config {path} is empty");
        }

        config.BaseDirectory = Path.GetDirectoryName(Path.GetFullPath(path)) ?? ".";
        config.Validate();
        return config;
    }

    public void Save(string path) => Conclave.Storage.OwnerOnly.WriteAllText(path, JsonSerializer.Serialize(this, ConfigJsonContext.Default.NodeConfig));

    public void Validate()
    {
        if (NodeId == 0 || NodeId > 255)
        {
            throw new ConfigException("nodeId must be between 1 and 255");
        }

        if (string.IsNullOrWhiteSpace(DataDir))
        {
            throw new ConfigException("dataDir is required");
        }

        if (string.IsNullOrWhiteSpace(KekFile))
        {
            throw new ConfigException("kekFile is required");
        }

        if (string.IsNullOrWhiteSpace(Cluster))
        {
            throw new ConfigException("cluster (the path of the cluster manifest) is required");
        }

        Tls.Validate();
        ListenEndpoint listen = ListenEndpoint.Parse(Listen);
        if (FaultInjection is not (null or "bad-share" or "bad-dkls-round1" or "bad-dkls-round2" or "dkls-equivocate"))
        {
            throw new ConfigException("faultInjection must be absent (or, in tests only, \"bad-share\", \"bad-dkls-round1\", \"bad-dkls-round2\" or \"dkls-equivocate\")");
        }

        // A misbehaving node is for tests on one machine: refuse it anywhere a real cluster could reach it.
        if (FaultInjection is not null && !(listen.Host == "localhost" || (System.Net.IPAddress.TryParse(listen.Host, out System.Net.IPAddress? ip) && System.Net.IPAddress.IsLoopback(ip))))
        {
            throw new ConfigException($"faultInjection is for tests on loopback only; this node listens on {Listen}: remove faultInjection");
        }
    }

    internal static bool IsHex(string s) => s.All(Uri.IsHexDigit);
}

public sealed class TlsFiles
{
    public string Certificate { get; set; } = "";

    public string Key { get; set; } = "";

    public string Ca { get; set; } = "";

    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Certificate) || string.IsNullOrWhiteSpace(Key) || string.IsNullOrWhiteSpace(Ca))
        {
            throw new ConfigException("tls.certificate, tls.key and tls.ca are required");
        }
    }
}

/// <summary>The HSM section of a node config (see docs/HSM.md).</summary>
public sealed class HsmSettings
{
    public string ModulePath { get; set; } = "";

    public string TokenLabel { get; set; } = "";

    public string? PinFile { get; set; }

    public string? PinEnvironmentVariable { get; set; }

    public int SessionPoolSize { get; set; } = Conclave.Hsm.HsmOptions.DefaultSessionPoolSize;

    /// <summary>The id of the wrapping key in the token (created on first start).</summary>
    public string KekId { get; set; } = "";

    public Conclave.Hsm.HsmOptions ToOptions(Func<string, string> resolve) => new()
    {
        ModulePath = ModulePath,
        TokenLabel = TokenLabel,
        PinFile = PinFile is null ? null : resolve(PinFile),
        PinEnvironmentVariable = PinEnvironmentVariable,
        SessionPoolSize = SessionPoolSize,
    };
}

/// <summary>host:port, IPv4 or bracketed IPv6.</summary>
public readonly record struct ListenEndpoint(string Host, int Port)
{
    public static ListenEndpoint Parse(string value)
    {
        int colon = value.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(value.AsSpan(colon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int port) || port is < 1 or > 65535)
        {
            throw new ConfigException($"listen address '{value}' must be host:port");
        }

        return new ListenEndpoint(value[..colon].Trim('[', ']'), port);
    }

    public override string ToString() => Host.Contains(':', StringComparison.Ordinal) ? $"[{Host}]:{Port}" : $"{Host}:{Port}";
}

/// <summary>A configuration file is missing, malformed or inconsistent. The message names the field.</summary>
public sealed class ConfigException : Exception
{
    public ConfigException() { }

    public ConfigException(string message) : base(message) { }

    public ConfigException(string message, Exception innerException) : base(message, innerException) { }
}

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, ReadCommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true)]
[JsonSerializable(typeof(NodeConfig))]
[JsonSerializable(typeof(ClusterManifest))]
[JsonSerializable(typeof(Conclave.Node.Protocol.NodeKeyRotationStatement))]
[JsonSerializable(typeof(Conclave.Node.Protocol.CoordinatorKeyRotationStatement))]
internal sealed partial class ConfigJsonContext : JsonSerializerContext;
