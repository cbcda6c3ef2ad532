using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Conclave.Cli.Commands;
using Conclave.Server.Config;
using Conclave.Server.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace Conclave.Cli.Tests;

/// <summary>
/// Issue 20 as a new user meets it on the command line: `up` and its ports, finding the server and token from any
/// folder, audit tail, backup passphrases, help and error wording, long values. A server of its own (no signer nodes
/// started: single keys and the audit log need none).
/// </summary>
[Collection("Console")]
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class FirstHourTests : IAsyncLifetime
{
    private string _dir = "";
    private WebApplication _app = null!;
    private string _stateDir = "";
    private string? _oldState;
    private string? _oldToken;
    private string? _oldServer;

    public async Task InitializeAsync()
    {
        _dir = Path.Combine(Path.GetTempPath(), "conclave-cli-" + Guid.NewGuid().ToString("N")[..10]);
        var layout = new LocalClusterLayout(_dir);
        layout.EnsureCreated(3, 2, LoopbackPorts.Take(), LoopbackPorts.Take(3));
        _app = await ServerHost.BuildAsync(ServerConfig.Load(layout.ServerConfigPath));
        await _app.StartAsync();
        _stateDir = Path.Combine(_dir, "state");
        _oldState = Environment.GetEnvironmentVariable(UpRecord.StateDirVariable);
        _oldToken = Environment.GetEnvironmentVariable("CONCLAVE_TOKEN");
        _oldServer = Environment.GetEnvironmentVariable("CONCLAVE_SERVER");
        Environment.SetEnvironmentVariable(UpRecord.StateDirVariable, _stateDir);
        Environment.SetEnvironmentVariable("CONCLAVE_TOKEN", null);
        Environment.SetEnvironmentVariable("CONCLAVE_SERVER", null);
    }

    public async Task DisposeAsync()
    {
        Environment.SetEnvironmentVariable(UpRecord.StateDirVariable, _oldState);
        Environment.SetEnvironmentVariable("CONCLAVE_TOKEN", _oldToken);
        Environment.SetEnvironmentVariable("CONCLAVE_SERVER", _oldServer);
        await _app.StopAsync();
        await _app.DisposeAsync();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }


    private static void AssertOneLineError(CliRunner.Result r, params string[] fragments)
    {
        Assert.True(r.ExitCode == 2, $"exit {r.ExitCode}: {r.Stderr}");
        string[] lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, r.Stderr);
        Assert.StartsWith("conclave: error: ", lines[0], StringComparison.Ordinal);
        foreach (string f in fragments)
        {
            Assert.Contains(f, lines[0], StringComparison.Ordinal);
        }

        Assert.DoesNotContain("System.", r.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", r.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Up_BusyPort_IsOneLineNamingIt_Exit2()
    {
        string data = Path.Combine(_dir, "up-busy");
        using var holder = new TcpListener(IPAddress.Loopback, 0);
        holder.Start();
        int port = ((IPEndPoint)holder.LocalEndpoint).Port;
        CliRunner.Result r = await CliRunner.RunAsync(null, "up", "--data", data, "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--node-port", LoopbackPorts.Take().ToString(System.Globalization.CultureInfo.InvariantCulture));
        AssertOneLineError(r, $"port {port}", "already in use");
    }

    /// <summary>An existing folder: an explicit --port is the port used (here busy, so the error names it), not server.json's.</summary>
    [Fact]
    public async Task Up_PortFlagOnAnExistingFolder_IsHonoured_NodePortIsRefusedWithAReason()
    {
        string data = Path.Combine(_dir, "up-existing");
        int first = LoopbackPorts.Take();
        int nodePort = LoopbackPorts.Take();
        new LocalClusterLayout(data).EnsureCreated(3, 2, first, nodePort);
        using var a = new TcpListener(IPAddress.Loopback, first);
        a.Start();
        using var b = new TcpListener(IPAddress.Loopback, 0);
        b.Start();
        int other = ((IPEndPoint)b.LocalEndpoint).Port;
        CliRunner.Result r = await CliRunner.RunAsync(null, "up", "--data", data, "--port", other.ToString(System.Globalization.CultureInfo.InvariantCulture));
        AssertOneLineError(r, $"port {other}");
        Assert.Contains($"serving the API on port {other}", r.Stdout, StringComparison.Ordinal);

        CliRunner.Result n = await CliRunner.RunAsync(null, "up", "--data", data, "--node-port", (nodePort + 50).ToString(System.Globalization.CultureInfo.InvariantCulture));
        AssertOneLineError(n, "--node-port", "cluster.json");
    }

    [Fact]
    public async Task ApiCommands_FindServerAndToken_FromData_AndFromTheUpRecord()
    {
        // No token anywhere: the error says where to look, in one line.
        CliRunner.Result none = await CliRunner.RunAsync(null, "keys", "list", "--json");
        AssertOneLineError(none, "no token", "--data");

        CliRunner.Result created = await CliRunner.RunAsync(null, "keys", "create", "from-data", "--scheme", "ed25519", "--data", _dir, "--json");
        Assert.True(created.ExitCode == 0, created.Stderr);
        CliRunner.Result list = await CliRunner.RunAsync(null, "keys", "list", "--data", _dir, "--json");
        Assert.True(list.ExitCode == 0, list.Stderr);
        Assert.Contains(JsonNode.Parse(list.Stdout)!.AsArray(), k => k!["name"]!.GetValue<string>() == "from-data");

        // What `conclave up` records is enough on its own.
        ServerPaths paths = _app.Services.GetRequiredService<ServerPaths>();
        ServerConfig config = _app.Services.GetRequiredService<ServerConfig>();
        UpRecord.Write(new UpRecord("http://" + config.Listen, paths.AdminTokenFile, _dir));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(UpRecord.Path));
        CliRunner.Result recorded = await CliRunner.RunAsync(null, "keys", "show", "from-data", "--json");
        Assert.True(recorded.ExitCode == 0, recorded.Stderr);
        Assert.Equal("from-data", JsonNode.Parse(recorded.Stdout)!["name"]!.GetValue<string>());
    }

    [Fact]
    public async Task AuditTail_ShowsTheNewestEntries()
    {
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(0, (await CliRunner.RunAsync(null, "keys", "list", "--data", _dir, "--json")).ExitCode);
        }

        CliRunner.Result tail = await CliRunner.RunAsync(null, "audit", "tail", "--limit", "2", "--data", _dir, "--json");
        Assert.True(tail.ExitCode == 0, tail.Stderr);
        JsonArray entries = JsonNode.Parse(tail.Stdout)!["entries"]!.AsArray();
        Assert.Equal(2, entries.Count);
        long headSeq = (await _app.Services.GetRequiredService<Conclave.Storage.IConclaveStore>().Audit.GetHeadAsync()).Seq;
        Assert.True(headSeq > 6, $"head {headSeq}");

        // The newest: the last one shown is at most the outcome entry of this very call behind the head.
        Assert.True(entries[1]!["seq"]!.GetValue<long>() >= headSeq - 2, $"{entries[1]!["seq"]} vs head {headSeq}");
        Assert.Equal(entries[0]!["seq"]!.GetValue<long>() + 1, entries[1]!["seq"]!.GetValue<long>());

        CliRunner.Result oldest = await CliRunner.RunAsync(null, "audit", "tail", "--after", "0", "--limit", "2", "--data", _dir, "--json");
        Assert.Equal(1, JsonNode.Parse(oldest.Stdout)!["entries"]![0]!["seq"]!.GetValue<long>());
    }

    [Fact]
    public async Task KeyOutput_ShortensLongValues_JsonPrintsThemWhole()
    {
        CliRunner.Result created = await CliRunner.RunAsync(null, "keys", "create", "pq-key", "--scheme", "ml-dsa-65", "--data", _dir, "--json");
        Assert.True(created.ExitCode == 0, created.Stderr);
        string publicKey = JsonNode.Parse(created.Stdout)!["publicKey"]!.GetValue<string>();
        Assert.Equal(1952 * 2, publicKey.Length);

        CliRunner.Result shown = await CliRunner.RunAsync(null, "keys", "show", "pq-key", "--data", _dir);
        Assert.True(shown.ExitCode == 0, shown.Stderr);
        Assert.Contains("(1952 bytes; --json prints it whole)", shown.Stdout, StringComparison.Ordinal);
        Assert.All(shown.Stdout.Split('\n'), l => Assert.True(l.Length < 160, l));
        Assert.DoesNotContain(publicKey, shown.Stdout, StringComparison.Ordinal);

        // A short value (an Ed25519 key, a 64-byte signature) is shown whole, on one line of its own.
        CliRunner.Result ed = await CliRunner.RunAsync(null, "keys", "sign", "from-sign", "--message", "00", "--data", _dir);
        Assert.Equal(2, ed.ExitCode);
        Assert.Equal(0, (await CliRunner.RunAsync(null, "keys", "create", "from-sign", "--scheme", "ed25519", "--data", _dir, "--json")).ExitCode);
        CliRunner.Result signed = await CliRunner.RunAsync(null, "keys", "sign", "from-sign", "--message", "00", "--data", _dir);
        Assert.True(signed.ExitCode == 0, signed.Stderr);
        string sigLine = signed.Stdout.Split('\n').Single(l => l.StartsWith("signature", StringComparison.Ordinal));
        Assert.Matches("^signature +[0-9a-f]{128}$", sigLine);
    }

    [Fact]
    public async Task SchemeHelp_ListsEveryServedScheme()
    {
        CliRunner.Result help = await CliRunner.RunAsync(null, "keys", "create", "--help");
        string text = string.Join(" ", help.Stdout.Split((char[])['\n', ' '], StringSplitOptions.RemoveEmptyEntries));
        foreach (string scheme in Conclave.Server.Api.KeyService.Schemes)
        {
            Assert.Contains(scheme, text, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("--threshold", "99999999999")]
    [InlineData("--threshold", "2.5")]
    [InlineData("--participants", "SECRETLIKE")]
    public async Task NumberOptions_OutOfRangeOrMalformed_NameTheOption_WithoutTypeNames(string option, string value)
    {
        CliRunner.Result r = await CliRunner.RunAsync(null, "keys", "create", "k", "--scheme", "frost-ed25519", option, value);
        AssertOneLineError(r, $"{option} takes a whole number");
        Assert.DoesNotContain(value, r.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("Nullable", r.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task BackupPassphrase_FileMustBeOwnerOnly_AndStrong()
    {
        string file = Path.Combine(_dir, "passphrase");
        string store = Path.Combine(_dir, "server", "data");
        await File.WriteAllTextAsync(file, "correct horse battery staple 7");
        File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead);
        CliRunner.Result open = await CliRunner.RunAsync(null, "backup", "export", "--data", store, "--out", Path.Combine(_dir, "b1"), "--passphrase-file", file);
        AssertOneLineError(open, "accessible by other users", "chmod 600");
        Assert.DoesNotContain("horse", open.Stderr, StringComparison.Ordinal);

        await File.WriteAllTextAsync(file, "abcde");
        File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        CliRunner.Result weak = await CliRunner.RunAsync(null, "backup", "export", "--data", store, "--out", Path.Combine(_dir, "b2"), "--passphrase-file", file);
        AssertOneLineError(weak, "too weak", "12 characters");
        Assert.DoesNotContain("abcde", weak.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(_dir, "b2")));
    }

    /// <summary>`audit verify --data` with the folder `conclave up` made finds the server store in it, and warns about a log without checkpoints.</summary>
    [Fact]
    public async Task AuditVerify_FindsTheServerStoreInTheUpFolder_AndWarnsWithoutACheckpoint()
    {
        Assert.Equal(0, (await CliRunner.RunAsync(null, "keys", "list", "--data", _dir, "--json")).ExitCode);
        CliRunner.Result r = await CliRunner.RunAsync(null, "audit", "verify", "--data", _dir);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("audit log ok", r.Stdout, StringComparison.Ordinal);
        Assert.Contains(Path.Combine(_dir, "server", "data"), r.Stderr, StringComparison.Ordinal);
        Assert.Contains("no signed checkpoint yet", r.Stderr, StringComparison.Ordinal);

        CliRunner.Result nothing = await CliRunner.RunAsync(null, "audit", "verify", "--data", Path.Combine(_dir, "pki"));
        AssertOneLineError(nothing, "no store in");
    }

    [Fact]
    public void Launcher_IsTheRepositoryScript()
    {
        string launcher = UpCommand.Launcher();
        Assert.Equal(Path.Combine(RepoPaths.Root, "conclave"), launcher);
        Assert.True((File.GetUnixFileMode(launcher) & UnixFileMode.UserExecute) != 0);
    }
}
