using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Conclave.Node.Pki;

/// <summary>
/// A TLS certificate with its private key that follows its PEM files: when the certificate or key file changes (write
/// time or length), the pair is loaded again on the next look, at most once per <see cref="MinimumInterval"/>, and
/// used for every TLS handshake from then on; connections already open keep theirs (docs/ROTATION.md "Rotating TLS
/// certificates"). A new pair is taken only if it loads (certificate and key match) and, with a trust, chains to the
/// cluster CA with the required usage and is not revoked; otherwise the certificate in use stays and
/// <see cref="LastError"/> says why (a pair caught half-written is tried again on the next look).
/// </summary>
public sealed class ReloadingCertificate : IDisposable
{
    private readonly string? _certificatePath;
    private readonly string? _keyPath;
    private readonly ClusterTrust? _trust;
    private readonly string _requiredEku;
    private readonly TimeProvider _clock;
    private readonly Lock _gate = new();
    private readonly List<X509Certificate2> _retired = [];
    private X509Certificate2 _current;
    private (DateTime, long, DateTime, long) _seen;
    private long _lastCheckTicks = long.MinValue;
    private bool _disposed;

    private ReloadingCertificate(X509Certificate2 current, string? certificatePath, string? keyPath, ClusterTrust? trust, string requiredEku, TimeProvider? clock)
    {
        _current = current;
        _certificatePath = certificatePath;
        _keyPath = keyPath;
        _trust = trust;
        _requiredEku = requiredEku;
        _clock = clock ?? TimeProvider.System;
        _seen = certificatePath is null || keyPath is null ? default : Stamp(certificatePath, keyPath);
    }

    public static TimeSpan MinimumInterval { get; } = TimeSpan.FromSeconds(1);

    /// <summary>A certificate that never changes (tests, callers that manage their own); disposing this leaves it to its caller.</summary>
    public static ReloadingCertificate Fixed(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        return new ReloadingCertificate(certificate, null, null, null, "", null);
    }

    /// <summary>
    /// Loads the pair from <paramref name="certificatePath"/> and <paramref name="keyPath"/> and follows them. The first
    /// load must succeed (a failure throws as <see cref="PemFiles.LoadWithKey"/> does); later ones are checked against
    /// <paramref name="trust"/> for <paramref name="requiredEku"/> before they are used.
    /// </summary>
    public static ReloadingCertificate FromFiles(string certificatePath, string keyPath, ClusterTrust? trust, string requiredEku, TimeProvider? clock = null)
    {
        ArgumentNullException.ThrowIfNull(certificatePath);
        ArgumentNullException.ThrowIfNull(keyPath);
        return new ReloadingCertificate(PemFiles.LoadWithKey(certificatePath, keyPath), certificatePath, keyPath, trust, requiredEku, clock);
    }

    /// <summary>Why the last changed pair was not taken (null when it was, or nothing changed).</summary>
    public string? LastError { get; private set; }

    /// <summary>How many times a new pair was taken since this object was made.</summary>
    public int Reloads { get; private set; }

    /// <summary>The certificate for the next handshake: re-reads the files when they changed (throttled).</summary>
    public X509Certificate2 Current
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            Refresh(force: false);
            return Volatile.Read(ref _current);
        }
    }

    /// <summary>SHA-256 of the certificate in use (hex): what a peer's handshake sees.</summary>
    public string Sha256Hex => Convert.ToHexStringLower(ClusterTrust.Sha256Of(Volatile.Read(ref _current)));

    /// <summary>Looks at the files now (or, unless <paramref name="force"/>, when the last look is older than the interval); true when a new pair was taken.</summary>
    public bool Refresh(bool force = false)
    {
        if (_certificatePath is null || _keyPath is null)
        {
            return false;
        }

        long nowTicks = _clock.GetUtcNow().UtcTicks;
        long last = Volatile.Read(ref _lastCheckTicks);
        if (!force && last != long.MinValue && nowTicks - last < MinimumInterval.Ticks)
        {
            return false;
        }

        lock (_gate)
        {
            Volatile.Write(ref _lastCheckTicks, nowTicks);
            (DateTime, long, DateTime, long) stamp = Stamp(_certificatePath, _keyPath);
            if (stamp == _seen)
            {
                return false;
            }

            X509Certificate2 fresh;
            try
            {
                fresh = PemFiles.LoadWithKey(_certificatePath, _keyPath);
            }
            catch (Exception e) when (e is CryptographicException or IOException or ArgumentException or UnauthorizedAccessException)
            {
                // Possibly caught between the certificate and the key being written: the stamp is not recorded, so the
                // next look tries again.
                LastError = $"the certificate {_certificatePath} and key {_keyPath} do not load as a pair ({e.GetType().Name})";
                return false;
            }

            if (_trust is not null && !_trust.Validate(fresh, _requiredEku))
            {
                // Not recorded as seen: the trusted CAs may change (a CA rotation whose bundle reaches this host after the
                // certificate), so the pair is tried again on the next look.
                fresh.Dispose();
                LastError = $"the certificate {_certificatePath} does not chain to the cluster CA with the required usage, is outside its validity or is revoked; the previous one stays in use";
                return false;
            }

            _seen = stamp;
            // Handshakes in progress may still hold the previous certificate: it is disposed with this object, not now.
            _retired.Add(Volatile.Read(ref _current));
            Volatile.Write(ref _current, fresh);
            LastError = null;
            Reloads++;
            return true;
        }
    }

    private static (DateTime, long, DateTime, long) Stamp(string certificatePath, string keyPath)
    {
        var c = new FileInfo(certificatePath);
        var k = new FileInfo(keyPath);
        return (c.Exists ? c.LastWriteTimeUtc : DateTime.MinValue, c.Exists ? c.Length : -1, k.Exists ? k.LastWriteTimeUtc : DateTime.MinValue, k.Exists ? k.Length : -1);
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            if (_certificatePath is not null)
            {
                // A fixed certificate belongs to its caller.
                _current.Dispose();
            }

            foreach (X509Certificate2 c in _retired)
            {
                c.Dispose();
            }

            _retired.Clear();
        }
    }
}
