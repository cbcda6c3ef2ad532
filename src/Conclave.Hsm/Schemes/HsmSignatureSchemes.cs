using System.Collections.Frozen;

namespace Conclave.Hsm.Schemes;

/// <summary>The HSM schemes by name (as <c>SignatureSchemes</c> lists the single-key software schemes).</summary>
public static class HsmSignatureSchemes
{
    public static HsmEcdsaSecp256k1 EcdsaSecp256k1 => HsmEcdsaSecp256k1.Instance;

    public static HsmEd25519 Ed25519 => HsmEd25519.Instance;

    public static IReadOnlyList<HsmSignatureScheme> All { get; } = [EcdsaSecp256k1, Ed25519];

    private static readonly FrozenDictionary<string, HsmSignatureScheme> s_byName =
        All.ToFrozenDictionary(s => s.Name, StringComparer.Ordinal);

    public static bool TryGet(string name, out HsmSignatureScheme? scheme) => s_byName.TryGetValue(name, out scheme);
}
