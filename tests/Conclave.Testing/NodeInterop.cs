using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Conclave.Testing;

/// <summary>
/// Runs tests/interop/check.mjs with Node: hands it cases as JSON and returns one JSON value per case.
/// The Node packages are installed by ./test.sh (npm ci in tests/interop).
/// </summary>
public static class NodeInterop
{
    public static JsonArray Run(string check, IEnumerable<object> cases, TimeSpan? timeout = null)
    {
        string payload = JsonSerializer.Serialize(new { check, cases });
        var psi = new ProcessStartInfo("node", "check.mjs")
        {
            WorkingDirectory = RepoPaths.Interop,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using Process p = Process.Start(psi) ?? throw new InvalidOperationException("node could not be started");
        Task<string> stdout = p.StandardOutput.ReadToEndAsync();
        Task<string> stderr = p.StandardError.ReadToEndAsync();
        p.StandardInput.Write(payload);
        p.StandardInput.Close();
        if (!p.WaitForExit(timeout ?? TimeSpan.FromMinutes(3)))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"interop check '{check}' timed out");
        }

        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException($"interop check '{check}' failed (exit {p.ExitCode}): {stderr.Result}");
        }

        JsonNode? root = JsonNode.Parse(stdout.Result);
        return root?["results"]?.AsArray() ?? throw new InvalidOperationException("interop output has no results");
    }
}
