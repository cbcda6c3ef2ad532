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
            (string text, VenueProfile profile) = await ReadFileAsync(parse.GetValue(file)!, "venue profile", VenueProfile.Parse, ct).ConfigureAwait(false);

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

    private static Command GetCmd() => VersionedGetCmd("venue", "Venue id.", "Print a venue's profile (the newest version, or --version N).",
        async (client, venue, version, ct) => await client.GetVenueProfileAsync(venue, version, ct).ConfigureAwait(false), "profile");

    private static Command ListCmd() => TableListCmd("List the venue profiles (newest version of each).",
        async (client, ct) => new JsonObject { ["venueProfiles"] = (await client.ListVenueProfilesAsync(ct).ConfigureAwait(false)).DeepClone() },
        "venueProfiles", ["venue", "version", "hash", "by"],
        p => [Markup.Escape(p["venue"]!.ToString()), p["version"]!.ToString(), p["hash"]!.ToString(), Markup.Escape(p["createdBy"]!.ToString())]);
}
