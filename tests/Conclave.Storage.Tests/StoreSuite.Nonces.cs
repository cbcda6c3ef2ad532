using Conclave.Crypto.Memory;
using Conclave.Storage.Nonces;
using Conclave.Storage.Requests;

namespace Conclave.Storage.Tests;

public abstract partial class StoreSuite
{
    private static byte[] NonceId(int i) => BitConverter.GetBytes((long)i).Reverse().ToArray();

    [Fact]
    public async Task Nonce_is_consumed_exactly_once()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using IConclaveStore store = await loc.OpenAsync();
        await store.Nonces.IssueAsync([.. Enumerable.Range(1, 5).Select(i => new NonceIssue(NonceId(i), "k", NonceKind.Nonce))]);
        Assert.Equal(NonceStatus.Issued, await store.Nonces.GetStatusAsync(NonceId(1)));
        Assert.True(await store.Nonces.TryConsumeAsync(NonceId(1)));
        Assert.False(await store.Nonces.TryConsumeAsync(NonceId(1)));
        Assert.False(await store.Nonces.TryConsumeAsync(NonceId(99)));
        Assert.Equal(NonceStatus.Consumed, await store.Nonces.GetStatusAsync(NonceId(1)));
        Assert.Equal(NonceStatus.Unknown, await store.Nonces.GetStatusAsync(NonceId(99)));
        Assert.Equal(4, await store.Nonces.CountAvailableAsync("k", NonceKind.Nonce));
        Assert.Equal(0, await store.Nonces.CountAvailableAsync("k", NonceKind.Presignature));
        var available = await store.Nonces.ListAvailableAsync("k", NonceKind.Nonce, 2);
        Assert.Equal([NonceId(2), NonceId(3)], available);
        Assert.Equal(StorageErrorKind.InvalidArgument, (await Assert.ThrowsAsync<StorageException>(() => store.Nonces.TryConsumeAsync([]))).Kind);
        Assert.Equal(StorageErrorKind.InvalidArgument, (await Assert.ThrowsAsync<StorageException>(() => store.Nonces.TryConsumeAsync(new byte[65]))).Kind);
    }

    [Fact]
    public async Task PruneConsumedBelow_DeletesOnlyConsumedRowsBelowTheBound_AndHighestIdIsBytewise()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using IConclaveStore store = await loc.OpenAsync();
        Assert.Null(await store.Nonces.GetHighestIdAsync());
        byte[] Id(byte epoch, byte n) => [epoch, 0, 0, 0, 0, 0, 0, n];
        await store.Nonces.IssueConsumedAsync([new NonceIssue(Id(1, 1), "k", NonceKind.Nonce), new NonceIssue(Id(1, 2), "k", NonceKind.Nonce),
            new NonceIssue(Id(2, 1), "k", NonceKind.Nonce), new NonceIssue(Id(0x80, 1), "k", NonceKind.Nonce)]);
        await store.Nonces.IssueAsync([new NonceIssue(Id(1, 3), "k", NonceKind.Nonce)]); // issued, not consumed

        // Unsigned byte order: 0x80 sorts above 0x02 (a signed comparison would not).
        Assert.Equal(Id(0x80, 1), await store.Nonces.GetHighestIdAsync());
        Assert.Equal(2, await store.Nonces.PruneConsumedBelowAsync(Id(2, 0)));
        Assert.Equal(NonceStatus.Unknown, await store.Nonces.GetStatusAsync(Id(1, 1)));
        Assert.Equal(NonceStatus.Unknown, await store.Nonces.GetStatusAsync(Id(1, 2)));
        Assert.Equal(NonceStatus.Issued, await store.Nonces.GetStatusAsync(Id(1, 3)));
        Assert.Equal(NonceStatus.Consumed, await store.Nonces.GetStatusAsync(Id(2, 1)));
        Assert.Equal(NonceStatus.Consumed, await store.Nonces.GetStatusAsync(Id(0x80, 1)));
    }

    [Fact]
    public async Task Duplicate_issue_fails_and_writes_nothing()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using IConclaveStore store = await loc.OpenAsync();
        await store.Nonces.IssueAsync([new NonceIssue(NonceId(1), "k", NonceKind.Nonce)]);
        var e = await Assert.ThrowsAsync<StorageException>(() => store.Nonces.IssueAsync(
            [new NonceIssue(NonceId(2), "k", NonceKind.Nonce), new NonceIssue(NonceId(1), "k", NonceKind.Nonce)]));
        Assert.Equal(StorageErrorKind.Duplicate, e.Kind);
        Assert.Equal(NonceStatus.Unknown, await store.Nonces.GetStatusAsync(NonceId(2)));
    }

    [Fact]
    public async Task Concurrent_consumers_across_store_instances_have_exactly_one_winner()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using IConclaveStore a = await loc.OpenAsync();
        await using IConclaveStore b = await loc.OpenAsync();
        const int ids = 20;
        await a.Nonces.IssueAsync([.. Enumerable.Range(0, ids).Select(i => new NonceIssue(NonceId(i), "k", NonceKind.Presignature))]);
        var attempts = new List<Task<bool>>();
        for (int i = 0; i < ids; i++)
        {
            for (int r = 0; r < 4; r++)
            {
                IConclaveStore s = r % 2 == 0 ? a : b;
                byte[] id = NonceId(i);
                attempts.Add(Task.Run(() => s.Nonces.TryConsumeAsync(id)));
            }
        }

        bool[] results = await Task.WhenAll(attempts);
        for (int i = 0; i < ids; i++)
        {
            Assert.Equal(1, results.Skip(i * 4).Take(4).Count(x => x));
        }

        Assert.Equal(0, await b.Nonces.CountAvailableAsync("k", NonceKind.Presignature));
    }

    [Fact]
    public async Task Nonce_material_is_sealed_handed_out_once_and_erased()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using IConclaveStore store = await loc.OpenAsync(WithPassphrase());
        using (SecretBuffer m1 = Secret(40))
        using (SecretBuffer m2 = Secret(41))
        {
            await store.Nonces.IssueAsync([new NonceIssue(NonceId(1), "k", NonceKind.Nonce, m1), new NonceIssue(NonceId(2), "k", NonceKind.Nonce, m2)]);
        }

        byte[] stored = (byte[])(await loc.ScalarAsync("SELECT ciphertext FROM nonces WHERE id=@id", ("@id", NonceId(1))))!;
        Assert.DoesNotContain(Convert.ToHexString(Bytes(32, 40)), Convert.ToHexString(stored), StringComparison.Ordinal);
        Assert.Equal(Bytes(32, 40), ReadAll((await store.Nonces.TryConsumeMaterialAsync(NonceId(1)))!));
        Assert.Null(await store.Nonces.TryConsumeMaterialAsync(NonceId(1)));
        Assert.Null(await loc.ScalarAsync("SELECT ciphertext FROM nonces WHERE id=@id", ("@id", NonceId(1))));

        // Material moved onto another nonce's row does not open (associated data binds the nonce id).
        await loc.ExecAsync("UPDATE nonces SET kek_id=(SELECT kek_id FROM nonces WHERE id=@b), wrapped_key=(SELECT wrapped_key FROM nonces WHERE id=@b), ciphertext=(SELECT ciphertext FROM nonces WHERE id=@b), consumed_at=NULL WHERE id=@a",
            ("@a", NonceId(1)), ("@b", NonceId(2)));
        Assert.Equal(StorageErrorKind.Corrupted, (await Assert.ThrowsAsync<StorageException>(() => store.Nonces.TryConsumeMaterialAsync(NonceId(1)))).Kind);
    }

    [Fact]
    public async Task Requests_and_approvals()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using IConclaveStore store = await loc.OpenAsync();
        var created = await store.Requests.CreateAsync(new NewRequest("r1", "k", "liquidate", "agent-7", Bytes(32, 1), [1, 2, 3], DateTimeOffset.UnixEpoch.AddYears(100)));
        Assert.Equal(RequestState.Pending, created.State);
        Assert.Equal(StorageErrorKind.Duplicate, (await Assert.ThrowsAsync<StorageException>(() => store.Requests.CreateAsync(new NewRequest("r1", null, "settle", "x", Bytes(32, 1), [])))).Kind);
        Assert.Equal(StorageErrorKind.InvalidArgument, (await Assert.ThrowsAsync<StorageException>(() => store.Requests.CreateAsync(new NewRequest("r2", null, "settle", "x", Bytes(31, 1), [])))).Kind);
        Assert.True(await store.Requests.AddApprovalAsync("r1", "alice", ApprovalDecision.Approve, [9]));
        Assert.False(await store.Requests.AddApprovalAsync("r1", "alice", ApprovalDecision.Reject));
        Assert.True(await store.Requests.AddApprovalAsync("r1", "bob", ApprovalDecision.Approve));
        var approvals = await store.Requests.GetApprovalsAsync("r1");
        Assert.Equal(["alice", "bob"], approvals.Select(a => a.Approver).Order());
        Assert.True(await store.Requests.TransitionAsync("r1", RequestState.Pending, RequestState.Approved));
        Assert.False(await store.Requests.TransitionAsync("r1", RequestState.Pending, RequestState.Rejected));
        Assert.Equal(StorageErrorKind.Conflict, (await Assert.ThrowsAsync<StorageException>(() => store.Requests.AddApprovalAsync("r1", "carol", ApprovalDecision.Approve))).Kind);
        Assert.Equal(StorageErrorKind.NotFound, (await Assert.ThrowsAsync<StorageException>(() => store.Requests.AddApprovalAsync("zz", "carol", ApprovalDecision.Approve))).Kind);
        Assert.Single(await store.Requests.ListAsync(RequestState.Approved));
        Assert.Empty(await store.Requests.ListAsync(RequestState.Pending));
        var r = (await store.Requests.GetAsync("r1"))!;
        Assert.Equal(("k", "liquidate", "agent-7"), (r.KeyId, r.Operation, r.Requester));
        Assert.Equal(DateTimeOffset.UnixEpoch.AddYears(100), r.ExpiresAt);
    }
}
