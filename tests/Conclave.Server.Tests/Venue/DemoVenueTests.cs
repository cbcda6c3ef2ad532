using System.Diagnostics;
using System.Text;

namespace Conclave.Server.Tests.Venue;

/// <summary><c>conclave demo venue</c> run as a user would: one process that starts everything and exits.</summary>
public sealed class DemoVenueTests
{
    [Fact]
    public async Task A_missing_anvil_is_one_line_and_exit_code_2()
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in new[] { RepoPaths.CliDll, "demo", "venue", "--anvil", "/nonexistent/anvil" })
        {
            psi.ArgumentList.Add(a);
        }

        using Process p = Process.Start(psi)!;
        Task<string> stdout = p.StandardOutput.ReadToEndAsync();
        string stderr = await p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        Assert.Equal(2, p.ExitCode);
        Assert.Equal("conclave: error: anvil not found at /nonexistent/anvil: run `npm ci` in tests/interop, or pass --anvil PATH", stderr.Trim());
        Assert.Equal("", (await stdout).Trim());
    }

    [Fact]
    public async Task Conclave_demo_venue_liquidates_every_account_through_the_keeper_releases_through_the_treasury_Safe_and_exits_zero()
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in new[] { RepoPaths.CliDll, "demo", "venue", "--accounts", "10" })
        {
            psi.ArgumentList.Add(a);
        }

        if (Environment.GetEnvironmentVariable("CONCLAVE_TEST_ANVIL") is { Length: > 0 } anvil)
        {
            psi.ArgumentList.Add("--anvil");
            psi.ArgumentList.Add(anvil);
        }

        var output = new StringBuilder();
        using Process p = Process.Start(psi)!;
        p.OutputDataReceived += (_, e) => { lock (output) { output.AppendLine(e.Data); } };
        p.ErrorDataReceived += (_, e) => { lock (output) { output.AppendLine(e.Data); } };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(4));
        try
        {
            await p.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail("the demo did not finish within 4 minutes:\n" + output);
        }

        p.WaitForExit();
        string text;
        lock (output)
        {
            text = output.ToString();
        }

        Assert.True(p.ExitCode == 0, $"exit {p.ExitCode}:\n{text}");
        Assert.Contains("demo: summary: 10 of 10 positions closed; 10 liquidations mined from 0x", text, StringComparison.Ordinal);
        Assert.Contains("(the threshold key)", text, StringComparison.Ordinal);
        Assert.Contains(" stopped mode=liquidate sent=10 reverted=0 failed=0", text, StringComparison.Ordinal);
        Assert.Equal(10, text.Split('\n').Count(l => l.StartsWith("keeper | ", StringComparison.Ordinal) && l.Contains(" liquidated 0x", StringComparison.Ordinal)));

        // The keeper was given no chain URL: it read the chain through Conclave's /rpc.
        Assert.Contains(" reads=conclave-rpc", text, StringComparison.Ordinal);

        // The treasury: a Safe deployed through POST /v1/safes; one owner's release refused by the Safe, two owners' mined.
        Assert.Contains("demo: treasury Safe deployed at 0x", text, StringComparison.Ordinal);
        Assert.Contains("demo: treasury: releasing 1 ether with one owner's signature is refused by the Safe", text, StringComparison.Ordinal);
        Assert.Contains("demo: treasury: 1 ether released from the pool to 0x", text, StringComparison.Ordinal);
    }
}
