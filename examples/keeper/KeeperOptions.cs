using System.Globalization;

namespace Conclave.Keeper;

/// <summary>What the keeper does: liquidate under-margined accounts, or settle expired option series.</summary>
internal enum KeeperMode
{
    Liquidate,
    Settle,
}

/// <summary>A command line the keeper cannot run with; the message is one line naming the option.</summary>
internal sealed class KeeperUsageException(string message) : Exception(message);

/// <summary>The keeper's command line (README.md "Running it").</summary>
internal sealed class KeeperOptions
{
    public const string Usage = """
        usage: conclave-keeper --server URL --credential FILE --key NAME --engine 0xADDRESS
                               [--chain-url URL] [--mode liquidate|settle] [--venue NAME] [--concurrency N] [--poll-ms N] [--from-block N]
        """;

    public required Uri Server { get; init; }

    public required string CredentialFile { get; init; }

    /// <summary>The Conclave key that signs (an <c>ecdsa-dkls23</c> key holding the venue's keeper role).</summary>
    public required string Key { get; init; }

    /// <summary>MarginEngine's address, lowercase 0x text.</summary>
    public required string Engine { get; init; }

    /// <summary>
    /// The chain's JSON-RPC URL, read only (eth_call, eth_getLogs, receipts); null: reads go through Conclave's /rpc.
    /// Transactions go through Conclave either way.
    /// </summary>
    public Uri? ChainUrl { get; init; }

    public KeeperMode Mode { get; init; } = KeeperMode.Liquidate;

    /// <summary>The venue profile's name on the server.</summary>
    public string Venue { get; init; } = "example-venue";

    /// <summary>How many operations may be in flight at once (each one a signing request to Conclave).</summary>
    public int Concurrency { get; init; } = 16;

    public TimeSpan Poll { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>The first block whose PositionOpened events are read (the engine's deployment block, or 0).</summary>
    public long FromBlock { get; init; }

    public static KeeperOptions Parse(IReadOnlyList<string> args)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < args.Count; i++)
        {
            string name = args[i];
            if (!name.StartsWith("--", StringComparison.Ordinal) || name.Length < 3)
            {
                throw new KeeperUsageException($"unexpected argument {name}");
            }

            if (i + 1 >= args.Count)
            {
                throw new KeeperUsageException($"{name} needs a value");
            }

            if (!values.TryAdd(name[2..], args[++i]))
            {
                throw new KeeperUsageException($"{name} is given twice");
            }
        }

        string Required(string name) => values.Remove(name, out string? v) ? v : throw new KeeperUsageException($"--{name} is required");
        string? Optional(string name) => values.Remove(name, out string? v) ? v : null;

        var options = new KeeperOptions
        {
            Server = HttpUrl("server", Required("server")),
            CredentialFile = Required("credential"),
            Key = Required("key"),
            Engine = Address("engine", Required("engine")),
            ChainUrl = Optional("chain-url") is { } chainUrl ? HttpUrl("chain-url", chainUrl) : null,
            Mode = Optional("mode") switch
            {
                null or "liquidate" => KeeperMode.Liquidate,
                "settle" => KeeperMode.Settle,
                _ => throw new KeeperUsageException("--mode must be liquidate or settle"),
            },
            Venue = Optional("venue") ?? "example-venue",
            Concurrency = Number("concurrency", Optional("concurrency"), 16, 1, 256),
            Poll = TimeSpan.FromMilliseconds(Number("poll-ms", Optional("poll-ms"), 200, 10, 60_000)),
            FromBlock = Number("from-block", Optional("from-block"), 0, 0, int.MaxValue),
        };
        if (values.Count > 0)
        {
            throw new KeeperUsageException($"unknown option --{values.Keys.First()}");
        }

        return options;
    }

    private static Uri HttpUrl(string name, string text) =>
        Uri.TryCreate(text, UriKind.Absolute, out Uri? u) && (u.Scheme == Uri.UriSchemeHttp || u.Scheme == Uri.UriSchemeHttps) && string.IsNullOrEmpty(u.UserInfo)
            ? u
            : throw new KeeperUsageException($"--{name} must be an http(s) URL without credentials");

    private static string Address(string name, string text) =>
        text.Length == 42 && text.StartsWith("0x", StringComparison.OrdinalIgnoreCase) && text.AsSpan(2).ContainsAnyExcept("0123456789abcdefABCDEF") is false
            ? "0x" + text[2..].ToLowerInvariant()
            : throw new KeeperUsageException($"--{name} must be a 20-byte address in 0x hex");

    private static int Number(string name, string? text, int fallback, int min, int max)
    {
        if (text is null)
        {
            return fallback;
        }

        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n >= min && n <= max
            ? n
            : throw new KeeperUsageException($"--{name} must be a whole number from {min} to {max}");
    }
}
