using System.Security.Cryptography;
using Conclave.Crypto.Memory;
using Conclave.Crypto.Randomness;

namespace Conclave.Crypto.Signing;

/// <summary>Whether a key's secret may leave its object.</summary>
public enum KeyExportPolicy
{
    /// <summary>The private key can never be exported (the default).</summary>
    None,

    /// <summary>The private key may be exported once, for example to seal it into the key store.</summary>
    AllowExport,
}

/// <summary>
/// A scheme whose secret is a private key held in process memory (the encrypted key store's schemes).
/// Subclasses implement the <c>…Core</c> methods; this class validates lengths and owns the key lifecycle.
/// </summary>
public abstract class SoftwareSignatureScheme : SignatureScheme
{
    /// <summary>The size of the private key as stored (a scalar or a seed).</summary>
    public abstract int PrivateKeySizeInBytes { get; }

    /// <summary>Generates a key from the health-checked OS generator (or an injected source).</summary>
    public SoftwareSigningKey GenerateKey(KeyExportPolicy exportPolicy = KeyExportPolicy.None, IRandomSource? random = null)
    {
        var secret = SecretBuffer.Allocate(PrivateKeySizeInBytes, SecretMemoryKind.Guarded);
        try
        {
            GeneratePrivateKeyCore(secret.Span, random ?? HealthCheckedRandomSource.System);
            return new SoftwareSigningKey(this, secret, exportPolicy);
        }
        catch
        {
            secret.Dispose();
            throw;
        }
    }

    /// <summary>Imports a private key (copied into guarded memory; the caller zeroes its own copy).</summary>
    public SoftwareSigningKey ImportPrivateKey(ReadOnlySpan<byte> privateKey, KeyExportPolicy exportPolicy = KeyExportPolicy.None)
    {
        if (privateKey.Length != PrivateKeySizeInBytes)
        {
            throw CryptoErrors.InvalidLength("privateKey", privateKey.Length, PrivateKeySizeInBytes);
        }

        if (!IsValidPrivateKeyCore(privateKey))
        {
            throw CryptoErrors.InvalidPrivateKey("privateKey");
        }

        var secret = SecretBuffer.CopyFrom(privateKey, SecretMemoryKind.Guarded);
        return new SoftwareSigningKey(this, secret, exportPolicy);
    }

    /// <summary>Draws a private key; the default draws random bytes until <see cref="IsValidPrivateKeyCore"/> accepts them.</summary>
    protected virtual void GeneratePrivateKeyCore(Span<byte> privateKey, IRandomSource random)
    {
        ArgumentNullException.ThrowIfNull(random);
        do
        {
            random.Fill(privateKey);
        }
        while (!IsValidPrivateKeyCore(privateKey));
    }

    protected abstract bool IsValidPrivateKeyCore(ReadOnlySpan<byte> privateKey);

    protected internal abstract byte[] DerivePublicKeyCore(ReadOnlySpan<byte> privateKey);

    protected internal abstract SignatureResult SignCore(ReadOnlySpan<byte> privateKey, ReadOnlySpan<byte> input, IRandomSource random);

    /// <summary>
    /// The size of a form of the private key that is cheaper to sign from than the stored key (for Ed25519 the secret
    /// key libsodium signs with, whose derivation from the seed costs a scalar multiplication); 0 when there is none. A
    /// <see cref="SoftwareSigningKey"/> computes it once, keeps it in guarded memory beside the stored key, and zeroes it
    /// on disposal.
    /// </summary>
    protected internal virtual int ExpandedKeySizeInBytes => 0;

    /// <summary>Computes the expanded form of <paramref name="privateKey"/> (only called when <see cref="ExpandedKeySizeInBytes"/> is not 0).</summary>
    protected internal virtual void ExpandKeyCore(ReadOnlySpan<byte> privateKey, Span<byte> expanded) => throw new NotSupportedException();

    /// <summary>The public key when the expanded form holds it (saves deriving it again); null otherwise.</summary>
    protected internal virtual byte[]? PublicKeyFromExpandedCore(ReadOnlySpan<byte> expanded) => null;

    /// <summary>Signs from the expanded form: the same signature as <see cref="SignCore"/> on the stored key.</summary>
    protected internal virtual SignatureResult SignExpandedCore(ReadOnlySpan<byte> expanded, ReadOnlySpan<byte> input, IRandomSource random) => throw new NotSupportedException();
}

/// <summary>A software private key in guarded memory, bound to its scheme. Disposing zeroes it.</summary>
public sealed class SoftwareSigningKey : ISigningKey
{
    private readonly SecretBuffer _secret;
    private readonly SecretBuffer? _expanded;
    private readonly SoftwareSignatureScheme _scheme;
    private readonly KeyExportPolicy _exportPolicy;
    private readonly byte[] _publicKey;

    internal SoftwareSigningKey(SoftwareSignatureScheme scheme, SecretBuffer secret, KeyExportPolicy exportPolicy)
    {
        _scheme = scheme;
        _secret = secret;
        _exportPolicy = exportPolicy;
        if (scheme.ExpandedKeySizeInBytes > 0)
        {
            _expanded = SecretBuffer.Allocate(scheme.ExpandedKeySizeInBytes, SecretMemoryKind.Guarded);
            try
            {
                scheme.ExpandKeyCore(secret.ReadOnlySpan, _expanded.Span);
            }
            catch
            {
                _expanded.Dispose();
                throw;
            }
        }

        _publicKey = (_expanded is null ? null : scheme.PublicKeyFromExpandedCore(_expanded.ReadOnlySpan)) ?? scheme.DerivePublicKeyCore(secret.ReadOnlySpan);
    }

    public SignatureScheme Scheme => _scheme;

    public ReadOnlyMemory<byte> PublicKey => _publicKey;

    public KeyExportPolicy ExportPolicy => _exportPolicy;

    public SignatureResult Sign(ReadOnlySpan<byte> input) => Sign(input, SystemRandomSource.Instance);

    /// <summary>Signs with an injected randomness source (auxiliary randomness for hedged schemes).</summary>
    public SignatureResult Sign(ReadOnlySpan<byte> input, IRandomSource random)
    {
        ObjectDisposedException.ThrowIf(_secret.IsDisposed, this);
        _scheme.ValidateInput(input);
        return _expanded is null ? _scheme.SignCore(_secret.ReadOnlySpan, input, random) : _scheme.SignExpandedCore(_expanded.ReadOnlySpan, input, random);
    }

    /// <summary>Exports the private key into a new secret buffer, if the export policy allows it.</summary>
    public SecretBuffer ExportPrivateKey()
    {
        ObjectDisposedException.ThrowIf(_secret.IsDisposed, this);
        if (_exportPolicy != KeyExportPolicy.AllowExport)
        {
            throw new CryptographicException("the export policy of this key does not allow exporting the private key");
        }

        return SecretBuffer.CopyFrom(_secret.ReadOnlySpan);
    }

    public void Dispose()
    {
        _secret.Dispose();
        _expanded?.Dispose();
    }

    public override string ToString() => $"SoftwareSigningKey({_scheme.Name}, {Convert.ToHexStringLower(_publicKey)})";
}
