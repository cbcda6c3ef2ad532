using System.Diagnostics;
using System.Net.Http.Headers;
using System.Net.Sockets;
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
    private readonly List<Process> _nodes = [];

    public string DataDir { get; } = Path.Combine(Path.GetTempPath(), "conclave-api-" + Guid.NewGuid().ToString("N")[..12]);

    public WebApplication App { get; private set; } = null!;

    public ServerConfig Config { get; private set; } = null!;

    public string BaseUrl { get; private set; } = "";

    public string Token { get; private set; } = "";

    public HttpClient Http { get; private set; } = null!;

    public HttpClient Anonymous { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var layout = new LocalClusterLayout(DataDir);
        layout.EnsureCreated(3, 2, FreePortRange(1), FreePortRange(3));
        for (uint id = 1; id <= 3; id++)
        {
            var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (string a in new[] { RepoPaths.CliDll, "node", "run", "--config", layout.NodeConfigPath(id), "--parent-pid", Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture) })
            {
                psi.ArgumentList.Add(a);
            }

            Process p = Process.Start(psi)!;
            p.OutputDataReceived += (_, _) => { };
            p.ErrorDataReceived += (_, _) => { };
            p.BeginOutputReadLine();
            p.BeginErrorReadLine();
            _nodes.Add(p);
        }

        Config = ServerConfig.Load(layout.ServerConfigPath);
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
        foreach (Process p in _nodes)
        {
            if (!p.HasExited)
            {
                p.Kill(entireProcessTree: true);
                p.WaitForExit();
            }

            p.Dispose();
        }

        try
        {
            Directory.Delete(DataDir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private static int FreePortRange(int count)
    {
        for (int attempt = 0; attempt < 50; attempt++)
        {
            int start = Random.Shared.Next(20000, 60000);
            bool free = true;
            for (int i = 0; i < count && free; i++)
            {
                try
                {
                    using var l = new TcpListener(System.Net.IPAddress.Loopback, start + i);
                    l.Start();
                }
                catch (SocketException)
                {
                    free = false;
                }
            }

            if (free)
            {
                return start;
            }
        }

        throw new InvalidOperationException("no free port range");
    }
}

/// <summary>One cluster shared by every API test class.</summary>
[CollectionDefinition("api")]
public sealed class ApiCollection : ICollectionFixture<ApiCluster>;
