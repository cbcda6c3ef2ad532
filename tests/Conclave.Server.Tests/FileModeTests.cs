using Conclave.Node.Config;
using Conclave.Server.Hosting;
using Conclave.Storage;

namespace Conclave.Server.Tests;

/// <summary>Issue 14 item 11: the folder `conclave up` makes is owner-only from the start; a writable one is refused.</summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class FileModeTests
{
    [Fact]
    public void Fresh_up_layout_has_only_0700_folders_and_0600_files()
    {
        string dir = Path.Combine(Path.GetTempPath(), "conclave-modes-" + Guid.NewGuid().ToString("N"), "cluster");
        try
        {
            new LocalClusterLayout(dir).EnsureCreated(3, 2, 1, 2);
            var folders = Directory.GetDirectories(dir, "*", SearchOption.AllDirectories).Append(dir).Append(Path.GetDirectoryName(dir)!).ToList();
            string[] files = Directory.GetFiles(dir, "*", SearchOption.AllDirectories);
            Assert.Contains(files, f => f.EndsWith("identity.sealed", StringComparison.Ordinal));
            Assert.Contains(files, f => f.EndsWith("node.kek", StringComparison.Ordinal));
            Assert.Contains(files, f => f.EndsWith("ca.key", StringComparison.Ordinal));
            Assert.Contains(files, f => f.EndsWith("server.json", StringComparison.Ordinal));
            Assert.All(folders, d => Assert.True(File.GetUnixFileMode(d) == OwnerOnly.DirectoryMode, $"{d}: {File.GetUnixFileMode(d)}"));
            Assert.All(files, f => Assert.True(File.GetUnixFileMode(f) == OwnerOnly.FileMode, $"{f}: {File.GetUnixFileMode(f)}"));
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(dir)!, recursive: true);
        }
    }

    [Fact]
    public void World_writable_cluster_folder_is_refused_with_chmod_700()
    {
        string dir = Path.Combine(Path.GetTempPath(), "conclave-modes-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            File.SetUnixFileMode(dir, (UnixFileMode)0x1FF); // 0777
            var e = Assert.Throws<ConfigException>(() => new LocalClusterLayout(dir).EnsureCreated(3, 2, 1, 2));
            Assert.Contains("chmod 700 " + dir, e.Message, StringComparison.Ordinal);
            Assert.Empty(Directory.GetFileSystemEntries(dir));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
