namespace Conclave.Server.Threshold.Engine;

/// <summary>
/// A threshold key as the engine sees it, whatever the protocol: its id, the key version the shares belong to, the
/// threshold and the nodes holding shares. Public data only; a protocol's own key type (FrostKeyInfo) adds the rest.
/// </summary>
public interface IThresholdKey
{
    string KeyId { get; }

    /// <summary>The key version the holders' shares belong to (1 after key generation, +1 per refresh or reshare).</summary>
    int Version { get; }

    /// <summary>How many holders a signature needs.</summary>
    int Threshold { get; }

    /// <summary>The node ids holding shares of this version.</summary>
    IReadOnlyList<uint> Nodes { get; }
}
