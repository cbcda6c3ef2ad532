using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Conclave.Server.Config;
using Conclave.Server.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace Conclave.Server.Tests;

/// <summary>
/// For the tests that run servers of their own configuration (PostgreSQL stores, replicas, short timeouts, restarts)
/// on node processes of their own: start and stop a server, call it, wait for a condition, PostgreSQL helpers.
/// </summary>
internal static class OwnServers
{
    public static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    /// <summary>
    /// Builds and starts a server on <paramref name="config"/> and waits until it is ready; <paramref name="beforeStart"/>
    /// runs between the two (an observer that must see what the server's start-up work does: run recovery, the eviction
    /// pass).
    /// </summary>
    public static async Task<(WebApplication App, HttpClient Http)> StartAsync(ServerConfig config, Action<WebApplication>? beforeStart = null)
    {
        WebApplication app = await ServerHost.BuildAsync(config);
        beforeStart?.Invoke(app);
        await app.StartAsync();
        string token = (await File.ReadAllTextAsync(app.Services.GetRequiredService<ServerPaths>().AdminTokenFile)).Trim();
        var http = new HttpClient { BaseAddress = new Uri("http://" + config.Listen), Timeout = TimeSpan.FromMinutes(3) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        await WaitForAsync(async () => (await http.GetAsync(new Uri("/readyz", UriKind.Relative))).IsSuccessStatusCode, "the server is ready");
        return (app, http);
    }

    public static async Task StopAsync(WebApplication app, HttpClient http)
    {
        http.Dispose();
        await app.StopAsync();
        await app.DisposeAsync();
    }

    /// <summary>
    /// Stops the server from inside one of its own requests (a crash test's fault injection): background work stops at
    /// once; Kestrel's graceful drain would wait for this very request until the host's shutdown timeout (25-30 s a
    /// case), so it is cut after a second.
    /// </summary>
    public static async Task StopDeadAsync(WebApplication app)
    {
        using var drain = new CancellationTokenSource(TimeSpan.FromSeconds(1));
        try
        {
            await app.StopAsync(drain.Token);
        }
        catch (OperationCanceledException)
        {
            // the drain was cut, as intended
        }
    }

    public static async Task<JsonNode> PostAsync(HttpClient http, string path, string json, HttpStatusCode expected = HttpStatusCode.OK)
    {
        using HttpResponseMessage r = await http.PostAsync(new Uri(path, UriKind.Relative), Json(json));
        string text = await r.Content.ReadAsStringAsync();
        Assert.True(r.StatusCode == expected, $"{path}: {(int)r.StatusCode} {text}");
        return JsonNode.Parse(text)!;
    }

    public static async Task<JsonNode> GetAsync(HttpClient http, string path)
    {
        using HttpResponseMessage r = await http.GetAsync(new Uri(path, UriKind.Relative));
        string text = await r.Content.ReadAsStringAsync();
        Assert.True(r.IsSuccessStatusCode, $"{path}: {(int)r.StatusCode} {text}");
        return JsonNode.Parse(text)!;
    }

    /// <summary>Polls a condition (an event the test cannot await directly) with a generous deadline.</summary>
    public static async Task WaitForAsync(Func<Task<bool>> condition, string what)
    {
        var sw = Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(90), "timed out waiting until " + what);
            await Task.Delay(100);
        }
    }

    public static string AdminConnectionString() => Environment.GetEnvironmentVariable("CONCLAVE_TEST_POSTGRES") is { Length: > 0 } cs
        ? cs
        : throw new InvalidOperationException("CONCLAVE_TEST_POSTGRES is not set: run ./test.sh, or eval \"$(bash scripts/test-services/postgres.sh)\" first");

    public static async Task ExecAsync(string connectionString, string sql)
    {
        await using var c = new NpgsqlConnection(connectionString);
        await c.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, c);
        await cmd.ExecuteNonQueryAsync();
    }

    /// <summary>
    /// The cleanup of a test that evicts <paramref name="node"/> on a PostgreSQL store of its own (database
    /// <paramref name="db"/>): unless the test's server re-admitted the node (the nodes were told of the eviction, and the
    /// tests after it expect every node trusted), a server on the same store re-admits it — after
    /// <paramref name="repairSql"/>, if given, undoes the test's fault in the store; then the database is dropped.
    /// </summary>
    public static async Task ReadmitAndDropAsync(ServerConfig config, uint node, bool readmitted, string admin, string db, string? repairSql = null)
    {
        try
        {
            if (!readmitted)
            {
                if (repairSql is not null)
                {
                    await ExecAsync(config.PostgresConnectionString!, repairSql);
                }

                (WebApplication again, HttpClient againHttp) = await StartAsync(config);
                try
                {
                    using var client = new Conclave.Client.ConclaveClient(againHttp.BaseAddress!, againHttp.DefaultRequestHeaders.Authorization!.Parameter!);
                    await client.ReadmitNodeAsync(node);
                }
                finally
                {
                    await StopAsync(again, againHttp);
                }
            }
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            await ExecAsync(admin, $"DROP DATABASE IF EXISTS {db} WITH (FORCE)");
        }
    }

    /// <summary>Runs the conclave CLI against <paramref name="server"/> with the token in CONCLAVE_TOKEN; exit code, stdout and stderr.</summary>
    public static (int Exit, string Out, string Err) CliWithToken(string token, string server, params string[] args)
    {
        var psi = new System.Diagnostics.ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(RepoPaths.CliDll);
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["CONCLAVE_TOKEN"] = token;
        psi.Environment["CONCLAVE_SERVER"] = server;
        using var p = System.Diagnostics.Process.Start(psi)!;
        Task<string> stdout = p.StandardOutput.ReadToEndAsync();
        Task<string> stderr = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(120_000), "the CLI did not exit");
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

}
