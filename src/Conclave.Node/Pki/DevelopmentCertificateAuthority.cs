using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Conclave.Node.Pki;

/// <summary>
/// The development certificate authority `conclave up` creates on first start: an ECDSA P-256 root,
/// and leaf certificates for each node (server and client authentication) and for the server's coordinator
/// (client authentication) and API (server authentication). Files are PEM; private keys are written with
/// owner-only permissions. Production deployments bring their own CA (docs/OPERATIONS.md).
/// </summary>
public sealed class DevelopmentCertificateAuthority : IDisposable
{
    private readonly X509Certificate2 _ca;

    private DevelopmentCertificateAuthority(X509Certificate2 ca) => _ca = ca;

    public X509Certificate2 Certificate => _ca;

    public static DevelopmentCertificateAuthority Create(string commonName = "Conclave development CA", TimeSpan? lifetime = null)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var req = new CertificateRequest($"CN={commonName}, O=Conclave", key, HashAlgorithmName.SHA256);
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        req.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(req.PublicKey, false));
        DateTimeOffset now = DateTimeOffset.UtcNow;
        X509Certificate2 ca = req.CreateSelfSigned(now.AddMinutes(-5), now.Add(lifetime ?? TimeSpan.FromDays(3650)));
        return new DevelopmentCertificateAuthority(ca);
    }

    public static DevelopmentCertificateAuthority Load(string certPemPath, string keyPemPath)
        => new(X509Certificate2.CreateFromPemFile(certPemPath, keyPemPath));

    /// <summary>
    /// The CA whose private key is at <paramref name="keyPemPath"/>, with its certificate taken from the CA bundle at
    /// <paramref name="bundlePath"/> (one or two CAs; during a CA rotation the key picks which one issues). A
    /// <see cref="CryptographicException"/> when no certificate of the bundle belongs to the key.
    /// </summary>
    public static DevelopmentCertificateAuthority LoadFromBundle(string bundlePath, string keyPemPath)
    {
        using var key = ECDsa.Create();
        key.ImportFromPem(File.ReadAllText(keyPemPath));
        byte[] publicKey = key.ExportSubjectPublicKeyInfo();
        IReadOnlyList<X509Certificate2> roots;
        try
        {
            roots = TrustRoots.LoadBundle(bundlePath);
        }
        catch (Conclave.Node.Config.ConfigException e)
        {
            throw new CryptographicException(e.Message);
        }

        try
        {
            X509Certificate2 match = roots.FirstOrDefault(r => r.PublicKey.ExportSubjectPublicKeyInfo().AsSpan().SequenceEqual(publicKey))
                ?? throw new CryptographicException($"no CA certificate in {bundlePath} belongs to the key {keyPemPath}");
            return new DevelopmentCertificateAuthority(match.CopyWithPrivateKey(key));
        }
        finally
        {
            foreach (X509Certificate2 r in roots)
            {
                r.Dispose();
            }
        }
    }

    /// <summary>Issues a leaf certificate. <paramref name="serverAuth"/> adds the TLS server EKU and the loopback SANs.</summary>
    public X509Certificate2 Issue(string commonName, bool serverAuth, bool clientAuth, IEnumerable<string>? dnsNames = null,
        IEnumerable<IPAddress>? addresses = null, TimeSpan? lifetime = null)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var req = new CertificateRequest($"CN={commonName}, O=Conclave", key, HashAlgorithmName.SHA256);
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyAgreement, true));
        var ekus = new OidCollection();
        if (serverAuth)
        {
            ekus.Add(new Oid("1.3.6.1.5.5.7.3.1"));
        }

        if (clientAuth)
        {
            ekus.Add(new Oid("1.3.6.1.5.5.7.3.2"));
        }

        req.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(ekus, true));
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName(commonName);
        foreach (string dns in dnsNames ?? ["localhost"])
        {
            san.AddDnsName(dns);
        }

        foreach (IPAddress ip in addresses ?? [IPAddress.Loopback, IPAddress.IPv6Loopback])
        {
            san.AddIpAddress(ip);
        }

        req.CertificateExtensions.Add(san.Build());
        req.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(req.PublicKey, false));
        req.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(_ca, true, false));
        DateTimeOffset now = DateTimeOffset.UtcNow;
        byte[] serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7f;
        using X509Certificate2 pub = req.Create(_ca, now.AddMinutes(-5), now.Add(lifetime ?? TimeSpan.FromDays(825)), serial);
        return pub.CopyWithPrivateKey(key);
    }

    /// <summary>Writes the CA certificate and key as PEM files (key owner-only).</summary>
    public void Save(string certPemPath, string keyPemPath) => PemFiles.Write(_ca, certPemPath, keyPemPath);

    public void Dispose() => _ca.Dispose();
}

/// <summary>PEM files for certificates and their private keys; keys are written owner-read/write only.</summary>
public static class PemFiles
{
    public static void Write(X509Certificate2 certificate, string certPemPath, string keyPemPath)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        Conclave.Storage.OwnerOnly.WriteAllText(certPemPath, certificate.ExportCertificatePem());
        using ECDsa key = certificate.GetECDsaPrivateKey() ?? throw new InvalidOperationException("certificate has no ECDSA private key");
        WriteSecretFile(keyPemPath, key.ExportPkcs8PrivateKeyPem());
    }

    /// <summary>Creates or replaces a file readable and writable by its owner only, then writes the text.</summary>
    public static void WriteSecretFile(string path, string text)
    {
        string tmp = path + ".tmp";
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using (var fs = new FileStream(tmp, options))
        using (var w = new StreamWriter(fs))
        {
            w.Write(text);
            w.Flush();
            fs.Flush(flushToDisk: true);
        }

        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>Loads a certificate with its private key. On Linux the key must be usable by TLS: re-import as PKCS#12 in memory.</summary>
    public static X509Certificate2 LoadWithKey(string certPemPath, string keyPemPath)
    {
        using X509Certificate2 pem = X509Certificate2.CreateFromPemFile(certPemPath, keyPemPath);
        return X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
    }

    /// <summary>Loads the first certificate of a PEM file (no private key).</summary>
    public static X509Certificate2 LoadCertificate(string certPemPath)
    {
        string pem = File.ReadAllText(certPemPath);
        PemFields f = PemEncoding.Find(pem);
        if (!pem.AsSpan()[f.Label].SequenceEqual("CERTIFICATE"))
        {
            throw new CryptographicException($"{certPemPath} does not start with a certificate");
        }

        return X509CertificateLoader.LoadCertificate(Convert.FromBase64String(pem[f.Base64Data]));
    }
}
