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

            Console.WriteLine($"ok: {transcript.Kind} of key {transcript.KeyId} to version {transcript.ToVersion} (run {transcript.RunId}): " +
                $"{transcript.Dealers.Count} dealer(s), {transcript.Receivers.Count} receiver(s) confirmed, " + (transcript.Kind == "key-generation" ? "group key from the dealers' commitments" : "group key unchanged"));
            return 0;
        });
        rotation.Subcommands.Add(verify);
        return rotation;
    }
}
