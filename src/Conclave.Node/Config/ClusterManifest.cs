using System.Text.Json;

namespace Conclave.Node.Config;

/// <summary>
/// The public description of a cluster, the same file on every host: the coordinator's identity key and, per node,
/// its id, address, identity key and certified agreement key. Nodes pin their peers' and the coordinator's keys
/// from this file, so a coordinator cannot impersonate a node or substitute keys. `conclave up` writes it;
/// on separate hosts the operator assembles it from `conclave node init` output (docs/OPERATIONS.md).
/// </summary>
public sealed class ClusterManifest
{
    public string CoordinatorIdentityKey { get; set; } = "";

    public List<ClusterNode> Nodes { get; set; } = [];

    public static ClusterManifest Load(string path)
    {
        if (!File.Exists(path))
        {
            throw new ConfigException($"cluster manifest not found: {path}");
        }

        ClusterManifest? m;
        try
        {
            m = JsonSerializer.Deserialize(File.ReadAllText(path), ConfigJsonContext.Default.ClusterManifest);
        }
        catch (JsonException e)
        {
            throw new ConfigException($"cluster manifest {path} is not valid JSON: {e.Message}");
        }

        if (m is null)
        {
            throw new ConfigException($"cluster manifest {path} is empty");
        }

        m.Validate();
        return m;
    }

    public void Save(string path) => Conclave.Storage.OwnerOnly.WriteAllText(path, JsonSerializer.Serialize(this, ConfigJsonContext.Default.ClusterManifest));

    public void Validate()
    {
        RequireHex(CoordinatorIdentityKey, 32, "coordinatorIdentityKey");
        if (Nodes.Count == 0)
        {
            throw new ConfigException("cluster manifest lists no nodes");
        }

        var ids = new HashSet<uint>();
        foreach (ClusterNode n in Nodes)
        {
            if (n.Id == 0 || n.Id > 255 || !ids.Add(n.Id))
            {
                throw new ConfigException($"cluster manifest: node id {n.Id} is zero, above 255 or listed twice");
            }

            _ = ListenEndpoint.Parse(n.Address);
            RequireHex(n.IdentityKey, 32, $"nodes[{n.Id}].identityKey");
            RequireHex(n.AgreementKey, 32, $"nodes[{n.Id}].agreementKey");
            RequireHex(n.AgreementKeySignature, 64, $"nodes[{n.Id}].agreementKeySignature");
            if (!Protocol.NodeIdentity.VerifyAgreementKey(n.Id, Convert.FromHexString(n.IdentityKey), Convert.FromHexString(n.AgreementKey), Convert.FromHexString(n.AgreementKeySignature)))
            {
                throw new ConfigException($"cluster manifest: the agreement key of node {n.Id} is not signed by its identity key");
            }
        }
    }

    public ClusterNode Node(uint id) => Nodes.FirstOrDefault(n => n.Id == id) ?? throw new ConfigException($"node {id} is not in the cluster manifest");

    private static void RequireHex(string value, int bytes, string field)
    {
        if (value.Length != bytes * 2 || !NodeConfig.IsHex(value))
        {
            throw new ConfigException($"{field} must be {bytes * 2} hex characters");
        }
    }
}

public sealed class ClusterNode
{
    public uint Id { get; set; }

    public string Address { get; set; } = "";

    public string IdentityKey { get; set; } = "";

    public string AgreementKey { get; set; } = "";

    public string AgreementKeySignature { get; set; } = "";
}
