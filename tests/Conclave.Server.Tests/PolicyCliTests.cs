using System.Diagnostics;
using System.Net;
using Conclave.Testing;

using static Conclave.Server.Tests.PolicyEnforcementTests;

namespace Conclave.Server.Tests;

/// <summary>
/// <c>conclave policies put|get|list|evaluate</c> and <c>conclave approvals list|approve|reject</c> against a server
/// (docs/POLICY.md "CLI"): what works prints, and every bad input is one line on stderr and a non-zero exit.
/// </summary>
public sealed class PolicyCliTests
{
    internal static (int Exit, string Out, string Err) Cli(PolicyServer s, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(RepoPaths.CliDll);
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["CONCLAVE_TOKEN"] = s.Http.DefaultRequestHeaders.Authorization!.Parameter;
        psi.Environment["CONCLAVE_SERVER"] = "http://" + s.Config.Listen;
        using Process p = Process.Start(psi)!;
        Task<string> o = p.StandardOutput.ReadToEndAsync();
        Task<string> e = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(TimeSpan.FromSeconds(90)));
        return (p.ExitCode, o.Result, e.Result);
    }

    private static void OneLineError((int Exit, string Out, string Err) r, string fragment)
    {
        Assert.True(r.Exit != 0, r.Out + r.Err);
        string[] lines = r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, r.Err);
        Assert.Contains(fragment, lines[0], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Policies_and_approvals_commands()
    {
        await using PolicyServer s = await PolicyServer.StartAsync();
        (string ed, _) = await CreateKeyAsync(s.Http, "ed25519");
        string dir = Path.Combine(Path.GetTempPath(), "conclave-polcli-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        try
        {
            var list = Cli(s, "policies", "list", "--json");
            Assert.True(list.Exit == 0, list.Err);
            Assert.Contains("\"starter\"", list.Out, StringComparison.Ordinal);

            string bad = Path.Combine(dir, "bad.json");
            await File.WriteAllTextAsync(bad, """{"id":"starter","version":2,"rules":[{"id":"r","effect":"allow","match":{"operation":["message"]}}]}""");
            OneLineError(Cli(s, "policies", "put", bad), "rules[0].match.operation");
            OneLineError(Cli(s, "policies", "put", Path.Combine(dir, "none.json")), "not found");

            string held = Path.Combine(dir, "held.json");
            await File.WriteAllTextAsync(held, """
                {"id":"starter","version":2,"rules":[{"id":"held","effect":"require-approval","match":{"principals":["admin"],"operations":["message"]},
                  "approval":{"mode":"or","groups":[{"name":"risk","members":["alice","bob"],"k":1}],"ttlSeconds":600}}]}
                """);
            // A put is held for approval: the CLI prints the held request, its classification and the reasons.
            var put = Cli(s, "policies", "put", held);
            Assert.True(put.Exit == 0, put.Err);
            Assert.Contains("policy starter version 2 (enforce) held for approval: request req-", put.Out, StringComparison.Ordinal);
            Assert.Contains("loosening: 2 approver(s), time lock 3600 s", put.Out, StringComparison.Ordinal);
            Assert.Contains("- require-approval rule held added", put.Out, StringComparison.Ordinal);
            string requestId = System.Text.RegularExpressions.Regex.Match(put.Out, "request (req-[0-9a-f]+)").Groups[1].Value;
            Assert.Equal("executed", (await ApprovePolicyChangeAsync(s.App.Services, requestId))["status"]!.GetValue<string>());
            OneLineError(Cli(s, "policies", "put", held), "policy-version");

            var get = Cli(s, "policies", "get", "starter");
            Assert.True(get.Exit == 0, get.Err);
            Assert.Contains("require-approval", get.Out, StringComparison.Ordinal);
            OneLineError(Cli(s, "policies", "get", "starter", "--version", "9"), "no version 9");

            var ev = Cli(s, "policies", "evaluate", "--key", ed, "--operation", "message");
            Assert.True(ev.Exit == 0, ev.Err);
            Assert.Contains("normal: require-approval", ev.Out, StringComparison.Ordinal);
            Assert.Contains("lockdown: deny", ev.Out, StringComparison.Ordinal);
            OneLineError(Cli(s, "policies", "evaluate", "--key", ed, "--operation", "steal"), "operation is not one of");
            OneLineError(Cli(s, "policies", "evaluate", "--key", ed, "--operation", "message", "--args", "[1"), "--args");

            var heldSign = await SendAsync(s.Http, HttpMethod.Post, $"/v1/keys/{ed}/sign", """{"message":"01"}""");
            Assert.Equal(HttpStatusCode.Accepted, heldSign.Status);
            string id = heldSign.Body!["requestId"]!.GetValue<string>();
            var pending = Cli(s, "approvals", "list", "--json");
            Assert.True(pending.Exit == 0, pending.Err);
            Assert.Contains(id, pending.Out, StringComparison.Ordinal);
            OneLineError(Cli(s, "approvals", "list", "--status", "soon"), "--status");
            OneLineError(Cli(s, "approvals", "approve", "nonsense"), "request id");
            OneLineError(Cli(s, "approvals", "approve", "req-0000"), "not-found");
            // The admin token is not an approver: the server refuses, the CLI says so in one line.
            OneLineError(Cli(s, "approvals", "reject", id), "forbidden");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task Venue_profiles_commands()
    {
        await using PolicyServer s = await PolicyServer.StartAsync();
        string dir = Path.Combine(Path.GetTempPath(), "conclave-venue-cli-" + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(dir);
        try
        {
            string good = Path.Combine(dir, "perpx.json");
            await File.WriteAllTextAsync(good, """
                {"venue":"perpx","chainId":1,"contract":"0x00000000000000000000000000000000000000aa",
                 "operations":{"liquidate":{"function":"liquidate(address account, uint256 amount)","amount":"amount","decimals":{"amount":18}}}}
                """);
            string bad = Path.Combine(dir, "bad.json");
            await File.WriteAllTextAsync(bad, """{"venue":"perpx","chainId":1,"contract":"0xnothex","operations":{}}""");

            // Bad input: one line, before anything is sent.
            OneLineError(Cli(s, "venue-profiles", "put", bad), "contract");
            OneLineError(Cli(s, "venue-profiles", "put", Path.Combine(dir, "none.json")), "not found");
            OneLineError(Cli(s, "venue-profiles", "get", "perpx", "--version", "0"), "--version");
            OneLineError(Cli(s, "venue-profiles", "get", "perpx"), "not-found");

            // Put: the held request is printed; approved, the profile is listed and printed.
            var put = Cli(s, "venue-profiles", "put", good, "--json");
            Assert.True(put.Exit == 0, put.Err);
            string id = System.Text.Json.Nodes.JsonNode.Parse(put.Out)!["requestId"]!.GetValue<string>();
            Assert.Contains(id, Cli(s, "approvals", "list", "--json").Out, StringComparison.Ordinal);
            Assert.True((await ApprovePolicyChangeAsync(s.App.Services, id))["status"]!.GetValue<string>() == "executed");
            var list = Cli(s, "venue-profiles", "list");
            Assert.True(list.Exit == 0, list.Err);
            Assert.Contains("perpx", list.Out, StringComparison.Ordinal);
            var get = Cli(s, "venue-profiles", "get", "perpx");
            Assert.True(get.Exit == 0, get.Err);
            Assert.Contains("liquidate(address account, uint256 amount)", get.Out, StringComparison.Ordinal);
            // The same profile again: the server's refusal in one line.
            OneLineError(Cli(s, "venue-profiles", "put", good), "venue-profile-unchanged");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
