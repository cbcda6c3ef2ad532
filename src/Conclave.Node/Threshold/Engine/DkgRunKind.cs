namespace Conclave.Node.Threshold.Engine;

/// <summary>What a rotation run does to a key on a node (the DKG engine's kinds, and repair).</summary>
public enum DkgRunKind : uint
{
    /// <summary>A new key (the FROST paper's DKG).</summary>
    KeyGeneration = 0,

    /// <summary>New shares of the same key, same threshold and participants (proactive refresh).</summary>
    Refresh = 1,

    /// <summary>The same key moved to a new committee and threshold.</summary>
    Reshare = 2,

    /// <summary>A lost share rebuilt at the key's current version by t helpers (no DKG: the repair run's rounds).</summary>
    Repair = 3,
}
