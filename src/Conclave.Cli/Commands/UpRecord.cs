using System.Text.Json;
using System.Text.Json.Serialization;

namespace Conclave.Cli.Commands;

/// <summary>
/// What the last <c>conclave up</c> on this account serves: its API URL, its admin token file and its data folder, in
/// <c>$CONCLAVE_STATE_DIR/up.json</c> (default <c>$XDG_STATE_HOME/conclave</c>, else <c>~/.local/state/conclave</c>;
/// folder 0700, file 0600). The CLI's API commands read it when nothing else names a server or token, so they work from
/// any folder. It holds paths, never the token itself.
/// </summary>
internal sealed record UpRecord(string Api, string AdminTokenFile, string DataDir, string? CaFile = null)
{
    public const string StateDirVariable = "CONCLAVE_STATE_DIR";

    public static string Path
    {
        get
        {
            string? dir = Environment.GetEnvironmentVariable(StateDirVariable);
            if (string.IsNullOrEmpty(dir))
            {
                string? xdg = Environment.GetEnvironmentVariable("XDG_STATE_HOME");
                dir = string.IsNullOrEmpty(xdg)
                    ? System.IO.Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "state", "conclave")
                    : System.IO.Path.Combine(xdg, "conclave");
            }

            return System.IO.Path.Combine(dir, "up.json");
        }
    }

    public static void Write(UpRecord record)
    {
        string path = Path;
        try
        {
            string dir = System.IO.Path.GetDirectoryName(path)!;
            if (OperatingSystem.IsWindows())
            {
                Directory.CreateDirectory(dir);
            }
            else
            {
                Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }

            string temp = path + ".tmp";
            File.WriteAllText(temp, JsonSerializer.Serialize(record, UpRecordJson.Default.UpRecord));
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(temp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            }

            File.Move(temp, path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The record is a convenience: without it, --data or --token-file still work.
            Console.Error.WriteLine($"conclave: note: could not record this server in {path} ({e.GetType().Name}); other commands need --data or --token-file");
        }
    }

    public static UpRecord? Read()
    {
        string path = Path;
        try
        {
            return File.Exists(path) ? JsonSerializer.Deserialize(File.ReadAllText(path), UpRecordJson.Default.UpRecord) : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
        {
            return null;
        }
    }
}

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(UpRecord))]
internal sealed partial class UpRecordJson : JsonSerializerContext;
