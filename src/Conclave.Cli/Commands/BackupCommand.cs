using System.CommandLine;
using Conclave.Storage;
using Conclave.Storage.Encryption;

namespace Conclave.Cli.Commands;

/// <summary>
/// <c>conclave backup export|import</c>: an encrypted copy of a store without its nonce ledger. The backup passphrase is
/// read from a file (<c>--passphrase-file</c>) or the <c>CONCLAVE_BACKUP_PASSPHRASE</c> variable, never from the command line.
/// </summary>
internal static class BackupCommand
{
    public const string PassphraseVariable = "CONCLAVE_BACKUP_PASSPHRASE";

    public static Command Create()
    {
        var backup = new Command("backup", "Encrypted export and import of a store (nonces are never included).");
        var passphraseFile = new Option<FileInfo?>("--passphrase-file") { Description = $"File holding the backup passphrase (else ${PassphraseVariable})." };

        var data = StoreLocation.DataOption();
        var postgres = StoreLocation.PostgresOption();
        var output = new Option<FileInfo>("--out") { Description = "Backup file to create (must not exist).", Required = true };
        var export = new Command("export", "Write an encrypted backup of the store.");
        export.Options.Add(data);
        export.Options.Add(postgres);
        export.Options.Add(output);
        export.Options.Add(passphraseFile);
        export.SetAction(async (parse, ct) =>
        {
            string passphrase = ReadPassphrase(parse.GetValue(passphraseFile));
            FileInfo target = parse.GetValue(output)!;
            if (target.Exists)
            {
                throw new CliUsageException($"{target.FullName} exists; a backup never overwrites a file");
            }

            await using IConclaveStore store = await StoreLocation.OpenAsync(parse.GetValue(data), parse.GetValue(postgres), new StoreOptions(), ct).ConfigureAwait(false);
            string temp = target.FullName + ".partial";
            try
            {
                await using (var fs = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
                {
                    await store.ExportAsync(fs, PassphraseKek.Source(passphrase), ct).ConfigureAwait(false);
                    fs.Flush(flushToDisk: true);
                }

                File.Move(temp, target.FullName, overwrite: false);
            }
            finally
            {
                File.Delete(temp);
            }

            Console.WriteLine($"backup written to {target.FullName} (nonces excluded)");
            return 0;
        });

        var importData = StoreLocation.DataOption();
        var importPostgres = StoreLocation.PostgresOption();
        var input = new Option<FileInfo>("--in") { Description = "Backup file to restore.", Required = true };
        var import = new Command("import", "Restore a backup into a new, empty store (checked in full before anything is written).");
        import.Options.Add(importData);
        import.Options.Add(importPostgres);
        import.Options.Add(input);
        import.Options.Add(passphraseFile);
        import.SetAction(async (parse, ct) =>
        {
            string passphrase = ReadPassphrase(parse.GetValue(passphraseFile));
            FileInfo source = parse.GetValue(input)!;
            if (!source.Exists)
            {
                throw new FileNotFoundException("backup not found", source.FullName);
            }

            await using IConclaveStore store = await StoreLocation.OpenAsync(parse.GetValue(importData), parse.GetValue(importPostgres), new StoreOptions(), ct).ConfigureAwait(false);
            await using (var fs = source.OpenRead())
            {
                await store.ImportAsync(fs, PassphraseKek.Source(passphrase), ct).ConfigureAwait(false);
            }

            Console.WriteLine("backup restored; open the store with its original passphrase or key file");
            return 0;
        });

        backup.Subcommands.Add(export);
        backup.Subcommands.Add(import);
        return backup;
    }

    private static string ReadPassphrase(FileInfo? file)
    {
        string? passphrase = file is not null
            ? File.ReadAllText(file.FullName).TrimEnd('\r', '\n')
            : Environment.GetEnvironmentVariable(PassphraseVariable);
        if (string.IsNullOrEmpty(passphrase))
        {
            throw new CliUsageException($"no backup passphrase: use --passphrase-file or set {PassphraseVariable}");
        }

        return passphrase;
    }
}
