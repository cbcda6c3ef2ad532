using System.Security.Cryptography;
using Conclave.Hsm;
using Conclave.Node.Config;
using Conclave.Server.Coordinator;
using Conclave.Server.Hosting;
using Conclave.Threshold.Frost;
using Conclave.Threshold.Frost.Ciphersuites;

namespace Conclave.Node.Tests;

/// <summary>`conclave up --hsm-*`: every node's store sealed under an AES key inside the SoftHSM2 token (set up by ./test.sh).</summary>
public sealed class HsmClusterTests
{
    private static string Env(string name) => Environment.GetEnvironmentVariable(name)
        ?? throw new InvalidOperationException($"{name} is not set: run the tests through ./test.sh, or eval \"$(bash scripts/test-services/softhsm.sh)\" first");

    [Fact]
    public async Task NodesSealTheirStoresInTheHsm_AndTheClusterSigns()
    {
        var settings = new HsmSettings
        {
            ModulePath = Env("CONCLAVE_TEST_HSM_MODULE"),
            TokenLabel = Env("CONCLAVE_TEST_HSM_TOKEN"),
            PinFile = Env("CONCLAVE_TEST_HSM_PIN_FILE"),
            SessionPoolSize = 2,
        };
        using var cluster = new LocalClusterProcesses(RepoPaths.CliDll, 3, 2, settings);
        var coordinator = new FrostCoordinator(cluster.Coordinator) { PoolBatch = 8 };
        FrostKeyInfo key = await coordinator.CreateKeyAsync("hsm-" + Guid.NewGuid().ToString("N"), FrostCiphersuite.Ed25519Sha512, 2, [1, 2, 3], CancellationToken.None);
        byte[] msg = RandomNumberGenerator.GetBytes(32);
        byte[] sig = await coordinator.SignAsync(key.KeyId, msg, CancellationToken.None);
        Assert.True(key.Suite.Verify(key.PublicKeyPackage.VerificationKey, msg, sig));

        // Each node's wrapping key is in the token, as a non-extractable AES key.
        using HsmToken token = HsmToken.Open(settings.ToOptions(p => p));
        for (int n = 1; n <= 3; n++)
        {
            using HsmKeyEncryptionKey kek = token.OpenKeyEncryptionKey($"conclave-node-{n}-kek");
            Assert.Equal("hsm", kek.Kind);
        }
    }
}
