using System.CommandLine;
using System.Globalization;
using Conclave.Client;
using Spectre.Console;

namespace Conclave.Cli.Commands;

/// <summary>
/// <c>conclave audit verify|tail</c> against a server (--server). <c>verify</c> asks the server to recompute the hash
/// chain and check every signed checkpoint; exit 0 when intact, 1 when tampering was found.
/// </summary>
internal static class AuditCommand
{
    public static Command Create()
    {
        var audit = new Command("audit", "Read and verify the tamper-evident audit log.");
        audit.Subcommands.Add(VerifyCmd());
        audit.Subcommands.Add(TailCmd());
        return audit;
    }

    private static Command VerifyCmd()
    {
        var api = new ApiConnection();
        var cmd = new Command("verify", "Verify the audit log's hash chain and signed checkpoints on the server.");
        api.AddTo(cmd);
        cmd.SetAction(async (parse, ct) =>
        {
            using ConclaveClient client = api.Connect(parse);
            AuditVerification r = parse.GetValue(api.Json)
                ? await client.VerifyAuditAsync(ct).ConfigureAwait(false)
                : await AnsiConsole.Status().StartAsync("verifying the audit log…", _ => client.VerifyAuditAsync(ct)).ConfigureAwait(false);
            if (parse.GetValue(api.Json))
            {
                ApiConnection.PrintJson(r);
            }
            else if (r.Ok)
            {
                Console.WriteLine($"audit log ok: {r.Entries} entries, {r.Checkpoints} signed checkpoints, head seq {r.HeadSeq} hash {r.HeadHash}");
            }
            else
            {
                Console.WriteLine($"audit log FAILED at seq {r.FirstBad}: {r.Kind} ({r.Detail})");
            }

            return r.Ok ? 0 : 1;
        });
        return cmd;
    }

    private static Command TailCmd()
    {
        var api = new ApiConnection();
        var after = new Option<long>("--after") { Description = "Show entries after this sequence number.", DefaultValueFactory = _ => 0 };
        var limit = new Option<int>("--limit") { Description = "At most this many entries (1..1000).", DefaultValueFactory = _ => 100 };
        var cmd = new Command("tail", "Show audit entries.");
        cmd.Options.Add(after);
        cmd.Options.Add(limit);
        api.AddTo(cmd);
        cmd.SetAction(async (parse, ct) =>
        {
            using ConclaveClient client = api.Connect(parse);
            AuditPage page = await client.ReadAuditAsync(parse.GetValue(after), parse.GetValue(limit), ct).ConfigureAwait(false);
            if (parse.GetValue(api.Json))
            {
                ApiConnection.PrintJson(page);
                return 0;
            }

            Table t = ApiConnection.NewTable("seq", "time", "actor", "action", "key", "decision", "result");
            foreach (AuditEntry e in page.Entries)
            {
                t.AddRow(e.Seq.ToString(CultureInfo.InvariantCulture), e.Time.ToString("u", CultureInfo.InvariantCulture), Markup.Escape(e.Actor), Markup.Escape(e.Action),
                    Markup.Escape(e.KeyId ?? ""), e.Decision, Markup.Escape(e.Result));
            }

            AnsiConsole.Write(t);
            return 0;
        });
        return cmd;
    }
}
