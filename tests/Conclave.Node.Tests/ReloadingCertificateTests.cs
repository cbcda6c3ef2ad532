using System.Net;
using System.Security.Cryptography.X509Certificates;
using Conclave.Node.Config;
using Conclave.Node.Pki;

namespace Conclave.Node.Tests;

/// <summary>
/// The certificate holder a node serves from and the coordinator connects with (docs/ROTATION.md "Rotating TLS
/// certificates"): it follows its files, and takes a new pair only when it loads and chains to the cluster CA
/// unrevoked; and the manifest's revoked certificates are refused from their time on.
/// </summary>
public sealed class ReloadingCertificateTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("conclave-certs-").FullName;
    private readonly DevelopmentCertificateAuthority _ca = DevelopmentCertificateAuthority.Create();
    private readonly DevelopmentCertificateAuthority _otherCa = DevelopmentCertificateAuthority.Create("Another CA");

    private string CertPath => Path.Combine(_dir, "node.crt");

    private string KeyPath => Path.Combine(_dir, "node.key");

    private X509Certificate2 Issue(DevelopmentCertificateAuthority ca) => ca.Issue("conclave-node-1", serverAuth: true, clientAuth: true, ["localhost"], [IPAddress.Loopback]);

    [Fact]
    public void TrustRoots_FollowTheCaFile_BothCasOfABundleAreTrusted_AndABadFileIsNotTaken()
    {
        string caPath = Path.Combine(_dir, "ca.crt");
        File.WriteAllText(caPath, _ca.Certificate.ExportCertificatePem());
        using var roots = TrustRoots.FromFile(caPath);
        var trust = new ClusterTrust(roots);
        using X509Certificate2 mine = Issue(_ca), foreign = Issue(_otherCa);
        Assert.True(trust.Validate(mine, ClusterTrust.ServerAuthEku));
        Assert.False(trust.Validate(foreign, ClusterTrust.ServerAuthEku));

        // A bundle of both: a certificate from either CA is trusted, and a certificate whose chain ends elsewhere is not.
        File.WriteAllText(caPath, _ca.Certificate.ExportCertificatePem() + "\n" + _otherCa.Certificate.ExportCertificatePem());
        Assert.True(roots.Refresh(force: true));
        Assert.Equal(2, roots.Current.Count);
        Assert.True(trust.Validate(mine, ClusterTrust.ServerAuthEku));
        Assert.True(trust.Validate(foreign, ClusterTrust.ServerAuthEku));

        // A file that is not a CA bundle (a leaf certificate, garbage, empty): not taken, the roots in use stay, LastError says why.
        foreach ((string text, string why) in new[]
        {
            (mine.ExportCertificatePem(), "is not a CA"),
            ("-----BEGIN CERTIFICATE-----\nAAECAwQF\n-----END CERTIFICATE-----\n", "does not hold PEM certificates"),
            ("", "holds no certificate"),
        })
        {
            File.WriteAllText(caPath, text);
            Assert.False(roots.Refresh(force: true));
            Assert.Contains(why, roots.LastError, StringComparison.Ordinal);
            Assert.Equal(2, roots.Current.Count);
        }

        // Only the other CA: the first CA's certificates are refused from the next look on.
        File.WriteAllText(caPath, _otherCa.Certificate.ExportCertificatePem());
        Assert.True(roots.Refresh(force: true));
        Assert.Null(roots.LastError);
        Assert.False(trust.Validate(mine, ClusterTrust.ServerAuthEku));
        Assert.True(trust.Validate(foreign, ClusterTrust.ServerAuthEku));
        Assert.Throws<ConfigException>(() => TrustRoots.FromFile(Path.Combine(_dir, "missing.crt")));
    }

    [Fact]
    public void ANewPair_IsTaken_ButNotOneFromAnotherCa_NorAMismatchedKey()
    {
        using X509Certificate2 first = Issue(_ca);
        PemFiles.Write(first, CertPath, KeyPath);
        using ReloadingCertificate holder = ReloadingCertificate.FromFiles(CertPath, KeyPath, new ClusterTrust(_ca.Certificate), ClusterTrust.ServerAuthEku);
        Assert.Equal(Sha(first), holder.Sha256Hex);
        Assert.False(holder.Refresh(force: true));

        // A certificate from another CA: refused, the first stays in use.
        using (X509Certificate2 foreign = Issue(_otherCa))
        {
            PemFiles.Write(foreign, CertPath, KeyPath);
        }

        Assert.False(holder.Refresh(force: true));
        Assert.Contains("does not chain to the cluster CA", holder.LastError, StringComparison.Ordinal);
        Assert.Equal(Sha(first), Sha(holder.Current));

        // A new certificate beside a key that is not its own (caught half-written): refused, tried again later.
        using X509Certificate2 second = Issue(_ca);
        File.WriteAllText(CertPath, second.ExportCertificatePem());
        Assert.False(holder.Refresh(force: true));
        Assert.Contains("do not load as a pair", holder.LastError, StringComparison.Ordinal);
        Assert.Equal(Sha(first), holder.Sha256Hex);

        // The pair complete: taken.
        PemFiles.Write(second, CertPath, KeyPath);
        Assert.True(holder.Refresh(force: true));
        Assert.Null(holder.LastError);
        Assert.Equal(Sha(second), Sha(holder.Current));
        Assert.Equal(1, holder.Reloads);
        Assert.NotNull(holder.Current.GetECDsaPrivateKey());
    }

    [Fact]
    public void ACertificateTheManifestRevokes_IsRefusedFromItsTimeOn_AndNotTakenUp()
    {
        using X509Certificate2 cert = Issue(_ca);
        var manifest = new ClusterManifest();
        var trust = new ClusterTrust(_ca.Certificate, manifest);
        Assert.True(trust.Validate(cert, ClusterTrust.ServerAuthEku));
        long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        manifest.RevokedCertificates.Add(new RevokedCertificate { Sha256 = Sha(cert), RefusedFromUnixMs = now + 3_600_000 });
        Assert.True(trust.Validate(cert, ClusterTrust.ServerAuthEku)); // during the overlap
        Assert.False(manifest.IsCertificateRefused(ClusterTrust.Sha256Of(cert), now));
        Assert.True(manifest.IsCertificateRefused(ClusterTrust.Sha256Of(cert), now + 3_600_000));
        manifest.RevokedCertificates[0].RefusedFromUnixMs = now - 1;
        Assert.False(trust.Validate(cert, ClusterTrust.ServerAuthEku));

        // A holder does not take up a revoked certificate.
        using X509Certificate2 first = Issue(_ca);
        PemFiles.Write(first, CertPath, KeyPath);
        using ReloadingCertificate holder = ReloadingCertificate.FromFiles(CertPath, KeyPath, trust, ClusterTrust.ServerAuthEku);
        PemFiles.Write(cert, CertPath, KeyPath);
        Assert.False(holder.Refresh(force: true));
        Assert.Equal(Sha(first), holder.Sha256Hex);
    }

    [Fact]
    public void ManifestWithABadRevokedThumbprint_IsRefusedWithItsField()
    {
        string path = Path.Combine(_dir, "cluster.json");
        File.WriteAllText(path, """{"coordinatorIdentityKey":"%K","nodes":[],"revokedCertificates":[{"sha256":"zz","refusedFromUnixMs":0}]}""".Replace("%K", new string('a', 64), StringComparison.Ordinal));
        ConfigException e = Assert.Throws<ConfigException>(() => ClusterManifest.Load(path));
        Assert.Equal("revokedCertificates[0].sha256 must be 64 hex characters", e.Message);
    }

    private static string Sha(X509Certificate2 c) => Convert.ToHexStringLower(ClusterTrust.Sha256Of(c));

    public void Dispose()
    {
        _ca.Dispose();
        _otherCa.Dispose();
        Directory.Delete(_dir, true);
    }
}
