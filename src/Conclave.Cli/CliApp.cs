using System.CommandLine;
using Conclave.Cli.Commands;
using Conclave.Crypto;
using Conclave.Crypto.Interop;
using Conclave.Crypto.Randomness;

namespace Conclave.Cli;

/// <summary>
/// The <c>conclave</c> command line. Each command lives in Commands/ and adds itself here.
/// Every failure ends as one readable line on standard error and a non-zero exit code; secrets never appear in it.
/// </summary>
internal static class CliApp
{
    /// <summary>Exit code for bad input (arguments, files, keys).</summary>
    public const int ExitUsage = 2;

    /// <summary>Exit code for an environment problem (missing native library, unhealthy entropy).</summary>
    public const int ExitEnvironment = 3;

    /// <summary>Exit code for a signing request the server's policy holds for approval (nothing signed yet; the line names the request).</summary>
    public const int ExitHeld = 4;

    public static RootCommand BuildRoot()
    {
        var root = new RootCommand("Conclave: key management for on-chain derivatives venues (threshold signing, HSMs, deterministic wallets).");
        root.Subcommands.Add(SelfCheckCommand.Create());
        root.Subcommands.Add(NodeCommand.Create());
        root.Subcommands.Add(ServerCommand.Create());
        root.Subcommands.Add(CoordinatorCommand.Create());
        root.Subcommands.Add(CaCommand.Create());
        root.Subcommands.Add(UpCommand.Create());
        root.Subcommands.Add(DemoCommand.Create());
        root.Subcommands.Add(HsmCommand.Create());
        root.Subcommands.Add(MnemonicCommand.Create());
        root.Subcommands.Add(DeriveCommand.Create());
        root.Subcommands.Add(AuditCommand.Create());
        root.Subcommands.Add(BackupCommand.Create());
        root.Subcommands.Add(KeysCommand.Create());
        root.Subcommands.Add(BenchCommand.Create());
        root.Subcommands.Add(NodesCommand.Create());
        root.Subcommands.Add(RotationCommand.Create());
        root.Subcommands.Add(AgentsCommand.Create());
        root.Subcommands.Add(RiskCommand.Create());
        root.Subcommands.Add(PoliciesCommand.Create());
        root.Subcommands.Add(PoliciesCommand.CreateApprovals());
        root.Subcommands.Add(VenueProfilesCommand.Create());
        return root;
    }

    public static async Task<int> RunAsync(string[] args)
    {
        try
        {
            RootCommand root = BuildRoot();
            ParseResult parse = root.Parse(args);
            if (parse.Errors.Count > 0)
            {
                return ParseFailure(parse);
            }

            return await parse.InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false }).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            return Fail(e);
        }
    }

    /// <summary>
    /// Command-line syntax errors as one line and exit code 2. Unrecognized tokens are counted, never echoed: a
    /// mistyped option name would otherwise print the secret that followed it (a mnemonic, a passphrase).
    /// </summary>
    private static int ParseFailure(ParseResult parse)
    {
        string message = parse.UnmatchedTokens.Count > 0
            ? $"{parse.UnmatchedTokens.Count} unrecognized argument(s); see 'conclave {parse.CommandResult.Command.Name} --help'"
            : Reword(parse.Errors[0].Message);
        Console.Error.WriteLine($"conclave: error: {message}");
        return ExitUsage;
    }

    /// <summary>
    /// System.CommandLine's "Cannot parse argument 'X' for option '--o' as expected type 'System.Int32'" names a .NET
    /// type and repeats the value (which could be a misplaced secret): said instead as what the option takes.
    /// </summary>
    internal static string Reword(string message)
    {
        System.Text.RegularExpressions.Match m = System.Text.RegularExpressions.Regex.Match(message,
            "for (?:option|argument) '([^']{1,64})' as expected type '([^']{1,200})'");
        if (!m.Success)
        {
            return message.Contains("expected type", StringComparison.Ordinal) ? "an argument has the wrong form; see --help" : message;
        }

        string type = m.Groups[2].Value;
        string expected = type.Contains("Int32", StringComparison.Ordinal) ? "a whole number from -2147483648 to 2147483647"
            : type.Contains("Int64", StringComparison.Ordinal) ? "a whole number from -9223372036854775808 to 9223372036854775807"
            : type.Contains("UInt32", StringComparison.Ordinal) ? "a whole number from 0 to 4294967295"
            : type.Contains("Boolean", StringComparison.Ordinal) ? "true or false"
            : "a value of another form";
        return $"{m.Groups[1].Value} takes {expected}";
    }

    /// <summary>Maps an exception to one line on stderr and an exit code. Only typed, secret-free messages are printed.</summary>
    public static int Fail(Exception e)
    {
        (string message, int code) = e switch
        {
            NativeLibraryMissingException m => (m.Message, ExitEnvironment),
            EntropyHealthException h => (h.Message, ExitEnvironment),
            CryptoFormatException f => (f.Message, ExitUsage),
            Hsm.HsmException h => (h.Message, HsmExitCode(h.Kind)),
            CliUsageException u => (u.Message, ExitUsage),
            SignBatchFailedException b => (b.Message, ExitUsage),
            Bench.BenchFailedException b => ($"bench: {b.Message}", 1),
            Conclave.Client.ConclaveApiException a => ($"server: {a.Detail} ({a.Type})", ExitUsage),
            Conclave.Client.ConclaveRequestHeldException h => ($"held for approval: request {h.Held?.RequestId} (expires {h.Held?.ExpiresAt:O}); approvers vote on it, and GET /v1/requests/{{id}} shows its signature once executed", ExitHeld),
            HttpRequestException h => ($"network: {h.Message}", ExitEnvironment),
            Conclave.Node.Config.ConfigException c => (c.Message, ExitUsage),
            Conclave.Crypto.Aead.EnvelopeException x => ($"a sealed file could not be opened: {x.Message}", ExitUsage),
            System.Net.Sockets.SocketException s => ($"network: {s.Message}", ExitEnvironment),
            IOException io when io.InnerException is System.Net.Sockets.SocketException s2 => ($"network: {s2.Message}", ExitEnvironment),
            Conclave.Storage.StorageException s => (s.Message, s.Kind == Conclave.Storage.StorageErrorKind.Io ? ExitEnvironment : ExitUsage),
            FileNotFoundException f => ($"file not found: {f.FileName}", ExitUsage),
            DirectoryNotFoundException => ("directory not found", ExitUsage),
            UnauthorizedAccessException => ("permission denied", ExitUsage),
            OperationCanceledException => ("cancelled", 130),
            _ => ($"unexpected {e.GetType().Name}; rerun with CONCLAVE_DEBUG=1 for details", 1),
        };
        Console.Error.WriteLine($"conclave: error: {message}");
        if (Environment.GetEnvironmentVariable("CONCLAVE_DEBUG") == "1" && code == 1)
        {
            Console.Error.WriteLine(e.GetType().FullName);
            Console.Error.WriteLine(e.StackTrace);
        }

        return code;
    }

    /// <summary>HSM failures: the environment's (module, token, mechanism, device) exit 3, the caller's (config, PIN, key id) exit 2.</summary>
    private static int HsmExitCode(Hsm.HsmErrorKind kind) => kind switch
    {
        Hsm.HsmErrorKind.ModuleNotFound or Hsm.HsmErrorKind.ModuleLoadFailed or Hsm.HsmErrorKind.TokenNotFound
            or Hsm.HsmErrorKind.UnsupportedMechanism or Hsm.HsmErrorKind.SessionPoolExhausted or Hsm.HsmErrorKind.DeviceError => ExitEnvironment,
        _ => ExitUsage,
    };
}

/// <summary>A bad argument or input file; the message is shown to the user as is.</summary>
internal sealed class CliUsageException : Exception
{
    public CliUsageException() { }

    public CliUsageException(string message) : base(message) { }

    public CliUsageException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>
/// Some items of a <c>keys sign-batch</c> were not signed (the server's problem for each is in the printed results):
/// how many, and the first one's problem. Its message is the one line the user sees.
/// </summary>
internal sealed class SignBatchFailedException : Exception
{
    public SignBatchFailedException() { }

    public SignBatchFailedException(string message) : base(message) { }

    public SignBatchFailedException(string message, Exception innerException) : base(message, innerException) { }

    public SignBatchFailedException(int failed, int total, int firstItem, string firstProblem)
        : base($"{failed} of {total} items were not signed; item {firstItem}: {firstProblem}")
    {
    }
}
