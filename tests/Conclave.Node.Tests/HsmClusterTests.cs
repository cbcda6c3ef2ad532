using Conclave.Hsm;
using Conclave.Node.Config;
using Conclave.Server.Coordinator;
using Conclave.Server.Hosting;
using Conclave.Storage;
using Conclave.Storage.Encryption;
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
        // The token persists between runs, so this run's wrapping keys get labels no earlier run used.
        string prefix = "it-" + Guid.NewGuid().ToString("N")[..12];
        var settings = new HsmSettings
        {
            ModulePath = Env("CONCLAVE_TEST_HSM_MODULE"),
            TokenLabel = Env("CONCLAVE_TEST_HSM_TOKEN"),
            PinFile = Env("CONCLAVE_TEST_HSM_PIN_FILE"),
            SessionPoolSize = 2,
            KekId = prefix,
        };
        string Label(int n) => $"{prefix}-node-{n}";
        using HsmToken token = HsmToken.Open(settings.ToOptions(p => p));
        for (int n = 1; n <= 3; n++)
        {
            Assert.Throws<HsmException>(() => token.OpenKeyEncryptionKey(Label(n)));
        }

        try
        {
            using var cluster = new LocalClusterProcesses(RepoPaths.CliDll, 3, 2, settings);
            var coordinator = new FrostCoordinator(cluster.Coordinator) { PoolBatch = 8 };
            FrostKeyInfo key = await coordinator.CreateKeyAsync("hsm-" + Guid.NewGuid().ToString("N"), FrostCiphersuite.Ed25519Sha512, 2, [1, 2, 3], CancellationToken.None);
            byte[] msg = TestSeed.Bytes(32, "message");
            byte[] sig = await coordinator.SignAsync(key.KeyId, msg, CancellationToken.None);
            Assert.True(key.Suite.Verify(key.PublicKeyPackage.VerificationKey, msg, sig));

            // Each node's wrapping key was created by this run in the token, as a non-extractable AES key.
            for (int n = 1; n <= 3; n++)
            {
                using HsmKeyEncryptionKey kek = token.OpenKeyEncryptionKey(Label(n));
                Assert.Equal("hsm", kek.Kind);
            }

            // The store is sealed by the HSM: with the nodes stopped, node 1's store opens with the token's key
            // (control), not with the node's key file, and not once the key is gone from the token.
            for (uint n = 1; n <= 3; n++)
            {
                cluster.KillNode(n);
            }

            NodeConfig config = NodeConfig.Load(cluster.Layout.NodeConfigPath(1));
            string dataDir = config.Resolve(config.DataDir);
            await using (IConclaveStore opened = await ConclaveStore.OpenSqliteAsync(dataDir, new StoreOptions { Kek = new HsmKekSource(token, Label(1)) }, CancellationToken.None))
            {
                Assert.NotNull(opened);
            }

            Exception keyFile = await Assert.ThrowsAnyAsync<Exception>(() => ConclaveStore.OpenSqliteAsync(dataDir, new StoreOptions { Kek = KeyFileKek.Source(config.Resolve(config.KekFile)) }, CancellationToken.None));
            Assert.True(keyFile is StorageException or HsmException, keyFile.ToString());

            Assert.True(token.DeleteKeyEncryptionKey(Label(1)));
            HsmException gone = await Assert.ThrowsAsync<HsmException>(() => ConclaveStore.OpenSqliteAsync(dataDir, new StoreOptions { Kek = new HsmKekSource(token, Label(1)) }, CancellationToken.None));
            Assert.Equal(HsmErrorKind.KeyNotFound, gone.Kind);
        }
        finally
        {
            for (int n = 1; n <= 3; n++)
            {
                token.DeleteKeyEncryptionKey(Label(n));
            }
        }
    }
}
