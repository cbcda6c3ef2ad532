using Conclave.Hsm.Schemes;

namespace Conclave.Hsm;

/// <summary>
/// How a token protects a private key (PKCS#11 v2.40 base spec section 4.9, common private and secret key attributes).
/// Conclave uses only keys that are sensitive and not extractable; always-sensitive and never-extractable together
/// show the key was generated in the token and never existed outside it.
/// </summary>
public sealed record HsmKeyProtection(bool Sensitive, bool Extractable, bool AlwaysSensitive, bool NeverExtractable)
{
    /// <summary>True when the token refuses to reveal the key, and always has.</summary>
    public bool GeneratedInsideAndNeverExportable => Sensitive && !Extractable && AlwaysSensitive && NeverExtractable;
}

/// <summary>A signing key found on a token: its Conclave id, scheme, public key and protection.</summary>
public sealed record HsmKeyInfo(string Id, HsmSignatureScheme Scheme, byte[] PublicKey, HsmKeyProtection Protection)
{
    public override string ToString() => $"{Id} {Scheme.Name} {Convert.ToHexStringLower(PublicKey)}";
}
