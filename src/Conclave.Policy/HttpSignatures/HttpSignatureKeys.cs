using System.Security.Cryptography;
using System.Text;
using Conclave.Crypto.Ed25519;
using Conclave.Crypto.Memory;

namespace Conclave.Policy.HttpSignatures;

/// <summary>The two algorithms agents sign with (RFC 9421 section 3.3.4 and 3.3.6).</summary>
public enum HttpSignatureAlgorithm
{
    /// <summary><c>ed25519</c>: Ed25519 over the signature base, 32-byte public key.</summary>
    Ed25519,

    /// <summary><c>ecdsa-p256-sha256</c>: ECDSA P-256 over SHA-256 of the base, r ‖ s (64 bytes), 65-byte uncompressed public key.</summary>
    EcdsaP256Sha256,
}

public static class HttpSignatureAlgorithms
{
    public static string Name(HttpSignatureAlgorithm a) => a == HttpSignatureAlgorithm.Ed25519 ? "ed25519" : "ecdsa-p256-sha256";

    public static bool TryParse(string? name, out HttpSignatureAlgorithm a)
    {
        a = name == "ecdsa-p256-sha256" ? HttpSignatureAlgorithm.EcdsaP256Sha256 : HttpSignatureAlgorithm.Ed25519;
        return name is "ed25519" or "ecdsa-p256-sha256";
    }
}

/// <summary>A verification key: algorithm and public key (Ed25519 32 bytes; P-256 SEC1 uncompressed 65 bytes).</summary>
public sealed record HttpVerificationKey
{
    public HttpVerificationKey(HttpSignatureAlgorithm algorithm, ReadOnlySpan<byte> publicKey)
    {
        int expected = algorithm == HttpSignatureAlgorithm.Ed25519 ? 32 : 65;
        if (publicKey.Length != expected || (algorithm == HttpSignatureAlgorithm.EcdsaP256Sha256 && publicKey[0] != 0x04))
        {
            throw PolicyErrors.Invalid("publicKey", algorithm == HttpSignatureAlgorithm.Ed25519 ? "32 bytes" : "65 bytes, SEC1 uncompressed (04 ‖ x ‖ y)");
        }

        Algorithm = algorithm;
        PublicKey = publicKey.ToArray();
    }

    public HttpSignatureAlgorithm Algorithm { get; }

    public IReadOnlyList<byte> PublicKey { get; }

    /// <summary>A P-256 key from DER SubjectPublicKeyInfo (the PEM body of "BEGIN PUBLIC KEY").</summary>
    public static HttpVerificationKey FromP256SubjectPublicKeyInfo(ReadOnlySpan<byte> spki)
    {
        using var ecdsa = ECDsa.Create();
        try
        {
            ecdsa.ImportSubjectPublicKeyInfo(spki, out _);
        }
        catch (CryptographicException)
        {
            throw PolicyErrors.Invalid("publicKey", "a P-256 SubjectPublicKeyInfo");
        }

        var p = ecdsa.ExportParameters(false);
        if (p.Curve.Oid?.Value != ECCurve.NamedCurves.nistP256.Oid.Value)
        {
            throw PolicyErrors.Invalid("publicKey", "a key on P-256");
        }

        return new HttpVerificationKey(HttpSignatureAlgorithm.EcdsaP256Sha256, [0x04, .. p.Q.X!, .. p.Q.Y!]);
    }

    /// <summary>Verifies per RFC 9421 section 3.3.4 / 3.3.6; false for any malformed signature or key, never throws.</summary>
    public bool Verify(string signatureBase, ReadOnlySpan<byte> signature)
    {
        byte[] message = Encoding.ASCII.GetBytes(signatureBase);
        byte[] pk = [.. PublicKey];
        if (Algorithm == HttpSignatureAlgorithm.Ed25519)
        {
            return Ed25519Signature.Instance.Verify(pk, message, signature);
        }

        if (signature.Length != 64)
        {
            return false;
        }

        try
        {
            using var ecdsa = ECDsa.Create(new ECParameters { Curve = ECCurve.NamedCurves.nistP256, Q = new ECPoint { X = pk[1..33], Y = pk[33..] } });
            return ecdsa.VerifyData(message, signature, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
        }
        catch (CryptographicException)
        {
            return false;
        }
    }
}

/// <summary>
/// An agent's signing key: an Ed25519 seed in a zeroed <see cref="SecretBuffer"/>, or a P-256 private key held by .NET's
/// <see cref="ECDsa"/>. Sealed and disposable; use after dispose throws.
/// </summary>
public sealed class HttpSigningKey : IDisposable
{
    private readonly SecretBuffer? _seed;
    private readonly ECDsa? _ecdsa;
    private bool _disposed;

    private HttpSigningKey(SecretBuffer? seed, ECDsa? ecdsa, HttpVerificationKey publicKey)
    {
        _seed = seed;
        _ecdsa = ecdsa;
        PublicKey = publicKey;
    }

    public HttpVerificationKey PublicKey { get; }

    public HttpSignatureAlgorithm Algorithm => PublicKey.Algorithm;

    /// <summary>An Ed25519 key from its 32-byte seed (RFC 8032 section 5.1.5), copied into a secret buffer.</summary>
    public static HttpSigningKey Ed25519FromSeed(ReadOnlySpan<byte> seed32)
    {
        if (seed32.Length != 32)
        {
            throw PolicyErrors.Invalid("seed", "32 bytes");
        }

        var seed = SecretBuffer.CopyFrom(seed32);
        try
        {
            using var key = Ed25519Signature.Instance.ImportPrivateKey(seed32);
            return new HttpSigningKey(seed, null, new HttpVerificationKey(HttpSignatureAlgorithm.Ed25519, key.PublicKey.Span));
        }
        catch
        {
            seed.Dispose();
            throw;
        }
    }

    /// <summary>Takes ownership of a P-256 private key.</summary>
    public static HttpSigningKey EcdsaP256(ECDsa key)
    {
        ArgumentNullException.ThrowIfNull(key);
        var p = key.ExportParameters(false);
        if (p.Curve.Oid?.Value != ECCurve.NamedCurves.nistP256.Oid.Value)
        {
            throw PolicyErrors.Invalid("key", "a key on P-256");
        }

        return new HttpSigningKey(null, key, new HttpVerificationKey(HttpSignatureAlgorithm.EcdsaP256Sha256, [0x04, .. p.Q.X!, .. p.Q.Y!]));
    }

    public byte[] Sign(string signatureBase)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        byte[] message = Encoding.ASCII.GetBytes(signatureBase);
        if (_seed is not null)
        {
            byte[] sig = new byte[64];
            Ed25519Signature.Sign(_seed.ReadOnlySpan, message, sig);
            return sig;
        }

        return _ecdsa!.SignData(message, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _seed?.Dispose();
        _ecdsa?.Dispose();
    }

    public override string ToString() => $"HttpSigningKey({HttpSignatureAlgorithms.Name(Algorithm)})";
}
