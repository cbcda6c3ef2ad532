using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Conclave.Policy.Principals;
using Conclave.Storage;
using Conclave.Storage.Principals;

namespace Conclave.Server.Api.Identity;

/// <summary>
/// Authenticates agents by a TLS client certificate from the cluster CA (issue 16 "Identities and authentication": the
/// alternative to RFC 9421 signatures), when server.json <c>apiTls.clientCa</c> names that CA: the API listener then
/// requests — never requires — a client certificate. A certificate authenticates the agent principal it names when:
/// it chains to <c>apiTls.clientCa</c> alone (RFC 5280 section 6 path validation, no other trust anchor) and is valid
/// now; it carries the extended key usage <c>id-kp-clientAuth</c> (RFC 5280 section 4.2.1.12); its subject alternative
/// names hold exactly one URI <c>urn:conclave:principal:ID</c> (section 4.2.1.6; the node and coordinator certificates
/// of the same CA carry none, so they authenticate nobody); and ID is an agent principal in the store that is not
/// disabled. The caller is then that principal (<see cref="AuthMethod.ClientCertificate"/>, credential
/// <c>cert:SHA-256 of the certificate</c>). There are no revocation lists: disable the principal to refuse its
/// certificates.
/// </summary>
public sealed class ClientCertificateAuthenticator(IConclaveStore store, X509Certificate2 clientCa, TimeProvider time) : IDisposable
{
    /// <summary>The URI prefix of the subject alternative name that binds a certificate to a principal.</summary>
    public const string PrincipalUriPrefix = "urn:conclave:principal:";

    private const string ClientAuthOid = "1.3.6.1.5.5.7.3.2";
    private const string SubjectAltNameOid = "2.5.29.17";
    private const string ExtendedKeyUsageOid = "2.5.29.37";

    public async Task<AuthenticationOutcome> AuthenticateAsync(X509Certificate2 certificate, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        if (!ChainsToClientCa(certificate))
        {
            return Refused("untrusted-certificate", "the client certificate is not issued by the cluster CA, or is not valid now");
        }

        bool clientAuth;
        try
        {
            clientAuth = HasClientAuth(certificate);
        }
        catch (CryptographicException)
        {
            clientAuth = false;
        }

        if (!clientAuth)
        {
            return Refused("certificate-usage", "the client certificate is not for client authentication (extended key usage clientAuth)");
        }

        IReadOnlyList<string> uris;
        try
        {
            uris = [.. SubjectAltUris(certificate).Where(u => u.StartsWith(PrincipalUriPrefix, StringComparison.Ordinal))];
        }
        catch (AsnContentException)
        {
            return Refused("malformed-certificate", "the client certificate's subject alternative names cannot be read");
        }

        if (uris.Count != 1 || uris[0][PrincipalUriPrefix.Length..] is not { } id || !PrincipalCodec.IsValidId(id))
        {
            return Refused("no-principal", $"the client certificate names no principal (one subject alternative name URI {PrincipalUriPrefix}ID)");
        }

        PrincipalRecord? principal = await store.Principals.GetAsync(id, ct).ConfigureAwait(false);
        if (principal is null)
        {
            return Refused("unknown-principal", $"the client certificate names principal {id}, which does not exist");
        }

        if (principal.Disabled)
        {
            return Refused("disabled", $"principal {id} is disabled");
        }

        Principal p = PrincipalCodec.ToPolicy(principal);
        if (p.Kind != PrincipalKind.Agent)
        {
            return Refused("not-an-agent", $"principal {id} is a person: client certificates authenticate agents only");
        }

        string credential = "cert:" + Convert.ToHexStringLower(SHA256.HashData(certificate.RawData));
        return new AuthenticationOutcome(new CallerIdentity(p, AuthMethod.ClientCertificate, credential), "ok", "verified");
    }

    private static AuthenticationOutcome Refused(string reason, string detail) => new(null, reason, detail);

    /// <summary>Path validation against the cluster CA as the only trust anchor, at the injected time, no revocation check.</summary>
    private bool ChainsToClientCa(X509Certificate2 certificate)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(clientCa);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.VerificationTime = time.GetUtcNow().UtcDateTime;
        chain.ChainPolicy.VerificationTimeIgnored = false;
        bool ok = chain.Build(certificate);
        return ok && chain.ChainElements.Count > 0 && chain.ChainElements[^1].Certificate.RawData.AsSpan().SequenceEqual(clientCa.RawData);
    }

    private static bool HasClientAuth(X509Certificate2 certificate) =>
        certificate.Extensions[ExtendedKeyUsageOid] is { } ext
        && new X509EnhancedKeyUsageExtension(ext, ext.Critical).EnhancedKeyUsages.Cast<Oid>().Any(o => o.Value == ClientAuthOid);

    /// <summary>The uniformResourceIdentifier entries ([6] IA5String) of the subjectAltName extension (RFC 5280 section 4.2.1.6).</summary>
    private static IEnumerable<string> SubjectAltUris(X509Certificate2 certificate)
    {
        if (certificate.Extensions[SubjectAltNameOid] is not { } san)
        {
            return [];
        }

        var uris = new List<string>();
        var reader = new AsnReader(san.RawData, AsnEncodingRules.DER);
        AsnReader names = reader.ReadSequence();
        reader.ThrowIfNotEmpty();
        var uriTag = new Asn1Tag(TagClass.ContextSpecific, 6);
        while (names.HasData)
        {
            if (names.PeekTag().HasSameClassAndValue(uriTag))
            {
                uris.Add(names.ReadCharacterString(UniversalTagNumber.IA5String, uriTag));
            }
            else
            {
                _ = names.ReadEncodedValue();
            }
        }

        return uris;
    }

    public void Dispose() => clientCa.Dispose();
}
