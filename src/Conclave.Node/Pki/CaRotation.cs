using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Conclave.Node.Config;

namespace Conclave.Node.Pki;

/// <summary>
/// Rotating the cluster CA of a development layout (docs/ROTATION.md "Rotating the cluster CA"): <see cref="Start"/>
/// makes a new CA beside the current one (<c>ca.next.crt</c>, <c>ca.next.key</c>) and turns the CA file into a bundle
/// of both, which every process takes up (<see cref="TrustRoots"/>); certificates are then reissued from the new CA
/// (<c>conclave node|coordinator rotate-tls --ca-key ca.next.key</c>); <see cref="Finish"/> leaves only the new CA in
/// the CA file and makes its key the CA key (the old one overwritten with zeros first). Refusals are
/// <see cref="ConfigException"/>s naming the file; nothing is changed by a refused step.
/// </summary>
public static class CaRotation
{
    /// <summary>The paths of the new CA's certificate and key while a rotation is under way.</summary>
    public static (string Certificate, string Key) NextPaths(string caCertificatePath, string caKeyPath)
    {
        ArgumentNullException.ThrowIfNull(caCertificatePath);
        ArgumentNullException.ThrowIfNull(caKeyPath);
        return (Beside(caCertificatePath, "ca.next.crt"), Beside(caKeyPath, "ca.next.key"));
    }

    /// <summary>Makes the new CA and writes the two-CA bundle over the CA file. Returns the new CA's SHA-256 (hex) and subject.</summary>
    public static (string Sha256, string Subject) Start(string caCertificatePath, string caKeyPath, DateTimeOffset now)
    {
        (string nextCert, string nextKey) = NextPaths(caCertificatePath, caKeyPath);
        if (File.Exists(nextKey) || File.Exists(nextCert))
        {
            throw new ConfigException($"a CA rotation is already under way ({nextKey} exists): finish it with 'conclave ca finish' first");
        }

        IReadOnlyList<X509Certificate2> current = TrustRoots.LoadBundle(caCertificatePath);
        try
        {
            if (current.Count != 1)
            {
                throw new ConfigException($"{caCertificatePath} holds {current.Count} CA certificates; a rotation starts from one");
            }

            // The current key must be the current CA's: the rotation's point is that the new CA replaces it.
            try
            {
                DevelopmentCertificateAuthority.LoadFromBundle(caCertificatePath, caKeyPath).Dispose();
            }
            catch (Exception e) when (e is CryptographicException or IOException or ArgumentException)
            {
                throw new ConfigException($"the cluster CA's private key is not at {caKeyPath} (or does not belong to {caCertificatePath}): pass --ca-key");
            }

            using DevelopmentCertificateAuthority next = DevelopmentCertificateAuthority.Create($"Conclave development CA {now.UtcDateTime:yyyy-MM-dd HH.mm.ss}");
            next.Save(nextCert, nextKey);
            PemFiles.WriteSecretFile(caCertificatePath, current[0].ExportCertificatePem() + "\n" + next.Certificate.ExportCertificatePem() + "\n");
            return (Convert.ToHexStringLower(ClusterTrust.Sha256Of(next.Certificate)), next.Certificate.Subject);
        }
        finally
        {
            foreach (X509Certificate2 c in current)
            {
                c.Dispose();
            }
        }
    }

    /// <summary>Leaves only the new CA in the CA file, makes its key the CA key, removes the next files. Returns the new CA's SHA-256 (hex).</summary>
    public static string Finish(string caCertificatePath, string caKeyPath)
    {
        (string nextCert, string nextKey) = NextPaths(caCertificatePath, caKeyPath);
        if (!File.Exists(nextKey) || !File.Exists(nextCert))
        {
            throw new ConfigException($"no CA rotation is under way ({nextKey} does not exist): start one with 'conclave ca rotate'");
        }

        using DevelopmentCertificateAuthority next = DevelopmentCertificateAuthority.Load(nextCert, nextKey);
        PemFiles.WriteSecretFile(caCertificatePath, next.Certificate.ExportCertificatePem() + "\n");
        Conclave.Storage.OwnerOnly.ReplaceErasingOld(nextKey, caKeyPath);
        File.Delete(nextCert);
        return Convert.ToHexStringLower(ClusterTrust.Sha256Of(next.Certificate));
    }

    private static string Beside(string path, string name) => Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path)) ?? ".", name);
}
