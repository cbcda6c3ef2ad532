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

    [JsonIgnore]
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

    public void Save(string path) => File.WriteAllText(path, JsonSerializer.Serialize(this, ServerConfigJsonContext.Default.ServerConfig));

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

        if (RoundTimeoutMilliseconds is < 10 or > 600_000)
        {
            throw new ConfigException("roundTimeoutMilliseconds must be between 10 and 600000");
        }

        Tls.Validate();
    }
}

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, ReadCommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true)]
[JsonSerializable(typeof(ServerConfig))]
internal sealed partial class ServerConfigJsonContext : JsonSerializerContext;
