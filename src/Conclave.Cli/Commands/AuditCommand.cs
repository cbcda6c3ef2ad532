using System.CommandLine;
using System.Globalization;
using Conclave.Client;
using Conclave.Storage;
using AuditVerificationResult = Conclave.Storage.Audit.AuditVerificationResult;
using AuditVerifyOptions = Conclave.Storage.Audit.AuditVerifyOptions;
using Spectre.Console;

namespace Conclave.Cli.Commands;

/// <summary>
/// <c>conclave audit verify|tail|anchor|reconcile</c>. <c>verify --data DIR | --postgres CONNSTRING [--node-key HEX]</c> verifies a store
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
        audit.Subcommands.Add(AnchorCmd());
        audit.Subcommands.Add(ReconcileCmd());
        audit.Subcommands.Add(RotateKeyCmd());
        return audit;
    }

    /// <summary><c>conclave audit rotate-key</c>: the server's checkpoint key hands over to a fresh one (admin).</summary>
    private static Command RotateKeyCmd()
    {
        var api = new ApiConnection();
        var cmd = new Command("rotate-key", "Rotate the server audit log's checkpoint key: the current key signs the handover to a fresh one in the log itself.");
        api.AddTo(cmd, withData: false);
        cmd.SetAction(async (parse, ct) =>
        {
            using ConclaveClient client = api.Connect(parse);
            AuditKeyRotation r = await client.RotateAuditKeyAsync(ct).ConfigureAwait(false);
            if (parse.GetValue(api.Json))
            {
                ApiConnection.PrintJson(r);
            }
            else
            {
                Console.WriteLine($"checkpoint key handed over at seq {r.Seq}: {r.OldPublicKey} -> {r.NewPublicKey} ({r.Scheme}); either key verifies the log (conclave audit verify --node-key)");
            }

            return 0;
        });
        return cmd;
    }

    private static Command VerifyCmd()
    {
        var api = new ApiConnection();
        var data = StoreLocation.DataOption();
        var postgres = StoreLocation.PostgresOption();
        var nodeKey = new Option<string?>("--node-key") { Description = "Offline: hex public key of the node identity key that must have signed every checkpoint." };
        var anchor = new Option<FileInfo?>("--anchor") { Description = "Offline: an anchor file from 'conclave audit anchor'; the log must still contain the entry it names." };
        var allowUnsigned = new Option<bool>("--allow-unsigned") { Description = "Offline: accept a log whose head was never signed (written without a checkpoint signer)." };
        var cmd = new Command("verify", "Verify the audit log's hash chain, signed checkpoints and signed head: offline (--data or --postgres) or on the server.");
        cmd.Options.Add(data);
        cmd.Options.Add(postgres);
        cmd.Options.Add(nodeKey);
        cmd.Options.Add(anchor);
        cmd.Options.Add(allowUnsigned);
        api.AddTo(cmd, withData: false);
        cmd.SetAction(async (parse, ct) =>
        {
            if (parse.GetValue(data) is not null || parse.GetValue(postgres) is not null)
            {
                return await VerifyAsync(parse.GetValue(data), parse.GetValue(postgres), parse.GetValue(nodeKey), parse.GetValue(anchor),
                    parse.GetValue(allowUnsigned), ct).ConfigureAwait(false);
            }

            if (parse.GetValue(anchor) is not null)
            {
                throw new CliUsageException("--anchor verifies a store offline: give --data DIR or --postgres CONNSTRING");
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

    private static Command AnchorCmd()
    {
        var data = StoreLocation.DataOption();
        var postgres = StoreLocation.PostgresOption();
        var output = new Option<FileInfo?>("--out") { Description = "Write the anchor to this file (never overwritten) instead of standard output." };
        var cmd = new Command("anchor", "Print the audit log's signed head (seq, hash, time, signer public key, signature) as JSON, to keep outside the database.");
        cmd.Options.Add(data);
        cmd.Options.Add(postgres);
        cmd.Options.Add(output);
        cmd.SetAction(async (parse, ct) =>
        {
            await using IConclaveStore store = await StoreLocation.OpenAsync(parse.GetValue(data), parse.GetValue(postgres), new StoreOptions { ReadOnly = true }, ct).ConfigureAwait(false);
            string json = (await store.Audit.GetAnchorAsync(ct).ConfigureAwait(false)).ToJson();
            if (parse.GetValue(output) is { } file)
            {
                if (file.Exists)
                {
                    throw new CliUsageException($"{file.FullName} exists; choose a new file for the anchor");
                }

                await File.WriteAllTextAsync(file.FullName, json + "\n", ct).ConfigureAwait(false);
            }
            else
            {
                Console.WriteLine(json);
            }

            return 0;
        });
        return cmd;
    }

    private static Command ReconcileCmd()
    {
        var data = StoreLocation.DataOption();
        var postgres = StoreLocation.PostgresOption();
        var nodes = new Option<string[]>("--node-data") { Description = "A signer node's data folder (repeat for each node).", AllowMultipleArgumentsPerToken = false, Arity = ArgumentArity.OneOrMore, Required = true };
        var cmd = new Command("reconcile", "Match every signature share the nodes' audit logs record to a signing round in the server's audit log.");
        cmd.Options.Add(data);
        cmd.Options.Add(postgres);
        cmd.Options.Add(nodes);
        cmd.SetAction(async (parse, ct) =>
        {
            HashSet<string> rounds;
            await using (IConclaveStore server = await StoreLocation.OpenAsync(parse.GetValue(data), parse.GetValue(postgres), new StoreOptions { ReadOnly = true }, ct).ConfigureAwait(false))
            {
                rounds = await Conclave.Server.Hosting.AuditReconciler.ServerRoundsAsync(server, ct).ConfigureAwait(false);
            }

            bool ok = true;
            foreach (string dir in parse.GetValue(nodes) ?? [])
            {
                await using IConclaveStore node = await StoreLocation.OpenAsync(dir, null, new StoreOptions { ReadOnly = true }, ct).ConfigureAwait(false);
                var r = await Conclave.Server.Hosting.AuditReconciler.ReconcileNodeAsync(dir, node, rounds, new AuditVerifyOptions(), ct).ConfigureAwait(false);
                ok &= r.Ok;
                Console.WriteLine(r.Verification.Ok
                    ? $"{dir}: {r.Shares} signature shares, {r.Unexplained.Count} not explained by the server's log"
                    : $"{dir}: node log does not verify: {r.Verification}");
                foreach (var u in r.Unexplained)
                {
                    Console.WriteLine($"{dir}: UNEXPLAINED share at node seq {u.NodeSeq} ({u.Time:u}): key {u.KeyId}, {u.Round}, message sha256 {u.MessageHash}");
                }
            }

            return ok ? 0 : ExitVerificationFailed;
        });
        return cmd;
    }

    /// <summary>Ed25519 identity public keys sign checkpoints (the coordinator's for the server log, a node's for its own).</summary>
    private const int IdentityKeySizeInBytes = 32;

    /// <summary>
    /// <c>--node-key</c>: the 32-byte Ed25519 identity public key as 64 hex digits (optionally 0x-prefixed). The message
    /// says what is wrong without repeating the value.
    /// </summary>
    private static byte[] ParseNodeKey(string text)
    {
        string hex = text.Trim();
        hex = hex.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? hex[2..] : hex;
        if (hex.Length == 0 || !hex.All(Uri.IsHexDigit))
        {
            throw new CliUsageException("--node-key must be hex: the 64 hex digits of the signing identity's Ed25519 public key (the coordinator's for a server log, the node's for a node log)");
        }

        if (hex.Length != 2 * IdentityKeySizeInBytes)
        {
            throw new CliUsageException($"--node-key must be {2 * IdentityKeySizeInBytes} hex digits (a {IdentityKeySizeInBytes}-byte Ed25519 public key); it has {hex.Length}");
        }

        return Convert.FromHexString(hex);
    }

    private static async Task<int> VerifyAsync(string? data, string? postgres, string? nodeKeyHex, FileInfo? anchorFile, bool allowUnsigned, CancellationToken ct)
    {
        Conclave.Storage.Audit.AuditAnchor? anchor = null;
        if (anchorFile is not null)
        {
            if (!anchorFile.Exists)
            {
                throw new CliUsageException($"anchor file not found: {anchorFile.FullName}");
            }

            anchor = Conclave.Storage.Audit.AuditAnchor.Parse(await File.ReadAllTextAsync(anchorFile.FullName, ct).ConfigureAwait(false));
        }

        byte[]? trusted = nodeKeyHex is null ? null : ParseNodeKey(nodeKeyHex);

        await using IConclaveStore store = await StoreLocation.OpenAsync(data is null ? null : StoreLocation.FindStore(data), postgres, new StoreOptions { ReadOnly = true }, ct).ConfigureAwait(false);
        AuditVerificationResult result = await store.Audit.VerifyAsync(
            new AuditVerifyOptions { TrustedCheckpointKey = trusted, Anchor = anchor, AllowUnsigned = allowUnsigned }, ct).ConfigureAwait(false);
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
