using Conclave.Crypto.Memory;
using Conclave.Threshold.Frost.Ciphersuites;
using Conclave.Threshold.Frost.Internal;

namespace Conclave.Threshold.Frost;

/// <summary>
/// One participant's secret key material: its identifier, its signing share s_i (in guarded memory) and the
/// public key package it belongs to (RFC 9591 section 5 "KeyPackage" inputs of sign). Sealed, disposable:
/// Dispose zeroes the share; use after it throws <see cref="ObjectDisposedException"/>.
/// <see cref="Export"/> gives the versioned secret encoding (for storage to seal); <see cref="Import"/> validates
/// that s_i·G equals the verifying share on record.
/// </summary>
public sealed class KeyPackage : IDisposable
{
    private readonly SecretBuffer _share;

    internal KeyPackage(Identifier id, Scalar share, PublicKeyPackage publicKeyPackage)
    {
        Suite = publicKeyPackage.Suite;
        Identifier = id;
        PublicKeyPackage = publicKeyPackage;
        if (share.IsZero || !Suite.BaseMul(share).ValueEquals(publicKeyPackage.VerifyingShare(id)))
        {
            throw ThresholdErrors.Format("signingShare", $"the signing share of participant {id} does not match its verifying share");
        }

        _share = SecretBuffer.Allocate(Suite.ScalarSizeInBytes, SecretMemoryKind.Guarded);
        share.WriteTo(_share.Span);
    }

    public FrostCiphersuite Suite { get; }

    public Identifier Identifier { get; }

    public PublicKeyPackage PublicKeyPackage { get; }

    public int Threshold => PublicKeyPackage.Threshold;

    public bool IsDisposed => _share.IsDisposed;

    /// <summary>The signing share as a transient scalar (callers must not keep it).</summary>
    internal Scalar Share
    {
        get
        {
            ObjectDisposedException.ThrowIf(_share.IsDisposed, this);
            return Suite.TryReadScalar(_share.ReadOnlySpan, out Scalar? s) ? s : throw new InvalidOperationException("corrupt share");
        }
    }

    /// <summary>The key package of the tweaked key: s_i' = ±s_i + t, matching <see cref="PublicKeyPackage.WithTweak"/>.</summary>
    internal KeyPackage WithTweak(bool negate, Scalar tweak, PublicKeyPackage tweakedKey)
    {
        Scalar s = Share;
        return new KeyPackage(Identifier, (negate ? -s : s) + tweak, tweakedKey);
    }

    /// <summary>The versioned secret encoding: header ‖ identifier ‖ share ‖ public key package. Seal it before storing.</summary>
    public SecretBuffer Export()
    {
        ObjectDisposedException.ThrowIf(_share.IsDisposed, this);
        byte[] pkp = PublicKeyPackage.ToBytes();
        var w = new WireWriter(WireKind.KeyPackage, Suite, 3 + (2 * Suite.ScalarSizeInBytes) + 4 + pkp.Length);
        w.Id(Identifier);
        w.Raw(_share.ReadOnlySpan);
        w.Bytes(pkp);
        return w.ToSecret();
    }

    public static KeyPackage Import(FrostCiphersuite suite, ReadOnlySpan<byte> encoded)
    {
        ArgumentNullException.ThrowIfNull(suite);
        var r = new WireReader(encoded, WireKind.KeyPackage, suite, "keyPackage");
        Identifier id = r.Id("identifier");
        Scalar s = r.Scalar("signingShare");
        PublicKeyPackage pkp = PublicKeyPackage.FromBytes(suite, r.Bytes());
        r.End();
        return new KeyPackage(id, s, pkp);
    }

    public void Dispose() => _share.Dispose();

    public override string ToString() => $"KeyPackage({Suite.SchemeName}, participant {Identifier}, {Threshold}-of-{PublicKeyPackage.ParticipantCount})";
}
