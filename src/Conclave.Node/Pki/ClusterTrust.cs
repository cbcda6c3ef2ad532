using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace Conclave.Node.Pki;

/// <summary>
/// Validates peer certificates against the cluster CA only (custom root trust; the system store is ignored),
/// for both directions of the mutual-TLS link between the coordinator and the nodes.
/// </summary>
public sealed class ClusterTrust
{
    private readonly X509Certificate2 _ca;

    public ClusterTrust(X509Certificate2 ca)
    {
        ArgumentNullException.ThrowIfNull(ca);
        _ca = ca;
    }

    /// <summary>True when the certificate chains to the cluster CA, is within its validity period and carries the EKU.</summary>
    public bool Validate(X509Certificate2? certificate, string requiredEku)
    {
        if (certificate is null)
        {
            return false;
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(_ca);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.ApplicationPolicy.Add(new System.Security.Cryptography.Oid(requiredEku));
        chain.ChainPolicy.VerificationFlags = X509VerificationFlags.NoFlag;
        if (!chain.Build(certificate))
        {
            return false;
        }

        // The chain must end at exactly our CA.
        X509Certificate2 root = chain.ChainElements[^1].Certificate;
        return root.RawDataMemory.Span.SequenceEqual(_ca.RawDataMemory.Span);
    }

    public const string ServerAuthEku = "1.3.6.1.5.5.7.3.1";
    public const string ClientAuthEku = "1.3.6.1.5.5.7.3.2";

    /// <summary>For a TLS client (the coordinator) checking a node's server certificate.</summary>
    public bool ValidateServer(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        // Name mismatch is tolerated only because we pin the CA and nodes are addressed by IP; everything else must pass.
        return certificate is not null && Validate(certificate as X509Certificate2 ?? new X509Certificate2(certificate), ServerAuthEku);
    }
}
