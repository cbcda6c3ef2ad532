using System.Net;
using System.Net.Http.Headers;
using Conclave.Client;
using Conclave.Node.Config;
using Conclave.Node.Pki;
using Conclave.Server.Config;
using Conclave.Server.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace Conclave.Server.Tests;

/// <summary>
/// Issue 14 item 12: the API refuses plain HTTP on a non-loopback address unless told otherwise, and serves HTTPS with a
/// development-CA certificate that Conclave.Client trusts when given the CA (and only then).
/// </summary>
public sealed class ApiListenTests
{
    private static (LocalClusterLayout Layout, ServerConfig Config) NewLayout()
    {
        var layout = new LocalClusterLayout(Path.Combine(Path.GetTempPath(), "conclave-listen-" + Guid.NewGuid().ToString("N")[..10]));
        layout.EnsureCreated(3, 2, LoopbackPorts.Take(), LoopbackPorts.Take());
        return (layout, ServerConfig.Load(layout.ServerConfigPath));
    }

    [Fact]
    public async Task PlainHttpOnANonLoopbackAddress_IsRefused_UnlessAllowedOrServedOverTls()
    {
        (LocalClusterLayout layout, ServerConfig config) = NewLayout();
        try
        {
            config.Listen = "0.0.0.0:" + LoopbackPorts.Take().ToString(System.Globalization.CultureInfo.InvariantCulture);
            ConfigException e = await Assert.ThrowsAsync<ConfigException>(() => ServerHost.BuildAsync(config));
            Assert.Contains($"listen address {config.Listen} is not a loopback address and the API has no TLS", e.Message, StringComparison.Ordinal);
            Assert.Contains("allowInsecureHttp", e.Message, StringComparison.Ordinal);

            // Positive controls: the explicit override, and HTTPS, are accepted (built, not started: nothing binds 0.0.0.0).
            config.AllowInsecureHttp = true;
            await using (WebApplication app = await ServerHost.BuildAsync(config))
            {
                Assert.NotNull(app);
            }

            config.AllowInsecureHttp = false;
            layout.EnsureApiTls();
            ServerConfig tls = ServerConfig.Load(layout.ServerConfigPath);
            tls.Listen = config.Listen;
            await using (WebApplication app = await ServerHost.BuildAsync(tls))
            {
                Assert.NotNull(app);
            }
        }
        finally
        {
            Directory.Delete(layout.DataDir, recursive: true);
        }
    }

    [Fact]
    public async Task DevelopmentClusters_UseAShortAuditCheckpointInterval_SoVerifyChecksSignedCheckpointsAtOnce()
    {
        (LocalClusterLayout layout, ServerConfig config) = NewLayout();
        try
        {
            Assert.Equal(LocalClusterLayout.DevelopmentCheckpointInterval, config.AuditCheckpointInterval);
            Assert.Equal(16, config.AuditCheckpointInterval);
            for (uint id = 1; id <= 3; id++)
            {
                Assert.Equal(16, NodeConfig.Load(layout.NodeConfigPath(id)).AuditCheckpointInterval);
            }

            WebApplication app = await ServerHost.BuildAsync(config);
            await app.StartAsync();
            try
            {
                using var http = new HttpClient { BaseAddress = new Uri("http://" + config.Listen) };
                http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer",
                    (await File.ReadAllTextAsync(app.Services.GetRequiredService<ServerPaths>().AdminTokenFile)).Trim());
                for (int i = 0; i < 10; i++)
                {
                    using HttpResponseMessage r = await http.PostAsync(new Uri("/v1/keys", UriKind.Relative), new StringContent(
                        $$"""{"name":"cp-{{i}}","scheme":"ed25519"}""", System.Text.Encoding.UTF8, "application/json"));
                    Assert.Equal(HttpStatusCode.Created, r.StatusCode);
                }

                // Twenty audit entries (intent and outcome of each request) pass the interval of 16: a signed checkpoint exists.
                System.Text.Json.Nodes.JsonNode v = System.Text.Json.Nodes.JsonNode.Parse(await http.GetStringAsync(new Uri("/v1/audit/verify", UriKind.Relative)))!;
                Assert.True(v["ok"]!.GetValue<bool>(), v.ToJsonString());
                Assert.True(v["checkpoints"]!.GetValue<long>() >= 1, v.ToJsonString());
            }
            finally
            {
                await app.StopAsync();
                await app.DisposeAsync();
            }
        }
        finally
        {
            Directory.Delete(layout.DataDir, recursive: true);
        }
    }

    [Fact]
    public async Task Https_WithTheDevelopmentCa_IsTrustedByTheClientGivenTheCa_AndOnlyThen()
    {
        (LocalClusterLayout layout, _) = NewLayout();
        try
        {
            string caPath = layout.EnsureApiTls();
            ServerConfig config = ServerConfig.Load(layout.ServerConfigPath);
            WebApplication app = await ServerHost.BuildAsync(config);
            await app.StartAsync();
            try
            {
                string token = (await File.ReadAllTextAsync(app.Services.GetRequiredService<ServerPaths>().AdminTokenFile)).Trim();
                var url = new Uri($"https://127.0.0.1:{ListenEndpoint.Parse(config.Listen).Port}/");
                using (var client = new ConclaveClient(url, token, PemFiles.LoadCertificate(caPath)))
                {
                    KeyInfo k = await client.CreateKeyAsync(new CreateKeyRequest("tls-" + Guid.NewGuid().ToString("N")[..8], "ed25519"));
                    Assert.Contains(await client.ListKeysAsync(), x => x.Id == k.Id);
                }

                // Another CA's client does not trust it, nor does one with the system's roots only.
                using (DevelopmentCertificateAuthority other = DevelopmentCertificateAuthority.Create())
                using (var stranger = new ConclaveClient(url, token, other.Certificate))
                {
                    await Assert.ThrowsAsync<HttpRequestException>(() => stranger.ListKeysAsync());
                }

                // The certificate follows its files: a renewed pair written over them is served from the next handshake,
                // without a restart, and the client that trusts the CA goes on working.
                string? presented = null;
                async Task<string?> PresentedAsync()
                {
                    using var handler = new HttpClientHandler
                    {
                        ServerCertificateCustomValidationCallback = (_, cert, _, _) =>
                        {
                            presented = cert is null ? null : Convert.ToHexStringLower(cert.GetCertHash(System.Security.Cryptography.HashAlgorithmName.SHA256));
                            return true;
                        },
                    };
                    using var probe = new HttpClient(handler) { BaseAddress = url };
                    using HttpResponseMessage r = await probe.GetAsync(new Uri("/healthz", UriKind.Relative));
                    return presented;
                }

                string? first = await PresentedAsync();
                Assert.NotNull(first);
                string renewedSha;
                using (DevelopmentCertificateAuthority ca = DevelopmentCertificateAuthority.Load(caPath, Path.Combine(layout.PkiDir, "ca.key")))
                using (System.Security.Cryptography.X509Certificates.X509Certificate2 renewed = ca.Issue("conclave-api", serverAuth: true, clientAuth: false, ["localhost"], [IPAddress.Loopback]))
                {
                    PemFiles.Write(renewed, Path.Combine(layout.PkiDir, "api.crt"), Path.Combine(layout.PkiDir, "api.key"));
                    renewedSha = Convert.ToHexStringLower(renewed.GetCertHash(System.Security.Cryptography.HashAlgorithmName.SHA256));
                }

                Assert.NotEqual(first, renewedSha);
                var sw = System.Diagnostics.Stopwatch.StartNew();
                while (await PresentedAsync() != renewedSha)
                {
                    Assert.True(sw.Elapsed < TimeSpan.FromSeconds(60), "the server still presents its previous API certificate");
                    await Task.Delay(200);
                }

                using (var client = new ConclaveClient(url, token, PemFiles.LoadCertificate(caPath)))
                {
                    Assert.NotEmpty(await client.ListKeysAsync());
                }

                using var plain = new HttpClient { BaseAddress = url };
                plain.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
                HttpRequestException e = await Assert.ThrowsAsync<HttpRequestException>(() => plain.GetAsync(new Uri("/v1/keys", UriKind.Relative)));
                Assert.IsType<System.Security.Authentication.AuthenticationException>(e.InnerException);
            }
            finally
            {
                await app.StopAsync();
                await app.DisposeAsync();
            }
        }
        finally
        {
            Directory.Delete(layout.DataDir, recursive: true);
        }
    }
}
