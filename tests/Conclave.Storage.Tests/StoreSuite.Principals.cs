using Conclave.Storage.Principals;

namespace Conclave.Storage.Tests;

/// <summary>Issue 16: principals, credentials and request nonces, on both engines.</summary>
public abstract partial class StoreSuite
{
    private const string AgentScope = "{\"keys\":[\"k1\"],\"labels\":[],\"operations\":[\"liquidate\"]}";

    [Fact]
    public async Task Principals_are_created_listed_disabled_and_shared_by_replicas()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using (IConclaveStore a = await loc.OpenAsync(WithPassphrase()))
        await using (IConclaveStore b = await loc.OpenAsync(WithPassphrase()))
        {
            PrincipalRecord bot = await a.Principals.CreateAsync(new NewPrincipal("liquidator-1", "agent", ["agent"], AgentScope));
            Assert.Equal(("liquidator-1", "agent", false, AgentScope), (bot.Id, bot.Kind, bot.Disabled, bot.Scope));
            Assert.Equal(["agent"], bot.Roles);
            await b.Principals.CreateAsync(new NewPrincipal("alice", "person", ["operator", "approver", "operator"], "{}"));
            Assert.Equal(["approver", "operator"], (await a.Principals.GetAsync("alice"))!.Roles);
            Assert.Equal(["alice", "liquidator-1"], (await b.Principals.ListAsync()).Select(p => p.Id));
            Assert.Null(await a.Principals.GetAsync("nobody"));

            Assert.Equal(StorageErrorKind.Duplicate, (await Assert.ThrowsAsync<StorageException>(() => b.Principals.CreateAsync(new NewPrincipal("alice", "person", ["admin"], "{}")))).Kind);
            Assert.Equal(StorageErrorKind.InvalidArgument, (await Assert.ThrowsAsync<StorageException>(() => a.Principals.CreateAsync(new NewPrincipal("x", "person", [], "{}")))).Kind);
            Assert.Equal(StorageErrorKind.InvalidArgument, (await Assert.ThrowsAsync<StorageException>(() => a.Principals.CreateAsync(new NewPrincipal("x", "person", ["a,b"], "{}")))).Kind);
            Assert.Equal(StorageErrorKind.InvalidArgument, (await Assert.ThrowsAsync<StorageException>(() => a.Principals.CreateAsync(new NewPrincipal("x", "person", ["admin"], "")))).Kind);

            Assert.True((await b.Principals.SetDisabledAsync("liquidator-1", true)).Disabled);
            Assert.True((await a.Principals.GetAsync("liquidator-1"))!.Disabled);
            Assert.Equal(StorageErrorKind.NotFound, (await Assert.ThrowsAsync<StorageException>(() => a.Principals.SetDisabledAsync("nobody", true))).Kind);
        }

        // A restarted server sees the same principals.
        await using IConclaveStore c = await loc.OpenAsync(WithPassphrase());
        Assert.True((await c.Principals.GetAsync("liquidator-1"))!.Disabled);
        Assert.False((await c.Principals.SetDisabledAsync("liquidator-1", false)).Disabled);
    }

    [Fact]
    public async Task Credentials_have_leases_that_renew_and_revocation_is_final()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using IConclaveStore a = await loc.OpenAsync(WithPassphrase());
        await using IConclaveStore b = await loc.OpenAsync(WithPassphrase());
        await a.Principals.CreateAsync(new NewPrincipal("bot", "agent", ["agent"], AgentScope));
        DateTimeOffset now = DateTimeOffset.UtcNow;
        DateTimeOffset lease = now.AddHours(1);
        CredentialRecord cred = await a.Principals.AddCredentialAsync(new NewCredential("bot-key-1", "bot", "ed25519", Bytes(32, 1), lease));
        Assert.Equal(("bot-key-1", "bot", "ed25519", false), (cred.KeyId, cred.PrincipalId, cred.Algorithm, cred.Revoked));
        Assert.Equal(lease.ToUnixTimeMilliseconds(), cred.LeaseExpiresAt.ToUnixTimeMilliseconds());
        Assert.Equal(Bytes(32, 1), cred.PublicKey);
        Assert.True(cred.IsActiveAt(now));
        Assert.False(cred.IsActiveAt(lease)); // lapsed at the lease end

        await b.Principals.AddCredentialAsync(new NewCredential("bot-key-2", "bot", "ecdsa-p256-sha256", Bytes(65, 4), lease));
        Assert.Equal(["bot-key-1", "bot-key-2"], (await a.Principals.ListCredentialsAsync("bot")).Select(k => k.KeyId));
        Assert.Equal(StorageErrorKind.Duplicate, (await Assert.ThrowsAsync<StorageException>(() => b.Principals.AddCredentialAsync(new NewCredential("bot-key-1", "bot", "ed25519", Bytes(32, 2), lease)))).Kind);
        Assert.Equal(StorageErrorKind.NotFound, (await Assert.ThrowsAsync<StorageException>(() => b.Principals.AddCredentialAsync(new NewCredential("k9", "nobody", "ed25519", Bytes(32, 2), lease)))).Kind);

        CredentialRecord renewed = await b.Principals.RenewCredentialAsync("bot-key-1", now.AddDays(2));
        Assert.Equal(now.AddDays(2).ToUnixTimeMilliseconds(), (await a.Principals.GetCredentialAsync("bot-key-1"))!.LeaseExpiresAt.ToUnixTimeMilliseconds());
        Assert.True(renewed.IsActiveAt(now.AddDays(1)));

        CredentialRecord revoked = await a.Principals.RevokeCredentialAsync("bot-key-1");
        Assert.True(revoked.Revoked);
        Assert.NotNull(revoked.RevokedAt);
        Assert.False(revoked.IsActiveAt(now));
        Assert.Equal(revoked.RevokedAt, (await b.Principals.RevokeCredentialAsync("bot-key-1")).RevokedAt); // revoking again keeps the first time
        Assert.Equal(StorageErrorKind.Conflict, (await Assert.ThrowsAsync<StorageException>(() => b.Principals.RenewCredentialAsync("bot-key-1", now.AddDays(9)))).Kind);
        Assert.Equal(StorageErrorKind.NotFound, (await Assert.ThrowsAsync<StorageException>(() => b.Principals.RevokeCredentialAsync("nope"))).Kind);
        Assert.Null(await a.Principals.GetCredentialAsync("nope"));
    }

    [Fact]
    public async Task Principal_and_credential_rows_changed_outside_conclave_are_refused()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using (IConclaveStore s = await loc.OpenAsync(WithPassphrase()))
        {
            await s.Principals.CreateAsync(new NewPrincipal("bot", "agent", ["agent"], AgentScope));
            await s.Principals.AddCredentialAsync(new NewCredential("bot-key", "bot", "ed25519", Bytes(32, 1), DateTimeOffset.UtcNow.AddHours(1)));
            await s.Principals.RevokeCredentialAsync("bot-key");
        }

        // Someone with write access to the database widens the agent's roles and revives its revoked credential.
        await loc.ExecAsync("UPDATE principals SET roles='admin' WHERE id='bot'");
        await loc.ExecAsync("UPDATE principal_credentials SET revoked=0, revoked_at=NULL WHERE key_id='bot-key'");
        await using IConclaveStore t = await loc.OpenAsync(WithPassphrase());
        Assert.Equal(StorageErrorKind.IntegrityCheckFailed, (await Assert.ThrowsAsync<StorageException>(() => t.Principals.GetAsync("bot"))).Kind);
        Assert.Equal(StorageErrorKind.IntegrityCheckFailed, (await Assert.ThrowsAsync<StorageException>(() => t.Principals.ListAsync())).Kind);
        StorageException e = await Assert.ThrowsAsync<StorageException>(() => t.Principals.GetCredentialAsync("bot-key"));
        Assert.Equal(StorageErrorKind.IntegrityCheckFailed, e.Kind);
        Assert.Contains("credential 'bot-key'", e.Message, StringComparison.Ordinal);
        // A tampered row is never re-sealed by a write.
        Assert.Equal(StorageErrorKind.IntegrityCheckFailed, (await Assert.ThrowsAsync<StorageException>(() => t.Principals.RenewCredentialAsync("bot-key", DateTimeOffset.UtcNow.AddDays(1)))).Kind);
        Assert.Equal(StorageErrorKind.IntegrityCheckFailed, (await Assert.ThrowsAsync<StorageException>(() => t.Principals.SetDisabledAsync("bot", false))).Kind);

        // Swapping the public key is refused the same way.
        await loc.ExecAsync("UPDATE principal_credentials SET revoked=1, public_key=@pk WHERE key_id='bot-key'", ("@pk", Bytes(32, 9)));
        Assert.Equal(StorageErrorKind.IntegrityCheckFailed, (await Assert.ThrowsAsync<StorageException>(() => t.Principals.GetCredentialAsync("bot-key"))).Kind);
    }

    [Fact]
    public async Task Request_nonces_are_refused_a_second_time_across_replicas_until_they_expire()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using IConclaveStore a = await loc.OpenAsync(WithPassphrase());
        await using IConclaveStore b = await loc.OpenAsync(WithPassphrase());
        DateTimeOffset expires = DateTimeOffset.UtcNow.AddSeconds(60);
        Assert.True(await a.Principals.TryConsumeRequestNonceAsync("k1", "nonce-aaaaaaaaaaaaaaaa", expires));
        Assert.False(await b.Principals.TryConsumeRequestNonceAsync("k1", "nonce-aaaaaaaaaaaaaaaa", expires)); // the other replica refuses the replay
        Assert.False(await a.Principals.TryConsumeRequestNonceAsync("k1", "nonce-aaaaaaaaaaaaaaaa", expires));
        Assert.True(await b.Principals.TryConsumeRequestNonceAsync("k2", "nonce-aaaaaaaaaaaaaaaa", expires)); // per key id

        // 50 concurrent attempts with one nonce, on two replicas: exactly one wins.
        Task<bool>[] racing = [.. Enumerable.Range(0, 50).Select(i => (i % 2 == 0 ? a : b).Principals.TryConsumeRequestNonceAsync("k3", "nonce-bbbbbbbbbbbbbbbb", expires))];
        Assert.Equal(1, (await Task.WhenAll(racing)).Count(x => x));

        // An expired nonce is forgotten (its signature cannot be accepted any more).
        Assert.True(await a.Principals.TryConsumeRequestNonceAsync("k4", "nonce-cccccccccccccccc", DateTimeOffset.UtcNow.AddSeconds(-1)));
        Assert.True(await b.Principals.TryConsumeRequestNonceAsync("k4", "nonce-cccccccccccccccc", expires));
    }
}
