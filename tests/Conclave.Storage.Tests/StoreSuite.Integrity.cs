using Conclave.Crypto.Signing;
using Conclave.Storage.Audit;
using Conclave.Storage.Internal;
using Conclave.Storage.Keys;
using Conclave.Testing;

namespace Conclave.Storage.Tests;

/// <summary>Issue 14 items 6 (audit truncation, signed head, anchors) and 7 (key metadata integrity), on both engines.</summary>
public abstract partial class StoreSuite
{
    private static async Task<AuditVerificationResult> VerifyWithAsync(TestLocation loc, AuditVerifyOptions options)
    {
        await using IConclaveStore store = await loc.OpenAsync(new StoreOptions { ReadOnly = true });
        return await store.Audit.VerifyAsync(options);
    }

    /// <summary>Rewrites entries from..to with recomputed hashes (changing the actor of the first) and the head's hash.</summary>
    private static async Task RewriteTailAsync(TestLocation loc, long from, long to)
    {
        byte[] prev = (await ReadEntryAsync(loc, from - 1)).Hash;
        for (long s = from; s <= to; s++)
        {
            AuditEntry e = await ReadEntryAsync(loc, s);
            string actor = s == from ? "mallory" : e.Actor;
            byte[] h = AuditHashing.Hash(s, e.Time.ToUnixTimeMilliseconds(), actor, e.Action, e.KeyId, e.RequestHash, e.Decision, e.Result, prev);
            await loc.ExecAsync("UPDATE audit_entries SET actor=@a, prev_hash=@p, hash=@h WHERE seq=@s", ("@a", actor), ("@p", prev), ("@h", h), ("@s", s));
            prev = h;
        }

        await loc.ExecAsync("UPDATE audit_head SET seq=@s, hash=@h", ("@s", to), ("@h", prev));
    }

    [Fact]
    public async Task Audit_signed_log_verifies_with_a_signed_head()
    {
        var (loc, nodeKey) = await SeededLogAsync();
        await using (loc)
        {
            AuditVerificationResult r = await VerifyAsync(loc, nodeKey);
            Assert.True(r.Ok, r.ToString());
            Assert.True(r.HeadSigned);
            Assert.Equal(4, r.CheckpointsChecked);
            Assert.Contains("head signed", r.ToString(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Tamper_deleted_trailing_checkpoints_and_rewritten_tail_and_head_are_detected()
    {
        var (loc, _) = await SeededLogAsync();
        await using (loc)
        {
            // Before issue 14 item 6 only existing checkpoints were checked: deleting them hid the rewrite.
            await loc.ExecAsync("DELETE FROM audit_checkpoints WHERE seq >= 75");
            await RewriteTailAsync(loc, 60, AuditEntries);
            AuditVerificationResult r = await VerifyAsync(loc);
            Assert.Equal((false, 75L, AuditTamperKind.MissingCheckpoint), (r.Ok, r.FirstBadSeq!.Value, r.Kind));
            Assert.Contains("FAILED at seq 75: missing checkpoint", r.ToString(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Tamper_rewrite_after_the_last_checkpoint_is_caught_by_the_signed_head()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        using SoftwareSigningKey identity = SignatureSchemes.Ed25519.GenerateKey(random: TestSeed.For("key@66"));
        await using (IConclaveStore store = await loc.OpenAsync(new StoreOptions { CheckpointSigner = identity, CheckpointInterval = Interval }))
        {
            await AppendManyAsync(store, 60);
            await AppendManyAsync(store, 50, 60); // head 110, last checkpoint 100
        }

        Assert.True((await VerifyAsync(loc, identity.PublicKey.ToArray())).Ok);

        // Before issue 14 item 6 the head was unsigned: a rewrite after the last checkpoint that recomputed it passed.
        await RewriteTailAsync(loc, 104, 110);
        AuditVerificationResult r = await VerifyAsync(loc);
        Assert.Equal((false, 110L, AuditTamperKind.BadCheckpoint), (r.Ok, r.FirstBadSeq!.Value, r.Kind));
        Assert.Contains("head's signature does not verify", r.Detail, StringComparison.Ordinal);

        // Truncating instead (entries after 102 deleted, head moved back) fails the same way, at the new head.
        await loc.ExecAsync("DELETE FROM audit_entries WHERE seq > 102");
        await loc.ExecAsync("UPDATE audit_head SET seq=102, hash=@h", ("@h", (await ReadEntryAsync(loc, 102)).Hash));
        r = await VerifyAsync(loc);
        Assert.Equal((false, 102L, AuditTamperKind.BadCheckpoint), (r.Ok, r.FirstBadSeq!.Value, r.Kind));
    }

    [Fact]
    public async Task Audit_unsigned_head_fails_unless_allowed_and_a_signed_log_needs_its_signer()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using (IConclaveStore store = await loc.OpenAsync())
        {
            await AppendManyAsync(store, 5);
        }

        AuditVerificationResult r = await VerifyWithAsync(loc, new AuditVerifyOptions());
        Assert.Equal((false, 5L, AuditTamperKind.Unsigned), (r.Ok, r.FirstBadSeq!.Value, r.Kind));
        r = await VerifyWithAsync(loc, new AuditVerifyOptions { AllowUnsigned = true });
        Assert.True(r.Ok, r.ToString());
        Assert.Contains("head NOT signed", r.ToString(), StringComparison.Ordinal);

        var (signed, _) = await SeededLogAsync();
        await using (signed)
        {
            // Removing the head's signature does not make the log "unsigned" in a way verification accepts by default.
            await signed.ExecAsync("UPDATE audit_head SET checkpoint_interval=NULL, checkpoints_from=NULL, signature=NULL");
            Assert.Equal(AuditTamperKind.Unsigned, (await VerifyWithAsync(signed, new AuditVerifyOptions())).Kind);
        }

        var (signed2, _) = await SeededLogAsync();
        await using (signed2)
        {
            await using IConclaveStore store = await signed2.OpenAsync();
            var e = await Assert.ThrowsAsync<StorageException>(() => store.Audit.AppendAsync(Entry(1)));
            Assert.Contains("checkpoint signer", e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Audit_anchor_from_an_earlier_point_still_verifies_after_more_appends_and_catches_a_rollback()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        using SoftwareSigningKey identity = SignatureSchemes.Ed25519.GenerateKey(random: TestSeed.For("key@124"));
        string anchorJson;
        object?[] headAt40;
        await using (IConclaveStore store = await loc.OpenAsync(new StoreOptions { CheckpointSigner = identity, CheckpointInterval = Interval }))
        {
            await AppendManyAsync(store, 40);
            headAt40 = await ReadHeadRowAsync(loc);
            await AppendManyAsync(store, 10, 40);
            AuditAnchor anchor = await store.Audit.GetAnchorAsync();
            Assert.Equal(50, anchor.Seq);
            Assert.True(anchor.VerifySignature());
            anchorJson = anchor.ToJson();
            await AppendManyAsync(store, 50, 50);
        }

        AuditAnchor parsed = AuditAnchor.Parse(anchorJson);
        Assert.Equal(50L, parsed.Seq);
        Assert.Equal(identity.PublicKey.ToArray(), parsed.PublicKey);
        AuditVerificationResult r = await VerifyWithAsync(loc, new AuditVerifyOptions { Anchor = parsed });
        Assert.True(r.Ok, r.ToString());
        Assert.Equal(50L, r.AnchorSeq);
        Assert.Contains("contains anchor seq 50", r.ToString(), StringComparison.Ordinal);

        // Roll back to seq 40 with the head row (and its genuine signature) captured then: checkpoints and head agree,
        // so only the anchor can tell.
        await loc.ExecAsync("DELETE FROM audit_entries WHERE seq > 40");
        await loc.ExecAsync("DELETE FROM audit_checkpoints WHERE seq > 40");
        await loc.ExecAsync("UPDATE audit_head SET seq=@s, hash=@h, checkpoint_interval=@i, checkpoints_from=@f, signed_time=@t, scheme=@sc, public_key=@pk, signature=@sig",
            ("@s", headAt40[0]), ("@h", headAt40[1]), ("@i", headAt40[2]), ("@f", headAt40[3]), ("@t", headAt40[4]), ("@sc", headAt40[5]), ("@pk", headAt40[6]), ("@sig", headAt40[7]));
        Assert.True((await VerifyWithAsync(loc, new AuditVerifyOptions())).Ok);
        r = await VerifyWithAsync(loc, new AuditVerifyOptions { Anchor = parsed });
        Assert.Equal((false, 41L, AuditTamperKind.AnchorMismatch), (r.Ok, r.FirstBadSeq!.Value, r.Kind));
        Assert.Contains("anchor mismatch", r.ToString(), StringComparison.Ordinal);

        // An anchor whose signature does not verify is refused.
        AuditAnchor forged = parsed with { Seq = 40 };
        Assert.Equal(AuditTamperKind.AnchorMismatch, (await VerifyWithAsync(loc, new AuditVerifyOptions { Anchor = forged })).Kind);
        Assert.Equal(StorageErrorKind.InvalidArgument, Assert.Throws<StorageException>(() => AuditAnchor.Parse("{\"seq\": 1}")).Kind);
    }

    private static async Task<object?[]> ReadHeadRowAsync(TestLocation loc)
    {
        await using IConclaveStore store = await loc.OpenAsync(new StoreOptions { ReadOnly = true });
        AuditAnchor a = await store.Audit.GetAnchorAsync();
        return [a.Seq, a.Hash, a.CheckpointInterval, a.CheckpointsFrom, a.Time.ToUnixTimeMilliseconds(), a.Scheme, a.PublicKey, a.Signature];
    }

    // ---- item 7: key metadata integrity ----

    public static TheoryData<string, string> TamperedKeyColumns => new()
    {
        { "public_key", "UPDATE keys SET public_key=@v WHERE id='k1'" },
        { "name", "UPDATE keys SET name='treasury-2' WHERE id='k1'" },
        { "scheme", "UPDATE keys SET scheme='ecdsa-secp256k1' WHERE id='k1'" },
        { "state", "UPDATE keys SET state='Disabled' WHERE id='k1'" },
        { "threshold", "UPDATE keys SET threshold=1, participants=1 WHERE id='k1'" },
        { "labels", "UPDATE keys SET labels='{\"desk\":\"spot\"}' WHERE id='k1'" },
        { "mac", "UPDATE keys SET mac=NULL WHERE id='k1'" },
        { "holders", "UPDATE keys SET holders='1,2,4' WHERE id='k1'" },
    };

    [Fact]
    public async Task Key_record_holders_changed_or_cleared_by_sql_are_refused()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using (IConclaveStore store = await loc.OpenAsync(WithPassphrase()))
        {
            using var m = Secret(1);
            await store.Keys.CreateAsync(SampleKey("k1", "treasury") with { Threshold = 2, Participants = 3, Holders = [1, 2, 3] }, m);
        }

        // Moving a key off a node in the database (so an eviction would miss it), or erasing its holders, breaks the MAC.
        foreach (string sql in new[] { "UPDATE keys SET holders='1,2,4' WHERE id='k1'", "UPDATE keys SET holders=NULL WHERE id='k1'" })
        {
            object? saved = await loc.ScalarAsync("SELECT holders FROM keys WHERE id='k1'");
            await loc.ExecAsync(sql);
            await using (IConclaveStore store = await loc.OpenAsync(WithPassphrase()))
            {
                foreach (Func<Task> read in new Func<Task>[] { () => store.Keys.GetAsync("k1"), () => store.Keys.ListAsync(), () => store.Keys.RecordHoldersAsync("k1", 1, [1, 2, 3]) })
                {
                    Assert.Equal(StorageErrorKind.IntegrityCheckFailed, (await Assert.ThrowsAsync<StorageException>(read)).Kind);
                }
            }

            await loc.ExecAsync("UPDATE keys SET holders='1,2,3' WHERE id='k1'");
            await using (IConclaveStore store = await loc.OpenAsync(WithPassphrase()))
            {
                Assert.Equal([1u, 2u, 3u], (await store.Keys.GetAsync("k1"))!.Holders); // put back, it verifies again
            }

            Assert.Equal("1,2,3", saved);
        }
    }

    [Theory]
    [MemberData(nameof(TamperedKeyColumns))]
    public async Task Key_record_changed_by_sql_is_refused(string column, string sql)
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using (IConclaveStore store = await loc.OpenAsync(WithPassphrase()))
        {
            using var m = Secret(1);
            await store.Keys.CreateAsync(SampleKey("k1", "treasury") with { Threshold = 2, Participants = 3 }, m);
            await store.Keys.CreateAsync(SampleKey("k2", "other"));
        }

        await loc.ExecAsync(sql, ("@v", Bytes(32, 99)));
        await using (IConclaveStore store = await loc.OpenAsync(WithPassphrase()))
        {
            string name = column == "name" ? "treasury-2" : "treasury";
            foreach (Func<Task> read in new Func<Task>[]
            {
                () => store.Keys.GetAsync("k1"), () => store.Keys.GetByNameAsync(name), () => store.Keys.ListAsync(),
                () => store.Keys.SetStateAsync("k1", KeyState.Active), () => store.Keys.SetLabelsAsync("k1", new Dictionary<string, string>()),
                () => store.Keys.RotateAsync("k1", 1, Bytes(32, 5)),
            })
            {
                var e = await Assert.ThrowsAsync<StorageException>(read);
                Assert.Equal(StorageErrorKind.IntegrityCheckFailed, e.Kind);
                Assert.Contains("key 'k1'", e.Message, StringComparison.Ordinal);
                Assert.Contains("integrity check", e.Message, StringComparison.Ordinal);
            }

            Assert.Equal("other", (await store.Keys.GetAsync("k2"))!.Name); // the other key is unaffected
        }
    }

    [Fact]
    public async Task Key_record_mac_follows_every_write_kek_rotation_and_migration_backfill()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using (IConclaveStore store = await loc.OpenAsync(WithPassphrase()))
        {
            using (var m = Secret(1))
            {
                await store.Keys.CreateAsync(SampleKey("k1", "treasury"), m);
            }

            await store.Keys.SetStateAsync("k1", KeyState.Disabled);
            await store.Keys.SetLabelsAsync("k1", new Dictionary<string, string> { ["desk"] = "spot" });
            using (var m = Secret(2))
            {
                await store.Keys.RotateAsync("k1", 1, Bytes(32, 7), m);
            }

            await store.RotateKekAsync(EngineHarness.Passphrase("new passphrase"));
        }

        await using (IConclaveStore store = await loc.OpenAsync(WithPassphrase("new passphrase")))
        {
            KeyRecord k = (await store.Keys.GetAsync("k1"))!;
            Assert.Equal((2, KeyState.Disabled, "spot"), (k.Version, k.State, k.Labels["desk"]));
            Assert.Equal(Bytes(32, 7), k.PublicKey);
        }

        // A row written before migration 2 has no MAC: the first unlocked open computes it, once.
        await loc.ExecAsync("UPDATE keys SET mac=NULL");
        await loc.ExecAsync("INSERT INTO store_meta (name, value) VALUES ('key_mac_backfill', 'pending')");
        await using (IConclaveStore store = await loc.OpenAsync(WithPassphrase("new passphrase")))
        {
            Assert.Equal("treasury", (await store.Keys.GetAsync("k1"))!.Name);
        }

        Assert.Null(await loc.ScalarAsync("SELECT value FROM store_meta WHERE name='key_mac_backfill'"));
        Assert.Equal(32, ((byte[])(await loc.ScalarAsync("SELECT mac FROM keys WHERE id='k1'"))!).Length);

        // Afterwards, a missing MAC is tampering, not a migration.
        await loc.ExecAsync("UPDATE keys SET mac=NULL");
        await using (IConclaveStore store = await loc.OpenAsync(WithPassphrase("new passphrase")))
        {
            Assert.Equal(StorageErrorKind.IntegrityCheckFailed, (await Assert.ThrowsAsync<StorageException>(() => store.Keys.GetAsync("k1"))).Kind);
        }
    }
}
