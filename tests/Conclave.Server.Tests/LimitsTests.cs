using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using Conclave.Server.Config;
using Conclave.Server.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace Conclave.Server.Tests;

/// <summary>The per-client rate limit and open metrics, on a server of its own (a fresh layout, nodes not needed for reading keys).</summary>
public sealed class LimitsTests
{
    [Fact]
    public async Task RateLimit_AnswersTooManyRequestsAsProblemJson()
    {
        string dir = Path.Combine(Path.GetTempPath(), "conclave-limits-" + Guid.NewGuid().ToString("N")[..10]);
        try
        {
            var layout = new LocalClusterLayout(dir);
            layout.EnsureCreated(3, 2, LoopbackPorts.Take(), LoopbackPorts.Take(3));
            ServerConfig config = ServerConfig.Load(layout.ServerConfigPath);
            config.RateLimitBurst = 3;
            config.RateLimitPerSecond = 1;
            config.OpenMetrics = true;
            WebApplication app = await ServerHost.BuildAsync(config);
            await app.StartAsync();
            try
            {
                string token = (await File.ReadAllTextAsync(app.Services.GetRequiredService<ServerPaths>().AdminTokenFile)).Trim();
                using var http = new HttpClient { BaseAddress = new Uri("http://" + config.Listen) };
                http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
                var statuses = new List<HttpStatusCode>();
                HttpResponseMessage? limited = null;
                for (int i = 0; i < 12 && limited is null; i++)
                {
                    HttpResponseMessage r = await http.GetAsync(new Uri("/v1/keys", UriKind.Relative));
                    statuses.Add(r.StatusCode);
                    if (r.StatusCode == HttpStatusCode.TooManyRequests)
                    {
                        limited = r;
                    }
                }

                Assert.Equal(HttpStatusCode.OK, statuses[0]);
                Assert.NotNull(limited);
                Assert.Equal("application/problem+json", limited!.Content.Headers.ContentType?.MediaType);
                Assert.Contains("rate-limited", await limited.Content.ReadAsStringAsync(), StringComparison.Ordinal);

                // With openMetrics a scraper needs no token.
                await Task.Delay(1100);
                using var anonymous = new HttpClient { BaseAddress = new Uri("http://" + config.Listen) };
                Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync(new Uri("/metrics", UriKind.Relative))).StatusCode);
            }
            finally
            {
                await app.StopAsync();
                await app.DisposeAsync();
            }
        }
        finally
        {
            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

}
