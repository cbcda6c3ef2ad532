using Conclave.Storage.Ethereum;

namespace Conclave.Storage.Tests;

/// <summary>Ethereum account nonces (issue 17): contiguous reservations, release without gaps, resync, replicas, restart.</summary>
public abstract partial class StoreSuite
{
    private const string NonceAccount = "0x9858EfFD232B4033E47d90003D41EC34EcaEda94";

    [Fact]
    public async Task Eth_nonces_are_contiguous_a_released_one_is_handed_out_again_and_chain_resync_moves_up_only()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using IConclaveStore store = await loc.OpenAsync(WithPassphrase());
        IEthereumNonceStore n = store.EthereumNonces;
        Assert.Equal(0, await n.ReserveAsync(31337, NonceAccount, null));
        Assert.Equal(1, await n.ReserveAsync(31337, NonceAccount, 0));
        Assert.Equal(2, await n.ReserveAsync(31337, NonceAccount, null));
        Assert.Equal(0, await n.ReserveAsync(1, NonceAccount, null)); // another chain, another sequence

        // 1's transaction failed before it was sent: the next reservation gets 1, then fresh ones again.
        Assert.True(await n.ReleaseAsync(31337, NonceAccount, 1));
        Assert.False(await n.ReleaseAsync(31337, NonceAccount, 1));
        Assert.False(await n.ReleaseAsync(31337, NonceAccount, 9)); // never reserved
        Assert.Equal(new long[] { 1 }, (await n.ReadAsync(31337, NonceAccount)).Released);
        Assert.Equal(1, await n.ReserveAsync(31337, NonceAccount, 1));
        Assert.Equal(3, await n.ReserveAsync(31337, NonceAccount, 2));

        // A chain that is behind (transactions still in flight) changes nothing; one that is ahead wins, and released
        // nonces below it are dropped (they were used outside Conclave).
        Assert.True(await n.ReleaseAsync(31337, NonceAccount, 2));
        Assert.Equal(10, await n.ReserveAsync(31337, NonceAccount, 10));
        EthereumNonceState state = await n.ReadAsync(31337, NonceAccount);
        Assert.Equal(11, state.Next);
        Assert.Empty(state.Released);
        Assert.Equal(11, await n.ReserveAsync(31337, NonceAccount, 3));

        await Assert.ThrowsAsync<StorageException>(() => n.ReserveAsync(0, NonceAccount, null));
        await Assert.ThrowsAsync<StorageException>(() => n.ReserveAsync(31337, NonceAccount, -1));
    }

    [Fact]
    public async Task Two_hundred_concurrent_eth_nonce_reservations_across_two_replicas_are_distinct_and_contiguous_and_survive_a_restart()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using (IConclaveStore a = await loc.OpenAsync(WithPassphrase()))
        await using (IConclaveStore b = await loc.OpenAsync(WithPassphrase()))
        {
            // Eight agents (four per replica) take 25 nonces each, concurrently.
            var tasks = Enumerable.Range(0, 8).Select(w => Task.Run(async () =>
            {
                IEthereumNonceStore s = (w % 2 == 0 ? a : b).EthereumNonces;
                var mine = new List<long>();
                for (int i = 0; i < 25; i++)
                {
                    long nonce = await s.ReserveAsync(31337, NonceAccount, null);
                    if (i % 10 == 3)
                    {
                        // Every tenth request fails after its reservation: its nonce goes back and is reserved again.
                        Assert.True(await s.ReleaseAsync(31337, NonceAccount, nonce));
                        nonce = await s.ReserveAsync(31337, NonceAccount, null);
                    }

                    mine.Add(nonce);
                }

                return mine;
            })).ToList();
            long[] nonces = [.. (await Task.WhenAll(tasks)).SelectMany(x => x)];
            Assert.Equal(Enumerable.Range(0, 200).Select(i => (long)i), nonces.Order());
        }

        await using IConclaveStore reopened = await loc.OpenAsync(WithPassphrase());
        Assert.Equal(200, await reopened.EthereumNonces.ReserveAsync(31337, NonceAccount, null));
    }
}
