using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Serialization;
using Conclave.Cli.Bench;
using Conclave.Hsm;

namespace Conclave.Cli.Commands;

/// <summary>
/// <c>conclave bench</c>: measures every signing path on this machine against a same-run baseline (libsecp256k1
/// ECDSA in process) and prints the HSM / MPC / multisig comparison from the figures; <c>--cluster</c> adds signing
/// through a cluster it starts itself; <c>--json</c> keeps the figures and <c>--markdown</c> writes the tables into
/// a document (docs/PERFORMANCE.md) between generated-section markers. <c>conclave bench render</c> redraws the tables
/// from a JSON file.
/// </summary>
internal static class BenchCommand
{
    internal static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        PreferredObjectCreationHandling = JsonObjectCreationHandling.Populate,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static Command Create()
    {
        var duration = new Option<double>("--duration") { Description = "Seconds per measurement (after a warm-up of a quarter of that), 0.01–600.", DefaultValueFactory = _ => 2 };
        var concurrency = new Option<int>("--concurrency") { Description = "Requests in flight for the cluster's throughput figure, 1–1024.", DefaultValueFactory = _ => 32 };
        var cluster = new Option<bool>("--cluster") { Description = "Also start a local cluster (node processes and the server) and sign through its REST API." };
        var shapes = new Option<string>("--shapes") { Description = "Quorum shapes measured in process (threshold and multisig rows), comma-separated t-of-n.", DefaultValueFactory = _ => "2-of-3,3-of-5,5-of-9,7-of-10" };
        var clusterShape = new Option<string>("--cluster-shape") { Description = "The t-of-n of the cluster --cluster starts.", DefaultValueFactory = _ => "2-of-3" };
        var schemes = new Option<string?>("--schemes") { Description = "Only these rows (comma-separated): " + string.Join(", ", BenchRows.Ids) + "; with --cluster also transport and rotation (refresh, reshare and signing during refresh of each threshold scheme measured); the baseline always runs." };
        var keyCounts = new Option<string>("--key-counts") { Description = "With --schemes keys: how many keys each keys row registers, comma-separated (1–1000000).", DefaultValueFactory = _ => "10,1000,100000" };
        var nodeTransport = new Option<string>("--node-transport") { Description = "How the cluster's coordinator carries steps to the nodes: frames (default) or grpc (server.json nodeTransport).", DefaultValueFactory = _ => "frames" };
        var stepsInFlight = new Option<int>("--sign-steps-in-flight") { Description = "FROST sign steps outstanding per node before signatures coalesce into shared steps (server.json signStepsInFlight, 1–512; 512 turns coalescing off).", DefaultValueFactory = _ => 2 };
        var json = new Option<FileInfo?>("--json") { Description = "Write every figure as JSON to this file." };
        var markdown = new Option<FileInfo?>("--markdown") { Description = "Write the tables into this Markdown file between the generated-section markers (e.g. docs/PERFORMANCE.md)." };
        var hsmModule = new Option<string?>("--hsm-module") { Description = "PKCS#11 module for the HSM rows (else $CONCLAVE_HSM_MODULE)." };
        var hsmToken = new Option<string?>("--hsm-token") { Description = "Token label for the HSM rows (else $CONCLAVE_HSM_TOKEN)." };
        var hsmPinFile = new Option<FileInfo?>("--hsm-pin-file") { Description = "Owner-only file holding the token's user PIN (else $CONCLAVE_HSM_PIN_FILE)." };

        var command = new Command("bench", "Measure signing on this machine (single keys, HSM, FROST, Safe multisig, post-quantum; with --cluster, through a local cluster) against a same-run libsecp256k1 baseline.");
        foreach (Option o in new Option[] { duration, concurrency, cluster, shapes, clusterShape, nodeTransport, stepsInFlight, keyCounts, schemes, json, markdown, hsmModule, hsmToken, hsmPinFile })
        {
            command.Options.Add(o);
        }

        command.SetAction(async (parse, ct) =>
        {
            double seconds = parse.GetValue(duration);
            if (!double.IsFinite(seconds) || seconds is < 0.01 or > 600)
            {
                throw new CliUsageException("--duration must be between 0.01 and 600 seconds");
            }

            int inFlight = parse.GetValue(concurrency);
            if (inFlight is < 1 or > 1024)
            {
                throw new CliUsageException("--concurrency must be between 1 and 1024");
            }

            string[] shapeList = SplitList(parse.GetValue(shapes)) ?? [];
            string clusterShapeValue = parse.GetValue(clusterShape) ?? "2-of-3";
            try
            {
                foreach (string s in shapeList.Append(clusterShapeValue))
                {
                    Shapes.Parse(s);
                }
            }
            catch (ArgumentException e)
            {
                throw new CliUsageException(e.Message);
            }

            if (shapeList.Length == 0)
            {
                throw new CliUsageException("--shapes needs at least one t-of-n");
            }

            string transport = parse.GetValue(nodeTransport) ?? "frames";
            if (transport is not ("frames" or "grpc"))
            {
                throw new CliUsageException("--node-transport must be frames or grpc");
            }

            int signSteps = parse.GetValue(stepsInFlight);
            if (signSteps is < 1 or > 512)
            {
                throw new CliUsageException("--sign-steps-in-flight must be between 1 and 512");
            }

            var counts = new List<int>();
            foreach (string c in SplitList(parse.GetValue(keyCounts)) ?? [])
            {
                if (!int.TryParse(c, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int k) || k is < 1 or > 1_000_000)
                {
                    throw new CliUsageException($"--key-counts: '{c}' is not a count between 1 and 1000000");
                }

                counts.Add(k);
            }

            string[]? filter = SplitList(parse.GetValue(schemes));
            string[] known = [.. BenchRows.Ids.Select(i => i.Split('/')[0]), .. ClusterBench.Schemes, "transport", Bench.Comparison.RotationFamily, KeyCountBench.Family];
            string? unknown = filter?.FirstOrDefault(f => !known.Contains(f, StringComparer.Ordinal) && !BenchRows.Ids.Contains(f, StringComparer.Ordinal));
            if (unknown is not null)
            {
                throw new CliUsageException($"--schemes: unknown row '{unknown}' (known: {string.Join(", ", BenchRows.Ids)})");
            }

            var settings = new BenchSettings(TimeSpan.FromSeconds(seconds), inFlight, parse.GetValue(cluster), shapeList, clusterShapeValue, filter,
                HsmFrom(parse.GetValue(hsmModule), parse.GetValue(hsmToken), parse.GetValue(hsmPinFile)), transport, counts.Count > 0 ? counts : null, signSteps);
            var ctx = new BenchContext(settings, Console.Error);
            BenchRows.RunAll(ctx);
            await KeyCountBench.RunAsync(ctx, ct).ConfigureAwait(false);
            if (settings.Cluster)
            {
                await ClusterBench.RunAsync(ctx, ct).ConfigureAwait(false);
            }

            ctx.Report.FinishedAt = DateTimeOffset.UtcNow;
            ctx.Report.Machine = ctx.Report.Machine with { LoadAverageAtEnd = BenchContext.LoadAverage() };
            Comparison.Build(ctx.Report);
            await WriteOutputsAsync(ctx.Report, parse.GetValue(json), parse.GetValue(markdown), ct).ConfigureAwait(false);
            return 0;
        });

        var input = new Argument<FileInfo>("json") { Description = "A JSON file written by conclave bench --json." };
        var renderMarkdown = new Option<FileInfo?>("--markdown") { Description = "Write the tables into this Markdown file (else print them)." };
        var render = new Command("render", "Print (or write into a Markdown file) the tables of an earlier run's JSON.");
        render.Arguments.Add(input);
        render.Options.Add(renderMarkdown);
        render.SetAction(async (parse, ct) =>
        {
            FileInfo file = parse.GetValue(input)!;
            if (!file.Exists)
            {
                throw new CliUsageException($"{file.FullName} does not exist");
            }

            BenchReport report;
            try
            {
                await using FileStream fs = file.OpenRead();
                report = await JsonSerializer.DeserializeAsync<BenchReport>(fs, JsonOptions, ct).ConfigureAwait(false)
                    ?? throw new CliUsageException($"{file.Name} holds no benchmark report");
            }
            catch (JsonException)
            {
                throw new CliUsageException($"{file.Name} is not a conclave bench JSON file");
            }

            Comparison.Build(report);
            FileInfo? md = parse.GetValue(renderMarkdown);
            if (md is null)
            {
                Console.Out.Write(Comparison.Markdown(report));
            }
            else
            {
                Comparison.WriteInto(md.FullName, Comparison.Markdown(report));
                Console.WriteLine($"tables written into {md.FullName}");
            }

            return 0;
        });
        command.Subcommands.Add(render);
        return command;
    }

    private static async Task WriteOutputsAsync(BenchReport report, FileInfo? json, FileInfo? markdown, CancellationToken ct)
    {
        string tables = Comparison.Markdown(report);
        Console.Out.Write(tables);
        if (json is not null)
        {
            await File.WriteAllTextAsync(json.FullName, JsonSerializer.Serialize(report, JsonOptions), ct).ConfigureAwait(false);
            Console.Error.WriteLine($"figures written to {json.FullName}");
        }

        if (markdown is not null)
        {
            Comparison.WriteInto(markdown.FullName, tables);
            Console.Error.WriteLine($"tables written into {markdown.FullName}");
        }
    }

    private static string[]? SplitList(string? value)
        => string.IsNullOrWhiteSpace(value) ? null : value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private static HsmOptions? HsmFrom(string? module, string? token, FileInfo? pinFile)
    {
        module ??= Environment.GetEnvironmentVariable("CONCLAVE_HSM_MODULE");
        token ??= Environment.GetEnvironmentVariable("CONCLAVE_HSM_TOKEN");
        string? pin = pinFile?.FullName ?? Environment.GetEnvironmentVariable("CONCLAVE_HSM_PIN_FILE");
        if (string.IsNullOrEmpty(module) && string.IsNullOrEmpty(token) && string.IsNullOrEmpty(pin))
        {
            return null;
        }

        if (string.IsNullOrEmpty(module) || string.IsNullOrEmpty(token) || string.IsNullOrEmpty(pin))
        {
            throw new CliUsageException("the HSM rows need all three of --hsm-module, --hsm-token and --hsm-pin-file");
        }

        return new HsmOptions { ModulePath = module, TokenLabel = token, PinFile = pin, SessionPoolSize = 8 };
    }
}
