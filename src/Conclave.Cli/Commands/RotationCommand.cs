using System.CommandLine;
using Conclave.Node.Config;
using Conclave.Server.Rotation;

namespace Conclave.Cli.Commands;

/// <summary><c>conclave rotation verify FILE --manifest cluster.json</c>: checks a rotation transcript offline (docs/ROTATION.md "Verifying a rotation").</summary>
internal static class RotationCommand
{
    /// <summary>Exit code of a transcript that was read but does not verify.</summary>
    public const int ExitRefused = 1;

    public static Command Create()
    {
        var rotation = new Command("rotation", "Rotation runs: verify a run's public transcript.");
        var file = new Argument<string>("file") { Description = "The transcript (JSON, as GET /v1/keys/{name}/versions/{v}/transcript returns it)." };
        var manifest = new Option<string>("--manifest") { Description = "The cluster manifest (cluster.json) whose node identity keys sign the transcript.", Required = true };
        var verify = new Command("verify", "Check a rotation transcript with public data only: signatures, proofs, zero refresh constant terms, verifying shares, confirmations.");
        verify.Arguments.Add(file);
        verify.Options.Add(manifest);
        verify.SetAction(parse =>
        {
            string path = parse.GetValue(file)!;
            byte[] json = File.Exists(path) ? File.ReadAllBytes(path) : throw new CliUsageException($"transcript file not found: {path}");
            RotationTranscript transcript;
            try
            {
                transcript = RotationTranscript.FromJson(json);
            }
            catch (FormatException e)
            {
                throw new CliUsageException($"{path}: {e.Message}");
            }

            ClusterManifest cluster = ClusterManifest.Load(parse.GetValue(manifest)!);
            TranscriptCheck check = TranscriptVerifier.Verify(transcript, cluster);
            if (!check.Ok)
            {
                Console.Error.WriteLine($"conclave: refused: {check.Reason}");
                return ExitRefused;
            }

            Console.WriteLine(transcript.Kind == "repair"
                ? $"ok: repair of key {transcript.KeyId} at version {transcript.ToVersion} (run {transcript.RunId}): node {transcript.Receivers[0]}'s share rebuilt by " +
                  $"{transcript.Dealers.Count} helper(s) and proven, key unchanged"
                : $"ok: {transcript.Kind} of key {transcript.KeyId} to version {transcript.ToVersion} (run {transcript.RunId}): " +
                  $"{transcript.Dealers.Count} dealer(s), {transcript.Receivers.Count} receiver(s) confirmed, " + (transcript.Kind == "key-generation" ? "group key from the dealers' commitments" : "group key unchanged")
                  + (transcript.SetupReports is null ? "" : ", every receiver reported the DKLs23 key of its pairwise setup"));
            return 0;
        });
        rotation.Subcommands.Add(verify);
        rotation.Subcommands.Add(ScheduleCmd());
        return rotation;
    }

    private static Command ScheduleCmd()
    {
        var api = new ApiConnection();
        var name = new Argument<string>("name") { Description = "Key name (a threshold key)." };
        var every = new Option<long?>("--every") { Description = "Refresh every this many seconds (up to 10% later: jitter)." };
        var after = new Option<long?>("--after-signatures") { Description = "Refresh after this many signatures." };
        var off = new Option<bool>("--off") { Description = "Remove the key's schedule." };
        var cmd = new Command("schedule", "Show, set or remove a key's continuous-rotation schedule.");
        cmd.Arguments.Add(name);
        cmd.Options.Add(every);
        cmd.Options.Add(after);
        cmd.Options.Add(off);
        api.AddTo(cmd);
        cmd.SetAction(async (parse, ct) =>
        {
            string key = parse.GetValue(name)!;
            long? seconds = parse.GetValue(every), count = parse.GetValue(after);
            using Conclave.Client.ConclaveClient client = api.Connect(parse);
            if (parse.GetValue(off))
            {
                if (seconds is not null || count is not null)
                {
                    throw new CliUsageException("--off cannot be combined with --every or --after-signatures");
                }

                await client.RemoveRotationScheduleAsync(key, ct).ConfigureAwait(false);
                Console.WriteLine($"{key}: no schedule");
                return 0;
            }

            Conclave.Client.RotationSchedule s = seconds is null && count is null
                ? await client.GetRotationScheduleAsync(key, ct).ConfigureAwait(false)
                : await client.SetRotationScheduleAsync(key, seconds, count, ct).ConfigureAwait(false);
            if (parse.GetValue(api.Json))
            {
                ApiConnection.PrintJson(s);
                return 0;
            }

            var f = new Fields();
            f.Add("key", s.Key);
            f.Add("every", s.IntervalSeconds is { } i ? $"{i} s" : "-");
            f.Add("after signatures", s.AfterSignatures is { } n ? $"{n} ({s.Signatures} so far)" : "-");
            f.Add("last rotation", s.LastRotation?.ToString("u", System.Globalization.CultureInfo.InvariantCulture) ?? "none yet");
            f.Add("next due", s.NextDue?.ToString("u", System.Globalization.CultureInfo.InvariantCulture) ?? "-");
            f.Add("failures", s.LastError is { } e ? $"{s.Failures} ({e})" : s.Failures.ToString(System.Globalization.CultureInfo.InvariantCulture));
            f.Write();
            return 0;
        });
        return cmd;
    }
}
