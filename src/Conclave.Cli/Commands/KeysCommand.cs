using System.CommandLine;
using Conclave.Client;
using Spectre.Console;

namespace Conclave.Cli.Commands;

/// <summary><c>conclave keys create|list|show|sign|sign-batch|derive|refresh|reshare|repair|check</c> against a server.</summary>
internal static class KeysCommand
{
    public static Command Create()
    {
        var keys = new Command("keys", "Create, inspect and use keys on a Conclave server.");
        keys.Subcommands.Add(CreateCmd());
        keys.Subcommands.Add(ListCmd());
        keys.Subcommands.Add(ShowCmd());
        keys.Subcommands.Add(SignCmd());
        keys.Subcommands.Add(SignBatchCmd());
        keys.Subcommands.Add(DeriveCmd());
        keys.Subcommands.Add(RefreshCmd());
        keys.Subcommands.Add(ReshareCmd());
        keys.Subcommands.Add(RepairCmd());
        keys.Subcommands.Add(CheckCmd());
        return keys;
    }

    private static Argument<string> NameArg() => new("name") { Description = "Key name." };

    private static Command CreateCmd()
    {
        var api = new ApiConnection();
        var name = NameArg();
        var scheme = new Option<string>("--scheme") { Description = "One of: " + string.Join(", ", Conclave.Server.Api.KeyService.Schemes) + ".", Required = true };
        var threshold = new Option<int?>("--threshold") { Description = "Threshold t (FROST and ecdsa-dkls23; default: the server's)." };
        var participants = new Option<int?>("--participants") { Description = "Participants n (FROST and ecdsa-dkls23; default: every node)." };
        var labels = new Option<string[]>("--label") { Description = "A label KEY=VALUE (repeatable).", AllowMultipleArgumentsPerToken = false };
        var cmd = new Command("create", "Create a key.");
        cmd.Arguments.Add(name);
        cmd.Options.Add(scheme);
        cmd.Options.Add(threshold);
        cmd.Options.Add(participants);
        cmd.Options.Add(labels);
        api.AddTo(cmd);
        cmd.SetAction(async (parse, ct) =>
        {
            var labelMap = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (string l in parse.GetValue(labels) ?? [])
            {
                int eq = l.IndexOf('=', StringComparison.Ordinal);
                if (eq <= 0)
                {
                    throw new CliUsageException("--label takes KEY=VALUE");
                }

                labelMap[l[..eq]] = l[(eq + 1)..];
            }

            using ConclaveClient client = api.Connect(parse);
            var req = new CreateKeyRequest(parse.GetValue(name)!, parse.GetValue(scheme)!, parse.GetValue(threshold), parse.GetValue(participants), labelMap.Count > 0 ? labelMap : null);
            KeyInfo key = parse.GetValue(api.Json)
                ? await client.CreateKeyAsync(req, ct).ConfigureAwait(false)
                : await AnsiConsole.Status().StartAsync($"creating {req.Scheme} key {req.Name}…", _ => client.CreateKeyAsync(req, ct)).ConfigureAwait(false);
            Show(key, parse.GetValue(api.Json));
            return 0;
        });
        return cmd;
    }

    private static Command ListCmd()
    {
        var api = new ApiConnection();
        var cmd = new Command("list", "List keys.");
        api.AddTo(cmd);
        cmd.SetAction(async (parse, ct) =>
        {
            using ConclaveClient client = api.Connect(parse);
            IReadOnlyList<KeyInfo> keys = await client.ListKeysAsync(ct).ConfigureAwait(false);
            if (parse.GetValue(api.Json))
            {
                ApiConnection.PrintJson(keys);
                return 0;
            }

            Table t = ApiConnection.NewTable("name", "scheme", "t/n", "version", "state", "address");
            foreach (KeyInfo k in keys)
            {
                t.AddRow(Markup.Escape(k.Name), k.Scheme, $"{k.Threshold}/{k.Participants}", k.Version.ToString(System.Globalization.CultureInfo.InvariantCulture), k.State,
                    Markup.Escape(Fields.Shorten(k.Addresses.Ethereum ?? k.Addresses.Bitcoin ?? k.Addresses.Solana ?? "")));
            }

            AnsiConsole.Write(t);
            return 0;
        });
        return cmd;
    }

    private static Command ShowCmd()
    {
        var api = new ApiConnection();
        var name = NameArg();
        var cmd = new Command("show", "Show one key and its versions.");
        cmd.Arguments.Add(name);
        api.AddTo(cmd);
        cmd.SetAction(async (parse, ct) =>
        {
            using ConclaveClient client = api.Connect(parse);
            KeyInfo key = await client.GetKeyAsync(parse.GetValue(name)!, ct).ConfigureAwait(false);
            Show(key, parse.GetValue(api.Json));
            return 0;
        });
        return cmd;
    }

    private static Command SignCmd()
    {
        var api = new ApiConnection();
        var name = NameArg();
        var message = new Option<string?>("--message") { Description = "Message to sign, hex (Schnorr, EdDSA, FROST schemes)." };
        var digest = new Option<string?>("--digest") { Description = "32-byte digest to sign, hex (ECDSA, including ecdsa-dkls23)." };
        var path = new Option<string?>("--path") { Description = "Sign with the non-hardened child key at this path, e.g. 0/7 (see 'keys derive')." };
        var cmd = new Command("sign", "Sign a message or a digest.");
        cmd.Arguments.Add(name);
        cmd.Options.Add(message);
        cmd.Options.Add(digest);
        cmd.Options.Add(path);
        api.AddTo(cmd);
        cmd.SetAction(async (parse, ct) =>
        {
            if ((parse.GetValue(message) is null) == (parse.GetValue(digest) is null))
            {
                throw new CliUsageException("give exactly one of --message or --digest");
            }

            using ConclaveClient client = api.Connect(parse);
            SignResult r = await client.SignAsync(parse.GetValue(name)!, new SignRequest(parse.GetValue(message), parse.GetValue(digest), parse.GetValue(path)), ct).ConfigureAwait(false);
            if (parse.GetValue(api.Json))
            {
                ApiConnection.PrintJson(r);
            }
            else
            {
                var f = new Fields();
                AddSignature(f, r);
                f.Write();
            }

            return 0;
        });
        return cmd;
    }

    /// <summary>
    /// <c>keys sign-batch NAME --digest HEX --digest HEX … [--path P]</c> (or <c>--message</c>): one
    /// <c>POST /v1/keys/{name}/sign/batch</c>, every item decided by policy and signed on its own. The items are printed
    /// in order; when any item was not signed the command ends with one line naming how many and the first failure, and
    /// exit code 2, after printing the signatures that were made.
    /// </summary>
    private static Command SignBatchCmd()
    {
        var api = new ApiConnection();
        var name = NameArg();
        var messages = new Option<string[]>("--message") { Description = "A message to sign, hex (repeatable; Schnorr, EdDSA, FROST schemes).", AllowMultipleArgumentsPerToken = false };
        var digests = new Option<string[]>("--digest") { Description = "A 32-byte digest to sign, hex (repeatable; ECDSA, including ecdsa-dkls23).", AllowMultipleArgumentsPerToken = false };
        var path = new Option<string?>("--path") { Description = "Sign every item with the non-hardened child key at this path, e.g. 0/7 (see 'keys derive')." };
        var cmd = new Command("sign-batch", $"Sign up to {SignBatchRequest.MaxItems} messages or digests with one request.");
        cmd.Arguments.Add(name);
        cmd.Options.Add(messages);
        cmd.Options.Add(digests);
        cmd.Options.Add(path);
        api.AddTo(cmd);
        cmd.SetAction(async (parse, ct) =>
        {
            string[] m = parse.GetValue(messages) ?? [];
            string[] d = parse.GetValue(digests) ?? [];
            if (m.Length > 0 && d.Length > 0)
            {
                throw new CliUsageException("give --message or --digest, not both: a key signs one kind of input");
            }

            int count = m.Length + d.Length;
            if (count == 0)
            {
                throw new CliUsageException("give one or more --digest (or --message) values to sign");
            }

            if (count > SignBatchRequest.MaxItems)
            {
                throw new CliUsageException($"a batch holds at most {SignBatchRequest.MaxItems} items ({count} given)");
            }

            string? p = parse.GetValue(path);
            SignRequest[] items = m.Length > 0
                ? [.. m.Select(x => new SignRequest(Message: x, Path: p))]
                : [.. d.Select(x => new SignRequest(Digest: x, Path: p))];
            using ConclaveClient client = api.Connect(parse);
            SignBatchResult r = await client.SignBatchAsync(parse.GetValue(name)!, items, ct).ConfigureAwait(false);
            if (parse.GetValue(api.Json))
            {
                ApiConnection.PrintJson(r);
            }
            else
            {
                for (int i = 0; i < r.Results.Count; i++)
                {
                    var f = new Fields();
                    f.Add("item", (i + 1).ToString(System.Globalization.CultureInfo.InvariantCulture));
                    if (r.Results[i].Result is { } s)
                    {
                        AddSignature(f, s);
                    }
                    else
                    {
                        f.Add("error", ItemError(r.Results[i].Error));
                    }

                    f.Write();
                }
            }

            int failed = r.Results.Count(x => x.Result is null);
            if (failed > 0)
            {
                int first = r.Results.ToList().FindIndex(x => x.Result is null);
                throw new SignBatchFailedException(failed, r.Results.Count, first + 1, ItemError(r.Results[first].Error));
            }

            return 0;
        });
        return cmd;

        static string ItemError(Problem? e) => e is null ? "no result" : $"{e.Detail} ({e.Type})";
    }

    private static Command DeriveCmd()
    {
        var api = new ApiConnection();
        var name = NameArg();
        var path = new Argument<string>("path") { Description = "Non-hardened path, for example 0/1." };
        var cmd = new Command("derive", "Derive a child public key and its addresses (non-hardened).");
        cmd.Arguments.Add(name);
        cmd.Arguments.Add(path);
        api.AddTo(cmd);
        cmd.SetAction(async (parse, ct) =>
        {
            using ConclaveClient client = api.Connect(parse);
            DeriveResult r = await client.DeriveAsync(parse.GetValue(name)!, parse.GetValue(path)!, ct).ConfigureAwait(false);
            if (parse.GetValue(api.Json))
            {
                ApiConnection.PrintJson(r);
            }
            else
            {
                var f = new Fields();
                f.Add("path", r.Path);
                f.Add("public key", r.PublicKey);
                if (r.OutputKey is not null)
                {
                    f.Add("output key", r.OutputKey);
                }

                AddAddresses(f, r.Addresses);
                f.Write();
            }

            return 0;
        });
        return cmd;
    }

    /// <summary>Exit code of <c>keys check</c> when a key is out of sync or could not be checked.</summary>
    private const int ExitOutOfSync = 4;

    private static Command CheckCmd()
    {
        var api = new ApiConnection();
        var cmd = new Command("check", "Check every threshold key against the signer nodes (after restoring a server backup); the server re-synchronises keys whose nodes all agree on a newer version.");
        api.AddTo(cmd);
        cmd.SetAction(async (parse, ct) =>
        {
            using ConclaveClient client = api.Connect(parse);
            KeySyncResult r = await client.ResyncAsync(ct).ConfigureAwait(false);
            if (parse.GetValue(api.Json))
            {
                ApiConnection.PrintJson(r);
            }
            else
            {
                foreach (KeySyncReport k in r.Keys.OrderBy(k => k.Name, StringComparer.Ordinal))
                {
                    Console.WriteLine(k.Problem is null
                        ? $"{k.Name}: {k.State} at version {k.StoreVersion}"
                        : $"{k.Name}: {k.State}: {k.Problem}");
                }
            }

            return r.Keys.All(k => k.State is "consistent" or "resynchronised") ? 0 : ExitOutOfSync;
        });
        return cmd;
    }

    private static Command RefreshCmd()
    {
        var api = new ApiConnection();
        var name = NameArg();
        var cmd = new Command("refresh", "Refresh the shares of a threshold key (same key, new shares).");
        cmd.Arguments.Add(name);
        api.AddTo(cmd);
        cmd.SetAction(async (parse, ct) =>
        {
            using ConclaveClient client = api.Connect(parse);
            KeyInfo key = parse.GetValue(api.Json)
                ? await client.RefreshAsync(parse.GetValue(name)!, ct).ConfigureAwait(false)
                : await AnsiConsole.Status().StartAsync("refreshing shares…", _ => client.RefreshAsync(parse.GetValue(name)!, ct)).ConfigureAwait(false);
            Show(key, parse.GetValue(api.Json));
            return 0;
        });
        return cmd;
    }

    private static Command ReshareCmd()
    {
        var api = new ApiConnection();
        var name = NameArg();
        var threshold = new Option<int>("--threshold") { Description = "New threshold.", Required = true };
        var participants = new Option<int>("--participants") { Description = "New number of participants.", Required = true };
        var cmd = new Command("reshare", "Reshare a threshold key to a new threshold and participants.");
        cmd.Arguments.Add(name);
        cmd.Options.Add(threshold);
        cmd.Options.Add(participants);
        api.AddTo(cmd);
        cmd.SetAction(async (parse, ct) =>
        {
            using ConclaveClient client = api.Connect(parse);
            string n = parse.GetValue(name)!;
            KeyInfo key = parse.GetValue(api.Json)
                ? await client.ReshareAsync(n, parse.GetValue(threshold), parse.GetValue(participants), ct).ConfigureAwait(false)
                : await AnsiConsole.Status().StartAsync("resharing…", _ => client.ReshareAsync(n, parse.GetValue(threshold), parse.GetValue(participants), ct)).ConfigureAwait(false);
            Show(key, parse.GetValue(api.Json));
            return 0;
        });
        return cmd;
    }

    private static Command RepairCmd()
    {
        var api = new ApiConnection();
        var name = NameArg();
        var node = new Option<int>("--node") { Description = "The signer node whose lost share is rebuilt.", Required = true };
        var cmd = new Command("repair", "Rebuild a signer node's lost share of a threshold key from healthy holders (same key, same version).");
        cmd.Arguments.Add(name);
        cmd.Options.Add(node);
        api.AddTo(cmd);
        cmd.SetAction(async (parse, ct) =>
        {
            using ConclaveClient client = api.Connect(parse);
            string n = parse.GetValue(name)!;
            int lost = parse.GetValue(node);
            KeyInfo key = parse.GetValue(api.Json)
                ? await client.RepairAsync(n, lost, ct).ConfigureAwait(false)
                : await AnsiConsole.Status().StartAsync($"repairing node {lost}'s share…", status => client.RepairAsync(n, lost, ct,
                    new Progress<Operation>(op => status.Status($"repairing node {lost}'s share: operation {op.Id} {op.State}…")))).ConfigureAwait(false);
            Show(key, parse.GetValue(api.Json));
            return 0;
        });
        return cmd;
    }

    private static void Show(KeyInfo key, bool json)
    {
        if (json)
        {
            ApiConnection.PrintJson(key);
            return;
        }

        var f = new Fields();
        f.Add("name", key.Name);
        f.Add("id", key.Id);
        f.Add("scheme", key.Scheme);
        f.Add("public key", key.PublicKey);
        if (key.OutputKey is not null)
        {
            f.Add("output key", key.OutputKey);
        }

        f.Add("threshold", $"{key.Threshold} of {key.Participants}");
        f.Add("version", key.Version.ToString(System.Globalization.CultureInfo.InvariantCulture));
        f.Add("state", key.State);
        AddAddresses(f, key.Addresses);
        foreach (var (k, v) in key.Labels)
        {
            f.Add("label " + k, v);
        }

        f.Write();
    }

    private static void AddSignature(Fields f, SignResult r)
    {
        f.Add("signature", r.Signature);
        if (r.RecoveryId is { } rec)
        {
            f.Add("recovery id", rec.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        f.Add("public key", r.PublicKey);
        if (r.OutputKey is not null)
        {
            f.Add("output key (verifies)", r.OutputKey);
        }

        if (r.Path is not null)
        {
            f.Add("path", r.Path);
        }

        f.Add("key version", r.KeyVersion.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    private static void AddAddresses(Fields f, KeyAddresses a)
    {
        if (a.Ethereum is not null)
        {
            f.Add("ethereum", a.Ethereum);
        }

        if (a.Bitcoin is not null)
        {
            f.Add("bitcoin", a.Bitcoin);
        }

        if (a.Solana is not null)
        {
            f.Add("solana", a.Solana);
        }
    }
}
