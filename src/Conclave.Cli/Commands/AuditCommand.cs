using System.CommandLine;
using System.Globalization;
using Conclave.Client;
using Conclave.Storage;
using AuditVerificationResult = Conclave.Storage.Audit.AuditVerificationResult;
using AuditVerifyOptions = Conclave.Storage.Audit.AuditVerifyOptions;
using Spectre.Console;

namespace Conclave.Cli.Commands;

/// <summary>
/// <c>conclave audit verify|tail</c>. <c>verify --data DIR | --postgres CONNSTRING [--node-key HEX]</c> verifies a store
/// offline, read-only; <c>verify</c> with <c>--server</c> asks the server to recompute its chain and check every signed
/// checkpoint. Either way: one line, exit 0 when intact, 4 when tampering was found (naming the first bad seq).
/// </summary>
internal static class AuditCommand
{
    /// <summary>Exit code when the audit log does not verify.</summary>
    public const int ExitVerificationFailed = 4;

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
        var data = StoreLocation.DataOption();
        var postgres = StoreLocation.PostgresOption();
        var nodeKey = new Option<string?>("--node-key") { Description = "Offline: hex public key of the node identity key that must have signed every checkpoint." };
        var cmd = new Command("verify", "Verify the audit log's hash chain and signed checkpoints: offline (--data or --postgres) or on the server.");
        cmd.Options.Add(data);
        cmd.Options.Add(postgres);
        cmd.Options.Add(nodeKey);
        api.AddTo(cmd, withData: false);
        cmd.SetAction(async (parse, ct) =>
        {
            if (parse.GetValue(data) is not null || parse.GetValue(postgres) is not null)
            {
                return await VerifyAsync(parse.GetValue(data), parse.GetValue(postgres), parse.GetValue(nodeKey), ct).ConfigureAwait(false);
            }

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
                WarnIfNoCheckpoint(r.Checkpoints, r.Entries);
            }
            else
            {
                Console.WriteLine($"audit log FAILED at seq {r.FirstBad}: {r.Kind} ({r.Detail})");
            }

            return r.Ok ? 0 : ExitVerificationFailed;
        });
        return cmd;
    }

    private static Command TailCmd()
    {
        var api = new ApiConnection();
        var after = new Option<long?>("--after") { Description = "Show entries after this sequence number, oldest first (default: the newest entries)." };
        var limit = new Option<int>("--limit") { Description = "At most this many entries (1..1000).", DefaultValueFactory = _ => 100 };
        var cmd = new Command("tail", "Show the newest audit entries (or, with --after, the entries after a sequence number).");
        cmd.Options.Add(after);
        cmd.Options.Add(limit);
        api.AddTo(cmd);
        cmd.SetAction(async (parse, ct) =>
        {
            using ConclaveClient client = api.Connect(parse);
            AuditPage page = parse.GetValue(after) is { } from
                ? await client.ReadAuditAsync(from, parse.GetValue(limit), ct).ConfigureAwait(false)
                : await client.ReadAuditTailAsync(parse.GetValue(limit), ct).ConfigureAwait(false);
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

    /// <summary>A log without a signed checkpoint yet is only as good as its own hashes: say so (stderr, exit code unchanged).</summary>
    private static void WarnIfNoCheckpoint(long checkpoints, long entries)
    {
        if (checkpoints == 0 && entries > 0)
        {
            Console.Error.WriteLine("conclave: warning: the log has no signed checkpoint yet, so nothing signed vouches for it; entries could have been rewritten consistently");
        }
    }

    private static async Task<int> VerifyAsync(string? data, string? postgres, string? nodeKeyHex, CancellationToken ct)
    {
        byte[]? trusted = null;
        if (nodeKeyHex is not null)
        {
            try
            {
                trusted = Convert.FromHexString(nodeKeyHex);
            }
            catch (FormatException)
            {
                throw new CliUsageException("--node-key must be hex");
            }
        }

        await using IConclaveStore store = await StoreLocation.OpenAsync(data is null ? null : StoreLocation.FindStore(data), postgres, new StoreOptions { ReadOnly = true }, ct).ConfigureAwait(false);
        AuditVerificationResult result = await store.Audit.VerifyAsync(new AuditVerifyOptions { TrustedCheckpointKey = trusted }, ct).ConfigureAwait(false);
        Console.WriteLine(result.ToString());
        if (result.Ok)
        {
            WarnIfNoCheckpoint(result.CheckpointsChecked, result.EntriesChecked);
        }
        return result.Ok ? 0 : ExitVerificationFailed;
    }
}

/// <summary>The shared <c>--data</c> / <c>--postgres</c> store location options.</summary>
internal static class StoreLocation
{
    public static Option<string?> DataOption() => new("--data") { Description = "Data folder of an SQLite store (the default engine)." };

    public static Option<string?> PostgresOption() => new("--postgres") { Description = "Npgsql connection string of a PostgreSQL store." };

    /// <summary>
    /// The store folder for <c>--data DIR</c>: DIR itself when it holds a store, else the server's store inside a folder
    /// that <c>conclave up</c> made (DIR/server/server.json names it).
    /// </summary>
    public static string FindStore(string data)
    {
        if (File.Exists(Path.Combine(data, ConclaveStore.SqliteFileName)))
        {
            return data;
        }

        string serverConfig = new Conclave.Server.Hosting.LocalClusterLayout(data).ServerConfigPath;
        if (File.Exists(serverConfig))
        {
            Conclave.Server.Config.ServerConfig config = Conclave.Server.Config.ServerConfig.Load(serverConfig);
            string store = config.Resolve(config.DataDir);
            if (File.Exists(Path.Combine(store, ConclaveStore.SqliteFileName)))
            {
                Console.Error.WriteLine($"conclave: note: verifying the server store of the cluster in {data}: {store}");
                return store;
            }
        }

        return data;
    }

    public static Task<IConclaveStore> OpenAsync(string? data, string? postgres, StoreOptions options, CancellationToken ct)
    {
        if ((data is null) == (postgres is null))
        {
            throw new CliUsageException("give exactly one of --data DIR or --postgres CONNSTRING");
        }

        if (data is not null && options.ReadOnly && !File.Exists(Path.Combine(data, ConclaveStore.SqliteFileName)))
        {
            throw new CliUsageException($"no store in {data} ({ConclaveStore.SqliteFileName} not found)");
        }

        return data is not null
            ? ConclaveStore.OpenSqliteAsync(data, options, ct)
            : ConclaveStore.OpenPostgresAsync(postgres!, options, ct);
    }
}
