using System.Text.Json.Nodes;
using Conclave.Server.Config;
using Conclave.Server.Hosting;

namespace Conclave.Server.Tests;

/// <summary>server.json's dklsPresignPoolSize (docs/DKLS23.md "Presignature pool"): off by default, bounded, named in the error.</summary>
public sealed class DklsPresignConfigTests
{
    [Fact]
    public void DklsPresignPoolSize_LoadsFromServerJson_AndOutOfRangeValuesAreRefusedWithTheFieldNamed()
    {
        string dir = Path.Combine(Path.GetTempPath(), "conclave-presign-" + Guid.NewGuid().ToString("N")[..10]);
        try
        {
            var layout = new LocalClusterLayout(dir);
            layout.EnsureCreated(3, 2, LoopbackPorts.Take(), LoopbackPorts.Take());
            string original = File.ReadAllText(layout.ServerConfigPath);
            Assert.Equal(0, ServerConfig.Load(layout.ServerConfigPath).DklsPresignPoolSize);

            foreach (int bad in new[] { -1, 1025 })
            {
                JsonNode json = JsonNode.Parse(original)!;
                json["dklsPresignPoolSize"] = bad;
                File.WriteAllText(layout.ServerConfigPath, json.ToJsonString());
                var e = Assert.Throws<Conclave.Node.Config.ConfigException>(() => ServerConfig.Load(layout.ServerConfigPath));
                Assert.Contains("dklsPresignPoolSize", e.Message, StringComparison.Ordinal);
            }

            JsonNode good = JsonNode.Parse(original)!;
            good["dklsPresignPoolSize"] = 8;
            File.WriteAllText(layout.ServerConfigPath, good.ToJsonString());
            Assert.Equal(8, ServerConfig.Load(layout.ServerConfigPath).DklsPresignPoolSize);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
