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
            string passphrase = ReadPassphrase(parse.GetValue(passphraseFile), forExport: true);
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
            string passphrase = ReadPassphrase(parse.GetValue(passphraseFile), forExport: false);
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

    /// <summary>Shortest backup passphrase accepted when a backup is written.</summary>
    public const int MinPassphraseLength = 12;

    /// <summary>
    /// The backup passphrase, from the file (which, like an HSM PIN file, must be readable by its owner only: no group
    /// or other permission bits) or the variable. When writing a backup (<paramref name="forExport"/>) it must also be
    /// at least <see cref="MinPassphraseLength"/> characters with at least 6 different characters; a restore takes the
    /// passphrase the backup was made with. Messages never include the passphrase.
    /// </summary>
    private static string ReadPassphrase(FileInfo? file, bool forExport)
    {
        if (file is not null)
        {
            if (!file.Exists)
            {
                throw new CliUsageException($"passphrase file not found: {file.FullName}");
            }

            if (!OperatingSystem.IsWindows())
            {
                UnixFileMode mode = File.GetUnixFileMode(file.FullName);
                const UnixFileMode others = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
                    | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;
                if ((mode & others) != 0)
                {
                    throw new CliUsageException($"passphrase file {file.FullName} is accessible by other users (mode {Convert.ToString((int)mode & 0x1FF, 8)}); restrict it with chmod 600");
                }
            }
        }

        string? passphrase = file is not null
            ? File.ReadAllText(file.FullName).TrimEnd('\r', '\n')
            : Environment.GetEnvironmentVariable(PassphraseVariable);
        if (string.IsNullOrEmpty(passphrase))
        {
            throw new CliUsageException($"no backup passphrase: use --passphrase-file or set {PassphraseVariable}");
        }

        if (forExport && (passphrase.Length < MinPassphraseLength || passphrase.Distinct().Count() < 6))
        {
            throw new CliUsageException($"the backup passphrase is too weak: use at least {MinPassphraseLength} characters with at least 6 different ones (a generated passphrase is best)");
        }

        return passphrase;
    }
}
