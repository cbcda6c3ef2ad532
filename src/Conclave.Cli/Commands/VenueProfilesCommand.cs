using System.CommandLine;
using System.Text.Json.Nodes;
using Conclave.Client;
using Conclave.Policy.Venues;
using Spectre.Console;

using static Conclave.Cli.Commands.PoliciesCommand;

namespace Conclave.Cli.Commands;

/// <summary>
/// <c>conclave venue-profiles put|get|list</c> (issue 16, docs/POLICY.md "Venue profiles in the store"). A bad profile
/// or argument is one line on stderr and exit 2, before anything is sent.
/// </summary>
internal static class VenueProfilesCommand
{
    public static Command Create()
    {
        var profiles = new Command("venue-profiles", "Venue profiles (contracts, the function of each operation, amounts): put, get, list.");
        profiles.Subcommands.Add(PutCmd());
        profiles.Subcommands.Add(GetCmd());
        profiles.Subcommands.Add(ListCmd());
        return profiles;
    }

    private static Command PutCmd()
    {
        var api = new ApiConnection();
        var file = new Argument<string>("file") { Description = "The venue profile (JSON); its venue names the profile." };
        var cmd = new Command("put", "Propose a venue's profile: held until the change approvers' quorum and its time lock, then the venue's next version.");
        cmd.Arguments.Add(file);
        api.AddTo(cmd);
        cmd.SetAction(async (parse, ct) =>
        {
            string path = parse.GetValue(file)!;
            string text = File.Exists(path) ? await File.ReadAllTextAsync(path, ct).ConfigureAwait(false) : throw new CliUsageException($"venue profile file not found: {path}");
            VenueProfile profile;
            try
            {
                profile = VenueProfile.Parse(text);
            }
            catch (Conclave.Policy.PolicyFormatException e)
            {
                throw new CliUsageException($"{path}: {e.Message}");
            }

            using ConclaveClient client = api.Connect(parse);
            JsonObject r = await client.PutVenueProfileAsync(profile.Venue, text, ct).ConfigureAwait(false);
            Print(parse, api, r, () =>
            {
                JsonNode c = r["change"]!;
                Console.WriteLine($"venue {c["venue"]} profile version {c["version"]} held for approval: request {r["requestId"]}, {r["status"]}");
                Console.WriteLine($"  {c["kind"]}: {c["approvalsNeeded"]} approver(s), time lock {c["timeLockSeconds"]} s; request hash {r["requestHash"]}, profile hash {r["policyHash"]}");
            });
            return 0;
        });
        return cmd;
    }

    private static Command GetCmd()
    {
        var api = new ApiConnection();
        var venue = new Argument<string>("venue") { Description = "Venue id." };
        var version = new Option<long?>("--version") { Description = "A stored version (default: the newest)." };
        var cmd = new Command("get", "Print a venue's profile (the newest version, or --version N).");
        cmd.Arguments.Add(venue);
        cmd.Options.Add(version);
        api.AddTo(cmd);
        cmd.SetAction(async (parse, ct) =>
        {
            if (parse.GetValue(version) is < 1)
            {
                throw new CliUsageException("--version must be 1 or more");
            }

            using ConclaveClient client = api.Connect(parse);
            JsonObject r = await client.GetVenueProfileAsync(parse.GetValue(venue)!, parse.GetValue(version), ct).ConfigureAwait(false);
            Print(parse, api, r, () => Console.WriteLine(r["profile"]!.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true })));
            return 0;
        });
        return cmd;
    }

    private static Command ListCmd()
    {
        var api = new ApiConnection();
        var cmd = new Command("list", "List the venue profiles (newest version of each).");
        api.AddTo(cmd);
        cmd.SetAction(async (parse, ct) =>
        {
            using ConclaveClient client = api.Connect(parse);
            JsonArray list = await client.ListVenueProfilesAsync(ct).ConfigureAwait(false);
            Print(parse, api, new JsonObject { ["venueProfiles"] = list.DeepClone() }, () =>
            {
                Table t = ApiConnection.NewTable("venue", "version", "hash", "by");
                foreach (JsonNode? p in list)
                {
                    t.AddRow(Markup.Escape(p!["venue"]!.ToString()), p["version"]!.ToString(), p["hash"]!.ToString(), Markup.Escape(p["createdBy"]!.ToString()));
                }

                AnsiConsole.Write(t);
            });
            return 0;
        });
        return cmd;
    }
}
