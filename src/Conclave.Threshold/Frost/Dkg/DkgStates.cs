using Conclave.Crypto.Memory;
using Conclave.Threshold.Frost.Ciphersuites;

namespace Conclave.Threshold.Frost;

/// <summary>
/// A participant's secret state after <see cref="Dkg.Commit"/>: its polynomial, its chain-code contribution, its
/// per-run signing key and its round-one package, all kept back until every dealer's commitment has arrived
/// (<see cref="Dkg.Round1(DkgCommitSecret, IReadOnlyCollection{DkgCommitment})"/>, which consumes it).
/// Only <see cref="Commitment"/> leaves the participant at this step.
/// </summary>
public sealed class DkgCommitSecret : IDisposable
{
    private DkgRound1Secret? _inner;

    internal DkgCommitSecret(DkgRound1Secret inner, DkgCommitment? commitment)
    {
        _inner = inner;
        Session = inner.Session;
        Self = inner.Self;
        Commitment = commitment;
    }

    public DkgSession Session { get; }

    public Identifier Self { get; }

    /// <summary>This participant's commitment, to broadcast (null when it only receives, as a new member in a reshare).</summary>
    public DkgCommitment? Commitment { get; }

    internal DkgRound1Secret Release()
        => Interlocked.Exchange(ref _inner, null) ?? throw ThresholdErrors.Consumed("DKG commitment state");

    public void Dispose() => Interlocked.Exchange(ref _inner, null)?.Dispose();
}

/// <summary>
/// A participant's secret state between DKG rounds one and two: its polynomial coefficients (and, for refresh,
/// its current share), its chain-code contribution and per-run signing key, and the dealers' commitments it
/// received. Sealed, disposable, consumed by <see cref="Dkg.Round2"/>.
/// </summary>
public sealed class DkgRound1Secret : IDisposable
{
    private readonly SecretBuffer? _coefficients;
    private readonly SecretBuffer? _oldShare;
    private readonly SecretBuffer? _contribution;
    private readonly SecretBuffer? _signingKey;
    private int _consumed;

    internal DkgRound1Secret(DkgSession session, Identifier self, IReadOnlyList<Scalar>? coefficients, Scalar? oldShare, DkgRound1Package? package, ReadOnlySpan<byte> contribution = default, Scalar? signingKey = null)
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

        if (!contribution.IsEmpty)
        {
            _contribution = SecretBuffer.CopyFrom(contribution);
        }

        if (signingKey is not null)
        {
            _signingKey = SecretBuffer.Allocate(s);
            signingKey.WriteTo(_signingKey.Span);
        }
    }

    public DkgSession Session { get; }

    public Identifier Self { get; }

    /// <summary>This participant's own broadcast (null when it only receives, as a new member in a reshare).</summary>
    public DkgRound1Package? Package { get; }

    /// <summary>
    /// Every dealer's commitment (own included), set by <see cref="Dkg.Round1(DkgCommitSecret, IReadOnlyCollection{DkgCommitment})"/>;
    /// null until then (<see cref="Dkg.Round2"/> refuses a state whose commitments were never collected).
    /// </summary>
    internal IReadOnlyDictionary<Identifier, DkgCommitment>? Commitments { get; set; }

    internal (Scalar[]? Coefficients, Scalar? OldShare, byte[] Contribution, Scalar? SigningKey) Consume()
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

            Scalar? x = null;
            if (_signingKey is not null)
            {
                _ = suite.TryReadScalar(_signingKey.ReadOnlySpan, out x);
            }

            return (coeffs, old, _contribution?.ReadOnlySpan.ToArray() ?? [], x);
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
        _contribution?.Dispose();
        _signingKey?.Dispose();
    }
}

/// <summary>A participant's secret state between round two and the end of round two (consumed by <see cref="Dkg.Finish"/>).</summary>
public sealed class DkgRound2Secret : IDisposable
{
    private readonly SecretBuffer? _ownShare;
    private readonly SecretBuffer? _oldShare;
    private readonly SecretBuffer? _ownContribution;
    private readonly byte[] _echo;
    private int _consumed;

    internal DkgRound2Secret(DkgSession session, Identifier self, ReadOnlySpan<byte> echo, IReadOnlyDictionary<Identifier, IReadOnlyList<Element?>> commitments, Scalar? ownShare, Scalar? oldShare,
        ReadOnlySpan<byte> ownContribution = default, IReadOnlyDictionary<Identifier, DkgCommitment>? dealerCommitments = null)
    {
        Session = session;
        Self = self;
        _echo = echo.ToArray();
        Commitments = commitments;
        DealerCommitments = dealerCommitments;
        if (!ownContribution.IsEmpty)
        {
            _ownContribution = SecretBuffer.CopyFrom(ownContribution);
        }

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

    /// <summary>Every dealer's <see cref="DkgCommitment"/> (null for an uncommitted legacy run).</summary>
    internal IReadOnlyDictionary<Identifier, DkgCommitment>? DealerCommitments { get; }

    internal (Scalar? OwnShare, Scalar? OldShare, byte[] OwnContribution) Consume()
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

            return (own, old, _ownContribution?.ReadOnlySpan.ToArray() ?? []);
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
        _ownContribution?.Dispose();
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
