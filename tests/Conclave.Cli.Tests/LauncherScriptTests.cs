using System.Diagnostics;

namespace Conclave.Cli.Tests;

/// <summary>
/// The ./conclave launcher at the repository root, run as a user runs it from another folder: it runs the built CLI
/// without building, and asks ./run.sh for a build only when the build is missing or a source is newer. Run on a copy
/// of the script in a scratch root whose "build" is this test run's CLI output and whose run.sh only records a call.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class LauncherScriptTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "conclave-launcher-" + Guid.NewGuid().ToString("N")[..10]);

    public LauncherScriptTests()
    {
        Directory.CreateDirectory(Path.Combine(_root, "src", "Conclave.Cli"));
        Directory.CreateDirectory(Path.Combine(_root, "artifacts"));
        File.Copy(Path.Combine(RepoPaths.Root, "conclave"), Path.Combine(_root, "conclave"));
        File.SetUnixFileMode(Path.Combine(_root, "conclave"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        File.WriteAllText(Path.Combine(_root, "run.sh"), "#!/usr/bin/env bash\necho \"build=$CONCLAVE_BUILD_ONLY\" >> \"$(dirname \"$0\")/run.log\"\n");
        File.SetUnixFileMode(Path.Combine(_root, "run.sh"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        File.WriteAllText(Path.Combine(_root, "src", "Conclave.Cli", "Old.cs"), "// older than the build");
        File.SetLastWriteTimeUtc(Path.Combine(_root, "src", "Conclave.Cli", "Old.cs"), DateTime.UtcNow.AddHours(-1));

        // The "build": a copy of the CLI this test project was built with.
        string built = Path.GetDirectoryName(typeof(CliApp).Assembly.Location)!;
        string cli = Path.Combine(_root, "artifacts", "cli");
        Directory.CreateDirectory(cli);
        foreach (string f in Directory.GetFiles(built))
        {
            File.Copy(f, Path.Combine(cli, Path.GetFileName(f)));
        }

        foreach (string d in Directory.GetDirectories(built))
        {
            Directory.CreateSymbolicLink(Path.Combine(cli, Path.GetFileName(d)), d);
        }

        // The copy keeps the test build's write time, which is as old as the last build that changed the CLI (an
        // incremental build leaves an unchanged dll alone): more than an hour before, the "older" source above is newer
        // than the "build" and the launcher rightly asks for a build. This scratch build is made now.
        File.SetLastWriteTimeUtc(Path.Combine(cli, "conclave.dll"), DateTime.UtcNow);
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private (int Exit, string Out, string Err) Run(params string[] args)
    {
        var psi = new ProcessStartInfo(Path.Combine(_root, "conclave"))
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Path.GetTempPath(),
        };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using Process p = Process.Start(psi)!;
        Task<string> o = p.StandardOutput.ReadToEndAsync();
        Task<string> e = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(TimeSpan.FromSeconds(60)));
        return (p.ExitCode, o.Result, e.Result);
    }

    [Fact]
    public void Launcher_RunsTheBuiltCli_FromAnotherFolder_WithoutBuilding()
    {
        var r = Run("--help");
        Assert.True(r.Exit == 0, r.Err);
        Assert.Contains("conclave", r.Out, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(_root, "run.log")), "the launcher asked for a build although nothing changed");
    }

    [Fact]
    public void Launcher_AsksForABuild_WhenASourceIsNewer()
    {
        File.WriteAllText(Path.Combine(_root, "src", "Conclave.Cli", "New.cs"), "// newer than the build");
        File.SetLastWriteTimeUtc(Path.Combine(_root, "src", "Conclave.Cli", "New.cs"), DateTime.UtcNow.AddMinutes(5));
        var r = Run("--help");
        Assert.True(r.Exit == 0, r.Err);
        Assert.Equal("build=1", File.ReadAllText(Path.Combine(_root, "run.log")).Trim());
    }
}
