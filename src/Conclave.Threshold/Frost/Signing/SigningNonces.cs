using System.Security.Cryptography;
using Conclave.Crypto.Memory;
using Conclave.Crypto.Randomness;
using Conclave.Threshold.Frost.Ciphersuites;
using Conclave.Threshold.Frost.Internal;

namespace Conclave.Threshold.Frost;

/// <summary>
/// A signer's one-time secret nonces (d, e) and their public commitments (RFC 9591 section 5.1). Sealed and
/// disposable; <see cref="FrostSigner.Sign"/> consumes them: after one use (successful or not) they are zeroed
/// and any further use throws (RFC 9591 section 7.1 "Nonce Reuse Attacks"; ATTACKS.md row 1). The node layer
/// must also record consumption durably before releasing the share (DESIGN.md safety rule 1).
/// </summary>
public sealed class SigningNonces : IDisposable
{
    private readonly SecretBuffer _secret; // hiding ‖ binding
    private int _consumed;

    private SigningNonces(FrostCiphersuite suite, SecretBuffer secret, SigningCommitments commitments)
    {
        Suite = suite;
        _secret = secret;
        Commitments = commitments;
    }

    public FrostCiphersuite Suite { get; }

    public Identifier Identifier => Commitments.Identifier;

    /// <summary>The public half, to send to the coordinator.</summary>
    public SigningCommitments Commitments { get; }

    public bool IsConsumed => Volatile.Read(ref _consumed) != 0 || _secret.IsDisposed;

    /// <summary>
    /// nonce_generate(secret) (RFC 9591 section 4.1): H3(random_bytes(32) ‖ SerializeScalar(secret)). Hedged: the
    /// share is mixed in so that a weak RNG alone does not repeat nonces.
    /// </summary>
    internal static Scalar NonceGenerate(FrostCiphersuite suite, Scalar secret, IRandomSource random)
    {
        int n = suite.ScalarSizeInBytes;
        byte[] buf = GC.AllocateArray<byte>(32 + n, pinned: true);
        try
        {
            random.Fill(buf.AsSpan(0, 32));
            secret.WriteTo(buf.AsSpan(32));
            return suite.H3(buf);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(buf);
        }
    }

    /// <summary>commit(sk_i) (RFC 9591 section 5.1).</summary>
    internal static SigningNonces Create(Identifier id, Scalar signingShare, IRandomSource random)
    {
        FrostCiphersuite suite = id.Suite;
        Scalar d = NonceGenerate(suite, signingShare, random);
        Scalar e = NonceGenerate(suite, signingShare, random);
        return FromScalars(id, d, e);
    }

    private static SigningNonces FromScalars(Identifier id, Scalar d, Scalar e)
    {
        FrostCiphersuite suite = id.Suite;
        int n = suite.ScalarSizeInBytes;
        SecretBuffer secret = SecretBuffer.Allocate(2 * n);
        d.WriteTo(secret.Span[..n]);
        e.WriteTo(secret.Span[n..]);
        var commitments = new SigningCommitments(id, suite.BaseMul(d), suite.BaseMul(e));
        return new SigningNonces(suite, secret, commitments);
    }

    /// <summary>Takes the nonces for one signature and zeroes them: the second call throws.</summary>
    internal (Scalar Hiding, Scalar Binding) Consume()
    {
        if (Interlocked.Exchange(ref _consumed, 1) != 0 || _secret.IsDisposed)
        {
            throw ThresholdErrors.Consumed("signing nonces");
        }

        try
        {
            int n = Suite.ScalarSizeInBytes;
            _ = Suite.TryReadScalar(_secret.ReadOnlySpan[..n], out Scalar? d);
            _ = Suite.TryReadScalar(_secret.ReadOnlySpan[n..], out Scalar? e);
            return (d!, e!);
        }
        finally
        {
            _secret.Dispose();
        }
    }

    /// <summary>
    /// The secret encoding for a nonce pool kept by the node (seal it; never back it up). Exporting does not
    /// consume: the node must delete the stored copy when it uses the nonces.
    /// </summary>
    public SecretBuffer Export()
    {
        if (IsConsumed)
        {
            throw ThresholdErrors.Consumed("signing nonces");
        }

        var w = new WireWriter(WireKind.SigningNonces, Suite);
        w.Id(Identifier);
        w.Raw(_secret.ReadOnlySpan);
        return w.ToSecret();
    }

    /// <summary>Parses <see cref="Export"/>'s encoding; recomputes the commitments.</summary>
    public static SigningNonces Import(FrostCiphersuite suite, ReadOnlySpan<byte> encoded)
    {
        ArgumentNullException.ThrowIfNull(suite);
        var r = new WireReader(encoded, WireKind.SigningNonces, suite, "signingNonces");
        Identifier id = r.Id("identifier");
        Scalar d = r.Scalar("hiding");
        Scalar e = r.Scalar("binding");
        r.End();
        if (d.IsZero || e.IsZero)
        {
            throw ThresholdErrors.Format("signingNonces", "nonces must not be zero");
        }

        return FromScalars(id, d, e);
    }

    public void Dispose() => _secret.Dispose();

    public override string ToString() => $"SigningNonces({Suite.SchemeName}, participant {Identifier}{(IsConsumed ? ", consumed" : "")})";
}
