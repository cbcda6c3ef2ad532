using System.CommandLine;
using System.Globalization;
using Conclave.Client;
using Spectre.Console;

namespace Conclave.Cli.Commands;

/// <summary><c>conclave nodes list|evict|readmit</c>: the signer nodes of a server's cluster and their trust.</summary>
internal static class NodesCommand
{
    public static Command Create()
    {
        var nodes = new Command("nodes", "List the signer nodes, evict a suspect one, re-admit one.");
        nodes.Subcommands.Add(ListCmd());
        nodes.Subcommands.Add(EvictCmd());
        nodes.Subcommands.Add(ReadmitCmd());
        return nodes;
    }

    private static Argument<uint> IdArg() => new("id") { Description = "Signer node id." };

    private static Command ListCmd()
    {
        var api = new ApiConnection();
        var cmd = new Command("list", "List the signer nodes, their trust and the keys each holds.");
        api.AddTo(cmd);
        cmd.SetAction(async (parse, ct) =>
        {
            using ConclaveClient client = api.Connect(parse);
            IReadOnlyList<NodeInfo> all = await client.ListNodesAsync(ct).ConfigureAwait(false);
            if (parse.GetValue(api.Json))
            {
                ApiConnection.PrintJson(all);
                return 0;
            }

            Table t = ApiConnection.NewTable("node", "trust", "keys", "reason");
            foreach (NodeInfo n in all)
            {
                t.AddRow(n.Id.ToString(CultureInfo.InvariantCulture), n.Trust, n.Keys.Count.ToString(CultureInfo.InvariantCulture), Markup.Escape(n.Reason ?? ""));
            }

            AnsiConsole.Write(t);
            return 0;
        });
        return cmd;
    }

    private static Command EvictCmd()
    {
        var api = new ApiConnection();
        var id = IdArg();
        var replacement = new Option<uint?>("--replacement") { Description = "The node that takes the evicted node's place in every key it holds (default: the other holders keep the keys)." };
        var reason = new Option<string?>("--reason") { Description = "Why (kept in the store and the audit log)." };
        var cmd = new Command("evict", "Evict a suspect node: reshare every key it holds away from it and never choose it again.");
        cmd.Arguments.Add(id);
        cmd.Options.Add(replacement);
        cmd.Options.Add(reason);
        api.AddTo(cmd);
        cmd.SetAction(async (parse, ct) =>
        {
            uint node = parse.GetValue(id);
            if (node == 0)
            {
                throw new CliUsageException("the node id must be a positive integer");
            }

            using ConclaveClient client = api.Connect(parse);
            Eviction e = parse.GetValue(api.Json)
                ? await client.EvictNodeAsync(node, parse.GetValue(replacement), parse.GetValue(reason), ct).ConfigureAwait(false)
                : await AnsiConsole.Status().StartAsync($"evicting node {node}…", s => client.EvictNodeAsync(node, parse.GetValue(replacement), parse.GetValue(reason), ct,
                    new Progress<NodeInfo>(n => s.Status($"evicting node {node}: {n.Keys.Count} key(s) still to move…")))).ConfigureAwait(false);
            if (parse.GetValue(api.Json))
            {
                ApiConnection.PrintJson(e);
                return 0;
            }

            var f = new Fields();
            f.Add("node", $"{e.Node.Id} ({e.Node.Trust})");
            f.Add("keys moved", e.Moved.Count == 0 ? "none" : string.Join(", ", e.Moved.Select(k => $"{k.Name} v{k.Version} {k.Threshold}/{k.Participants}")));
            f.Write();
            return 0;
        });
        return cmd;
    }

    private static Command ReadmitCmd()
    {
        var api = new ApiConnection();
        var id = IdArg();
        var cmd = new Command("readmit", "Let an evicted node take part in new keys again.");
        cmd.Arguments.Add(id);
        api.AddTo(cmd);
        cmd.SetAction(async (parse, ct) =>
        {
            using ConclaveClient client = api.Connect(parse);
            NodeInfo n = await client.ReadmitNodeAsync(parse.GetValue(id), ct).ConfigureAwait(false);
            if (parse.GetValue(api.Json))
            {
                ApiConnection.PrintJson(n);
            }
            else
            {
                Console.WriteLine($"node {n.Id}: {n.Trust}");
            }

            return 0;
        });
        return cmd;
    }
}
