using Conclave.Storage.Ethereum;

namespace Conclave.Storage.Tests;

public abstract partial class StoreSuite
{
    private const string SafeAddress = "0x2a15de4410d4c8af0a7b6c12803120f43c42b820";

    private static SafeRecord SampleSafe(string name = "treasury", long chainId = 31337, string address = SafeAddress) =>
        new(name, chainId, address, 2, ["key-a", "key-b", "key-c"], DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_000));

    [Fact]
    public async Task Safes_are_registered_once_read_back_after_a_reopen_and_carried_by_backups()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using (IConclaveStore store = await loc.OpenAsync(WithPassphrase()))
        {
            Assert.Null(await store.Safes.GetAsync("treasury"));
            await store.Safes.AddAsync(SampleSafe());
            await store.Safes.AddAsync(SampleSafe("other-chain", chainId: 1)); // the same address on another chain is another Safe

            // The name again, or the same (chain, address) under another name: Duplicate, nothing written.
            Assert.Equal(StorageErrorKind.Duplicate, (await Assert.ThrowsAsync<StorageException>(() => store.Safes.AddAsync(SampleSafe(address: "0x" + new string('1', 40))))).Kind);
            Assert.Equal(StorageErrorKind.Duplicate, (await Assert.ThrowsAsync<StorageException>(() => store.Safes.AddAsync(SampleSafe("again")))).Kind);

            // Malformed registrations: InvalidArgument.
            foreach (SafeRecord bad in new[]
            {
                SampleSafe(chainId: 0) with { Name = "b1" },
                SampleSafe(address: "0x2A15DE4410D4C8AF0A7B6C12803120F43C42B820") with { Name = "b2" }, // stored lowercase only
                SampleSafe(address: "0x1234") with { Name = "b3" },
                SampleSafe(address: "0x" + new string('2', 40)) with { Name = "b4", Threshold = 4 },
                SampleSafe(address: "0x" + new string('3', 40)) with { Name = "b5", Threshold = 0 },
                SampleSafe(address: "0x" + new string('4', 40)) with { Name = "b6", OwnerKeyIds = ["key-a", "key-a"] },
                SampleSafe(address: "0x" + new string('5', 40)) with { Name = "b7", OwnerKeyIds = [] },
            })
            {
                Assert.Equal(StorageErrorKind.InvalidArgument, (await Assert.ThrowsAsync<StorageException>(() => store.Safes.AddAsync(bad))).Kind);
            }

            Assert.Equal(new[] { "other-chain", "treasury" }, (await store.Safes.ListAsync()).Select(s => s.Name));
        }

        byte[] backup;
        await using (IConclaveStore store = await loc.OpenAsync(WithPassphrase()))
        {
            SafeRecord read = (await store.Safes.GetAsync("treasury"))!;
            Assert.Equal(31337, read.ChainId);
            Assert.Equal(SafeAddress, read.Address);
            Assert.Equal(2, read.Threshold);
            Assert.Equal(new[] { "key-a", "key-b", "key-c" }, read.OwnerKeyIds);
            Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_000), read.CreatedAt);
            using var ms = new MemoryStream();
            await store.ExportAsync(ms, EngineHarness.Passphrase("backup pass"));
            backup = ms.ToArray();
        }

        await using TestLocation target = await Harness.NewLocationAsync();
        await using (IConclaveStore store = await target.OpenAsync())
        {
            await store.ImportAsync(new MemoryStream(backup), EngineHarness.Passphrase("backup pass"));
            Assert.Equal(new[] { "other-chain", "treasury" }, (await store.Safes.ListAsync()).Select(s => s.Name));
            Assert.Equal(new[] { "key-a", "key-b", "key-c" }, (await store.Safes.GetAsync("treasury"))!.OwnerKeyIds);
        }
    }
}
