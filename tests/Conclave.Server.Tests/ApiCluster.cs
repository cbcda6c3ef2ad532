using System.Diagnostics;
using System.Net.Http.Headers;
using Conclave.Server.Config;
using Conclave.Server.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace Conclave.Server.Tests;

/// <summary>
/// A real cluster for the API tests: the files `conclave up` makes, three signer-node processes (2-of-3) started from
/// conclave.dll on free loopback ports, and the server (ServerHost, the same code `conclave up` runs) in this process.
/// </summary>
public sealed class ApiCluster : IAsyncLifetime
{
    private LocalClusterProcesses _nodes = null!;

    public string DataDir => _nodes.DataDir;

    /// <summary>The cluster manifest (cluster.json), whose node identity keys sign rotation transcripts.</summary>
    public string ManifestPath => _nodes.Layout.ManifestPath;

    public WebApplication App { get; private set; } = null!;

    public ServerConfig Config { get; private set; } = null!;

    public string BaseUrl { get; private set; } = "";

    public string Token { get; private set; } = "";

    public HttpClient Http { get; private set; } = null!;

    public HttpClient Anonymous { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        _nodes = new LocalClusterProcesses(RepoPaths.CliDll, 3, 2);
        Config = ServerConfig.Load(_nodes.Layout.ServerConfigPath);
        Config.MaxRequestBodyBytes = 64 * 1024;
        App = await ServerHost.BuildAsync(Config);
        await App.StartAsync();
        BaseUrl = "http://" + Config.Listen;
        Token = (await File.ReadAllTextAsync(App.Services.GetRequiredService<ServerPaths>().AdminTokenFile)).Trim();
        Http = new HttpClient { BaseAddress = new Uri(BaseUrl) };
        Http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Token);
        Anonymous = new HttpClient { BaseAddress = new Uri(BaseUrl) };
        var sw = Stopwatch.StartNew();
        while (true)
        {
            HttpResponseMessage r = await Anonymous.GetAsync("/readyz");
            if (r.IsSuccessStatusCode)
            {
                break;
            }

            if (sw.Elapsed > TimeSpan.FromSeconds(60))
            {
                throw new TimeoutException("the cluster did not become ready");
            }

            await Task.Delay(200);
        }
    }

    public async Task DisposeAsync()
    {
        Http.Dispose();
        Anonymous.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
        _nodes.Dispose();
    }
}

/// <summary>One cluster shared by every API test class.</summary>
[CollectionDefinition("api")]
public sealed class ApiCollection : ICollectionFixture<ApiCluster>;
