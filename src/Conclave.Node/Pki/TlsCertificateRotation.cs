using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Conclave.Node.Config;

namespace Conclave.Node.Pki;

/// <summary>
/// Replaces a cluster TLS certificate (a node's, or the coordinator's client certificate) with a new one from the
/// cluster CA, and revokes the old one in the cluster manifest after an overlap (docs/ROTATION.md "Rotating TLS
/// certificates"). The new certificate has the old one's subject common name, usages and names, and a new key. The
/// running node or server picks the new files up by itself (<see cref="ReloadingCertificate"/>).
/// </summary>
public static class TlsCertificateRotation
{
    /// <summary>
    /// Issues the replacement, writes it over <paramref name="certificatePath"/> and <paramref name="keyPath"/> (the key
    /// first, each file through a temporary file renamed into place), and records the old certificate in the manifest at
    /// <paramref name="manifestPath"/> as refused from <paramref name="now"/> + <paramref name="overlap"/>. Every refusal
    /// is a <see cref="ConfigException"/> naming the file.
    /// </summary>
    public static TlsRotationResult Rotate(string certificatePath, string keyPath, string caCertificatePath, string caKeyPath, string manifestPath,
        TimeSpan overlap, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(certificatePath);
        ArgumentNullException.ThrowIfNull(keyPath);
        ArgumentNullException.ThrowIfNull(caCertificatePath);
        ArgumentNullException.ThrowIfNull(caKeyPath);
        ArgumentNullException.ThrowIfNull(manifestPath);
        if (overlap < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(overlap), "the overlap must not be negative");
        }

        foreach ((string path, string what) in new[] { (certificatePath, "certificate"), (caCertificatePath, "cluster CA certificate") })
        {
            if (!File.Exists(path))
            {
                throw new ConfigException($"{what} not found: {path}");
            }
        }

        if (!File.Exists(caKeyPath))
        {
            throw new ConfigException($"the cluster CA's private key is not at {caKeyPath}: pass --ca-key, or install a certificate from your own CA in place of {certificatePath} (the running process takes it up)");
        }

        ClusterManifest manifest = ClusterManifest.Load(manifestPath);
        X509Certificate2 old;
        DevelopmentCertificateAuthority ca;
        try
        {
            old = PemFiles.LoadCertificate(certificatePath);
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException)
        {
            throw new ConfigException($"{certificatePath} does not hold a PEM certificate");
        }

        IReadOnlyList<X509Certificate2> trusted;
        try
        {
            // The CA file may hold two CAs during a CA rotation: the key names the issuing one (docs/ROTATION.md "Rotating the cluster CA").
            ca = DevelopmentCertificateAuthority.LoadFromBundle(caCertificatePath, caKeyPath);
            trusted = TrustRoots.LoadBundle(caCertificatePath);
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException or ConfigException)
        {
            old.Dispose();
            throw new ConfigException($"{caCertificatePath} and {caKeyPath} do not load as the cluster CA's certificate and key");
        }

        using (old)
        using (ca)
        {
            // Only the issuer is checked (against every trusted CA: the replacement may come from the new CA of a CA
            // rotation): an expired certificate is rotated like any other.
            bool issuedByTrusted = trusted.Any(r => old.IssuerName.RawData.AsSpan().SequenceEqual(r.SubjectName.RawData));
            foreach (X509Certificate2 r in trusted)
            {
                r.Dispose();
            }

            if (!issuedByTrusted)
            {
                throw new ConfigException($"{certificatePath} was not issued by the cluster CA {caCertificatePath}");
            }

            string commonName = old.GetNameInfo(X509NameType.SimpleName, false);
            IReadOnlyList<string> ekus = EkuOf(old);
            var dns = new List<string>();
            var addresses = new List<IPAddress>();
            if (old.Extensions.OfType<X509SubjectAlternativeNameExtension>().FirstOrDefault() is { } san)
            {
                dns.AddRange(san.EnumerateDnsNames().Where(d => !string.Equals(d, commonName, StringComparison.OrdinalIgnoreCase)));
                addresses.AddRange(san.EnumerateIPAddresses());
            }

            using X509Certificate2 fresh = ca.Issue(commonName, ekus.Contains(ClusterTrust.ServerAuthEku), ekus.Contains(ClusterTrust.ClientAuthEku), dns, addresses);
            using (ECDsa key = fresh.GetECDsaPrivateKey() ?? throw new CryptographicException("the new certificate has no ECDSA key"))
            {
                PemFiles.WriteSecretFile(keyPath, key.ExportPkcs8PrivateKeyPem());
            }

            PemFiles.WriteSecretFile(certificatePath, fresh.ExportCertificatePem());
            string oldSha = Convert.ToHexStringLower(ClusterTrust.Sha256Of(old));
            DateTimeOffset refusedFrom = now + overlap;
            if (!manifest.RevokedCertificates.Any(r => string.Equals(r.Sha256, oldSha, StringComparison.OrdinalIgnoreCase)))
            {
                manifest.RevokedCertificates.Add(new RevokedCertificate { Sha256 = oldSha, Subject = old.Subject, RefusedFromUnixMs = refusedFrom.ToUnixTimeMilliseconds() });
            }

            manifest.Validate();
            manifest.Save(manifestPath);
            return new TlsRotationResult(commonName, oldSha, Convert.ToHexStringLower(ClusterTrust.Sha256Of(fresh)), refusedFrom);
        }
    }

    private static List<string> EkuOf(X509Certificate2 certificate) =>
        certificate.Extensions.OfType<X509EnhancedKeyUsageExtension>().SelectMany(e => e.EnhancedKeyUsages.Cast<Oid>()).Select(o => o.Value!).ToList();
}

/// <summary>What <see cref="TlsCertificateRotation.Rotate"/> did: the subject, the old and new certificates' SHA-256 (hex), and when the old one is refused.</summary>
public sealed record TlsRotationResult(string CommonName, string OldSha256, string NewSha256, DateTimeOffset OldRefusedFrom);
