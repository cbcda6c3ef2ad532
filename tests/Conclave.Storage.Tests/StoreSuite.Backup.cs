using Conclave.Crypto.Signing;
using Conclave.Storage.Audit;
using Conclave.Storage.Nodes;
using Conclave.Storage.Nonces;
using Conclave.Storage.Requests;
using Conclave.Testing;

namespace Conclave.Storage.Tests;

public abstract partial class StoreSuite
{
    private async Task<byte[]> ExportSampleAsync(TestLocation loc, string backupPassphrase = "backup pass")
    {
        using SoftwareSigningKey identity = SignatureSchemes.Ed25519.GenerateKey(random: TestSeed.For("key@12"));
        await using IConclaveStore store = await loc.OpenAsync(new StoreOptions { Kek = EngineHarness.Passphrase("store pass"), CheckpointSigner = identity, CheckpointInterval = 10 });
        using (var m = Secret(50))
        {
            await store.Keys.CreateAsync(SampleKey("k1"), m);
        }

        using (var m = Secret(51))
        {
            await store.Keys.RotateAsync("k1", 1, Bytes(32, 77), m);
        }

        await store.Keys.CreateAsync(SampleKey("k2") with { Threshold = 2, Participants = 3, Holders = [1, 2, 3] });
        await store.Requests.CreateAsync(new NewRequest("r1", "k1", "settle", "agent", Bytes(32, 3), [4, 5]));
        await store.Requests.AddApprovalAsync("r1", "alice", ApprovalDecision.Approve);
        await store.Requests.CreateAsync(new NewRequest("r2", "k1", "liquidate", "agent", Bytes(32, 4), [6]));
        await store.Requests.FinishAsync("r2", RequestState.Pending, RequestState.Executed, [1, 2, 3]);
        await store.Policies.PutAsync(new Conclave.Storage.Policy.StoredPolicy("venue-a", 1, "sha256:00", Conclave.Storage.Policy.PolicyMode.Enforce, [123, 125], "admin", DateTimeOffset.UnixEpoch));
        await store.VenueProfiles.PutAsync(new Conclave.Storage.Policy.StoredVenueProfile("perpx", 2, "sha256:01", [123, 125], "admin", DateTimeOffset.UnixEpoch));
        // Principals and credentials, spent velocity limits and the risk level (docs/OPERATIONS.md "Backups").
        await store.Principals.CreateAsync(new Conclave.Storage.Principals.NewPrincipal("bot", "agent", ["agent"], AgentScope));
        await store.Principals.CreateAsync(new Conclave.Storage.Principals.NewPrincipal("alice", "person", ["approver"], "{}"));
        await store.Principals.AddCredentialAsync(new Conclave.Storage.Principals.NewCredential("bot-key-1", "bot", "ed25519", Bytes(32, 1), DateTimeOffset.UtcNow.AddDays(30)));
        await store.Principals.AddCredentialAsync(new Conclave.Storage.Principals.NewCredential("bot-key-2", "bot", "ed25519", Bytes(32, 2), DateTimeOffset.UtcNow.AddDays(30)));
        await store.Principals.RevokeCredentialAsync("bot-key-2");
        Assert.NotNull(await store.PolicyCounters.TryReserveAsync([new Conclave.Storage.Policy.CounterReservation("venue-a/liq/hour/shared", 3600, 7m, 0m, 1, 10m, null, null)],
            DateTimeOffset.UtcNow));
        await store.Risk.UpdateAsync(_ => Level("stressed", s_riskNow) with { ManualLevel = "stressed", ManualBy = "ops", ManualReason = "FOMC", ManualAt = s_riskNow });
        await store.Risk.AddPricesAsync([new Conclave.Storage.Risk.StoredPriceSample("ETH-USD", s_riskNow, 3000.5m)], s_riskNow.AddDays(-1));
        await store.Risk.AddLockdownVoteAsync(s_riskNow, "alice", s_riskNow);
        await store.NodeTrust.MarkUntrustedAsync(3, "suspected compromise", 5); // an evicted node (docs/ROTATION.md)
        using (var n = Secret(52))
        {
            await store.Nonces.IssueAsync([new NonceIssue([7, 7], "k1", NonceKind.Nonce, n), new NonceIssue([8, 8], "k1", NonceKind.Presignature)]);
        }

        await AppendManyAsync(store, 25);
        using var ms = new MemoryStream();
        await store.ExportAsync(ms, EngineHarness.Passphrase(backupPassphrase));
        return ms.ToArray();
    }

    [Fact]
    public async Task Backup_round_trip_restores_everything_but_nonces()
    {
        await using TestLocation source = await Harness.NewLocationAsync();
        byte[] backup = await ExportSampleAsync(source);
        Assert.DoesNotContain("name-k1", System.Text.Encoding.Latin1.GetString(backup), StringComparison.Ordinal); // body is encrypted

        await using TestLocation target = await Harness.NewLocationAsync();
        await using (IConclaveStore store = await target.OpenAsync())
        {
            await store.ImportAsync(new MemoryStream(backup), EngineHarness.Passphrase("backup pass"));
        }

        // The backup carries the checkpoints but not the head signature: the first open with a signer signs from the head on.
        using SoftwareSigningKey identity = SignatureSchemes.Ed25519.GenerateKey(random: TestSeed.For("key@52"));
        await using (IConclaveStore store = await target.OpenAsync(new StoreOptions { Kek = EngineHarness.Passphrase("store pass"), CheckpointSigner = identity }))
        {
            Assert.Equal(2, (await store.Keys.ListAsync()).Count);
            Assert.Equal([1u, 2u, 3u], (await store.Keys.GetAsync("k2"))!.Holders); // recorded holders travel with the row (its MAC verifies)
            Assert.Null((await store.Keys.GetAsync("k1"))!.Holders);
            Assert.Equal(2, (await store.Keys.GetVersionsAsync("k1")).Count);
            Assert.Equal(Bytes(32, 51), ReadAll(await store.Keys.OpenMaterialAsync("k1")));
            Assert.Equal(Bytes(32, 50), ReadAll(await store.Keys.OpenMaterialAsync("k1", 1)));
            Assert.Single(await store.Requests.GetApprovalsAsync("r1"));
            Assert.Equal([1, 2, 3], (await store.Requests.GetAsync("r2"))!.Result);
            Assert.Equal("sha256:00", (await store.Policies.GetAsync("venue-a"))!.Hash);
            Assert.Equal((2L, "sha256:01"), ((await store.VenueProfiles.GetAsync("perpx"))!.Version, (await store.VenueProfiles.GetAsync("perpx"))!.Hash));
            // Pending requests (r1, with its vote), principals, credentials (their MACs verify), counters, the risk level.
            Assert.Equal(RequestState.Pending, (await store.Requests.GetAsync("r1"))!.State);
            Assert.Equal(["alice", "bot"], (await store.Principals.ListAsync()).Select(p => p.Id).Order(StringComparer.Ordinal));
            Assert.Equal("{\"keys\":[\"k1\"],\"labels\":[],\"operations\":[\"liquidate\"]}", (await store.Principals.GetAsync("bot"))!.Scope);
            Assert.Equal(Bytes(32, 1), (await store.Principals.GetCredentialAsync("bot-key-1"))!.PublicKey);
            Assert.True((await store.Principals.GetCredentialAsync("bot-key-2"))!.Revoked);
            Assert.Equal(7m, (await store.PolicyCounters.ReadAsync("venue-a/liq/hour/shared", 3600, DateTimeOffset.UtcNow)).Native);
            // A restored counter has no running totals yet: the first reservation computes them from the entries, so the cap holds.
            Assert.Null(await store.PolicyCounters.TryReserveAsync([new Conclave.Storage.Policy.CounterReservation("venue-a/liq/hour/shared", 3600, 4m, 0m, 1, 10m, null, null)], DateTimeOffset.UtcNow));
            Assert.NotNull(await store.PolicyCounters.TryReserveAsync([new Conclave.Storage.Policy.CounterReservation("venue-a/liq/hour/shared", 3600, 3m, 0m, 1, 10m, null, null)], DateTimeOffset.UtcNow));
            Assert.Equal(10m, (await store.PolicyCounters.ReadAsync("venue-a/liq/hour/shared", 3600, DateTimeOffset.UtcNow)).Native);
            Conclave.Storage.Risk.StoredRiskState risk = (await store.Risk.GetAsync())!;
            Assert.Equal(("stressed", "stressed", "ops", "FOMC"), (risk.Level, risk.ManualLevel, risk.ManualBy, risk.ManualReason));
            Assert.Equal(3000.5m, Assert.Single(await store.Risk.ReadPricesAsync(s_riskNow.AddMinutes(-1))).Price);
            Assert.Equal(["alice"], await store.Risk.LockdownVotesAsync(s_riskNow));
            UntrustedNode evicted = Assert.Single(await store.NodeTrust.ListUntrustedAsync()); // its record MAC verifies
            Assert.Equal((3u, "suspected compromise", (uint?)5), (evicted.NodeId, evicted.Reason, evicted.Replacement));
            AuditVerificationResult v = await store.Audit.VerifyAsync();
            Assert.True(v.Ok, v.ToString());
            Assert.Equal(25, v.EntriesChecked);
            Assert.Equal(2, v.CheckpointsChecked);

            // A nonce is never restored.
            Assert.Equal(NonceStatus.Unknown, await store.Nonces.GetStatusAsync([7, 7]));
            Assert.Equal(0L, Convert.ToInt64(await target.ScalarAsync("SELECT COUNT(*) FROM nonces")));
            Assert.Equal(26, (await store.Audit.AppendAsync(Entry(1))).Seq);
        }
    }

    [Fact]
    public async Task Backup_with_wrong_passphrase_truncation_or_corruption_is_rejected_and_nothing_is_written()
    {
        await using TestLocation source = await Harness.NewLocationAsync();
        byte[] backup = await ExportSampleAsync(source);
        await using TestLocation target = await Harness.NewLocationAsync();
        await using IConclaveStore store = await target.OpenAsync();

        var wrong = await Assert.ThrowsAsync<StorageException>(() => store.ImportAsync(new MemoryStream(backup), EngineHarness.Passphrase("nope")));
        Assert.Equal(StorageErrorKind.WrongKeyEncryptionKey, wrong.Kind);
        Assert.Contains("wrong passphrase", wrong.Message, StringComparison.Ordinal);

        foreach (int cut in new[] { 3, 20, backup.Length / 2, backup.Length - 1 })
        {
            var e = await Assert.ThrowsAsync<StorageException>(() => store.ImportAsync(new MemoryStream(backup[..cut]), EngineHarness.Passphrase("backup pass")));
            Assert.Equal(StorageErrorKind.Corrupted, e.Kind);
            Assert.Contains("backup rejected", e.Message, StringComparison.Ordinal);
        }

        byte[] flipped = (byte[])backup.Clone();
        flipped[^40] ^= 1;
        Assert.Equal(StorageErrorKind.Corrupted, (await Assert.ThrowsAsync<StorageException>(() => store.ImportAsync(new MemoryStream(flipped), EngineHarness.Passphrase("backup pass")))).Kind);

        Assert.Empty(await store.Keys.ListAsync());
        Assert.Equal(0, (await store.Audit.GetHeadAsync()).Seq);
        Assert.Equal(0L, Convert.ToInt64(await target.ScalarAsync("SELECT COUNT(*) FROM keks")));
    }

    [Fact]
    public async Task Backup_import_refuses_a_non_empty_store()
    {
        await using TestLocation source = await Harness.NewLocationAsync();
        byte[] backup = await ExportSampleAsync(source);
        await using IConclaveStore store = await source.OpenAsync(new StoreOptions { Kek = EngineHarness.Passphrase("store pass") });
        var e = await Assert.ThrowsAsync<StorageException>(() => store.ImportAsync(new MemoryStream(backup), EngineHarness.Passphrase("backup pass")));
        Assert.Equal(StorageErrorKind.NotEmpty, e.Kind);
        Assert.Equal(2, (await store.Keys.ListAsync()).Count);
    }
}

public sealed class SqliteOnlyTests
{
    [Fact]
    public async Task Corrupted_database_file_gives_a_clear_error_and_is_not_overwritten()
    {
        string dir = Path.Combine(Path.GetTempPath(), "conclave-storage-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            string path = Path.Combine(dir, ConclaveStore.SqliteFileName);
            byte[] garbage = TestSeed.Bytes(8192, "garbage");
            await File.WriteAllBytesAsync(path, garbage);
            var e = await Assert.ThrowsAsync<StorageException>(() => ConclaveStore.OpenSqliteAsync(dir));
            Assert.Equal(StorageErrorKind.Io, e.Kind);
            Assert.Contains("not a database", e.Message, StringComparison.Ordinal);
            Assert.Equal(garbage, await File.ReadAllBytesAsync(path));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public async Task Data_folder_is_created_owner_only()
    {
        string dir = Path.Combine(Path.GetTempPath(), "conclave-storage-tests", Guid.NewGuid().ToString("N"));
        try
        {
            await using (IConclaveStore store = await ConclaveStore.OpenSqliteAsync(dir))
            {
                Assert.Equal(StoreEngine.Sqlite, store.Engine);
            }

            if (!OperatingSystem.IsWindows())
            {
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(dir));
            }
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
