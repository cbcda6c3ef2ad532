using System.CommandLine;
using System.Text.Json;
using Conclave.Client;
using Spectre.Console;

namespace Conclave.Cli.Commands;

/// <summary>
/// Options shared by the commands that talk to a server: --server URL (default $CONCLAVE_SERVER or
/// http://127.0.0.1:8080), the token from $CONCLAVE_TOKEN or --token-file (default $CONCLAVE_TOKEN_FILE or
/// .data/server/data/admin-token, where `conclave up` writes it), and --json for scripts.
/// </summary>
internal sealed class ApiConnection
{
    public Option<string> Server { get; } = new("--server")
    {
        Description = "Server URL (default: $CONCLAVE_SERVER or http://127.0.0.1:8080).",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("CONCLAVE_SERVER") ?? "http://127.0.0.1:8080",
    };

    public Option<string?> TokenFile { get; } = new("--token-file")
    {
        Description = "File holding the bearer token (default: $CONCLAVE_TOKEN, else $CONCLAVE_TOKEN_FILE, else .data/server/data/admin-token).",
    };

    public Option<bool> Json { get; } = new("--json") { Description = "Print JSON instead of tables." };

    public void AddTo(Command command)
    {
        command.Options.Add(Server);
        command.Options.Add(TokenFile);
        command.Options.Add(Json);
    }

    public ConclaveClient Connect(ParseResult parse)
    {
        string server = parse.GetValue(Server)!;
        if (!Uri.TryCreate(server.EndsWith('/') ? server : server + "/", UriKind.Absolute, out Uri? uri) || (uri.Scheme != "http" && uri.Scheme != "https"))
        {
            throw new CliUsageException("--server must be an http(s) URL");
        }

        string? token = Environment.GetEnvironmentVariable("CONCLAVE_TOKEN");
        string? file = parse.GetValue(TokenFile);
        if (file is not null || string.IsNullOrEmpty(token))
        {
            file ??= Environment.GetEnvironmentVariable("CONCLAVE_TOKEN_FILE") ?? Path.Combine(".data", "server", "data", "admin-token");
            if (!File.Exists(file))
            {
                throw new CliUsageException($"no token: set CONCLAVE_TOKEN or pass --token-file (not found: {file})");
            }

            token = File.ReadAllText(file).Trim();
        }

        return new ConclaveClient(uri, token!);
    }

    public static void PrintJson<T>(T value) =>
        Console.WriteLine(JsonSerializer.Serialize(value, CliJson.Options));

    public static Table NewTable(params string[] columns)
    {
        var t = new Table().Border(TableBorder.Rounded);
        foreach (string c in columns)
        {
            t.AddColumn(c);
        }

        return t;
    }
}
