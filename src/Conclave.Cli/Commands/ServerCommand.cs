using System.CommandLine;
using Conclave.Server.Config;
using Conclave.Server.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Conclave.Cli.Commands;

/// <summary><c>conclave server --config FILE</c>: the API server and coordinator.</summary>
internal static class ServerCommand
{
    public static Command Create()
    {
        var config = new Option<string>("--config") { Description = "The server's configuration file (JSON).", Required = true };
        var verbose = new Option<bool>("--verbose") { Description = "Log informational messages." };
        var command = new Command("server", "Run the API server and coordinator of the signer nodes.");
        command.Options.Add(config);
        command.Options.Add(verbose);
        command.SetAction(async (parse, ct) =>
        {
            ServerConfig cfg = ServerConfig.Load(parse.GetValue(config)!);
            WebApplication app = await ServerHost.BuildAsync(cfg, parse.GetValue(verbose) ? LogLevel.Information : LogLevel.Warning, ct).ConfigureAwait(false);
            await UpCommand.StartServerAsync(app, cfg, ct).ConfigureAwait(false);
            ServerPaths paths = (ServerPaths)app.Services.GetService(typeof(ServerPaths))!;
            Console.WriteLine($"API: http://{cfg.Listen}");
            Console.WriteLine($"admin token file: {paths.AdminTokenFile}");
            Console.WriteLine($"metrics token file: {paths.MetricsTokenFile}");
            await app.WaitForShutdownAsync(ct).ConfigureAwait(false);
            return 0;
        });
        return command;
    }
}
