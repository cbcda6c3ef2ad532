using System.CommandLine;
using Conclave.Storage;
using Conclave.Storage.Audit;

namespace Conclave.Cli.Commands;

/// <summary><c>conclave audit verify --data DIR | --postgres CONNSTRING [--node-key HEX]</c>.</summary>
internal static class AuditCommand
{
    /// <summary>Exit code when the audit log does not verify.</summary>
    public const int ExitVerificationFailed = 4;

    public static Command Create()
    {
        var audit = new Command("audit", "Work with the tamper-evident audit log.");
        var data = StoreLocation.DataOption();
        var postgres = StoreLocation.PostgresOption();
        var nodeKey = new Option<string?>("--node-key") { Description = "Hex public key of the node identity key that must have signed every checkpoint." };
        var verify = new Command("verify", "Recompute the hash chain, check the head and every signed checkpoint; print one line and name the first bad seq.");
        verify.Options.Add(data);
        verify.Options.Add(postgres);
        verify.Options.Add(nodeKey);
        verify.SetAction((parse, ct) => VerifyAsync(parse.GetValue(data), parse.GetValue(postgres), parse.GetValue(nodeKey), ct));
        audit.Subcommands.Add(verify);
        return audit;
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

        await using IConclaveStore store = await StoreLocation.OpenAsync(data, postgres, new StoreOptions { ReadOnly = true }, ct).ConfigureAwait(false);
        AuditVerificationResult result = await store.Audit.VerifyAsync(new AuditVerifyOptions { TrustedCheckpointKey = trusted }, ct).ConfigureAwait(false);
        Console.WriteLine(result.ToString());
        return result.Ok ? 0 : ExitVerificationFailed;
    }
}

/// <summary>The shared <c>--data</c> / <c>--postgres</c> store location options.</summary>
internal static class StoreLocation
{
    public static Option<string?> DataOption() => new("--data") { Description = "Data folder of an SQLite store (the default engine)." };

    public static Option<string?> PostgresOption() => new("--postgres") { Description = "Npgsql connection string of a PostgreSQL store." };

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
