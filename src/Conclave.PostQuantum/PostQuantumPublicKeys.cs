using System.Diagnostics.CodeAnalysis;
using System.Formats.Asn1;
using Conclave.Crypto.Signing;
using Conclave.PostQuantum.Internal;

namespace Conclave.PostQuantum;

/// <summary>
/// Public-key export: raw (the scheme's own encoding, <see cref="ISigningKey.PublicKey"/>) and X.509
/// SubjectPublicKeyInfo (RFC 5280 §4.1.2.7) with the algorithm identifier's parameters absent and the raw key as the
/// BIT STRING, as RFC 9881 (ML-DSA) and RFC 9909 (SLH-DSA) specify. <c>hybrid-ed25519-ml-dsa-65</c> uses the composite
/// OID and raw concatenated key of draft-ietf-lamps-pq-composite-sigs (draft: may still change);
/// <c>hybrid-ecdsa-ml-dsa-65</c> has no OID and no SubjectPublicKeyInfo form.
/// </summary>
public static class PostQuantumPublicKeys
{
    /// <summary>The object identifier of a scheme, or null if it has none.</summary>
    public static string? ObjectIdentifierOf(SignatureScheme scheme) => scheme switch
    {
        MlDsaSignatureScheme m => m.ObjectIdentifier,
        SlhDsaSignatureScheme s => s.ObjectIdentifier,
        HybridSignatureScheme h => h.ObjectIdentifier,
        _ => null,
    };

    /// <summary>DER SubjectPublicKeyInfo for a raw public key of <paramref name="scheme"/>.</summary>
    /// <exception cref="NotSupportedException">The scheme has no object identifier.</exception>
    public static byte[] ExportSubjectPublicKeyInfo(SignatureScheme scheme, ReadOnlySpan<byte> publicKey)
    {
        ArgumentNullException.ThrowIfNull(scheme);
        string oid = ObjectIdentifierOf(scheme) ?? throw PostQuantumErrors.NoObjectIdentifier(scheme.Name);
        if (publicKey.Length != scheme.PublicKeySizeInBytes)
        {
            throw PostQuantumErrors.InvalidLength(nameof(publicKey), publicKey.Length, scheme.PublicKeySizeInBytes);
        }

        var writer = new AsnWriter(AsnEncodingRules.DER);
        using (writer.PushSequence())
        {
            using (writer.PushSequence())
            {
                writer.WriteObjectIdentifier(oid);
            }

            writer.WriteBitString(publicKey);
        }

        return writer.Encode();
    }

    /// <summary>Parses a DER SubjectPublicKeyInfo of one of this library's schemes; false for anything else.</summary>
    public static bool TryImportSubjectPublicKeyInfo(
        ReadOnlySpan<byte> subjectPublicKeyInfo,
        [NotNullWhen(true)] out SoftwareSignatureScheme? scheme,
        [NotNullWhen(true)] out byte[]? publicKey)
    {
        scheme = null;
        publicKey = null;
        try
        {
            var reader = new AsnReader(subjectPublicKeyInfo.ToArray(), AsnEncodingRules.DER);
            AsnReader spki = reader.ReadSequence();
            reader.ThrowIfNotEmpty();
            AsnReader algorithm = spki.ReadSequence();
            string oid = algorithm.ReadObjectIdentifier();
            if (algorithm.HasData)
            {
                return false; // RFC 9881 §2 / RFC 9909 §3: parameters MUST be absent.
            }

            byte[] key = spki.ReadBitString(out int unusedBits);
            spki.ThrowIfNotEmpty();
            SoftwareSignatureScheme? found = PostQuantumSchemes.All.FirstOrDefault(s => ObjectIdentifierOf(s) == oid);
            if (unusedBits != 0 || found is null || key.Length != found.PublicKeySizeInBytes)
            {
                return false;
            }

            scheme = found;
            publicKey = key;
            return true;
        }
        catch (AsnContentException)
        {
            return false;
        }
    }
}
