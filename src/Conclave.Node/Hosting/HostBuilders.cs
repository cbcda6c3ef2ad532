using Microsoft.AspNetCore.Builder;

namespace Conclave.Node.Hosting;

/// <summary>The ASP.NET Core builder every Conclave process (signer node, server) starts from.</summary>
public static class HostBuilders
{
    /// <summary>
    /// <see cref="WebApplication.CreateSlimBuilder(WebApplicationOptions)"/> without configuration reload. The default
    /// reloads appsettings*.json on change through a file watcher on the content root (the working directory) and every
    /// folder under it, recursively; with the data folder there (`conclave up` keeps it in ./.data) every SQLite write of
    /// any process of the cluster woke every process's watcher thread, about a tenth of a core while signing on two cores
    /// (perf, 2026-12-01). Conclave reads its own configuration files once at start; nothing needs the reload.
    /// </summary>
    public static WebApplicationBuilder CreateSlim() =>
        WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = ["--hostBuilder:reloadConfigOnChange=false"] });
}
