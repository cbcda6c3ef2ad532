using System.Globalization;
using System.Text;

namespace Conclave.Storage;

/// <summary>
/// Files and folders that hold keys, databases, audit logs, identities or configs (issue 14 item 11): folders are
/// created 0700 and files 0600 from the start (never created with the default mode and tightened later), and a data
/// folder that group or others can write is refused. On Windows the modes do not apply; the calls still create and write.
/// </summary>
public static class OwnerOnly
{
    /// <summary>rwx------</summary>
    public const UnixFileMode DirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    /// <summary>rw-------</summary>
    public const UnixFileMode FileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>Creates the folder (and any missing parents) with mode 0700; an existing folder is left as it is.</summary>
    public static void CreateDirectory(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(path);
        }
        else
        {
            // Directory.CreateDirectory(path, mode) applies the mode to the last folder only: create each missing one.
            string full = Path.GetFullPath(path);
            var missing = new Stack<string>();
            for (string? d = full; d is not null && !Directory.Exists(d); d = Path.GetDirectoryName(d))
            {
                missing.Push(d);
            }

            while (missing.TryPop(out string? d))
            {
                Directory.CreateDirectory(d, DirectoryMode);
            }
        }
    }

    /// <summary>
    /// Moves <paramref name="replacement"/> over <paramref name="path"/>; the file it replaces (a retired key) is
    /// overwritten with zeros and flushed first (a copy-on-write or journaling file system may still hold its old bytes).
    /// </summary>
    public static void ReplaceErasingOld(string replacement, string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(replacement);
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (File.Exists(path))
        {
            using var f = new FileStream(path, System.IO.FileMode.Open, FileAccess.Write, FileShare.None);
            f.Write(new byte[f.Length]);
            f.Flush(flushToDisk: true);
        }

        File.Move(replacement, path, overwrite: true);
    }

    /// <summary>Writes a file created with mode 0600 (an existing file is truncated and set to 0600 first).</summary>
    public static void WriteAllBytes(string path, ReadOnlySpan<byte> content)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var options = new FileStreamOptions { Mode = System.IO.FileMode.Create, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = FileMode;
            if (File.Exists(path))
            {
                File.SetUnixFileMode(path, FileMode);
            }
        }

        using var fs = new FileStream(path, options);
        fs.Write(content);
        fs.Flush(flushToDisk: true);
    }

    /// <summary>Writes UTF-8 text to a file created with mode 0600.</summary>
    public static void WriteAllText(string path, string content) => WriteAllBytes(path, Encoding.UTF8.GetBytes(content));

    /// <summary>Creates an empty file with mode 0600 if it does not exist (so a database and its -wal/-shm files start owner-only).</summary>
    public static void CreateEmptyFile(string path)
    {
        var options = new FileStreamOptions { Mode = System.IO.FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = FileMode;
        }

        try
        {
            using var fs = new FileStream(path, options);
        }
        catch (IOException) when (File.Exists(path))
        {
            // Someone created it first: fine, its mode is checked like any other.
        }
    }

    /// <summary>
    /// The reason a data folder may not be used, or null: group or others can write it (anyone could then replace the
    /// database, audit log or sealed identity). The text is one line naming the folder and the fix.
    /// </summary>
    public static string? WritableByOthers(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        if (OperatingSystem.IsWindows() || !Directory.Exists(directory))
        {
            return null;
        }

        UnixFileMode mode = File.GetUnixFileMode(directory);
        if ((mode & (UnixFileMode.GroupWrite | UnixFileMode.OtherWrite)) == 0)
        {
            return null;
        }

        string octal = Convert.ToString((int)mode & 0x1FF, 8).PadLeft(4, '0').ToString(CultureInfo.InvariantCulture);
        return $"data folder {Path.GetFullPath(directory)} is writable by group or others (mode {octal}); refusing to use it: restrict it with chmod 700 {Path.GetFullPath(directory)}";
    }
}
