namespace Conclave.Threshold.Dkls23;

/// <summary>The key scheme name of DKLs23 threshold ECDSA keys on secp256k1.</summary>
public static class DklsScheme
{
    /// <summary>"ecdsa-dkls23": t-of-n threshold ECDSA (DKLs23, ePrint 2023/765) over secp256k1, shares from the FROST DKG.</summary>
    public const string Name = "ecdsa-dkls23";
}
