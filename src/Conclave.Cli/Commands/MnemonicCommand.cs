using System.CommandLine;
using System.Text.Json.Nodes;
using Conclave.Wallets.Bip39;

namespace Conclave.Cli.Commands;

/// <summary>
/// <c>conclave mnemonic new [--words 12|15|18|21|24] [--language english]</c>: a new BIP-39 mnemonic from the
/// health-checked entropy source, printed as <c>{"mnemonic": "..."}</c>. Offline; nothing is stored.
/// </summary>
internal static class MnemonicCommand
{
    public static Command Create()
    {
        var command = new Command("mnemonic", "BIP-39 mnemonic sentences (offline).");
        command.Subcommands.Add(CreateNew());
        return command;
    }

    private static Command CreateNew()
    {
        var words = new Option<int>("--words")
        {
            Description = "Number of words: 12, 15, 18, 21 or 24 (128 to 256 bits of entropy).",
            DefaultValueFactory = _ => 24,
        };
        var language = new Option<string>("--language")
        {
            Description = "Wordlist: " + string.Join(", ", Bip39Wordlist.LanguageNames) + ".",
            DefaultValueFactory = _ => "english",
        };
        var command = new Command("new", "Print a new random mnemonic as JSON: {\"mnemonic\": \"...\"}.") { words, language };
        command.SetAction(parse => Run(parse.GetValue(words), parse.GetValue(language) ?? "english"));
        return command;
    }

    private static int Run(int words, string language)
    {
        if (!Bip39Mnemonic.ValidWordCounts.Contains(words))
        {
            throw new CliUsageException($"--words must be 12, 15, 18, 21 or 24, got {words}");
        }

        if (!Bip39Wordlist.TryGet(language, out Bip39Wordlist? wordlist))
        {
            throw new CliUsageException($"--language must be one of {string.Join(", ", Bip39Wordlist.LanguageNames)}");
        }

        string mnemonic = Bip39Mnemonic.Generate(words, wordlist);
        CliJson.Write(new JsonObject { ["mnemonic"] = mnemonic });
        return 0;
    }
}
