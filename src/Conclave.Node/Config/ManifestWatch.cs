namespace Conclave.Node.Config;

/// <summary>
/// Re-reads the cluster manifest file when it changes (its write time or length), at most once per
/// <see cref="MinimumInterval"/>, and puts the new node keys into the shared <see cref="ClusterManifest"/> instance
/// (<see cref="ClusterManifest.ReplaceWith"/>), so a rotated node identity is learnt without a restart
/// (docs/ROTATION.md "Rotating a node's identity"). A file that does not load or validate is ignored (the keys in
/// use stay) and reported once through <see cref="LastError"/>. The coordinator's keys and the revoked certificates
/// are taken too; node addresses are read but connections are not rebuilt.
/// </summary>
public sealed class ManifestWatch(ClusterManifest manifest, string path, TimeProvider? clock = null)
{
    private readonly TimeProvider _clock = clock ?? TimeProvider.System;
    private readonly Lock _gate = new();
    private (DateTime Written, long Length) _seen = Stamp(path);
    private long _lastCheckTicks = long.MinValue;

    public static TimeSpan MinimumInterval { get; } = TimeSpan.FromSeconds(1);

    public ClusterManifest Manifest { get; } = manifest;

    public string Path { get; } = path;

    /// <summary>Why the last changed file was not taken (null when it was, or nothing changed).</summary>
    public string? LastError { get; private set; }

    /// <summary>Reloads when the file changed since the last look (throttled); true when new keys were taken.</summary>
    /// <remarks>Called on every signing step: inside the interval it returns without taking the lock.</remarks>
    public bool Refresh(bool force = false)
    {
        long nowTicks = _clock.GetUtcNow().UtcTicks;
        if (!force && IsRecent(Volatile.Read(ref _lastCheckTicks), nowTicks))
        {
            return false;
        }

        lock (_gate)
        {
            if (!force && IsRecent(_lastCheckTicks, nowTicks))
            {
                return false;
            }

            Volatile.Write(ref _lastCheckTicks, nowTicks);
            (DateTime Written, long Length) stamp = Stamp(Path);
            if (!force && stamp == _seen)
            {
                return false;
            }

            _seen = stamp;
            try
            {
                Manifest.ReplaceWith(ClusterManifest.Load(Path));
                LastError = null;
                return true;
            }
            catch (ConfigException e)
            {
                LastError = e.Message;
                return false;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Caught while another process writes it (or unreadable for a moment): look again next time.
                _seen = default;
                LastError = $"cluster manifest {Path} could not be read ({e.GetType().Name}); the keys in use stay";
                return false;
            }
        }
    }

    /// <summary>
    /// Reloads now if the file changed since the last look, ignoring the interval (one stat when it did not): for a
    /// message signed by a key the manifest in memory does not name yet. True when new keys were taken.
    /// </summary>
    public bool RefreshIfChanged()
    {
        lock (_gate)
        {
            if (Stamp(Path) == _seen)
            {
                return false;
            }
        }

        return Refresh(force: true);
    }

    private static bool IsRecent(long lastTicks, long nowTicks) =>
        lastTicks != long.MinValue && nowTicks - lastTicks < MinimumInterval.Ticks;

    private static (DateTime, long) Stamp(string path)
    {
        var info = new FileInfo(path);
        return info.Exists ? (info.LastWriteTimeUtc, info.Length) : (DateTime.MinValue, -1);
    }
}
