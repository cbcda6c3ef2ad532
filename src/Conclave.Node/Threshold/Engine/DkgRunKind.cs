namespace Conclave.Node.Threshold.Engine;

/// <summary>What a DKG-engine run does to a key.</summary>
public enum DkgRunKind : uint
{
    /// <summary>A new key (the FROST paper's DKG).</summary>
    KeyGeneration = 0,

    /// <summary>New shares of the same key, same threshold and participants (proactive refresh).</summary>
    Refresh = 1,

    /// <summary>The same key moved to a new committee and threshold.</summary>
    Reshare = 2,
}
