using System.Net.Http.Headers;
using Conclave.Server.Config;
using Conclave.Server.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace Conclave.Server.Tests.Venue;

/// <summary>
/// A real cluster on a real chain for one test class: a fresh anvil, three signer-node processes (2-of-3, the files
/// `conclave up` makes) and the server in this process with server.json <c>upstreams</c> {"31337": anvil} and
/// <c>chainId</c> 31337. <see cref="RestartServerAsync"/> stops and rebuilds the server on the same store (the nodes stay up).
/// </summary>
public sealed class VenueCluster : IAsyncLifetime
{
    private readonly Func<AnvilChain, ServerConfig, Task>? _beforeServerStart;
    private LocalClusterProcesses _nodes = null!;

    public VenueCluster()
    {
    }

    /// <param name="beforeServerStart">Runs once the chain is up and server.json is loaded, before the server starts: a
    /// fixture deploys its contracts here and names its venue profiles (the server reads profiles at start).</param>
    internal VenueCluster(Func<AnvilChain, ServerConfig, Task> beforeServerStart) => _beforeServerStart = beforeServerStart;

    public AnvilChain Chain { get; private set; } = null!;

    public ServerConfig Config { get; private set; } = null!;

    public WebApplication App { get; private set; } = null!;

    public HttpClient Http { get; private set; } = null!;

    /// <summary>The three signer-node processes (a test kills one with <see cref="LocalClusterProcesses.KillNode"/>).</summary>
    public LocalClusterProcesses Nodes => _nodes;

    public async Task InitializeAsync()
    {
        Chain = new AnvilChain();
        _nodes = new LocalClusterProcesses(RepoPaths.CliDll, 3, 2);
        Config = ServerConfig.Load(_nodes.Layout.ServerConfigPath);
        Config.ChainId = AnvilChain.ChainId;
        Config.Upstreams = new() { ["31337"] = Chain.Url.ToString() };
        Config.PolicyChanges = NodelessServer.TestPolicyChanges(); // policy changes are held for these approvers
        if (_beforeServerStart is not null)
        {
            await _beforeServerStart(Chain, Config);
        }

        Config.Validate();
        (App, Http) = await OwnServers.StartAsync(Config);
    }

    public async Task RestartServerAsync()
    {
        await OwnServers.StopAsync(App, Http);
        (App, Http) = await OwnServers.StartAsync(Config);
    }

    public async Task DisposeAsync()
    {
        await OwnServers.StopAsync(App, Http);
        _nodes.Dispose();
        Chain.Dispose();
    }
}
