using System.Text.Json;
using System.Text.Json.Nodes;

namespace Conclave.Cli.Tests;

/// <summary><c>conclave mnemonic new</c> and <c>conclave derive</c>: JSON on stdout, and one-line errors without secrets.</summary>
[Collection("Console")]
public sealed class WalletCommandTests
{
    private const string Abandon = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";

    private static JsonObject Json(CliRunner.Result r)
    {
        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}: {r.Stderr}");
        Assert.Equal(string.Empty, r.Stderr);
        return JsonNode.Parse(r.Stdout)!.AsObject();
    }

    private static void AssertOneLineError(CliRunner.Result r, string expectedFragment, params string[] secrets)
    {
        Assert.Equal(2, r.ExitCode);
        Assert.Equal(string.Empty, r.Stdout);
        string[] lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("conclave: error: ", lines[0], StringComparison.Ordinal);
        Assert.Contains(expectedFragment, lines[0], StringComparison.Ordinal);
        foreach (string s in secrets)
        {
            Assert.DoesNotContain(s, r.Stderr, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData(12, "english")]
    [InlineData(15, "french")]
    [InlineData(18, "japanese")]
    [InlineData(21, "korean")]
    [InlineData(24, "chinese_traditional")]
    public async Task MnemonicNewPrintsAValidMnemonic(int words, string language)
    {
        JsonObject o = Json(await CliRunner.RunAsync(null, "mnemonic", "new", "--words", words.ToString(System.Globalization.CultureInfo.InvariantCulture), "--language", language));
        Assert.Single(o);
        string mnemonic = o["mnemonic"]!.GetValue<string>();
        Assert.Equal(words, mnemonic.Split([' ', '\u3000']).Length);

        // The printed words derive (language recognised automatically).
        JsonObject d = Json(await CliRunner.RunAsync(mnemonic, "derive", "--mnemonic", "-", "--path", "m/0"));
        Assert.Equal(66, d["publicKey"]!.GetValue<string>().Length);
    }

    [Fact]
    public async Task MnemonicNewDefaultsTo24EnglishWords()
    {
        JsonObject o = Json(await CliRunner.RunAsync(null, "mnemonic", "new"));
        string[] words = o["mnemonic"]!.GetValue<string>().Split(' ');
        Assert.Equal(24, words.Length);
        Assert.All(words, w => Assert.Matches("^[a-z]+$", w));
    }

    [Fact]
    public async Task DeriveEthereumAccount()
    {
        JsonObject o = Json(await CliRunner.RunAsync(null, "derive", "--mnemonic", Abandon, "--path", "m/44'/60'/0'/0/0"));
        Assert.Equal(["path", "publicKey", "privateKey", "chainCode", "xpub", "addresses"], o.Select(p => p.Key).ToArray());
        Assert.Equal("m/44'/60'/0'/0/0", o["path"]!.GetValue<string>());
        Assert.Equal("1ab42cc412b618bdea3a599e3c9bae199ebf030895b039e9db1e30dafb12b727", o["privateKey"]!.GetValue<string>());
        Assert.Equal("0237b0bb7a8288d38ed49a524b5dc98cff3eb5ca824c9f9dc0dfdb3d9cd600f299", o["publicKey"]!.GetValue<string>());
        Assert.StartsWith("xpub", o["xpub"]!.GetValue<string>(), StringComparison.Ordinal);
        // The well-known first account of the "abandon ... about" test mnemonic.
        Assert.Equal("0x9858EfFD232B4033E47d90003D41EC34EcaEda94", o["addresses"]!["ethereum"]!.GetValue<string>());
    }

    [Fact]
    public async Task DeriveSolanaAccountFromStandardInput()
    {
        JsonObject o = Json(await CliRunner.RunAsync(Abandon + "\n", "derive", "--mnemonic", "-", "--path", "m/44h/501h/0h/0h", "--curve", "ed25519"));
        Assert.Equal(["path", "publicKey", "privateKey", "chainCode", "addresses"], o.Select(p => p.Key).ToArray());
        Assert.Equal("m/44'/501'/0'/0'", o["path"]!.GetValue<string>());
        Assert.Equal(64, o["publicKey"]!.GetValue<string>().Length);
        // The well-known first Solana account of the "abandon ... about" test mnemonic (Phantom / solana-keygen).
        Assert.Equal("HAgk14JpMQLgt6rVgv7cBQFJWFto5Dqxi472uT3DKpqk", o["addresses"]!["solana"]!.GetValue<string>());
    }

    [Fact]
    public async Task PassphraseChangesTheKeys()
    {
        JsonObject plain = Json(await CliRunner.RunAsync(null, "derive", "--mnemonic", Abandon, "--path", "m"));
        JsonObject withPass = Json(await CliRunner.RunAsync(null, "derive", "--mnemonic", Abandon, "--passphrase", "TREZOR", "--path", "m"));
        Assert.NotEqual(plain["privateKey"]!.GetValue<string>(), withPass["privateKey"]!.GetValue<string>());
        // BIP-39 vector: "abandon ... about" with passphrase TREZOR.
        Assert.Equal("xpub661MyMwAqRbcGB88KaFbLGiYAat55APKhtWg4uYMkXAmfuSTbq2QYsn9sKJCj1YqZPafsboef4h4YbXXhNhPwMbkHTpkf3zLhx7HvFw1NDy", withPass["xpub"]!.GetValue<string>());
    }

    [Fact]
    public async Task DeriveFromAnXpub()
    {
        const string Xpub = "xpub661MyMwAqRbcFtXgS5sYJABqqG9YLmC4Q1Rdap9gSE8NqtwybGhePY2gZ29ESFjqJoCu1Rupje8YtGqsefD265TMg7usUDFdp6W1EGMcet8";
        JsonObject o = Json(await CliRunner.RunAsync(null, "derive", "--xpub", Xpub, "--path", "m/0/1"));
        Assert.Equal(["path", "publicKey", "chainCode", "xpub", "addresses"], o.Select(p => p.Key).ToArray());
        Assert.False(o.ContainsKey("privateKey"));
    }

    [Fact]
    public async Task Nist256p1HasNoAddresses()
    {
        JsonObject o = Json(await CliRunner.RunAsync(null, "derive", "--mnemonic", Abandon, "--path", "m/0'/1", "--curve", "nist256p1"));
        Assert.Empty(o["addresses"]!.AsObject());
        Assert.False(o.ContainsKey("xpub"));
    }

    [Fact]
    public async Task WrongChecksum()
        => AssertOneLineError(await CliRunner.RunAsync(null, "derive", "--mnemonic", Abandon.Replace("about", "abandon", StringComparison.Ordinal), "--path", "m/0"), "checksum does not match");

    [Fact]
    public async Task UnknownWordIsNamedByPosition()
        => AssertOneLineError(
            await CliRunner.RunAsync(null, "derive", "--mnemonic", Abandon.Replace("about", "hunter2secret", StringComparison.Ordinal), "--path", "m/0"),
            "mnemonic word 12 is not in the english wordlist",
            "hunter2secret", "abandon");

    [Fact]
    public async Task WrongWordCount()
        => AssertOneLineError(await CliRunner.RunAsync("abandon about\n", "derive", "--mnemonic", "-", "--path", "m/0"), "must have 12, 15, 18, 21 or 24 words, got 2", "abandon");

    [Theory]
    [InlineData("m/44'/x", "component 2 is not a number")]
    [InlineData("44'/60'", "must start with 'm'")]
    [InlineData("m/2147483648", "component 1 is out of range")]
    [InlineData("m//0", "component 1 is empty")]
    public async Task BadPath(string path, string reason)
        => AssertOneLineError(await CliRunner.RunAsync(null, "derive", "--mnemonic", Abandon, "--path", path), reason, "abandon");

    [Fact]
    public async Task NonHardenedEd25519Path()
        => AssertOneLineError(await CliRunner.RunAsync(null, "derive", "--mnemonic", Abandon, "--path", "m/44'/501'/0'/0", "--curve", "ed25519"), "derives hardened children only; the index at depth 4", "abandon");

    [Fact]
    public async Task HardenedPublicDerivation()
        => AssertOneLineError(
            await CliRunner.RunAsync(null, "derive", "--xpub", "xpub661MyMwAqRbcFtXgS5sYJABqqG9YLmC4Q1Rdap9gSE8NqtwybGhePY2gZ29ESFjqJoCu1Rupje8YtGqsefD265TMg7usUDFdp6W1EGMcet8", "--path", "m/0/1'"),
            "a hardened child cannot be derived from a public key");

    [Fact]
    public async Task BadXpub()
        => AssertOneLineError(
            await CliRunner.RunAsync(null, "derive", "--xpub", "xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtRBeJgk33yuGBxrMPHi", "--path", "m/0"),
            "it is an extended private key",
            "xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtRBeJgk33yuGBxrMPHi");

    [Theory]
    [InlineData("13", "--words must be 12, 15, 18, 21 or 24, got 13")]
    [InlineData("abc", "--words")]
    public async Task BadWordCountForNew(string words, string fragment)
        => AssertOneLineError(await CliRunner.RunAsync(null, "mnemonic", "new", "--words", words), fragment);

    [Fact]
    public async Task UnknownLanguage()
        => AssertOneLineError(await CliRunner.RunAsync(null, "mnemonic", "new", "--language", "klingon"), "--language must be one of english");

    [Fact]
    public async Task MissingInputs()
    {
        AssertOneLineError(await CliRunner.RunAsync(null, "derive", "--mnemonic", Abandon), "--path is required");
        AssertOneLineError(await CliRunner.RunAsync(null, "derive", "--path", "m/0"), "either --mnemonic");
        AssertOneLineError(await CliRunner.RunAsync(string.Empty, "derive", "--mnemonic", "-", "--path", "m/0"), "no mnemonic on standard input");
        AssertOneLineError(await CliRunner.RunAsync(null, "derive", "--mnemonic", Abandon, "--path", "m/0", "--curve", "ed448"), "--curve must be");
    }

    [Fact]
    public async Task MistypedOptionDoesNotEchoTheSecretAfterIt()
        => AssertOneLineError(await CliRunner.RunAsync(null, "derive", "--mnemonc", Abandon, "--path", "m/0"), "unrecognized argument", "abandon");

    [Fact]
    public async Task OutputIsValidJsonForNonAsciiMnemonics()
    {
        CliRunner.Result r = await CliRunner.RunAsync(null, "mnemonic", "new", "--language", "japanese", "--words", "12");
        using JsonDocument doc = JsonDocument.Parse(r.Stdout);
        Assert.Contains('\u3000', doc.RootElement.GetProperty("mnemonic").GetString()!);
    }
}
