using System.CommandLine;
using System.Text.Json.Nodes;
using Conclave.Client;
using Conclave.Policy.Documents;
using Spectre.Console;

namespace Conclave.Cli.Commands;

/// <summary>
/// <c>conclave policies put|get|list|evaluate</c> and <c>conclave approvals list|approve|reject</c> (issue 16,
/// docs/POLICY.md "CLI"). A bad document or argument is one line on stderr and exit 2, before anything is sent.
/// </summary>
internal static class PoliciesCommand
{
    public static Command Create()
    {
        var policies = new Command("policies", "Policy documents: put, get, list, and evaluate what a request would get.");
        policies.Subcommands.Add(PutCmd());
        policies.Subcommands.Add(GetCmd());
        policies.Subcommands.Add(ListCmd());
        policies.Subcommands.Add(EvaluateCmd());
        return policies;
    }

    public static Command CreateApprovals()
    {
        var approvals = new Command("approvals", "Requests held for approval: list them, approve or reject one.");
        approvals.Subcommands.Add(RequestsCmd());
        approvals.Subcommands.Add(VoteCmd("approve", true));
        approvals.Subcommands.Add(VoteCmd("reject", false));
        return approvals;
    }

    private static Command PutCmd()
    {
        var api = new ApiConnection();
        var file = new Argument<string>("file") { Description = "The policy document (JSON); its id names the policy, its version must be newer than the stored one." };
        var shadow = new Option<bool>("--shadow") { Description = "Store it in shadow mode: evaluated and audited beside the live policies, never enforced." };
        var cmd = new Command("put", "Propose a new version of a policy document: held until approved (one approver for a tightening, a quorum and a time lock for a loosening).");
        cmd.Arguments.Add(file);
        cmd.Options.Add(shadow);
        api.AddTo(cmd);
        cmd.SetAction(async (parse, ct) =>
        {
            (string text, PolicyDocument doc) = await ReadFileAsync(parse.GetValue(file)!, "policy", PolicyDocument.Parse, ct).ConfigureAwait(false);

            using ConclaveClient client = api.Connect(parse);
            JsonNode r = (await client.SendJsonAsync(HttpMethod.Put, $"v1/policies/{ConclaveClient.Segment(doc.Id)}" + (parse.GetValue(shadow) ? "?mode=shadow" : ""), text, ct)
                .ConfigureAwait(false))!;
            // A policy change is held for approval (docs/POLICY.md "Changing policies"): print the held request.
            Print(parse, api, r, () =>
            {
                JsonNode c = r["change"]!;
                Console.WriteLine($"policy {c["policyId"]} version {c["version"]} ({c["mode"]}) held for approval: request {r["requestId"]}, {r["status"]}");
                Console.WriteLine($"  {c["kind"]}: {c["approvalsNeeded"]} approver(s), time lock {c["timeLockSeconds"]} s; request hash {r["requestHash"]}, policy hash {r["policyHash"]}");
                foreach (JsonNode? reason in c["reasons"]!.AsArray())
                {
                    Console.WriteLine($"  - {reason}");
                }
            });
            return 0;
        });
        return cmd;
    }

    private static Command GetCmd() => VersionedGetCmd("id", "Policy id.", "Print a policy document (the newest version, or --version N).",
        (client, id, version, ct) => client.SendJsonAsync(HttpMethod.Get, $"v1/policies/{ConclaveClient.Segment(id)}" + (version is { } v ? $"?version={v}" : ""), null, ct),
        "document");

    private static Command ListCmd() => TableListCmd("List the policies (newest version of each).", (client, ct) => client.SendJsonAsync(HttpMethod.Get, "v1/policies", null, ct),
        "policies", ["id", "version", "mode", "hash", "by"],
        p => [Markup.Escape(p["id"]!.ToString()), p["version"]!.ToString(), p["mode"]!.ToString(), p["hash"]!.ToString(), Markup.Escape(p["createdBy"]!.ToString())]);

    /// <summary>Reads <paramref name="path"/> and parses it locally: a missing file or a bad document is one line (exit 2) before anything is sent.</summary>
    internal static async Task<(string Text, T Value)> ReadFileAsync<T>(string path, string what, Func<string, T> parse, CancellationToken ct)
    {
        string text = File.Exists(path) ? await File.ReadAllTextAsync(path, ct).ConfigureAwait(false) : throw new CliUsageException($"{what} file not found: {path}");
        try
        {
            return (text, parse(text));
        }
        catch (Conclave.Policy.PolicyFormatException e)
        {
            throw new CliUsageException($"{path}: {e.Message}");
        }
    }

    /// <summary><c>get ID [--version N]</c>: prints the member <paramref name="field"/> of what <paramref name="fetch"/> answers, indented.</summary>
    internal static Command VersionedGetCmd(string argument, string argumentDescription, string description,
        Func<ConclaveClient, string, long?, CancellationToken, Task<JsonNode?>> fetch, string field)
    {
        var api = new ApiConnection();
        var id = new Argument<string>(argument) { Description = argumentDescription };
        var version = new Option<long?>("--version") { Description = "A stored version (default: the newest)." };
        var cmd = new Command("get", description);
        cmd.Arguments.Add(id);
        cmd.Options.Add(version);
        api.AddTo(cmd);
        cmd.SetAction(async (parse, ct) =>
        {
            if (parse.GetValue(version) is < 1)
            {
                throw new CliUsageException("--version must be 1 or more");
            }

            using ConclaveClient client = api.Connect(parse);
            JsonNode r = (await fetch(client, parse.GetValue(id)!, parse.GetValue(version), ct).ConfigureAwait(false))!;
            Print(parse, api, r, () => Console.WriteLine(r[field]!.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true })));
            return 0;
        });
        return cmd;
    }

    /// <summary><c>list</c>: the array <paramref name="member"/> of what <paramref name="fetch"/> answers, as a table (or the answer with --json).</summary>
    internal static Command TableListCmd(string description, Func<ConclaveClient, CancellationToken, Task<JsonNode?>> fetch, string member, string[] headers,
        Func<JsonNode, string[]> row)
    {
        var api = new ApiConnection();
        var cmd = new Command("list", description);
        api.AddTo(cmd);
        cmd.SetAction(async (parse, ct) =>
        {
            using ConclaveClient client = api.Connect(parse);
            JsonNode r = (await fetch(client, ct).ConfigureAwait(false))!;
            Print(parse, api, r, () =>
            {
                Table t = ApiConnection.NewTable(headers);
                foreach (JsonNode? p in r[member]!.AsArray())
                {
                    t.AddRow(row(p!));
                }

                AnsiConsole.Write(t);
            });
            return 0;
        });
        return cmd;
    }

    private static Command EvaluateCmd()
    {
        var api = new ApiConnection();
        var key = new Option<string>("--key") { Description = "Key name.", Required = true };
        var operation = new Option<string>("--operation") { Description = "liquidate, settle, exercise, margin-call, release-collateral, hedge, transfer, typed-data, message, raw-digest.", Required = true };
        var level = new Option<string?>("--level") { Description = "normal, elevated, stressed or lockdown (default: all four)." };
        var venue = new Option<string?>("--venue") { Description = "Venue whose profile builds the operation from --args." };
        var args = new Option<string?>("--args") { Description = "The operation's arguments as a JSON object." };
        var amount = new Option<decimal?>("--amount") { Description = "Amount in native units (without --venue)." };
        var cmd = new Command("evaluate", "What a request by you would get from the policies, at each risk level; nothing is signed.");
        cmd.Options.Add(key);
        cmd.Options.Add(operation);
        cmd.Options.Add(level);
        cmd.Options.Add(venue);
        cmd.Options.Add(args);
        cmd.Options.Add(amount);
        api.AddTo(cmd);
        cmd.SetAction(async (parse, ct) =>
        {
            var body = new JsonObject { ["key"] = parse.GetValue(key), ["operation"] = parse.GetValue(operation) };
            if (parse.GetValue(level) is { } l)
            {
                body["level"] = l;
            }

            if (parse.GetValue(venue) is { } v)
            {
                body["venue"] = v;
            }

            if (parse.GetValue(amount) is { } a)
            {
                body["amount"] = a;
            }

            if (parse.GetValue(args) is { } text)
            {
                try
                {
                    body["args"] = JsonNode.Parse(text) as JsonObject ?? throw new CliUsageException("--args must be a JSON object");
                }
                catch (System.Text.Json.JsonException)
                {
                    throw new CliUsageException("--args is not valid JSON");
                }
            }

            using ConclaveClient client = api.Connect(parse);
            JsonNode r = (await client.SendJsonAsync(HttpMethod.Post, "v1/policies/evaluate", body.ToJsonString(), ct).ConfigureAwait(false))!;
            Print(parse, api, r, () =>
            {
                foreach (KeyValuePair<string, JsonNode?> lv in r["levels"]!.AsObject())
                {
                    Console.WriteLine($"{lv.Key}: {lv.Value!["decision"]} ({string.Join("; ", lv.Value["reasons"]!.AsArray().Select(x => x!.ToString()))})");
                }
            });
            return 0;
        });
        return cmd;
    }

    private static Command RequestsCmd()
    {
        var api = new ApiConnection();
        var status = new Option<string?>("--status") { Description = "pending (default), approved, rejected, executed, failed, expired or all." };
        var cmd = new Command("list", "List held requests (pending by default).");
        cmd.Options.Add(status);
        api.AddTo(cmd);
        cmd.SetAction(async (parse, ct) =>
        {
            string s = parse.GetValue(status) ?? "pending";
            if (s is not ("pending" or "approved" or "rejected" or "executed" or "failed" or "expired" or "all"))
            {
                throw new CliUsageException("--status must be pending, approved, rejected, executed, failed, expired or all");
            }

            using ConclaveClient client = api.Connect(parse);
            JsonNode r = (await client.SendJsonAsync(HttpMethod.Get, "v1/requests" + (s == "all" ? "" : "?status=" + s), null, ct).ConfigureAwait(false))!;
            Print(parse, api, r, () =>
            {
                Table t = ApiConnection.NewTable("id", "status", "operation", "requester", "expires", "votes");
                foreach (JsonNode? q in r["requests"]!.AsArray())
                {
                    t.AddRow(q!["requestId"]!.ToString(), q["status"]!.ToString(), q["operation"]!.ToString(), Markup.Escape(q["requester"]!.ToString()),
                        q["expiresAt"]?.ToString() ?? "", q["votes"]!.AsArray().Count.ToString(System.Globalization.CultureInfo.InvariantCulture));
                }

                AnsiConsole.Write(t);
            });
            return 0;
        });
        return cmd;
    }

    private static Command VoteCmd(string name, bool approve)
    {
        var api = new ApiConnection();
        var id = new Argument<string>("id") { Description = "Request id (req-…)." };
        var cmd = new Command(name, (approve
            ? "Approve a held request (over its request hash and policy hash, as the server shows them)."
            : "Reject a held request (final).") + " The vote is an approver's: pass --credential FILE (or set $" + ApiConnection.CredentialVariable + ") to sign it with their key.");
        cmd.Arguments.Add(id);
        api.AddTo(cmd);
        cmd.SetAction(async (parse, ct) =>
        {
            string requestId = parse.GetValue(id)!;
            if (!requestId.StartsWith("req-", StringComparison.Ordinal) || requestId.Length > 64 || !requestId.All(c => char.IsAsciiLetterOrDigit(c) || c == '-'))
            {
                throw new CliUsageException("a request id looks like req-0123abcd… (see 'conclave approvals list')");
            }

            using ConclaveClient client = api.Connect(parse);
            JsonNode shown = (await client.SendJsonAsync(HttpMethod.Get, $"v1/requests/{requestId}", null, ct).ConfigureAwait(false))!;
            var vote = new JsonObject { ["requestHash"] = shown["requestHash"]!.ToString(), ["policyHash"] = shown["policyHash"]!.ToString() };
            JsonNode r = (await client.SendJsonAsync(HttpMethod.Post, $"v1/requests/{requestId}/{name}", vote.ToJsonString(), ct).ConfigureAwait(false))!;
            Print(parse, api, r, () => Console.WriteLine($"request {requestId}: {r["status"]}"));
            return 0;
        });
        return cmd;
    }

    internal static void Print(ParseResult parse, ApiConnection api, JsonNode r, Action human)
    {
        if (parse.GetValue(api.Json))
        {
            Console.WriteLine(r.ToJsonString());
        }
        else
        {
            human();
        }
    }
}
