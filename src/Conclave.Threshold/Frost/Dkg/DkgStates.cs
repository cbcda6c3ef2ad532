using Conclave.Crypto.Memory;
using Conclave.Threshold.Frost.Ciphersuites;

namespace Conclave.Threshold.Frost;

/// <summary>
/// A participant's secret state between DKG rounds one and two: its polynomial coefficients (and, for refresh,
/// its current share). Sealed, disposable, consumed by <see cref="Dkg.Round2"/>.
/// </summary>
public sealed class DkgRound1Secret : IDisposable
{
    private readonly SecretBuffer? _coefficients;
    private readonly SecretBuffer? _oldShare;
    private int _consumed;

    internal DkgRound1Secret(DkgSession session, Identifier self, IReadOnlyList<Scalar>? coefficients, Scalar? oldShare, DkgRound1Package? package)
    {
        Session = session;
        Self = self;
        Package = package;
        int s = session.Suite.ScalarSizeInBytes;
        if (coefficients is not null)
        {
            _coefficients = SecretBuffer.Allocate(s * coefficients.Count);
            for (int i = 0; i < coefficients.Count; i++)
            {
                coefficients[i].WriteTo(_coefficients.Span.Slice(i * s, s));
            }
        }

        if (oldShare is not null)
        {
            _oldShare = SecretBuffer.Allocate(s);
            oldShare.WriteTo(_oldShare.Span);
        }
    }

    public DkgSession Session { get; }

    public Identifier Self { get; }

    /// <summary>This participant's own broadcast (null when it only receives, as a new member in a reshare).</summary>
    public DkgRound1Package? Package { get; }

    internal (Scalar[]? Coefficients, Scalar? OldShare) Consume()
    {
        if (Interlocked.Exchange(ref _consumed, 1) != 0)
        {
            throw ThresholdErrors.Consumed("DKG round-one state");
        }

        try
        {
            FrostCiphersuite suite = Session.Suite;
            int s = suite.ScalarSizeInBytes;
            Scalar[]? coeffs = null;
            if (_coefficients is not null)
            {
                coeffs = new Scalar[_coefficients.Length / s];
                for (int i = 0; i < coeffs.Length; i++)
                {
                    _ = suite.TryReadScalar(_coefficients.ReadOnlySpan.Slice(i * s, s), out Scalar? c);
                    coeffs[i] = c!;
                }
            }

            Scalar? old = null;
            if (_oldShare is not null)
            {
                _ = suite.TryReadScalar(_oldShare.ReadOnlySpan, out old);
            }

            return (coeffs, old);
        }
        finally
        {
            Dispose();
        }
    }

    public void Dispose()
    {
        _coefficients?.Dispose();
        _oldShare?.Dispose();
    }
}

/// <summary>A participant's secret state between round two and the end of round two (consumed by <see cref="Dkg.Finish"/>).</summary>
public sealed class DkgRound2Secret : IDisposable
{
    private readonly SecretBuffer? _ownShare;
    private readonly SecretBuffer? _oldShare;
    private readonly byte[] _echo;
    private int _consumed;

    internal DkgRound2Secret(DkgSession session, Identifier self, ReadOnlySpan<byte> echo, IReadOnlyDictionary<Identifier, IReadOnlyList<Element?>> commitments, Scalar? ownShare, Scalar? oldShare)
    {
        Session = session;
        Self = self;
        _echo = echo.ToArray();
        Commitments = commitments;
        int s = session.Suite.ScalarSizeInBytes;
        if (ownShare is not null)
        {
            _ownShare = SecretBuffer.Allocate(s);
            ownShare.WriteTo(_ownShare.Span);
        }

        if (oldShare is not null)
        {
            _oldShare = SecretBuffer.Allocate(s);
            oldShare.WriteTo(_oldShare.Span);
        }
    }

    public DkgSession Session { get; }

    public Identifier Self { get; }

    /// <summary>The echo digest of every round-one broadcast this participant saw.</summary>
    public ReadOnlySpan<byte> EchoDigest => _echo;

    /// <summary>Validated commitments per dealer, constant term first (null = the identity of a refresh).</summary>
    internal IReadOnlyDictionary<Identifier, IReadOnlyList<Element?>> Commitments { get; }

    internal (Scalar? OwnShare, Scalar? OldShare) Consume()
    {
        if (Interlocked.Exchange(ref _consumed, 1) != 0)
        {
            throw ThresholdErrors.Consumed("DKG round-two state");
        }

        try
        {
            FrostCiphersuite suite = Session.Suite;
            Scalar? own = null, old = null;
            if (_ownShare is not null)
            {
                _ = suite.TryReadScalar(_ownShare.ReadOnlySpan, out own);
            }

            if (_oldShare is not null)
            {
                _ = suite.TryReadScalar(_oldShare.ReadOnlySpan, out old);
            }

            return (own, old);
        }
        finally
        {
            Dispose();
        }
    }

    public void Dispose()
    {
        _ownShare?.Dispose();
        _oldShare?.Dispose();
    }
}

/// <summary>
/// The outcome of a successful round two, not yet usable: the new share waits in guarded memory until every
/// receiver's <see cref="DkgConfirmation"/> has arrived and matches (<see cref="Complete"/>). For refresh and
/// reshare, keep the old key package until <see cref="Complete"/> succeeds everywhere (DESIGN.md safety rule 2).
/// </summary>
public sealed class DkgPendingKey : IDisposable
{
    private readonly SecretBuffer _share;
    private readonly byte[] _digest;
    private int _consumed;

    internal DkgPendingKey(DkgSession session, Identifier self, Scalar share, PublicKeyPackage key, ReadOnlySpan<byte> digest, DkgConfirmation confirmation)
    {
        Session = session;
        Self = self;
        PublicKeyPackage = key;
        _digest = digest.ToArray();
        Confirmation = confirmation;
        _share = SecretBuffer.Allocate(session.Suite.ScalarSizeInBytes, SecretMemoryKind.Guarded);
        share.WriteTo(_share.Span);
    }

    public DkgSession Session { get; }

    public Identifier Self { get; }

    /// <summary>The resulting public key package (public; the same at every honest receiver).</summary>
    public PublicKeyPackage PublicKeyPackage { get; }

    /// <summary>This participant's confirmation, to broadcast.</summary>
    public DkgConfirmation Confirmation { get; }

    /// <summary>
    /// Checks a confirmation from every receiver (this participant's own may be included): same digest, valid
    /// proof of possession of the share behind its verifying share. Only then returns the usable key package.
    /// </summary>
    public KeyPackage Complete(IReadOnlyCollection<DkgConfirmation> confirmations)
    {
        ArgumentNullException.ThrowIfNull(confirmations);
        if (Volatile.Read(ref _consumed) != 0)
        {
            throw ThresholdErrors.Consumed("pending DKG key");
        }

        ObjectDisposedException.ThrowIf(_share.IsDisposed, this);
        Dkg.CheckConfirmations(Session, PublicKeyPackage, _digest, confirmations, Self);
        if (Interlocked.Exchange(ref _consumed, 1) != 0)
        {
            throw ThresholdErrors.Consumed("pending DKG key");
        }

        try
        {
            _ = Session.Suite.TryReadScalar(_share.ReadOnlySpan, out Scalar? s);
            return new KeyPackage(Self, s!, PublicKeyPackage);
        }
        finally
        {
            _share.Dispose();
        }
    }

    public void Dispose() => _share.Dispose();
}
