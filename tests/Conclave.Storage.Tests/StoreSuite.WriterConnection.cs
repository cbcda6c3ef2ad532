using Conclave.Crypto.Signing;
using Conclave.Storage.Audit;
using Conclave.Testing;
using Conclave.Storage.Policy;

namespace Conclave.Storage.Tests;

/// <summary>
/// The audit writer commits every batch (and the velocity reservations that ride in it) on one long-lived connection with
/// its statements compiled once: a schema change made by another connection is seen at once, and a failed commit drops
/// that connection so the next batch starts on a fresh one.
/// </summary>
public abstract partial class StoreSuite
{
    [Fact]
    public async Task The_audit_writers_connection_sees_a_schema_change_and_recovers_after_failed_commits()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        using SoftwareSigningKey identity = SignatureSchemes.Ed25519.GenerateKey(random: TestSeed.For("writer-connection"));
        // A signed log with a checkpoint every third entry: the head signature and checkpoints run on the connection too.
        await using IConclaveStore store = await loc.OpenAsync(new StoreOptions { Kek = EngineHarness.Passphrase(), CheckpointSigner = identity, CheckpointInterval = 3 });
        AuditEntryInput[] entries = [new("agent-1", "sign.accepted", "k1", new byte[32], "accepted", "sign"), new("agent-1", "policy.decide", "k1", new byte[32], "allow", "ok")];
        CounterReservation limit = CountOne("writer/conn", 100);

        // Warm: every statement of a batch and of a reservation has run on the writer's connection.
        for (int i = 0; i < 3; i++)
        {
            Assert.NotNull(await store.PolicyCounters.TryReserveAndAppendAsync([limit], s_counterNow, entries));
            _ = await store.Audit.AppendAllAsync(entries);
        }

        long before = (await store.Audit.GetHeadAsync()).Seq;
        // Another connection makes the audit table refuse inserts (as a broken database would).
        await loc.ExecAsync(Harness.Engine == StoreEngine.Sqlite
            ? "CREATE TRIGGER audit_down BEFORE INSERT ON audit_entries BEGIN SELECT RAISE(ABORT, 'audit down'); END;"
            : "CREATE FUNCTION audit_down() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'audit down'; END $$ LANGUAGE plpgsql; "
              + "CREATE TRIGGER audit_down BEFORE INSERT ON audit_entries FOR EACH ROW EXECUTE FUNCTION audit_down();");
        for (int i = 0; i < 2; i++)
        {
            await Assert.ThrowsAsync<StorageException>(() => store.Audit.AppendAllAsync(entries));
            await Assert.ThrowsAsync<StorageException>(() => store.PolicyCounters.TryReserveAndAppendAsync([limit], s_counterNow, entries));
        }

        Assert.Equal(3, (await store.PolicyCounters.ReadAsync(limit.CounterKey, limit.WindowSeconds, s_counterNow)).Count); // the refused reservations left nothing
        Assert.Equal(before, (await store.Audit.GetHeadAsync()).Seq);

        await loc.ExecAsync("DROP TRIGGER audit_down" + (Harness.Engine == StoreEngine.Sqlite ? ";" : " ON audit_entries; DROP FUNCTION audit_down();"));
        Assert.NotNull(await store.PolicyCounters.TryReserveAndAppendAsync([limit], s_counterNow, entries));
        _ = await store.Audit.AppendAllAsync(entries);
        Assert.Equal(4, (await store.PolicyCounters.ReadAsync(limit.CounterKey, limit.WindowSeconds, s_counterNow)).Count);
        Assert.Equal(before + 4, (await store.Audit.GetHeadAsync()).Seq); // two entries with the reservation, two alone
        AuditVerificationResult verified = await store.Audit.VerifyAsync(new AuditVerifyOptions { TrustedCheckpointKey = identity.PublicKey.ToArray() });
        Assert.True(verified.Ok, verified.Detail);
    }
}
