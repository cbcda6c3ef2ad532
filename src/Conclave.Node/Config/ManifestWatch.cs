namespace Conclave.Node.Config;

/// <summary>
/// Re-reads the cluster manifest file when it changes (its write time or length), at most once per
/// <see cref="MinimumInterval"/>, and puts the new node keys into the shared <see cref="ClusterManifest"/> instance
/// (<see cref="ClusterManifest.ReplaceWith"/>), so a rotated node identity is learnt without a restart
/// (docs/ROTATION.md "Rotating a node's identity"). A file that does not load or validate is ignored (the keys in
/// use stay) and reported once through <see cref="LastError"/>. Node addresses and the coordinator key are read but
/// connections are not rebuilt.
/// </summary>
public sealed class ManifestWatch(ClusterManifest manifest, string path, TimeProvider? clock = null)
{
    private readonly TimeProvider _clock = clock ?? TimeProvider.System;
    private readonly Lock _gate = new();
    private (DateTime Written, long Length) _seen = Stamp(path);
    private DateTimeOffset _lastCheck = DateTimeOffset.MinValue;

    public static TimeSpan MinimumInterval { get; } = TimeSpan.FromSeconds(1);

    public ClusterManifest Manifest { get; } = manifest;

    public string Path { get; } = path;

    /// <summary>Why the last changed file was not taken (null when it was, or nothing changed).</summary>
    public string? LastError { get; private set; }

    /// <summary>Reloads when the file changed since the last look (throttled); true when new keys were taken.</summary>
    public bool Refresh(bool force = false)
    {
        lock (_gate)
        {
            DateTimeOffset now = _clock.GetUtcNow();
            if (!force && now - _lastCheck < MinimumInterval)
            {
                return false;
            }

            _lastCheck = now;
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
        }
    }

    private static (DateTime, long) Stamp(string path)
    {
        var info = new FileInfo(path);
        return info.Exists ? (info.LastWriteTimeUtc, info.Length) : (DateTime.MinValue, -1);
    }
}
