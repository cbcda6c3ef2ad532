using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Conclave.Node.Config;

namespace Conclave.Node.Pki;

/// <summary>
/// The cluster CA certificates a process trusts: one, or two while the CA is being rotated (docs/ROTATION.md "Rotating
/// the cluster CA"). Made from the configured CA file (<c>tls.ca</c>), a PEM bundle of one or more CA certificates, it
/// follows that file: when it changes (write time or length) it is read again on the next look, at most once per
/// <see cref="MinimumInterval"/>. A file that does not load as one or more CA certificates is not taken: the roots in
/// use stay and <see cref="LastError"/> says why (a file caught half-written is tried again on the next look).
/// </summary>
public sealed class TrustRoots : IDisposable
{
    private readonly string? _path;
    private readonly TimeProvider _clock;
    private readonly Lock _gate = new();
    private readonly List<X509Certificate2> _retired = [];
    private IReadOnlyList<X509Certificate2> _current;
    private (DateTime, long) _seen;
    private long _lastCheckTicks = long.MinValue;

    private TrustRoots(IReadOnlyList<X509Certificate2> roots, string? path, TimeProvider? clock)
    {
        _current = roots;
        _path = path;
        _clock = clock ?? TimeProvider.System;
        _seen = path is null ? default : Stamp(path);
    }

    public static TimeSpan MinimumInterval { get; } = TimeSpan.FromSeconds(1);

    /// <summary>Roots that never change; the certificates stay their caller's.</summary>
    public static TrustRoots Fixed(params X509Certificate2[] roots)
    {
        ArgumentNullException.ThrowIfNull(roots);
        if (roots.Length == 0 || roots.Any(r => r is null))
        {
            throw new ArgumentException("at least one CA certificate is required", nameof(roots));
        }

        return new TrustRoots([.. roots], null, null);
    }

    /// <summary>Loads the CA bundle at <paramref name="path"/> (the first load must succeed: <see cref="ConfigException"/>) and follows it.</summary>
    public static TrustRoots FromFile(string path, TimeProvider? clock = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        return new TrustRoots(LoadBundle(path), path, clock);
    }

    /// <summary>Why the last changed file was not taken (null when it was, or nothing changed).</summary>
    public string? LastError { get; private set; }

    /// <summary>How many times a changed file was taken since this object was made.</summary>
    public int Reloads { get; private set; }

    /// <summary>The trusted CA certificates now: re-reads the file when it changed (throttled).</summary>
    public IReadOnlyList<X509Certificate2> Current
    {
        get
        {
            Refresh(force: false);
            return Volatile.Read(ref _current);
        }
    }

    /// <summary>Looks at the file now (or, unless <paramref name="force"/>, when the last look is older than the interval); true when new roots were taken.</summary>
    public bool Refresh(bool force = false)
    {
        if (_path is null)
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
            (DateTime, long) stamp = Stamp(_path);
            if (stamp == _seen)
            {
                return false;
            }

            IReadOnlyList<X509Certificate2> fresh;
            try
            {
                fresh = LoadBundle(_path);
            }
            catch (ConfigException e)
            {
                LastError = e.Message + "; the CA certificates in use stay";
                return false;
            }

            _seen = stamp;
            // Chains being built may still hold the previous certificates: they are disposed with this object, not now.
            _retired.AddRange(Volatile.Read(ref _current));
            Volatile.Write(ref _current, fresh);
            LastError = null;
            Reloads++;
            return true;
        }
    }

    /// <summary>
    /// Every certificate of a PEM file, each of which must be a CA certificate (basic constraints CA); at least one.
    /// Anything else is a <see cref="ConfigException"/> naming the file.
    /// </summary>
    public static IReadOnlyList<X509Certificate2> LoadBundle(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        string pem;
        try
        {
            pem = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException($"the cluster CA file {path} cannot be read ({e.GetType().Name})");
        }

        var roots = new List<X509Certificate2>();
        try
        {
            ReadOnlySpan<char> rest = pem;
            while (PemEncoding.TryFind(rest, out PemFields f))
            {
                if (rest[f.Label].SequenceEqual("CERTIFICATE"))
                {
                    X509Certificate2 c = X509CertificateLoader.LoadCertificate(Convert.FromBase64String(rest[f.Base64Data].ToString()));
                    roots.Add(c);
                    if (c.Extensions.OfType<X509BasicConstraintsExtension>().FirstOrDefault() is not { CertificateAuthority: true })
                    {
                        throw new ConfigException($"the cluster CA file {path} holds a certificate that is not a CA ({c.Subject})");
                    }
                }

                rest = rest[f.Location.End..];
            }
        }
        catch (Exception e) when (e is CryptographicException or FormatException)
        {
            roots.ForEach(r => r.Dispose());
            throw new ConfigException($"the cluster CA file {path} does not hold PEM certificates");
        }
        catch (ConfigException)
        {
            roots.ForEach(r => r.Dispose());
            throw;
        }

        if (roots.Count == 0)
        {
            throw new ConfigException($"the cluster CA file {path} holds no certificate");
        }

        return roots;
    }

    private static (DateTime, long) Stamp(string path)
    {
        var f = new FileInfo(path);
        return (f.Exists ? f.LastWriteTimeUtc : DateTime.MinValue, f.Exists ? f.Length : -1);
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_path is not null)
            {
                foreach (X509Certificate2 c in _current)
                {
                    c.Dispose();
                }
            }

            foreach (X509Certificate2 c in _retired)
            {
                c.Dispose();
            }

            _retired.Clear();
        }
    }
}
