using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using Conclave.Crypto.Signing;
using Conclave.Testing;

using static Conclave.Server.Tests.PolicyEnforcementTests;

namespace Conclave.Server.Tests;

/// <summary>
/// <c>conclave policies put|get|list|evaluate</c> and <c>conclave approvals list|approve|reject</c> against a server
/// (docs/POLICY.md "CLI"): what works prints, and every bad input is one line on stderr and a non-zero exit.
/// </summary>
public sealed class PolicyCliTests
{
    internal static (int Exit, string Out, string Err) Cli(PolicyServer s, params string[] args) => CliWith(s, null, args);

    /// <summary>The CLI with the admin token and the server in the environment, and <paramref name="env"/> besides.</summary>
    private static (int Exit, string Out, string Err) CliWith(PolicyServer s, IReadOnlyDictionary<string, string>? env, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(RepoPaths.CliDll);
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["CONCLAVE_TOKEN"] = s.Http.DefaultRequestHeaders.Authorization!.Parameter;
        psi.Environment["CONCLAVE_SERVER"] = "http://" + s.Config.Listen;
        foreach ((string name, string value) in env ?? new Dictionary<string, string>())
        {
            psi.Environment[name] = value;
        }

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

    /// <summary>
    /// Approvers vote through the CLI with their own key (--credential FILE, or $CONCLAVE_CREDENTIAL_FILE): each vote is
    /// an RFC 9421 signed request over the request hash and policy hash the server shows. One approval executes the
    /// held request (its signature verifies under the key); a reject is final; the initiator's own vote, an agent's and an
    /// unregistered key's are refused by the server; a bad credential file is one line and exit 2 before anything is sent.
    /// </summary>
    [Fact]
    public async Task Approvals_approve_and_reject_signed_with_an_approver_credential()
    {
        await using PolicyServer s = await PolicyServer.StartAsync();
        (string ed, _) = await CreateKeyAsync(s.Http, "ed25519");
        byte[] publicKey = Convert.FromHexString((await SendAsync(s.Http, HttpMethod.Get, $"/v1/keys/{ed}")).Body!["publicKey"]!.GetValue<string>());
        await PutPolicyAsync(s, """
            {"id":"starter","version":2,"rules":[{"id":"held","effect":"require-approval","match":{"operations":["message"]},
              "approval":{"mode":"or","groups":[{"name":"risk","members":["alice","bob","pat","bot"],"k":1}],"ttlSeconds":600}}]}
            """);
        string dir = Path.Combine(Path.GetTempPath(), "conclave-votecli-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        var made = new List<PrincipalCredentialFiles.Made>();
        try
        {
            PrincipalCredentialFiles.Made alice = await PrincipalCredentialFiles.PersonAsync(s.Http, dir, "alice");
            PrincipalCredentialFiles.Made bob = await PrincipalCredentialFiles.PersonAsync(s.Http, dir, "bob", algorithm: "ecdsa-p256-sha256");
            PrincipalCredentialFiles.Made pat = await PrincipalCredentialFiles.PersonAsync(s.Http, dir, "pat", """["admin","approver"]""");
            made.AddRange([alice, bob, pat]);

            async Task<string> HoldAsync(HttpClient http, string message)
            {
                var r = await SendAsync(http, HttpMethod.Post, $"/v1/keys/{ed}/sign", $$"""{"message":"{{message}}"}""");
                Assert.True(r.Status == HttpStatusCode.Accepted, r.Text);
                return r.Body!["requestId"]!.GetValue<string>();
            }

            async Task<JsonNode> ShowAsync(string id) => (await SendAsync(s.Http, HttpMethod.Get, $"/v1/requests/{id}")).Body!;

            // An approver lists the held requests and approves one, signing as alice (the admin token in the environment is not sent).
            string first = await HoldAsync(s.Http, "0a");
            var listed = Cli(s, "approvals", "list", "--credential", alice.Path, "--json");
            Assert.True(listed.Exit == 0, listed.Err);
            Assert.Contains(first, listed.Out, StringComparison.Ordinal);
            var approved = Cli(s, "approvals", "approve", first, "--credential", alice.Path);
            Assert.True(approved.Exit == 0, approved.Err);
            Assert.Equal($"request {first}: executed", approved.Out.Trim());
            JsonNode done = await ShowAsync(first);
            Assert.Equal("executed", done["status"]!.GetValue<string>());
            Assert.Equal(["alice"], done["votes"]!.AsArray().Select(v => v!["approver"]!.GetValue<string>()));
            Assert.True(SignatureSchemes.Ed25519.Verify(publicKey, Convert.FromHexString("0a"), Convert.FromHexString(done["result"]!["signature"]!.GetValue<string>())));

            // Bob (a P-256 key, named by the environment variable) rejects the next one: final, no more votes, nothing signed.
            string second = await HoldAsync(s.Http, "0b");
            var bobsEnv = new Dictionary<string, string> { ["CONCLAVE_CREDENTIAL_FILE"] = bob.Path };
            var rejected = CliWith(s, bobsEnv, "approvals", "reject", second, "--json");
            Assert.True(rejected.Exit == 0, rejected.Err);
            Assert.Equal("rejected", JsonNode.Parse(rejected.Out)!["status"]!.GetValue<string>());
            OneLineError(Cli(s, "approvals", "approve", second, "--credential", alice.Path), "takes no more votes");
            JsonNode refusedAfter = await ShowAsync(second);
            Assert.Equal("rejected", refusedAfter["status"]!.GetValue<string>());
            Assert.Null(refusedAfter["result"]);
            // --token-file names the token: the variable is not used, and the admin is not an approver.
            string tokenFile = PrincipalCredentialFiles.Write(dir, "admin-token", s.Http.DefaultRequestHeaders.Authorization!.Parameter!);
            string third = await HoldAsync(s.Http, "0c");
            OneLineError(CliWith(s, bobsEnv, "approvals", "approve", third, "--token-file", tokenFile), "forbidden");

            // Pat holds a request under pat's own credential: pat's vote on it is refused, alice's executes it.
            using (var patsHttp = new HttpClient(new Conclave.Client.AgentSigningHandler(pat.Key, pat.KeyId) { InnerHandler = new HttpClientHandler() }, disposeHandler: true)
            {
                BaseAddress = new Uri("http://" + s.Config.Listen),
            })
            {
                string patsOwn = await HoldAsync(patsHttp, "0d");
                OneLineError(Cli(s, "approvals", "approve", patsOwn, "--credential", pat.Path), "the initiator of a request never votes on it");
                Assert.Equal("pending", (await ShowAsync(patsOwn))["status"]!.GetValue<string>());
                var byAlice = Cli(s, "approvals", "approve", patsOwn, "--credential", alice.Path);
                Assert.True(byAlice.Exit == 0, byAlice.Err);
                Assert.Equal("executed", (await ShowAsync(patsOwn))["status"]!.GetValue<string>());
            }

            // An agent's credential file from 'conclave agents add' signs too, but an agent never votes on another's
            // request: it sees only its own requests, so another's is not found and no vote is sent.
            string botFile = Path.Combine(dir, "bot.json");
            var addBot = Cli(s, "agents", "add", "bot", "--key", "*", "--operation", "*", "--key-out", botFile);
            Assert.True(addBot.Exit == 0, addBot.Err);
            OneLineError(Cli(s, "approvals", "approve", third, "--credential", botFile), $"no request {third}");
            var botsList = Cli(s, "approvals", "list", "--credential", botFile, "--json");
            Assert.True(botsList.Exit == 0, botsList.Err);
            Assert.DoesNotContain(third, botsList.Out, StringComparison.Ordinal);
            // A well-formed credential whose key the server does not know: refused as unauthenticated.
            JsonObject unknown = JsonNode.Parse(await File.ReadAllTextAsync(alice.Path))!.AsObject();
            unknown["keyId"] = "no-such-key";
            OneLineError(Cli(s, "approvals", "approve", third, "--credential", PrincipalCredentialFiles.Write(dir, "unknown.json", unknown.ToJsonString())), "unauthorized");
            Assert.Equal("pending", (await ShowAsync(third))["status"]!.GetValue<string>());

            // Bad credential files: one line naming the file and what is wrong, exit 2, and never the key.
            string alicesText = await File.ReadAllTextAsync(alice.Path);
            string alicesPrivate = JsonNode.Parse(alicesText)!["privateKey"]!.GetValue<string>();
            string open = Path.Combine(dir, "open.json");
            await File.WriteAllTextAsync(open, alicesText);
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(open, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
            }

            JsonObject mismatched = JsonNode.Parse(alicesText)!.AsObject();
            mismatched["publicKey"] = JsonNode.Parse(await File.ReadAllTextAsync(pat.Path))!["publicKey"]!.GetValue<string>();
            JsonObject shortSeed = JsonNode.Parse(alicesText)!.AsObject();
            shortSeed["privateKey"] = Convert.ToBase64String(new byte[31]);
            JsonObject noKeyId = JsonNode.Parse(alicesText)!.AsObject();
            noKeyId.Remove("keyId");
            JsonObject notP256 = JsonNode.Parse(alicesText)!.AsObject();
            notP256["algorithm"] = "ecdsa-p256-sha256";
            foreach ((string[] args, string expected) in new (string[], string)[]
            {
                (["--credential", Path.Combine(dir, "none.json")], "not found"),
                (["--credential", dir], "is a folder"),
                (["--credential", open], "restrict it with chmod 600"),
                (["--credential", PrincipalCredentialFiles.Write(dir, "text.json", "privateKey: " + alicesPrivate)], "not a credential file"),
                (["--credential", PrincipalCredentialFiles.Write(dir, "mismatch.json", mismatched.ToJsonString())], "publicKey is not the public key of privateKey"),
                (["--credential", PrincipalCredentialFiles.Write(dir, "short.json", shortSeed.ToJsonString())], "privateKey must be a 32-byte Ed25519 seed"),
                (["--credential", PrincipalCredentialFiles.Write(dir, "nokeyid.json", noKeyId.ToJsonString())], "member keyId is missing"),
                (["--credential", PrincipalCredentialFiles.Write(dir, "notp256.json", notP256.ToJsonString())], "privateKey must be a P-256 private key"),
                (["--credential", alice.Path, "--token-file", tokenFile], "pass one of them"),
            })
            {
                var r = Cli(s, ["approvals", "approve", third, .. args]);
                Assert.True(r.Exit == 2, $"{string.Join(' ', args)}: exit {r.Exit} {r.Err}");
                OneLineError(r, expected);
                Assert.DoesNotContain(alicesPrivate, r.Err, StringComparison.Ordinal);
                Assert.DoesNotContain(alicesPrivate, r.Out, StringComparison.Ordinal);
            }

            var fromVariable = CliWith(s, new Dictionary<string, string> { ["CONCLAVE_CREDENTIAL_FILE"] = open }, "approvals", "approve", third);
            Assert.Equal(2, fromVariable.Exit);
            OneLineError(fromVariable, "$CONCLAVE_CREDENTIAL_FILE " + open);
            Assert.Equal("pending", (await ShowAsync(third))["status"]!.GetValue<string>());
        }
        finally
        {
            foreach (PrincipalCredentialFiles.Made m in made)
            {
                m.Key.Dispose();
            }

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
