using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Conclave.Crypto.Signing;

namespace Conclave.Hsm.Tests;

/// <summary>
/// <c>conclave hsm …</c> run as a separate process (a separate process is also a full restart of the PKCS#11
/// module, and the only way to give SoftHSM2 a different configuration, which it reads once per process).
/// </summary>
public sealed class CliTests
{
    private static (int ExitCode, string Stdout, string Stderr) Conclave(IEnumerable<string> args, IDictionary<string, string?>? environment = null)
    {
        string cli = Path.Combine(AppContext.BaseDirectory, "conclave.dll");
        Assert.True(File.Exists(cli), $"{cli} is missing: the test project references Conclave.Cli to get it");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(cli);
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        foreach ((string key, string? value) in environment ?? new Dictionary<string, string?>())
        {
            psi.Environment[key] = value;
        }

        using Process p = Process.Start(psi)!;
        Task<string> stdout = p.StandardOutput.ReadToEndAsync();
        Task<string> stderr = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(120_000), "conclave did not finish");
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    private static string[] Hsm(HsmOptions o) => ["--hsm-module", o.ModulePath, "--hsm-token", o.TokenLabel, "--hsm-pin-file", o.PinFile!];

    [Fact]
    public void CreateListSignDelete()
    {
        using SoftHsm.TemporaryToken temp = SoftHsm.CreateToken();
        string[] hsm = Hsm(temp.Options);

        var created = Conclave(["hsm", "keys", "create", "--scheme", "hsm-ecdsa-secp256k1", "--name", "cli-key", .. hsm]);
        Assert.True(created.ExitCode == 0, created.Stderr);
        string publicKey = JsonNode.Parse(created.Stdout)!["publicKey"]!.GetValue<string>();

        var listed = Conclave(["hsm", "keys", "list", .. hsm]);
        Assert.Equal(0, listed.ExitCode);
        Assert.Equal($"cli-key\thsm-ecdsa-secp256k1\t{publicKey}", listed.Stdout.Trim());

        byte[] digest = SHA256.HashData("cli"u8);
        var signed = Conclave(["hsm", "sign", "--name", "cli-key", "--input", Hex.Encode(digest), .. hsm]);
        Assert.True(signed.ExitCode == 0, signed.Stderr);
        JsonNode result = JsonNode.Parse(signed.Stdout)!;
        byte[] signature = Hex.Decode(result["signature"]!.GetValue<string>());
        Assert.True(SignatureSchemes.EcdsaSecp256k1.Verify(Hex.Decode(publicKey), digest, signature));
        Assert.InRange(result["recoveryId"]!.GetValue<int>(), 0, 3);

        // The PIN also comes from CONCLAVE_HSM_PIN; there is no option that takes it.
        string[] noPinFile = ["--hsm-module", temp.Options.ModulePath, "--hsm-token", temp.Label];
        var viaEnv = Conclave(["hsm", "keys", "list", .. noPinFile], new Dictionary<string, string?> { ["CONCLAVE_HSM_PIN"] = File.ReadAllText(temp.Options.PinFile!).Trim() });
        Assert.True(viaEnv.ExitCode == 0, viaEnv.Stderr);
        var pinOption = Conclave(["hsm", "keys", "list", "--hsm-pin", "1234", .. noPinFile]);
        Assert.NotEqual(0, pinOption.ExitCode);

        Assert.Equal(2, Conclave(["hsm", "keys", "delete", "--name", "cli-key", .. hsm]).ExitCode);
        Assert.Equal(0, Conclave(["hsm", "keys", "delete", "--name", "cli-key", "--yes", .. hsm]).ExitCode);
        Assert.Equal(string.Empty, Conclave(["hsm", "keys", "list", .. hsm]).Stdout.Trim());
    }

    [Fact]
    public void ErrorsAreOneLineWithoutThePin()
    {
        using SoftHsm.TemporaryToken temp = SoftHsm.CreateToken();
        const string WrongPin = "wrong-pin-31337";
        var wrong = Conclave(
            ["hsm", "keys", "list", "--hsm-module", temp.Options.ModulePath, "--hsm-token", temp.Label],
            new Dictionary<string, string?> { ["CONCLAVE_HSM_PIN"] = WrongPin });
        Assert.Equal(2, wrong.ExitCode);
        Assert.Equal($"conclave: error: the PIN was refused by token '{temp.Label}' in {temp.Options.ModulePath} (CKR_PIN_INCORRECT)", wrong.Stderr.Trim());
        Assert.DoesNotContain(WrongPin, wrong.Stdout + wrong.Stderr, StringComparison.Ordinal);

        var noToken = Conclave(["hsm", "keys", "list", "--hsm-module", temp.Options.ModulePath, "--hsm-token", "absent", "--hsm-pin-file", temp.Options.PinFile!]);
        Assert.Equal(3, noToken.ExitCode);
        Assert.Contains("no initialised token labelled 'absent'", noToken.Stderr, StringComparison.Ordinal);

        var noModule = Conclave(["hsm", "keys", "list", "--hsm-module", "/nonexistent/libpkcs11.so", "--hsm-token", "t", "--hsm-pin-file", temp.Options.PinFile!]);
        Assert.Equal(3, noModule.ExitCode);
        Assert.StartsWith("conclave: error: PKCS#11 module not found: /nonexistent/libpkcs11.so", noModule.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void UnsupportedMechanismIsReported()
    {
        // A SoftHSM2 configuration for the same tokens with EdDSA signing and AES-GCM disabled stands in for an
        // HSM without them. A leading "-" turns the list into a list of disabled mechanisms; SoftHSM 2.6.1 keeps
        // the "-" on the first name, so the list starts with an empty entry.
        string original = Environment.GetEnvironmentVariable("SOFTHSM2_CONF")!;
        HsmOptions o = SoftHsm.Options();
        string dir = Directory.CreateTempSubdirectory("conclave-hsm-test-").FullName;
        try
        {
            string conf = Path.Combine(dir, "softhsm2.conf");
            File.WriteAllText(conf, string.Join('\n', File.ReadAllLines(original).Where(l => !l.TrimStart().StartsWith("slots.mechanisms", StringComparison.Ordinal)))
                + "\nslots.mechanisms = -,CKM_EDDSA,CKM_AES_GCM\n");
            var env = new Dictionary<string, string?> { ["SOFTHSM2_CONF"] = conf };

            var ed = Conclave(["hsm", "keys", "create", "--scheme", "hsm-ed25519", "--name", SharedTokenFixture.NewKeyId("unsupported"), .. Hsm(o)], env);
            Assert.Equal(3, ed.ExitCode);
            Assert.Equal($"conclave: error: token '{o.TokenLabel}' in {o.ModulePath} does not support CKM_EDDSA (needed for hsm-ed25519 signing)", ed.Stderr.Trim());

            var kek = Conclave(["hsm", "kek", "create", "--name", SharedTokenFixture.NewKeyId("unsupported"), .. Hsm(o)], env);
            Assert.Equal(3, kek.ExitCode);
            Assert.Contains("does not support CKM_AES_GCM", kek.Stderr, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
