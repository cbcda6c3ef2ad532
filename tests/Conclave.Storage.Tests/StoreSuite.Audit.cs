using Conclave.Crypto.Signing;
using Conclave.Storage.Audit;
using Conclave.Storage.Internal;
using Conclave.Testing;

namespace Conclave.Storage.Tests;

public abstract partial class StoreSuite
{
    private const int AuditEntries = 100;
    private const int Interval = 25;

    private static AuditEntryInput Entry(int i) =>
        new($"agent-{i % 3}", i % 2 == 0 ? "sign" : "approve", $"k{i % 5}", Bytes(32, (byte)i), "allow", "ok");

    private static async Task AppendManyAsync(IConclaveStore store, int count, int offset = 0) =>
        await Task.WhenAll(Enumerable.Range(offset, count).Select(i => store.Audit.AppendAsync(Entry(i))));

    /// <summary>A log of 100 entries with signed checkpoints at 25, 50, 75, 100; returns the node identity key's public key.</summary>
    private async Task<(TestLocation Loc, byte[] NodeKey)> SeededLogAsync()
    {
        TestLocation loc = await Harness.NewLocationAsync();
        using SoftwareSigningKey identity = SignatureSchemes.Ed25519.GenerateKey(random: TestSeed.For("key@22"));
        await using IConclaveStore store = await loc.OpenAsync(new StoreOptions { CheckpointSigner = identity, CheckpointInterval = Interval });
        for (int i = 0; i < AuditEntries; i += 20)
        {
            await AppendManyAsync(store, 20, i); // several batches
        }

        AuditVerificationResult ok = await store.Audit.VerifyAsync(new AuditVerifyOptions { TrustedCheckpointKey = identity.PublicKey.ToArray() });
        Assert.True(ok.Ok, ok.ToString());
        Assert.Equal(AuditEntries, ok.EntriesChecked);
        return (loc, identity.PublicKey.ToArray());
    }

    private static async Task<AuditVerificationResult> VerifyAsync(TestLocation loc, byte[]? trusted = null)
    {
        await using IConclaveStore store = await loc.OpenAsync(new StoreOptions { ReadOnly = true });
        return await store.Audit.VerifyAsync(new AuditVerifyOptions { TrustedCheckpointKey = trusted });
    }

    private static async Task<AuditEntry> ReadEntryAsync(TestLocation loc, long seq)
    {
        await using IConclaveStore store = await loc.OpenAsync(new StoreOptions { ReadOnly = true });
        return (await store.Audit.ReadAsync(seq, 1)).Single();
    }

    private static async Task ShiftSeqAsync(TestLocation loc, long fromSeq, int delta)
    {
        // Two steps through negative numbers so no unique-key clash happens mid-update on either engine.
        await loc.ExecAsync("UPDATE audit_entries SET seq = -(seq + @d) WHERE seq >= @f", ("@d", (long)delta), ("@f", fromSeq));
        await loc.ExecAsync("UPDATE audit_entries SET seq = -seq WHERE seq < 0");
    }

    [Fact]
    public async Task Audit_group_commit_assigns_unique_sequence_and_verifies()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        using SoftwareSigningKey identity = SignatureSchemes.Ed25519.GenerateKey(random: TestSeed.For("key@58"));
        await using (IConclaveStore store = await loc.OpenAsync(new StoreOptions { CheckpointSigner = identity, CheckpointInterval = 100 }))
        {
            AuditEntry[] written = await Task.WhenAll(Enumerable.Range(0, 1000).Select(i => Task.Run(() => store.Audit.AppendAsync(Entry(i)))));
            Assert.Equal(Enumerable.Range(1, 1000).Select(i => (long)i), written.Select(w => w.Seq).Order());
            AuditHead head = await store.Audit.GetHeadAsync();
            Assert.Equal(1000, head.Seq);
            Assert.Equal(10, (await store.Audit.GetCheckpointsAsync()).Count);
            var page = await store.Audit.ReadAsync(500, 3);
            Assert.Equal([500L, 501, 502], page.Select(e => e.Seq));
            Assert.Equal(page[0].Hash, page[1].PrevHash);
        }

        // The chain continues across reopen (a signed log is appended to with its signer only).
        await using (IConclaveStore store = await loc.OpenAsync(new StoreOptions { CheckpointSigner = identity }))
        {
            AuditEntry e = await store.Audit.AppendAsync(Entry(5));
            Assert.Equal(1001, e.Seq);
            AuditVerificationResult r = await store.Audit.VerifyAsync(new AuditVerifyOptions { TrustedCheckpointKey = identity.PublicKey.ToArray() });
            Assert.True(r.Ok, r.ToString());
            Assert.Equal(1001, r.EntriesChecked);
            Assert.Equal(10, r.CheckpointsChecked);
            Assert.Contains("audit log ok", r.ToString(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Audit_entries_appended_together_take_consecutive_seqs_in_one_commit_among_concurrent_appenders()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        using SoftwareSigningKey identity = SignatureSchemes.Ed25519.GenerateKey(random: TestSeed.For("key@group"));
        await using IConclaveStore store = await loc.OpenAsync(new StoreOptions { CheckpointSigner = identity, CheckpointInterval = 100 });
        var singles = new List<Task<AuditEntry>>();
        var groups = new List<(AuditEntryInput[] Inputs, Task<IReadOnlyList<AuditEntry>> Written)>();
        for (int g = 0; g < 20; g++)
        {
            for (int i = 0; i < 10; i++)
            {
                int n = g * 10 + i;
                singles.Add(Task.Run(() => store.Audit.AppendAsync(Entry(n))));
            }

            AuditEntryInput[] inputs = [Entry(1000 + g * 3), Entry(1001 + g * 3) with { Action = "policy.decide" }, Entry(1002 + g * 3) with { Action = "frost.sign" }];
            groups.Add((inputs, Task.Run(() => store.Audit.AppendAllAsync(inputs))));
        }

        await Task.WhenAll(singles);
        foreach ((AuditEntryInput[] inputs, Task<IReadOnlyList<AuditEntry>> task) in groups)
        {
            IReadOnlyList<AuditEntry> written = await task;
            Assert.Equal(3, written.Count);
            for (int k = 0; k < 3; k++)
            {
                // In the order given, one seq after the other whatever the other appenders did, and one transaction (one time).
                Assert.Equal(written[0].Seq + k, written[k].Seq);
                Assert.Equal(written[0].Time, written[k].Time);
                Assert.Equal(inputs[k].Action, written[k].Action);
                Assert.Equal(inputs[k].RequestHash, written[k].RequestHash);
            }
        }

        Assert.Equal(260, (await store.Audit.GetHeadAsync()).Seq);
        Assert.True((await store.Audit.VerifyAsync()).Ok);
        Assert.Equal(StorageErrorKind.InvalidArgument, (await Assert.ThrowsAsync<StorageException>(() => store.Audit.AppendAllAsync([]))).Kind);
        Assert.Equal(StorageErrorKind.InvalidArgument,
            (await Assert.ThrowsAsync<StorageException>(() => store.Audit.AppendAllAsync([Entry(1), Entry(2) with { Actor = "a\nb" }]))).Kind);
        Assert.Equal(260, (await store.Audit.GetHeadAsync()).Seq); // a bad entry fails the whole group before anything is queued
    }

    [Fact]
    public async Task Audit_lazy_entry_rides_in_the_next_commit_or_is_committed_alone_after_its_delay_or_at_close()
    {
        // Nothing else appended: the lazy entry waits (its delay here is an hour) and the next append commits it.
        await using TestLocation loc = await Harness.NewLocationAsync();
        using SoftwareSigningKey identity = SignatureSchemes.Ed25519.GenerateKey(random: TestSeed.For("key@lazy"));
        await using (IConclaveStore store = await loc.OpenAsync(new StoreOptions { CheckpointSigner = identity, LazyAuditDelay = TimeSpan.FromHours(1) }))
        {
            Task<AuditEntry> lazy = store.Audit.AppendLazilyAsync(Entry(1));
            await Task.Delay(200);
            Assert.False(lazy.IsCompleted);
            AuditEntry urgent = await store.Audit.AppendAsync(Entry(2));
            AuditEntry rode = await lazy;
            Assert.Equal(rode.Seq + 1, urgent.Seq);
            Assert.Equal(rode.Time, urgent.Time); // one transaction

            // Closing the store commits a lazy entry still waiting.
            _ = store.Audit.AppendLazilyAsync(Entry(3));
        }

        await using (IConclaveStore store = await loc.OpenAsync(new StoreOptions { CheckpointSigner = identity, LazyAuditDelay = TimeSpan.FromMilliseconds(10) }))
        {
            Assert.Equal(3, (await store.Audit.GetHeadAsync()).Seq);

            // With nothing else to ride with, it is committed alone once its delay has passed.
            AuditEntry alone = await store.Audit.AppendLazilyAsync(Entry(4)).WaitAsync(TimeSpan.FromSeconds(60));
            Assert.Equal(4, alone.Seq);
            Assert.True((await store.Audit.VerifyAsync()).Ok);
        }
    }

    [Fact]
    public async Task Audit_rejects_fields_that_could_smuggle_secrets_or_break_lines()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using IConclaveStore store = await loc.OpenAsync();
        Assert.Equal(StorageErrorKind.InvalidArgument, (await Assert.ThrowsAsync<StorageException>(() => store.Audit.AppendAsync(Entry(1) with { RequestHash = new byte[64] }))).Kind);
        Assert.Equal(StorageErrorKind.InvalidArgument, (await Assert.ThrowsAsync<StorageException>(() => store.Audit.AppendAsync(Entry(1) with { Actor = "a\nb" }))).Kind);
        Assert.Equal(StorageErrorKind.InvalidArgument, (await Assert.ThrowsAsync<StorageException>(() => store.Audit.AppendAsync(Entry(1) with { Result = new string('x', 300) }))).Kind);
        Assert.Equal(0, (await store.Audit.GetHeadAsync()).Seq);
        Assert.True((await store.Audit.VerifyAsync()).Ok);
    }

    [Fact]
    public async Task Tamper_changed_field_is_detected()
    {
        var (loc, _) = await SeededLogAsync();
        await using (loc)
        {
            await loc.ExecAsync("UPDATE audit_entries SET actor='mallory' WHERE seq=40");
            AuditVerificationResult r = await VerifyAsync(loc);
            Assert.False(r.Ok);
            Assert.Equal((40L, AuditTamperKind.Changed), (r.FirstBadSeq!.Value, r.Kind));
            Assert.Contains("FAILED at seq 40", r.ToString(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Tamper_changed_and_rehashed_entry_is_detected()
    {
        var (loc, _) = await SeededLogAsync();
        await using (loc)
        {
            AuditEntry e = await ReadEntryAsync(loc, 40);
            byte[] forged = AuditHashing.Hash(40, e.Time.ToUnixTimeMilliseconds(), "mallory", e.Action, e.KeyId, e.RequestHash, e.Decision, e.Result, e.PrevHash);
            await loc.ExecAsync("UPDATE audit_entries SET actor='mallory', hash=@h WHERE seq=40", ("@h", forged));
            AuditVerificationResult r = await VerifyAsync(loc);
            Assert.Equal((false, 40L, AuditTamperKind.Changed), (r.Ok, r.FirstBadSeq!.Value, r.Kind));
        }
    }

    [Fact]
    public async Task Tamper_deleted_entry_is_detected()
    {
        var (loc, _) = await SeededLogAsync();
        await using (loc)
        {
            await loc.ExecAsync("DELETE FROM audit_entries WHERE seq=40");
            AuditVerificationResult r = await VerifyAsync(loc);
            Assert.Equal((false, 40L, AuditTamperKind.Deleted), (r.Ok, r.FirstBadSeq!.Value, r.Kind));
        }
    }

    [Fact]
    public async Task Tamper_deleted_and_renumbered_entry_is_detected()
    {
        var (loc, _) = await SeededLogAsync();
        await using (loc)
        {
            await loc.ExecAsync("DELETE FROM audit_entries WHERE seq=40");
            await ShiftSeqAsync(loc, 41, -1);
            AuditVerificationResult r = await VerifyAsync(loc);
            Assert.Equal((false, 40L, AuditTamperKind.Deleted), (r.Ok, r.FirstBadSeq!.Value, r.Kind));
        }
    }

    [Fact]
    public async Task Tamper_deleted_tail_is_detected()
    {
        var (loc, _) = await SeededLogAsync();
        await using (loc)
        {
            await loc.ExecAsync("DELETE FROM audit_entries WHERE seq > 90");
            AuditVerificationResult r = await VerifyAsync(loc);
            Assert.Equal((false, 91L, AuditTamperKind.Deleted), (r.Ok, r.FirstBadSeq!.Value, r.Kind));

            // Even with the head rewritten to match, the signed checkpoint at 100 still counts the missing entries.
            byte[] h90 = (await ReadEntryAsync(loc, 90)).Hash;
            await loc.ExecAsync("UPDATE audit_head SET seq=90, hash=@h", ("@h", h90));
            r = await VerifyAsync(loc);
            Assert.Equal((false, 91L, AuditTamperKind.Deleted), (r.Ok, r.FirstBadSeq!.Value, r.Kind));
        }
    }

    [Fact]
    public async Task Tamper_inserted_entry_is_detected()
    {
        var (loc, _) = await SeededLogAsync();
        await using (loc)
        {
            AuditEntry e39 = await ReadEntryAsync(loc, 39);
            await ShiftSeqAsync(loc, 40, +1);
            long t = e39.Time.ToUnixTimeMilliseconds();
            byte[] forged = AuditHashing.Hash(40, t, "mallory", "release-collateral", "k1", null, "allow", "ok", e39.Hash);
            await loc.ExecAsync("INSERT INTO audit_entries (seq, time, actor, action, key_id, request_hash, decision, result, prev_hash, hash) VALUES (40, @t, 'mallory', 'release-collateral', 'k1', NULL, 'allow', 'ok', @p, @h)",
                ("@t", t), ("@p", e39.Hash), ("@h", forged));
            AuditVerificationResult r = await VerifyAsync(loc);
            Assert.Equal((false, 40L, AuditTamperKind.Inserted), (r.Ok, r.FirstBadSeq!.Value, r.Kind));
        }
    }

    [Fact]
    public async Task Tamper_appended_forged_entry_is_detected()
    {
        var (loc, _) = await SeededLogAsync();
        await using (loc)
        {
            AuditEntry last = await ReadEntryAsync(loc, 100);
            long t = last.Time.ToUnixTimeMilliseconds();
            byte[] forged = AuditHashing.Hash(101, t, "mallory", "sign", null, null, "allow", "ok", last.Hash);
            await loc.ExecAsync("INSERT INTO audit_entries (seq, time, actor, action, key_id, request_hash, decision, result, prev_hash, hash) VALUES (101, @t, 'mallory', 'sign', NULL, NULL, 'allow', 'ok', @p, @h)",
                ("@t", t), ("@p", last.Hash), ("@h", forged));
            AuditVerificationResult r = await VerifyAsync(loc);
            Assert.Equal((false, 101L, AuditTamperKind.Inserted), (r.Ok, r.FirstBadSeq!.Value, r.Kind));
        }
    }

    [Fact]
    public async Task Tamper_reordered_entries_are_detected()
    {
        var (loc, _) = await SeededLogAsync();
        await using (loc)
        {
            await loc.ExecAsync("UPDATE audit_entries SET seq=-1 WHERE seq=40");
            await loc.ExecAsync("UPDATE audit_entries SET seq=40 WHERE seq=41");
            await loc.ExecAsync("UPDATE audit_entries SET seq=41 WHERE seq=-1");
            AuditVerificationResult r = await VerifyAsync(loc);
            Assert.Equal((false, 40L, AuditTamperKind.Reordered), (r.Ok, r.FirstBadSeq!.Value, r.Kind));
        }
    }

    [Fact]
    public async Task Tamper_rewritten_tail_is_caught_by_the_signed_checkpoint()
    {
        var (loc, _) = await SeededLogAsync();
        await using (loc)
        {
            // The attacker changes entry 60 and recomputes every later hash and the head: only a signature can tell.
            byte[] prev = (await ReadEntryAsync(loc, 59)).Hash;
            for (long s = 60; s <= AuditEntries; s++)
            {
                AuditEntry e = await ReadEntryAsync(loc, s);
                string actor = s == 60 ? "mallory" : e.Actor;
                byte[] h = AuditHashing.Hash(s, e.Time.ToUnixTimeMilliseconds(), actor, e.Action, e.KeyId, e.RequestHash, e.Decision, e.Result, prev);
                await loc.ExecAsync("UPDATE audit_entries SET actor=@a, prev_hash=@p, hash=@h WHERE seq=@s", ("@a", actor), ("@p", prev), ("@h", h), ("@s", s));
                prev = h;
            }

            await loc.ExecAsync("UPDATE audit_head SET hash=@h", ("@h", prev));
            AuditVerificationResult r = await VerifyAsync(loc);
            Assert.Equal((false, 75L, AuditTamperKind.Changed), (r.Ok, r.FirstBadSeq!.Value, r.Kind));
        }
    }

    [Fact]
    public async Task Tamper_forged_or_foreign_checkpoint_is_detected()
    {
        var (loc, nodeKey) = await SeededLogAsync();
        await using (loc)
        {
            using SoftwareSigningKey other = SignatureSchemes.Ed25519.GenerateKey(random: TestSeed.For("key@243"));
            AuditVerificationResult r = await VerifyAsync(loc, other.PublicKey.ToArray());
            Assert.Equal((false, 25L, AuditTamperKind.BadCheckpoint), (r.Ok, r.FirstBadSeq!.Value, r.Kind));
            Assert.True((await VerifyAsync(loc, nodeKey)).Ok);

            byte[] sig = (byte[])(await loc.ScalarAsync("SELECT signature FROM audit_checkpoints WHERE seq=50"))!;
            sig[3] ^= 0x40;
            await loc.ExecAsync("UPDATE audit_checkpoints SET signature=@s WHERE seq=50", ("@s", sig));
            r = await VerifyAsync(loc);
            Assert.Equal((false, 50L, AuditTamperKind.BadCheckpoint), (r.Ok, r.FirstBadSeq!.Value, r.Kind));
        }
    }

    [Fact]
    public async Task Audit_checkpoint_on_demand()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        using SoftwareSigningKey identity = SignatureSchemes.EcdsaSecp256k1.GenerateKey(random: TestSeed.For("key@260"));
        await using IConclaveStore store = await loc.OpenAsync(new StoreOptions { CheckpointSigner = identity, CheckpointInterval = 0 });
        Assert.Null(await store.Audit.CheckpointAsync());
        await AppendManyAsync(store, 7);
        AuditCheckpoint cp = (await store.Audit.CheckpointAsync())!;
        Assert.Equal(7, cp.Seq);
        Assert.Equal("ecdsa-secp256k1", cp.Scheme);
        var r = await store.Audit.VerifyAsync(new AuditVerifyOptions { TrustedCheckpointKey = identity.PublicKey.ToArray() });
        Assert.True(r.Ok, r.ToString());
        Assert.Equal(1, r.CheckpointsChecked);
    }
}
