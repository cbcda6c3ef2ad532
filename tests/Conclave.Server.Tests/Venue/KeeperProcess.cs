using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;

namespace Conclave.Server.Tests.Venue;

/// <summary>
/// The example keeper (examples/keeper, conclave-keeper.dll built with the tests) run as a separate process: its
/// standard output lines are collected as they come, each starting with the UTC time it was written.
/// </summary>
internal sealed class KeeperProcess : IDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _lines = new();
    private readonly ConcurrentQueue<string> _errors = new();

    private KeeperProcess(Process process)
    {
        _process = process;
        _process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is { } line)
            {
                _lines.Enqueue(line);
            }
        };
        _process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is { } line)
            {
                _errors.Enqueue(line);
            }
        };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public static string Dll
    {
        get
        {
            string path = Path.Combine(RepoPaths.Root, "examples", "keeper", "bin", RepoPaths.Configuration, "net10.0", "conclave-keeper.dll");
            return File.Exists(path) ? path : throw new FileNotFoundException("build the solution first: conclave-keeper.dll not found", path);
        }
    }

    public static KeeperProcess Start(IEnumerable<string> arguments)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Dll);
        foreach (string a in arguments)
        {
            psi.ArgumentList.Add(a);
        }

        return new KeeperProcess(Process.Start(psi) ?? throw new InvalidOperationException("the keeper did not start"));
    }

    public IReadOnlyList<string> Lines => [.. _lines];

    /// <summary>Standard error so far, lines joined with \n.</summary>
    public string Errors => string.Join('\n', _errors);

    /// <summary>Waits for the process to exit by itself; its exit code.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cts.Token);
        _process.WaitForExit(); // drains the redirected output
        return _process.ExitCode;
    }

    public string Output => string.Join('\n', _lines) + (_errors.IsEmpty ? "" : "\nstderr:\n" + string.Join('\n', _errors));

    /// <summary>Lines whose event word (after the time) is <paramref name="word"/>.</summary>
    public IReadOnlyList<string[]> Events(string word) => [.. Lines.Select(l => l.Split(' ')).Where(p => p.Length > 1 && p[1] == word)];

    /// <summary>The time a line was written (its first field).</summary>
    public static DateTimeOffset Time(string[] fields) => DateTimeOffset.Parse(fields[0], CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);

    public async Task WaitForAsync(Func<KeeperProcess, bool> condition, string what, TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        while (!condition(this))
        {
            if (_process.HasExited)
            {
                _process.WaitForExit(); // drains the redirected output
                Assert.Fail($"the keeper exited ({_process.ExitCode}) before {what}:\n{Output}");
            }

            Assert.True(sw.Elapsed < timeout, $"timed out waiting until {what}:\n{Output}");
            await Task.Delay(100);
        }
    }

    /// <summary>Sends SIGTERM and waits for the process to exit; its exit code.</summary>
    public async Task<int> TerminateAsync(TimeSpan timeout)
    {
        using (var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
        }

        using var cts = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cts.Token);
        _process.WaitForExit(); // drains the redirected output
        return _process.ExitCode;
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(10_000);
        }

        _process.Dispose();
    }
}
