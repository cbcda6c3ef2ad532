using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Conclave.Server.Config;
using Conclave.Server.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace Conclave.Server.Tests;

/// <summary>
/// A server of its own on a fresh `conclave up` layout whose signer nodes are never started: enough for everything
/// that does not reach the nodes (input checks, single-key schemes, JSON-RPC), and a way to show that a request is
/// refused before any node would be asked (a FROST key creation that got that far fails with a 5xx).
/// </summary>
public sealed class NodelessServer : IAsyncLifetime
{
    private string _dir = "";

    public WebApplication App { get; private set; } = null!;

    public ServerConfig Config { get; private set; } = null!;

    public string BaseUrl { get; private set; } = "";

    public string Token { get; private set; } = "";

    public HttpClient Http { get; private set; } = null!;

    public static async Task<(WebApplication App, ServerConfig Config, string Dir, string Token)> StartAsync(Action<ServerConfig>? configure = null)
    {
        string dir = Path.Combine(Path.GetTempPath(), "conclave-nodeless-" + Guid.NewGuid().ToString("N")[..10]);
        var layout = new LocalClusterLayout(dir);
        layout.EnsureCreated(3, 2, LoopbackPorts.Take(), LoopbackPorts.Take(3));
        ServerConfig config = ServerConfig.Load(layout.ServerConfigPath);
        config.PolicyChanges = TestPolicyChanges();
        configure?.Invoke(config);
        WebApplication app = await ServerHost.BuildAsync(config);
        await app.StartAsync();
        string token = (await File.ReadAllTextAsync(app.Services.GetRequiredService<ServerPaths>().AdminTokenFile)).Trim();
        return (app, config, dir, token);
    }

    /// <summary>The policy-change approvers of test servers (docs/POLICY.md "Changing policies"): three, a quorum of two, a one-hour time lock.</summary>
    public static Conclave.Server.Policy.PolicyChangeSettings TestPolicyChanges() =>
        new() { Approvers = ["policy-approver-1", "policy-approver-2", "policy-approver-3"], LooseningQuorum = 2, TimeLockSeconds = 3600, TtlSeconds = 3600 };

    /// <summary>Runs SQL on a server's SQLite database from a connection of its own (a test breaking or mending the store under the server).</summary>
    internal static async Task SqlAsync(string db, string sql)
    {
        await using var c = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={db};Pooling=False");
        await c.OpenAsync();
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "PRAGMA busy_timeout = 10000; " + sql;
        await cmd.ExecuteNonQueryAsync();
    }

    public static async Task StopAsync(WebApplication app, string dir)
    {
        await app.StopAsync();
        await app.DisposeAsync();
        try
        {
            Directory.Delete(dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    public async Task InitializeAsync()
    {
        (App, Config, _dir, Token) = await StartAsync();
        BaseUrl = "http://" + Config.Listen;
        Http = new HttpClient { BaseAddress = new Uri(BaseUrl) };
        Http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Token);
    }

    public async Task DisposeAsync()
    {
        Http.Dispose();
        await StopAsync(App, _dir);
    }

    public async Task<(HttpStatusCode Status, JsonNode? Body, string Text, HttpResponseMessage Response)> SendAsync(HttpMethod method, string path, string? json = null, HttpClient? client = null)
    {
        using var req = new HttpRequestMessage(method, path) { Content = json is null ? null : new StringContent(json, Encoding.UTF8, "application/json") };
        HttpResponseMessage r = await (client ?? Http).SendAsync(req);
        string text = await r.Content.ReadAsStringAsync();
        JsonNode? body = null;
        if (text.Length > 0)
        {
            try
            {
                body = JsonNode.Parse(text);
            }
            catch (System.Text.Json.JsonException)
            {
            }
        }

        return (r.StatusCode, body, text, r);
    }

}
