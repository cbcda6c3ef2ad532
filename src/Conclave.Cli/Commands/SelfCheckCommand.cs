using System.CommandLine;
using System.Diagnostics;
using System.Security.Cryptography;
using Conclave.Crypto.Interop;
using Conclave.Crypto.Signing;

namespace Conclave.Cli.Commands;

/// <summary><c>conclave selfcheck</c>: loads the native libraries, then signs and verifies once per scheme.</summary>
internal static class SelfCheckCommand
{
    public static Command Create()
    {
        var command = new Command("selfcheck", "Print the native library versions, then sign and verify once per scheme.");
        command.SetAction(_ => Run());
        return command;
    }

    private static int Run()
    {
        foreach (string line in NativeLibraries.Describe())
        {
            Console.WriteLine(line);
        }

        byte[] message = "conclave self-check"u8.ToArray();
        byte[] digest = SHA256.HashData(message);
        int failures = 0;
        foreach (SoftwareSignatureScheme scheme in SignatureSchemes.SingleKey)
        {
            var sw = Stopwatch.StartNew();
            using SoftwareSigningKey key = scheme.GenerateKey();
            byte[] input = scheme.InputKind == SignInputKind.Digest32 ? digest : message;
            SignatureResult sig = key.Sign(input);
            bool ok = scheme.Verify(key.PublicKey.Span, input, sig.Signature);
            input[0] ^= 1;
            bool rejectsTampered = !scheme.Verify(key.PublicKey.Span, input, sig.Signature);
            input[0] ^= 1;
            sw.Stop();
            bool pass = ok && rejectsTampered;
            failures += pass ? 0 : 1;
            Console.WriteLine($"{scheme.Name,-18} {(pass ? "ok" : "FAILED")}  public key {Convert.ToHexStringLower(key.PublicKey.Span)}  ({sw.Elapsed.TotalMilliseconds:F2} ms)");
        }

        return failures == 0 ? 0 : 1;
    }
}
