using Conclave.Storage.Policy;
using Conclave.Storage.Requests;

namespace Conclave.Storage.Tests;

/// <summary>Versioned policy documents and held-request results (issue 16, migration 9).</summary>
public abstract partial class StoreSuite
{
    private static StoredPolicy Doc(string id, long version, PolicyMode mode = PolicyMode.Enforce) =>
        new(id, version, "sha256:" + new string((char)('0' + (int)version), 64), mode, System.Text.Encoding.UTF8.GetBytes($"{{\"id\":\"{id}\",\"version\":{version}}}"), "admin",
            new DateTimeOffset(2026, 11, 30, 12, 0, 0, TimeSpan.Zero).AddMinutes(version));

    [Fact]
    public async Task Policies_are_versioned_newest_wins_and_a_version_is_written_once()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using (IConclaveStore store = await loc.OpenAsync())
        {
            var p = store.Policies;
            Assert.Null(await p.GetAsync("venue-a"));
            Assert.Empty(await p.ListAsync());
            Assert.Empty(await p.ListHeadsAsync());
            Assert.True(await p.PutAsync(Doc("venue-a", 1)));
            Assert.False(await p.PutAsync(Doc("venue-a", 1)));
            Assert.True(await p.PutAsync(Doc("venue-a", 3, PolicyMode.Shadow)));
            Assert.False(await p.PutAsync(Doc("venue-a", 2)));
            Assert.True(await p.PutAsync(Doc("starter", 1)));
            var newest = (await p.GetAsync("venue-a"))!;
            Assert.Equal((3L, PolicyMode.Shadow, "admin"), (newest.Version, newest.Mode, newest.CreatedBy));
            Assert.Equal(Doc("venue-a", 3).Document, newest.Document);
            Assert.Equal(1, (await p.GetAsync("venue-a", 1))!.Version);
            Assert.Null(await p.GetAsync("venue-a", 2));
            Assert.Equal([("starter", 1L), ("venue-a", 3L)], (await p.ListAsync()).Select(x => (x.Id, x.Version)));
            Assert.Equal([new PolicyHead("starter", 1, Doc("starter", 1).Hash), new PolicyHead("venue-a", 3, Doc("venue-a", 3).Hash)], await p.ListHeadsAsync());
            Assert.Equal([1L, 3L], (await p.HistoryAsync("venue-a")).Select(x => x.Version));
            Assert.Equal(StorageErrorKind.InvalidArgument, (await Assert.ThrowsAsync<StorageException>(() => p.PutAsync(Doc("venue-a", 0)))).Kind);
            Assert.Equal(StorageErrorKind.InvalidArgument, (await Assert.ThrowsAsync<StorageException>(() => p.PutAsync(Doc("bad\nid", 1)))).Kind);
            Assert.Equal(StorageErrorKind.InvalidArgument, (await Assert.ThrowsAsync<StorageException>(() => p.PutAsync(Doc("x", 1) with { Document = [] }))).Kind);
        }

        // Durable, and a second store open on the same database (a replica) sees the same set.
        await using IConclaveStore a = await loc.OpenAsync();
        await using IConclaveStore b = await loc.OpenAsync();
        Assert.Equal(3, (await b.Policies.GetAsync("venue-a"))!.Version);
        bool[] raced = await Task.WhenAll(Enumerable.Range(0, 10).Select(i => Task.Run(() => (i % 2 == 0 ? a : b).Policies.PutAsync(Doc("venue-a", 4)))));
        Assert.Equal(1, raced.Count(x => x));
        Assert.Equal(4, (await a.Policies.ListHeadsAsync()).Single(h => h.Id == "venue-a").Version);
    }

    private static StoredVenueProfile Profile(string venue, long version) =>
        new(venue, version, "sha256:" + new string((char)('0' + (int)version), 64), System.Text.Encoding.UTF8.GetBytes($"{{\"venue\":\"{venue}\",\"v\":{version}}}"), "admin",
            new DateTimeOffset(2026, 12, 1, 12, 0, 0, TimeSpan.Zero).AddMinutes(version));

    [Fact]
    public async Task Venue_profiles_are_versioned_newest_wins_a_version_is_written_once_and_replicas_share_them()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using (IConclaveStore store = await loc.OpenAsync())
        {
            var v = store.VenueProfiles;
            Assert.Null(await v.GetAsync("perpx"));
            Assert.Empty(await v.ListAsync());
            Assert.True(await v.PutAsync(Profile("perpx", 1)));
            Assert.False(await v.PutAsync(Profile("perpx", 1)));
            Assert.True(await v.PutAsync(Profile("perpx", 3)));
            Assert.False(await v.PutAsync(Profile("perpx", 2)));
            Assert.True(await v.PutAsync(Profile("optx", 1)));
            var newest = (await v.GetAsync("perpx"))!;
            Assert.Equal((3L, Profile("perpx", 3).Hash, "admin"), (newest.Version, newest.Hash, newest.CreatedBy));
            Assert.Equal(Profile("perpx", 3).Document, newest.Document);
            Assert.Equal(Profile("perpx", 3).CreatedAt, newest.CreatedAt);
            Assert.Equal(1, (await v.GetAsync("perpx", 1))!.Version);
            Assert.Null(await v.GetAsync("perpx", 2));
            Assert.Equal([("optx", 1L), ("perpx", 3L)], (await v.ListAsync()).Select(x => (x.Venue, x.Version)));
            Assert.Equal([1L, 3L], (await v.HistoryAsync("perpx")).Select(x => x.Version));
            Assert.Equal(StorageErrorKind.InvalidArgument, (await Assert.ThrowsAsync<StorageException>(() => v.PutAsync(Profile("perpx", 0)))).Kind);
            Assert.Equal(StorageErrorKind.InvalidArgument, (await Assert.ThrowsAsync<StorageException>(() => v.PutAsync(Profile("x", 1) with { Document = [] }))).Kind);
            Assert.Equal(StorageErrorKind.InvalidArgument, (await Assert.ThrowsAsync<StorageException>(() => v.PutAsync(Profile("x", 1) with { Hash = "" }))).Kind);
        }

        // Durable, and a second store open on the same database (a replica) sees the same set; of ten racing puts of one
        // version exactly one is written.
        await using IConclaveStore a = await loc.OpenAsync();
        await using IConclaveStore b = await loc.OpenAsync();
        Assert.Equal(3, (await b.VenueProfiles.GetAsync("perpx"))!.Version);
        bool[] raced = await Task.WhenAll(Enumerable.Range(0, 10).Select(i => Task.Run(() => (i % 2 == 0 ? a : b).VenueProfiles.PutAsync(Profile("perpx", 4)))));
        Assert.Equal(1, raced.Count(x => x));
        Assert.Equal(4, (await a.VenueProfiles.GetAsync("perpx"))!.Version);
    }

    [Fact]
    public async Task A_finished_request_keeps_its_result()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using IConclaveStore store = await loc.OpenAsync();
        await store.Requests.CreateAsync(new NewRequest("r1", "k", "liquidate", "agent-7", Bytes(32, 1), [1]));
        Assert.Null((await store.Requests.GetAsync("r1"))!.Result);
        Assert.True(await store.Requests.FinishAsync("r1", RequestState.Pending, RequestState.Executed, [7, 8]));
        Assert.False(await store.Requests.FinishAsync("r1", RequestState.Pending, RequestState.Failed, [9]));
        var r = (await store.Requests.GetAsync("r1"))!;
        Assert.Equal(RequestState.Executed, r.State);
        Assert.Equal([7, 8], r.Result);
    }
}
