using System.Collections.Frozen;
using Conclave.Crypto.Ed25519;
using Conclave.Crypto.Secp256k1;

namespace Conclave.Crypto.Signing;

/// <summary>The single-key schemes of Conclave.Crypto, by name. Other libraries list their own schemes the same way.</summary>
public static class SignatureSchemes
{
    public static EcdsaSecp256k1 EcdsaSecp256k1 => Secp256k1.EcdsaSecp256k1.Instance;

    public static SchnorrBip340 SchnorrBip340 => Secp256k1.SchnorrBip340.Instance;

    public static Ed25519Signature Ed25519 => Ed25519Signature.Instance;

    public static IReadOnlyList<SoftwareSignatureScheme> SingleKey { get; } = [EcdsaSecp256k1, SchnorrBip340, Ed25519];

    private static readonly FrozenDictionary<string, SoftwareSignatureScheme> s_byName =
        SingleKey.ToFrozenDictionary(s => s.Name, StringComparer.Ordinal);

    public static bool TryGet(string name, out SoftwareSignatureScheme? scheme) => s_byName.TryGetValue(name, out scheme);
}
