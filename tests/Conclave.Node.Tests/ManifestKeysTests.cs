using Conclave.Node.Config;

namespace Conclave.Node.Tests;

/// <summary>
/// The per-step key look-up on the signing path (issue 18): the accepted identity keys of a node are decoded once and
/// served from a cache while the manifest does not change, and a manifest re-read is throttled without a lock.
/// </summary>
public sealed class ManifestKeysTests
{
    private static readonly string KeyA = new('a', 64);
    private static readonly string KeyB = new('b', 64);
    private static readonly string KeyOld = new('c', 64);

    [Fact]
    public void CurrentKeyOnly_IsDecodedOnce_AndServedFromTheCache()
    {
        var m = new ClusterManifest { Nodes = [new ClusterNode { Id = 1, IdentityKey = KeyA }] };
        IReadOnlyList<byte[]> first = m.AcceptedIdentityKeys(1, 0);
        IReadOnlyList<byte[]> second = m.AcceptedIdentityKeys(1, 0);

        Assert.Single(first);
        Assert.Equal(Convert.FromHexString(KeyA), first[0]);
        Assert.Same(first, second);
        Assert.Empty(m.AcceptedIdentityKeys(2, 0));
    }

    [Fact]
    public void AChangedIdentityKey_IsNoticed()
    {
        var node = new ClusterNode { Id = 1, IdentityKey = KeyA };
        var m = new ClusterManifest { Nodes = [node] };
        Assert.Equal(Convert.FromHexString(KeyA), Assert.Single(m.AcceptedIdentityKeys(1, 0)));

        node.IdentityKey = KeyB;
        Assert.Equal(Convert.FromHexString(KeyB), Assert.Single(m.AcceptedIdentityKeys(1, 0)));

        m.ReplaceWith(new ClusterManifest { Nodes = [new ClusterNode { Id = 1, IdentityKey = KeyA }] });
        Assert.Equal(Convert.FromHexString(KeyA), Assert.Single(m.AcceptedIdentityKeys(1, 0)));
    }

    [Fact]
    public void ARetiredKey_IsAcceptedUntilItsOverlapEnds_ThenOnlyTheCurrentOne()
    {
        var node = new ClusterNode
        {
            Id = 1,
            IdentityKey = KeyA,
            RetiredIdentityKeys = [new RetiredIdentityKey { IdentityKey = KeyOld, AcceptedUntilUnixMs = 1_000 }],
        };
        var m = new ClusterManifest { Nodes = [node] };

        IReadOnlyList<byte[]> during = m.AcceptedIdentityKeys(1, 999);
        Assert.Equal(2, during.Count);
        Assert.Equal(Convert.FromHexString(KeyA), during[0]);
        Assert.Equal(Convert.FromHexString(KeyOld), during[1]);

        Assert.Equal(Convert.FromHexString(KeyA), Assert.Single(m.AcceptedIdentityKeys(1, 1_000)));
        Assert.Equal(2, m.IdentityKeysAt(1, 500).Count);
    }

    [Fact]
    public void ManifestWatch_LooksAtTheFileAtMostOncePerInterval()
    {
        string path = Path.Combine(Path.GetTempPath(), $"conclave-manifest-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, "{}");
        try
        {
            var clock = new ManualClock(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
            var watch = new ManifestWatch(new ClusterManifest(), path, clock);
            Assert.False(watch.Refresh()); // first look: unchanged
            Assert.Null(watch.LastError);

            File.WriteAllText(path, "not json, and longer than before");
            clock.Now += TimeSpan.FromMilliseconds(500);
            Assert.False(watch.Refresh()); // inside the interval: the file is not looked at
            Assert.Null(watch.LastError);

            clock.Now += TimeSpan.FromMilliseconds(600);
            Assert.False(watch.Refresh()); // past it: the change is seen, and refused as invalid
            Assert.NotNull(watch.LastError);

            Assert.False(watch.Refresh(force: true)); // forced: looks again at once
            Assert.NotNull(watch.LastError);
        }
        finally
        {
            File.Delete(path);
        }
    }

    private sealed class ManualClock(DateTimeOffset now) : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = now;

        public override DateTimeOffset GetUtcNow() => Now;
    }
}
