using System.CommandLine;
using System.Globalization;
using Conclave.Client;

namespace Conclave.Cli.Commands;

/// <summary>
/// <c>conclave risk show|set|exit-lockdown</c>: the venue's risk level (docs/POLICY.md "Risk levels", docs/API.md
/// "Risk level"). <c>set LEVEL</c> sets the manual level (a floor; roles admin or operator); <c>exit-lockdown</c> is the
/// caller's vote to leave lockdown (a configured lockdown-exit approver, signing with their credential: --credential).
/// </summary>
internal static class RiskCommand
{
    private static readonly string[] Levels = ["normal", "elevated", "stressed", "lockdown"];

    public static Command Create()
    {
        var risk = new Command("risk", "The risk level: show it, set the manual level, vote to leave lockdown.");
        risk.Subcommands.Add(ShowCmd());
        risk.Subcommands.Add(SetCmd());
        risk.Subcommands.Add(ExitCmd());
        return risk;
    }

    private static Command ShowCmd()
    {
        var api = new ApiConnection();
        var cmd = new Command("show", "Show the risk level, why, since when, when it may fall, and its inputs.");
        api.AddTo(cmd);
        cmd.SetAction(async (parse, ct) =>
        {
            using ConclaveClient client = api.Connect(parse);
            Print(await client.GetRiskAsync(ct).ConfigureAwait(false), parse.GetValue(api.Json));
            return 0;
        });
        return cmd;
    }

    private static Command SetCmd()
    {
        var api = new ApiConnection();
        var level = new Argument<string>("level") { Description = "normal, elevated, stressed or lockdown (a floor: a higher level applies at once, a lower one after the cool-down)." };
        var reason = new Option<string?>("--reason") { Description = "Why (kept with the level and in the audit log)." };
        var cmd = new Command("set", "Set the manual risk level (roles admin or operator).");
        cmd.Arguments.Add(level);
        cmd.Options.Add(reason);
        api.AddTo(cmd);
        cmd.SetAction(async (parse, ct) =>
        {
            string wanted = parse.GetValue(level)!;
            if (!Levels.Contains(wanted, StringComparer.Ordinal))
            {
                throw new CliUsageException("the level must be one of normal, elevated, stressed, lockdown");
            }

            using ConclaveClient client = api.Connect(parse);
            Print(await client.SetRiskAsync(wanted, parse.GetValue(reason), ct).ConfigureAwait(false), parse.GetValue(api.Json));
            return 0;
        });
        return cmd;
    }

    private static Command ExitCmd()
    {
        var api = new ApiConnection();
        var cmd = new Command("exit-lockdown", "Vote to leave lockdown as a configured lockdown-exit approver, signing with their key (--credential FILE or $" + ApiConnection.CredentialVariable + "); lockdown is left for stressed once k approvers voted and the cool-down is over.");
        api.AddTo(cmd);
        cmd.SetAction(async (parse, ct) =>
        {
            using ConclaveClient client = api.Connect(parse);
            RiskLockdownVote vote = await client.VoteLockdownExitAsync(ct).ConfigureAwait(false);
            if (parse.GetValue(api.Json))
            {
                ApiConnection.PrintJson(vote);
                return 0;
            }

            Console.WriteLine($"vote: {vote.Outcome}");
            Print(vote.Risk, false);
            return 0;
        });
        return cmd;
    }

    private static void Print(RiskStatus r, bool json)
    {
        if (json)
        {
            ApiConnection.PrintJson(r);
            return;
        }

        var f = new Fields();
        f.Add("level", r.Level);
        f.Add("since", r.Since.ToString("u", CultureInfo.InvariantCulture));
        f.Add("why", r.Reasons.Count == 0 ? "-" : string.Join("; ", r.Reasons));
        f.Add("may fall after", r.CanFallAfter?.ToString("u", CultureInfo.InvariantCulture) ?? "-");
        f.Add("manual level", r.Inputs.Manual.By is { } by ? $"{r.Inputs.Manual.Level} (by {by}{(r.Inputs.Manual.Reason is { } why ? ": " + why : "")})" : r.Inputs.Manual.Level);
        f.Add("demanded now", r.Inputs.Demanded);
        foreach (RiskPriceSource p in r.Inputs.Prices)
        {
            string vol = p.Volatility is { } v ? v.ToString("0.####", CultureInfo.InvariantCulture) : "-";
            f.Add("price " + p.Source, $"volatility {vol}, {p.Samples} sample(s) in the window{(p.Stale ? ", stale" : "")}");
        }

        f.Add("threat events", r.Inputs.ThreatEvents.ToString(CultureInfo.InvariantCulture));
        f.Add("culprit nodes", r.Inputs.CulpritNodes.ToString(CultureInfo.InvariantCulture));
        if (r.Level == "lockdown")
        {
            f.Add("lockdown exit", $"{r.LockdownExit.Votes.Count} of {r.LockdownExit.Needed} vote(s)" + (r.LockdownExit.Votes.Count > 0 ? ": " + string.Join(", ", r.LockdownExit.Votes) : ""));
        }

        f.Write();
    }
}
