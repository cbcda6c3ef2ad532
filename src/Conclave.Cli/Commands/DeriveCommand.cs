using System.CommandLine;
using System.Text.Json.Nodes;
using Conclave.Crypto.Memory;
using Conclave.Wallets;
using Conclave.Chains.Ethereum;
using Conclave.Chains.Solana;
using Conclave.Wallets.Bip39;
using Conclave.Wallets.Hd;

namespace Conclave.Cli.Commands;

/// <summary>
/// <c>conclave derive</c>: offline BIP-39 → BIP-32 / SLIP-10 derivation, JSON on stdout.
/// <list type="bullet">
/// <item><c>--mnemonic "&lt;words&gt;"|- [--passphrase P] [--language L] --path PATH [--curve secp256k1|ed25519|nist256p1]</c>
/// prints <c>{"path","publicKey","privateKey","chainCode","xpub"?,"addresses"}</c>. <c>--mnemonic -</c> reads the words
/// from standard input, so they stay out of shell history.</item>
/// <item><c>--xpub XPUB --path PATH</c> derives non-hardened children of an extended public key (no private key);
/// the path is taken relative to that key.</item>
/// </list>
/// </summary>
internal static class DeriveCommand
{
    public static Command Create()
    {
        var mnemonic = new Option<string?>("--mnemonic") { Description = "The BIP-39 words, or - to read them from standard input (recommended: keeps them out of shell history)." };
        var passphrase = new Option<string?>("--passphrase") { Description = "Optional BIP-39 passphrase (the \"25th word\")." };
        var language = new Option<string?>("--language") { Description = "Wordlist of the mnemonic; recognised automatically when omitted." };
        var xpub = new Option<string?>("--xpub") { Description = "Derive from this extended public key (xpub/tpub) instead of a mnemonic: non-hardened paths only." };
        var path = new Option<string?>("--path") { Description = "Derivation path, e.g. m/44'/60'/0'/0/0 or m/44h/501h/0h/0h." };
        var curve = new Option<string>("--curve")
        {
            Description = "secp256k1 (BIP-32, Ethereum address), ed25519 (SLIP-10, hardened only, Solana address) or nist256p1 (SLIP-10).",
            DefaultValueFactory = _ => "secp256k1",
        };
        var command = new Command("derive", "Derive a key from a mnemonic (or an xpub) along a path and print it as JSON.")
        {
            mnemonic, passphrase, language, xpub, path, curve,
        };
        command.SetAction(parse => Run(
            parse.GetValue(mnemonic), parse.GetValue(passphrase), parse.GetValue(language), parse.GetValue(xpub), parse.GetValue(path), parse.GetValue(curve) ?? "secp256k1"));
        return command;
    }

    private static int Run(string? mnemonicArgument, string? passphrase, string? languageName, string? xpubText, string? pathText, string curveName)
    {
        if (string.IsNullOrWhiteSpace(pathText))
        {
            throw new CliUsageException("--path is required (for example m/44'/60'/0'/0/0)");
        }

        KeyPath path = KeyPath.Parse(pathText);
        if (xpubText is not null)
        {
            if (mnemonicArgument is not null || passphrase is not null || languageName is not null)
            {
                throw new CliUsageException("--xpub cannot be combined with --mnemonic, --passphrase or --language");
            }

            if (!string.Equals(curveName, "secp256k1", StringComparison.OrdinalIgnoreCase))
            {
                throw new CliUsageException("--xpub derivation is defined for secp256k1 only");
            }

            return FromXpub(xpubText, path);
        }

        if (mnemonicArgument is null)
        {
            throw new CliUsageException("either --mnemonic (words, or - for standard input) or --xpub is required");
        }

        if (!HdCurve.TryGet(curveName, out HdCurve? curve) || curve == HdCurve.Curve25519)
        {
            throw new CliUsageException("--curve must be secp256k1, ed25519 or nist256p1");
        }

        Bip39Wordlist? wordlist = null;
        if (languageName is not null && !Bip39Wordlist.TryGet(languageName, out wordlist))
        {
            throw new CliUsageException($"--language must be one of {string.Join(", ", Bip39Wordlist.LanguageNames)}");
        }

        // Check the path against the curve before touching the mnemonic.
        if (!curve!.SupportsNonHardenedDerivation && !path.IsHardenedOnly)
        {
            int depth = 1;
            foreach (uint index in path.Indices)
            {
                if (!KeyPath.IsHardened(index))
                {
                    break;
                }

                depth++;
            }

            throw new CliUsageException($"invalid key path: {curve.Name} (SLIP-10) derives hardened children only; the index at depth {depth} is not hardened");
        }

        string words = mnemonicArgument == "-" ? Console.In.ReadToEnd() : mnemonicArgument;
        if (string.IsNullOrWhiteSpace(words))
        {
            throw new CliUsageException(mnemonicArgument == "-" ? "no mnemonic on standard input" : "--mnemonic is empty");
        }

        using SecretBuffer seed = Bip39Mnemonic.ToSeed(words, passphrase ?? string.Empty, wordlist);
        words = string.Empty;
        using ExtendedPrivateKey master = ExtendedPrivateKey.FromSeed(seed.Span, curve);
        using ExtendedPrivateKey key = master.Derive(path);
        using SecretBuffer privateKey = key.ExportPrivateKey();

        var output = new JsonObject
        {
            ["path"] = path.ToString(),
            ["publicKey"] = Convert.ToHexStringLower(key.PublicKey),
            ["privateKey"] = Convert.ToHexStringLower(privateKey.Span),
            ["chainCode"] = Convert.ToHexStringLower(key.GetChainCode()),
        };
        var addresses = new JsonObject();
        if (curve == HdCurve.Secp256k1)
        {
            output["xpub"] = key.ToExtendedPublicKey().ToExtendedKeyString();
            addresses["ethereum"] = EthereumAddress.FromPublicKey(key.PublicKey);
        }
        else if (curve == HdCurve.Ed25519)
        {
            addresses["solana"] = SolanaAddress.FromPublicKey(key.PublicKey);
        }

        output["addresses"] = addresses;
        CliJson.Write(output);
        return 0;
    }

    private static int FromXpub(string xpubText, KeyPath path)
    {
        ExtendedPublicKey parent = ExtendedPublicKey.Parse(xpubText.Trim(), out Bip32Network network);
        ExtendedPublicKey key = parent.Derive(path);
        CliJson.Write(new JsonObject
        {
            ["path"] = path.ToString(),
            ["publicKey"] = Convert.ToHexStringLower(key.PublicKey),
            ["chainCode"] = Convert.ToHexStringLower(key.ChainCode),
            ["xpub"] = key.ToExtendedKeyString(network),
            ["addresses"] = new JsonObject { ["ethereum"] = EthereumAddress.FromPublicKey(key.PublicKey) },
        });
        return 0;
    }
}
