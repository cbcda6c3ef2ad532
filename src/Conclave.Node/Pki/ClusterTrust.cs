using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Conclave.Node.Config;

namespace Conclave.Node.Pki;

/// <summary>
/// Validates peer certificates against the cluster CA only (custom root trust; the system store is ignored),
/// for both directions of the mutual-TLS link between the coordinator and the nodes. The CA may be a bundle that
/// follows its file (<see cref="TrustRoots"/>): while the CA is rotated, a certificate from either CA is accepted
/// (docs/ROTATION.md "Rotating the cluster CA"). With a cluster manifest, a certificate the manifest revokes is refused
/// from its <see cref="RevokedCertificate.RefusedFromUnixMs"/> on (docs/ROTATION.md "Rotating TLS certificates"); the
/// manifest file is re-read through the watch.
/// </summary>
public sealed class ClusterTrust
{
    private readonly TrustRoots _roots;
    private readonly ClusterManifest? _manifest;
    private readonly ManifestWatch? _watch;
    private readonly TimeProvider _clock;

    /// <summary>Trusts exactly <paramref name="ca"/> (the caller's certificate).</summary>
    public ClusterTrust(X509Certificate2 ca, ClusterManifest? manifest = null, ManifestWatch? watch = null, TimeProvider? clock = null)
        : this(TrustRoots.Fixed(ca ?? throw new ArgumentNullException(nameof(ca))), manifest, watch, clock)
    {
    }

    /// <summary>Trusts the CA certificates of <paramref name="roots"/> as they are at each validation.</summary>
    public ClusterTrust(TrustRoots roots, ClusterManifest? manifest = null, ManifestWatch? watch = null, TimeProvider? clock = null)
    {
        _roots = roots ?? throw new ArgumentNullException(nameof(roots));
        _manifest = manifest;
        _watch = watch;
        _clock = clock ?? TimeProvider.System;
    }

    /// <summary>The CA certificates trusted now.</summary>
    public IReadOnlyList<X509Certificate2> Roots => _roots.Current;

    /// <summary>True when the certificate chains to the cluster CA, is within its validity period, carries the EKU and is not revoked.</summary>
    public bool Validate(X509Certificate2? certificate, string requiredEku)
    {
        if (certificate is null)
        {
            return false;
        }

        IReadOnlyList<X509Certificate2> roots = _roots.Current;
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        foreach (X509Certificate2 root in roots)
        {
            chain.ChainPolicy.CustomTrustStore.Add(root);
        }

        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.ApplicationPolicy.Add(new Oid(requiredEku));
        chain.ChainPolicy.VerificationFlags = X509VerificationFlags.NoFlag;
        chain.ChainPolicy.VerificationTime = _clock.GetUtcNow().UtcDateTime;
        if (!chain.Build(certificate))
        {
            return false;
        }

        // The chain must end at exactly one of our CAs.
        X509Certificate2 end = chain.ChainElements[^1].Certificate;
        if (!roots.Any(r => end.RawDataMemory.Span.SequenceEqual(r.RawDataMemory.Span)))
        {
            return false;
        }

        return !IsRevoked(certificate);
    }

    /// <summary>True when the cluster manifest refuses this certificate now (its overlap after a rotation has ended).</summary>
    public bool IsRevoked(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        if (_manifest is null)
        {
            return false;
        }

        _watch?.Refresh();
        return _manifest.IsCertificateRefused(Sha256Of(certificate), _clock.GetUtcNow().ToUnixTimeMilliseconds());
    }

    /// <summary>SHA-256 of the certificate's DER encoding: the thumbprint the manifest and the CLI name certificates by.</summary>
    public static byte[] Sha256Of(X509Certificate certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        return certificate.GetCertHash(HashAlgorithmName.SHA256);
    }

    public const string ServerAuthEku = "1.3.6.1.5.5.7.3.1";
    public const string ClientAuthEku = "1.3.6.1.5.5.7.3.2";

    /// <summary>For a TLS client (the coordinator) checking a node's server certificate.</summary>
    public bool ValidateServer(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        // Name mismatch is tolerated only because we pin the CA and nodes are addressed by IP; everything else must pass.
        return certificate is not null && Validate(certificate as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()), ServerAuthEku);
    }
}
