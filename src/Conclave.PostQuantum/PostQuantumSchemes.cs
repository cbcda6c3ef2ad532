using System.Collections.Frozen;
using Conclave.Crypto.Signing;

namespace Conclave.PostQuantum;

/// <summary>
/// The post-quantum and hybrid schemes of Conclave.PostQuantum, by name (the names of DESIGN.md "Key schemes").
/// The instances here sign with the empty context and hedged randomness.
/// </summary>
public static class PostQuantumSchemes
{
    public static MlDsaSignatureScheme MlDsa44 => MlDsaSignatureScheme.MlDsa44;

    public static MlDsaSignatureScheme MlDsa65 => MlDsaSignatureScheme.MlDsa65;

    public static MlDsaSignatureScheme MlDsa87 => MlDsaSignatureScheme.MlDsa87;

    public static SlhDsaSignatureScheme SlhDsaSha2_128s => SlhDsaSignatureScheme.Sha2_128s;

    public static SlhDsaSignatureScheme SlhDsaShake_128f => SlhDsaSignatureScheme.Shake_128f;

    public static HybridSignatureScheme HybridEd25519MlDsa65 => HybridSignatureScheme.Ed25519MlDsa65;

    public static HybridSignatureScheme HybridEcdsaMlDsa65 => HybridSignatureScheme.EcdsaSecp256k1MlDsa65;

    public static IReadOnlyList<MlDsaSignatureScheme> MlDsa { get; } = [MlDsa44, MlDsa65, MlDsa87];

    /// <summary>All twelve FIPS 205 parameter sets.</summary>
    public static IReadOnlyList<SlhDsaSignatureScheme> SlhDsa { get; } =
    [
        SlhDsaSignatureScheme.Sha2_128s, SlhDsaSignatureScheme.Sha2_128f,
        SlhDsaSignatureScheme.Sha2_192s, SlhDsaSignatureScheme.Sha2_192f,
        SlhDsaSignatureScheme.Sha2_256s, SlhDsaSignatureScheme.Sha2_256f,
        SlhDsaSignatureScheme.Shake_128s, SlhDsaSignatureScheme.Shake_128f,
        SlhDsaSignatureScheme.Shake_192s, SlhDsaSignatureScheme.Shake_192f,
        SlhDsaSignatureScheme.Shake_256s, SlhDsaSignatureScheme.Shake_256f,
    ];

    public static IReadOnlyList<HybridSignatureScheme> Hybrid { get; } = [HybridEd25519MlDsa65, HybridEcdsaMlDsa65];

    /// <summary>Every scheme of this library, ML-DSA first.</summary>
    public static IReadOnlyList<SoftwareSignatureScheme> All { get; } = [.. MlDsa, .. SlhDsa, .. Hybrid];

    private static readonly FrozenDictionary<string, SoftwareSignatureScheme> s_byName =
        All.ToFrozenDictionary(s => s.Name, StringComparer.Ordinal);

    public static bool TryGet(string name, out SoftwareSignatureScheme? scheme) => s_byName.TryGetValue(name, out scheme);
}
