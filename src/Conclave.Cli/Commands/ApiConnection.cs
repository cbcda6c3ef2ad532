using System.CommandLine;
using System.Text.Json;
using Conclave.Client;
using Spectre.Console;

namespace Conclave.Cli.Commands;

/// <summary>
/// Options shared by the commands that talk to a server, and how they find it. The server: --server, else
/// $CONCLAVE_SERVER, else the one in --data DIR (the folder `conclave up` made), else the one the last `conclave up`
/// recorded (<see cref="UpRecord"/>), else http://127.0.0.1:8080. The token: $CONCLAVE_TOKEN or --token-file, else
/// $CONCLAVE_TOKEN_FILE, else DIR/server/data/admin-token for --data DIR, else ./.data/server/data/admin-token when it
/// exists, else the token file the last `conclave up` recorded. A principal's credential instead of the token:
/// --credential FILE, else $CONCLAVE_CREDENTIAL_FILE when neither --token-file nor --data is given; the requests are
/// then signed as that principal (RFC 9421, <see cref="AgentSigningHandler"/>) and carry no token. --json prints JSON
/// for scripts.
/// </summary>
internal sealed class ApiConnection
{
    private const string DefaultServer = "http://127.0.0.1:8080";

    /// <summary>The environment variable naming a credential file to sign with when no option names who the caller is.</summary>
    public const string CredentialVariable = "CONCLAVE_CREDENTIAL_FILE";

    public Option<string?> Server { get; } = new("--server")
    {
        Description = $"Server URL (default: $CONCLAVE_SERVER, the server of --data, the last 'conclave up', or {DefaultServer}).",
    };

    public Option<string?> TokenFile { get; } = new("--token-file")
    {
        Description = "File holding the bearer token (default: $CONCLAVE_TOKEN, $CONCLAVE_TOKEN_FILE, the token in --data, ./.data, or the last 'conclave up').",
    };

    public Option<string?> Credential { get; } = new("--credential")
    {
        Description = $"Act as a principal (an approver, an agent): its credential file, as 'conclave agents add --key-out' writes it, readable by its owner only; requests are signed with its key (RFC 9421) instead of sending a token (default: ${CredentialVariable} unless --token-file or --data is given).",
    };

    public Option<string?> Data { get; } = new("--data")
    {
        Description = "The data folder 'conclave up' made: its server and token are used.",
    };

    public Option<string?> Ca { get; } = new("--ca")
    {
        Description = "CA certificate (PEM) to trust for an https server (default: $CONCLAVE_CA, the development CA of --data or of the last 'conclave up --tls').",
    };

    public Option<bool> Json { get; } = new("--json") { Description = "Print JSON instead of tables (long values in full)." };

    /// <summary>Adds the options; <paramref name="withData"/> false for a command whose own --data means something else.</summary>
    public void AddTo(Command command, bool withData = true)
    {
        command.Options.Add(Server);
        command.Options.Add(TokenFile);
        command.Options.Add(Credential);
        if (withData)
        {
            command.Options.Add(Data);
        }

        command.Options.Add(Ca);
        command.Options.Add(Json);
    }

    public ConclaveClient Connect(ParseResult parse)
    {
        ArgumentNullException.ThrowIfNull(parse);
        string? data = parse.GetResult(Data) is null ? null : parse.GetValue(Data);
        UpRecord? record = null;
        string? dataServer = null;
        string? dataToken = null;
        string? dataCa = null;
        if (data is not null)
        {
            var layout = new Conclave.Server.Hosting.LocalClusterLayout(data);
            if (!File.Exists(layout.ServerConfigPath))
            {
                throw new CliUsageException($"--data {data}: no cluster made by 'conclave up' there ({layout.ServerConfigPath} not found)");
            }

            Conclave.Server.Config.ServerConfig config = Conclave.Server.Config.ServerConfig.Load(layout.ServerConfigPath);
            dataServer = (config.ApiTls is null ? "http://" : "https://") + config.Listen;
            dataCa = config.ApiTls is null ? null : System.IO.Path.Combine(layout.PkiDir, "ca.crt");
            dataToken = Path.Combine(config.Resolve(config.DataDir), "admin-token");
        }

        // Explicit options first, then the environment, then what lies around.
        string server = parse.GetValue(Server) ?? dataServer ?? Environment.GetEnvironmentVariable("CONCLAVE_SERVER") ?? (record ??= UpRecord.Read())?.Api ?? DefaultServer;
        if (!Uri.TryCreate(server.EndsWith('/') ? server : server + "/", UriKind.Absolute, out Uri? uri) || (uri.Scheme != "http" && uri.Scheme != "https"))
        {
            throw new CliUsageException("--server must be an http(s) URL");
        }

        System.Security.Cryptography.X509Certificates.X509Certificate2? root = null;
        if (uri.Scheme == "https")
        {
            string? ca = parse.GetValue(Ca) ?? dataCa ?? Environment.GetEnvironmentVariable("CONCLAVE_CA")
                ?? (parse.GetValue(Server) is null && Environment.GetEnvironmentVariable("CONCLAVE_SERVER") is null ? (record ??= UpRecord.Read())?.CaFile : null);
            if (ca is not null)
            {
                if (!File.Exists(ca))
                {
                    throw new CliUsageException($"--ca {ca}: no such file");
                }

                root = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPem(File.ReadAllText(ca));
            }
        }

        if (CredentialFile(parse, data) is { } credential)
        {
            (Conclave.Policy.HttpSignatures.HttpSigningKey key, string keyId, _) = PrincipalCredential.Load(credential.Path, credential.Source);
            try
            {
                return ConclaveClient.ForAgentOwningKey(uri, key, keyId, root);
            }
            catch
            {
                key.Dispose();
                throw;
            }
        }

        string? file = parse.GetValue(TokenFile) ?? dataToken;
        string? token = file is null ? Environment.GetEnvironmentVariable("CONCLAVE_TOKEN") : null;
        if (string.IsNullOrEmpty(token))
        {
            string local = Path.Combine(".data", "server", "data", "admin-token");
            file ??= Environment.GetEnvironmentVariable("CONCLAVE_TOKEN_FILE")
                ?? (File.Exists(local) ? local : null)
                ?? (record ??= UpRecord.Read())?.AdminTokenFile;
            if (file is null)
            {
                throw new CliUsageException($"no token: set CONCLAVE_TOKEN, pass --token-file FILE or --data DIR (the folder 'conclave up' made); no 'conclave up' is recorded in {UpRecord.Path}");
            }

            if (!File.Exists(file))
            {
                throw new CliUsageException($"no token: {file} not found; set CONCLAVE_TOKEN or pass --token-file or --data");
            }

            token = File.ReadAllText(file).Trim();
        }

        return root is null ? new ConclaveClient(uri, token!) : new ConclaveClient(uri, token!, root);
    }

    /// <summary>
    /// The credential file to sign with, and where it was named: --credential (never together with --token-file), else
    /// $CONCLAVE_CREDENTIAL_FILE unless --token-file or --data names the token; null for the token.
    /// </summary>
    private (string Path, string Source)? CredentialFile(ParseResult parse, string? data)
    {
        string? option = parse.GetResult(Credential) is null ? null : parse.GetValue(Credential);
        string? tokenFile = parse.GetResult(TokenFile) is null ? null : parse.GetValue(TokenFile);
        if (option is not null)
        {
            return tokenFile is not null
                ? throw new CliUsageException("--credential and --token-file both say who you are: pass one of them")
                : string.IsNullOrWhiteSpace(option) ? throw new CliUsageException("--credential needs a file") : (option, "--credential");
        }

        string? variable = Environment.GetEnvironmentVariable(CredentialVariable);
        return tokenFile is null && data is null && !string.IsNullOrEmpty(variable) ? (variable, "$" + CredentialVariable) : null;
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
