using System.Diagnostics;
using Conclave.Storage.Audit;
using Conclave.Testing;

namespace Conclave.Storage.Tests;

/// <summary>`conclave audit verify` and `conclave backup` as an operator runs them: one line, exit code, no stack trace.</summary>
public sealed class CliTests
{
    private static string CliPath()
    {
        // tests/Conclave.Storage.Tests/bin/<Configuration>/<tfm>/ → src/Conclave.Cli/bin/<Configuration>/<tfm>/conclave.dll
        var tfm = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        string configuration = tfm.Parent!.Name;
        string dll = Path.Combine(RepoPaths.Root, "src", "Conclave.Cli", "bin", configuration, tfm.Name, "conclave.dll");
        return File.Exists(dll) ? dll : throw new FileNotFoundException("conclave CLI not built", dll);
    }

    private static async Task<(int Code, string Out, string Err)> RunAsync(IDictionary<string, string>? env, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(CliPath());
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        foreach (var (k, v) in env ?? new Dictionary<string, string>())
        {
            psi.Environment[k] = v;
        }

        using var p = Process.Start(psi)!;
        Task<string> o = p.StandardOutput.ReadToEndAsync(), e = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        return (p.ExitCode, await o, await e);
    }

    [Fact]
    public async Task Audit_verify_prints_one_line_and_names_the_first_bad_seq()
    {
        await using TestLocation loc = await new SqliteHarness().NewLocationAsync();
        using var identity = Conclave.Crypto.Signing.SignatureSchemes.Ed25519.GenerateKey(random: TestSeed.For("key@42"));
        await using (IConclaveStore store = await loc.OpenAsync(new StoreOptions { CheckpointSigner = identity, CheckpointInterval = 4 }))
        {
            await Task.WhenAll(Enumerable.Range(0, 10).Select(i => store.Audit.AppendAsync(new AuditEntryInput("op", "sign", "k", null, "allow", "ok"))));
        }

        var ok = await RunAsync(null, "audit", "verify", "--data", loc.SqliteDirectory!);
        Assert.Equal(0, ok.Code);
        Assert.StartsWith("audit log ok: 10 entries", ok.Out, StringComparison.Ordinal);
        Assert.Contains("head signed", ok.Out, StringComparison.Ordinal);
        Assert.Single(ok.Out.Trim().Split('\n'));

        // Issue 14 item 6: the anchor, and verification against it.
        string anchorFile = Path.Combine(loc.SqliteDirectory!, "anchor.json");
        var anchor = await RunAsync(null, "audit", "anchor", "--data", loc.SqliteDirectory!, "--out", anchorFile);
        Assert.True(anchor.Code == 0, anchor.Err);
        Assert.Equal(10, AuditAnchor.Parse(await File.ReadAllTextAsync(anchorFile)).Seq);
        var anchored = await RunAsync(null, "audit", "verify", "--data", loc.SqliteDirectory!, "--anchor", anchorFile);
        Assert.True(anchored.Code == 0, anchored.Out + anchored.Err);
        Assert.Contains("contains anchor seq 10", anchored.Out, StringComparison.Ordinal);

        // --node-key (issue 20): the right key verifies; bad hex, a wrong length and another key are one line each.
        string keyHex = Convert.ToHexStringLower(identity.PublicKey.Span);
        var trusted = await RunAsync(null, "audit", "verify", "--data", loc.SqliteDirectory!, "--node-key", keyHex);
        Assert.True(trusted.Code == 0, trusted.Out + trusted.Err);
        foreach ((string given, string expected) in new[] { ("zz" + keyHex[2..], "--node-key must be hex"), (keyHex[..62], "--node-key must be 64 hex digits (a 32-byte Ed25519 public key); it has 62") })
        {
            var refused = await RunAsync(null, "audit", "verify", "--data", loc.SqliteDirectory!, "--node-key", given);
            Assert.Equal(2, refused.Code);
            Assert.Contains(expected, refused.Err, StringComparison.Ordinal);
            Assert.Single(refused.Err.Trim().Split('\n'));
            Assert.DoesNotContain(given, refused.Err, StringComparison.Ordinal);
        }

        using var stranger = Conclave.Crypto.Signing.SignatureSchemes.Ed25519.GenerateKey(random: TestSeed.For("stranger key"));
        var other = await RunAsync(null, "audit", "verify", "--data", loc.SqliteDirectory!, "--node-key", Convert.ToHexStringLower(stranger.PublicKey.Span));
        Assert.Equal(4, other.Code);
        Assert.Contains("FAILED at seq 4: bad checkpoint (checkpoint signed by a key other than the trusted node key)", other.Out, StringComparison.Ordinal);
        Assert.Single(other.Out.Trim().Split('\n'));

        // Deleting the last checkpoint (seq 8) is named.
        await loc.ExecAsync("DELETE FROM audit_checkpoints WHERE seq=8");
        var cp = await RunAsync(null, "audit", "verify", "--data", loc.SqliteDirectory!);
        Assert.Equal(4, cp.Code);
        Assert.Contains("FAILED at seq 8: missing checkpoint", cp.Out, StringComparison.Ordinal);

        await loc.ExecAsync("UPDATE audit_entries SET decision='deny' WHERE seq=3");
        var bad = await RunAsync(null, "audit", "verify", "--data", loc.SqliteDirectory!);
        Assert.Equal(4, bad.Code);
        Assert.Contains("FAILED at seq 3: changed", bad.Out, StringComparison.Ordinal);

        var missing = await RunAsync(null, "audit", "verify", "--data", Path.Combine(loc.SqliteDirectory!, "nope"));
        Assert.Equal(2, missing.Code);
        Assert.StartsWith("conclave: error:", missing.Err, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", missing.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Backup_export_then_import_with_wrong_passphrase_fails_cleanly()
    {
        await using TestLocation source = await new SqliteHarness().NewLocationAsync();
        await using TestLocation target = await new SqliteHarness().NewLocationAsync();
        await using (IConclaveStore store = await source.OpenAsync())
        {
            await store.Audit.AppendAsync(new AuditEntryInput("op", "create-key", "k", null, "allow", "ok"));
        }

        string file = Path.Combine(source.SqliteDirectory!, "store.bak");
        var env = new Dictionary<string, string> { ["CONCLAVE_BACKUP_PASSPHRASE"] = "backup secret" };
        var export = await RunAsync(env, "backup", "export", "--data", source.SqliteDirectory!, "--out", file);
        Assert.True(export.Code == 0, export.Err);
        var again = await RunAsync(env, "backup", "export", "--data", source.SqliteDirectory!, "--out", file);
        Assert.Equal(2, again.Code); // never overwrites

        var wrong = await RunAsync(new Dictionary<string, string> { ["CONCLAVE_BACKUP_PASSPHRASE"] = "guess" }, "backup", "import", "--data", target.SqliteDirectory!, "--in", file);
        Assert.Equal(2, wrong.Code);
        Assert.Contains("wrong passphrase", wrong.Err, StringComparison.Ordinal);
        Assert.DoesNotContain("guess", wrong.Err, StringComparison.Ordinal);

        var import = await RunAsync(env, "backup", "import", "--data", target.SqliteDirectory!, "--in", file);
        Assert.True(import.Code == 0, import.Err);
        var unsigned = await RunAsync(null, "audit", "verify", "--data", target.SqliteDirectory!);
        Assert.Equal(4, unsigned.Code); // written without a checkpoint signer: accepted only when asked to
        Assert.Contains("FAILED at seq 1: unsigned", unsigned.Out, StringComparison.Ordinal);
        var verify = await RunAsync(null, "audit", "verify", "--data", target.SqliteDirectory!, "--allow-unsigned");
        Assert.Equal(0, verify.Code);
        Assert.StartsWith("audit log ok: 1 entries", verify.Out, StringComparison.Ordinal);
    }
}
