using System.Net;
using Conclave.Node.Config;
using Conclave.Server.Config;

namespace Conclave.Server.Hosting;

/// <summary>
/// Where the API may listen (issue 14 item 12): plain HTTP only on a loopback address, unless server.json serves HTTPS
/// (<c>apiTls</c>) or explicitly allows plain HTTP (<c>allowInsecureHttp</c>, for a TLS-terminating proxy).
/// </summary>
public static class ApiListenPolicy
{
    /// <summary>The address to bind, or a <see cref="ConfigException"/> naming the address and the two ways out.</summary>
    public static IPAddress Check(ServerConfig config, ListenEndpoint listen)
    {
        ArgumentNullException.ThrowIfNull(config);
        IPAddress address = listen.Host == "localhost"
            ? IPAddress.Loopback
            : IPAddress.TryParse(listen.Host, out IPAddress? parsed) ? parsed : throw new ConfigException($"listen address '{config.Listen}' must be an IP address (or localhost)");
        if (config.ApiTls is null && !IPAddress.IsLoopback(address) && !config.AllowInsecureHttp)
        {
            throw new ConfigException($"listen address {config.Listen} is not a loopback address and the API has no TLS: bearer tokens would cross the network in clear; " +
                "give server.json \"apiTls\" (certificate and key), or set \"allowInsecureHttp\": true behind a TLS-terminating proxy");
        }

        return address;
    }
}
