using System.CommandLine;
using System.Text.Json;
using Conclave.Crypto.Signing;
using Conclave.Hsm;
using Conclave.Hsm.Schemes;

namespace Conclave.Cli.Commands;

/// <summary>
/// The <c>--hsm-*</c> options shared by <c>conclave hsm …</c> and (later) <c>conclave up</c>. The PIN is read from
/// <c>--hsm-pin-file</c> or the environment variable <c>CONCLAVE_HSM_PIN</c>; there is deliberately no option that
/// takes the PIN itself (command lines are visible to other users in the process list and end up in shell history).
/// </summary>
internal sealed class HsmCliOptions
{
    public Option<string?> Module { get; } = new("--hsm-module")
    {
        Description = "Path of the HSM vendor's PKCS#11 module (default: $CONCLAVE_HSM_MODULE)",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("CONCLAVE_HSM_MODULE"),
    };

    public Option<string?> Token { get; } = new("--hsm-token")
    {
        Description = "Label of the token (default: $CONCLAVE_HSM_TOKEN)",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("CONCLAVE_HSM_TOKEN"),
    };

    public Option<FileInfo?> PinFile { get; } = new("--hsm-pin-file")
    {
        Description = $"File holding the user PIN, mode 0600 (default: the PIN from ${HsmOptions.DefaultPinEnvironmentVariable})",
    };

    public Option<int> Sessions { get; } = new("--hsm-sessions")
    {
        Description = "Size of the HSM session pool",
        DefaultValueFactory = _ => HsmOptions.DefaultSessionPoolSize,
    };

    /// <summary>Adds the options to <paramref name="command"/>.</summary>
    public void AddTo(Command command)
    {
        command.Options.Add(Module);
        command.Options.Add(Token);
        command.Options.Add(PinFile);
        command.Options.Add(Sessions);
    }

    /// <summary>Whether any --hsm-* option was given (for commands where the HSM is optional, such as <c>up</c>).</summary>
    public bool IsPresent(ParseResult parse)
        => parse.GetResult(Module) is { Implicit: false } || parse.GetResult(Token) is { Implicit: false } || parse.GetResult(PinFile) is not null;

    /// <summary>Builds validated <see cref="HsmOptions"/>; a missing value is a usage error naming the option.</summary>
    public HsmOptions Build(ParseResult parse)
    {
        string module = parse.GetValue(Module) is { Length: > 0 } m ? m
            : throw new CliUsageException("--hsm-module is required (or set CONCLAVE_HSM_MODULE)");
        string token = parse.GetValue(Token) is { Length: > 0 } t ? t
            : throw new CliUsageException("--hsm-token is required (or set CONCLAVE_HSM_TOKEN)");
        FileInfo? pinFile = parse.GetValue(PinFile);
        var options = new HsmOptions
        {
            ModulePath = module,
            TokenLabel = token,
            PinFile = pinFile?.FullName,
            PinEnvironmentVariable = pinFile is null ? HsmOptions.DefaultPinEnvironmentVariable : null,
            SessionPoolSize = parse.GetValue(Sessions),
        };
        options.Validate();
        return options;
    }
}

/// <summary><c>conclave hsm</c>: keys generated and used inside a PKCS#11 HSM (docs/HSM.md).</summary>
internal static class HsmCommand
{
    private static readonly JsonSerializerOptions s_json = new() { WriteIndented = false };

    public static Command Create()
    {
        var hsm = new Command("hsm", "Keys that are generated and used inside a PKCS#11 HSM and never leave it.");
        var keys = new Command("keys", "Create, list and delete HSM signing keys.");
        keys.Subcommands.Add(CreateKeyCommand());
        keys.Subcommands.Add(ListKeysCommand());
        keys.Subcommands.Add(DeleteKeyCommand());
        hsm.Subcommands.Add(keys);
        hsm.Subcommands.Add(SignCommand());
        hsm.Subcommands.Add(KekCommand());
        return hsm;
    }

    private static Option<string> NameOption(string description) => new("--name") { Description = description, Required = true };

    private static Command CreateKeyCommand()
    {
        var hsmOptions = new HsmCliOptions();
        var scheme = new Option<string>("--scheme") { Description = "hsm-ecdsa-secp256k1 or hsm-ed25519", Required = true };
        scheme.AcceptOnlyFromAmong([.. HsmSignatureSchemes.All.Select(s => s.Name)]);
        var name = NameOption("Key id (CKA_LABEL and CKA_ID on the token)");
        var command = new Command("create", "Generate a key pair inside the token (sensitive, not extractable) and print its public key.");
        command.Options.Add(scheme);
        command.Options.Add(name);
        hsmOptions.AddTo(command);
        command.SetAction(parse =>
        {
            _ = HsmSignatureSchemes.TryGet(parse.GetValue(scheme)!, out HsmSignatureScheme? s);
            using HsmToken token = HsmToken.Open(hsmOptions.Build(parse));
            using HsmSigningKey key = token.GenerateKey(s!, KeyId(parse.GetValue(name)));
            Console.WriteLine(JsonSerializer.Serialize(new { id = key.Id, scheme = key.Scheme.Name, publicKey = Convert.ToHexStringLower(key.PublicKey.Span) }, s_json));
            return 0;
        });
        return command;
    }

    private static Command ListKeysCommand()
    {
        var hsmOptions = new HsmCliOptions();
        var command = new Command("list", "List the token's signing keys of the HSM schemes: id, scheme, public key.");
        hsmOptions.AddTo(command);
        command.SetAction(parse =>
        {
            using HsmToken token = HsmToken.Open(hsmOptions.Build(parse));
            foreach (HsmKeyInfo k in token.ListKeys())
            {
                string note = k.Protection.GeneratedInsideAndNeverExportable ? string.Empty : "  (not always-sensitive/never-extractable)";
                Console.WriteLine($"{k.Id}\t{k.Scheme.Name}\t{Convert.ToHexStringLower(k.PublicKey)}{note}");
            }

            return 0;
        });
        return command;
    }

    private static Command DeleteKeyCommand()
    {
        var hsmOptions = new HsmCliOptions();
        var name = NameOption("Key id to destroy");
        var confirm = new Option<bool>("--yes") { Description = "Confirm: the key is destroyed for good" };
        var command = new Command("delete", "Destroy a signing key pair on the token (irreversible).");
        command.Options.Add(name);
        command.Options.Add(confirm);
        hsmOptions.AddTo(command);
        command.SetAction(parse =>
        {
            if (!parse.GetValue(confirm))
            {
                throw new CliUsageException("deleting an HSM key cannot be undone; add --yes to confirm");
            }

            string id = KeyId(parse.GetValue(name));
            using HsmToken token = HsmToken.Open(hsmOptions.Build(parse));
            if (!token.DeleteKey(id))
            {
                throw new CliUsageException($"no key with id '{id}' on token '{token.TokenLabel}'");
            }

            Console.WriteLine($"deleted {id}");
            return 0;
        });
        return command;
    }

    private static Command SignCommand()
    {
        var hsmOptions = new HsmCliOptions();
        var name = NameOption("Key id");
        var input = new Option<string>("--input")
        {
            Description = "Hex input: a 32-byte digest for hsm-ecdsa-secp256k1, the message for hsm-ed25519",
            Required = true,
        };
        var command = new Command("sign", "Sign with an HSM key; prints the signature (and recovery id) as JSON.");
        command.Options.Add(name);
        command.Options.Add(input);
        hsmOptions.AddTo(command);
        command.SetAction(parse =>
        {
            byte[] data = ParseHex(parse.GetValue(input)!, "--input");
            using HsmToken token = HsmToken.Open(hsmOptions.Build(parse));
            using HsmSigningKey key = token.OpenKey(KeyId(parse.GetValue(name)));
            SignatureResult sig = key.Sign(data);
            Console.WriteLine(JsonSerializer.Serialize(
                new { id = key.Id, scheme = key.Scheme.Name, publicKey = Convert.ToHexStringLower(key.PublicKey.Span), signature = Convert.ToHexStringLower(sig.Signature), recoveryId = sig.RecoveryId },
                s_json));
            return 0;
        });
        return command;
    }

    private static Command KekCommand()
    {
        var hsmOptions = new HsmCliOptions();
        var name = NameOption("Key-encryption key id");
        var create = new Command("create", "Create the AES-256 key-encryption key the key store wraps its data keys with (or confirm it exists).");
        create.Options.Add(name);
        hsmOptions.AddTo(create);
        create.SetAction(parse =>
        {
            using HsmToken token = HsmToken.Open(hsmOptions.Build(parse));
            HsmKeyEncryptionKey kek = token.GetOrCreateKeyEncryptionKey(KeyId(parse.GetValue(name)));
            Console.WriteLine($"{kek.Id}\t{HsmKeyEncryptionKey.Algorithm}");
            return 0;
        });
        var kekCommand = new Command("kek", "The key store's key-encryption key in the HSM.");
        kekCommand.Subcommands.Add(create);
        return kekCommand;
    }

    private static string KeyId(string? value)
        => HsmToken.IsValidKeyId(value) ? value!
            : throw new CliUsageException("--name must be 1 to 64 characters from A-Z a-z 0-9 . _ : / -, starting with a letter or digit");

    private static byte[] ParseHex(string value, string option)
    {
        string hex = value.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? value[2..] : value;
        try
        {
            return Convert.FromHexString(hex);
        }
        catch (FormatException)
        {
            throw new CliUsageException($"{option} must be hexadecimal");
        }
    }
}
