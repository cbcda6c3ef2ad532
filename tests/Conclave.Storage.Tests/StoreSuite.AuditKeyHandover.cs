using Conclave.Crypto.Signing;
using Conclave.Storage.Audit;
using Conclave.Testing;

namespace Conclave.Storage.Tests;

/// <summary>Rotating the audit log's checkpoint key (docs/STORAGE.md "Rotating the checkpoint key").</summary>
public abstract partial class StoreSuite
{
    private static AuditVerifyOptions Pinned(ISigningKey key) => new() { TrustedCheckpointKey = key.PublicKey.ToArray() };

    [Fact]
    public async Task Audit_checkpoint_key_hands_over_and_the_log_verifies_pinned_to_either_key_and_with_anchors_from_both_sides()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        using SoftwareSigningKey a = SignatureSchemes.Ed25519.GenerateKey(random: TestSeed.For("a"));
        using SoftwareSigningKey b = SignatureSchemes.Ed25519.GenerateKey(random: TestSeed.For("b"));
        using SoftwareSigningKey stranger = SignatureSchemes.Ed25519.GenerateKey(random: TestSeed.For("stranger"));
        AuditAnchor before, after;
        await using (IConclaveStore store = await loc.OpenAsync(new StoreOptions { CheckpointSigner = a, CheckpointInterval = 10 }))
        {
            await AppendManyAsync(store, 25);
            before = await store.Audit.GetAnchorAsync();
            AuditEntry? handover = await store.Audit.HandOverCheckpointKeyAsync(b, "admin");
            Assert.NotNull(handover);
            Assert.Equal(26, handover.Seq);
            Assert.Equal(AuditKeyHandover.Action, handover.Action);
            Assert.True(AuditKeyHandover.TryParse(handover.Result, out AuditKeyHandover? parsed));
            Assert.Equal(a.PublicKey.ToArray(), parsed!.OldPublicKey);
            Assert.Equal(b.PublicKey.ToArray(), parsed.NewPublicKey);
            Assert.True(parsed.Verify(handover.PrevHash));
            Assert.False(parsed.Verify(handover.Hash)); // bound to its place in the chain
            Assert.Equal(b.PublicKey.ToArray(), store.Audit.CheckpointPublicKey!.Value.ToArray());
            await AppendManyAsync(store, 24, 100);
            after = await store.Audit.GetAnchorAsync();

            IReadOnlyList<AuditCheckpoint> checkpoints = await store.Audit.GetCheckpointsAsync();
            Assert.Equal([10L, 20, 30, 40, 50], checkpoints.Select(k => k.Seq));
            Assert.All(checkpoints.Where(k => k.Seq < 26), k => Assert.Equal(a.PublicKey.ToArray(), k.PublicKey));
            Assert.All(checkpoints.Where(k => k.Seq > 26), k => Assert.Equal(b.PublicKey.ToArray(), k.PublicKey));
            Assert.Equal(a.PublicKey.ToArray(), before.PublicKey);
            Assert.Equal(b.PublicKey.ToArray(), after.PublicKey);

            foreach (AuditVerifyOptions o in (AuditVerifyOptions[])[Pinned(a), Pinned(b), new() { Anchor = before }, new() { Anchor = after },
                new() { Anchor = before, TrustedCheckpointKey = b.PublicKey.ToArray() }, new()])
            {
                AuditVerificationResult r = await store.Audit.VerifyAsync(o);
                Assert.True(r.Ok, r.ToString());
                Assert.Equal(50, r.EntriesChecked);
                Assert.Equal(5, r.CheckpointsChecked);
            }

            // Positive control above; a key that never signed this log is refused as the pin.
            AuditVerificationResult wrong = await store.Audit.VerifyAsync(Pinned(stranger));
            Assert.False(wrong.Ok);
            Assert.Equal(AuditTamperKind.BadCheckpoint, wrong.Kind);
            Assert.Contains("not one of the log's checkpoint keys", wrong.Detail, StringComparison.Ordinal);
        }

        // Reopened with the new key: appends and verifies.
        await using (IConclaveStore store = await loc.OpenAsync(new StoreOptions { CheckpointSigner = b }))
        {
            Assert.Equal(51, (await store.Audit.AppendAsync(Entry(1))).Seq);
            Assert.True((await store.Audit.VerifyAsync(Pinned(a))).Ok);
        }

        // Reopened with the old key (a replica or a process that was not given the new key): appends are refused, the log is untouched.
        await using (IConclaveStore store = await loc.OpenAsync(new StoreOptions { CheckpointSigner = a }))
        {
            StorageException refused = await Assert.ThrowsAsync<StorageException>(() => store.Audit.AppendAsync(Entry(2)));
            Assert.Contains("was handed over to", refused.Message, StringComparison.Ordinal);
            Assert.Equal(51, (await store.Audit.GetHeadAsync()).Seq);

            // Started again between the handover and promoting its key file: the handover is not repeated, the signer switches.
            Assert.Null(await store.Audit.HandOverCheckpointKeyAsync(b, "admin"));
            Assert.Equal(52, (await store.Audit.AppendAsync(Entry(3))).Seq);
            AuditVerificationResult r = await store.Audit.VerifyAsync(Pinned(b));
            Assert.True(r.Ok, r.ToString());
            Assert.Single(await store.Audit.ReadAsync(1, 100), e => e.Action == AuditKeyHandover.Action);
        }
    }

    [Fact]
    public async Task Audit_checkpoint_key_handover_by_a_key_that_was_not_in_effect_fails_verification_pinned_or_not()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        using SoftwareSigningKey a = SignatureSchemes.Ed25519.GenerateKey(random: TestSeed.For("a"));
        using SoftwareSigningKey b = SignatureSchemes.Ed25519.GenerateKey(random: TestSeed.For("b"));
        using SoftwareSigningKey x = SignatureSchemes.Ed25519.GenerateKey(random: TestSeed.For("x"));
        using SoftwareSigningKey y = SignatureSchemes.Ed25519.GenerateKey(random: TestSeed.For("y"));
        await using (IConclaveStore store = await loc.OpenAsync(new StoreOptions { CheckpointSigner = a, CheckpointInterval = 10 }))
        {
            await AppendManyAsync(store, 20);
            Assert.NotNull(await store.Audit.HandOverCheckpointKeyAsync(b, "admin")); // seq 21, genuine
            await AppendManyAsync(store, 9, 100);
            Assert.True((await store.Audit.VerifyAsync(Pinned(a))).Ok); // positive control
        }

        // Someone with write access to the database but neither a nor b "hands over" from a key of theirs to another of
        // theirs. The store refuses to append with a key other than the one handed over to (positive control of that
        // guard first), so they write the head's key column themselves, as a direct writer of the database could.
        await using (IConclaveStore store = await loc.OpenAsync(new StoreOptions { CheckpointSigner = x }))
        {
            await Assert.ThrowsAsync<StorageException>(() => store.Audit.HandOverCheckpointKeyAsync(y, "intruder"));
        }

        await loc.ExecAsync("UPDATE audit_head SET public_key=@k WHERE id=1", ("@k", x.PublicKey.ToArray()));
        await using (IConclaveStore store = await loc.OpenAsync(new StoreOptions { CheckpointSigner = x }))
        {
            Assert.Equal(31, (await store.Audit.HandOverCheckpointKeyAsync(y, "intruder"))!.Seq);
            await AppendManyAsync(store, 10, 200);

            foreach (AuditVerifyOptions o in (AuditVerifyOptions[])[Pinned(a), Pinned(b), Pinned(y), new()])
            {
                AuditVerificationResult r = await store.Audit.VerifyAsync(o);
                Assert.False(r.Ok);
                Assert.Equal(31, r.FirstBadSeq);
                Assert.Equal(AuditTamperKind.BadCheckpoint, r.Kind);
                Assert.Contains("made by a key that was not in effect", r.Detail, StringComparison.Ordinal);
            }

            // Pinned to a key that never signed the log: refused before the walk.
            AuditVerificationResult stranger = await store.Audit.VerifyAsync(Pinned(x));
            Assert.False(stranger.Ok);
            Assert.Contains("not one of the log's checkpoint keys", stranger.Detail, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Audit_checkpoint_key_handover_needs_a_signer_and_the_same_scheme()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        using SoftwareSigningKey a = SignatureSchemes.Ed25519.GenerateKey(random: TestSeed.For("a"));
        using SoftwareSigningKey k1 = SignatureSchemes.EcdsaSecp256k1.GenerateKey(random: TestSeed.For("k1"));
        await using (IConclaveStore store = await loc.OpenAsync(new StoreOptions()))
        {
            await Assert.ThrowsAsync<StorageException>(() => store.Audit.HandOverCheckpointKeyAsync(a, "admin"));
        }

        await using (IConclaveStore store = await loc.OpenAsync(new StoreOptions { CheckpointSigner = a }))
        {
            await AppendManyAsync(store, 3);
            StorageException e = await Assert.ThrowsAsync<StorageException>(() => store.Audit.HandOverCheckpointKeyAsync(k1, "admin"));
            Assert.Contains("same scheme", e.Message, StringComparison.Ordinal);
            Assert.True((await store.Audit.VerifyAsync(Pinned(a))).Ok);
            Assert.Equal(3, (await store.Audit.GetHeadAsync()).Seq);
        }
    }
}
